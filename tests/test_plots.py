"""Fast tests of resnetlab.plots on fabricated runs (Agg backend, no training)."""

from __future__ import annotations

import types

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from resnetlab import plots  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def make_history(final: float, *, n: int = 6000, every: int = 200, test_every: int = 1000,
                 offset: float = 0.0, stop: int | None = None) -> pd.DataFrame:
    it = np.arange(0, n + 1, every)
    err = final + (90 - final) * np.exp(-it / 1500) + offset
    df = pd.DataFrame({
        "iteration": it, "epoch": it / 391, "lr": 0.1,
        "train_loss": err / 30, "train_error": err * 0.8,
        "test_loss": np.where(it % test_every == 0, err / 25, np.nan),
        "test_error": np.where(it % test_every == 0, err, np.nan),
        "wall_time": it * 0.01,
    })
    if stop is not None:
        df = df[df["iteration"] <= stop].reset_index(drop=True)
    return df


def make_record(label: str = "ResNet-20", final: float = 8.0, *, seed: int = 0, failed: bool = False,
                reason: str = "loss diverged (NaN)", status: str | None = None, **hist) -> types.SimpleNamespace:
    return types.SimpleNamespace(
        label=label,
        config={"model": label.lower().replace("-", ""), "model_options": {}, "dataset": "cifar10",
                "profile": "quick", "seed": seed},
        summary={"status": "failed" if failed else (status or "complete"),
                 "failure_reason": reason if failed else None, "final_test_error": final,
                 "final_train_error": final / 2, "device": "NVIDIA H100", "torch_version": "2.5.1",
                 "data_source": "CIFAR-10 (JPEG copy)", "profile": "quick"},
        failed=failed,
        history=make_history(final, **hist),
    )


def texts_of(fig: Figure) -> list[str]:
    out = [t.get_text() for t in fig.texts]
    for ax in fig.axes:
        out += [t.get_text() for t in ax.texts]
        leg = ax.get_legend()
        if leg is not None:
            out += [t.get_text() for t in leg.get_texts()]
    for leg in fig.legends:
        out += [t.get_text() for t in leg.get_texts()]
    return out


def test_style_and_sizes():
    plots.set_style()
    assert plots.FIGSIZE_WIDE[0] / plots.FIGSIZE_WIDE[1] == pytest.approx(16 / 9, rel=0.01)
    assert plt.rcParams["font.size"] >= 12
    assert plots.FIGSIZE_HALF[0] < plots.FIGSIZE_WIDE[0]


def test_save_figure_writes_png_and_pdf(tmp_path):
    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([0, 1], [0, 1])
    paths = plots.save_figure(fig, "tiny", tmp_path / "new" / "figs")
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)
    assert paths[0].read_bytes()[:4] == b"\x89PNG"
    assert paths[1].read_bytes()[:4] == b"%PDF"


def test_source_note():
    note = plots.source_note([make_record()])
    for part in ("ours:", "CIFAR-10 (JPEG copy)", "quick profile", "1 seed", "torch 2.5.1", "NVIDIA H100"):
        assert part in note
    reps = {"ResNet-20": [make_record(seed=s) for s in range(5)], "ResNet-56": [make_record("ResNet-56", seed=s)
                                                                                for s in range(5)]}
    assert "5 seeds each" in plots.source_note(reps)
    mixed = {"a": {"ResNet-20": [make_record(seed=0)]}, "b": {"plain-20": [make_record("plain-20", failed=True)]}}
    note = plots.source_note(mixed)
    assert "1 run failed" in note
    assert plots.source_note([]) == "ours: no runs recorded yet"
    # an older record's "1 threads" and a newer one's "1 thread" are one device in the footer
    old, new = make_record(seed=0), make_record(seed=1)
    old.summary["device"], new.summary["device"] = "CPU (x86_64, 1 threads)", "CPU (x86_64, 1 thread)"
    assert plots.source_note([old, new]).endswith("on CPU (x86_64, 1 thread)")


