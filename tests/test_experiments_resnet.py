"""The ResNet-paper experiments (r-fig1, r-fig6, r-fig7, r-fig4, r-table3, vgg-depth)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pandas as pd
import pytest

from resnetlab.experiments import Collected, collect, get_experiment, list_experiments, reproduce
from resnetlab.runs import run_id

@pytest.fixture(autouse=True)
def _skip_model_validation(monkeypatch):
    """make_config validates every config by building the net on the meta device (about a
    second each for the deep nets); these tests compare and look up configs, so skip it."""
    monkeypatch.setattr("resnetlab.runs.config.build_model", lambda *args, **kwargs: None)


NAMES = ("r-fig1", "r-fig6", "r-fig7", "r-fig4", "r-table3", "vgg-depth")
PROFILES = ("smoke", "quick", "paper")


def _ids(name: str, profile: str, keys=None) -> list[str]:
    exp = get_experiment(name)
    return [run_id(c) for arm, c in exp.configs(profile) if keys is None or arm.key in keys]


def test_registry():
    exps = list_experiments()
    for name in NAMES:
        assert name in exps and exps[name].draw is not None
        assert exps[name].notebook.endswith(".ipynb")
    models = lambda n: [a.model for a in get_experiment(n).arms]
    assert models("r-fig1") == ["plain20", "plain56"]
    assert models("r-fig6") == ["plain20", "plain32", "plain44", "plain56",
                                "resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "resnet1202"]
    assert sorted(models("r-fig7")) == sorted(["plain20", "plain56", "resnet20", "resnet56", "resnet110"])
    assert all(a.options.get("small_input") for n in ("r-fig4", "r-table3") for a in get_experiment(n).arms)
    shortcuts = [a.options.get("shortcut") for a in get_experiment("r-table3").arms]
    assert shortcuts == [None, "A", "B", "C"]
    vgg = get_experiment("vgg-depth").arms
    assert {(a.model, a.options["batch_norm"]) for a in vgg} == {
        (f"vgg{d}", bn) for d in (11, 13, 16, 19) for bn in (False, True)}
    for name in NAMES:  # arm keys are unique within an experiment
        keys = [a.key for a in get_experiment(name).arms]
        assert len(keys) == len(set(keys))


@pytest.mark.parametrize("profile", PROFILES)
def test_shared_runs_have_identical_configs(profile):
    fig6 = set(_ids("r-fig6", profile))
    assert set(_ids("r-fig1", profile)) <= fig6  # one training serves R-Fig. 1 and R-Fig. 6
    weights = {a.key for a in get_experiment("r-fig6").arms if a.save_weights}
    assert set(_ids("r-fig7", profile)) == set(_ids("r-fig6", profile, weights))
    assert all(a.save_weights for a in get_experiment("r-fig7").arms)
    fig4 = set(_ids("r-fig4", profile))
    shared = {a.key for a in get_experiment("r-table3").arms if a.options.get("shortcut") in (None, "A")}
    assert set(_ids("r-table3", profile, shared)) <= fig4  # plain-34 and ResNet-34 A


def test_deep_resnets_keep_the_papers_warmup():
    from resnetlab.train import wants_warmup, Recipe

    for arm in get_experiment("r-fig6").arms:
        recipe = Recipe.from_dict({**arm.config("paper", 0)["recipe"],
                                   "milestones": tuple(arm.config("paper", 0)["recipe"]["milestones"])})
        assert wants_warmup(recipe, arm.model) == (arm.model in ("resnet110", "resnet1202"))
    # the quick/paper recipes are the profile's, untouched (smoke overrides apply to smoke only)
    plain20 = get_experiment("r-fig6").arms[0]
    from resnetlab.train import get_recipe

    assert plain20.config("quick", 0)["recipe"] == get_recipe("quick").to_dict()


@pytest.mark.parametrize("name", NAMES)
def test_draw_on_empty_collection_gives_placeholders(name, tmp_path):
    c = collect(name, "recorded", tmp_path / "runs")
    assert not c.all_records and c.missing
    drawn = get_experiment(name).draw(c)
    assert drawn.figures
    for stem, fig in drawn.figures.items():
        texts = [t.get_text() for ax in fig.axes for t in ax.texts] + [t.get_text() for t in fig.texts]
        assert any("not yet recorded" in t or "no results yet" in t or "not recorded" in t for t in texts) or \
            all(isinstance(t, pd.DataFrame) for t in drawn.tables.values()), stem
    for table in drawn.tables.values():
        assert isinstance(table, pd.DataFrame) and len(table)
        if "status" in table:
            assert set(table["status"]) == {"not recorded"}


def test_tables_carry_paper_numbers_from_resnetlab_paper(tmp_path):
    from resnetlab import paper

    c = collect("r-fig6", "recorded", tmp_path)
    table = get_experiment("r-fig6").draw(c).tables["r_table6_cifar_error"].set_index("model")
    assert table.loc["ResNet-110", "paper error (%)"] == paper.R_TABLE6_ERROR["resnet110"]
    assert table.loc["ResNet-1202", "paper error (%)"] == paper.R_TABLE6_ERROR["resnet1202"]
    assert pd.isna(table.loc["plain-56", "paper error (%)"])
    assert table.loc["ResNet-56", "params (M)"] == pytest.approx(paper.CIFAR_PARAMS_M["resnet56"], abs=0.01)


@pytest.mark.slow
def test_smoke_reproduce_r_fig1_and_figures_command(tmp_path, monkeypatch):
    from resnetlab.experiments import make_figures
    from resnetlab.testing import fabricate_cifar

    data = fabricate_cifar(tmp_path / "data", "cifar10", n_train=200, n_test=80)
    runs = tmp_path / "runs"
    collected = reproduce("r-fig1", "smoke", runs=runs, data=data, progress=False)
    assert isinstance(collected, Collected) and collected.complete
    assert {r.config["model"] for r in collected.all_records} == {"plain20", "plain56"}
    assert all(r.weights_path is not None for r in collected.all_records)  # kept for R-Fig. 7
    drawn = get_experiment("r-fig1").draw(collected)
    table = drawn.tables["r_fig1_final_errors"]
    assert list(table["runs"]) == [1, 1] and set(table["status"]) == {"complete"}
    # the same records serve r-fig6's plain arms
    assert len(collect("r-fig6", "smoke", runs).records["plain56"]) == 1
    # r-fig7 can measure the responses of the recorded weights
    from resnetlab.models import build_model

    monkeypatch.setattr("resnetlab.runs.config.build_model", build_model)  # load_model builds for real
    monkeypatch.setenv("RESNETLAB_DATA", str(data))
    fig7 = get_experiment("r-fig7").draw(collect("r-fig7", "smoke", runs)).tables["r_fig7_layer_responses"]
    assert list(fig7.set_index("model").loc[["plain-20", "plain-56"], "3x3 layers"]) == [19, 55]
    # smoke runs are never drawn by `figures` (it reads recorded = paper/quick): it lists what is missing
    [result] = make_figures(tmp_path / "figures", runs, only=["r-fig1"], progress=False)
    assert result.error is None
    assert any("python -m resnetlab reproduce r-fig1 --profile quick" in m for m in result.missing)
    assert (tmp_path / "figures" / "r_fig1_degradation.png").exists()


def test_only_seed_zero_of_the_analysed_nets_keeps_its_weights():
    from resnetlab.experiments import keeps_weights

    kept = {(c["model"], c["seed"]) for arm, c in get_experiment("r-fig6").configs("paper") if keeps_weights(arm, c)}
    assert kept == {(m, 0) for m in ("plain20", "plain56", "resnet20", "resnet56", "resnet110")}
