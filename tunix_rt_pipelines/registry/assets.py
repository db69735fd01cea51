"""The right end of the graph: gate checks on a trained model's evaluation, then its registration.

``gate`` is a blocking multi-asset check on ``evaluation/<config>/trained``: one gate decision
(``registry.gates.decide_gate``, stored) reported as two check results, against the regression
baselines and against the champion. A failure stops the run before ``model_version/<config>``.
That asset registers the checkpoint (content-addressed, ``candidate``) with its provenance and
metrics, and moves ``champion`` to it through ``promote`` when the gate passed.
"""

# No `from __future__ import annotations`: Dagster reads annotations at runtime.
from pathlib import Path

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetChecksDefinition,
    AutomationCondition,
    Failure,
    ConfigurableResource,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset_check,
)

from tunix_rt_pipelines.core.lineage import latest_metadata
from tunix_rt_pipelines.core.resources import ArtifactStoreResource, TraceStoreResource, WorkdirResource
from tunix_rt_pipelines.evaluation.assets import evaluation_key
from tunix_rt_pipelines.registry.gates import GateCheck, GatePolicy, decide_gate
from tunix_rt_pipelines.registry.promotion import promote
from tunix_rt_pipelines.registry.provenance import metrics_record, provenance_record
from tunix_rt_pipelines.registry.reevaluate import evaluate_version
from tunix_rt_pipelines.registry.versions import CHAMPION, alias_holder, get_version, register_version
from tunix_rt_pipelines.training.assets import checkpoint_key
from tunix_rt_pipelines.training.config import load_config

BASELINES_CHECK = "regression_baselines"
CHAMPION_CHECK = "no_regression_vs_champion"


class GatePolicyResource(ConfigurableResource):
    """Thresholds of the champion check (baselines carry their own)."""

    max_drop_vs_champion: float = GatePolicy.max_drop_vs_champion  # primary score may fall this much at most
    max_right_to_wrong_vs_champion: int = GatePolicy.max_right_to_wrong_vs_champion  # champion's right items lost

    def policy(self) -> GatePolicy:
        return GatePolicy(self.max_drop_vs_champion, self.max_right_to_wrong_vs_champion)


def model_version_key(config_name: str) -> AssetKey:
    return AssetKey(["model_version", config_name])


def _check_result(name: str, key: AssetKey, checks: list[GateCheck], gate_id: str, empty: str) -> AssetCheckResult:
    return AssetCheckResult(
        check_name=name,
        asset_key=key,
        passed=all(c.passed for c in checks),
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "gate_id": gate_id,
            "summary": "; ".join(f"{c.name}: {'ok' if c.passed else 'FAILED'} ({c.reason})" for c in checks) or empty,
            "checks": MetadataValue.json([c.__dict__ for c in checks]),
        },
    )


def build_gate_check(config_path: Path) -> AssetChecksDefinition:
    """The gate on ``evaluation/<config>/trained``."""
    cfg = load_config(config_path)
    return gate_check(cfg.name, evaluation_key(cfg.name, "trained"))


def gate_check(name: str, key: AssetKey) -> AssetChecksDefinition:
    """The gate for model ``name`` on asset ``key``, whose metadata names the ``evaluation_id``."""

    @multi_asset_check(
        specs=[
            AssetCheckSpec(BASELINES_CHECK, asset=key, blocking=True,
                           description="no regression beyond the thresholds of the baselines on this eval set"),
            AssetCheckSpec(CHAMPION_CHECK, asset=key, blocking=True,
                           description=f"no regression against {name}@champion (score drop, right→wrong flips)"),
        ],
        name=f"gate_{name}",
    )
    def _gate(context: AssetCheckExecutionContext, trace_store: TraceStoreResource, gate_policy: GatePolicyResource):
        evaluation_id = latest_metadata(context, key)["evaluation_id"]
        decision = decide_gate(trace_store.get_store().engine, evaluation_id, name, gate_policy.policy())
        context.log.info(f"gate {decision.id[:12]} for {name}: {'passed' if decision.passed else 'FAILED'}")
        yield _check_result(BASELINES_CHECK, key, decision.checks_named("baseline:"), decision.id,
                            "no baselines on this eval set")
        yield _check_result(CHAMPION_CHECK, key, decision.checks_named("champion"), decision.id, "")

    return _gate


def build_registration_asset(config_path: Path) -> AssetsDefinition:
    """``model_version/<config>``: the config's trained checkpoint, after the gate on its evaluation."""
    cfg = load_config(config_path)
    return registration_asset(cfg.name, evaluation_key(cfg.name, "trained"), checkpoint_key(cfg), cfg.to_dict())