def test_plot_curves_conventions():
    fig, ax = plt.subplots()
    plot_handles = plots.plot_curves(ax, [make_record()], label="ResNet-20", color="C0")
    test = [ln for ln in ax.get_lines() if (ln.get_gid() or "").startswith("test:")]
    train = [ln for ln in ax.get_lines() if (ln.get_gid() or "").startswith("train:")]
    assert len(test) == 1 and len(train) == 1
    assert test[0].get_linewidth() > train[0].get_linewidth()
    assert test[0].get_linestyle() == "-" and train[0].get_linestyle() == "--"
    # iterations in units of 1e4; test curve only where a test evaluation happened
    assert np.nanmax(test[0].get_xdata()) == pytest.approx(0.6)
    assert len(test[0].get_xdata()) == 7
    assert plot_handles[0].get_label() == "ResNet-20"


def test_plot_curves_repeats_median_and_band():
    recs = [make_record(seed=s, offset=o) for s, o in enumerate((0.0, 1.0, 5.0))]
    fig, ax = plt.subplots()
    handles = plots.plot_curves(ax, recs, label="ResNet-20")
    assert handles[0].get_label() == "ResNet-20 (n=3)"
    test = next(ln for ln in ax.get_lines() if ln.get_gid() == "test:ResNet-20")
    expected = make_history(8.0, offset=1.0)["test_error"].dropna().to_numpy()
    np.testing.assert_allclose(test.get_ydata(), expected)  # median of offsets 0, 1, 5 is 1
    bands = [c for c in ax.collections if isinstance(c, PolyCollection) and (c.get_gid() or "").startswith("band:")]
    assert {c.get_gid() for c in bands} == {"band:test:ResNet-20", "band:train:ResNet-20"}
    verts = bands[0].get_paths()[0].vertices
    assert verts[:, 1].max() == pytest.approx(make_history(8.0, offset=5.0)["test_error"].max())


def test_plot_curves_failed_run_is_marked_not_dropped():
    fig, ax = plt.subplots()
    rec = make_record("plain-110", failed=True, reason="diverged", stop=3000)
    handles = plots.plot_curves(ax, [rec], label="plain-110")
    assert len(handles) == 1
    marker = handles[0]
    assert marker.get_marker() == "x"
    assert "(failed: diverged)" in marker.get_label()
    # drawn up to where it stopped: the marker sits on the last test evaluation
    assert marker.get_xdata()[0] == pytest.approx(0.3)
    failed_lines = [ln for ln in ax.get_lines() if (ln.get_gid() or "").startswith("failed:")]
    assert len(failed_lines) == 2
    # failed before logging anything still gets a legend entry
    empty = make_record("x", failed=True, reason="OOM")
    empty.history = pd.DataFrame(columns=["iteration", "train_error", "test_error"])
    h = plots.plot_curves(ax, [empty], label="ResNet-1202")
    assert "(failed: OOM)" in h[0].get_label()
    # no runs at all
    h = plots.plot_curves(ax, [], label="ResNet-44")
    assert h[0].get_label() == "ResNet-44 (not yet recorded)"


def test_plot_curves_mixed_ok_and_failed_repeats():
    fig, ax = plt.subplots()
    recs = [make_record(seed=0), make_record(seed=1), make_record(seed=2, failed=True, stop=2000)]
    labels = [h.get_label() for h in plots.plot_curves(ax, recs, label="ResNet-20")]
    assert labels[0] == "ResNet-20 (n=2)"
    assert any("failed" in lab for lab in labels)


def test_fig_degradation():
    recs = {"plain-20": [make_record("plain-20", 9)], "plain-56": [make_record("plain-56", 13)]}
    fig = plots.fig_degradation(recs)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2
    left, right = fig.axes
    assert all(ln.get_linestyle() == "--" for ln in left.get_lines())
    assert all(ln.get_linestyle() == "-" for ln in right.get_lines())
    assert left.get_xlabel() == "iter. (1e4)"
    assert any(t.get_gid() == "source_note" and "CIFAR-10" in t.get_text() for t in fig.texts)
    empty = plots.fig_degradation({"plain-20": [], "plain-56": []})
    assert sum("not yet recorded" in t for t in texts_of(empty)) == 2


