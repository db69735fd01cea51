"""A sweep in the graph: ``sweep/<name>`` runs Ray Tune; each finished trial is a dynamic partition
of ``trial_checkpoint``, ``trial_predictions`` and ``trial_evaluation``; ``sweep_best`` picks the
best trial, which then takes the same gate and registration path as any trained model.

The trial assets and ``sweep_best`` carry an eager automation condition: with the daemon running,
new trial partitions are stored, predicted and evaluated as they appear, and the best trial is
re-picked when an evaluation changes. ``tunix-rt sweep run`` does the same steps itself, in order.
"""

# No `from __future__ import annotations`: Dagster reads annotations at runtime.
import json
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSelection,
    AutomationCondition,
    Config,
    DataVersion,
    DynamicPartitionsDefinition,
    Failure,
    MaterializeResult,
    MetadataValue,
    ScheduleDefinition,
    TableColumn,
    TableRecord,
    TableSchema,
    asset,
    define_asset_job,
)

from tunix_rt_pipelines.core.artifacts import get_tree, put_tree
from tunix_rt_pipelines.core.lineage import latest_metadata, partition_metadata
from tunix_rt_pipelines.core.resources import ArtifactStoreResource, TraceStoreResource, WorkdirResource
from tunix_rt_pipelines.datasets.assets import dataset_key
from tunix_rt_pipelines.evalsets.assets import evalset_key
from tunix_rt_pipelines.evalsets.validate import load_evalset
from tunix_rt_pipelines.evaluation.evaluate import evaluate_blob
from tunix_rt_pipelines.evaluation.store import save_evaluation
from tunix_rt_pipelines.inference.assets import PredictionsConfig
from tunix_rt_pipelines.inference.predict import SamplingSettings, predict, summarize, to_jsonl
from tunix_rt_pipelines.registry.assets import gate_check, model_version_key, registration_asset
from tunix_rt_pipelines.training.assets import base_model_key, compute_tag, dataset_manifest, sft_file
from tunix_rt_pipelines.training.config import TrainingConfig, load_config
from tunix_rt_pipelines.training.job import RESULT_FILE
from tunix_rt_pipelines.tuning.ray_tune import SweepInputs
from tunix_rt_pipelines.tuning.spec import SweepSpec, base_config, load_sweep_spec
from tunix_rt_pipelines.tuning.sweep import execute_sweep, rank_trials
from tunix_rt_pipelines.tuning.trials import set_sweep_status, trials_of


class SweepRunConfig(Config):
    mode: str = "run"  # run: the spec's seeded trials (finished ones reused) | extend | resume
    num_trials: int = 0  # trials to add (extend) or propose (run); 0: the spec's num_trials


def sweep_key(name: str) -> AssetKey:
    return AssetKey(["sweep", name])


def trial_keys(name: str) -> dict[str, AssetKey]:
    return {part: AssetKey([part, name]) for part in ("trial_checkpoint", "trial_predictions", "trial_evaluation")}


def sweep_best_key(name: str) -> AssetKey:
    return AssetKey(["sweep_best", name])


def trials_partitions(name: str) -> DynamicPartitionsDefinition:
    return DynamicPartitionsDefinition(name=f"trials_{name}")


def sweep_job_name(name: str) -> str:
    return f"sweep_{name}"


