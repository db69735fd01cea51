"""Per training config: the ``base_model`` asset and the ``checkpoint`` asset (training through Pipes).

Both are content-addressed: a model folder is stored file by file in the artefact store and
named by the sha256 of its manifest (``core.artifacts.put_tree``); that digest is the asset's
data version, so an unchanged base model or checkpoint does not cause work downstream.
"""

# No `from __future__ import annotations`: Dagster reads annotations at runtime.
import json
import sys
import tempfile
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AssetSelection,
    AssetKey,
    AssetsDefinition,
    DataVersion,
    Failure,
    MaterializeResult,
    MetadataValue,
    PipesSubprocessClient,
    asset,
    define_asset_job,
)

from tunix_rt_pipelines.core.artifacts import get_tree, put_tree
from tunix_rt_pipelines.core.lineage import latest_metadata
from tunix_rt_pipelines.core.resources import ArtifactStoreResource, WorkdirResource
from tunix_rt_pipelines.datasets.assets import dataset_key
from tunix_rt_pipelines.training.config import TrainingConfig, load_config
from tunix_rt_pipelines.training.job import RESULT_FILE, TrainingJob, read_pairs


def base_model_key(cfg: TrainingConfig) -> AssetKey:
    return AssetKey(["base_model", cfg.name])


def checkpoint_key(cfg: TrainingConfig) -> AssetKey:
    return AssetKey(["checkpoint", cfg.name])


def sft_file(artifacts, manifest: dict, split: str) -> Path:  # noqa: ANN001
    """The rendered SFT JSONL of a dataset split, verified, as a read-only path in the store."""
    sha = manifest["files"][f"sft_{split}.jsonl"]["sha256"]
    artifacts.verify(sha)
    return artifacts.path_for(sha)


def dataset_manifest(context: AssetExecutionContext, cfg: TrainingConfig, artifacts) -> dict:  # noqa: ANN001
    md = latest_metadata(context, dataset_key(cfg.dataset))
    return json.loads(artifacts.get_bytes(md["manifest_sha256"]))


def fetch_base_folder(cfg: TrainingConfig, texts, dest: Path) -> Path:  # noqa: ANN001
    """An HF folder for ``cfg.model.source``: built (``build:tiny``), a local folder, or a hub download."""
    from tunix_rt_pipelines.training.base_model import build_tiny_model

    source = cfg.model.source
    if source == "build:tiny":
        return build_tiny_model(cfg.model, texts(), dest, seed=cfg.seed)
    if Path(source).expanduser().is_dir():
        return Path(source).expanduser()
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(source, allow_patterns=["*.json", "*.safetensors", "tokenizer*"]))
    except Exception as e:  # offline, gated, or no such repo: say which source and why
        raise Failure(f"model.source {source!r} is neither build:tiny nor a local folder, and the hub download "
                      f"failed ({type(e).__name__}: {e}); download it where there is network and point "
                      f"model.source at the folder") from e


