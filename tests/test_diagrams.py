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
