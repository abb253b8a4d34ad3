"""Fused training (HFTA): K runs of one architecture as one net, each member exactly as alone."""

import shutil

import pytest
import torch

from resnetlab.data import load_cifar
from resnetlab.models import build_model
from resnetlab.models.fused import FusionError, fuse, member_state_dict
from resnetlab.runs import load_record, make_config, run_id
from resnetlab.runs.fusion import fusion_groups, fusion_key, fusion_wanted, get_or_train_group
from resnetlab.train import Member, Recipe, load_checkpoint, save_checkpoint, train, train_fused

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY = {"widths": (4, 8, 16)}
SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def arrays(tmp_path_factory):
    from resnetlab.testing import fabricate_cifar

    # 100 test images: errors like 7/100 are not exact in float32, so a record computed
    # otherwise than the lone run's would show
    root = fabricate_cifar(tmp_path_factory.mktemp("data"), "cifar10", "pickle", n_train=256, n_test=100)
    return load_cifar("cifar10", root, progress=False)


def recipe(**kw):
    base = dict(iterations=16, batch_size=32, milestones=(8, 12), eval_every=4, checkpoint_every=8, warmup="none",
                precision="fp64")
    return Recipe(**{**base, **kw})


def weight_gap(a: torch.nn.Module, b: torch.nn.Module) -> float:
    return max((x.double() - y.double()).abs().max().item()
               for x, y in zip(a.state_dict().values(), b.state_dict().values()) if x.is_floating_point())


def history_gap(a, b) -> float:
    cols = ["train_loss", "train_error", "test_loss", "test_error", "lr"]
    return (a.history[cols] - b.history[cols]).abs().max().max()


VARIANTS = [
    ("plain8", {}), ("resnet8", {}), ("resnet8", {"shortcut": "B"}), ("resnet8", {"shortcut": "C"}),
    ("resnet8", {"variant": "constant_scaling"}), ("resnet8", {"variant": "exclusive_gating"}),
    ("resnet8", {"variant": "shortcut_only_gating"}), ("resnet8", {"variant": "conv_shortcut"}),
    ("resnet8", {"variant": "dropout_shortcut"}), ("preresnet8", {}),
    ("resnet8", {"activation": "relu_before_addition"}), ("resnet8", {"activation": "relu_only_preact"}),
    ("resnet8", {"activation": "bn_after_addition"}), ("resnet11", {"block": "bottleneck"}),
    ("preresnet11", {"block": "bottleneck"}), ("resnet5", {"block": "single"}),
]


@pytest.mark.parametrize("name,options", VARIANTS + [("vgg11", {"small_input": True, "num_classes": 10}),
                                                     ("imagenet-resnet18", {"small_input": True, "num_classes": 10})])
def test_a_fused_net_computes_what_each_member_computes_alone(name, options):
    torch.set_default_dtype(torch.float64)
    try:
        if name.startswith(("resnet", "plain", "preresnet")):
            options = {**TINY, **options}
        nets, states = [], []
        for seed in (0, 1):
            torch.manual_seed(seed)
            nets.append(build_model(name, **options))
            states.append({"cpu": torch.get_rng_state()})
        fused = fuse(nets, states)
        xs = [torch.randn(3, 3, 32, 32) for _ in nets]
        for mode in ("train", "eval"):
            fused.train(mode == "train")
            alone = []
            for net, x, state in zip(nets, xs, states):
                net.train(mode == "train")
                torch.set_rng_state(state["cpu"])  # the member's own stream: dropout draws the same masks
                alone.append(net(x))
            out = fused(torch.cat(xs, 1))
            for k, y in enumerate(alone):
                torch.testing.assert_close(out[:, k], y, rtol=0, atol=1e-12)
        for k, net in enumerate(nets):  # run k loads into a standalone model
            lone = build_model(name, **options)
            lone.load_state_dict(member_state_dict(fused, k))
            assert weight_gap(lone, net) == 0
    finally:
        torch.set_default_dtype(torch.float32)


def test_nets_that_differ_in_more_than_weights_do_not_fuse():
    with pytest.raises(FusionError, match=r"'layout' of the net itself .*scale\(1\).* vs .*scale\(0.5\)"):
        fuse([build_model("resnet8", variant="constant_scaling", shortcut_scale=s, **TINY) for s in (0.5, 1.0)])
    with pytest.raises(FusionError, match="other modules"):
        fuse([build_model("resnet8", **TINY), build_model("resnet14", **TINY)])
    net = build_model("resnet8", **TINY)
    net.stages[0][0].after = torch.nn.Sequential(torch.nn.LayerNorm([4, 32, 32]))
    with pytest.raises(FusionError, match="LayerNorm cannot be fused"):
        fuse([net, net])
    # initial values may differ: IM Table 1's gating arms (b_g 0 and -6) fuse
    fuse([build_model("resnet8", variant="exclusive_gating", gate_bias=b, **TINY) for b in (0.0, -6.0)])