def build_sweep_assets(spec_path: Path, training_dir: Path, evalset_path: Path) -> tuple[list, list]:
    """(assets, asset checks) of one sweep spec."""
    spec = load_sweep_spec(spec_path, training_dir)
    base = base_config(spec, training_dir)
    partitions = trials_partitions(spec.name)
    keys = trial_keys(spec.name)
    evalset = evalset_key(evalset_path)

    @asset(
        key=sweep_key(spec.name),
        deps=[base_model_key(base), dataset_key(base.dataset)],
        group_name="tuning",
        kinds={"ray", "python"},
        code_version="1",
        op_tags={"compute": compute_tag(base)},
        description=f"Sweep {spec.name} ({spec_path.name}): Ray Tune trials of {spec.base_config}, "
                    f"{spec.scheduler} scheduler; every trial recorded.",
    )
    def _sweep(context: AssetExecutionContext, config: SweepRunConfig, trace_store: TraceStoreResource,
               artifact_store: ArtifactStoreResource, workdir: WorkdirResource) -> MaterializeResult:
        artifacts = artifact_store.get_store()
        manifest = dataset_manifest(context, base, artifacts)
        base_digest = latest_metadata(context, base_model_key(base))["model_digest"]
        inputs = SweepInputs(model_dir=str(get_tree(artifacts, base_digest, workdir.models / base_digest)),
                             train_jsonl=str(sft_file(artifacts, manifest, "train")),
                             validation_jsonl=str(sft_file(artifacts, manifest, "validation")),
                             runs_root=str(workdir.runs / "sweeps"))
        trials, timing = execute_sweep(trace_store.get_store().engine, spec, base, inputs, mode=config.mode,
                                       num_trials=config.num_trials or None, run_id=context.run_id,
                                       say=context.log.info)
        finished = [t.trial_key for t in trials if t.status == "finished"]
        new = [k for k in finished if not context.instance.has_dynamic_partition(partitions.name, k)]
        if new:
            context.instance.add_dynamic_partitions(partitions.name, new)
        counts = {s: sum(t.status == s for t in trials) for s in ("finished", "stopped_early", "failed", "running")}
        context.log.info(f"sweep {spec.name}: {counts}; {len(new)} new trial partition(s)")
        return MaterializeResult(metadata={
            **{f"trials_{s}": n for s, n in counts.items()},
            "trials": len(trials),
            "new_partitions": MetadataValue.json(new),
            "ray": timing.get("where", ""),
            "ray_start_s": round(timing["ray_start_s"], 2),
            "tune_s": round(timing["tune_s"], 2),
            # Seconds some trial was training, and the sum over trials (over tune_s x concurrency: slot use).
            "train_busy_s": round(timing.get("train_busy_s", 0.0), 2),
            "train_s_sum": round(timing.get("train_s_sum", 0.0), 2),
            "trial_table": MetadataValue.table(
                records=[TableRecord({"trial": t.trial_key, "status": t.status, "origin": t.origin,
                                      "val_loss": t.val_loss if t.val_loss is not None else float("nan"),
                                      "steps": t.steps_done, "params": json.dumps(t.params, sort_keys=True)})
                         for t in trials],
                schema=TableSchema(columns=[TableColumn("trial"), TableColumn("status"), TableColumn("origin"),
                                            TableColumn("val_loss", "float"), TableColumn("steps", "int"),
                                            TableColumn("params")])),
        })

    @asset(
        key=keys["trial_checkpoint"],
        deps=[sweep_key(spec.name)],
        partitions_def=partitions,
        group_name="tuning",
        kinds={"pytorch" if base.backend == "torch" else "jax", "safetensors"},
        code_version="1",
        automation_condition=AutomationCondition.eager(),
        description=f"A finished trial of sweep {spec.name}: its trained folder, content-addressed.",
    )
    def _trial_checkpoint(context: AssetExecutionContext, trace_store: TraceStoreResource,
                          artifact_store: ArtifactStoreResource) -> MaterializeResult:
        from tunix_rt_pipelines.training.plots import loss_curve_png

        key = context.partition_key
        trial = next((t for t in trials_of(trace_store.get_store().engine, spec.name) if t.trial_key == key), None)
        if trial is None or trial.status != "finished":
            raise Failure(f"trial {key} of {spec.name} is {trial.status if trial else 'unknown'}: "
                          f"`tunix-rt sweep resume` re-runs failed and killed trials")
        artifacts = artifact_store.get_store()
        run_dir = Path(trial.run_dir)
        result = json.loads((run_dir / RESULT_FILE).read_text())
        digest, _ = put_tree(artifacts, run_dir / "final")
        cfg = load_config(run_dir / "trial.yaml")
        curve = artifacts.put_bytes(loss_curve_png(result["history"], title=f"{spec.name} trial {key}"))
        return MaterializeResult(metadata={
            "checkpoint_digest": digest,
            "trial_key": key,
            "params": MetadataValue.json(trial.params),
            "config": MetadataValue.json(cfg.to_dict()),
            "config_hash": cfg.config_hash,
            "dataset_digest": dataset_manifest(context, base, artifacts)["digest"],
            "base_model_digest": latest_metadata(context, base_model_key(base))["model_digest"],
            "final_loss": result["final_loss"],
            "final_val_loss": result["final_val_loss"] if result["final_val_loss"] is not None else float("nan"),
            "min_loss": result["min_loss"],
            "steps": result["steps"],
            "tokens_per_s": round(result["tokens_per_s"], 1),
            "history": MetadataValue.json(result["history"]),
            "loss_curve": MetadataValue.path(str(artifacts.path_for(curve))),
            "loss_curve_sha256": curve,
        }, data_version=DataVersion(digest))

    @asset(
        key=keys["trial_predictions"],
        deps=[keys["trial_checkpoint"], evalset],
        partitions_def=partitions,
        group_name="tuning",
        kinds={"pytorch" if base.backend == "torch" else "jax"},
        code_version="1",
        automation_condition=AutomationCondition.eager(),
        description=f"Greedy predictions of a {spec.name} trial on {evalset_path.name}.",
    )
    def _trial_predictions(context: AssetExecutionContext, config: PredictionsConfig,
                           artifact_store: ArtifactStoreResource, workdir: WorkdirResource) -> MaterializeResult:
        artifacts = artifact_store.get_store()
        ckpt = partition_metadata(context, keys["trial_checkpoint"], context.partition_key)
        model_dir = get_tree(artifacts, ckpt["checkpoint_digest"], workdir.models / ckpt["checkpoint_digest"])
        evalset_sha = latest_metadata(context, evalset)["sha256"]
        items = load_evalset(artifacts.path_for(evalset_sha))
        sampling = SamplingSettings(max_new_tokens=config.max_new_tokens, batch_size=config.batch_size,
                                    temperature=config.temperature, top_p=config.top_p, seed=config.seed)
        template = dataset_manifest(context, base, artifacts)["template"]["key"]
        records, run = predict(items, model_dir, backend=base.backend, template_key=template, sampling=sampling,
                               device=base.device, dtype=base.precision)
        run.update({"model_digest": ckpt["checkpoint_digest"], "evalset_sha256": evalset_sha,
                    "config_hash": ckpt["config_hash"]})
        sha = artifacts.put_bytes(to_jsonl(records, run))
        return MaterializeResult(metadata={**summarize(records), "predictions_sha256": sha,
                                           "model_digest": ckpt["checkpoint_digest"]},
                                 data_version=DataVersion(sha))

    @asset(
        key=keys["trial_evaluation"],
        deps=[keys["trial_predictions"]],
        partitions_def=partitions,
        group_name="tuning",
        kinds={"python", "sql"},
        code_version="1",
        automation_condition=AutomationCondition.eager(),
        description=f"answer_correctness@v1 of a {spec.name} trial, stored with per-item scores.",
    )
    def _trial_evaluation(context: AssetExecutionContext, trace_store: TraceStoreResource,
                          artifact_store: ArtifactStoreResource) -> MaterializeResult:
        key = context.partition_key
        predictions = partition_metadata(context, keys["trial_predictions"], key)
        ckpt = partition_metadata(context, keys["trial_checkpoint"], key)
        blob = artifact_store.get_store().get_bytes(predictions["predictions_sha256"])
        record, rows = evaluate_blob(blob, predictions["predictions_sha256"], label=f"{spec.name}/{key}",
                                     config_name=spec.name, dataset_digest=ckpt["dataset_digest"],
                                     run_id=context.run_id)
        save_evaluation(trace_store.get_store().engine, record, rows)
        score = record["primary_score"]
        return MaterializeResult(metadata={"evaluation_id": record["id"], "n_scored": record["n_scored"],
                                           "primary_score": score if score is not None else float("nan")},
                                 data_version=DataVersion(record["id"]))

    @asset(
        key=sweep_best_key(spec.name),
        deps=[keys["trial_evaluation"]],
        group_name="tuning",
        kinds={"python"},
        code_version="1",
        automation_condition=AutomationCondition.eager(),
        description=f"The best finished and evaluated trial of {spec.name} by {spec.metric} ({spec.mode}).",
    )
    def _sweep_best(context: AssetExecutionContext, trace_store: TraceStoreResource) -> MaterializeResult:
        engine = trace_store.get_store().engine
        evaluated = {}
        for t in trials_of(engine, spec.name):
            try:
                evaluated[t.trial_key] = partition_metadata(context, keys["trial_evaluation"], t.trial_key)
            except Failure:
                continue  # not evaluated (yet): not a candidate
        scores = {k: (md["primary_score"] if md["primary_score"] == md["primary_score"] else None)
                  for k, md in evaluated.items()}
        ranked = [t for t in rank_trials(trials_of(engine, spec.name), spec.metric, scores) if t.trial_key in evaluated]
        if not ranked:
            raise Failure(f"sweep {spec.name} has no finished, evaluated trial yet")
        best = ranked[0]
        set_sweep_status(engine, spec.name, "finished", best_trial_key=best.trial_key)
        ckpt = partition_metadata(context, keys["trial_checkpoint"], best.trial_key)
        context.log.info(f"best trial of {spec.name}: {best.trial_key} ({spec.metric}; val_loss {best.val_loss}, "
                         f"primary score {scores.get(best.trial_key)})")
        return MaterializeResult(metadata={
            **{k: v for k, v in ckpt.items() if k not in ("loss_curve",)},
            "loss_curve": MetadataValue.path(ckpt["loss_curve"]),
            "params": MetadataValue.json(best.params),
            "config": MetadataValue.json(ckpt["config"]),
            "history": MetadataValue.json(ckpt["history"]),
            "evaluation_id": evaluated[best.trial_key]["evaluation_id"],
            "metric": spec.metric,
            "primary_score": scores.get(best.trial_key) if scores.get(best.trial_key) is not None else float("nan"),
            "ranking": MetadataValue.table(
                records=[TableRecord({"rank": i, "trial": t.trial_key,
                                      "val_loss": t.val_loss if t.val_loss is not None else float("nan"),
                                      "primary_score": scores.get(t.trial_key) if scores.get(t.trial_key) is not None
                                      else float("nan"), "params": json.dumps(t.params, sort_keys=True)})
                         for i, t in enumerate(ranked, start=1)],
                schema=TableSchema(columns=[TableColumn("rank", "int"), TableColumn("trial"),
                                            TableColumn("val_loss", "float"), TableColumn("primary_score", "float"),
                                            TableColumn("params")])),
        }, data_version=DataVersion(ckpt["checkpoint_digest"]))

    best = sweep_best_key(spec.name)
    registration = registration_asset(spec.name, best, best)
    return ([_sweep, _trial_checkpoint, _trial_predictions, _trial_evaluation, _sweep_best, registration],
            [gate_check(spec.name, best)])


