"""Every notebook's Colab badge and install cell come from the one setting, COURSE_REPO."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from resnetlab.paths import COURSE_REPO
from resnetlab.tools.course_repo import badge, install_cell, rewrite

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_badge_and_install_cell_use_the_setting(path):
    nb = json.loads(path.read_text())
    assert nb["cells"][0]["source"][0].strip() == badge(path.name, COURSE_REPO)
    assert "".join(nb["cells"][1]["source"]) == install_cell(COURSE_REPO)
    assert "arxiv.org/abs/" in "".join(nb["cells"][0]["source"])  # the paper is linked


def test_a_fork_rewrites_every_notebook(tmp_path):
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    changed = rewrite("someone/fork", tmp_path)
    assert len(changed) == len(NOTEBOOKS)
    nb = json.loads((tmp_path / "notebooks" / NOTEBOOKS[0].name).read_text())
    assert "github/someone/fork/blob/main" in nb["cells"][0]["source"][0]
    assert "https://github.com/someone/fork" in "".join(nb["cells"][1]["source"])
    with pytest.raises(ValueError, match="OWNER/NAME"):
        rewrite("not a repo", tmp_path)
