"""What a Residual Unit is made of, as data.

A :class:`UnitLayout` lists the operations along the residual branch, along the
shortcut, and after the addition. The same layout builds the PyTorch module
(:mod:`resnetlab.models.units`) and draws the block diagram
(:mod:`resnetlab.plots.diagrams`), so a diagram can never disagree with the network
it claims to show.

Names follow the papers:

* activation placements of Identity Mappings (IM) Fig. 4 / Table 2;
* shortcut variants of IM Fig. 2 / Table 1;
* the basic (two 3x3) and bottleneck (1x1-3x3-1x1) blocks of the ResNet paper
  (R) Fig. 5, and IM Table 3's one-layer ("1layer skip") unit.
"""

from __future__ import annotations

from dataclasses import dataclass

#: "single": a unit of one 3x3 layer, the "1layer skip" ResNet-110 of IM Table 3 (R-Sec. 3.2
#: notes that such a unit is close to a linear layer, y = W_1 x + x).
BLOCKS: tuple[str, ...] = ("basic", "bottleneck", "single")

#: IM Fig. 4 (a)-(e), in the paper's order.
ACTIVATIONS: dict[str, str] = {
    "original": "(a) original",
    "bn_after_addition": "(b) BN after addition",
    "relu_before_addition": "(c) ReLU before addition",
    "relu_only_preact": "(d) ReLU-only pre-activation",
    "full_preact": "(e) full pre-activation",
}

#: IM Fig. 2 (a)-(f), plus "plain" (no shortcut at all: the plain nets of R-Sec. 4).
VARIANTS: dict[str, str] = {
    "original": "(a) original",
    "constant_scaling": "(b) constant scaling",
    "exclusive_gating": "(c) exclusive gating",
    "shortcut_only_gating": "(d) shortcut-only gating",
    "conv_shortcut": "(e) conv shortcut",
    "dropout_shortcut": "(f) dropout shortcut",
    "plain": "plain (no shortcut)",
}

PREACTIVATIONS: tuple[str, ...] = ("relu_only_preact", "full_preact")


def _check(kind: str, value: str, valid) -> None:
    if value not in valid:
        raise ValueError(f"unknown {kind} {value!r}; valid choices: {', '.join(valid)}")


def _fmt(x: float) -> str:
    return f"{x:g}"


@dataclass(frozen=True)
class UnitLayout:
    """Operations of one Residual Unit, in order.

    ``residual``: the branch F (R-Eq. 1), e.g. ``("conv3x3", "bn", "relu", "conv3x3", "bn")``.
    ``shortcut``: ops on the shortcut h(x) (IM-Eq. 1); ``()`` is the identity, ``None``
    means there is no shortcut (a plain net).
    ``after``: the after-addition activation f (IM-Eq. 2), e.g. ``("relu",)``.
    ``leading``: the pre-activation ops at the head of ``residual`` (IM Sec. 4), which the
    first unit of a stage applies before the split into the two paths.
    """

    block: str
    activation: str
    variant: str
    residual: tuple[str, ...]
    shortcut: tuple[str, ...] | None
    after: tuple[str, ...]
    leading: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """A title for diagrams: the IM figure panel this layout is."""
        return VARIANTS[self.variant] if self.variant != "original" else ACTIVATIONS[self.activation]


def _weights(block: str) -> tuple[str, ...]:
    return {"basic": ("conv3x3", "conv3x3"), "single": ("conv3x3",),
            "bottleneck": ("conv1x1", "conv3x3", "conv1x1")}[block]


def unit_layout(
    block: str = "basic",
    activation: str = "original",
    variant: str = "original",
    *,
    shortcut_scale: float = 0.5,
    residual_scale: float = 1.0,
    dropout_p: float = 0.5,
) -> UnitLayout:
    """The layout of one Residual Unit.

    ``activation`` places BN and ReLU as in IM Fig. 4:

    (a) ``original``: weight-BN-ReLU-weight-BN, addition, ReLU (R-Fig. 2);
    (b) ``bn_after_addition``: the last BN moves after the addition;
    (c) ``relu_before_addition``: the after-addition ReLU moves onto the branch;
    (d) ``relu_only_preact``: ReLU-weight-BN-ReLU-weight-BN, identity after addition;
    (e) ``full_preact``: BN-ReLU-weight-BN-ReLU-weight (IM-Eq. 9, f = identity).

    ``variant`` changes the shortcut as in IM Fig. 2 / Table 1: constant scaling
    (lambda on h, ``residual_scale`` on F), exclusive gating (1-g(x) on h, g(x) on F),
    shortcut-only gating (1-g(x) on h), 1x1 conv shortcut, dropout shortcut, or
    ``plain`` (no shortcut).
    """
    _check("block", block, BLOCKS)
    _check("activation", activation, ACTIVATIONS)
    _check("variant", variant, VARIANTS)
    w = _weights(block)
    last = len(w) - 1
    residual: list[str] = []
    leading: tuple[str, ...] = ()
    if activation == "full_preact":
        leading = ("bn", "relu")
        for op in w:
            residual += ["bn", "relu", op]
        after: tuple[str, ...] = ()
    elif activation == "relu_only_preact":
        leading = ("relu",)
        for op in w:
            residual += ["relu", op, "bn"]
        after = ()
    else:
        for i, op in enumerate(w):
            residual.append(op)
            if i < last:
                residual += ["bn", "relu"]
            elif activation in ("original", "relu_before_addition"):
                residual.append("bn")
        if activation == "relu_before_addition":
            residual.append("relu")
        after = {"original": ("relu",), "bn_after_addition": ("bn", "relu"), "relu_before_addition": ()}[activation]

    shortcut: tuple[str, ...] | None
    if variant == "plain":
        shortcut = None
    elif variant == "constant_scaling":
        shortcut = (f"scale({_fmt(shortcut_scale)})",)
        if residual_scale != 1.0:
            residual.append(f"scale({_fmt(residual_scale)})")
    elif variant == "exclusive_gating":
        shortcut = ("gate(1-g)",)
        residual.append("gate(g)")
    elif variant == "shortcut_only_gating":
        shortcut = ("gate(1-g)",)
    elif variant == "conv_shortcut":
        shortcut = ("conv1x1", "bn")
    elif variant == "dropout_shortcut":
        shortcut = (f"dropout({_fmt(dropout_p)})",)
    else:
        shortcut = ()
    return UnitLayout(block, activation, variant, tuple(residual), shortcut, after, leading)