def test_fig_cifar_training_with_empty_panel_and_failed_run():
    panels = {
        "plain nets": {f"plain-{d}": [make_record(f"plain-{d}", 8 + d / 10)] for d in (20, 32)},
        "ResNets": {"ResNet-20": [make_record(seed=s) for s in range(3)],
                    "ResNet-110": [make_record("ResNet-110", failed=True, reason="NaN loss", stop=2000)]},
        "ResNet-110 vs 1202": {"ResNet-110": [], "ResNet-1202": []},
    }
    fig = plots.fig_cifar_training(panels, hline=5.0, commands={"ResNet-110 vs 1202": "make fig6c"})
    assert len(fig.axes) == 3
    texts = texts_of(fig)
    assert any("not yet recorded" in t and "make fig6c" in t for t in texts)
    assert any("(failed: NaN loss)" in t for t in texts)
    assert any(t == "ResNet-20 (n=3)" for t in texts)
    assert any(ln.get_gid() == "hline" for ln in fig.axes[0].get_lines())
    note = next(t for t in fig.texts if t.get_gid() == "source_note").get_text()
    assert "1 run failed" in note
    # default command names the nets the panel waits for
    fig = plots.fig_cifar_training({"big": {"ResNet-1202": []}})
    assert any("not yet recorded" in t and "ResNet-1202" in t and "run:" in t for t in texts_of(fig))
    # no panels at all still gives a figure
    assert isinstance(plots.fig_cifar_training({}), Figure)


def test_fig_im_curves_twin_axis():
    recs = {"original": [make_record(seed=s) for s in range(5)],
            "pre-act": [make_record("pre", 7, seed=s) for s in range(5)]}
    fig = plots.fig_im_curves(recs, title="IM Fig. 6")
    assert len(fig.axes) == 2
    err_ax, loss_ax = fig.axes
    assert all(ln.get_linestyle() == "-" for ln in err_ax.get_lines())
    assert {ln.get_linestyle() for ln in loss_ax.get_lines()} == {"--"}
    assert "loss" in loss_ax.get_ylabel()
    empty = plots.fig_im_curves({}, title="IM Fig. 1")
    assert any("not yet recorded" in t for t in texts_of(empty))


def test_fig_layer_responses():
    rng = np.random.default_rng(0)
    stds = {"plain-20": rng.random(18), "ResNet-20": rng.random(18), "ResNet-56": rng.random(54)}
    fig = plots.fig_layer_responses(stds)
    assert len(fig.axes) == 2
    top, bottom = fig.axes
    assert len(top.get_lines()) == len(bottom.get_lines()) == 3
    for ln in bottom.get_lines():
        y = np.asarray(ln.get_ydata())
        assert np.all(np.diff(y) <= 0)
    np.testing.assert_allclose(top.get_lines()[0].get_ydata(), stds["plain-20"])
    assert any("not yet recorded" in t for t in texts_of(plots.fig_layer_responses({})))


def test_fig_complexity():
    table = pd.DataFrame({
        "model": ["VGG-19", "34-layer plain", "ResNet-34", "ResNet-56"],
        "macs_g_ours": [19.6, 3.6, 3.6, 0.125], "macs_g_paper": [19.6, 3.6, 3.6, np.nan],
        "params_m_ours": [143.7, 21.8, 21.8, 0.85], "params_m_paper": [np.nan, np.nan, np.nan, 0.85],
    })
    fig = plots.fig_complexity(table)
    assert len(fig.axes) == 2
    left, right = fig.axes
    paper_left = [p for p in left.patches if p.get_hatch() == "//"]
    paper_right = [p for p in right.patches if p.get_hatch() == "//"]
    assert len(paper_left) == 3 and len(paper_right) == 1
    assert [t.get_text() for t in left.get_yticklabels()] == list(table["model"])
    assert left.yaxis_inverted()  # first row on top
    table["label"] = [m.upper() for m in table["model"]]
    fig = plots.fig_complexity(table)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == list(table["label"])
    assert any("paper: n/a" in t for t in texts_of(fig))
    assert any("paper" == t for t in texts_of(fig))


