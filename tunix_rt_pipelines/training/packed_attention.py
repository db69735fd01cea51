"""Attention for packed rows that computes each example's causal attention on its own.

A packed row ``[T]`` holds several examples. transformers' SDPA path attends over the whole
row under a block-diagonal causal mask that it builds from ``position_ids`` (``[B, 1, T, T]``):
every score of the row is computed and most are then masked, and with a mask the key/value
heads are repeated for grouped-query attention. The cost grows with T², so rows long enough
to pack well (fewer padding slots) paid for it in attention.

Here each layer gathers the examples' queries, keys and values out of the packed rows into one
right-padded batch ``[S, H, L, D]`` (S examples in the batch, L the longest), runs causal SDPA
on it without a mask and scatters the outputs back to their packed positions. Right padding
needs no mask under causal attention: the query at offset l of an example attends keys 0..l,
all of its own example. The padded slots' outputs are never scattered back, so they get no
gradient. The cost is S·L², whatever the row length. On the 10M bench model on CPU, rows of
512 with this attention trained 1.06× faster than rows of 256 with the mask (compiled and
eager alike, alternating in one process): 94% of the slots hold tokens instead of 88%.

Use: ``enable(model)`` once after loading; pass ``layout_kwargs(batch, device)`` to every
forward of the decoder. transformers forwards unknown keyword arguments down to the attention
function, which is how the layout reaches each layer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AttentionInterface, PreTrainedModel
from transformers.masking_utils import AttentionMaskInterface

logger = logging.getLogger(__name__)

NAME = "tunix_rt_packed_sdpa"  # the attn_implementation name under which transformers dispatches here


@dataclass(frozen=True)
class ExampleLayout:
    gather: np.ndarray  # [S, L] int64: flat packed position (b * T + t) of example s's token l; 0 past its end
    scatter: np.ndarray  # [B * T] int64: slot (s * L + l) that holds each packed position; 0 on padding


def example_layout(segment_ids: np.ndarray, positions: np.ndarray) -> ExampleLayout:
    """Where each packed example's tokens sit, from a ``TokenBatch``'s ``segment_ids`` and ``positions``.

    Examples are numbered in row order. Each is contiguous in its row and its positions restart
    at 0 (the stream's contract), so position 0 of a real token starts the next example.
    """
    b, t = segment_ids.shape
    real = np.flatnonzero(segment_ids.reshape(-1))  # [N] packed positions of real tokens, in order
    if real.size == 0:
        raise ValueError("a batch without tokens has no examples to attend over")
    offset = positions.reshape(-1)[real].astype(np.int64)  # [N] index of each token in its example
    example = np.cumsum(offset == 0) - 1  # [N] example of each token
    n_examples, longest = int(example[-1]) + 1, int(offset.max()) + 1
    gather = np.zeros((n_examples, longest), dtype=np.int64)
    gather[example, offset] = real
    scatter = np.zeros(b * t, dtype=np.int64)
    scatter[real] = example * longest + offset
    return ExampleLayout(gather, scatter)


def layout_kwargs(segment_ids: np.ndarray, positions: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
    """The keyword arguments that carry a batch's layout through the model to ``packed_sdpa``."""
    layout = example_layout(segment_ids, positions)
    gather = torch.from_numpy(layout.gather).to(device)
    # The number of examples and the longest one change from batch to batch: dynamic under
    # torch.compile, so one graph serves every batch instead of a recompile per new shape.
    torch._dynamo.maybe_mark_dynamic(gather, 0)
    torch._dynamo.maybe_mark_dynamic(gather, 1)
    return {"example_gather": gather, "example_scatter": torch.from_numpy(layout.scatter).to(device)}


def packed_sdpa(
    module: torch.nn.Module,
    query: torch.Tensor,  # [B, Hq, T, D]
    key: torch.Tensor,  # [B, Hkv, T, D]
    value: torch.Tensor,  # [B, Hkv, T, D]
    attention_mask: torch.Tensor | None,  # always None: no mask is built for this implementation
    dropout: float = 0.0,
    scaling: float | None = None,
    sliding_window: int | None = None,
    example_gather: torch.Tensor | None = None,  # [S, L]
    example_scatter: torch.Tensor | None = None,  # [B * T]
    **kwargs,  # noqa: ANN003  (what else the model passes along: position ids, flags)
) -> tuple[torch.Tensor, None]:
    """transformers' attention-function contract; returns ``([B, T, Hq, D], None)``."""
    if example_gather is None or example_scatter is None:
        raise ValueError(f"attn_implementation {NAME!r} needs the batch's layout: pass "
                         f"packed_attention.layout_kwargs(...) to the model's forward")
    b, hq, t, d = query.shape
    s, length = example_gather.shape

    def unpack(x: torch.Tensor) -> torch.Tensor:  # [B, H, T, D] -> [S, H, L, D]
        return x.transpose(1, 2).reshape(b * t, x.shape[1], d)[example_gather].transpose(1, 2)

    mask = None
    if sliding_window is not None and length > sliding_window:  # Gemma's local layers, on long examples
        i = torch.arange(length, device=query.device)
        mask = (i[None, :] <= i[:, None]) & (i[:, None] - i[None, :] < sliding_window)  # [L, L]: causal band
    out = F.scaled_dot_product_attention(
        unpack(query), unpack(key), unpack(value), attn_mask=mask, dropout_p=dropout, scale=scaling,
        is_causal=mask is None, enable_gqa=True,
    )  # [S, Hq, L, D]
    out = out.transpose(1, 2).reshape(s * length, hq, d)[example_scatter]  # [B * T, Hq, D]
    return out.view(b, t, hq, d), None


def _no_mask(*args, **kwargs) -> None:  # noqa: ANN002, ANN003
    return None  # packed_sdpa isolates examples itself: the [B, 1, T, T] mask is never built


AttentionInterface.register(NAME, packed_sdpa)
AttentionMaskInterface.register(NAME, _no_mask)


def enable(model: PreTrainedModel) -> None:
    """Make ``model`` attend with ``packed_sdpa`` (training only: generation keeps its own attention).

    A model class that cannot switch its attention keeps transformers' own: still correct (the mask
    from positions isolates the examples), only slower on long rows, so that is a warning.
    """
    model.set_attn_implementation(NAME)
    if model.config._attn_implementation != NAME:
        logger.warning("%s cannot switch to per-example attention; packed rows are masked instead",
                       type(model).__name__)