def registration_asset(name: str, eval_key: AssetKey, ckpt_key: AssetKey,
                       config: dict | None = None) -> AssetsDefinition:
    """``model_version/<name>``: ``eval_key``'s metadata names the evaluation, ``ckpt_key``'s the checkpoint
    (checkpoint, base model and dataset digests, config hash, losses; see the checkpoint asset). Without a
    static ``config`` (a sweep's best trial) the training config comes from ``ckpt_key``'s ``config`` JSON."""

    @asset(
        key=model_version_key(name),
        deps=sorted({eval_key, ckpt_key}, key=lambda k: k.to_user_string()),
        group_name="registry",
        kinds={"python", "sql"},
        code_version="1",
        description=f"{name}'s trained checkpoint as a registered model version (candidate; champion when "
                    "its gate passed).",
    )
    def _model_version(
        context: AssetExecutionContext,
        trace_store: TraceStoreResource,
        artifact_store: ArtifactStoreResource,
        gate_policy: GatePolicyResource,
    ) -> MaterializeResult:
        engine = trace_store.get_store().engine
        evaluation_id = latest_metadata(context, eval_key)["evaluation_id"]
        training = latest_metadata(context, ckpt_key)
        # The same question the gate check answered: returns its stored decision (or takes it,
        # when this asset is materialised on its own).
        gate = decide_gate(engine, evaluation_id, name, gate_policy.policy())
        version, created = register_version(
            engine, artifact_store.get_store(), name=name, checkpoint_digest=training["checkpoint_digest"],
            evaluation_id=evaluation_id, metrics=metrics_record(engine, evaluation_id, training),
            config=config if config is not None else training["config"],
            provenance=provenance_record(
                engine, evaluation_id=evaluation_id, checkpoint_digest=training["checkpoint_digest"],
                base_model_digest=training["base_model_digest"], dataset_digest=training["dataset_digest"],
                config_hash=training["config_hash"], gate_id=gate.id, run_id=context.run_id,
                loss_curve_sha256=training.get("loss_curve_sha256")),
            actor=f"dagster:{context.run_id}",
        )
        context.log.info(f"{version.label} ({version.id[:12]}) {'registered' if created else 'already registered'}")
        promoted = False
        if gate.passed:
            promotion = promote(engine, version.id, alias=CHAMPION, actor=f"dagster:{context.run_id}")
            promoted = promotion.changed
            context.log.info(f"{version.label} is champion" + ("" if promotion.changed else " already"))
        else:
            context.log.warning(f"gate {gate.id[:12]} failed: {version.label} stays candidate")
        champion = alias_holder(engine, name, CHAMPION)
        return MaterializeResult(
            metadata={
                "version": version.label,
                "version_id": version.id,
                "checkpoint_digest": version.checkpoint_digest,
                "evaluation_id": evaluation_id,
                "gate_id": gate.id,
                "gate_passed": gate.passed,
                "promoted_to_champion": promoted,
                "is_champion": champion == version.id,
                "primary_score": version.metrics["primary_score"] if version.metrics["primary_score"] is not None
                else float("nan"),
                "provenance": MetadataValue.json(version.provenance),
                "metrics": MetadataValue.json(version.metrics),
            },
            data_version=DataVersion(version.id),
        )

    return _model_version


def champion_evaluation_key(name: str) -> AssetKey:
    return AssetKey(["champion_evaluation", name])


def champion_evaluation_asset(name: str, evalset: AssetKey) -> AssetsDefinition:
    """``champion_evaluation/<name>``: the current champion scored on the current eval set.

    Eager: it follows a new eval set (materialised by the eval-set sensor when the file changes)
    and a new champion. Evaluating the same champion on the same eval set again stores nothing new.
    """

    @asset(
        key=champion_evaluation_key(name),
        deps=[model_version_key(name), evalset],
        group_name="registry",
        kinds={"python", "sql"},
        code_version="1",
        automation_condition=AutomationCondition.eager(),
        description=f"{name}@champion evaluated on the current {evalset.to_user_string()}, so the champion gate "
                    "compares new models with it on the same items.",
    )
    def _champion_evaluation(context: AssetExecutionContext, trace_store: TraceStoreResource,
                             artifact_store: ArtifactStoreResource, workdir: WorkdirResource) -> MaterializeResult:
        engine = trace_store.get_store().engine
        try:
            champion = get_version(engine, f"{name}@{CHAMPION}")
        except LookupError as e:
            raise Failure(f"{name} has no champion yet: nothing to re-evaluate") from e
        evalset_sha = latest_metadata(context, evalset)["sha256"]
        record, created = evaluate_version(engine, artifact_store.get_store(), champion, evalset_sha, workdir.models,
                                           run_id=context.run_id)
        context.log.info(f"{champion.label} on eval set {evalset_sha[:12]}: primary score {record['primary_score']}"
                         + ("" if created else " (already evaluated)"))
        return MaterializeResult(metadata={
            "version": champion.label, "evaluation_id": record["id"], "evalset_sha256": evalset_sha,
            "primary_score": record["primary_score"] if record["primary_score"] is not None else float("nan"),
            "newly_evaluated": created,
        }, data_version=DataVersion(record["id"]))

    return _champion_evaluation