def test_fig_error_table():
    df = pd.DataFrame({"model / case": ["ResNet-110", "constant scaling"], "paper error (%)": [6.61, 12.35],
                       "ours median (%)": [6.8, np.nan], "ours runs": [5, 1], "status": ["complete", "fail"]})
    fig = plots.fig_error_table(df, title="IM Table 1", records=[make_record()])
    table = fig.axes[0].tables[0]
    cells = {t.get_text() for t in (c.get_text() for c in table.get_celld().values())}
    assert {"6.61", "6.80", "—", "fail", "5", "model / case"} <= cells
    assert any(t.get_gid() == "source_note" for t in fig.texts)
    assert isinstance(plots.fig_error_table(df.iloc[:0], title="empty"), Figure)


def test_fig_signal_propagation():
    rows = [{"net": net, "state": "init", "unit": u, "forward_norm": f ** u, "backward_norm": f ** (10 - u)}
            for net, f in (("plain", 0.8), ("original", 1.0), ("constant scaling 0.5", 0.5), ("pre-activation", 1.0))
            for u in range(11)]
    fig = plots.fig_signal_propagation(pd.DataFrame(rows))
    assert len(fig.axes) == 4
    axes = np.array(fig.axes).reshape(2, 2)
    assert axes[0, 0].get_yscale() == "log" and axes[1, 0].get_yscale() == "log"
    assert len(axes[0, 0].get_lines()) == 4
    # no "trained" rows yet: those panels say so instead of failing
    assert any("no 'trained' measurements yet" in t for t in texts_of(fig))


def test_fig_receptive_field():
    yy, xx = np.mgrid[-7:8, -7:8]
    g3 = np.where((abs(yy) <= 3) & (abs(xx) <= 3), (4 - abs(yy)) * (4 - abs(xx)), 0.0)
    g7 = np.where((abs(yy) <= 3) & (abs(xx) <= 3), 1.0, 0.0)
    fig = plots.fig_receptive_field({"3 x 3x3": g3, "1 x 7x7": g7}, {"3 x 3x3": 7, "1 x 7x7": 7})
    assert len(fig.axes) == 3  # two heatmaps and a colorbar
    rects = [p for p in fig.axes[0].patches if isinstance(p, Rectangle) and (p.get_gid() or "").startswith("rf:")]
    assert len(rects) == 1 and rects[0].get_width() == 7
    assert rects[0].get_xy() == (7 - 3 - 0.5, 7 - 3 - 0.5)


def test_fig_bottleneck_cost():
    df = pd.DataFrame({"block": ["basic (64-d)", "bottleneck (256-d)"], "params": [73728, 69632],
                       "macs": [73728 * 3136, 69632 * 3136]})
    fig = plots.fig_bottleneck_cost(df)
    assert len(fig.axes) == 2
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights == [73728, 69632]
    assert "73.7k" in texts_of(fig)


def test_unfinished_runs_are_labelled():
    fig, ax = plt.subplots()
    h = plots.plot_curves(ax, [make_record(status="running", stop=2000)], label="ResNet-56")
    assert h[0].get_label() == "ResNet-56 (running)"
    assert "1 run not finished" in plots.source_note([make_record(status="interrupted")])


def test_placeholder_lists_one_command_per_missing_net():
    fig = plots.fig_degradation({"plain-20": [], "plain-56": []})
    text = next(t.get_text() for t in fig.axes[0].texts if t.get_gid() == "placeholder")
    assert "python -m resnetlab train plain-20\n" in text and text.endswith("python -m resnetlab train plain-56")
    fig = plots.fig_degradation({"plain-20": []}, commands="python -m resnetlab reproduce r_fig1 --profile quick")
    text = next(t.get_text() for t in fig.axes[1].texts if t.get_gid() == "placeholder")
    assert "reproduce r_fig1" in text.replace("\n", " ")


