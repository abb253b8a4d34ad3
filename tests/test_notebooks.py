"""Every notebook executes top to bottom on CPU, in the smoke profile, on fabricated data,
and writes its figure files. Notebooks are committed without outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="session")
def notebook_data(tmp_path_factory) -> Path:
    from resnetlab.testing import fabricate_cifar

    root = tmp_path_factory.mktemp("nbdata")
    fabricate_cifar(root, "cifar10", "pickle", n_train=600, n_test=300)
    fabricate_cifar(root, "cifar100", "pickle", n_train=600, n_test=300)
    return root


def _parameters_index(nb) -> int:
    for i, cell in enumerate(nb.cells):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            return i
    raise AssertionError("the notebook has no cell tagged 'parameters'")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_clean(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, f"{path.name} has outputs"
    first = nb.cells[0].source
    assert "colab.research.google.com" in first, "the first cell opens with an 'Open in Colab' badge"
    _parameters_index(nb)


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes_in_smoke_profile(path, tmp_path, notebook_data, monkeypatch):
    nb = nbformat.read(path, as_version=4)
    at = _parameters_index(nb)
    figures, runs = tmp_path / "figures", tmp_path / "runs"
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell(
        f'PROFILE = "smoke"\nDATA = {str(notebook_data)!r}\nRUNS = {str(runs)!r}\nFIGURES = {str(figures)!r}'))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend, as a reader has it
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    written = sorted(p.name for p in figures.glob("*.png"))
    assert written, f"{path.name} wrote no figure into FIGURES"
    for png in figures.glob("*.png"):
        assert (figures / f"{png.stem}.pdf").exists()
    # every figure is shown once: no image appears twice among the notebook's outputs
    images = [o["data"]["image/png"] for c in nb.cells for o in c.get("outputs", [])
              if "image/png" in o.get("data", {})]
    assert images, f"{path.name} showed no figure"
    assert len(images) == len(set(images)), f"{path.name} shows {len(images) - len(set(images))} figure(s) twice"
