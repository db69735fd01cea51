"""``tunix-rt package VERSION``: the submission bundle of one model version, from stored records only.

Everything in the archive is read back from the registry, the evaluation tables and the
content-addressed store, never from the working tree, so the bundle describes exactly the
version it names:

    config/<name>.yaml        the training config the version was trained with
    MODEL_CARD.md             generated from provenance, metrics, scorecard and gate decision
    eval_summary.json         the evaluation record, its scorecard and the gate decision
    item_scores.jsonl         per-item outcome, extracted answer and extractor
    run_manifest.json         the version record: metrics, provenance chain, aliases
    manifests/checkpoint.json the model folder's file manifest (sha256 per file)
    manifests/dataset.json    the training dataset's manifest
    evalset/eval_set.jsonl    the eval set the version was scored on
    loss_curve.png            when the training run stored one
    model/...                 the weights, only with ``with_weights``
    SHA256SUMS                sha256 of every file above

The zip is deterministic: sorted entries, fixed timestamps and permissions, so packaging the
same version twice gives the same bytes (and the same archive sha256).
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import sqlalchemy as sa
import yaml

from tunix_rt_pipelines.core.artifacts import ArtifactStore
from tunix_rt_pipelines.core.db import datasets, evaluations
from tunix_rt_pipelines.evaluation.store import item_outcomes
from tunix_rt_pipelines.registry.gates import gate_record
from tunix_rt_pipelines.registry.versions import ModelVersion, get_version, list_versions

_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold


def _json(obj: object) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, default=str, ensure_ascii=False) + "\n").encode()


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def model_card(version: ModelVersion, aliases: list[str], evaluation: dict, gate: dict | None) -> str:
    card, p, m, cfg = evaluation["scorecard"], version.provenance, version.metrics, version.config
    ci = card.get("ci95") or [None, None]
    lines = [
        f"# {version.label}" + (f" ({', '.join(aliases)})" if aliases else ""),
        "",
        f"A {cfg.get('model', {}).get('family', '?')} model fine-tuned with tunix-rt-pipelines to answer "
        "with step-by-step reasoning and a final `#### answer` line. Research artefact: check the scores "
        "below against your own eval set before relying on it.",
        "",
        "## Evaluation",
        f"- Judge: `{evaluation['judge']}` on eval set `{evaluation['evalset_sha256'][:12]}` "
        f"({card['n_items']} items, {card['n_scored']} scored, {card['n_invalid']} without an extractable "
        f"answer, {card['n_unscored']} unscored)",
        f"- Primary score: **{_pct(card['primary_score'])}** (95% Wilson interval {_pct(ci[0])}–{_pct(ci[1])})",
        f"- Trace structure: {m.get('trace_structure')}",
        "",
        "| section | items | correct | score |",
        "|---|---|---|---|",
        *(f"| {name} | {s['n']} | {s['correct']} | {_pct(s['mean'])} |" for name, s in card["by_section"].items()),
        "",
        "## Training",
        f"- Backend `{cfg.get('backend')}`, {cfg.get('steps')} steps, batch {cfg.get('batch_size')}, "
        f"sequence length {cfg.get('seq_len')}, learning rate {cfg.get('learning_rate')}",
        f"- Final training loss {m.get('final_loss')}, validation loss {m.get('final_val_loss')}",
        f"- Dataset `{p['dataset_name']}` digest `{p['dataset_digest'][:12]}` "
        f"(trace ids digest `{p['trace_ids_digest'][:12]}`)",
        "",
        "## Gate",
    ]
    if gate is None:
        lines.append("- No gate decision is recorded for this version.")
    else:
        lines.append(f"- Decision `{gate['id'][:12]}`: **{'passed' if gate['passed'] else 'failed'}**")
        lines += [f"- {c['name']}: {'ok' if c['passed'] else 'FAILED'} — {c['reason']}" for c in gate["checks"]]
    lines += ["", "## Provenance", "| field | value |", "|---|---|",
              *(f"| {k} | `{v}` |" for k, v in sorted(p.items()) if v is not None), ""]
    return "\n".join(lines)


def build_package(engine: sa.Engine, artifacts: ArtifactStore, ref: str, out_dir: Path, *,
                  with_weights: bool = False) -> Path:
    """Write ``out_dir/tunix_rt_<name>_v<N>_<checkpoint12>.zip`` for version ``ref``; returns its path."""
    version = get_version(engine, ref)
    if version.evaluation_id is None:
        raise ValueError(f"{version.label} has no evaluation: nothing to package the scores from")
    with engine.connect() as conn:
        evaluation = dict(conn.execute(sa.select(evaluations).where(evaluations.c.id == version.evaluation_id))
                          .mappings().one())
        dataset = conn.execute(sa.select(datasets).where(datasets.c.digest == version.provenance["dataset_digest"])
                               ).mappings().one()
    aliases = next(v["aliases"] for v in list_versions(engine, version.name) if v["id"] == version.id)
    gate_id = version.provenance.get("gate_id")
    gate = gate_record(engine, gate_id) if gate_id else None
    items = sorted(item_outcomes(engine, version.evaluation_id).values(), key=lambda r: r["item_id"])
    checkpoint_manifest = json.loads(artifacts.get_bytes(version.checkpoint_digest))

    files: dict[str, bytes] = {
        f"config/{version.name}.yaml": yaml.safe_dump(version.config, sort_keys=True).encode(),
        "MODEL_CARD.md": model_card(version, aliases, evaluation, gate).encode(),
        "eval_summary.json": _json({"evaluation": {k: v for k, v in evaluation.items() if k != "scorecard"},
                                    "scorecard": evaluation["scorecard"], "gate": gate}),
        "item_scores.jsonl": b"".join(json.dumps({k: r[k] for k in ("item_id", "outcome", "extracted", "extractor",
                                                                    "section", "category")}, sort_keys=True).encode()
                                      + b"\n" for r in items),
        "run_manifest.json": _json({**version.as_dict(), "aliases": aliases}),
        "manifests/checkpoint.json": _json(checkpoint_manifest),
        "manifests/dataset.json": artifacts.get_bytes(dataset["manifest_sha256"]),
        "evalset/eval_set.jsonl": artifacts.get_bytes(evaluation["evalset_sha256"]),
    }
    if curve := version.provenance.get("loss_curve_sha256"):
        files["loss_curve.png"] = artifacts.get_bytes(curve)
    if with_weights:
        for rel, entry in checkpoint_manifest["files"].items():
            files[f"model/{rel}"] = artifacts.get_bytes(entry["sha256"])
    files["SHA256SUMS"] = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n"
                                  for name, data in sorted(files.items())).encode()

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"tunix_rt_{version.name}_v{version.version}_{version.checkpoint_digest[:12]}.zip"
    tmp = target.with_name(f".{target.name}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, files[name])
    tmp.replace(target)
    return target