def build_training_assets(config_path: Path) -> list[AssetsDefinition]:
    cfg = load_config(config_path)
    base_key, ckpt_key, data_key = base_model_key(cfg), checkpoint_key(cfg), dataset_key(cfg.dataset)
    on_accelerator = compute_tag(cfg) == "gpu"

    @asset(
        key=base_key,
        deps=[data_key],
        group_name="training",
        kinds={"python", "safetensors"},
        code_version="1",
        description=f"Base model of {config_path.name}: {cfg.model.family} from {cfg.model.source} as an HF folder.",
    )
    def _base_model(context: AssetExecutionContext, artifact_store: ArtifactStoreResource) -> MaterializeResult:
        from tunix_rt_pipelines.training.base_model import count_parameters, read_hf_config

        artifacts = artifact_store.get_store()
        manifest = dataset_manifest(context, cfg, artifacts)

        def texts():  # noqa: ANN202  the tokenizer learns from exactly what training will see
            return [p + c for p, c in read_pairs(sft_file(artifacts, manifest, "train"))]

        with tempfile.TemporaryDirectory() as tmp:
            folder = fetch_base_folder(cfg, texts, Path(tmp) / "model")
            digest, tree = put_tree(artifacts, folder)
            hf = read_hf_config(folder)
            n_params = count_parameters(folder)
        context.log.info(f"base model {cfg.model.family}: {n_params:,} parameters, digest {digest[:12]}")
        return MaterializeResult(
            metadata={
                "model_digest": digest,
                "family": cfg.model.family,
                "source": cfg.model.source,
                "parameters": n_params,
                "vocab_size": hf.get("vocab_size") or hf.get("text_config", {}).get("vocab_size", 0),
                "files": MetadataValue.json({k: v["bytes"] for k, v in tree["files"].items()}),
                "dataset_digest": manifest["digest"],
            },
            data_version=DataVersion(digest),
        )

    @asset(
        key=ckpt_key,
        deps=[base_key, data_key],
        group_name="training",
        kinds={"pytorch" if cfg.backend == "torch" else "jax", "safetensors"},
        code_version="1",
        op_tags={"compute": compute_tag(cfg)},
        pool="gpu" if on_accelerator else None,  # step-level limit too, for executors that run steps apart
        description=f"{config_path.name}: {cfg.backend} training in a Pipes subprocess; the trained HF folder.",
    )
    def _checkpoint(
        context: AssetExecutionContext,
        artifact_store: ArtifactStoreResource,
        workdir: WorkdirResource,
        pipes_subprocess_client: PipesSubprocessClient,
    ) -> MaterializeResult:
        from tunix_rt_pipelines.training.plots import loss_curve_png

        artifacts = artifact_store.get_store()
        manifest = dataset_manifest(context, cfg, artifacts)
        base_digest = latest_metadata(context, base_key)["model_digest"]
        model_dir = get_tree(artifacts, base_digest, workdir.models / base_digest)
        # The run folder is named by everything the run depends on: a retry of the same run
        # (after a crash or a kill) resumes from its checkpoints; any change starts afresh.
        run_dir = workdir.runs / f"{cfg.name}-{cfg.config_hash[:12]}-{manifest['digest'][:12]}-{base_digest[:12]}"
        job = TrainingJob(
            config_path=str(config_path),
            model_dir=str(model_dir),
            train_jsonl=str(sft_file(artifacts, manifest, "train")),
            validation_jsonl=str(sft_file(artifacts, manifest, "validation")),
            run_dir=str(run_dir),
        )
        finished = (run_dir / RESULT_FILE).is_file() and (run_dir / "final" / "config.json").is_file()
        if finished:
            context.log.info(f"{run_dir.name} already finished: reusing its result")
        else:
            context.log.info(f"training {cfg.name} ({cfg.backend}) in {run_dir}")
            pipes_subprocess_client.run(
                command=[sys.executable, "-m", "tunix_rt_pipelines.training.worker"],
                context=context,
                extras={"job": job.as_dict()},
            )
        result = json.loads((run_dir / RESULT_FILE).read_text())
        final_digest, _ = put_tree(artifacts, run_dir / "final")
        curve_sha = artifacts.put_bytes(loss_curve_png(result["history"], title=f"{cfg.name} ({cfg.backend})"))
        return MaterializeResult(
            metadata={
                "checkpoint_digest": final_digest,
                "final_loss": result["final_loss"],
                "min_loss": result["min_loss"],
                "final_val_loss": result["final_val_loss"] if result["final_val_loss"] is not None else float("nan"),
                "steps": result["steps"],
                "tokens_per_s": round(result["tokens_per_s"], 1),
                "wall_s": round(result["wall_s"], 2),
                "compile_s": round(result["compile_s"], 2),
                "device": result["device"],
                "resumed_from_step": result["resumed_from"] if result["resumed_from"] is not None else -1,
                "backend": cfg.backend,
                "config": str(config_path.name),
                "config_hash": cfg.config_hash,
                "dataset_digest": manifest["digest"],
                "base_model_digest": base_digest,
                "run_dir": MetadataValue.path(str(run_dir)),
                "loss_curve": MetadataValue.path(str(artifacts.path_for(curve_sha))),
                "loss_curve_sha256": curve_sha,
                "history": MetadataValue.json(result["history"]),
            },
            data_version=DataVersion(final_digest),
        )

    return [_base_model, _checkpoint]



def compute_tag(cfg: TrainingConfig) -> str:
    """The run tag the queue limits on: ``gpu`` for configs that need an accelerator (TPU included)."""
    return "gpu" if cfg.device in ("gpu", "tpu") else "cpu"


def build_training_job(config_path: Path):  # noqa: ANN201  (an unresolved asset job)
    """``train_<name>``: base model and checkpoint of one config, tagged ``compute`` for the run queue."""
    cfg = load_config(config_path)
    return define_asset_job(
        f"train_{cfg.name}",
        selection=AssetSelection.assets(base_model_key(cfg), checkpoint_key(cfg)),
        tags={"compute": compute_tag(cfg)},
        description=f"Train {config_path.name} ({cfg.backend}, device {cfg.device}).",
    )
