"""``tunix-rt``: what a person does by hand. Anything that changes state runs through Dagster.

Reads (stats, rejects, validation, dataset listings) query the store directly; writes
(ingest, the main job) materialise assets on the Dagster instance in the home folder, so
they appear in the UI's run history and lineage like any scheduled run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import click

from tunix_rt_pipelines.core.settings import REPO_ROOT, Settings

# Dagster's console logger at INFO: progress and results, not every engine event.
_QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def _settings() -> Settings:
    s = Settings.from_env()
    s.activate_dagster_home()
    return s


def _instance():  # noqa: ANN202
    return _settings().dagster_instance()


def _store(settings: Settings):  # noqa: ANN202
    from tunix_rt_pipelines.traces.store import TraceStore

    return TraceStore(settings.database_url)


def _echo_json(obj: object) -> None:
    click.echo(json.dumps(obj, indent=2, default=str, ensure_ascii=False))


@click.group()
def main() -> None:
    """tunix-rt: reasoning traces -> datasets -> trained, evaluated, registered models (on Dagster)."""


# -- ingestion ------------------------------------------------------------------------------


def stage_into_inbox(path: Path, settings: Settings, instance) -> str:  # noqa: ANN001
    """Copy ``path`` into the inbox (see ``traces.inbox.stage``); returns its partition key."""
    from tunix_rt_pipelines.traces.assets import inbox_files
    from tunix_rt_pipelines.traces.inbox import stage

    def register(key: str) -> None:
        try:
            instance.add_dynamic_partitions(inbox_files.name, [key])
        except Exception:  # another process added the same key between Dagster's check and its insert
            if not instance.has_dynamic_partition(inbox_files.name, key):
                raise

    return stage(path, settings.inbox_dir, register)


def _definitions(settings: Settings):  # noqa: ANN202
    """The code location bound to ``settings`` (not the module-level ``defs``, fixed at import)."""
    from tunix_rt_pipelines.definitions import build_definitions

    return build_definitions(settings)


def ingest_paths(paths: list[Path], instance, settings: Settings) -> list[dict]:  # noqa: ANN001
    """Stage each file and materialise its partition, one file after the other; returns per-file counts.

    One at a time, so that a staged file waits seconds, not the other files' ingests, for its
    run to open its batch: the inbox sensor leaves alone files whose content has a batch.
    """
    from tunix_rt_pipelines.traces.assets import ingest_job

    job = _definitions(settings).resolve_job_def(ingest_job.name)
    results = []
    for path in paths:
        key = stage_into_inbox(path, settings, instance)
        res = job.execute_in_process(instance=instance, partition_key=key, run_config=_QUIET_LOGS, raise_on_error=False)
        row: dict = {"file": key, "run_id": res.run_id, "success": res.success}
        for event in res.get_asset_materialization_events():
            md = event.materialization.metadata
            row.update({k: md[k].value for k in ("read", "accepted", "duplicate", "rejected", "batch_id") if k in md})
        if not res.success:
            row["error"] = _failure_message(res)
        results.append(row)
    return results


def _failure_message(result) -> str:  # noqa: ANN001
    """What went wrong in a failed run, in the words of the code that failed (not "Execution of step failed")."""
    for event in result.all_events:
        if not event.is_step_failure:
            continue
        data = event.step_failure_data
        if data.user_failure_data is not None and data.user_failure_data.description:
            return data.user_failure_data.description
        error = data.error
        while error is not None and error.cause is not None and "Error occurred while executing" in error.message:
            error = error.cause
        if error is not None:
            return error.message.strip()
    return "run failed"


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the per-file counts as JSON.")
def ingest(paths: tuple[Path, ...], as_json: bool) -> None:
    """Put trace files (JSONL, JSON array, reasoning-gym entries) in the inbox and ingest them through Dagster."""
    settings = _settings()
    instance = _instance()
    _report_ingests(ingest_paths(list(paths), instance, settings), as_json)


def _report_ingests(results: list[dict], as_json: bool) -> None:
    """Per-file counts, or why a file failed; exits 1 when any did."""
    if as_json:
        _echo_json(results)
    else:
        for r in results:
            if r["success"]:
                click.echo(
                    f"{r['file']}: read {r['read']:,}, accepted {r['accepted']:,}, duplicate {r['duplicate']:,}, "
                    f"rejected {r['rejected']:,} (run {r['run_id'][:8]})"
                )
            else:
                click.echo(f"{r['file']}: FAILED (run {r['run_id'][:8]}): {r.get('error')}", err=True)
    if not all(r["success"] for r in results):
        sys.exit(1)


@main.command("import-gym")
@click.argument("family", required=False)
@click.option("--size", default=200, show_default=True, type=click.IntRange(min=1), help="Entries to generate.")
@click.option("--seed", default=0, show_default=True)
@click.option("--list", "list_families", is_flag=True, help="List reasoning-gym's task families.")
def import_gym(family: str | None, size: int, seed: int, list_families: bool) -> None:
    """Generate reasoning-gym entries of FAMILY and ingest them (families with worked steps become traces)."""
    from tunix_rt_pipelines.synthetic.reasoning_gym_import import families, write_reasoning_gym_jsonl

    if list_families or not family:
        click.echo("\n".join(families()))
        return
    settings = _settings()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"reasoning_gym-{family}-seed{seed}-n{size}.jsonl"
        try:
            write_reasoning_gym_jsonl(family, size, seed, path)
        except ValueError as e:
            raise click.ClickException(str(e)) from e
        results = ingest_paths([path], _instance(), settings)
    _report_ingests(results, as_json=False)


@main.group()
def traces() -> None:
    """Inspect the trace store."""


@traces.command("stats")
@click.option("--json", "as_json", is_flag=True)
def traces_stats(as_json: bool) -> None:
    """Counts of traces by source, category and difficulty; batches; rejects by reason."""
    stats = _store(_settings()).stats()
    if as_json:
        _echo_json(stats)
        return
    click.echo(f"traces: {stats['traces']:,}   rejects: {stats['rejects']:,}   batches: {stats['batches']}")
    for key in ("by_source", "by_category", "by_difficulty", "rejects_by_reason"):
        if stats[key]:
            click.echo(f"{key.replace('_', ' ')}: " + ", ".join(f"{k} {v:,}" for k, v in stats[key].items()))
    click.echo(f"steps per trace: {stats['steps']}")


@main.command()
@click.option("--batch", "batch_id", help="Only this ingest batch.")
@click.option("--reason", help="Only this reason code (invalid_json, encoding, schema, too_large, truncated, after_array, id_conflict).")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def rejects(batch_id: str | None, reason: str | None, limit: int, as_json: bool) -> None:
    """Rejected records, newest first: file, line, reason, field, message."""
    rows = _store(_settings()).list_rejects(batch_id=batch_id, reason=reason, limit=limit)
    if as_json:
        _echo_json(rows)
        return
    for r in rows:
        click.echo(f"{r['file_name']}:{r['line_no']}: [{r['reason']}] {r['field']}: {r['message']}")
    if not rows:
        click.echo("no rejects")


# -- eval sets and datasets --------------------------------------------------------------------


@main.group()
def evalset() -> None:
    """Eval set tools."""


@evalset.command("validate")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def evalset_validate(file: Path, as_json: bool) -> None:
    """Check an eval set; print statistics; exit 1 with line-numbered errors if it is invalid."""
    from tunix_rt_pipelines.evalsets.validate import validate_evalset

    report = validate_evalset(file)
    stats = report.stats()
    if as_json:
        _echo_json({**stats, "errors": report.errors, "warnings": report.warnings})
    else:
        click.echo(f"{file}: {stats['items']} valid items, sha256 {stats['sha256'][:12]}")
        click.echo("sections: " + ", ".join(f"{k} {v} ({stats['section_shares'][k]:.0%})" for k, v in stats["sections"].items()))
        click.echo("categories: " + ", ".join(f"{k} {v}" for k, v in stats["categories"].items()))
        click.echo("difficulties: " + ", ".join(f"{k} {v}" for k, v in stats["difficulties"].items()))
        for w in report.warnings:
            click.echo(f"warning: {w}")
        for e in report.errors:
            click.echo(f"error: {e}", err=True)
    if not report.ok:
        sys.exit(1)


@main.group()
def datasets() -> None:
    """Dataset snapshots."""


@datasets.command("list")
@click.option("--json", "as_json", is_flag=True)
def datasets_list(as_json: bool) -> None:
    from tunix_rt_pipelines.datasets.snapshot import list_snapshots

    rows = list_snapshots(_store(_settings()))
    if as_json:
        _echo_json(rows)
        return
    for r in rows:
        click.echo(f"{r['digest'][:12]}  {r['name']:<24} train {r['n_train']:>6}  validation {r['n_validation']:>5}  {r['created_at']}")


@datasets.command("show")
@click.argument("digest")
def datasets_show(digest: str) -> None:
    """The manifest of a snapshot (a unique digest prefix is enough)."""
    from tunix_rt_pipelines.core.artifacts import ArtifactStore
    from tunix_rt_pipelines.datasets.snapshot import load_manifest

    s = _settings()
    try:
        _echo_json(load_manifest(_store(s), ArtifactStore(s.artifacts_dir), digest))
    except LookupError as e:
        raise click.ClickException(str(e)) from e


@datasets.command("export")
@click.argument("digest")
@click.option("--split", default="train", type=click.Choice(["train", "validation"]), show_default=True)
@click.option("--format", "fmt", default="rendered", show_default=True,
              type=click.Choice(["rendered", "conversational", "messages", "text"]))
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def datasets_export(digest: str, split: str, fmt: str, out: Path) -> None:
    """Write a split as JSONL for TRL (conversational, messages) or Tunix/plain trainers (rendered, text)."""
    from tunix_rt_pipelines.core.artifacts import ArtifactStore
    from tunix_rt_pipelines.datasets.export import export_split
    from tunix_rt_pipelines.datasets.snapshot import load_manifest

    s = _settings()
    artifacts = ArtifactStore(s.artifacts_dir)
    try:
        manifest = load_manifest(_store(s), artifacts, digest)
    except LookupError as e:
        raise click.ClickException(str(e)) from e
    n = export_split(manifest, artifacts, split, fmt, out)
    click.echo(f"wrote {n} records to {out}")


# -- evaluation ----------------------------------------------------------------------------------


def read_prediction_records(path: Path) -> list[dict]:
    """``{item_id, expected_answer, output}`` records (extra fields kept); errors name the file and line."""
    records = []
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise click.ClickException(f"{path}:{line_no}: invalid JSON at column {e.colno}: {e.msg}") from e
            if not isinstance(rec, dict):
                raise click.ClickException(f"{path}:{line_no}: expected a JSON object")
            if "run" in rec and len(rec) == 1:
                continue  # the header line of a predictions blob written by the predictions asset
            for field in ("item_id", "expected_answer", "output"):
                if not isinstance(rec.get(field), str):
                    raise click.ClickException(f"{path}:{line_no}: {field}: required string field is missing or not a string")
            records.append(rec)
    return records


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--judge", default="answer_correctness", show_default=True,
              type=click.Choice(["answer_correctness", "llm_judge"]))
@click.option("--judge-url", help="llm_judge: OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1.")
@click.option("--judge-model", help="llm_judge: the model name the endpoint serves.")
@click.option("--rubric", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="llm_judge: a rubric file (YAML/JSON {name, template, scale}, or the template as text).")
@click.option("--timeout", type=float, help="llm_judge: seconds per request [default: 60].")
@click.option("--api-key-env", help="llm_judge: environment variable holding the endpoint's API key.")
@click.option("--workers", type=click.IntRange(min=1),
              help="answer_correctness: processes that score a large file [default: the CPUs this process may use].")
@click.option("--json", "as_json", is_flag=True)
def rescore(file: Path, judge: str, judge_url: str | None, judge_model: str | None, rubric: Path | None,
            timeout: float | None, api_key_env: str | None, workers: int | None, as_json: bool) -> None:
    """Score predictions made anywhere: a JSONL of {item_id, expected_answer, output}; no generation."""
    from tunix_rt_pipelines.evaluation.judges import get_judge
    from tunix_rt_pipelines.evaluation.llm_judge import Rubric
    from tunix_rt_pipelines.core.cpus import usable_cpus

    llm_options = {"--judge-url": judge_url, "--judge-model": judge_model, "--rubric": rubric,
                   "--timeout": timeout, "--api-key-env": api_key_env}
    if judge == "llm_judge":
        if workers is not None:
            raise click.UsageError("--workers: only for --judge answer_correctness")
        missing = [name for name in ("--judge-url", "--judge-model") if not llm_options[name]]
        if missing:
            raise click.UsageError(f"--judge llm_judge needs {' and '.join(missing)}")
        options = {"base_url": judge_url, "model": judge_model, "api_key_env": api_key_env}
        if timeout is not None:
            options["timeout_s"] = timeout
        if rubric is not None:
            try:
                options["rubric"] = Rubric.from_file(rubric)
            except (ValueError, OSError) as e:
                raise click.BadParameter(str(e), param_hint="--rubric") from e
        try:
            scorer = get_judge(judge, **options)
        except ValueError as e:
            raise click.UsageError(str(e)) from e
    else:
        given = [name for name, value in llm_options.items() if value is not None]
        if given:
            raise click.UsageError(f"{', '.join(given)}: only for --judge llm_judge")
        scorer = get_judge(judge, workers=workers or usable_cpus())

    rows, card = scorer.score_records(read_prediction_records(file))
    if as_json:
        _echo_json({"items": rows, "scorecard": card})
        return
    for r in rows:
        line = f"{r['item_id']}: {r['outcome']:<8}"
        if judge == "llm_judge":
            line += f" score={r['score']}" if r["score"] is not None else f" reason={r['detail']['reason']}"
        else:
            line += f" extracted={r['extracted']!r} via {r['extractor']}"
        click.echo(line)
    click.echo(f"\n{card['metric']}: primary score {card['primary_score']} over {card['n_scored']} scored items "
               f"({card['n_invalid']} invalid, {card['n_unscored']} unscored); 95% interval {card['ci95']}")
    for reason, n in card["unscored_reasons"].items():
        click.echo(f"  unscored {n}: {reason}")


@main.command("leaderboard")
@click.option("--dataset", "dataset_digest", help="Only evaluations of models trained on this dataset digest.")
@click.option("--model", "model_digest", help="Only this model digest (a prefix is enough).")
@click.option("--config", "config_name", help="Only this training config (name or path of its YAML).")
@click.option("--since", type=click.DateTime(), help="Evaluated at or after (UTC).")
@click.option("--until", type=click.DateTime(), help="Evaluated at or before (UTC).")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def leaderboard_cmd(dataset_digest, model_digest, config_name, since, until, limit, as_json) -> None:  # noqa: ANN001
    """Evaluations ranked by primary score, with what produced them."""
    from datetime import UTC

    from tunix_rt_pipelines.evaluation.store import leaderboard

    if config_name:
        config_name = Path(config_name).stem
    rows = leaderboard(_store(_settings()).engine, dataset_digest=dataset_digest, model_digest=model_digest,
                       config_name=config_name, since=since and since.replace(tzinfo=UTC),
                       until=until and until.replace(tzinfo=UTC), limit=limit)
    if as_json:
        _echo_json(rows)
        return
    def pct(x: float | None) -> str:
        return "   n/a" if x is None else f"{x:6.1%}"

    click.echo(f"{'':>4} {'score':>6}  {'label':<28} {'strict':>6} {'flex':>6}  backend")
    for rank, r in enumerate(rows, start=1):
        lm = r["scorecard"].get("lm_eval") or {}
        click.echo(f"{rank:>3}. {pct(r['primary_score'])}  {r['label']:<28} {pct(lm.get('strict_match'))} "
                   f"{pct(lm.get('flexible_extract'))}  {r['backend']:<6} model {r['model_digest'][:12]}  "
                   f"dataset {r['dataset_digest'][:12] or '-':<12}  {r['created_at']:%Y-%m-%d %H:%M}")
    if not rows:
        click.echo("no evaluations yet: run `make run`")


@main.command()
@click.argument("evaluations", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True)
def compare(evaluations: tuple[str, ...], as_json: bool) -> None:
    """Compare evaluations (id prefixes or labels such as smoke_tiny/trained) item by item against the first."""
    from tunix_rt_pipelines.evaluation.compare import compare_many
    from tunix_rt_pipelines.evaluation.store import item_outcomes

    settings = _settings()
    engine = _store(settings).engine
    try:
        results = compare_many([(ref, item_outcomes(engine, ref)) for ref in evaluations])
        curves = _loss_curves(engine, settings, evaluations)
    except (LookupError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    if as_json:
        _echo_json({"comparisons": results, "loss_curves": curves})
        return
    for r in results:
        click.echo(f"{r['b']} vs {r['a']}: {r['n_paired']} paired items, accuracy {r['a_accuracy']:.1%} -> "
                   f"{r['b_accuracy']:.1%}; right->wrong {len(r['right_to_wrong'])}, wrong->right "
                   f"{len(r['wrong_to_right'])}, exact McNemar p = {r['mcnemar_p']:.4g}")
        for name, s in r["by_section"].items():
            click.echo(f"  {name:<16} n={s['n']:<4} {s['a_correct']} -> {s['b_correct']} correct (delta {s['delta']:+.1%})")
        if r["right_to_wrong"]:
            click.echo("  right->wrong: " + ", ".join(r["right_to_wrong"][:20]))
    click.echo(f"\nloss curves side by side: {curves}" if curves else "\nno loss curves: none of these models was trained here")


def _loss_curves(engine, settings: Settings, refs: tuple[str, ...]) -> str | None:  # noqa: ANN001
    """Path of a PNG (in the artefact store) of the compared models' loss curves, or None."""
    import sqlalchemy as sa

    from tunix_rt_pipelines.core.artifacts import ArtifactStore
    from tunix_rt_pipelines.core.db import evaluations
    from tunix_rt_pipelines.evaluation.loss_curves import histories_by_checkpoint
    from tunix_rt_pipelines.evaluation.store import resolve_evaluation
    from tunix_rt_pipelines.training.plots import loss_curves_png

    with engine.connect() as conn:
        rows = [conn.execute(sa.select(evaluations.c.label, evaluations.c.model_digest)
                             .where(evaluations.c.id == resolve_evaluation(engine, ref))).one() for ref in refs]
    histories = histories_by_checkpoint(_instance(), {r.model_digest for r in rows})
    runs = [(r.label, histories[r.model_digest]) for r in rows if r.model_digest in histories]
    if not runs:
        return None
    store = ArtifactStore(settings.artifacts_dir)
    return str(store.path_for(store.put_bytes(loss_curves_png(runs, title="compared runs"))))