def test_save_figure_is_deterministic(tmp_path):
    """Re-running writes byte-identical files: no creation date in the PDF, no version in the PNG."""
    recs = {"plain-20": [make_record("plain-20", 9, seed=s) for s in range(2)], "plain-56": [make_record("plain-56")]}
    fig = plots.fig_degradation(recs)
    first = plots.save_figure(fig, "r_fig1", tmp_path / "a")
    again = plots.save_figure(fig, "r_fig1", tmp_path / "b")  # the same figure saved twice
    fresh = plots.save_figure(plots.fig_degradation(recs), "r_fig1", tmp_path / "c")  # drawn anew
    for a, b, c in zip(first, again, fresh):
        assert a.read_bytes() == b.read_bytes() == c.read_bytes(), a.name
    assert b"CreationDate" not in first[1].read_bytes()
    assert b"Software" not in first[0].read_bytes()


def _late_top(final: float, offset: float = 0.0) -> float:
    """The highest test error of make_history after the first fifth of training (iteration 2000)."""
    return float(make_history(final, offset=offset).set_index("iteration").loc[2000, "test_error"])


def test_fig_curve_panels_im_panels():
    panels = {
        "(b) constant scaling": {"original": [make_record("o", 7, seed=s) for s in range(2)],
                                 "shortcut 0 (plain)": [make_record("p", 12)],
                                 "shortcut 0.5": [make_record("s", 20, failed=True, reason="NaN loss", stop=2500)]},
        "(c) gating": {"original": [make_record("o", 7)], "b_g = 0": [make_record("g", 9)]},
        "(e) 1x1 conv": {"original": [], "1x1 conv": []},
    }
    fig = plots.fig_curve_panels(panels, title="IM Fig. 3", commands="python -m resnetlab reproduce im-table1",
                                 note="quick profile", reference="original")
    err_axes = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in err_axes] == list(panels)
    first = err_axes[0]
    ref = next(ln for ln in first.get_lines() if ln.get_gid() == "test:original")
    assert ref.get_color() == "0.45"  # the reference net is grey, the others take the palette in order
    plain = next(ln for ln in first.get_lines() if ln.get_gid() == "test:shortcut 0 (plain)")
    assert tuple(plain.get_color()) == tuple(plots.PALETTE[0])
    assert any(ln.get_gid() == "failed_marker:shortcut 0.5" for ln in first.get_lines())
    # error axis: 0 to 1.2 x the highest test error after the first fifth, failed runs ignored
    assert first.get_ylim() == pytest.approx((0, 1.2 * _late_top(12)))
    texts = texts_of(fig)
    assert any("(failed: NaN loss)" in t for t in texts)
    assert any("not yet recorded" in t and "reproduce im-table1" in t.replace("\n", " ") for t in texts)
    assert "test error (solid, left axis)" in texts and "training loss (dashed, right axis)" in texts
    note = next(t for t in fig.texts if t.get_gid() == "source_note").get_text()
    assert note.endswith("|  quick profile") and "1 run failed" in note
    # test error only: no twin loss axes, no training-loss key
    fig = plots.fig_curve_panels({"ResNet-110": panels["(c) gating"]}, title="IM Fig. 4", train_loss=False)
    assert len(fig.axes) == 1 and not any("training loss" in t for t in texts_of(fig))


def test_fig_im_curves_is_the_single_panel_look():
    recs = {"ResNet-1001, original": [make_record("a", 8, seed=s) for s in range(3)],
            "ResNet-1001, pre-activation": [make_record("b", 6)]}
    old = plots.fig_im_curves(recs, title="IM Fig. 1", loss_ylim=(0, 4))
    new = plots.fig_curve_panels({"": recs}, title="IM Fig. 1", loss_ylim=(0, 4), look=plots.SINGLE_LOOK)
    assert texts_of(old) == texts_of(new)
    assert [ax.get_ylim() for ax in old.axes] == [ax.get_ylim() for ax in new.axes]
    err_ax, loss_ax = old.axes
    assert err_ax.get_title() == "" and loss_ax.get_ylim() == (0, 4)
    assert err_ax.get_ylim() == pytest.approx((0, 1.15 * _late_top(8)))
    assert "median, band = min-max of n runs" in texts_of(old)


