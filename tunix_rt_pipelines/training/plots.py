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
