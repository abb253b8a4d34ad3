"""The numbers a notebook's text quotes are those of the recorded runs that produced them."""

import json

import nbformat
import numpy as np
import pytest

from resnetlab.analysis.responses import RESPONSES_FILE
from resnetlab.paper import R_TABLE6_ERROR
from resnetlab.paths import project_root
from resnetlab.runs import RecordError, load_record

RUNS = project_root() / "data" / "runs"
PLAIN20, PLAIN56 = "cifar10-jpeg-plain20-quick-s0-fba618ba44", "cifar10-jpeg-plain56-quick-s0-18ceb91501"


def _markdown(stem: str) -> str:
    nb = nbformat.read(project_root() / "notebooks" / f"{stem}.ipynb", as_version=4)
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def test_notebook_02_quotes_its_runs():
    try:
        p20, p56 = load_record(RUNS / PLAIN20), load_record(RUNS / PLAIN56)
    except RecordError:
        pytest.skip("the R-Fig. 1 runs are not recorded in this checkout")
    text = _markdown("02_degradation_problem")
    for rec in (p20, p56):
        assert f"{rec.summary['final_train_error']:.2f}%" in text and f"{rec.summary['final_test_error']:.2f}%" in text
    gap_train = p56.summary["final_train_error"] - p20.summary["final_train_error"]
    gap_test = p56.summary["final_test_error"] - p20.summary["final_test_error"]
    assert f"{gap_train:.2f} points" in text and f"{gap_test:.2f} points" in text
    for rec, it in ((p56, 800), (p20, 800), (p56, 3200), (p20, 3200)):
        row = rec.history[rec.history.iteration == it].iloc[0]
        assert f"{row.train_error:.2f}%" in text, (rec.id, it)


RESNET20, RESNET56 = "cifar10-jpeg-resnet20-quick-s0-1ec613d129", "cifar10-jpeg-resnet56-quick-s0-47b501d832"


def _stds(run_id: str) -> np.ndarray:
    return np.asarray(json.loads((RUNS / run_id / RESPONSES_FILE).read_text())["stds"])


def test_notebook_04_quotes_its_responses():
    try:
        for run in (PLAIN20, PLAIN56, RESNET20, RESNET56):
            load_record(RUNS / run)
        stds = {run: _stds(run) for run in (PLAIN20, PLAIN56, RESNET20, RESNET56)}
    except (RecordError, FileNotFoundError):
        pytest.skip("the R-Fig. 7 runs (20 and 56 layers, both kinds) are not all recorded here")
    text = _markdown("04_layer_responses")
    for run, values in stds.items():
        assert f"{values.mean():.2f}" in text and f"{np.median(values):.2f}" in text, run
        assert f"{values.max():.2f}" in text, run
    for plain, res in ((PLAIN20, RESNET20), (PLAIN56, RESNET56)):
        smaller = int((stds[res] < stds[plain]).sum())
        assert f"{smaller} of {len(stds[res])}" in text, (plain, res)


PLAIN32 = "cifar10-jpeg-plain32-quick-s0-c046085fdc"
PLAIN44, RESNET32 = "cifar10-jpeg-plain44-quick-s0-acf06d6e52", "cifar10-jpeg-resnet32-quick-s0-161883bd52"
RESNET44 = "cifar10-jpeg-resnet44-quick-s0-b92fb0e0e4"


def test_notebook_03_quotes_its_runs():
    runs = (PLAIN20, PLAIN32, PLAIN44, PLAIN56, RESNET20, RESNET32, RESNET44, RESNET56)
    try:
        recs = {run: load_record(RUNS / run) for run in runs}
    except RecordError:
        pytest.skip("the R-Fig. 6 runs notebook 03 quotes are not all recorded here")
    text = _markdown("03_residual_learning_cifar")
    for run, rec in recs.items():
        for key in ("final_train_error", "final_test_error"):
            assert f"{rec.summary[key]:.2f}%" in text, (run, key)
    for plain, res in ((PLAIN20, RESNET20), (PLAIN32, RESNET32), (PLAIN44, RESNET44), (PLAIN56, RESNET56)):
        gap = recs[plain].summary["final_test_error"] - recs[res].summary["final_test_error"]
        assert f"{gap:.2f} points" in text, (plain, res)
    deeper = recs[RESNET20].summary["final_test_error"] - recs[RESNET56].summary["final_test_error"]
    assert f"{abs(deeper):.2f} points" in text
    # the paper's numbers beside ours are resnetlab.paper's
    for model in ("resnet20", "resnet32", "resnet44", "resnet56"):
        assert f"{R_TABLE6_ERROR[model]:.2f}%" in text, model