# -- the main job and the UI -------------------------------------------------------------------


@main.command()
@click.option("--gym-family", default="gsm_symbolic", show_default=True,
              help="reasoning-gym family ingested through the inbox as part of the run ('' to skip).")
@click.option("--gym-size", default=200, show_default=True)
def run(gym_family: str, gym_size: int) -> None:
    """Materialise the whole graph on this home folder and print a summary."""
    from tunix_rt_pipelines.definitions import MAIN_JOB

    settings = _settings()
    defs = _definitions(settings)
    instance = _instance()
    click.echo(f"home: {settings.home}  (database: {settings.database_url.split(':', 1)[0]})")
    if gym_family:
        from tunix_rt_pipelines.synthetic.reasoning_gym_import import write_reasoning_gym_jsonl

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"reasoning_gym-{gym_family}-seed0-n{gym_size}.jsonl"
            write_reasoning_gym_jsonl(gym_family, gym_size, 0, path)
            results = ingest_paths([path], instance, settings)
        for r in results:
            if not r["success"]:
                raise click.ClickException(f"ingest of {r['file']} failed: {r.get('error')}")
            click.echo(f"ingested {r['file']}: read {r['read']}, accepted {r['accepted']}, "
                       f"duplicate {r['duplicate']}, rejected {r['rejected']}")
    result = defs.resolve_job_def(MAIN_JOB).execute_in_process(instance=instance, run_config=_QUIET_LOGS,
                                                                raise_on_error=False)
    click.echo(f"\nmain job: {'succeeded' if result.success else 'FAILED'} (run {result.run_id})")
    for event in result.get_asset_materialization_events():
        md = event.materialization.metadata
        shown = {k: md[k].value for k in list(md)[:6] if isinstance(md[k].value, (int, float, str))}
        click.echo(f"  {event.asset_key.to_user_string()}: " + ", ".join(f"{k}={v}" for k, v in shown.items()))
    for event in result.get_asset_materialization_events():
        key, md = event.asset_key, event.materialization.metadata
        if key.path[0] == "checkpoint":
            click.echo(f"\n{key.to_user_string()}: loss {md['final_loss'].value:.4f} "
                       f"(validation {md['final_val_loss'].value:.4f}) after {md['steps'].value} steps, "
                       f"{md['tokens_per_s'].value:,.0f} tokens/s on {md['device'].value}")
        if key.path[0] == "predictions":
            click.echo(f"{key.to_user_string()}: {md['marked_answer_accuracy'].value:.0%} of eval answers exactly right")
        if key.path[0] == "model_version":
            click.echo(f"{key.to_user_string()}: registered {md['version'].value} (gate {md['gate_id'].value[:12]} "
                       f"{'passed' if md['gate_passed'].value else 'FAILED'}); "
                       + ("champion" if md["is_champion"].value else "candidate only, champion unchanged"))
    for check in result.get_asset_check_evaluations():
        if not check.passed:
            click.echo(f"gate check {check.check_name} on {check.asset_key.to_user_string()} FAILED: "
                       f"{check.metadata['summary'].value}", err=True)
    stats = _store(settings).stats()
    click.echo(f"\ntrace store: {stats['traces']:,} traces, {stats['rejects']:,} rejects; "
               f"by source: {stats['by_source']}")
    click.echo("\nleaderboard (answer_correctness@v1 on the shipped eval set):")
    click.get_current_context().invoke(leaderboard_cmd, limit=10)
    click.echo(f"open the UI: make ui   (or: DAGSTER_HOME={settings.dagster_home} dagster dev)")
    if not result.success:
        sys.exit(1)


@main.command()
@click.option("--port", default=3000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="The open-source webserver has no authentication: keep it on loopback unless fronted by one.")
def ui(port: int, host: str) -> None:
    """Start Dagster's webserver and daemon (`dagster dev`) on the home folder."""
    _settings()
    cmd = [sys.executable, "-m", "dagster", "dev", "-w", str(REPO_ROOT / "workspace.yaml"), "-h", host, "-p", str(port)]
    click.echo(" ".join(cmd))
    raise SystemExit(subprocess.call(cmd, cwd=REPO_ROOT))


def _add_registry_commands() -> None:
    from tunix_rt_pipelines.registry.cli import COMMANDS
    from tunix_rt_pipelines.tuning.cli import sweep

    for command in (*COMMANDS, sweep):
        main.add_command(command)


_add_registry_commands()

if __name__ == "__main__":
    main()