def build_sweep_jobs(spec: SweepSpec, base: TrainingConfig) -> list:
    """Three jobs, run in this order by ``tunix-rt sweep`` (and by the daemon's automation):
    ``sweep_<name>`` (Ray Tune, tagged like the base config for the run queue),
    ``sweep_trials_<name>`` (one run per trial partition: store, predict, evaluate) and
    ``sweep_select_<name>`` (best trial, gate, registration)."""
    keys = trial_keys(spec.name)
    return [
        define_asset_job(sweep_job_name(spec.name), selection=[sweep_key(spec.name)],
                         tags={"compute": compute_tag(base)}),
        define_asset_job(f"sweep_trials_{spec.name}", selection=list(keys.values()),
                         partitions_def=trials_partitions(spec.name), tags={"compute": compute_tag(base)}),
        define_asset_job(f"sweep_select_{spec.name}",
                         selection=AssetSelection.assets(sweep_best_key(spec.name), model_version_key(spec.name))),
    ]


def nightly_schedule(spec: SweepSpec, cron: str = "0 2 * * *") -> ScheduleDefinition:
    """Runs the sweep every night (finished trials are reused; the daemon's automation does the rest)."""
    return ScheduleDefinition(name=f"nightly_{spec.name}", cron_schedule=cron, job_name=sweep_job_name(spec.name),
                              execution_timezone="UTC",
                              run_config={"ops": {"sweep__" + spec.name: {"config": {"mode": "run"}}}})
