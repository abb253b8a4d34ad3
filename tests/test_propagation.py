"""IM Sec. 3 (Eq. 4-7) measured on small nets at initialisation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from resnetlab.analysis.propagation import COLUMNS, measure, signal_propagation, summarise
from resnetlab.models import build_model


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def df():
    torch.manual_seed(0)
    nets = {
        "plain": build_model("plain20"),
        "original": build_model("resnet20"),
        "scale 0.5": build_model("resnet20", variant="constant_scaling", shortcut_scale=0.5),
        "pre-act": build_model("preresnet20"),
    }
    return signal_propagation(nets, "init", batch_size=4)


def _net(df, name):
    return df[df["net"] == name].sort_values("unit")


def test_columns_and_units(df):
    assert list(df.columns[:5]) == COLUMNS
    assert set(df["state"]) == {"init"}
    for name in ("plain", "original", "scale 0.5", "pre-act"):
        s = _net(df, name)
        assert list(s["unit"]) == list(range(10))  # x_0 .. x_9 for 9 units
        assert s["forward_norm"].iloc[0] == pytest.approx(1.0)  # relative to x_0
        assert s["backward_norm"].iloc[-1] == pytest.approx(1.0)  # relative to dE/dx_L
        assert np.isfinite(s["forward_norm"]).all() and (s["backward_norm"] > 0).all()


def test_constant_scaling_shortcut_term_vanishes_geometrically(df):
    """lambda = 0.5: the shortcut term of IM Eq. 5 shrinks about lambda per unit (a little
    faster, as the after-addition ReLU also masks it)."""
    d = _net(df, "scale 0.5")["direct_norm"].to_numpy()
    assert (np.diff(d) > 0).all(), "shrinks monotonically towards the input"
    per_unit = d[0] ** (1 / 9)
    assert 0.25 < per_unit < 0.6
    assert d[0] < 1e-2


def test_identity_shortcut_term_stays_within_a_small_factor(df):
    """Identity shortcuts (pre-activation): the shortcut term only changes at the two stage
    transitions (subsampling shortcut, shared pre-activation), never geometrically."""
    d = _net(df, "pre-act")["direct_norm"].to_numpy()
    assert d.min() > 0.03
    ratio = summarise(df).set_index("net").loc["pre-act", "shortcut term per unit"]
    assert ratio > 0.7


def test_plain_net_has_no_shortcut_term_and_its_gradient_changes_more(df):
    plain = _net(df, "plain")
    assert (plain["direct_norm"] == 0).all()
    s = summarise(df).set_index("net")
    drift = lambda name: abs(math.log(s.loc[name, "gradient dE/dx_0 / dE/dx_L"]))
    assert drift("plain") > drift("original")


def test_measure_leaves_the_model_untouched():
    torch.manual_seed(0)
    model = build_model("resnet20").eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    raw = measure(model, batch_size=2, direct=False)
    assert list(raw.columns) == ["unit", "forward_norm", "backward_norm"]
    assert not model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