def _lone_and_fused(arrays, r, options=None, seeds=SEEDS, gate_biases=None):
    opts = [dict(TINY, **(options or {}), **({} if gate_biases is None else {"gate_bias": b}))
            for b in (gate_biases or [None] * len(seeds))]
    lone = [train("resnet8", arrays, r, seed=s, model_options=o, progress=False) for s, o in zip(seeds, opts)]
    fused = train_fused("resnet8", arrays, r, [Member(seed=s, model_options=o) for s, o in zip(seeds, opts)],
                        progress=False)
    return lone, fused


def test_in_float64_fused_runs_match_their_lone_runs_to_round_off(arrays):
    lone, fused = _lone_and_fused(arrays, recipe(iterations=20, milestones=(10, 15), eval_every=5,
                                                  checkpoint_every=10))
    for a, b in zip(lone, fused):
        assert b.summary["fused"] == 3 and b.summary["status"] == a.summary["status"] == "complete"
        assert len(b.history) == len(a.history) == 4
        assert history_gap(a, b) < 1e-12  # losses, errors and learning rates of every evaluation
        assert a.history.test_error.tolist() == b.history.test_error.tolist()  # the same numbers, to the bit
        assert a.summary["final_train_error"] == b.summary["final_train_error"]
        assert weight_gap(a.model, b.model) < 1e-12  # weights and BN statistics


def test_each_member_keeps_its_own_warm_up_and_learning_rate(arrays):
    """R-Sec. 4.2's warm-up ends when a run's own training error says so: members end it at
    different iterations, so their learning rates differ step by step, as alone."""
    r = recipe(warmup="auto", warmup_min_depth=1, warmup_window=10, warmup_threshold=89.0,
               warmup_max_iterations=14, iterations=20, milestones=(16, 18), eval_every=5, checkpoint_every=10)
    lone, fused = _lone_and_fused(arrays, r, seeds=(0, 1, 2, 3))
    ends = [a.summary["warmup_end"] for a in lone]
    assert [b.summary["warmup_end"] for b in fused] == ends
    assert [b.summary["warmup_ended_by"] for b in fused] == [a.summary["warmup_ended_by"] for a in lone]
    for a, b in zip(lone, fused):
        assert history_gap(a, b) < 1e-12 and weight_gap(a.model, b.model) < 1e-12


def test_gating_arms_with_their_own_gate_bias_and_dropout_masks_fuse_exactly(arrays):
    lone, fused = _lone_and_fused(arrays, recipe(iterations=8, milestones=(4, 6)),
                                  {"variant": "shortcut_only_gating"}, seeds=(0, 0), gate_biases=[0.0, -6.0])
    assert all(weight_gap(a.model, b.model) < 1e-12 for a, b in zip(lone, fused))
    lone, fused = _lone_and_fused(arrays, recipe(iterations=8, milestones=(4, 6)), {"variant": "dropout_shortcut"})
    assert all(weight_gap(a.model, b.model) < 1e-12 for a, b in zip(lone, fused))


def test_in_float32_fused_runs_stay_within_the_round_off_of_a_layout_change(arrays):
    """The fp32 tolerance: fused and lone runs sum in other orders, which round differently,
    and training amplifies it. The same amplification shows between two lone runs that only
    store activations in other memory layouts (NCHW vs channels_last), which is also nothing
    but round-off: the fused runs must stay at least that close to their lone runs. (Measured
    on the development CPU after 20 steps: fused 7e-5 to 6e-3, layout 3e-2 to 4e-2.)"""
    r = recipe(precision="fp32", iterations=12, milestones=(6, 9), eval_every=6, checkpoint_every=12)
    lone, fused = _lone_and_fused(arrays, r)
    nchw = [train("resnet8", arrays, Recipe(**{**r.to_dict(), "milestones": r.milestones, "channels_last": "off"}),
                  seed=s, model_options=TINY, progress=False) for s in SEEDS]
    for a, b, c in zip(lone, fused, nchw):
        assert weight_gap(a.model, b.model) <= weight_gap(a.model, c.model)
        assert (a.history.train_loss - b.history.train_loss).abs().max() < 1e-3


