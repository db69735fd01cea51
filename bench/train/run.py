"""Training throughput benchmark: our torch and JAX backends against a plain transformers loop.

Data: generated arithmetic traces (``synthetic.arithmetic.generate_arithmetic``) rendered as SFT
pairs with the ``plain@v1`` template. Models: ``training/smoke_tiny.yaml`` (``tiny``) and
``training/bench_10m.yaml`` (``10m``), both built by ``base_model.build_tiny_model`` from the same
texts (random weights, the same locally trained BPE). Accuracy is not measured, only speed.

Modes, per size, each in its own process so peak RSS (``ru_maxrss``) is its own:

* ``hf-reference``: what a user writes with transformers: ``AutoModelForCausalLM``, ``torch.optim.AdamW``,
  each batch padded on the right to its longest with an ``attention_mask``, labels -100 on prompt
  and padding, ``model(**batch).loss.backward()``, global-norm clip, ``optimizer.step()``. The
  same examples in the same (seeded) order, and as many per batch as one of our packed batches
  holds on average (``hf_batch_size``; ``--hf-batch`` overrides), so both make the same number
  of optimizer steps per epoch.
* ``ours-torch``: ``training.torch_backend.train`` itself (the real loop, packing on), with
  ``log_every=1``, no evaluation and one checkpoint at the end.
* ``ours-torch-compile``: the same loop with ``compile: true`` (the decoder under ``torch.compile``;
  the compiling first step is reported as ``compile_s`` and lies outside the timed window).
* ``ours-jax``: ``training.jax_backend.train`` itself (Tunix ``PeftTrainer``), the same settings.
* ``interleaved`` (optional): ``hf-reference``, ``ours-torch`` and ``ours-torch-compile`` in *one*
  process, ``--steps-per-round`` (3) steps of each per round, the order rotated every round, for
  ``--rounds`` (8). This VM's speed drifts by ±30% within minutes, so modes timed in separate
  processes one after the other also compare VM phases; here the drift falls on all three. Ours is
  ``torch_backend``'s own setup and ``optimizer_step`` (what ``train`` calls each step) without the
  logging and checkpoint around it. Reported: tokens/s over all rounds and the median (and range)
  of the per-round ratios. Caveat: the three share the process's thread pool and caches.

Timing. Steady state = real (non-pad) tokens of steps ``warmup+1 .. warmup+timed`` divided by the
wall time of those steps; also given at the median step time (tokens per step / median step),
which is steadier when other processes share the 2 cores. For our backends it comes from the per-step ``StepLog`` (``tokens``,
``elapsed_s``, taken right after each step's loss sync): model loading, the final checkpoint and the
HF export fall outside the window, nothing else does (batch building, the NaN check and the
schedule are inside, as in any real run). JAX's compile time is ``TrainResult.compile_s`` (the wall
time of the first step).

MFU. Model FLOPs per token = 6·N + 12·L·H·T (the PaLM/Chinchilla approximation: 6 FLOPs per weight
per token for forward + backward, plus attention scores and values), with N = the parameters of the
transformer blocks and the (untied) LM head, embedding table excluded; L layers, H hidden size,
T = mean tokens per example (the span a token attends to; packing and padding do not change the
useful work). The same FLOPs/token serve every mode, so MFU ratios equal throughput ratios. The peak
is measured in the same run, in its own process: best-of-N fp32 matmul of 2048×2048 on the process's
threads (2) through torch, numpy and jax, and the fastest of the three is the peak: the physical
limit is what the best kernel on this CPU reaches, not what torch's reaches. On this AMD EPYC, torch's
MKL sgemm measured 12-30% below numpy's OpenBLAS; MFU against torch's own matmul is also reported
(``mfu_vs_torch_matmul``). Figures and their reading: ``bench/train/README.md``.

Usage::

    .venv/bin/python bench/train/run.py                          # both sizes, default modes
    .venv/bin/python bench/train/run.py --sizes 10m --timed-10m 20
    .venv/bin/python bench/train/run.py --sizes 10m --modes hf-reference --hf-batch 8   # HF at another batch
    .venv/bin/python bench/train/run.py --sizes 10m --modes interleaved    # the ratio with the drift cancelled

Results: ``bench/train/results/train_bench.json`` (git-ignored); data and models in ``bench/train/data``.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CONFIGS = {"tiny": ROOT / "training" / "smoke_tiny.yaml", "10m": ROOT / "training" / "bench_10m.yaml"}
DEFAULT_MODES = "hf-reference,ours-torch,ours-torch-compile,ours-jax"


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- data and models --------------------------------------------------------------------------


def render_pairs(n: int, seed: int) -> list[tuple[str, str]]:
    from tunix_rt_pipelines.datasets.templates import get_template
    from tunix_rt_pipelines.synthetic.arithmetic import generate_arithmetic

    tpl = get_template("plain@v1")
    return [(tpl.render_prompt(t.prompt), tpl.render_completion(t.steps, t.final_answer))
            for t in generate_arithmetic(n, seed)]


def prepare(data_dir: Path, n: int, seed: int) -> dict:
    """SFT pairs as JSONL and both models as HF folders (cached by n and seed)."""
    from tunix_rt_pipelines.training.base_model import build_tiny_model
    from tunix_rt_pipelines.training.config import load_config

    data_dir.mkdir(parents=True, exist_ok=True)
    pairs_path = data_dir / f"pairs_{n}_{seed}.jsonl"
    if not pairs_path.exists():
        pairs = render_pairs(n, seed)
        with pairs_path.open("w", encoding="utf-8") as f:
            for p, c in pairs:
                f.write(json.dumps({"prompt": p, "completion": c}) + "\n")
    pairs = read_pairs(pairs_path)
    texts = [p + c for p, c in pairs]
    models = {}
    for size, path in CONFIGS.items():
        cfg = load_config(path)
        out = data_dir / f"model_{size}_{n}_{seed}"
        if not (out / "config.json").exists():
            build_tiny_model(cfg.model, texts, out, seed=cfg.seed)
        models[size] = str(out)
    return {"pairs": str(pairs_path), "models": models}


def read_pairs(path: Path) -> list[tuple[str, str]]:
    with Path(path).open(encoding="utf-8") as f:
        return [(r["prompt"], r["completion"]) for r in map(json.loads, f)]


def model_shape(model_dir: str) -> dict:
    """Parameter counts and dimensions of an HF folder."""
    from safetensors import safe_open

    hf = json.loads((Path(model_dir) / "config.json").read_text())
    total = embed = 0
    with safe_open(str(Path(model_dir) / "model.safetensors"), framework="np") as st:
        for name in st.keys():
            n = math.prod(st.get_slice(name).get_shape())
            total += n
            if "embed_tokens" in name:
                embed += n
    return {"params": total, "embedding_params": embed, "non_embedding_params": total - embed,
            "layers": hf["num_hidden_layers"], "hidden": hf["hidden_size"], "vocab": hf["vocab_size"],
            "tied": bool(hf.get("tie_word_embeddings"))}


# --- children ---------------------------------------------------------------------------------


def _setup(model_dir: str, pairs_path: str, seq_len: int):  # noqa: ANN202
    from transformers import AutoTokenizer

    from tunix_rt_pipelines.training import stream

    tok = AutoTokenizer.from_pretrained(model_dir)
    examples, stats = stream.tokenize_pairs(tok, read_pairs(Path(pairs_path)), seq_len=seq_len)
    return tok, examples, stats


def _window(history: list[dict], warmup: int) -> dict:
    """Steady-state numbers from per-step logs (log_every=1): steps after ``warmup``."""
    by_step = {h["step"]: h for h in history}
    last = max(by_step)
    a, b = by_step[warmup], by_step[last]
    tokens, seconds = b["tokens"] - a["tokens"], b["elapsed_s"] - a["elapsed_s"]
    step_times = [by_step[s]["elapsed_s"] - by_step[s - 1]["elapsed_s"] for s in range(warmup + 1, last + 1)]
    return {"timed_steps": last - warmup, "timed_tokens": tokens, "timed_s": seconds,
            "tokens_per_s": tokens / seconds, "step_s_median": sorted(step_times)[len(step_times) // 2],
            "tokens_per_s_median_step": tokens / (last - warmup) / sorted(step_times)[len(step_times) // 2],
            "step_s_min": min(step_times), "first_step_s": by_step[1]["elapsed_s"]}


def child_ours(backend: str, size: str, model_dir: str, pairs_path: str, warmup: int, timed: int,
               compile_: bool = False) -> dict:
    from tunix_rt_pipelines.training.config import load_config

    cfg = load_config(CONFIGS[size])
    steps = warmup + timed
    cfg = cfg.replace(backend=backend, steps=steps, log_every=1, eval_every=0, checkpoint_every=steps,
                      keep_checkpoints=1, compile=compile_)
    tok, examples, stats = _setup(model_dir, pairs_path, cfg.seq_len)
    if backend == "torch":
        from tunix_rt_pipelines.training import torch_backend as mod
    else:
        from tunix_rt_pipelines.training import jax_backend as mod
    with tempfile.TemporaryDirectory(dir=HERE / "data") as run_dir:
        t0 = time.perf_counter()
        res = mod.train(cfg, Path(model_dir), examples, [], Path(run_dir), log=lambda e: None)
        wall = time.perf_counter() - t0
    out = _window(res.history, warmup)
    out.update({"compile_s": res.compile_s, "train_call_wall_s": wall, "train_result_tokens_per_s": res.tokens_per_s,
                "final_loss": res.final_loss, "examples": len(examples), "dropped_too_long": stats.n_too_long,
                "batch": f"{cfg.batch_size} rows x {cfg.seq_len} (packed)",
                "tokens_per_step": out["timed_tokens"] / out["timed_steps"],
                "slots_per_step": cfg.batch_size * cfg.seq_len})
    out["fill"] = out["tokens_per_step"] / out["slots_per_step"]
    return out


def _hf_stepper(cfg, model_dir: str, examples: list, pad: int, bs: int):  # noqa: ANN001, ANN202
    """A step function for the plain transformers loop: ``step() -> (real tokens, padded slots, loss)``."""
    import torch
    from transformers import AutoModelForCausalLM

    from tunix_rt_pipelines.training import stream

    order = stream.epoch_order(len(examples), seed=cfg.seed, epoch=0)  # the order our stream uses
    ordered = [examples[i] for i in order]
    torch.manual_seed(cfg.seed)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.train()
    o = cfg.optimizer
    opt = torch.optim.AdamW(model.parameters(), lr=o.lr, betas=(o.b1, o.b2), eps=o.eps, weight_decay=o.weight_decay)

    def collate(exs):  # noqa: ANN001, ANN202
        longest = max(len(e) for e in exs)
        ids = torch.full((len(exs), longest), pad, dtype=torch.long)
        att = torch.zeros((len(exs), longest), dtype=torch.long)
        labels = torch.full((len(exs), longest), -100, dtype=torch.long)
        for b, e in enumerate(exs):
            seq = e.prompt_ids + e.completion_ids
            ids[b, : len(seq)] = torch.tensor(seq)
            att[b, : len(seq)] = 1
            labels[b, len(e.prompt_ids) : len(seq)] = torch.tensor(e.completion_ids)
        return {"input_ids": ids, "attention_mask": att, "labels": labels}, int(att.sum()), longest

    pos = 0

    def step() -> tuple[int, int, float]:
        nonlocal pos
        if pos + bs > len(ordered):
            pos = 0
        batch, real, longest = collate(ordered[pos : pos + bs])
        pos += bs
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), o.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return real, bs * longest, loss.item()

    return step


def _ours_torch_stepper(cfg, model_dir: str, examples: list, pad: int, compile_: bool):  # noqa: ANN001, ANN202
    """A step function over ``torch_backend``'s own pieces: ``load_for_training`` and the packed
    stream as ``train`` sets them up, stepped by ``optimizer_step``, which ``train`` calls too:
    ``step() -> (real tokens, slots, loss)``."""
    import torch

    from tunix_rt_pipelines.training import stream
    from tunix_rt_pipelines.training import torch_backend as tb

    device = torch.device("cpu")
    torch.manual_seed(cfg.seed)
    model, params, opt = tb.load_for_training(cfg.replace(compile=compile_), Path(model_dir), device)
    model.train()
    batches = stream.training_batches(examples, batch_size=cfg.batch_size, seq_len=cfg.seq_len, pad_id=pad,
                                      seed=cfg.seed, pack=cfg.pack)
    n = 0

    def step() -> tuple[int, int, float]:
        nonlocal n
        micro = [next(batches) for _ in range(cfg.grad_accum_steps)]
        loss = tb.optimizer_step(model, opt, params, micro, lr=tb.learning_rate(cfg.optimizer, cfg.steps, n),
                                 grad_clip=cfg.optimizer.grad_clip, device=device, step=n)
        n += 1
        return sum(b.n_real_tokens for b in micro), cfg.grad_accum_steps * cfg.batch_size * cfg.seq_len, loss

    return step


def hf_batch_size(cfg, examples: list) -> int:  # noqa: ANN001
    """Examples per batch of our packed stream in its first epoch, rounded: the HF loop's batch."""
    from tunix_rt_pipelines.training import stream

    ordered = [examples[i] for i in stream.epoch_order(len(examples), seed=cfg.seed, epoch=0)]
    n_batches = math.ceil(len(stream.pack_rows(ordered, cfg.seq_len, pack=cfg.pack)) / cfg.batch_size)
    return max(1, round(len(examples) / n_batches))


