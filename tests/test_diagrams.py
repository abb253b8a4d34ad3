"""Fast tests of resnetlab.plots.diagrams: the drawn boxes must be the ops of the model layouts."""

from __future__ import annotations

import types

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from resnetlab.models import unit_layout  # noqa: E402
from resnetlab.plots import diagrams  # noqa: E402

SHORTCUTS = ("original", "constant_scaling", "exclusive_gating", "shortcut_only_gating", "conv_shortcut",
             "dropout_shortcut")
ACTIVATIONS = ("original", "bn_after_addition", "relu_before_addition", "relu_only_preact", "full_preact")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def drawn_ops(ax) -> dict[str, list[str]]:
    """Ops read back from the box labels' gids ("op:<path>:<i>:<op>"), in drawing order."""
    out: dict[str, list[tuple[int, str]]] = {"residual": [], "shortcut": [], "after": []}
    for t in ax.texts:
        gid = t.get_gid() or ""
        if gid.startswith("op:"):
            _, path, i, op = gid.split(":", 3)
            out[path].append((int(i), op))
    return {k: [op for _, op in sorted(v)] for k, v in out.items()}


def box_texts(ax, path: str) -> list[str]:
    items = [(int(t.get_gid().split(":")[2]), t.get_text()) for t in ax.texts
             if (t.get_gid() or "").startswith(f"op:{path}:")]
    return [text for _, text in sorted(items)]


def assert_matches(ax, layout) -> None:
    ops = drawn_ops(ax)
    assert ops["residual"] == list(layout.residual)
    assert ops["shortcut"] == list(layout.shortcut or ())
    assert ops["after"] == list(layout.after)
    assert box_texts(ax, "residual") == [diagrams.op_label(op) for op in layout.residual]
    has_add = any(t.get_gid() == "add" for t in ax.texts)
    assert has_add == (layout.shortcut is not None)


def test_op_labels():
    assert diagrams.op_label("conv3x3") == "3x3 conv"
    assert diagrams.op_label("conv1x1", 256) == "1x1, 256"
    assert diagrams.op_label("bn") == "BN"
    assert diagrams.op_label("relu") == "ReLU"
    assert diagrams.op_label("scale(0.5)") == "\u00d7 0.5"
    assert diagrams.op_label("gate(1-g)") == "\u00d7 (1\u2212g)"
    assert diagrams.op_label("dropout(0.5)") == "dropout 0.5"
    assert diagrams.op_kind("conv1x1") == "weight" and diagrams.op_kind("gate(g)") == "gate"


def test_draw_unit_any_layout():
    layout = types.SimpleNamespace(residual=("relu", "conv3x3", "bn", "scale(0.5)"), shortcut=("conv1x1", "bn"),
                                   after=("relu",), name="custom")
    fig = diagrams.draw_unit(layout)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 1
    assert_matches(fig.axes[0], layout)
    assert fig.axes[0].get_title() == "custom"
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "$x_l$" in texts and "$x_{l+1}$" in texts


def test_draw_unit_identity_and_plain():
    ident = unit_layout()
    fig, ax = plt.subplots()
    assert diagrams.draw_unit(ident, ax) is fig
    assert_matches(ax, ident)
    assert any(p.get_gid() == "shortcut" for p in ax.patches)
    plain = unit_layout(variant="plain")
    fig = diagrams.draw_unit(plain)
    ax = fig.axes[0]
    assert_matches(ax, plain)
    assert not any(p.get_gid() == "shortcut" for p in ax.patches)


def test_fig_residual_unit():
    fig = diagrams.fig_residual_unit()
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    assert_matches(ax, unit_layout("basic", "original", "original"))
    texts = [t.get_text() for t in ax.texts]
    assert "$\\mathcal{F}(x)$" in texts
    assert any("identity" in t for t in texts)
    assert "$\\mathcal{F}(x) + x$" in texts


def test_fig_basic_vs_bottleneck():
    fig = diagrams.fig_basic_vs_bottleneck()
    assert len(fig.axes) == 2
    basic_ax, bottle_ax = fig.axes
    assert drawn_ops(basic_ax)["residual"] == list(unit_layout("basic").residual)
    assert drawn_ops(bottle_ax)["residual"] == list(unit_layout("bottleneck").residual)
    convs = lambda ax: [t for t in box_texts(ax, "residual") if "x" in t and "," in t]  # noqa: E731
    assert convs(basic_ax) == ["3x3, 64", "3x3, 64"]
    assert convs(bottle_ax) == ["1x1, 64", "3x3, 64", "1x1, 256"]
    assert "64-d" in basic_ax.get_title() and "256-d" in bottle_ax.get_title()


def test_fig_shortcut_variants():
    fig = diagrams.fig_shortcut_variants()
    assert len(fig.axes) == 6
    for ax, variant, letter in zip(fig.axes, SHORTCUTS, "abcdef"):
        assert_matches(ax, unit_layout("basic", "original", variant))
        assert ax.get_title().startswith(f"({letter})")
    # the six panels share one vertical scale
    assert len({ax.get_ylim() for ax in fig.axes}) == 1


def test_fig_activation_variants():
    fig = diagrams.fig_activation_variants()
    assert len(fig.axes) == 5
    for ax, act, letter in zip(fig.axes, ACTIVATIONS, "abcde"):
        assert_matches(ax, unit_layout("basic", act, "original"))
        assert ax.get_title().startswith(f"({letter})")