def _stop_at(arrays, r, tmp_path, seeds, at):
    """Lone runs stopped at iteration ``at`` (an evaluation point): their checkpoints."""
    paths = [tmp_path / f"s{s}" / "last.pt" for s in seeds]
    for s, p in zip(seeds, paths):
        train("resnet8", arrays, r, seed=s, model_options=TINY, checkpoint=p, progress=False, stop_after=at,
              identity=f"run-s{s}")
    return paths


def test_a_diverging_member_fails_alone_and_the_others_stay_exact(arrays, tmp_path):
    r = recipe()
    ckpts = _stop_at(arrays, r, tmp_path, SEEDS, 4)
    kept = [p.with_name("copy.pt") for p in ckpts]
    for p, q in zip(ckpts, kept):
        shutil.copy(p, q)
    poisoned = load_checkpoint(ckpts[1])  # member 1: a poisoned net (a NaN in its classifier)
    poisoned["model"]["fc.weight"][0, 0] = float("nan")
    save_checkpoint(ckpts[1], poisoned)
    fused = train_fused("resnet8", arrays, r, [Member(seed=s, model_options=TINY, checkpoint=p, identity=f"run-s{s}")
                                                for s, p in zip(SEEDS, ckpts)], progress=False)
    assert fused[1].summary["status"] == "failed" and "non-finite" in fused[1].summary["failure_reason"]
    assert fused[1].summary["iterations"] == 8  # frozen at the first evaluation that saw it
    for k in (0, 2):
        alone = train("resnet8", arrays, r, seed=SEEDS[k], model_options=TINY, checkpoint=kept[k], progress=False,
                      identity=f"run-s{SEEDS[k]}")
        assert fused[k].summary["status"] == "complete"
        assert history_gap(alone, fused[k]) < 1e-12 and weight_gap(alone.model, fused[k].model) < 1e-12


def test_when_every_member_diverges_each_is_recorded_failed(arrays, tmp_path):
    r = recipe()
    ckpts = _stop_at(arrays, r, tmp_path, (0, 1), 4)
    for p in ckpts:
        state = load_checkpoint(p)
        state["model"]["fc.weight"][0, 0] = float("nan")
        save_checkpoint(p, state)
    fused = train_fused("resnet8", arrays, r, [Member(seed=s, model_options=TINY, checkpoint=p, identity=f"run-s{s}")
                                                for s, p in zip((0, 1), ckpts)], progress=False)
    assert [f.summary["status"] for f in fused] == ["failed", "failed"]
    assert [f.summary["iterations"] for f in fused] == [8, 8]


def test_fused_checkpoints_are_lone_checkpoints_both_ways(arrays, tmp_path):
    r = recipe()
    whole = [train("resnet8", arrays, r, seed=s, model_options=TINY, progress=False) for s in SEEDS]
    ckpts = [tmp_path / f"s{s}" / "last.pt" for s in SEEDS]
    members = [Member(seed=s, model_options=TINY, checkpoint=p, identity=f"run-s{s}") for s, p in zip(SEEDS, ckpts)]
    first = train_fused("resnet8", arrays, r, members, progress=False, stop_after=8)  # fused, interrupted
    assert {x.summary["status"] for x in first} == {"interrupted"}
    for s, p, w in zip(SEEDS, ckpts, whole):  # resumed alone
        rest = train("resnet8", arrays, r, seed=s, model_options=TINY, checkpoint=p, progress=False,
                     identity=f"run-s{s}")
        assert history_gap(rest, w) < 1e-12 and weight_gap(rest.model, w.model) < 1e-12
    lone_first = _stop_at(arrays, r, tmp_path / "lone", SEEDS, 8)  # alone, interrupted; resumed fused
    again = train_fused("resnet8", arrays, r, [Member(seed=s, model_options=TINY, checkpoint=p, identity=f"run-s{s}")
                                                for s, p in zip(SEEDS, lone_first)], progress=False)
    for a, w in zip(again, whole):
        assert history_gap(a, w) < 1e-12 and weight_gap(a.model, w.model) < 1e-12


def test_fp16_members_keep_their_own_loss_scale(arrays):
    """fp16 (Colab's T4): each member has its own loss scale; on CPU autocast runs fp16 too."""
    r = recipe(precision="fp16", iterations=6, milestones=(3, 5), eval_every=3, checkpoint_every=6)
    lone, fused = _lone_and_fused(arrays, r, seeds=(0, 1))
    for a, b in zip(lone, fused):
        assert b.summary["status"] == "complete"
        assert (a.history.train_loss - b.history.train_loss).abs().max() < 5e-2