def child_hf(size: str, model_dir: str, pairs_path: str, warmup: int, timed: int, batch_size: int | None) -> dict:
    from tunix_rt_pipelines.training.config import load_config

    cfg = load_config(CONFIGS[size])
    tok, examples, stats = _setup(model_dir, pairs_path, cfg.seq_len)
    bs = batch_size or hf_batch_size(cfg, examples)
    step = _hf_stepper(cfg, model_dir, examples, tok.pad_token_id, bs)
    times, toks, padded = [], [], []
    for _ in range(warmup + timed):
        t0 = time.perf_counter()
        real, slots, loss_value = step()
        times.append(time.perf_counter() - t0)
        toks.append(real)
        padded.append(slots)
    t, n = sum(times[warmup:]), sum(toks[warmup:])
    st = sorted(times[warmup:])
    return {"timed_steps": timed, "timed_tokens": n, "timed_s": t, "tokens_per_s": n / t,
            "step_s_median": st[len(st) // 2], "step_s_min": st[0],
            "tokens_per_s_median_step": n / timed / st[len(st) // 2], "first_step_s": times[0], "compile_s": 0.0,
            "final_loss": loss_value, "examples": len(examples), "dropped_too_long": stats.n_too_long,
            "batch": f"{bs} examples, right-padded to the longest", "tokens_per_step": n / timed,
            "slots_per_step": sum(padded[warmup:]) / timed, "fill": n / sum(padded[warmup:])}


def rotation(names: list[str], r: int) -> list[str]:
    """``names`` rotated by ``r``: round ``r``'s order in the interleaved modes, so each goes first in turn."""
    k = r % len(names)
    return names[k:] + names[:k]


def child_interleaved(size: str, model_dir: str, pairs_path: str, warmup: int, rounds: int, per_round: int) -> dict:
    """The HF loop, ours-torch and ours-torch-compile in one process, ``per_round`` steps of each
    per round, the order rotated every round: the VM's drift falls on all three alike."""
    import statistics

    from tunix_rt_pipelines.training.config import load_config

    cfg = load_config(CONFIGS[size]).replace(steps=warmup + rounds * per_round)
    tok, examples, _ = _setup(model_dir, pairs_path, cfg.seq_len)
    pad = tok.pad_token_id
    steppers = {"hf-reference": _hf_stepper(cfg, model_dir, examples, pad, hf_batch_size(cfg, examples)),
                "ours-torch": _ours_torch_stepper(cfg, model_dir, examples, pad, compile_=False),
                "ours-torch-compile": _ours_torch_stepper(cfg, model_dir, examples, pad, compile_=True)}
    for step in steppers.values():  # the compiling step and warm caches fall outside the timing
        for _ in range(warmup):
            step()
    names = list(steppers)
    totals = {m: {"tokens": 0, "slots": 0, "s": 0.0} for m in names}
    per_round_rate: dict[str, list[float]] = {m: [] for m in names}
    for r in range(rounds):
        for m in rotation(names, r):
            tokens = slots = 0
            t0 = time.perf_counter()
            for _ in range(per_round):
                real, n_slots, _ = steppers[m]()
                tokens += real
                slots += n_slots
            dt = time.perf_counter() - t0
            totals[m]["tokens"] += tokens
            totals[m]["slots"] += slots
            totals[m]["s"] += dt
            per_round_rate[m].append(tokens / dt)
    out = {"rounds": rounds, "steps_per_round": per_round, "modes": {}}
    for m in names:
        t = totals[m]
        out["modes"][m] = {"tokens_per_s": t["tokens"] / t["s"], "fill": t["tokens"] / t["slots"],
                           "tokens_per_step": t["tokens"] / (rounds * per_round)}
    for m in ("ours-torch", "ours-torch-compile"):
        ratios = [a / b for a, b in zip(per_round_rate[m], per_round_rate["hf-reference"])]
        out[f"{m} / hf-reference"] = out["modes"][m]["tokens_per_s"] / out["modes"]["hf-reference"]["tokens_per_s"]
        out[f"{m} / hf-reference (median of rounds)"] = statistics.median(ratios)
        out[f"{m} / hf-reference (rounds min..max)"] = [min(ratios), max(ratios)]
    return out


def mfu(tokens_per_s: float, flops_per_token: float, gflops: float) -> float:
    """Model-FLOPs utilisation: the model's FLOPs per second over a matmul rate in GFLOP/s."""
    return tokens_per_s * flops_per_token / (gflops * 1e9)


def child_matmul(n: int, repeats: int) -> dict:
    """fp32 matmul GFLOP/s of this process's threads through torch, numpy and jax; the fastest is the peak."""
    import numpy as np
    import torch

    flops = 2 * n**3
    out = {"n": n, "torch_threads": torch.get_num_threads()}
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.matmul(a, b)
    best = min(_timeit(lambda: torch.matmul(a, b)) for _ in range(repeats))
    out["torch_gflops"] = flops / best / 1e9
    an, bn = a.numpy(), b.numpy()
    an @ bn
    out["numpy_gflops"] = flops / min(_timeit(lambda: an @ bn) for _ in range(repeats)) / 1e9
    import jax
    import jax.numpy as jnp

    aj, bj = jnp.asarray(an), jnp.asarray(bn)
    f = jax.jit(jnp.matmul)
    f(aj, bj).block_until_ready()
    out["jax_gflops"] = flops / min(_timeit(lambda: f(aj, bj).block_until_ready()) for _ in range(repeats)) / 1e9
    out["peak_library"] = max(("torch", "numpy", "jax"), key=lambda lib: out[f"{lib}_gflops"])
    out["peak_gflops"] = out[f"{out['peak_library']}_gflops"]
    del np
    return out


def _timeit(fn) -> float:  # noqa: ANN001
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def child(args: argparse.Namespace) -> None:
    if args.child == "matmul":
        out = child_matmul(args.matmul_n, args.matmul_repeats)
    elif args.child == "hf-reference":
        out = child_hf(args.size, args.model_dir, args.pairs, args.warmup, args.timed, args.hf_batch)
    elif args.child in ("ours-torch", "ours-jax"):
        out = child_ours(args.child.removeprefix("ours-"), args.size, args.model_dir, args.pairs, args.warmup,
                         args.timed)
    elif args.child == "ours-torch-compile":
        out = child_ours("torch", args.size, args.model_dir, args.pairs, args.warmup, args.timed, compile_=True)
    elif args.child == "interleaved":
        out = child_interleaved(args.size, args.model_dir, args.pairs, args.warmup, args.rounds, args.steps_per_round)
    else:
        raise SystemExit(f"unknown mode {args.child}")
    out["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(out))


def run_child(argv: list[str], script: str = __file__) -> dict:
    proc = subprocess.run([sys.executable, script, *argv], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{argv} failed:\n{proc.stderr[-4000:]}")
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line.removeprefix("RESULT "))


# --- main -------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--examples", type=int, default=3000, help="SFT pairs generated (enough for the timed steps)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sizes", default="tiny,10m")
    ap.add_argument("--modes", default=DEFAULT_MODES)
    ap.add_argument("--warmup-tiny", type=int, default=10)
    ap.add_argument("--timed-tiny", type=int, default=100)
    ap.add_argument("--warmup-10m", type=int, default=5)
    ap.add_argument("--timed-10m", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=8, help="interleaved mode: rounds")
    ap.add_argument("--steps-per-round", type=int, default=3, help="interleaved mode: steps of each loop per round")
    ap.add_argument("--matmul-n", type=int, default=2048)
    ap.add_argument("--matmul-repeats", type=int, default=10)
    ap.add_argument("--out", default="train_bench.json")
    # child-only
    ap.add_argument("--child")
    ap.add_argument("--size")
    ap.add_argument("--model-dir")
    ap.add_argument("--pairs")
    ap.add_argument("--warmup", type=int)
    ap.add_argument("--timed", type=int)
    ap.add_argument("--hf-batch", type=int, help="examples per batch of the HF loop (default: as ours holds)")
    args = ap.parse_args()
    if args.child:
        child(args)
        return

    t_start = time.time()
    load_start = loadavg()
    print(f"load average at start: {load_start}", flush=True)
    prep = prepare(HERE / "data", args.examples, args.seed)
    mm = run_child(["--child", "matmul", "--matmul-n", str(args.matmul_n), "--matmul-repeats", str(args.matmul_repeats)])
    peak, peak_lib = mm["peak_gflops"], mm["peak_library"]
    print(f"matmul {args.matmul_n}x{args.matmul_n} fp32 ({mm['torch_threads']} threads): torch {mm['torch_gflops']:.1f}, "
          f"numpy {mm['numpy_gflops']:.1f}, jax {mm['jax_gflops']:.1f} GFLOP/s; peak used for MFU = {peak_lib} "
          f"{peak:.1f} GFLOP/s", flush=True)

    results: dict = {"load_avg_start": load_start, "matmul": mm, "peak_gflops_for_mfu": peak, "peak_library": peak_lib,
                     "flops_formula": "6*N + 12*L*H*T per token; N = non-embedding params (blocks + untied LM head), "
                                      "T = mean tokens per example", "sizes": {}}
    for size in args.sizes.split(","):
        warmup = getattr(args, f"warmup_{size}")
        timed = getattr(args, f"timed_{size}")
        shape = model_shape(prep["models"][size])
        pairs = read_pairs(Path(prep["pairs"]))
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(prep["models"][size])
        lengths = [len(tok(p)["input_ids"]) + len(tok(c)["input_ids"]) + 1 for p, c in pairs]
        mean_len = sum(lengths) / len(lengths)
        flops_tok = 6 * shape["non_embedding_params"] + 12 * shape["layers"] * shape["hidden"] * mean_len
        sr: dict = {"model": shape, "mean_example_tokens": mean_len, "max_example_tokens": max(lengths),
                    "flops_per_token": flops_tok, "warmup_steps": warmup, "modes": {}}
        print(f"\n== {size}: {shape['params'] / 1e6:.2f}M params ({shape['non_embedding_params'] / 1e6:.2f}M "
              f"non-embedding), mean example {mean_len:.1f} tokens (max {max(lengths)}), "
              f"{flops_tok / 1e6:.1f} MFLOP/token; {warmup} warmup + {timed} timed steps", flush=True)
        for mode in args.modes.split(","):
            argv = ["--child", mode, "--size", size, "--model-dir", prep["models"][size], "--pairs", prep["pairs"],
                    "--warmup", str(warmup), "--timed", str(timed)]
            if mode == "hf-reference" and args.hf_batch:
                argv += ["--hf-batch", str(args.hf_batch)]
            if mode == "interleaved":
                argv += ["--rounds", str(args.rounds), "--steps-per-round", str(args.steps_per_round)]
                r = run_child(argv)
                for name, mr in r["modes"].items():
                    mr["mfu"] = mfu(mr["tokens_per_s"], flops_tok, peak)
                    mr["mfu_vs_torch_matmul"] = mfu(mr["tokens_per_s"], flops_tok, mm["torch_gflops"])
                    print(f"{'interleaved ' + name:>30}: {mr['tokens_per_s']:8.0f} tok/s  MFU {100 * mr['mfu']:5.1f}% "
                          f"({100 * mr['mfu_vs_torch_matmul']:.1f}% of torch's matmul)  "
                          f"{mr['tokens_per_step']:.0f} tok/step, fill {100 * mr['fill']:.0f}%", flush=True)
                for k, v in r.items():
                    if "/" in k:
                        shown = f"{v[0]:.2f}x..{v[1]:.2f}x" if isinstance(v, list) else f"{v:.2f}x"
                        print(f"   interleaved {k}: {shown}")
                sr["interleaved"] = r
                continue
            t0 = time.perf_counter()
            r = run_child(argv)
            r["process_wall_s"] = time.perf_counter() - t0
            r["mfu"] = mfu(r["tokens_per_s"], flops_tok, peak)
            r["mfu_median_step"] = mfu(r["tokens_per_s_median_step"], flops_tok, peak)
            r["mfu_vs_torch_matmul"] = mfu(r["tokens_per_s"], flops_tok, mm["torch_gflops"])
            sr["modes"][mode] = r
            print(f"{mode:>24}: {r['tokens_per_s']:8.0f} tok/s ({r['tokens_per_s_median_step']:.0f} at the median "
                  f"step)  MFU {100 * r['mfu']:5.1f}% ({100 * r['mfu_median_step']:.1f}%; "
                  f"{100 * r['mfu_vs_torch_matmul']:.1f}% of torch's matmul)  "
                  f"step {r['step_s_median']:.3f}s (median)  {r['tokens_per_step']:.0f} tok/step, fill "
                  f"{100 * r['fill']:.0f}%  compile {r['compile_s']:.1f}s  peak RSS {r['peak_rss_mb']:.0f} MB  "
                  f"[{r['batch']}; process {r['process_wall_s']:.0f}s]", flush=True)
        m = sr["modes"]
        ratios = {}
        for a, b in (("ours-torch", "hf-reference"), ("ours-torch-compile", "hf-reference"),
                     ("ours-torch-compile", "ours-torch"), ("ours-jax", "hf-reference"), ("ours-jax", "ours-torch")):
            if a in m and b in m:
                ratios[f"{a} / {b}"] = m[a]["tokens_per_s"] / m[b]["tokens_per_s"]
                ratios[f"{a} / {b} (median-step)"] = (m[a]["tokens_per_s_median_step"]
                                                      / m[b]["tokens_per_s_median_step"])
        sr["ratios"] = ratios
        for k, v in ratios.items():
            print(f"   {k}: {v:.2f}x")
        results["sizes"][size] = sr

    results["load_avg_end"] = loadavg()
    results["wall_s"] = time.time() - t_start
    print(f"\nload average at end: {results['load_avg_end']}; total {results['wall_s']:.0f}s")
    print("targets (10m): ours / hf-reference >= 1.25x; MFU >= 50%")
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / args.out).write_text(json.dumps(results, indent=2))
    print(f"wrote {out_dir / args.out}")


if __name__ == "__main__":
    main()
