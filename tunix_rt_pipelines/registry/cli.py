"""``tunix-rt registry ...``, ``tunix-rt baseline ...`` and ``tunix-rt package``: the registry by hand."""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable
from functools import wraps
from pathlib import Path

import click

from tunix_rt_pipelines.core.settings import Settings


def _engine_and_artifacts():  # noqa: ANN202
    from tunix_rt_pipelines.core.artifacts import ArtifactStore
    from tunix_rt_pipelines.traces.store import TraceStore

    settings = Settings.from_env()
    return TraceStore(settings.database_url).engine, ArtifactStore(settings.artifacts_dir)


def _echo_json(obj: object) -> None:
    click.echo(json.dumps(obj, indent=2, default=str, ensure_ascii=False))


def _clear_errors(fn: Callable) -> Callable:
    """Lookup, naming, integrity and refusal errors as one-line CLI errors (exit 1), not tracebacks."""
    @wraps(fn)
    def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        from tunix_rt_pipelines.core.artifacts import ArtifactIntegrityError
        from tunix_rt_pipelines.registry.promotion import PromotionRefused

        try:
            return fn(*args, **kwargs)
        except (LookupError, ValueError, PromotionRefused, ArtifactIntegrityError) as e:
            raise click.ClickException(str(e)) from e
    return wrapper


@click.group()
def registry() -> None:
    """Model versions, aliases, gates and downloads."""


@registry.command("list")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True)
@_clear_errors
def registry_list(name: str | None, as_json: bool) -> None:
    """Registered versions (newest first per model) with their aliases."""
    from tunix_rt_pipelines.registry.versions import list_versions

    engine, _ = _engine_and_artifacts()
    rows = list_versions(engine, name)
    if as_json:
        _echo_json(rows)
        return
    if not rows:
        click.echo("no model versions registered")
    for v in rows:
        score = v["metrics"].get("primary_score")
        click.echo(f"{v['label']:<24} {v['id'][:12]}  score {'n/a' if score is None else f'{score:.3f}':<6} "
                   f"{v['created_at']}  {','.join(v['aliases'])}")


@registry.command("show")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True)
@_clear_errors
def registry_show(ref: str, as_json: bool) -> None:
    """One version: metrics, provenance, aliases and their history, the gate it was registered with."""
    from tunix_rt_pipelines.registry.gates import gate_record
    from tunix_rt_pipelines.registry.versions import alias_history, get_version, list_versions

    engine, _ = _engine_and_artifacts()
    version = get_version(engine, ref)
    aliases = next(v["aliases"] for v in list_versions(engine, version.name) if v["id"] == version.id)
    gate_id = version.provenance.get("gate_id")
    shown = {**version.as_dict(), "aliases": aliases,
             "alias_history": [e for e in alias_history(engine, version.name) if e["version_id"] == version.id],
             "gate": gate_record(engine, gate_id) if gate_id else None}
    if as_json:
        _echo_json(shown)
        return
    click.echo(f"{version.label}  id {version.id}  aliases: {', '.join(aliases) or '-'}")
    click.echo(f"checkpoint {version.checkpoint_digest}  evaluation {version.evaluation_id}")
    for title, section in (("metrics", version.metrics), ("provenance", version.provenance)):
        click.echo(f"\n{title}:")
        for k, v in section.items():
            click.echo(f"  {k}: {v}")
    if shown["gate"]:
        g = shown["gate"]
        click.echo(f"\ngate {g['id'][:12]}: {'passed' if g['passed'] else 'FAILED'}")
        for c in g["checks"]:
            click.echo(f"  {c['name']}: {'ok' if c['passed'] else 'FAILED'} ({c['reason']})")


@registry.command("gate")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True)
@_clear_errors
def registry_gate(ref: str, as_json: bool) -> None:
    """Decide (and record) the gate for a version against its baselines and the current champion."""
    from tunix_rt_pipelines.registry.gates import decide_gate
    from tunix_rt_pipelines.registry.versions import get_version

    engine, _ = _engine_and_artifacts()
    version = get_version(engine, ref)
    if version.evaluation_id is None:
        raise click.ClickException(f"{version.label} has no evaluation to gate")
    decision = decide_gate(engine, version.evaluation_id, version.name)
    if as_json:
        _echo_json(decision.as_dict())
    else:
        click.echo(f"gate {decision.id[:12]} for {version.label}: {'passed' if decision.passed else 'FAILED'}")
        for c in decision.checks:
            click.echo(f"  {c.name}: {'ok' if c.passed else 'FAILED'} ({c.reason})")
    if not decision.passed:
        raise SystemExit(1)


@registry.command("promote")
@click.argument("ref")
@click.option("--alias", default="champion", show_default=True)
@_clear_errors
def registry_promote(ref: str, alias: str) -> None:
    """Point ALIAS at a version; refused without a passing gate record against the current champion."""
    from tunix_rt_pipelines.registry.promotion import promote

    engine, _ = _engine_and_artifacts()
    result = promote(engine, ref, alias=alias, actor=f"cli:{getpass.getuser()}")
    if result.changed:
        click.echo(f"{result.version.name}@{alias} -> {result.version.label} (gate {result.gate_id[:12]}; "
                   f"was {result.previous_version_id[:12] if result.previous_version_id else 'nobody'})")
    else:
        click.echo(f"{result.version.name}@{alias} already is {result.version.label}: nothing changed")