def test_runs_are_grouped_by_what_they_share(tmp_path):
    seeds = [make_config("resnet20", profile="smoke", seed=s) for s in range(3)]
    gates = [make_config("resnet110", profile="smoke", model_options={"variant": "exclusive_gating", "gate_bias": b})
             for b in (0.0, -6.0)]
    other = make_config("resnet32", profile="smoke")
    configs = [seeds[0], gates[0], seeds[1], other, gates[1], seeds[2], seeds[0]]
    assert fusion_groups(configs) == [[0, 2, 5], [1, 4], [3]]  # the repeated run trains once
    assert fusion_groups(configs, max_members=2) == [[0, 2], [1, 4], [3], [5]]
    assert fusion_key(gates[0]) == fusion_key(gates[1]) != fusion_key(seeds[0])
    assert fusion_wanted("auto", "cpu") is False and fusion_wanted("auto", "cuda") is True
    assert fusion_wanted("off", "cuda") is False and fusion_wanted("on", "cpu") is True
    with pytest.raises(ValueError, match="valid choices"):
        fusion_wanted("sometimes", None)


def test_a_fused_group_is_recorded_as_its_lone_runs(arrays, tmp_path):
    configs = [make_config("resnet8", profile="smoke", seed=s, model_options={"widths": [4, 8, 16]}, source=arrays.kind,
                           iterations=8, milestones=[4, 6], eval_every=4, checkpoint_every=8) for s in (0, 1)]
    records = get_or_train_group(configs, runs=tmp_path / "runs", dataset=arrays, save_weights=[True, False],
                                 progress=False)
    for config, rec in zip(configs, records):
        assert rec.id == run_id(config) and rec.status == "complete" and rec.summary["fused"] == 2
        again = load_record(tmp_path / "runs" / rec.id)
        assert again.config == config and len(again.history) == 2
    net = build_model("resnet8", **TINY)
    net.load_state_dict({k: v.float() for k, v in
                         torch.load(records[0].path / "weights.pt", weights_only=True).items()})
    assert not (records[1].path / "weights.pt").exists()
    # recorded runs are read, not retrained
    assert [r.summary["finished"] for r in get_or_train_group(configs, runs=tmp_path / "runs", dataset=arrays,
                                                              progress=False)] == \
        [r.summary["finished"] for r in records]


SHORT = dict(iterations=8, milestones=(4, 6), eval_every=4, checkpoint_every=4)


def _tiny(seed=0, model="resnet8"):
    return make_config(model, profile="smoke", seed=seed, model_options={"widths": [4, 8, 16]}, **SHORT)


@pytest.fixture(scope="module")
def pickles(tmp_path_factory):
    from resnetlab.testing import fabricate_cifar

    return fabricate_cifar(tmp_path_factory.mktemp("pickles"), "cifar10", "pickle", n_train=256, n_test=64)


def test_train_many_trains_a_fused_group_in_one_process(pickles, tmp_path):
    from resnetlab.runs.parallel import train_many

    configs = [_tiny(0), _tiny(1), _tiny(0, "resnet14")]
    result = train_many(configs, jobs=2, runs=tmp_path, data=pickles, device="cpu", fuse="on", progress=False)
    assert [r.status for r in result] == ["complete"] * 3 and not result.errors
    assert [r.summary.get("fused") for r in result] == [2, 2, None]
    assert result.images == 3 * 8 * 32


def test_a_pack_fuses_its_seeds(pickles, tmp_path):
    from resnetlab.runs import cluster

    configs = [_tiny(0), _tiny(1)]
    sub = cluster.submit(configs, engine="debug", runs=tmp_path / "runs", data=pickles, logs=tmp_path / "logs",
                         device="cpu", threads=1, fuse="on", progress=False)
    outcomes = sub.reports[0]["runs"]
    assert {o["outcome"] for o in outcomes.values()} == {"complete"} and {o["fused"] for o in outcomes.values()} == {2}
    assert [load_record(tmp_path / "runs" / run_id(c)).summary["fused"] for c in configs] == [2, 2]


def test_reproduce_fuses_im_table1s_gating_arms(pickles, tmp_path):
    from resnetlab.experiments import reproduce

    collected = reproduce("im-table1", "smoke", runs=tmp_path, data=pickles, device="cpu", fuse="on", progress=False)
    fused = {key: {r.summary.get("fused") for r in recs} for key, recs in collected.records.items()}
    assert fused["exclusive_gating_0"] == fused["exclusive_gating_-7"] == {3}
    assert fused["shortcut_only_gating_-6"] == {2}
    assert fused["original"] == fused["conv_shortcut"] == {None} and not collected.missing
