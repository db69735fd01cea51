"""Dataset snapshots: a spec selects traces from the store; the result is immutable and content-addressed.

The digest is the sha256 of the spec, the schema version, the template hash and the sorted
train and validation trace ids. Same spec over the same traces gives the same digest, which
the Dagster asset uses as its data version: an unchanged dataset does not retrain anything.

Selection is deterministic without being order-dependent: traces are ranked by
``sha256(seed:content_hash)`` and the first ``size`` kept; a trace's split is decided by
its own hash, so adding traces to the store never moves an existing one across the split.

Files (Parquet per split, rendered SFT pairs as JSONL) and the manifest go to the
artefact store; the ``datasets`` table indexes snapshots by digest.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from tunix_rt_pipelines.core.artifacts import ArtifactStore
from tunix_rt_pipelines.core.db import datasets, ingest_batches, traces
from tunix_rt_pipelines.datasets.templates import SftTemplate, get_template
from tunix_rt_pipelines.traces.schema import SCHEMA_VERSION
from tunix_rt_pipelines.traces.store import TraceStore, utcnow

MANIFEST_FORMAT = "tunix-rt-dataset/1"


class DatasetSpec(BaseModel):
    """What a dataset is made of. Empty filter lists mean 'no filter'."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,127}$")]  # human name; versions are digests
    sources: list[str] = []  # metadata.source values to include
    categories: list[str] = []  # metadata.category values to include
    difficulties: list[Literal["easy", "medium", "hard"]] = []
    tags_any: list[str] = []  # keep traces having at least one of these tags
    min_steps: Annotated[int, Field(ge=1)] = 1
    max_steps: Annotated[int, Field(ge=1)] | None = None
    max_chars: Annotated[int, Field(ge=1)] | None = None  # prompt + steps + answer
    size: Annotated[int, Field(ge=1)] | None = None  # keep at most this many (seeded sample)
    validation_fraction: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1
    seed: int = 0  # drives the sample and the split
    template: str = "plain@v1"  # SFT template key, see datasets.templates

    # One canonical form, so that specs selecting the same traces are equal and share a digest.
    @field_validator("sources", "categories", "tags_any")
    @classmethod
    def _as_stored_labels(cls, values: list[str]) -> list[str]:
        # Stored labels are stripped and lower-cased (traces.schema); ``Arithmetic`` selected nothing.
        return sorted({v.strip().lower() for v in values})

    @field_validator("difficulties")
    @classmethod
    def _sorted(cls, values: list[str]) -> list[str]:
        return sorted(set(values))

    @field_validator("template")
    @classmethod
    def _template_key(cls, key: str) -> str:
        return get_template(key).key  # "gemma" is "gemma@v1"; an unknown template fails here


@dataclass(frozen=True)
class Snapshot:
    digest: str
    manifest_sha256: str
    manifest: dict
    created: bool  # False when the same snapshot already existed


def _rank(seed: int, content_hash: str, salt: str) -> int:
    return int(hashlib.sha256(f"{salt}:{seed}:{content_hash}".encode()).hexdigest()[:16], 16)


def select_traces(store: TraceStore, spec: DatasetSpec) -> list[dict]:
    where = [traces.c.n_steps >= spec.min_steps]
    if spec.sources:
        where.append(traces.c.source.in_(spec.sources))
    if spec.categories:
        where.append(traces.c.category.in_(spec.categories))
    if spec.difficulties:
        where.append(traces.c.difficulty.in_(spec.difficulties))
    if spec.max_steps is not None:
        where.append(traces.c.n_steps <= spec.max_steps)
    if spec.max_chars is not None:
        where.append(traces.c.n_chars <= spec.max_chars)
    rows = store.iter_traces(where)
    if spec.tags_any:
        wanted = set(spec.tags_any)
        rows = [r for r in rows if wanted & set(r["tags"])]
    rows.sort(key=lambda r: _rank(spec.seed, r["content_hash"], "sample"))
    if spec.size is not None:
        rows = rows[: spec.size]
    return rows


def split_of(spec: DatasetSpec, content_hash: str) -> str:
    return "validation" if _rank(spec.seed, content_hash, "split") / 2**64 < spec.validation_fraction else "train"


