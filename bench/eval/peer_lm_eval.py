"""The lm-eval-harness peer of the scoring benchmark: GSM8K's own filters and metric on the same strings.

Runs in a *separate* virtual environment that has ``lm-eval`` (never the project's), as a child of
``bench/eval/run.py``; it imports nothing from this project. The task configuration is read from
the installed ``lm_eval/tasks/gsm8k/gsm8k.yaml`` itself: its two filter pipelines
(``strict-match``: ``regex`` ``#### (\\-?[0-9\\.\\,]+)`` then ``take_first``; ``flexible-extract``:
``regex`` ``(-?[$0-9.,]{2,})|(-?[0-9]+)`` with ``group_select: -1`` then ``take_first``), built with
``lm_eval.filters.build_filter_ensemble``, and its ``exact_match`` keyword arguments
(``ignore_case``, ``ignore_punctuation``, ``regexes_to_ignore``) passed to lm-eval's registered
``exact_match`` metric function.

Two timings, each over both pipelines (strict and flexible), i.e. what it takes lm-eval to give the
two figures we give on every item:

* ``harness``: the filters applied as ``FilterEnsemble.apply`` applies them (every filter of the
  ensemble in turn on the list of per-instance response lists), then the metric called once per
  item with ``references=[gold], predictions=[result]``, as ``ConfigurableTask.process_results``
  calls it for ``generate_until`` tasks. Per-item results: written for the agreement check.
* ``batch``: the same filters, then the metric called *once* on all items (vectorised with numpy;
  gives the mean only). The fastest use of lm-eval's own code; not what the harness does.

Usage (by run.py): ``peer_lm_eval.py FILE OUT_BITS [--limit N]``; prints one JSON line.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    path, bits_path = Path(sys.argv[1]), Path(sys.argv[2])
    limit = int(sys.argv[sys.argv.index("--limit") + 1]) if "--limit" in sys.argv else None

    import lm_eval
    import yaml
    from lm_eval.api.registry import get_metric
    from lm_eval.filters import build_filter_ensemble

    version = getattr(lm_eval, "__version__", None)
    if version is None:
        from importlib.metadata import version as _v

        version = _v("lm_eval")
    task_yaml = Path(lm_eval.__file__).parent / "tasks" / "gsm8k" / "gsm8k.yaml"
    task = yaml.safe_load(task_yaml.read_text())
    (metric_cfg,) = [m for m in task["metric_list"] if m["metric"] == "exact_match"]
    metric_kwargs = {k: v for k, v in metric_cfg.items() if k not in ("metric", "aggregation", "higher_is_better")}
    metric_fn = get_metric("exact_match")
    ensembles = []
    for spec in task["filter_list"]:
        components = [(f["function"], {k: v for k, v in f.items() if k != "function"} or None) for f in spec["filter"]]
        ensembles.append(build_filter_ensemble(spec["name"], components))

    outputs, golds = [], []
    with path.open(encoding="utf-8") as f:
        for i, line in enumerate(f):
            if limit is not None and i >= limit:
                break
            d = json.loads(line)
            outputs.append(d["output"])
            golds.append(d["expected"])
    n = len(outputs)
    rss_loaded = _rss_mb()
    docs = [None] * n  # the regex and take_first filters never read the docs

    def run_filters(ensemble) -> list[str]:  # noqa: ANN001
        resps = [[o] for o in outputs]  # Instance.resps: one response per request (repeats: 1)
        for make in ensemble.filters:  # FilterEnsemble.apply, without the Instance bookkeeping
            resps = make().apply(resps, docs)
        return list(resps)

    # harness: filters, then exact_match per item
    t0 = time.perf_counter()
    per_item: dict[str, list[bool]] = {}
    for ensemble in ensembles:
        filtered = run_filters(ensemble)
        per_item[ensemble.name] = [
            float(metric_fn(references=[g], predictions=[p], **metric_kwargs)["exact_match"]) > 0.0
            for p, g in zip(filtered, golds)
        ]
    harness_s = time.perf_counter() - t0

    # batch: filters, then one vectorised exact_match call per pipeline
    t0 = time.perf_counter()
    batch_means = {}
    filter_s = 0.0
    for ensemble in ensembles:
        tf = time.perf_counter()
        filtered = run_filters(ensemble)
        filter_s += time.perf_counter() - tf
        batch_means[ensemble.name] = float(metric_fn(references=golds, predictions=filtered, **metric_kwargs)["exact_match"])
    batch_s = time.perf_counter() - t0

    strict, flexible = per_item["strict-match"], per_item["flexible-extract"]
    bits_path.write_bytes(bytes(48 + s + 2 * f for s, f in zip(strict, flexible)))  # '0'..'3'
    print(json.dumps({
        "lm_eval_version": version,
        "python": sys.version.split()[0],
        "task_yaml": str(task_yaml),
        "filters": task["filter_list"],
        "metric_kwargs": metric_kwargs,
        "items": n,
        "harness_seconds": harness_s,
        "harness_items_per_s": n / harness_s,
        "batch_seconds": batch_s,
        "batch_items_per_s": n / batch_s,
        "batch_filter_seconds": filter_s,
        "strict_match_mean": sum(strict) / n,
        "flexible_extract_mean": sum(flexible) / n,
        "batch_means": batch_means,
        "rss_after_load_mb": rss_loaded,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    main()
