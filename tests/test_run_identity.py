"""A run's identity: data source, canonical model names, config schema and its migration,
and the recipe decisions that schema 2 made part of every config (weight-decay policy,
warm-up window and cap, divergence patience)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from resnetlab.data import load_cifar
from resnetlab.runs.migrate import migrate_runs, stale_records, upgrade_config
from resnetlab.runs import CONFIG_SCHEMA, checkpoint_path, get_or_train, load_record, make_config, run_id
from resnetlab.train import Recipe, build_optimizer as _optimizer, decay_groups, get_recipe, warmup_over as _warmup_over
from resnetlab.models import build_model, canonical_name

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: the config of the first recorded run exactly as schema 1 wrote it (data/runs, Nov 2026)
V1_CONFIG = {
    "dataset": "cifar10", "model": "resnet20", "model_options": {}, "profile": "quick", "seed": 0,
    "recipe": {"activation_checkpointing": 0, "augment": True, "batch_size": 128, "channels_last": "auto",
               "checkpoint_every": 800, "compile": False, "diverge_after_fraction": 0.25, "eval_every": 200,
               "iterations": 6400, "lr": 0.1, "lr_factor": 0.1, "milestones": [3200, 4800], "momentum": 0.9,
               "normalization": "per_pixel_mean", "precision": "auto", "test_subset": None, "train_subset": None,
               "validation": False, "warmup": "auto", "warmup_iterations": 400, "warmup_lr": 0.01,
               "warmup_min_depth": 110, "warmup_threshold": 80.0, "weight_decay": 0.0001},
}
V1_SUMMARY = {"status": "complete", "final_test_error": 16.76, "data_source": "CIFAR-10 (JPEG copy)",
              "run_id": "cifar10-resnet20-quick-s0-f302da068c", "iterations": 6400}


def test_the_data_source_is_part_of_the_id():
    official = make_config("resnet20", profile="quick")
    jpeg = make_config("resnet20", profile="quick", source="jpeg-copy")
    assert official["source"] == "torchvision" and jpeg["source"] == "jpeg-copy"
    assert run_id(official) != run_id(jpeg)
    assert run_id(jpeg).startswith("cifar10-jpeg-resnet20-quick-s0-")
    assert run_id(official).startswith("cifar10-resnet20-quick-s0-")
    with pytest.raises(ValueError, match="valid choices"):
        make_config("resnet20", source="jpg")


def test_a_run_never_trains_on_another_source(tmp_path, cifar_pickles):
    arrays = load_cifar("cifar10", cifar_pickles, progress=False)
    assert arrays.kind == "torchvision"
    config = make_config("resnet20", profile="smoke", source="jpeg-copy")
    with pytest.raises(ValueError, match="jpeg-copy"):
        get_or_train(config, runs=tmp_path / "runs", dataset=arrays, progress=False)
    assert not (tmp_path / "runs" / run_id(config) / "summary.json").exists()


def test_image_folders_are_told_apart(cifar_folder):
    assert load_cifar("cifar10", cifar_folder, progress=False).kind == "image-folder"  # PNG: lossless


@pytest.mark.parametrize("spelling", ["ResNet-20", "resnet_20", "RESNET20", "resnet-20"])
def test_model_names_are_canonical_in_configs(spelling):
    assert make_config(spelling) == make_config("resnet20")
    assert canonical_name("ImageNet-ResNet34") == "imagenet-resnet34"
    assert canonical_name("VGG-19") == "vgg19"


def _v1_record(root: Path, config=V1_CONFIG, summary=V1_SUMMARY) -> Path:
    d = root / summary["run_id"]
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps(config))
    (d / "summary.json").write_text(json.dumps(summary))
    (d / "history.csv").write_text("iteration,test_error\n6400,16.76\n")
    (d / "layer_responses.json").write_text(json.dumps({"run_id": summary["run_id"], "stds": [1.0]}))
    return d


def test_migration_moves_a_schema1_record_to_the_id_the_figures_ask_for(tmp_path):
    old = _v1_record(tmp_path)
    assert stale_records(tmp_path) == [old]
    moved = migrate_runs(tmp_path)
    want = make_config("resnet20", profile="quick", source="jpeg-copy")
    assert [(m.old_id, m.new_id) for m in moved] == [(old.name, run_id(want))]
    assert not old.exists()
    rec = load_record(tmp_path / run_id(want))
    assert rec.config == json.loads(json.dumps(want))
    assert rec.summary["migrated_from"] == old.name and rec.summary["run_id"] == run_id(want)
    assert rec.final_test_error == 16.76
    assert json.loads((rec.path / "layer_responses.json").read_text())["run_id"] == run_id(want)
    assert stale_records(tmp_path) == [] and migrate_runs(tmp_path) == []  # idempotent


def test_the_committed_records_are_all_current():
    """Every record in data/runs has today's config schema (``python -m resnetlab migrate``)."""
    root = Path(__file__).resolve().parents[1] / "data" / "runs"
    assert stale_records(root) == []
    for d in root.iterdir():
        if (d / "summary.json").exists():
            assert run_id(json.loads((d / "config.json").read_text())) == d.name


def test_migration_keeps_what_was_true_of_old_runs(tmp_path):
    gated = {**V1_CONFIG, "model": "resnet110", "model_options": {"variant": "exclusive_gating", "gate_bias": -6}}
    failed = {**V1_SUMMARY, "status": "failed", "failure_reason": "training error 90.0% is at chance (90%) at ..."}
    new = upgrade_config(gated, failed)
    assert new["recipe"]["weight_decay_policy"] == "all"  # schema 1 decayed b_g too
    assert (new["recipe"]["warmup_window"], new["recipe"]["warmup_max_iterations"]) == (1, 0)  # old R-Sec. 4.2 rule
    assert (new["recipe"]["diverge_after_fraction"], new["recipe"]["diverge_patience"]) == (0.25, 2)
    with pytest.raises(ValueError, match="which copy"):
        upgrade_config(V1_CONFIG, {**V1_SUMMARY, "data_source": None})