def test_fig_shortcut_term():
    rows = [{"net": net, "state": "init", "unit": u, "forward_norm": 1.0, "backward_norm": 1.0,
             "direct_norm": 0.0 if net == "plain" else f ** (10 - u)}
            for net, f in (("plain", 0.8), ("original", 1.0), ("scale 0.5", 0.5)) for u in range(11)]
    fig = plots.fig_shortcut_term(pd.DataFrame(rows), lambdas={"scale 0.5": 0.5}, command="make it")
    init, trained = fig.axes
    assert init.get_yscale() == "log"
    labels = [t.get_text() for t in init.get_legend().get_texts()]
    assert "plain: 0 (no shortcut path)" in labels and "original" in labels
    guide = next(ln for ln in init.get_lines() if ln.get_linestyle() == ":")
    np.testing.assert_allclose(guide.get_ydata(), 0.5 ** (10 - np.arange(11)))
    assert any("no 'trained' measurements yet" in t for t in texts_of(fig))


def test_plots_import_no_upper_layer():
    """plots is handed records and numbers: it imports neither train, runs, data, analysis nor
    experiments (models, the bottom layer, it may: the diagrams draw its layouts)."""
    import ast
    from pathlib import Path

    upper = {"train", "runs", "data", "analysis", "experiments", "figures", "cli", "parallel", "notebook", "bench"}
    root = Path(plots.__file__).parent
    for path in sorted(root.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level >= 2:
                assert (node.module or "").split(".")[0] not in upper, f"{path.name} imports ..{node.module}"
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("resnetlab"):
                assert (node.module.split(".") + [""])[1] in {"models", "plots"}, f"{path.name}: {node.module}"
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("resnetlab.") and a.name.split(".")[1] not in {"models", "plots"}
                               for a in node.names), path.name


# --------------------------------------------------------------------------- slide fixes (issue 17)


def _renderer_at(fig: Figure, dpi: float = 200):
    """Draw ``fig`` at the saved resolution (save_figure writes PNGs at 200 dpi)."""
    fig.set_dpi(dpi)
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def test_fig_error_table_fits_long_headers():
    """No header or cell is clipped: every cell's text lies within its cell at the saved size."""
    df = pd.DataFrame({
        "model": ["plain-34", "ResNet-34 A", "ResNet-34 B"], "shortcut": ["none", "A", "B"],
        "params (M)": [21.11, 21.11, 21.28], "paper ImageNet top-1 (%)": [28.54, 25.03, 24.52],
        "paper ImageNet top-5 (%)": [10.02, 7.76, 7.46], "ours CIFAR-10 (%)": [np.nan, 9.1, np.inf],
        "ours min-max": ["—", "8.9-9.3", "—"], "18→34 paper": ["34 worse", "34 better", ""],
        "runs": [0, 3, 1], "status": ["not recorded", "complete", "fail"],
    })
    for frame, title in ((df, "R-Table 3"),
                         (pd.DataFrame({"case": ["constant scaling: shortcut 0.5, F 0.5 (frozen gating)"] * 2,
                                        "paper error (%)": [12.35, 6.61], "ours median (%)": [np.nan, 7.0],
                                        "ours min-max": ["–", "6.9-7.1"], "runs": [0, 2],
                                        "status": ["not recorded", "complete"]}), "IM Table 1")):
        fig = plots.fig_error_table(frame, title=title, note="a note", records=[make_record()])
        renderer = _renderer_at(fig)
        table = fig.axes[0].tables[0]
        cells = table.get_celld()
        assert len(cells) == (len(frame) + 1) * frame.shape[1]
        for (r, c), cell in cells.items():
            box = cell.get_window_extent(renderer)
            text = cell.get_text().get_window_extent(renderer)
            assert box.x0 - 0.5 <= text.x0 and text.x1 <= box.x1 + 0.5, (title, r, c, cell.get_text().get_text())
            assert box.y0 - 0.5 <= text.y0 and text.y1 <= box.y1 + 0.5, (title, r, c, cell.get_text().get_text())
        headers = [cells[(0, c)].get_text().get_text() for c in range(frame.shape[1])]
        assert [h.replace("\n", " ") for h in headers] == list(frame.columns)  # wrapped, never cut
        if title == "R-Table 3":
            assert any("\n" in h for h in headers)  # too long for one line at the slide width


