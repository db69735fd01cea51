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
gradient. The work is S·L² against the mask's B·T². On the 10M bench model on CPU, rows of 512
with this attention trained 1.06× faster than rows of 256 with the mask (compiled and eager
alike, alternating in one process): 95% of the slots hold tokens instead of 88%.

S·L² is not bounded by the rows: one long example among many short ones pads them all to its
length. ``layout_kwargs`` therefore gives a batch the gathered layout only where it costs no more
attention work than the mask and at most twice the rows' slots; any other batch, and any forward
without a layout (generation, a plain ``model(ids)``), runs transformers' own SDPA path with the
mask transformers builds for it.

Use: ``enable(model)`` once after loading; pass ``layout_kwargs(segment_ids, positions, device)``
to every training forward of the decoder. transformers forwards unknown keyword arguments down
to the attention function, which is how the layout reaches each layer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AttentionInterface, PreTrainedModel
from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

logger = logging.getLogger(__name__)

NAME = "tunix_rt_packed_sdpa"  # the attn_implementation name under which transformers dispatches here


@dataclass(frozen=True)
class ExampleLayout:
    gather: np.ndarray  # [S, L] int64: flat packed position (b * T + t) of example s's token l; 0 past its end
    scatter: np.ndarray  # [B * T] int64: slot (s * L + l) that holds each packed position; 0 on padding


def example_layout(segment_ids: np.ndarray, positions: np.ndarray) -> ExampleLayout:
    """Where each packed example's tokens sit, from a ``TokenBatch``'s ``segment_ids`` and ``positions``.

    Examples are numbered in row order. Each is contiguous in its row and its positions restart
    at 0 (the stream's contract), so position 0 of a real token starts the next example. A batch
    of one example gets a second, empty one (all slots past its end): under torch.compile a
    dimension of size 1 would be specialised, and a recompile paid, for that batch alone.
    """
    b, t = segment_ids.shape
    real = np.flatnonzero(segment_ids.reshape(-1))  # [N] packed positions of real tokens, in order
    if real.size == 0:
        raise ValueError("a batch without tokens has no examples to attend over")
    offset = positions.reshape(-1)[real].astype(np.int64)  # [N] index of each token in its example
    example = np.cumsum(offset == 0) - 1  # [N] example of each token
    n_examples, longest = max(2, int(example[-1]) + 1), int(offset.max()) + 1
    gather = np.zeros((n_examples, longest), dtype=np.int64)
    gather[example, offset] = real
    scatter = np.zeros(b * t, dtype=np.int64)
    scatter[real] = example * longest + offset
    return ExampleLayout(gather, scatter)


def gathered_is_cheaper(layout: ExampleLayout, rows: tuple[int, int]) -> bool:
    """Whether the gathered layout costs no more attention work (S·L² vs B·T²) than the masked rows
    ``(B, T)``, and at most twice their slots (S·L vs B·T: the gathered q/k/v and outputs are kept
    for the backward pass)."""
    (s, length), (b, t) = layout.gather.shape, rows
    return s * length * length <= b * t * t and s * length <= 2 * b * t


def layout_kwargs(segment_ids: np.ndarray, positions: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
    """The keyword arguments that carry a batch's layout through the model to ``packed_sdpa``;
    empty where the gathered layout would cost more than the mask (see ``gathered_is_cheaper``)."""
    layout = example_layout(segment_ids, positions)
    if not gathered_is_cheaper(layout, segment_ids.shape):
        return {}
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
    attention_mask: torch.Tensor | None,  # transformers' mask: used only on its own path
    dropout: float = 0.0,
    scaling: float | None = None,
    sliding_window: int | None = None,
    example_gather: torch.Tensor | None = None,  # [S, L]
    example_scatter: torch.Tensor | None = None,  # [B * T]
    **kwargs,  # noqa: ANN003  (what else the model passes along: position ids, flags)
) -> tuple[torch.Tensor, None]:
    """transformers' attention-function contract; returns ``([B, T, Hq, D], None)``."""
    if example_gather is None or example_scatter is None or not getattr(module, "is_causal", True):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      sliding_window=sliding_window, **kwargs)
    b, hq, t, d = query.shape
    s, length = example_gather.shape

    def unpack(x: torch.Tensor) -> torch.Tensor:  # [B, H, T, D] -> [S, H, L, D]
        return x.transpose(1, 2).reshape(b * t, x.shape[1], d)[example_gather].transpose(1, 2)

    q, k, v = unpack(query), unpack(key), unpack(value)
    if sliding_window is not None and length > sliding_window:  # Gemma's local layers, on long examples
        i = torch.arange(length, device=query.device)
        band = (i[None, :] <= i[:, None]) & (i[:, None] - i[None, :] < sliding_window)  # [L, L]: causal band
        # With a mask, repeat the key/value heads as transformers does: SDPA's fused CUDA kernels
        # take grouped-query attention only without one.
        groups = hq // k.shape[1]
        k, v = repeat_kv(k, groups), repeat_kv(v, groups)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=band, dropout_p=dropout, scale=scaling)
    else:
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, scale=scaling, is_causal=True,
                                             enable_gqa=True)  # [S, Hq, L, D]
    out = out.transpose(1, 2).reshape(s * length, hq, d)[example_scatter]  # [B * T, Hq, D]
    return out.view(b, t, hq, d), None


# Our name gets transformers' own SDPA mask: packed_sdpa ignores it on the gathered path and
# hands it to transformers' SDPA on the other.
AttentionInterface.register(NAME, packed_sdpa)
AttentionMaskInterface.register(NAME, sdpa_mask)


def enable(model: PreTrainedModel) -> None:
    """Make ``model`` attend with ``packed_sdpa``; a forward without a layout runs as before.

    A model class that cannot switch its attention keeps transformers' own: still correct (the mask
    from positions isolates the examples), only slower on long rows, so that is a warning.
    """
    model.set_attn_implementation(NAME)
    if model.config._attn_implementation != NAME:
        logger.warning("%s cannot switch to per-example attention; packed rows are masked instead",
                       type(model).__name__)
