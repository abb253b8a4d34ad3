"""The code of the idea that notebooks write out (cells tagged "idea") computes exactly what
``resnetlab.models`` / ``resnetlab.analysis`` compute: the notebook's own check sets ``same``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
IDEAS = {"03_residual_learning_cifar": "BasicUnit", "04_layer_responses": "response_stds",
         "07_activation_placement": "PreActUnit"}


@pytest.mark.parametrize("notebook,name", sorted(IDEAS.items()))
def test_written_out_code_matches_the_package(notebook, name):
    nb = json.loads((NOTEBOOKS / f"{notebook}.ipynb").read_text())
    cells = [c for c in nb["cells"] if "idea" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) >= 2, f"{notebook} should write the idea out and check it"
    namespace: dict = {}
    if notebook == "04_layer_responses":  # the cells before it import these
        exec("from resnetlab.analysis.responses import response_modules\n"
             "from resnetlab.models import build_model", namespace)
    for c in cells:
        exec(compile("".join(c["source"]), f"{notebook}.ipynb", "exec"), namespace)
    assert name in namespace
    assert namespace["same"] is True
    body = "".join(cells[0]["source"])
    assert len(body.strip().splitlines()) <= 25, "the idea should stay short enough to read in one go"
