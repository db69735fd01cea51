import struct

import pytest

from tunix_rt_pipelines.training.plots import loss_curves_png

HISTORY = [{"step": s, "loss": 5.0 / s, "val_loss": 6.0 / s if s % 2 == 0 else None} for s in range(1, 11)]


def png_width(data: bytes) -> int:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">I", data[16:20])[0]


def test_compared_runs_get_one_panel_each_side_by_side():
    one = png_width(loss_curves_png([("a", HISTORY)]))
    three = png_width(loss_curves_png([("a", HISTORY), ("b", HISTORY), ("c", [])]))
    assert three > 2.5 * one


def test_no_runs_is_an_error_not_an_empty_picture():
    with pytest.raises(ValueError, match="at least one run"):
        loss_curves_png([])
