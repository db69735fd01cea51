"""The loss curve as a PNG: better looked at than read."""

from __future__ import annotations

import io


def loss_curve_png(history: list[dict], *, title: str) -> bytes:
    """Training loss (and validation loss where evaluated) against the step."""
    import matplotlib

    matplotlib.use("Agg")  # no display; safe in worker threads and subprocesses
    import matplotlib.pyplot as plt

    train = [(h["step"], h["loss"]) for h in history if h.get("loss") is not None]
    val = [(h["step"], h["val_loss"]) for h in history if h.get("val_loss") is not None]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if train:
        ax.plot(*zip(*train), label="train loss")
    if val:
        ax.plot(*zip(*val), marker="o", label="validation loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (nats / target token)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def loss_curves_png(runs: list[tuple[str, list[dict]]], *, title: str = "loss curves") -> bytes:
    """One panel per run, side by side with shared axes, so curves of compared runs line up."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not runs:
        raise ValueError("loss_curves_png needs at least one run")
    fig, axes = plt.subplots(1, len(runs), figsize=(4.5 * len(runs), 3.8), dpi=100, sharex=True, sharey=True,
                             squeeze=False)
    for ax, (label, history) in zip(axes[0], runs):
        train = [(h["step"], h["loss"]) for h in history if h.get("loss") is not None]
        val = [(h["step"], h["val_loss"]) for h in history if h.get("val_loss") is not None]
        if train:
            ax.plot(*zip(*train), label="train")
        if val:
            ax.plot(*zip(*val), marker="o", label="validation")
        final = f"final {train[-1][1]:.3f}" if train else "no steps logged"
        ax.set_title(f"{label}\n{final}", fontsize=9)
        ax.set_xlabel("optimizer step")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("loss (nats / target token)")
    axes[0][0].legend()
    fig.suptitle(title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()
