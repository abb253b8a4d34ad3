"""One function per figure of the two ResNet papers, in one slide-friendly style.

Paper references use the course convention: ``R-`` for He et al. 2015, "Deep
Residual Learning for Image Recognition", and ``IM-`` for He et al. 2016,
"Identity Mappings in Deep Residual Networks".

Every ``fig_*`` function calls :func:`set_style`, builds and returns a
:class:`matplotlib.figure.Figure`; it neither saves nor shows it (use
:func:`save_figure`). Training figures draw from recorded runs (duck-typed
``resnetlab.runs.Record``: ``label``, ``config``, ``summary``, ``failed``,
``history``) and always carry a footer, :func:`source_note`, saying what
trained the curves. Nothing is ever dropped silently: failed runs are drawn up
to where they stopped and marked, and panels without runs say how to make them.

``plots`` is handed records and numbers: it imports neither ``train``, ``runs`` nor
``data`` (only ``models``, whose layouts the unit diagrams draw), and never trains.

=================  ===============================================================
module             what it draws
=================  ===============================================================
``style``          theme, sizes, palette, :func:`save_figure`, footers, placeholder
``curves``         :func:`plot_curves`: one net's training curves on one axes
``training``       R-Fig. 1, R-Fig. 6 and the IM curve panels (IM Fig. 1/3/4/6)
``tables``         results tables (R-Tables 2-6, IM Tables 1-3), R-Fig. 3 bars
``depth``          final error against depth (the VGG depth wall)
``analyses``       R-Fig. 7, IM Sec. 2-3 propagation, receptive field, R-Fig. 5 cost
``diagrams``       unit diagrams from the model layouts (R-Fig. 2/5, IM Fig. 2/4)
``architecture``   whole-net columns from the models (R-Fig. 3), IM Fig. 5's unit chains
=================  ===============================================================
"""

from __future__ import annotations

from . import architecture, diagrams
from .analyses import (fig_bottleneck_cost, fig_layer_responses, fig_receptive_field, fig_shortcut_term,
                       fig_signal_propagation)
from .architecture import (ARCHITECTURE_COLUMNS, PREACT_STEPS, ColumnLayer, ShortcutArc, fig_architecture_columns,
                           fig_preact_rearrangement, layer_column)
from .curves import plot_curves
from .depth import DepthLine, fig_error_vs_depth
from .diagrams import (ACTIVATION_VARIANTS, OP_COLORS, SHORTCUT_VARIANTS, UnitLayoutLike, draw_unit,
                       fig_activation_variants, fig_basic_vs_bottleneck, fig_residual_unit, fig_shortcut_variants,
                       op_kind, op_label)
from .style import (FIGSIZE_HALF, FIGSIZE_TALL, FIGSIZE_WIDE, PALETTE, PDF_METADATA, PNG_METADATA, RUN_COMMAND,
                    add_source_note, placeholder, save_figure, set_style, source_note)
from .tables import fig_complexity, fig_error_table
from .training import (PANELS_LOOK, SINGLE_LOOK, CurveLook, fig_cifar_training, fig_curve_panels, fig_degradation,
                       fig_im_curves)

__all__ = [
    # style
    "FIGSIZE_WIDE", "FIGSIZE_HALF", "FIGSIZE_TALL", "PALETTE", "RUN_COMMAND", "PNG_METADATA", "PDF_METADATA",
    "set_style", "save_figure", "source_note", "add_source_note", "placeholder",
    # curves
    "plot_curves", "fig_degradation", "fig_cifar_training", "fig_curve_panels", "fig_im_curves",
    "CurveLook", "PANELS_LOOK", "SINGLE_LOOK",
    # tables
    "fig_complexity", "fig_error_table",
    # depth
    "DepthLine", "fig_error_vs_depth",
    # analyses
    "fig_layer_responses", "fig_signal_propagation", "fig_shortcut_term", "fig_receptive_field",
    "fig_bottleneck_cost",
    # diagrams
    "diagrams", "UnitLayoutLike", "OP_COLORS", "SHORTCUT_VARIANTS", "ACTIVATION_VARIANTS", "op_kind", "op_label",
    "draw_unit", "fig_residual_unit", "fig_basic_vs_bottleneck", "fig_shortcut_variants", "fig_activation_variants",
    # architecture
    "architecture", "ARCHITECTURE_COLUMNS", "PREACT_STEPS", "ColumnLayer", "ShortcutArc", "layer_column",
    "fig_architecture_columns", "fig_preact_rearrangement",
]
