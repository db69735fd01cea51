"""Ingestion as assets: one dynamic partition per inbox file, and the sensor that adds them."""

# No `from __future__ import annotations`: Dagster reads annotations at runtime.
import json

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    DagsterRunStatus,
    DataVersion,
    DefaultSensorStatus,
    DynamicPartitionsDefinition,
    Failure,
    MaterializeResult,
    MetadataValue,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    TableColumn,
    TableRecord,
    TableSchema,
    asset,
    define_asset_job,
    sensor,
)

from tunix_rt_pipelines.core.resources import InboxResource, TraceStoreResource
from tunix_rt_pipelines.traces.inbox import scan
from tunix_rt_pipelines.traces.ingest import ingest_file
from tunix_rt_pipelines.traces.store import StoreError

inbox_files = DynamicPartitionsDefinition(name="inbox_files")

COUNTS_CHECK = "counts_add_up"


@asset(
    partitions_def=inbox_files,
    group_name="traces",
    kinds={"python", "sql"},
    code_version="1",
    check_specs=[AssetCheckSpec(COUNTS_CHECK, asset="ingested_trace_file", blocking=True,
                                description="read = accepted + duplicate + rejected, and the stored rows agree")],
    description="One inbox file validated, deduplicated and stored; every rejected record kept with its reason.",
)
def ingested_trace_file(
    context: AssetExecutionContext, trace_store: TraceStoreResource, inbox: InboxResource
) -> MaterializeResult:
    name = context.partition_key
    path = inbox.file(name)
    if not path.is_file():
        raise Failure(f"inbox file {name!r} is missing from {inbox.folder}; it was removed after being queued")
    store = trace_store.get_store()
    size = max(path.stat().st_size, 1)
    next_report = [0.1]

    def progress(batch, offset: int) -> None:  # noqa: ANN001
        if offset / size >= next_report[0]:
            context.log.info(
                f"{name}: {offset / size:.0%} ({batch.n_read:,} records: {batch.n_accepted:,} accepted, "
                f"{batch.n_duplicate:,} duplicate, {batch.n_rejected:,} rejected)"
            )
            next_report[0] = int(offset / size * 10 + 1) / 10

    def waiting(batch: dict) -> None:
        context.log.info(
            f"{name}: another ingest of the same content is running (run {batch['run_id']}, process "
            f"{batch['holder']}, {batch['n_read']:,} records so far); waiting for it to finish"
        )

    try:
        report = ingest_file(store, path, file_name=name, run_id=context.run_id, progress=progress, on_wait=waiting)
    except StoreError as e:
        raise Failure(str(e)) from e
    if report.resumed:
        context.log.info(f"{name}: resumed an interrupted ingest of the same content (batch {report.batch_id})")
    stored = store.count_rows(report.batch_id)
    passed = report.adds_up and stored == {"traces": report.accepted, "rejects": report.rejected}
    reasons = store.list_rejects(batch_id=report.batch_id, limit=10)
    sample = store.sample(report.batch_id, 5)
    metadata = {
        "read": report.read,
        "accepted": report.accepted,
        "duplicate": report.duplicate,
        "rejected": report.rejected,
        "file_sha256": report.file_sha256,
        "file_bytes": report.file_bytes,
        "batch_id": report.batch_id,
        "store": trace_store.backend,
        "top_reject_reasons": MetadataValue.md(_reasons_md(store.reject_reasons(report.batch_id), reasons)),
        "sample": MetadataValue.table(
            records=[
                TableRecord({"trace_id": s["trace_id"], "category": s["category"], "steps": s["n_steps"],
                             "prompt": s["prompt"][:120], "answer": s["final_answer"][:40]})
                for s in sample
            ],
            schema=TableSchema(columns=[
                TableColumn("trace_id"), TableColumn("category"), TableColumn("steps", "int"),
                TableColumn("prompt"), TableColumn("answer"),
            ]),
        ),
    }
    return MaterializeResult(
        metadata=metadata,
        data_version=DataVersion(report.file_sha256),
        check_results=[
            AssetCheckResult(
                check_name=COUNTS_CHECK,
                passed=passed,
                severity=AssetCheckSeverity.ERROR,
                metadata={"counts": MetadataValue.json(report.as_dict()), "stored_rows": MetadataValue.json(stored)},
            )
        ],
    )


def _reasons_md(counts, recent: list[dict]) -> str:  # noqa: ANN001
    if not counts and not recent:
        return "No rejects."
    lines = ["| reason | count |", "|---|---|"] + [f"| {r} | {n} |" for r, n in counts.most_common(10)]
    if recent:
        lines += ["", "Latest rejects:", ""]
        lines += [f"- `{r['file_name']}:{r['line_no']}` **{r['reason']}** {r['field']}: {r['message'][:200]}" for r in recent]
    return "\n".join(lines)


ingest_job = define_asset_job(
    "ingest_trace_files",
    selection=[ingested_trace_file],
    partitions_def=inbox_files,
    description="Ingest one inbox file (one partition).",
)


_IN_PROGRESS = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING,
                DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]


@sensor(job=ingest_job, minimum_interval_seconds=15, default_status=DefaultSensorStatus.RUNNING)
def inbox_sensor(
    context: SensorEvaluationContext, inbox: InboxResource, trace_store: TraceStoreResource
) -> SensorResult:
    """Requests an ingest run for each settled inbox file whose content has not been ingested under its name.

    New names become partitions; a file overwritten with new content is ingested again as a new
    batch of its partition. The cursor keeps each handled file's size and modification time, so
    a file is hashed only when it changes (see ``traces.inbox.scan``). A file with an ingest run in
    progress (the CLI's own, which has not opened its batch yet) waits for a later tick.
    """
    in_progress = context.instance.get_run_records(RunsFilter(job_name=ingest_job.name, statuses=_IN_PROGRESS))
    busy = frozenset(r.dagster_run.tags.get("dagster/partition", "") for r in in_progress)
    found = scan(inbox.folder, json.loads(context.cursor) if context.cursor else {}, trace_store.get_store().has_batch,
                 busy=busy)
    for old, new in found.renamed:
        context.log.info(f"inbox: renamed {old!r} to {new!r} (partition keys take letters, digits, '.', '_', '-')")
    for name, error in found.problems:
        context.log.warning(f"inbox: skipped {name!r} this time: {error}")
    known = set(context.instance.get_dynamic_partitions(inbox_files.name))
    new_keys = [name for name, _ in found.ingest if name not in known]
    return SensorResult(
        run_requests=[RunRequest(partition_key=name, run_key=f"{name}:{sha}") for name, sha in found.ingest],
        dynamic_partitions_requests=[inbox_files.build_add_request(new_keys)] if new_keys else [],
        cursor=json.dumps(found.seen, sort_keys=True),
    )
