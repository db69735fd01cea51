"""Evaluation benchmark: scoring throughput of ``answer_correctness@v1``, and store latency of the
leaderboard and ``compare`` over 10k stored evaluations.

Part 1, scoring (``--items``, 1M). Prediction strings shaped like real model output (see
``predictions.py``: mostly steps then ``#### N``, also ``Answer:``, ``\\boxed{}``, think blocks,
decimals/fractions/separators/currency, no answer, long rambling), seeded, written once to
``--data-dir`` (``/tmp/tunix_rt_bench_eval``) as JSONL. Modes, each in its own process so peak RSS
is its own:

* ``ours``: ``evaluation.answers.score_items`` over all records (three passes: the first cold,
  then warm; all must be identical: asserted), and ``score_item`` called per item. Also per shape.
  Each pass also runs ``score_items(workers=W)`` (W: the CPUs this process may use; forked
  workers, see ``evaluation/parallel.py``), the order alternating. Then the rescore path,
  ``evaluate.score_records`` (answer and trace-structure scores, rows, scorecard: what
  ``tunix-rt rescore`` and the evaluation asset run) on the first ``--rescore-items``, with 1 and W.
* ``lm-eval`` (the peer, if ``lm-eval`` is installed in ``--lmeval-python``'s environment, by
  default ``/tmp/lmeval-venv``): ``peer_lm_eval.py`` there, lm-eval's own GSM8K ``strict-match`` and
  ``flexible-extract`` filter pipelines and its ``exact_match`` metric with gsm8k.yaml's arguments,
  as the harness runs them (metric per item) and in one vectorised call. Its per-item strict and
  flexible results are checked against our ``strict_match``/``flexible_match`` (our re-implementation).
* ``plain-regex``: the last number (``re.findall``) compared as a string, commas removed: the
  floor, always run.

Not the same work: ours extracts with think-block removal and three markers, normalises numbers
exactly (fractions, decimals, currency, separators, percent, Unicode minus) and *also* computes
lm-eval's strict and flexible matches on every item; lm-eval's pipeline does two regex searches
and string equality; the plain regex one search.

Part 2, store (``--evaluations``, 10k × ``--items-per-eval``, 100). A fresh schema in PostgreSQL
(``--pg-url``; ``bench_eval_<hex>``, dropped at the end unless ``--keep``), ``migrate(engine)``,
the first ``--save-calls`` evaluations stored with ``store.save_evaluation`` (timed per call),
the rest with ``COPY``, then ``VACUUM ANALYZE``. Warm latencies, ``--reps`` (20) repetitions after
two warm-ups, the reference rotated over ``--reps`` different evaluations: ``leaderboard`` top-50 and
top-200 unfiltered and filtered (config, dataset digest, model digest prefix, date range, eval
set, combined), ``item_outcomes`` (by id, id prefix, label), ``item_outcomes`` + ``compare_many`` of
2 and 5 evaluations (by id and by label, as the CLI does), and ``compare_many`` alone. Every
statement of every operation is EXPLAINed (ANALYZE, BUFFERS); operations over ``--slow-ms`` (50)
print their plans. The same on SQLite (a temp file, executemany) unless ``--skip-sqlite``; the
CLI end to end (``tunix-rt leaderboard --json``, ``tunix-rt compare A B --json``, and ``--help``
for the start-up floor) unless ``--skip-cli``.

Usage::

    .venv/bin/python bench/eval/run.py
    .venv/bin/python bench/eval/run.py --items 200000 --evaluations 2000 --skip-cli
    .venv/bin/python bench/eval/run.py --skip-store           # scoring only

Results: ``bench/eval/results/eval_bench.json`` (git-ignored).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
from predictions import SHAPES, make_predictions, read_jsonl, write_jsonl  # noqa: E402

PG_URL = os.environ.get("TUNIX_RT_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
LMEVAL_PYTHON = "/tmp/lmeval-venv/bin/python"
TARGET_ITEMS_PER_S = 200_000


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


# --- part 1: scoring ------------------------------------------------------------------------------


def score_digest(scores) -> str:  # noqa: ANN001
    h = hashlib.sha256()
    for s in scores:
        h.update(f"{s.outcome}\x1f{s.extracted}\x1f{s.extractor}\x1f{s.strict_match:d}{s.flexible_match:d}\x1e".encode())
    return h.hexdigest()


def child_ours(path: Path, bits_path: Path, passes: int, rescore_items: int) -> dict:
    from collections import Counter

    from tunix_rt_pipelines.evaluation.answers import score_item, score_items
    from tunix_rt_pipelines.evaluation.evaluate import score_records
    from tunix_rt_pipelines.core.cpus import usable_cpus

    outputs, expected, shapes = read_jsonl(path, with_shape=True)
    n = len(outputs)
    records = [{"output": o, "expected_answer": e} for o, e in zip(outputs, expected)]
    rss_loaded = rss_mb()
    workers = usable_cpus()
    # Each pass scores everything in one process and with all CPUs' workers, the order
    # alternating (the first pass starts in one process, cold), so the VM's drift falls on both.
    runs, runs_workers = [], []
    first = None
    counts = [1, workers] if workers > 1 else [1]
    for p in range(passes):
        for w in (counts if p % 2 == 0 else counts[::-1]):
            t0 = time.perf_counter()
            scores = score_items(records, workers=w)
            dt = time.perf_counter() - t0
            (runs if w == 1 else runs_workers).append(dt)
            log(f"  ours score_items pass {p + 1}, {w} process(es): {n / dt:,.0f} items/s")
            if first is None:
                first = scores
            else:
                assert scores == first, "score_items is not deterministic: two passes over the same strings differ"
            del scores
    # The path `tunix-rt rescore` and the evaluation asset take: answer and trace-structure scores,
    # a row per item, the scorecard; on the first rescore_items records.
    k = min(rescore_items, n)
    rescore_records = [{"item_id": str(i), **records[i]} for i in range(k)]
    rescore = {"items": k, "workers": workers}
    cards = []
    for w in counts:
        t0 = time.perf_counter()
        cards.append(score_records(rescore_records, workers=w))
        key = "items_per_s_workers" if w > 1 else "items_per_s_one_process"
        rescore[key] = k / (time.perf_counter() - t0)
        log(f"  rescore path (score_records), {w} process(es): {rescore[key]:,.0f} items/s")
    assert all(c == cards[0] for c in cards), "score_records differs with the number of workers"
    del cards, rescore_records
    t0 = time.perf_counter()
    per_item = [score_item(o, e) for o, e in zip(outputs, expected)]
    per_item_s = time.perf_counter() - t0
    log(f"  ours score_item per item: {n / per_item_s:,.0f} items/s")
    assert per_item == first, "score_item per item differs from score_items"
    del per_item
    # per shape (one pass each, warm)
    by_shape = {}
    for shape, _ in SHAPES:
        idx = [i for i, s in enumerate(shapes) if s == shape]
        recs = [records[i] for i in idx]
        t0 = time.perf_counter()
        score_items(recs)
        dt = time.perf_counter() - t0
        by_shape[shape] = {"items": len(idx), "items_per_s": len(idx) / dt if dt else None,
                           "mean_chars": sum(len(outputs[i]) for i in idx) / max(1, len(idx))}
    bits_path.write_bytes(bytes(48 + s.strict_match + 2 * s.flexible_match for s in first))
    outcomes = Counter(s.outcome for s in first)
    extractors = Counter(s.extractor for s in first)
    return {
        "items": n,
        "seconds_by_pass": runs,
        "items_per_s_cold": n / runs[0],
        "items_per_s_best": n / min(runs),
        "items_per_s_median": n / statistics.median(runs),
        "workers": workers,
        "seconds_by_pass_workers": runs_workers,
        "items_per_s_workers_best": n / min(runs_workers) if runs_workers else None,
        "items_per_s_workers_median": n / statistics.median(runs_workers) if runs_workers else None,
        "rescore_path": rescore,
        "peak_rss_worker_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "score_item_loop_items_per_s": n / per_item_s,
        "by_shape": by_shape,
        "outcomes": dict(outcomes),
        "extractors": dict(extractors),
        "accuracy": outcomes["correct"] / n,
        "strict_match_mean": sum(s.strict_match for s in first) / n,
        "flexible_match_mean": sum(s.flexible_match for s in first) / n,
        "digest": score_digest(first),
        "digest_first_100k": score_digest(first[:100_000]),
        "deterministic": True,  # asserted above: every pass and the per-item loop gave identical scores
        "rss_after_load_mb": rss_loaded,
        "peak_rss_mb": peak_rss_mb(),
    }


NUMBER = re.compile(r"-?[0-9][0-9,]*(?:\.[0-9]+)?")


def child_plain_regex(path: Path) -> dict:
    outputs, expected = read_jsonl(path)
    n = len(outputs)
    rss_loaded = rss_mb()
    findall = NUMBER.findall

    def score(o: str, e: str) -> bool:
        m = findall(o)
        return bool(m) and m[-1].replace(",", "") == e.replace(",", "")

    runs = []
    for _ in range(2):
        t0 = time.perf_counter()
        res = [score(o, e) for o, e in zip(outputs, expected)]
        runs.append(time.perf_counter() - t0)
    return {"items": n, "seconds_by_pass": runs, "items_per_s_best": n / min(runs), "accuracy": sum(res) / n,
            "rss_after_load_mb": rss_loaded, "peak_rss_mb": peak_rss_mb()}


def run_child(args: list[str], python: str = sys.executable, script: Path | None = None) -> dict:
    proc = subprocess.run([python, str(script or Path(__file__)), *args], stdout=subprocess.PIPE, text=True,
                          check=False, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"child {args[:2]} failed with exit status {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def lmeval_available(python: str) -> str | None:
    """lm-eval's version in ``python``'s environment, or None."""
    if not Path(python).exists():
        return None
    proc = subprocess.run([python, "-c", "from importlib.metadata import version; print(version('lm_eval'))"],
                          capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def part_scoring(args: argparse.Namespace) -> dict:
    args.data_dir.mkdir(parents=True, exist_ok=True)
    path = args.data_dir / f"predictions_{args.items}_seed{args.seed}.jsonl"
    t0 = time.perf_counter()
    outputs, expected, shapes = make_predictions(args.items, seed=args.seed)
    gen_s = time.perf_counter() - t0
    if not path.exists():
        write_jsonl(path, outputs, expected, shapes)
    log(f"scoring: {args.items:,} predictions generated in {gen_s:.1f}s, mean {sum(map(len, outputs)) / len(outputs):.0f} "
        f"chars, file {path} ({path.stat().st_size / 1e6:.0f} MB)")
    res: dict = {"file": str(path), "file_bytes": path.stat().st_size, "generate_seconds": gen_s,
                 "mean_chars": sum(map(len, outputs)) / len(outputs),
                 "shape_shares": {s: shapes.count(s) / len(shapes) for s, _ in SHAPES}}

    ours_bits = args.data_dir / "ours_bits.bin"
    log("scoring: ours (score_items, score_item) ...")
    res["ours"] = run_child(["--child", "ours", "--file", str(path), "--bits", str(ours_bits), "--passes", str(args.passes),
                             "--rescore-items", str(args.rescore_items)])

    # Determinism across processes: this process (another hash seed) scores the first 100k again.
    from tunix_rt_pipelines.evaluation.answers import score_items

    k = min(100_000, len(outputs))
    again = score_items([{"output": o, "expected_answer": e} for o, e in zip(outputs[:k], expected[:k])])
    assert score_digest(again) == res["ours"]["digest_first_100k"], "scores differ between two processes"
    res["ours"]["deterministic_across_processes"] = True
    del outputs, expected, shapes, again

    log("scoring: plain regex baseline ...")
    res["plain_regex"] = run_child(["--child", "plain-regex", "--file", str(path)])

    version = lmeval_available(args.lmeval_python)
    res["lm_eval_installed"] = version
    if version and not args.skip_lmeval:
        log(f"scoring: lm-eval {version} peer (harness: metric per item; batch: one vectorised call) ...")
        peer_bits = args.data_dir / "lmeval_bits.bin"
        peer = run_child([str(path), str(peer_bits)], python=args.lmeval_python, script=HERE / "peer_lm_eval.py")
        res["lm_eval"] = peer
        a, b = ours_bits.read_bytes(), peer_bits.read_bytes()
        n = len(a)
        strict_diff = sum(1 for x, y in zip(a, b) if (x ^ y) & 1)
        flex_diff = sum(1 for x, y in zip(a, b) if (x ^ y) & 2)
        res["agreement_with_lm_eval"] = {"items": n, "strict_match_disagree": strict_diff,
                                         "flexible_match_disagree": flex_diff}
    ours = res["ours"]["items_per_s_best"]
    res["ratios"] = {"ours_vs_plain_regex": ours / res["plain_regex"]["items_per_s_best"]}
    if "lm_eval" in res:
        res["ratios"]["ours_vs_lm_eval_harness"] = ours / res["lm_eval"]["harness_items_per_s"]
        res["ratios"]["ours_vs_lm_eval_batch"] = ours / res["lm_eval"]["batch_items_per_s"]
    multi = res["ours"]["items_per_s_workers_best"]
    if multi:
        res["ratios"]["ours_workers_vs_one_process"] = multi / ours
        if "lm_eval" in res:
            res["ratios"]["ours_workers_vs_lm_eval_harness"] = multi / res["lm_eval"]["harness_items_per_s"]
    res["target_items_per_s"] = TARGET_ITEMS_PER_S
    # Judged on the median pass, not the best: this VM's speed drifts by tens of percent.
    # One process is what a core does, the figure comparable to lm-eval's.
    res["target_met"] = res["ours"]["items_per_s_median"] >= TARGET_ITEMS_PER_S
    res["target_met_all_cpus"] = bool(multi) and res["ours"]["items_per_s_workers_median"] >= TARGET_ITEMS_PER_S
    return res


def print_scoring(res: dict) -> None:
    o, p = res["ours"], res["plain_regex"]
    print("\n== scoring: answer_correctness@v1 ==")
    print(f"{res['ours']['items']:,} predictions, mean {res['mean_chars']:.0f} chars; outcomes {o['outcomes']}")
    rows = [("ours score_items (best of passes)", o["items_per_s_best"], o["peak_rss_mb"]),
            ("ours score_items (median of passes)", o["items_per_s_median"], None),
            ("ours score_items (first, cold)", o["items_per_s_cold"], None),
            ("ours score_item per item", o["score_item_loop_items_per_s"], None)]
    if o["items_per_s_workers_best"]:
        rows.append((f"ours score_items, {o['workers']} processes (best)", o["items_per_s_workers_best"],
                     o["peak_rss_worker_mb"]))
        rows.append((f"ours score_items, {o['workers']} processes (median)", o["items_per_s_workers_median"], None))
    rp = o["rescore_path"]
    rows.append((f"rescore path (score_records), 1 process, {rp['items']:,}", rp["items_per_s_one_process"], None))
    if "items_per_s_workers" in rp:
        rows.append((f"rescore path, {rp['workers']} processes", rp["items_per_s_workers"], None))
    if "lm_eval" in res:
        lm = res["lm_eval"]
        rows += [(f"lm-eval {lm['lm_eval_version']} harness (metric per item)", lm["harness_items_per_s"], lm["peak_rss_mb"]),
                 (f"lm-eval {lm['lm_eval_version']} batch (vectorised metric)", lm["batch_items_per_s"], None)]
    rows.append(("plain regex (last number == expected)", p["items_per_s_best"], p["peak_rss_mb"]))
    print(f"{'mode':<46} {'items/s':>12} {'peak RSS':>10}")
    for name, rate, rss in rows:
        print(f"{name:<46} {rate:>12,.0f} {'' if rss is None else f'{rss:.0f} MB':>10}")
    for k, v in res["ratios"].items():
        print(f"  {k}: {v:.2f}x")
    print(f"  target >= {TARGET_ITEMS_PER_S:,} items/s (median pass): one process {'met' if res['target_met'] else 'NOT met'}, "
          f"all CPUs {'met' if res['target_met_all_cpus'] else 'NOT met'}; "
          f"deterministic ({len(o['seconds_by_pass'])} passes, per-item loop, another process): yes")
    if "agreement_with_lm_eval" in res:
        a = res["agreement_with_lm_eval"]
        print(f"  our strict/flexible vs lm-eval's own on {a['items']:,} items: {a['strict_match_disagree']} / "
              f"{a['flexible_match_disagree']} disagreements")
    elif not res.get("lm_eval_installed"):
        print("  lm-eval not installed: peer is the plain regex baseline only")
    print("  per shape (ours): " + ", ".join(f"{k} {v['items_per_s']:,.0f}/s" for k, v in o["by_shape"].items()))


# --- part 2: store --------------------------------------------------------------------------------

ANCHOR = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # "now" of the generated history (90 days before it)
CONFIGS = ("smoke_tiny", "bench_10m", "gemma3_270m_lora", "gemma3_270m_full", "gemma3_1b_lora", "qwen3_0_6b_lora",
           "qwen3_1_7b_lora", "llama3_2_1b_lora", "smollm2_360m_full", "phi3_mini_lora")
SECTIONS = ("arithmetic", "word_problem", "multi_step", "percent", "fractions")
CATEGORIES = ("arithmetic", "gsm_symbolic", "reasoning_gym")
DIFFICULTIES = ("easy", "medium", "hard")
EVAL_COLUMNS = ("id", "label", "judge", "predictions_sha256", "evalset_sha256", "model_digest", "config_name",
                "config_hash", "dataset_digest", "backend", "primary_score", "n_items", "n_scored", "n_invalid",
                "scorecard", "run_id", "created_at")
ITEM_COLUMNS = ("evaluation_id", "item_id", "outcome", "extracted", "extractor", "strict_match", "flexible_match",
                "section", "category", "score", "detail")


def _hex(r: random.Random) -> str:
    return f"{r.getrandbits(256):064x}"


class StoreData:
    """10k evaluations × 100 items, deterministic: ~10 configs, 12 datasets, 3 eval sets, 2,500 models,
    ~1,000 labels, created over 90 days; item ids shared within an eval set so comparisons pair up."""

    def __init__(self, n_evals: int, items_per_eval: int, seed: int = 5) -> None:
        from tunix_rt_pipelines.evaluation.store import evaluation_id

        r = random.Random(seed)
        self.items_per_eval = items_per_eval
        self.evalsets = [(name, _hex(r)) for name in ("gsm_symbolic", "arithmetic", "reasoning_gym")]
        self.datasets = [_hex(r) for _ in range(12)]
        self.config_hash = {c: _hex(r) for c in CONFIGS}
        self.models = []  # (digest, config, dataset, quality)
        for _ in range(max(1, n_evals // 4)):
            self.models.append((_hex(r), r.choice(CONFIGS), r.choice(self.datasets), r.uniform(0.15, 0.9)))
        self.item_difficulty = {name: [r.uniform(-0.25, 0.25) for _ in range(items_per_eval)] for name, _ in self.evalsets}
        self.item_meta = {name: [(SECTIONS[k % len(SECTIONS)], CATEGORIES[k % 3], DIFFICULTIES[k % 3])
                                 for k in range(items_per_eval)] for name, _ in self.evalsets}
        self.evals = []  # (evaluation row without scorecard, evalset name, model quality, seed of its items)
        for i in range(n_evals):
            digest, config, dataset, quality = r.choice(self.models)
            evalset_name, evalset_sha = r.choice(self.evalsets)
            judge = "answer_correctness@v1" if r.random() < 0.9 else "trace_structure@v1"
            pred = _hex(r)
            label = f"{config}/" + (r.choice(("trained", "base")) if r.random() < 0.2 else f"run-{r.randrange(100):02d}")
            created = ANCHOR - timedelta(seconds=r.uniform(0, 90 * 86400))
            self.evals.append(({
                "id": evaluation_id(pred, judge), "label": label, "judge": judge, "predictions_sha256": pred,
                "evalset_sha256": evalset_sha, "model_digest": digest, "config_name": config,
                "config_hash": self.config_hash[config], "dataset_digest": dataset,
                "backend": "torch" if r.random() < 0.7 else "jax", "run_id": uuid.UUID(int=r.getrandbits(128)).hex,
                "created_at": created,
            }, evalset_name, quality, r.getrandbits(32), r.random() < 0.005))

    def evaluation(self, i: int) -> tuple[dict, list[dict]]:
        """(evaluation record, item rows) of the i-th evaluation, built as ``evaluate.score_records`` builds them."""
        from tunix_rt_pipelines.evaluation.evaluate import lm_eval_summary
        from tunix_rt_pipelines.evaluation.scorecard import scorecard

        base, evalset_name, quality, item_seed, unscorable = self.evals[i]
        r = random.Random(item_seed)
        rows = []
        for k in range(self.items_per_eval):
            section, category, _ = self.item_meta[evalset_name][k]
            if unscorable:
                outcome, extracted, extractor = "unscored", None, "none"
            else:
                u = r.random()
                if u < 0.03:
                    outcome, extracted, extractor = "invalid", None, "none"
                else:
                    p = quality - self.item_difficulty[evalset_name][k]
                    outcome = "correct" if r.random() < p else "wrong"
                    extracted = str(r.randint(0, 5000))
                    extractor = "marker_hash" if u < 0.85 else ("marker_answer" if u < 0.93 else "last_number")
            strict = outcome == "correct" and extractor == "marker_hash"
            rows.append({"item_id": f"{evalset_name}:{k:04d}", "outcome": outcome, "extracted": extracted,
                         "extractor": extractor, "strict_match": strict,
                         "flexible_match": strict or (outcome == "correct" and r.random() < 0.8),
                         "section": section, "category": category, "score": None,
                         "detail": {"reason": "judge unreachable"} if unscorable else None})
        meta = [{"section": s, "category": c, "difficulty": d} for s, c, d in self.item_meta[evalset_name]]
        card = scorecard([{"outcome": row["outcome"], "reason": "judge unreachable" if unscorable else None}
                          for row in rows], meta, metric=base["judge"])
        card["lm_eval"] = lm_eval_summary(rows)
        card["trace_structure"] = {"metric": "trace_structure@v1", "n": len(rows), "mean": round(r.uniform(0.5, 1), 6),
                                   "steps_present": 1.0, "final_answer_stated": 0.97,
                                   "answer_consistent_with_last_step": 0.9, "no_repetition_loop": 0.99}
        record = {**base, "primary_score": card["primary_score"], "n_items": card["n_items"],
                  "n_scored": card["n_scored"], "n_invalid": card["n_invalid"], "scorecard": card}
        return record, rows


# Not in our migrations: tried by --try-indexes in the benchmark's own schema, to measure what they would buy.
# PostgreSQL's ranking, prefix, dataset and date indexes moved into migration 0006 after this trial
# (leaderboard top-50 21 -> 6 ms); on SQLite they made two filtered leaderboards slower, so they stay here.
SUGGESTED_INDEXES = {
    "postgres": [],
    "sqlite": [
        "CREATE INDEX bench_ix_evaluations_rank ON evaluations ((primary_score IS NULL), primary_score DESC, created_at DESC)",
        "CREATE INDEX bench_ix_evaluations_dataset ON evaluations (dataset_digest)",
        "CREATE INDEX bench_ix_evaluations_created ON evaluations (created_at)",
    ],
}


def _csv_value(v: object) -> object:
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, dict):
        return json.dumps(v, sort_keys=True)
    if isinstance(v, datetime):
        return v.isoformat()
    return v  # None -> empty unquoted field -> NULL


def load_postgres(engine, data: StoreData, first: int, chunk: int = 500) -> float:  # noqa: ANN001
    """COPY evaluations ``first``.. and their items (CSV), ``chunk`` evaluations per COPY; seconds."""
    raw = engine.raw_connection()
    t0 = time.perf_counter()
    try:
        cur = raw.cursor()
        for start in range(first, len(data.evals), chunk):
            ebuf, ibuf = io.StringIO(), io.StringIO()
            ew, iw = csv.writer(ebuf), csv.writer(ibuf)
            for i in range(start, min(start + chunk, len(data.evals))):
                record, rows = data.evaluation(i)
                ew.writerow([_csv_value(record[c]) for c in EVAL_COLUMNS])
                for row in rows:
                    iw.writerow([_csv_value(record["id"] if c == "evaluation_id" else row[c]) for c in ITEM_COLUMNS])
            ebuf.seek(0)
            ibuf.seek(0)
            cur.copy_expert(f"COPY evaluations ({', '.join(EVAL_COLUMNS)}) FROM STDIN WITH (FORMAT csv)", ebuf)
            cur.copy_expert(f"COPY item_scores ({', '.join(ITEM_COLUMNS)}) FROM STDIN WITH (FORMAT csv)", ibuf)
            raw.commit()
            if (start // chunk) % 5 == 0:
                log(f"  copied {min(start + chunk, len(data.evals)):,} / {len(data.evals):,} evaluations")
        cur.close()
        raw.commit()
    finally:
        raw.close()
    return time.perf_counter() - t0


def load_sqlite(engine, data: StoreData, first: int, chunk: int = 500) -> float:  # noqa: ANN001
    from tunix_rt_pipelines.core.db import evaluations, item_scores

    t0 = time.perf_counter()
    for start in range(first, len(data.evals), chunk):
        recs, items = [], []
        for i in range(start, min(start + chunk, len(data.evals))):
            record, rows = data.evaluation(i)
            recs.append(record)
            items.extend({"evaluation_id": record["id"], **row} for row in rows)
        with engine.begin() as conn:
            conn.execute(evaluations.insert(), recs)
            conn.execute(item_scores.insert(), items)
        if (start // chunk) % 5 == 0:
            log(f"  inserted {min(start + chunk, len(data.evals)):,} / {len(data.evals):,} evaluations")
    return time.perf_counter() - t0


def _stats(times: list[float]) -> dict:
    ms = sorted(t * 1000 for t in times)
    p95 = ms[max(0, -(-95 * len(ms) // 100) - 1)]  # nearest rank
    return {"median_ms": statistics.median(ms), "p95_ms": p95, "min_ms": ms[0], "max_ms": ms[-1], "n": len(ms)}


def store_ops(engine, data: StoreData, reps: int) -> dict:  # noqa: ANN001
    """name -> (callable taking the repetition index) for every timed operation."""
    from tunix_rt_pipelines.evaluation.compare import compare_many
    from tunix_rt_pipelines.evaluation.store import item_outcomes, leaderboard

    r = random.Random(99)
    evals = [e[0] for e in data.evals]
    scorable = [e for e, _, _, _, unscorable in data.evals if not unscorable]
    by_evalset: dict[str, list[dict]] = {}
    for e in scorable:
        by_evalset.setdefault(e["evalset_sha256"], []).append(e)
    # newest evaluation per label: what a label resolves to; labels compared are on one eval set
    newest: dict[str, dict] = {}
    for e in evals:
        if e["label"] not in newest or e["created_at"] > newest[e["label"]]["created_at"]:
            newest[e["label"]] = e
    labels_by_evalset: dict[str, list[str]] = {}
    for label, e in sorted(newest.items()):
        labels_by_evalset.setdefault(e["evalset_sha256"], []).append(label)
    big_set = max(labels_by_evalset, key=lambda k: len(labels_by_evalset[k]))

    cfgs = [r.choice(CONFIGS) for _ in range(reps)]
    dss = [r.choice(data.datasets) for _ in range(reps)]
    mds = [r.choice(data.models)[0][:8] for _ in range(reps)]
    ess = [r.choice(data.evalsets)[1] for _ in range(reps)]
    windows = [ANCHOR - timedelta(days=r.uniform(7, 90)) for _ in range(reps)]
    ids = [r.choice(scorable)["id"] for _ in range(reps)]
    labels = [r.choice(sorted(newest)) for _ in range(reps)]
    groups_id = {k: [[e["id"] for e in r.sample(by_evalset[big_set], k)] for _ in range(reps)] for k in (2, 5)}
    groups_label = {k: [r.sample(labels_by_evalset[big_set], k) for _ in range(reps)] for k in (2, 5)}
    preloaded = {k: [[(ref, item_outcomes(engine, ref)) for ref in g] for g in groups_id[k]] for k in (2, 5)}

    def compare(refs: list[str]) -> list[dict]:
        return compare_many([(ref, item_outcomes(engine, ref)) for ref in refs])

    return {
        "leaderboard top-50": lambda i: leaderboard(engine, limit=50),
        "leaderboard top-200": lambda i: leaderboard(engine, limit=200),
        "leaderboard config=": lambda i: leaderboard(engine, config_name=cfgs[i], limit=50),
        "leaderboard dataset=": lambda i: leaderboard(engine, dataset_digest=dss[i], limit=50),
        "leaderboard model prefix (8)": lambda i: leaderboard(engine, model_digest=mds[i], limit=50),
        "leaderboard 7-day window": lambda i: leaderboard(engine, since=windows[i], until=windows[i] + timedelta(days=7),
                                                          limit=50),
        "leaderboard evalset=": lambda i: leaderboard(engine, evalset_sha256=ess[i], limit=50),
        "leaderboard dataset+config+since": lambda i: leaderboard(engine, dataset_digest=dss[i], config_name=cfgs[i],
                                                                  since=windows[i], limit=50),
        "item_outcomes by id": lambda i: item_outcomes(engine, ids[i]),
        "item_outcomes by id prefix (12)": lambda i: item_outcomes(engine, ids[i][:12]),
        "item_outcomes by label": lambda i: item_outcomes(engine, labels[i]),
        "compare 2 by id": lambda i: compare(groups_id[2][i]),
        "compare 5 by id": lambda i: compare(groups_id[5][i]),
        "compare 2 by label": lambda i: compare(groups_label[2][i]),
        "compare 5 by label": lambda i: compare(groups_label[5][i]),
        "compare_many only, 2 (no DB)": lambda i: compare_many(preloaded[2][i]),
        "compare_many only, 5 (no DB)": lambda i: compare_many(preloaded[5][i]),
    }, {"compare_ids": groups_id[2][0], "compare_labels": groups_label[2][0]}


def _explain(engine, statements: list[tuple[str, object]]) -> tuple[list[str], float | None]:  # noqa: ANN001
    """Plans of the statements an operation ran (PostgreSQL: EXPLAIN ANALYZE BUFFERS), and the summed
    server execution time in ms (PostgreSQL only)."""
    plans, total = [], 0.0
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        pg = engine.dialect.name == "postgresql"
        for stmt, params in statements:
            cur.execute(("EXPLAIN (ANALYZE, BUFFERS) " if pg else "EXPLAIN QUERY PLAN ") + stmt, params)
            rows = cur.fetchall()
            text = "\n".join(str(row[0]) if pg else " | ".join(str(x) for x in row) for row in rows)
            if pg:
                m = re.search(r"Execution Time: ([\d.]+) ms", text)
                total += float(m.group(1)) if m else 0.0
            plans.append(f"{stmt}\n-- params: {params}\n{text}")
        cur.close()
        raw.rollback()
    finally:
        raw.close()
    return plans, (total if engine.dialect.name == "postgresql" else None)


def measure_store(engine, data: StoreData, reps: int, slow_ms: float) -> tuple[dict, dict]:  # noqa: ANN001
    from sqlalchemy import event

    ops, refs = store_ops(engine, data, reps)
    out = {}
    for name, fn in ops.items():
        fn(0)
        fn(1 % reps)  # warm-up
        times = []
        for i in range(reps):
            t0 = time.perf_counter()
            fn(i)
            times.append(time.perf_counter() - t0)
        st = _stats(times)
        captured: list[tuple[str, object]] = []

        def capture(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001, ARG001
            captured.append((statement, parameters))

        event.listen(engine, "before_cursor_execute", capture)
        try:
            fn(0)
        finally:
            event.remove(engine, "before_cursor_execute", capture)
        if captured:
            st["statements"] = len(captured)
            st["explain"], st["server_ms"] = _explain(engine, captured)
        st["slow"] = st["median_ms"] > slow_ms
        out[name] = st
        log(f"  {name:<34} median {st['median_ms']:8.2f} ms  p95 {st['p95_ms']:8.2f} ms"
            + (f"  (server {st['server_ms']:.2f} ms)" if st.get("server_ms") is not None else ""))
    return out, refs


def time_save_evaluation(engine, data: StoreData, n: int) -> dict:  # noqa: ANN001
    from tunix_rt_pipelines.evaluation.store import save_evaluation

    times = []
    for i in range(min(n, len(data.evals))):
        record, rows = data.evaluation(i)
        t0 = time.perf_counter()
        assert save_evaluation(engine, record, rows)
        times.append(time.perf_counter() - t0)
    record, rows = data.evaluation(0)
    assert not save_evaluation(engine, record, rows)  # idempotent
    return _stats(times)


def child_store(backend: str, args: argparse.Namespace) -> dict:
    import sqlalchemy as sa

    from tunix_rt_pipelines.core.db import dispose_engines, make_engine
    from tunix_rt_pipelines.core.migrate import migrate

    t0 = time.perf_counter()
    data = StoreData(args.evaluations, args.items_per_eval, seed=args.seed)
    log(f"store[{backend}]: {args.evaluations:,} evaluations × {args.items_per_eval} items planned in "
        f"{time.perf_counter() - t0:.1f}s")
    tmpdir = tempfile.mkdtemp(prefix="bench_eval_")
    admin = schema = None
    if backend == "postgres":
        admin = sa.create_engine(args.pg_url.replace("postgresql://", "postgresql+psycopg2://", 1),
                                 isolation_level="AUTOCOMMIT")
        schema = f"bench_eval_{uuid.uuid4().hex[:10]}"
        with admin.connect() as c:
            c.execute(sa.text(f"CREATE SCHEMA {schema}"))
        sep = "&" if "?" in args.pg_url else "?"
        url = f"{args.pg_url}{sep}options=-csearch_path%3D{schema}"
    else:
        url = f"sqlite:///{tmpdir}/bench.db"
    res: dict = {"url": url.split("@")[-1], "schema": schema}
    try:
        engine = make_engine(url)
        migrate(engine)
        res["save_evaluation"] = time_save_evaluation(engine, data, args.save_calls)
        log(f"store[{backend}]: save_evaluation ({args.items_per_eval} items) median "
            f"{res['save_evaluation']['median_ms']:.1f} ms, p95 {res['save_evaluation']['p95_ms']:.1f} ms")
        loader = load_postgres if backend == "postgres" else load_sqlite
        load_s = loader(engine, data, args.save_calls)
        t0 = time.perf_counter()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(sa.text("VACUUM ANALYZE evaluations" if backend == "postgres" else "ANALYZE"))
            if backend == "postgres":
                c.execute(sa.text("VACUUM ANALYZE item_scores"))
                res["table_sizes_mb"] = {t: c.execute(sa.text(f"SELECT pg_total_relation_size('{t}')")).scalar() / 1e6
                                         for t in ("evaluations", "item_scores")}
            n_e = c.execute(sa.text("SELECT count(*) FROM evaluations")).scalar()
            n_i = c.execute(sa.text("SELECT count(*) FROM item_scores")).scalar()
        analyze_s = time.perf_counter() - t0
        assert n_e == args.evaluations and n_i == args.evaluations * args.items_per_eval, (n_e, n_i)
        res["load"] = {"evaluations": n_e, "item_rows": n_i, "seconds": load_s,
                       "item_rows_per_s": (n_i - args.save_calls * args.items_per_eval) / load_s,
                       "analyze_seconds": analyze_s,
                       "method": "COPY (csv), 500 evaluations per COPY" if backend == "postgres"
                       else "SQLAlchemy executemany, 500 evaluations per transaction"}
        if backend == "sqlite":
            res["db_file_mb"] = Path(f"{tmpdir}/bench.db").stat().st_size / 1e6
        log(f"store[{backend}]: loaded {n_i:,} item rows in {load_s:.1f}s; analyze {analyze_s:.1f}s; timing ...")
        res["latency"], refs = measure_store(engine, data, args.reps, args.slow_ms)
        if args.try_indexes and SUGGESTED_INDEXES[backend]:
            ddl = SUGGESTED_INDEXES[backend]
            t0 = time.perf_counter()
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                for stmt in ddl:
                    c.execute(sa.text(stmt))
                c.execute(sa.text("ANALYZE evaluations" if backend == "postgres" else "ANALYZE"))
            log(f"store[{backend}]: suggested indexes built in {time.perf_counter() - t0:.1f}s; timing again ...")
            lat, _ = measure_store(engine, data, args.reps, args.slow_ms)
            res["with_suggested_indexes"] = {"ddl": ddl, "latency": lat}
        if backend == "postgres" and not args.skip_cli:
            res["cli"] = time_cli(url, refs, args.cli_reps, tmpdir)
        res["peak_rss_mb"] = peak_rss_mb()
    finally:
        dispose_engines()
        if admin is not None:
            if args.keep:
                log(f"store[{backend}]: kept schema {schema}")
            else:
                with admin.connect() as c:
                    c.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()
        shutil.rmtree(tmpdir, ignore_errors=True)
    return res


def time_cli(url: str, refs: dict, reps: int, tmpdir: str) -> dict:
    exe = Path(sys.executable).parent / "tunix-rt"
    if not exe.exists():
        return {"skipped": f"{exe} not found"}
    env = {**os.environ, "TUNIX_RT_DATABASE_URL": url, "TUNIX_RT_HOME": str(Path(tmpdir) / "home")}
    commands = {
        "tunix-rt --help (start-up floor)": [str(exe), "--help"],
        "tunix-rt leaderboard --json": [str(exe), "leaderboard", "--json"],
        "tunix-rt compare A B --json (ids)": [str(exe), "compare", *refs["compare_ids"], "--json"],
        "tunix-rt compare A B --json (labels)": [str(exe), "compare", *refs["compare_labels"], "--json"],
    }
    out = {}
    for name, cmd in commands.items():
        times = []
        for _ in range(reps + 1):  # the first run is a warm-up (bytecode, page cache)
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, cwd=tmpdir)
            times.append(time.perf_counter() - t0)
            if proc.returncode != 0:
                out[name] = {"failed": proc.stderr[-2000:]}
                break
        else:
            out[name] = _stats(times[1:])
            out[name]["first_ms"] = times[0] * 1000
        st = out[name]
        log(f"  CLI {name:<38} " + (f"median {st['median_ms']:8.0f} ms  p95 {st['p95_ms']:8.0f} ms" if "median_ms" in st
                                    else "FAILED"))
    return out


def print_store(name: str, res: dict) -> None:
    print(f"\n== store latency: {name} ({res['load']['evaluations']:,} evaluations, {res['load']['item_rows']:,} item rows) ==")
    ld = res["load"]
    print(f"load: {ld['method']}: {ld['seconds']:.1f}s ({ld['item_rows_per_s']:,.0f} item rows/s); "
          f"save_evaluation (one evaluation of 100 items): median {res['save_evaluation']['median_ms']:.1f} ms, "
          f"p95 {res['save_evaluation']['p95_ms']:.1f} ms")
    print(f"{'operation':<36} {'median ms':>10} {'p95 ms':>10} {'server ms':>10}")
    for op, st in res["latency"].items():
        server = st.get("server_ms")
        print(f"{op:<36} {st['median_ms']:>10.2f} {st['p95_ms']:>10.2f} {'' if server is None else f'{server:.2f}':>10}"
              + ("  SLOW" if st["slow"] else ""))
    if "with_suggested_indexes" in res:
        print(f"-- the same with the suggested indexes ({len(res['with_suggested_indexes']['ddl'])} CREATE INDEX, "
              "not in our migrations):")
        for op, st in res["with_suggested_indexes"]["latency"].items():
            server = st.get("server_ms")
            before = res["latency"][op]["median_ms"]
            print(f"{op:<36} {st['median_ms']:>10.2f} {st['p95_ms']:>10.2f} {'' if server is None else f'{server:.2f}':>10}"
                  f"   (was {before:.2f})")
    for op, st in res.get("cli", {}).items():
        if "median_ms" in st:
            print(f"{op:<36} {st['median_ms']:>10.0f} {st['p95_ms']:>10.0f}")
        else:
            print(f"{op:<36} {str(st)[:80]}")
    for op, st in res["latency"].items():
        if st["slow"]:
            print(f"\n-- {op}: median {st['median_ms']:.1f} ms; plans:")
            for plan in st.get("explain", []):
                print(plan)


# --- main -----------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=1_000_000, help="predictions scored (part 1)")
    ap.add_argument("--evaluations", type=int, default=10_000, help="stored evaluations (part 2)")
    ap.add_argument("--items-per-eval", type=int, default=100)
    ap.add_argument("--skip-scoring", action="store_true")
    ap.add_argument("--skip-store", action="store_true")
    ap.add_argument("--skip-sqlite", action="store_true")
    ap.add_argument("--skip-cli", action="store_true")
    ap.add_argument("--skip-lmeval", action="store_true")
    ap.add_argument("--pg-url", default=PG_URL)
    ap.add_argument("--keep", action="store_true", help="keep the PostgreSQL schema")
    ap.add_argument("--try-indexes", action="store_true",
                    help="after timing, add the suggested indexes in the bench schema and time again")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--cli-reps", type=int, default=3)
    ap.add_argument("--save-calls", type=int, default=200, help="evaluations stored through save_evaluation (timed)")
    ap.add_argument("--passes", type=int, default=3, help="score_items passes over the predictions")
    ap.add_argument("--rescore-items", type=int, default=200_000,
                    help="predictions scored through evaluate.score_records, the rescore path")
    ap.add_argument("--slow-ms", type=float, default=50.0)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--data-dir", type=Path, default=Path("/tmp/tunix_rt_bench_eval"))
    ap.add_argument("--lmeval-python", default=LMEVAL_PYTHON)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "eval_bench.json")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--bits", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:
        if args.child == "ours":
            out = child_ours(args.file, args.bits, args.passes, args.rescore_items)
        elif args.child == "plain-regex":
            out = child_plain_regex(args.file)
        elif args.child in ("store-postgres", "store-sqlite"):
            out = child_store(args.child.split("-")[1], args)
        else:
            raise SystemExit(f"unknown child {args.child}")
        print(json.dumps(out, default=str))
        return

    started = time.perf_counter()
    results: dict = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "loadavg_start": loadavg()},
        "args": {k: str(v) for k, v in vars(args).items() if k not in ("child", "file", "bits")},
    }
    if not args.skip_scoring:
        results["scoring"] = part_scoring(args)
        print_scoring(results["scoring"])
    if not args.skip_store:
        results["store"] = {}
        for backend in ("postgres",) + (() if args.skip_sqlite else ("sqlite",)):
            child_args = ["--child", f"store-{backend}", "--evaluations", str(args.evaluations),
                          "--items-per-eval", str(args.items_per_eval), "--pg-url", args.pg_url, "--reps", str(args.reps),
                          "--cli-reps", str(args.cli_reps), "--save-calls", str(args.save_calls),
                          "--slow-ms", str(args.slow_ms), "--seed", str(args.seed)]
            child_args += ["--keep"] * args.keep + ["--skip-cli"] * args.skip_cli + ["--try-indexes"] * args.try_indexes
            results["store"][backend] = run_child(child_args)
            print_store(backend, results["store"][backend])
    results["machine"]["loadavg_end"] = loadavg()
    results["total_seconds"] = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str))
    print(f"\ntotal {results['total_seconds']:.0f}s; results in {args.out}")


if __name__ == "__main__":
    main()