def dataset_digest(spec: DatasetSpec, template: SftTemplate, train_ids: list[str], val_ids: list[str]) -> str:
    canonical = json.dumps(
        {
            "spec": spec.model_dump(mode="json"),
            "schema_version": SCHEMA_VERSION,
            "template_hash": template.hash,
            "train": sorted(train_ids),
            "validation": sorted(val_ids),
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _ids_digest(hashes: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(hashes)).encode()).hexdigest()


def _lengths(values: list[int]) -> dict:
    if not values:
        return {"min": 0, "mean": 0.0, "p50": 0, "p95": 0, "max": 0}
    ordered = sorted(values)
    return {
        "min": ordered[0],
        "mean": round(statistics.fmean(ordered), 2),
        "p50": ordered[len(ordered) // 2],
        "p95": ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))],
        "max": ordered[-1],
    }


def _count(rows: list[dict], key: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        out[r[key]] = out.get(r[key], 0) + 1
    return dict(sorted(out.items()))


_PARQUET_SCHEMA = pa.schema(
    [
        ("trace_id", pa.string()),
        ("content_hash", pa.string()),
        ("prompt", pa.string()),
        ("steps", pa.list_(pa.string())),
        ("final_answer", pa.string()),
        ("source", pa.string()),
        ("category", pa.string()),
        ("difficulty", pa.string()),
        ("tags", pa.list_(pa.string())),
        ("sft_prompt", pa.string()),
        ("sft_completion", pa.string()),
    ]
)


def _records(rows: list[dict], template: SftTemplate) -> list[dict]:
    return [
        {
            "trace_id": r["trace_id"],
            "content_hash": r["content_hash"],
            "prompt": r["prompt"],
            "steps": list(r["steps"]),
            "final_answer": r["final_answer"],
            "source": r["source"],
            "category": r["category"],
            "difficulty": r["difficulty"],
            "tags": list(r["tags"]),
            "sft_prompt": template.render_prompt(r["prompt"]),
            "sft_completion": template.render_completion(r["steps"], r["final_answer"]),
        }
        for r in rows
    ]


def build_snapshot(
    store: TraceStore, artifacts: ArtifactStore, spec: DatasetSpec, *, run_id: str | None = None
) -> Snapshot:
    """Select, split, write and register the snapshot for ``spec``; idempotent by digest."""
    template = get_template(spec.template)
    rows = select_traces(store, spec)
    if not rows:
        raise ValueError(
            f"dataset {spec.name!r} selects no traces (sources={spec.sources or 'any'}, "
            f"categories={spec.categories or 'any'}); ingest traces or widen the spec"
        )
    train = [r for r in rows if split_of(spec, r["content_hash"]) == "train"]
    val = [r for r in rows if split_of(spec, r["content_hash"]) == "validation"]
    if not train:
        raise ValueError(
            f"dataset {spec.name!r}: all {len(rows)} selected traces fell in the validation split "
            f"(validation_fraction={spec.validation_fraction}); lower it or select more traces"
        )
    train.sort(key=lambda r: r["content_hash"])
    val.sort(key=lambda r: r["content_hash"])
    digest = dataset_digest(spec, template, [r["content_hash"] for r in train], [r["content_hash"] for r in val])

    files: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for split, part in (("train", train), ("validation", val)):
            recs = _records(part, template)
            pq_path = Path(tmp) / f"{split}.parquet"
            pq.write_table(pa.Table.from_pylist(recs, schema=_PARQUET_SCHEMA), pq_path, compression="zstd")
            jsonl_path = Path(tmp) / f"sft_{split}.jsonl"
            with jsonl_path.open("w", encoding="utf-8") as f:
                for rec in recs:
                    f.write(json.dumps({"prompt": rec["sft_prompt"], "completion": rec["sft_completion"]}, ensure_ascii=False))
                    f.write("\n")
            for path in (pq_path, jsonl_path):
                files[path.name] = {
                    "sha256": artifacts.put_file(path),
                    "bytes": path.stat().st_size,
                    "rows": len(recs),
                }

    batch_ids = sorted({r["batch_id"] for r in rows})
    with store.engine.connect() as conn:
        parents = [
            {"kind": "ingest_batch", "batch_id": b["id"], "file": b["file_name"], "file_sha256": b["file_sha256"]}
            for b in conn.execute(
                sa.select(ingest_batches.c.id, ingest_batches.c.file_name, ingest_batches.c.file_sha256)
                .where(ingest_batches.c.id.in_(batch_ids))
                .order_by(ingest_batches.c.id)
            ).mappings()
        ]
    all_ids = [r["content_hash"] for r in rows]
    manifest = {
        "format": MANIFEST_FORMAT,
        "name": spec.name,
        "digest": digest,
        "spec": spec.model_dump(mode="json"),
        "schema_version": SCHEMA_VERSION,
        "template": {"key": template.key, "hash": template.hash},
        "trace_ids_digest": _ids_digest(all_ids),
        "counts": {
            "train": len(train),
            "validation": len(val),
            "by_source": _count(rows, "source"),
            "by_category": _count(rows, "category"),
            "by_difficulty": _count(rows, "difficulty"),
        },
        "lengths": {
            "prompt_chars": _lengths([len(r["prompt"]) for r in rows]),
            "completion_chars": _lengths(
                [len(template.render_completion(r["steps"], r["final_answer"])) for r in rows]
            ),
            "steps": _lengths([r["n_steps"] for r in rows]),
        },
        "files": files,
        "lineage": {"trace_store": store.dialect, "parents": parents},
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False).encode()
    manifest_sha = artifacts.put_bytes(manifest_bytes)

    with store.engine.begin() as conn:
        exists = conn.execute(sa.select(datasets.c.digest).where(datasets.c.digest == digest)).first()
        if exists is None:
            conn.execute(
                datasets.insert().values(
                    digest=digest, name=spec.name, spec=spec.model_dump(mode="json"),
                    manifest_sha256=manifest_sha, trace_ids_digest=manifest["trace_ids_digest"],
                    n_train=len(train), n_validation=len(val), run_id=run_id, created_at=utcnow(),
                )
            )
    return Snapshot(digest=digest, manifest_sha256=manifest_sha, manifest=manifest, created=exists is None)


def load_manifest(store: TraceStore, artifacts: ArtifactStore, digest_prefix: str) -> dict:
    """The manifest of the snapshot whose digest starts with ``digest_prefix`` (unique prefix)."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(datasets.c.digest, datasets.c.manifest_sha256).where(datasets.c.digest.like(f"{digest_prefix}%"))
        ).all()
    if not rows:
        raise LookupError(f"no dataset snapshot with digest {digest_prefix!r}")
    if len(rows) > 1:
        raise LookupError(f"digest prefix {digest_prefix!r} is ambiguous ({len(rows)} snapshots)")
    return json.loads(artifacts.get_bytes(rows[0][1]))


def list_snapshots(store: TraceStore) -> list[dict]:
    q = sa.select(
        datasets.c.digest, datasets.c.name, datasets.c.n_train, datasets.c.n_validation, datasets.c.created_at
    ).order_by(datasets.c.created_at.desc())
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]


def verify_snapshot(manifest: dict, artifacts: ArtifactStore) -> list[str]:
    """Problems found by re-reading the stored files (empty when the snapshot is sound)."""
    import io

    problems = []
    ids: dict[str, set[str]] = {}
    for split in ("train", "validation"):
        entry = manifest["files"][f"{split}.parquet"]
        try:
            table = pq.read_table(io.BytesIO(artifacts.get_bytes(entry["sha256"])), columns=["content_hash"])
        except Exception as e:  # a corrupt or tampered blob
            problems.append(f"{split}.parquet: {e}")
            continue
        ids[split] = set(table.column("content_hash").to_pylist())
        if len(ids[split]) != manifest["counts"][split]:
            problems.append(f"{split}: {len(ids[split])} distinct traces, manifest says {manifest['counts'][split]}")
    if len(ids) == 2:
        overlap = ids["train"] & ids["validation"]
        if overlap:
            problems.append(f"{len(overlap)} traces are in both train and validation")
        if _ids_digest(sorted(ids["train"] | ids["validation"])) != manifest["trace_ids_digest"]:
            problems.append("trace ids do not match the manifest's trace_ids_digest")
    return problems