def test_a_taken_id_is_never_overwritten(tmp_path):
    _v1_record(tmp_path)
    target = tmp_path / run_id(make_config("resnet20", profile="quick", source="jpeg-copy"))
    target.mkdir()
    moved = migrate_runs(tmp_path)
    assert moved[0].note and (tmp_path / V1_SUMMARY["run_id"]).exists()


def test_migrate_cli(tmp_path, capsys):
    from resnetlab.cli import main

    _v1_record(tmp_path)
    assert main(["migrate", "--runs", str(tmp_path), "--dry-run"]) == 0
    assert (tmp_path / V1_SUMMARY["run_id"]).exists()
    assert main(["migrate", "--runs", str(tmp_path)]) == 0
    assert "moved cifar10-resnet20-quick-s0-f302da068c -> cifar10-jpeg-resnet20" in capsys.readouterr().out


# ------------------------------------------------------------------ recipe decisions


def test_gate_biases_get_no_weight_decay():
    """IM Table 1 varies the initial b_g: decay must not move it (issue: fidelity, item 1)."""
    torch.manual_seed(0)
    model = build_model("resnet20", variant="exclusive_gating", gate_bias=-6)
    gates = [m.conv.bias for m in model.modules() if hasattr(m, "initial_bias")]
    _, no_decay = decay_groups(model, "no_gate_bias")
    assert {id(p) for p in no_decay} == {id(p) for p in gates}
    for policy, moves in (("no_gate_bias", False), ("all", True)):
        m = build_model("resnet20", variant="exclusive_gating", gate_bias=-6)
        opt = _optimizer(m, get_recipe("quick", weight_decay_policy=policy, weight_decay=0.1), torch.device("cpu"))
        for p in m.parameters():
            p.grad = torch.zeros_like(p)
        opt.step()
        b = [mod.conv.bias for mod in m.modules() if hasattr(mod, "initial_bias")][0]
        assert bool((b != -6).any()) is moves
    # BN parameters and the FC bias are decayed, as fb.resnet.torch does
    decay, _ = decay_groups(build_model("resnet20"), "no_gate_bias")
    assert len(decay) == len(list(build_model("resnet20").parameters()))
    decay, rest = decay_groups(build_model("resnet20"), "weights_only")
    assert all(p.dim() > 1 for p in decay) and all(p.dim() == 1 for p in rest)


def test_warmup_uses_a_running_error_and_ends_at_a_cap():
    r = get_recipe("paper")
    assert (r.warmup_window, r.warmup_max_iterations) == (50, 1200)
    recent = torch.full((50,), 0.95)
    recent[-1] = 0.10  # one lucky batch no longer ends the warm-up
    assert _warmup_over(r, 60, recent) is None
    assert _warmup_over(r, 60, torch.full((50,), 0.70)) == "threshold"
    assert _warmup_over(r, 65, torch.full((50,), 0.70)) is None  # checked every 10 iterations
    assert _warmup_over(r, 1200, torch.full((50,), 0.95)) == "cap"
    old = get_recipe("paper", warmup_window=1, warmup_max_iterations=0)
    assert _warmup_over(old, 10_000, torch.full((1,), 0.95)) is None  # schema 1: never ends
    assert _warmup_over(get_recipe("paper", warmup="fixed"), 400, recent) == "fixed"


def test_checkpoints_can_live_outside_the_runs_folder(tmp_path, monkeypatch):
    config = make_config("resnet20", profile="smoke")
    assert checkpoint_path(config, tmp_path / "runs") == tmp_path / "runs" / run_id(config) / "checkpoints" / "last.pt"
    assert checkpoint_path(config, tmp_path / "runs", tmp_path / "ck") == tmp_path / "ck" / run_id(config) / "last.pt"
    monkeypatch.setenv("RESNETLAB_CHECKPOINTS", str(tmp_path / "env"))
    assert checkpoint_path(config, tmp_path / "runs") == tmp_path / "env" / run_id(config) / "last.pt"


def test_schema_is_recorded():
    assert make_config("plain20")["schema"] == CONFIG_SCHEMA == 2
    Recipe.from_dict({**make_config("plain20")["recipe"], "milestones": (3200, 4800)})


def test_a_slow_start_is_not_cut_short():
    """IM Fig. 1: the original ResNet-1001 "reduced very slowly at the beginning". A run at
    chance for a third of its schedule is not failed; schema 1 (0.25, 2 evaluations) cut it."""
    from resnetlab.train import stuck_at_chance

    r = get_recipe("paper")  # 64k iterations, warm-up ended at 400
    assert not stuck_at_chance(r, 20_000, 400, at_chance=40)
    assert not stuck_at_chance(r, 40_000, 400, at_chance=2)  # at chance only in the last two
    assert stuck_at_chance(r, 40_000, 400, at_chance=3)
    old = get_recipe("paper", diverge_after_fraction=0.25, diverge_patience=2)
    assert stuck_at_chance(old, 20_000, 400, at_chance=2)


def test_im_gating_arms_train_in_fp32():
    from resnetlab.experiments import get_experiment

    arms = get_experiment("im-table1").arms
    gating = [a for a in arms if str(a.options.get("variant", "")).endswith("gating")]
    assert gating and all(a.config("paper", 0)["recipe"]["precision"] == "fp32" for a in gating)
    assert all(a.config("paper", 0)["recipe"]["precision"] == "auto" for a in arms if a not in gating)
