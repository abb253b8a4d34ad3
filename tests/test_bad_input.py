"""Bad input, bad files: one clear line on stderr, a non-zero exit, no traceback, nothing lost."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from resnetlab.cli import main
from resnetlab.runs import DamagedRecord, get_or_train, load_record, make_config, run_id, scan_records


def _fails(capsys, argv: list[str], *, needle: str, code: int = 2) -> str:
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == code, err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and needle in lines[0], err
    return lines[0]


@pytest.mark.parametrize("argv,needle", [
    (["train", "resnet20", "--set", "iterations=true"], "takes int"),
    (["train", "resnet20", "--set", "iterations=2.5"], "takes int"),
    (["train", "resnet20", "--set", "itterations=5"], "did you mean 'iterations'"),
    (["train", "resnet20", "--set", "iterations=abc"], "takes int"),
    (["train", "resnet20", "--set", "lr=abc"], "takes float"),
    (["train", "resnet20", "--set", "lr"], "KEY=VALUE"),
    (["train", "resnet20", "--device", "foo"], "unknown device"),
    (["train", "resnet20", "--option", "block=triple"], "unknown block"),
    (["train", "resnet21"], "depth 21"),
    (["figures", "--only", "bogus"], "unknown figure(s) bogus"),
    (["reproduce", "bogus", "--profile", "smoke"], "unknown experiment 'bogus'"),
])
def test_bad_values_are_one_line(capsys, tmp_path, argv, needle):
    _fails(capsys, argv + (["--runs", str(tmp_path / "runs")] if argv[0] != "figures" else []), needle=needle)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # nothing recorded


def test_cuda_without_a_gpu(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    _fails(capsys, ["train", "resnet20", "--device", "cuda"], needle="sees no CUDA GPU")


def test_runs_pointing_at_a_file(capsys, tmp_path):
    f = tmp_path / "runs.txt"
    f.write_text("not a folder")
    _fails(capsys, ["list", "--runs", str(f)], needle="is a file")


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(ValueError, match="did you mean"):
        main(["--debug", "train", "resnet20", "--set", "itterations=5", "--runs", str(tmp_path)])


def test_spellings_of_a_model_are_one_run():
    assert run_id(make_config("ResNet-20")) == run_id(make_config("resnet20")) == run_id(make_config("resnet_20"))


# ------------------------------------------------------------------ damaged records


@pytest.fixture
def recorded(tmp_path, cifar_pickles):
    from resnetlab.data import load_cifar

    arrays = load_cifar("cifar10", cifar_pickles, progress=False)
    config = make_config("resnet8", profile="smoke", model_options={"widths": (4, 8, 16)})
    rec = get_or_train(config, runs=tmp_path / "runs", dataset=arrays, progress=False)
    assert rec.status == "complete"
    return rec.path


def _damage(path: Path, how: str) -> None:
    summary = json.loads((path / "summary.json").read_text())
    if how == "copied":
        shutil.copytree(path, path.with_name("cifar10-resnet8-smoke-s0-0000000000"))
        shutil.rmtree(path)
    elif how == "config-edited":
        config = json.loads((path / "config.json").read_text())
        config["model_options"]["widths"] = [8, 16, 32]
        (path / "config.json").write_text(json.dumps(config))
    elif how == "error-edited":
        (path / "summary.json").write_text(json.dumps({**summary, "final_test_error": 1.0}))
    elif how == "history-truncated":
        lines = (path / "history.csv").read_text().splitlines()
        (path / "history.csv").write_text("\n".join(lines[:-1]) + "\n")
    elif how == "not-utf8":
        (path / "summary.json").write_bytes(b'{"status": "complete", "x": "\xff\xfe"}')
    elif how == "string-number":
        (path / "summary.json").write_text(json.dumps({**summary, "final_test_error": "16.8"}))
    elif how == "unknown-status":
        (path / "summary.json").write_text(json.dumps({**summary, "status": "great"}))
    elif how == "no-config":
        (path / "config.json").unlink()


@pytest.mark.parametrize("how", ["copied", "config-edited", "error-edited", "history-truncated", "not-utf8",
                                 "string-number", "unknown-status", "no-config"])
def test_a_damaged_record_is_reported_and_never_drawn(recorded, how, capsys):
    runs = recorded.parent
    _damage(recorded, how)
    scan = scan_records(runs)
    assert scan.records == [] and len(scan.damaged) == 1
    for d in runs.iterdir():
        with pytest.raises(DamagedRecord):
            load_record(d)
    assert main(["list", "--runs", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "damaged, left out of every figure" in out and "Recorded runs in" in out


def test_tensorboard_export(recorded, tmp_path):
    from resnetlab.runs.tensorboard import export_tensorboard

    written: dict = {}

    class Writer:
        def __init__(self, log_dir):
            self.dir = log_dir
            written[log_dir] = []

        def add_scalar(self, tag, value, step):
            written[self.dir].append((tag, step))

        def close(self):
            pass

    rec = scan_records(recorded.parent).records
    assert export_tensorboard(rec, tmp_path / "tb", writer_class=Writer) == 1
    [(logdir, scalars)] = written.items()
    assert logdir.endswith(recorded.name) and ("error/test", 24) in scalars


def test_read_only_runs_folder_keeps_the_computed_responses(tmp_path, cifar_pickles, monkeypatch):
    """R-Fig. 7 on a runs folder that cannot be written: the responses are returned (with a
    warning), not lost, and no temporary file is left behind."""
    import os

    from resnetlab.analysis import responses
    from resnetlab.data import load_cifar

    arrays = load_cifar("cifar10", cifar_pickles, progress=False)
    config = make_config("resnet8", profile="smoke", model_options={"widths": (4, 8, 16)})
    rec = get_or_train(config, runs=tmp_path / "runs", dataset=arrays, progress=False, save_weights=True)
    real_replace = os.replace

    def refuse(src, dst):
        if str(dst).endswith(responses.RESPONSES_FILE):
            raise PermissionError(13, "Permission denied", str(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(responses.os, "replace", refuse)
    with pytest.warns(RuntimeWarning, match="could not cache"):
        blob = responses.record_responses(rec, cifar_pickles)
    assert blob["stds"] and not (rec.path / responses.RESPONSES_FILE).exists()
    assert not list(rec.path.glob(".*.tmp-*"))


def test_an_experiment_over_two_datasets_says_which_copy_is_missing(tmp_path):
    from resnetlab.experiments.engine import training_source
    from resnetlab.experiments.registry import get_experiment
    from resnetlab.testing import fabricate_cifar

    root = fabricate_cifar(tmp_path, "cifar10", "folder", n_train=20, n_test=10)
    with pytest.raises(ValueError, match=r"cifar10: image-folder; cifar100: none \(it would be downloaded"):
        training_source(get_experiment("im-table3"), root)