def _visible_tick_labels(ax, axis: str = "y") -> list[str]:
    lo, hi = sorted(ax.get_ylim() if axis == "y" else ax.get_xlim())
    ticks = ax.get_yticks() if axis == "y" else ax.get_xticks()
    labels = ax.get_yticklabels() if axis == "y" else ax.get_xticklabels()
    return [lab.get_text() for t, lab in zip(ticks, labels) if lo <= t <= hi]


def test_fig_shortcut_term_has_decade_tick_labels():
    wide = [{"net": net, "state": "init", "unit": u, "direct_norm": f ** (10 - u)}
            for net, f in (("original", 1.0), ("scale 0.5", 0.5)) for u in range(11)]
    narrow = [{"net": "original", "state": s, "unit": u, "direct_norm": 0.8 + 0.02 * u}
              for s in ("init", "trained") for u in range(11)]
    flat = [{"net": "original", "state": "init", "unit": u, "direct_norm": 1.0} for u in range(11)]
    for rows in (wide, narrow, flat):
        fig = plots.fig_shortcut_term(pd.DataFrame(rows), lambdas={"scale 0.5": 0.5})
        fig.canvas.draw()
        init = fig.axes[0]
        labels = _visible_tick_labels(init)
        assert len(labels) >= 2 and all(labels), labels
        assert all(lab.startswith("$\\mathdefault{10^{") for lab in labels), labels  # decades, 10^k
        lo, hi = init.get_ylim()
        ys = np.concatenate([ln.get_ydata() for ln in init.get_lines()])
        assert lo <= ys.min() and ys.max() <= hi


def test_fig_layer_responses_integer_layer_ticks():
    rng = np.random.default_rng(1)
    for n in (19, 18, 54, 7):
        fig = plots.fig_layer_responses({"ResNet-20": rng.random(n)})
        fig.canvas.draw()
        for ax in fig.axes:
            ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
            assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), ticks
            assert all(lab and "." not in lab for lab in _visible_tick_labels(ax, "x"))


def test_fig_cifar_training_fits_curves_and_keeps_the_legend_off_them():
    panels = {
        "plain nets": {f"plain-{d}": [make_record(f"plain-{d}", 8 + d / 10, offset=d / 10)] for d in (20, 32, 44)},
        "ResNets": {"ResNet-20": [make_record(seed=s, offset=s) for s in range(3)],
                    "ResNet-56": [make_record("ResNet-56", 6)],
                    "ResNet-110": [make_record("ResNet-110", failed=True, reason="NaN loss", stop=2000)],
                    "ResNet-1202": []},
        "ResNet-110 vs 1202": {"ResNet-110": [make_record("ResNet-110", 6.4, every=100, n=3000)]},
    }
    fig = plots.fig_cifar_training(panels, hline=5.0)
    renderer = _renderer_at(fig, 100)
    for ax in fig.axes:
        lo, hi = ax.get_ylim()
        lines = [ln for ln in ax.get_lines() if ln.get_gid() != "hline" and len(ln.get_xdata())]
        xmax = max(np.nanmax(np.asarray(ln.get_xdata(), dtype=float)) for ln in lines)
        for ln in lines:
            x = np.asarray(ln.get_xdata(), dtype=float)
            y = np.asarray(ln.get_ydata(), dtype=float)
            late = y[(x >= 0.05 * xmax) & np.isfinite(y)]
            assert late.size and lo <= late.min() and late.max() <= hi, (ax.get_title(), ln.get_gid())
        legend = ax.get_legend()
        assert legend is not None
        assert legend.get_window_extent(renderer).y1 <= ax.get_window_extent(renderer).y0 + 0.5  # under the axes
    assert any("ResNet-1202 (not yet recorded)" in t for t in texts_of(fig))
    # an explicit ylim still wins
    fig = plots.fig_cifar_training({"p": {"ResNet-20": [make_record()]}}, ylim=(0, 20))
    assert fig.axes[0].get_ylim() == (0, 20)