@registry.command("download")
@click.argument("ref")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@_clear_errors
def registry_download(ref: str, out_dir: Path) -> None:
    """Write a version's model folder under OUT, verifying every file's sha256."""
    from tunix_rt_pipelines.registry.download import download

    engine, artifacts = _engine_and_artifacts()
    click.echo(f"wrote {download(engine, artifacts, ref, out_dir)} (sha256 verified)")


@registry.command("serve")
@click.argument("ref")
@click.option("--host", default="127.0.0.1", show_default=True, help="No authentication: keep it on loopback.")
@click.option("--port", default=8000, show_default=True)
@_clear_errors
def registry_serve(ref: str, host: str, port: int) -> None:
    """Serve a version behind a minimal OpenAI-compatible API (e.g. as an llm_judge model)."""
    from tunix_rt_pipelines.inference.openai_server import serve
    from tunix_rt_pipelines.registry.download import download
    from tunix_rt_pipelines.registry.versions import get_version

    engine, artifacts = _engine_and_artifacts()
    version = get_version(engine, ref)
    folder = download(engine, artifacts, version.id, Settings.from_env().models_dir / "registry")
    serve(folder, host, port, name=version.label, device=version.config.get("device", "auto"),
          dtype=version.config.get("precision", "fp32"))


@click.group()
def baseline() -> None:
    """Regression baselines the gate checks new evaluations against."""


@baseline.command("set")
@click.argument("name")
@click.option("--evaluation", "evaluation_ref", required=True, help="Evaluation id prefix or label to take it from.")
@click.option("--metric", default="primary_score", show_default=True,
              help="primary_score, trace_structure or score_<section>.")
@click.option("--lower-is-better", is_flag=True)
@click.option("--max-drop", default=0.02, show_default=True, type=float)
@click.option("--max-right-to-wrong", default=5, show_default=True, type=int)
@_clear_errors
def baseline_set(name: str, evaluation_ref: str, metric: str, lower_is_better: bool, max_drop: float,
                 max_right_to_wrong: int) -> None:
    """Create or replace baseline NAME from an evaluation; it applies to that evaluation's eval set."""
    from tunix_rt_pipelines.evaluation.store import resolve_evaluation
    from tunix_rt_pipelines.registry.baselines import set_baseline

    engine, _ = _engine_and_artifacts()
    b = set_baseline(engine, name, resolve_evaluation(engine, evaluation_ref), metric=metric,
                     lower_is_better=lower_is_better, max_drop=max_drop, max_right_to_wrong=max_right_to_wrong)
    click.echo(f"baseline {b.name}: {b.metric} = {b.value} on eval set {b.evalset_sha256[:12]} "
               f"(max drop {b.max_drop}, max right→wrong {b.max_right_to_wrong})")


@baseline.command("list")
@click.option("--json", "as_json", is_flag=True)
def baseline_list(as_json: bool) -> None:
    from tunix_rt_pipelines.registry.baselines import list_baselines

    engine, _ = _engine_and_artifacts()
    rows = [b.__dict__ for b in list_baselines(engine)]
    if as_json:
        _echo_json(rows)
        return
    for b in rows:
        click.echo(f"{b['name']:<20} {b['metric']:<16} {b['value']:.4f} {'(lower is better) ' if b['lower_is_better'] else ''}"
                   f"eval set {b['evalset_sha256'][:12]}  max drop {b['max_drop']}  max right→wrong {b['max_right_to_wrong']}")
    if not rows:
        click.echo("no baselines")


@baseline.command("delete")
@click.argument("name")
def baseline_delete(name: str) -> None:
    from tunix_rt_pipelines.registry.baselines import delete_baseline

    engine, _ = _engine_and_artifacts()
    if not delete_baseline(engine, name):
        raise click.ClickException(f"no baseline {name!r}")
    click.echo(f"deleted baseline {name}")


@click.command()
@click.argument("ref")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the archive [default: <home>/packages].")
@click.option("--with-weights", is_flag=True, help="Include the model files (large for real models).")
@_clear_errors
def package(ref: str, out_dir: Path | None, with_weights: bool) -> None:
    """Write the submission bundle of a model version (config, model card, eval summary, manifests, eval set)."""
    import hashlib

    from tunix_rt_pipelines.registry.package import build_package

    engine, artifacts = _engine_and_artifacts()
    out_dir = out_dir or Settings.from_env().home / "packages"
    path = build_package(engine, artifacts, ref, out_dir, with_weights=with_weights)
    click.echo(f"wrote {path} ({path.stat().st_size:,} bytes, sha256 {hashlib.sha256(path.read_bytes()).hexdigest()})")


COMMANDS = [registry, baseline, package]
