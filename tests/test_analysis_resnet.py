"""The analyses behind notebooks 01, 04 and 05: receptive fields (VGG Sec. 2.3), layer
responses (R-Fig. 7) and the bottleneck block's cost (R-Fig. 5)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from resnetlab.analysis import receptive_field as rf
from resnetlab.analysis.bottleneck import bottleneck_cost
from resnetlab.analysis.responses import layer_response_stds, response_modules
from resnetlab.models import build_model


def test_theoretical_receptive_field():
    assert rf.theoretical_rf(3, 3) == 7
    assert rf.theoretical_rf(1, 7) == 7
    assert rf.theoretical_rf(2, 3) == 5
    assert [rf.theoretical_rf(n, 3) for n in range(1, 6)] == [3, 5, 7, 9, 11]
    assert rf.theoretical_rf(2, 3, stride=2) == 7  # 1 + 2 + 2*2
    with pytest.raises(ValueError):
        rf.theoretical_rf(0, 3)


def test_gradient_support_is_exactly_7x7_for_both_designs():
    maps = rf.gradient_maps(channels=4, size=13, inits=6)
    for name, g in maps.items():
        assert g.shape == (13, 13)
        assert rf.support(g) == (7, 7), name
        assert np.count_nonzero(g) == 49, name  # every pixel of the window matters, none outside
    stack, single = maps.values()
    # the stack is centre-heavy; one 7x7 conv spreads its gradient evenly (9/49 in the central 3x3)
    assert rf.centre_fraction(stack) > rf.centre_fraction(single) + 0.05


def test_stack_cost_is_27_vs_49_c_squared():
    table = rf.stack_cost(channels=8, size=10).set_index("layers")
    assert table.loc[3, "params"] == 27 * 8 * 8
    assert table.loc[1, "params"] == 49 * 8 * 8
    assert table.loc[3, "params"] / table.loc[1, "params"] == pytest.approx(27 / 49)
    assert table.loc[3, "MACs"] == 27 * 8 * 8 * 10 * 10
    assert table.loc[1, "MACs"] == 49 * 8 * 8 * 10 * 10
    assert list(table["receptive field"]) == ["7x7", "7x7"]


@pytest.mark.parametrize("model, layers", [("plain20", 19), ("resnet20", 19), ("plain56", 55), ("resnet56", 55)])
def test_one_response_std_per_3x3_layer(model, layers):
    torch.manual_seed(0)
    net = build_model(model)
    assert len(response_modules(net)) == layers
    names, stds = layer_response_stds(net, [torch.randn(2, 3, 32, 32), torch.randn(3, 3, 32, 32)])
    assert len(names) == len(stds) == layers
    assert np.all(np.isfinite(stds)) and np.all(stds > 0)
    assert net.training  # the mode is restored


def test_response_std_matches_a_direct_computation():
    torch.manual_seed(0)
    net = build_model("resnet20").eval()
    x = torch.randn(4, 3, 32, 32)
    outputs = []
    first = response_modules(net)[0][1]
    h = first.register_forward_hook(lambda m, i, o: outputs.append(o))
    with torch.no_grad():
        net(x)
    h.remove()
    _, stds = layer_response_stds(net, [x[:1], x[1:]])
    assert stds[0] == pytest.approx(outputs[0].double().std(unbiased=False).item(), rel=1e-6)


def test_bottleneck_cost_counts_the_real_blocks():
    table = bottleneck_cost(width=64, size=56).set_index("input dims")
    basic, bottle = table.loc[64], table.loc[256]
    assert basic["conv params"] == 2 * 9 * 64 * 64  # two 3x3, 64 -> 64
    assert bottle["conv params"] == 256 * 64 + 9 * 64 * 64 + 64 * 256  # 1x1, 3x3, 1x1
    assert basic["params"] == basic["conv params"] + 2 * 2 * 64  # plus two BN (gamma, beta)
    assert basic["macs"] == basic["conv params"] * 56 * 56
    assert bottle["macs"] == bottle["conv params"] * 56 * 56
    assert 0.9 < bottle["macs"] / basic["macs"] < 1.0  # "similar time complexity"
