"""Ingest benchmark: 200k generated traces in one JSONL file, end to end through the real ingest path.

Modes, each in its own process so peak RSS is its own:

* ``ours-sqlite``, ``ours-postgres``: ``traces.ingest.ingest_file`` (parse, validate, hash,
  deduplicate, store) into a fresh database;
* ``naive-orm``: the seeds' starting point, one ORM object and one commit per row into
  PostgreSQL (run on the first ``--naive-rows`` rows; its rate is per row, so it compares);
* ``raw-copy``: the load limit, PostgreSQL ``COPY`` of the same rows already encoded
  (no parsing, no validation, no dedupe), into an identical empty table.

Usage::

    python bench/ingest/run.py                 # 200k traces, all modes, three rounds (medians reported)
    python bench/ingest/run.py --traces 20000 --rounds 1  # quicker

PostgreSQL URL: TUNIX_RT_BENCH_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test).
Every mode works in its own fresh schema, dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
PG_URL = os.environ.get("TUNIX_RT_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def generate_file(path: Path, n: int, seed: int = 7) -> None:
    """``n`` distinct traces from the arithmetic families, written as JSONL."""
    from tunix_rt_pipelines.synthetic.arithmetic import FAMILIES, difficulty_for

    r = random.Random(seed)
    names = sorted(FAMILIES)
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            family = names[i % len(names)]
            prompt, steps, answer = FAMILIES[family](r)
            rec = {
                "id": f"bench:{i}",
                "prompt": f"[{i}] {prompt}",  # the index keeps every trace distinct
                "steps": steps,
                "final_answer": str(answer),
                "metadata": {"source": "bench", "category": "arithmetic", "difficulty": difficulty_for(len(steps)),
                             "tags": [family]},
            }
            f.write(json.dumps(rec, ensure_ascii=False))
            f.write("\n")


def _schema_url(schema: str) -> str:
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


def _with_schema(fn):  # noqa: ANN001, ANN202
    import sqlalchemy as sa

    admin = sa.create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg2://", 1), isolation_level="AUTOCOMMIT")
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as c:
        c.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        return fn(_schema_url(schema))
    finally:
        from tunix_rt_pipelines.core.db import dispose_engines

        dispose_engines()
        with admin.connect() as c:
            c.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def _tree_memory_mb(root: int) -> tuple[float, float]:
    """(RSS, PSS) of ``root`` and its descendants, summed.

    The RSS sum counts the pages that forked workers share with their fork server once per
    process: an upper bound. PSS divides each shared page among the processes that map it, so its
    sum is the memory the tree really holds.
    """
    parent, rss = {}, {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            parent[int(entry)], rss[int(entry)] = int(fields[1]), int(fields[21]) * resource.getpagesize()
    total_rss = total_pss = 0
    for pid, value in rss.items():
        p = pid
        while p and p != root:
            p = parent.get(p, 0)
        if p == root:
            total_rss += value
            total_pss += _pss_bytes(pid)
    return total_rss / 2**20, total_pss / 2**20


def _pss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:  # the process has exited
        pass
    return 0


def mode_ours(path: Path, url: str) -> dict:
    import threading

    from tunix_rt_pipelines.traces.ingest import ingest_file
    from tunix_rt_pipelines.traces.store import TraceStore

    store = TraceStore(url)  # migrations run here, outside the timed part
    # A large file is prepared in worker processes: sample the whole process tree's memory.
    peak, done = [0.0, 0.0], threading.Event()

    def sample() -> None:
        while not done.wait(0.25):  # a scan of /proc costs a few ms: rarely enough not to slow the run
            rss, pss = _tree_memory_mb(os.getpid())
            peak[0], peak[1] = max(peak[0], rss), max(peak[1], pss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    report = ingest_file(store, path)
    elapsed = time.perf_counter() - t0
    done.set()
    sampler.join()
    assert report.adds_up and report.accepted == report.read, report.as_dict()
    return {"rows": report.read, "seconds": elapsed, "peak_rss_tree_mb": peak[0], "peak_pss_tree_mb": peak[1]}


def mode_naive(path: Path, url: str, limit: int) -> dict:
    """One ORM object per row, one commit per row (what the seeds' first API did)."""
    from datetime import UTC, datetime

    from sqlalchemy import orm

    from tunix_rt_pipelines.core.db import ingest_batches, traces
    from tunix_rt_pipelines.traces.schema import ReasoningTrace
    from tunix_rt_pipelines.traces.store import TraceStore

    store = TraceStore(url)

    class Base(orm.DeclarativeBase):
        pass

    class Trace(Base):
        __table__ = traces

    now = datetime.now(UTC)
    with store.engine.begin() as c:
        c.execute(ingest_batches.insert().values(id="naive", file_name=path.name, file_sha256="-", file_bytes=0,
                                                 status="running", started_at=now, updated_at=now))
    rows = 0
    t0 = time.perf_counter()
    with orm.Session(store.engine) as session, path.open("rb") as f:
        for line in f:
            t = ReasoningTrace.model_validate_json(line)
            session.add(Trace(content_hash=t.content_hash, trace_id=t.id, schema_version="1", prompt=t.prompt,
                              steps=t.steps, final_answer=t.final_answer, source=t.metadata.source,
                              category=t.metadata.category, difficulty=t.metadata.difficulty, tags=t.metadata.tags,
                              extra={}, n_steps=len(t.steps), n_chars=0, batch_id="naive", created_at=now))
            session.commit()
            rows += 1
            if rows >= limit:
                break
    return {"rows": rows, "seconds": time.perf_counter() - t0}


def mode_raw_copy(path: Path, url: str) -> dict:
    """COPY of the already-encoded rows into an empty traces table: the load limit."""
    import io
    from datetime import UTC, datetime

    from tunix_rt_pipelines.traces.schema import ReasoningTrace
    from tunix_rt_pipelines.traces.rows import encode_copy_line
    from tunix_rt_pipelines.traces.store import _TRACE_COLUMNS, TraceStore

    store = TraceStore(url)
    created = datetime.now(UTC).isoformat()
    lines = []
    with path.open("rb") as f:  # encoding happens before the clock starts
        for line in f:
            t = ReasoningTrace.model_validate_json(line)
            lines.append(encode_copy_line(t.content_hash, t, "raw", created))
    payload = "".join(lines).encode()
    n = len(lines)
    del lines
    engine = store.engine
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("INSERT INTO ingest_batches (id, file_name, file_sha256, file_bytes, status, started_at, updated_at) "
                    "VALUES ('raw', 'raw', '-', 0, 'running', now(), now())")
        raw.commit()
        t0 = time.perf_counter()
        cur.copy_expert(f"COPY traces ({', '.join(_TRACE_COLUMNS)}) FROM STDIN", io.BytesIO(payload))
        raw.commit()
        elapsed = time.perf_counter() - t0
    finally:
        raw.close()
    return {"rows": n, "seconds": elapsed}


def child(mode: str, path: Path, naive_rows: int) -> None:
    import tempfile

    if mode == "ours-sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            out = mode_ours(path, f"sqlite:///{tmp}/bench.db")
    elif mode == "ours-postgres":
        out = _with_schema(lambda url: mode_ours(path, url))
    elif mode == "naive-orm":
        out = _with_schema(lambda url: mode_naive(path, url, naive_rows))
    elif mode == "raw-copy":
        out = _with_schema(lambda url: mode_raw_copy(path, url))
    else:
        raise SystemExit(f"unknown mode {mode}")
    out["rows_per_s"] = out["rows"] / out["seconds"]
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def run_mode(mode: str, path: Path, naive_rows: int) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--file", str(path), "--naive-rows", str(naive_rows)],
        capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _summary(runs: list[dict]) -> dict:
    """One mode's rounds: the median rate (and its run's figures), the worst peak memory, every rate."""
    by_rate = sorted(runs, key=lambda r: r["rows_per_s"])
    out = dict(by_rate[(len(by_rate) - 1) // 2])  # the median run (the lower one of an even count)
    for key in ("peak_rss_mb", "peak_rss_tree_mb", "peak_pss_tree_mb"):
        if key in out:
            out[key] = max(r[key] for r in runs)
    out["rounds_rows_per_s"] = [r["rows_per_s"] for r in runs]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--traces", type=int, default=200_000)
    ap.add_argument("--naive-rows", type=int, default=5_000)
    ap.add_argument("--modes", default="ours-sqlite,ours-postgres,naive-orm,raw-copy")
    # Every mode once per round, rounds one after another: a VM's speed drifts by 10% within
    # minutes, and one pair of runs gave ratios from 0.78 to 0.94 in a row. Medians are reported.
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--child")
    ap.add_argument("--file", type=Path)
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    if args.child:
        child(args.child, args.file, args.naive_rows)
        return

    data_dir = HERE / "data"
    data_dir.mkdir(exist_ok=True)
    path = data_dir / f"traces_{args.traces}.jsonl"
    if not path.exists():
        t0 = time.perf_counter()
        generate_file(path, args.traces)
        print(f"generated {path.name} ({path.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - t0:.1f}s")
    modes = args.modes.split(",")
    runs: dict[str, list[dict]] = {mode: [] for mode in modes}
    for round_no in range(1, args.rounds + 1):
        for mode in modes:
            r = run_mode(mode, path, args.naive_rows)
            runs[mode].append(r)
            tree = (f" (with its worker processes: RSS {r['peak_rss_tree_mb']:.0f} MB, PSS {r['peak_pss_tree_mb']:.0f} MB)"
                    if "peak_rss_tree_mb" in r else "")
            print(f"[{round_no}/{args.rounds}] {mode:>14}: {r['rows']:>7,} rows in {r['seconds']:7.2f}s = "
                  f"{r['rows_per_s']:>9,.0f} rows/s, peak RSS {r['peak_rss_mb']:.0f} MB{tree}", flush=True)
    results: dict = {mode: _summary(mode_runs) for mode, mode_runs in runs.items()}
    if args.rounds > 1:
        print(f"medians of {args.rounds} rounds:")
        for mode in modes:
            print(f"{mode:>14}: {results[mode]['rows_per_s']:>9,.0f} rows/s")
    if "raw-copy" in results and "ours-postgres" in results:
        per_round = [o["rows_per_s"] / c["rows_per_s"] for o, c in zip(runs["ours-postgres"], runs["raw-copy"])]
        results["ratio_ours_pg_vs_raw_copy"] = results["ours-postgres"]["rows_per_s"] / results["raw-copy"]["rows_per_s"]
        results["ratio_ours_pg_vs_raw_copy_per_round"] = per_round
        print(f"ours-postgres / raw COPY: {results['ratio_ours_pg_vs_raw_copy']:.2f}x (target >= 0.8); "
              f"per round: {', '.join(f'{x:.2f}' for x in per_round)}")
    if "naive-orm" in results:
        for m in ("ours-postgres", "ours-sqlite"):
            if m in results:
                results[f"ratio_{m}_vs_naive"] = results[m]["rows_per_s"] / results["naive-orm"]["rows_per_s"]
                print(f"{m} / naive per-row ORM: {results[f'ratio_{m}_vs_naive']:.0f}x")
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / f"ingest_{args.traces}.json").write_text(json.dumps({"file_bytes": path.stat().st_size, **results}, indent=2))


if __name__ == "__main__":
    main()
