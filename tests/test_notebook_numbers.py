"""The numbers a notebook's text quotes are those of the recorded runs that produced them."""

import nbformat
import pytest

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