def test_layout_fn_injection():
    calls = []

    def fake(block="basic", activation="original", variant="original", **_):
        calls.append((block, activation, variant))
        return types.SimpleNamespace(residual=("conv3x3",), shortcut=(), after=(), name=f"({variant}) x")

    fig = diagrams.fig_shortcut_variants(layout_fn=fake)
    assert len(fig.axes) == 6 and [c[2] for c in calls] == list(SHORTCUTS)



def test_plots_exports_the_diagrams():
    from resnetlab import plots

    for name in ("draw_unit", "fig_residual_unit", "fig_basic_vs_bottleneck", "fig_shortcut_variants",
                 "fig_activation_variants", "op_label", "op_kind"):
        assert getattr(plots, name) is getattr(diagrams, name)


# --------------------------------------------------------------------------- R-Fig. 3 columns, IM Fig. 5


def _weighted_layers(name: str) -> int:
    """Weighted layers as the papers count them: convs and fc layers, shortcut projections not."""
    import torch
    from torch import nn

    from resnetlab.models import build_model

    with torch.device("meta"):
        net = build_model(name)
    weighted = sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in net.modules())
    for unit in getattr(net, "units", []):
        if unit.shortcut is not None:
            weighted -= sum(isinstance(m, nn.Conv2d) for m in unit.shortcut.modules())
    return weighted


def test_fig_architecture_columns_counts_the_models_layers():
    from resnetlab.plots import architecture

    fig = architecture.fig_architecture_columns()
    ax = fig.axes[0]
    boxes: dict[str, list[str]] = {}
    for p in ax.patches:
        gid = p.get_gid() or ""
        if gid.startswith("layer:"):
            _, name, _, kind = gid.split(":")
            boxes.setdefault(name, []).append(kind)
    assert list(boxes) == list(architecture.ARCHITECTURE_COLUMNS)
    counts = [sum(k in ("conv", "fc") for k in boxes[name]) for name in architecture.ARCHITECTURE_COLUMNS]
    assert counts == [_weighted_layers(n) for n in architecture.ARCHITECTURE_COLUMNS] == [19, 34, 34]
    assert [boxes[n].count("fc") for n in boxes] == [3, 1, 1]
    # shortcuts: 16 arcs on the residual column only, dotted at the 3 units where dimensions increase
    arcs = [p for p in ax.patches if (p.get_gid() or "").startswith("arc:")]
    assert len(arcs) == 16
    assert sum(p.get_gid().endswith(":increase") for p in arcs) == 3
    assert {p.get_linestyle() for p in arcs if p.get_gid().endswith(":identity")} == {"-"}
    layers, column_arcs = architecture.layer_column("imagenet-resnet34")
    for a in column_arcs:  # each arc spans one basic unit: two 3x3 convs
        assert [la.kind for la in layers[a.first + 1:a.last + 1]] == ["conv", "conv"]
        assert a.increase == layers[a.first + 1].text.endswith("/2")
    texts = [t.get_text() for t in ax.texts]
    assert "VGG-19\n(19 weighted layers)" in texts and "34-layer residual\n(34 weighted layers)" in texts
    assert texts.count("3x3 conv, 512, /2") == 2 and "7x7 conv, 64, /2" in texts


def _chain_ops(ax) -> list[list[str]]:
    """The ops drawn per unit, residual branch then after-addition ops, from the text gids."""
    units: dict[int, list[tuple[int, int, str]]] = {}
    for t in ax.texts:
        gid = t.get_gid() or ""
        if gid.startswith("op:unit"):
            _, where, i, op = gid.split(":", 3)
            unit, path = where[len("unit"):].split(".")
            units.setdefault(int(unit), []).append((path != "residual", int(i), op))
    return [[op for *_, op in sorted(v)] for _, v in sorted(units.items())]


def test_fig_preact_rearrangement_chains_the_layouts():
    from resnetlab.plots import architecture

    fig = architecture.fig_preact_rearrangement()
    assert len(fig.axes) == 4
    orig = unit_layout("basic", "original", "original")
    relu_only = unit_layout("basic", "relu_only_preact", "original")
    full = unit_layout("basic", "full_preact", "original")
    a, b, c, d = (_chain_ops(ax) for ax in fig.axes)
    assert a == [list(orig.residual) + list(orig.after)] * 2
    # moving f (ReLU after the addition) onto the next branch gives the ReLU-only pre-activation unit
    assert b == c == [list(orig.after) + list(orig.residual)] * 2 == [list(relu_only.residual)] * 2
    assert d == [list(full.residual)] * 2
    for ax, n_groups in zip(fig.axes, (2, 1, 2, 2)):
        assert sum((p.get_gid() or "").startswith("unit_group:") for p in ax.patches) == n_groups
        assert sum(t.get_gid() == "add" or (t.get_gid() or "").startswith("add:") for t in ax.texts) == 2
    assert sum("f\u0302" in t.get_text() for t in fig.axes[1].texts) == 2
    assert [ax.get_title().split(")")[0] for ax in fig.axes] == ["(a", "(b", "(c", "(d"]


def test_plots_exports_the_architecture_figures():
    from resnetlab import plots
    from resnetlab.plots import architecture

    for name in ("fig_architecture_columns", "fig_preact_rearrangement", "layer_column"):
        assert getattr(plots, name) is getattr(architecture, name)
