"""The model zoo of both papers: sizes, costs, every variant, and clear errors."""

import pytest
import torch

from resnetlab.counting import count_macs, count_parameters
from resnetlab.models import (ACTIVATIONS, VARIANTS, Gate, ResidualUnit, build_model, display_name,
                              list_models, unit_layout)
from resnetlab.paper import CIFAR_PARAMS_M, R_TABLE1_GFLOPS

# Exact counts from our builder; each rounds to the paper's value (R-Table 6, IM Table 3).
CIFAR_PARAMS = {
    "resnet20": 269_722,
    "resnet32": 464_154,
    "resnet44": 658_586,
    "resnet56": 853_018,
    "resnet110": 1_727_962,
    "resnet1202": 19_421_274,
}


@pytest.mark.parametrize("name,count", CIFAR_PARAMS.items())
def test_cifar_resnet_parameters_match_paper(name, count):
    n = count_parameters(build_model(name))
    assert n == count
    digits = 2 if CIFAR_PARAMS_M[name] < 1 else 1
    assert round(n / 1e6, digits) == CIFAR_PARAMS_M[name]


def test_bottleneck_nets_parameters():
    # IM Table 4 gives 1.7M for ResNet-164 and 10.2M for ResNet-1001. The pre-activation nets
    # match the authors' code (resnet-1k-layers) exactly: bare 1x1 projection shortcuts, no BN,
    # 1,703,258 and 10,327,706 parameters (counted from resnet-pre-act.lua's structure). The
    # original nets keep BN on the projection (fb.resnet.torch resnet.lua): 896 more.
    assert count_parameters(build_model("resnet164")) == 1_704_154
    assert count_parameters(build_model("preresnet164")) == 1_703_258
    assert count_parameters(build_model("preresnet1001")) == 10_327_706
    n1001 = count_parameters(build_model("resnet1001"))
    assert n1001 == 10_328_602
    assert abs(n1001 / 10.2e6 - 1) < 0.02


def test_pre_activation_projection_shortcuts_have_no_bn():
    from resnetlab.models import ProjectionShortcut

    pre = [u.shortcut for u in build_model("preresnet164").units if isinstance(u.shortcut, ProjectionShortcut)]
    post = [u.shortcut for u in build_model("resnet164").units if isinstance(u.shortcut, ProjectionShortcut)]
    assert len(pre) == len(post) == 3
    assert all(len(s) == 1 for s in pre) and all(isinstance(s[1], torch.nn.BatchNorm2d) for s in post)


@pytest.mark.parametrize("name", ["resnet164", "preresnet164"])
def test_cifar_bottleneck_units_subsample_in_the_first_1x1(name):
    """resnet-1k-layers puts the stride on the first 1x1 of a bottleneck unit."""
    for unit in build_model(name).units:
        convs = [m for m in unit.residual.modules() if isinstance(m, torch.nn.Conv2d)]
        assert [c.kernel_size for c in convs] == [(1, 1), (3, 3), (1, 1)]
        assert convs[1].stride == (1, 1) and convs[2].stride == (1, 1)
    assert [u.residual[0].stride if isinstance(u.residual[0], torch.nn.Conv2d) else
            next(m for m in u.residual.modules() if isinstance(m, torch.nn.Conv2d)).stride
            for u in build_model(name).units if u.shortcut is not None and not isinstance(u.shortcut, torch.nn.Identity)
            ][1:] == [(2, 2), (2, 2)]


def test_relu_only_preactivation_keeps_bn_after_the_first_conv():
    """IM Fig. 4(d): BN stays with every weight layer, the first one included (IM appendix)."""
    stem = build_model("resnet110", activation="relu_only_preact").stem
    assert [type(m).__name__ for m in stem] == ["Conv2d", "BatchNorm2d"]
    assert [type(m).__name__ for m in build_model("preresnet110").stem] == ["Conv2d"]


@pytest.mark.parametrize("depth", [20, 32, 44, 56, 110])
def test_plain_net_has_exactly_the_parameters_of_option_a_resnet(depth):
    assert count_parameters(build_model(f"plain{depth}")) == count_parameters(build_model(f"resnet{depth}"))


def test_option_a_is_parameter_free_and_b_c_add_projections():
    a, b, c = (count_parameters(build_model("resnet20", shortcut=s)) for s in "ABC")
    assert a < b < c


@pytest.mark.parametrize("name,gflops", R_TABLE1_GFLOPS.items())
def test_imagenet_macs_within_5_percent_of_paper(name, gflops):
    with torch.device("meta"):  # counting needs shapes only
        net = build_model(name)
    macs = count_macs(net, (3, 224, 224)) / 1e9
    assert abs(macs / gflops - 1) < 0.05, (name, macs)


def _step(net, x, classes=10):
    net.train()
    out = net(x)
    assert out.shape == (x.shape[0], classes)
    out.logsumexp(1).mean().backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


CIFAR_CASES = (
    [("resnet20", {"variant": v}) for v in VARIANTS]
    + [("resnet20", {"activation": a}) for a in ACTIVATIONS]
    + [("resnet20", {"shortcut": s}) for s in "ABC"]
    + [("resnet29", {"activation": a}) for a in ACTIVATIONS]  # bottleneck 9n+2, n=3
    + [("resnet29", {"variant": v}) for v in VARIANTS]
    + [("plain20", {}), ("plain20", {"activation": "full_preact"}), ("preresnet20", {}),
       ("resnet20", {"variant": "constant_scaling", "shortcut_scale": 0.5, "residual_scale": 0.5}),
       ("resnet20", {"num_classes": 100, "widths": (8, 16, 32)})]
)


@pytest.mark.parametrize("name,options", CIFAR_CASES, ids=lambda v: str(v))
def test_every_cifar_variant_runs_forward_and_backward(name, options):
    torch.manual_seed(0)
    net = build_model(name, **options)
    _step(net, torch.randn(2, 3, 32, 32), options.get("num_classes", 10))


@pytest.mark.parametrize("name", ["imagenet-resnet18", "imagenet-plain18", "imagenet-resnet50", "vgg16"])
def test_imagenet_nets_run_on_small_inputs(name):
    net = build_model(name, small_input=True, num_classes=10)
    _step(net, torch.randn(2, 3, 32, 32))


def test_imagenet_net_at_224():
    net = build_model("imagenet-resnet18", shortcut="A")
    assert net(torch.randn(1, 3, 224, 224)).shape == (1, 1000)


def test_deep_nets_build_with_the_right_number_of_units():
    assert len(build_model("resnet1202").units) == 600
    assert len(build_model("preresnet1001").units) == 333
    assert build_model("resnet164").layout.block == "bottleneck"
    assert build_model("resnet110").layout.block == "basic"


def test_weighted_layers_follow_depth_rule():
    for name, depth in [("resnet56", 56), ("plain20", 20), ("resnet164", 164)]:
        net = build_model(name)
        convs = [m for n, m in net.named_modules() if isinstance(m, torch.nn.Conv2d) and "shortcut" not in n]
        assert len(convs) + 1 == depth


@pytest.mark.parametrize("variant", ["exclusive_gating", "shortcut_only_gating"])
@pytest.mark.parametrize("b_g", [0.0, -6.0, -7.0])
def test_gate_bias_after_init(variant, b_g):
    net = build_model("resnet20", variant=variant, gate_bias=b_g)
    gates = [m for m in net.modules() if isinstance(m, Gate)]
    assert len(gates) == 9
    for g in gates:
        assert torch.all(g.conv.bias == b_g)


def test_preactivation_unit_structure():
    net = build_model("preresnet20")
    assert len(net.stem) == 1  # conv only: the first unit's pre-activation follows conv1
    assert net.units[0].preact is not None and net.units[1].preact is None
    assert len(net.final_activation) == 2  # the extra BN-ReLU after the last addition


def test_dropout_shortcut_expectation():
    from resnetlab.models import DropoutShortcut
    d = DropoutShortcut(0.5)
    x = torch.ones(200_000)
    assert abs(d(x).mean().item() - 0.5) < 0.01  # training: scale of expectation 0.5
    d.eval()
    assert torch.allclose(d(x), torch.full_like(x, 0.5))


def test_constant_scaling_scales_the_shortcut():
    torch.manual_seed(0)
    unit = ResidualUnit(unit_layout("basic", variant="constant_scaling"), 4, 4, shortcut_scale=0.5)
    with torch.no_grad():
        for p in unit.residual.parameters():
            p.zero_()
    x = torch.rand(1, 4, 8, 8)
    assert torch.allclose(unit(x), torch.relu(0.5 * x))


def test_layouts_read_like_im_fig4():
    assert unit_layout(activation="original").residual == ("conv3x3", "bn", "relu", "conv3x3", "bn")
    assert unit_layout(activation="original").after == ("relu",)
    assert unit_layout(activation="bn_after_addition").after == ("bn", "relu")
    assert unit_layout(activation="relu_before_addition").residual[-1] == "relu"
    assert unit_layout(activation="relu_only_preact").residual[:2] == ("relu", "conv3x3")
    assert unit_layout(activation="full_preact").residual == ("bn", "relu", "conv3x3", "bn", "relu", "conv3x3")
    assert unit_layout(variant="plain").shortcut is None
    assert unit_layout(variant="exclusive_gating").shortcut == ("gate(1-g)",)


@pytest.mark.parametrize("name,options,needle", [
    ("resnet21", {}, "6n+2"),
    ("resnet21", {}, "9n+2"),
    ("plain30", {}, "6n+2"),
    ("resnet20", {"variant": "highway"}, "exclusive_gating"),
    ("resnet20", {"activation": "swish"}, "full_preact"),
    ("resnet20", {"shortcut": "D"}, "A"),
    ("resnet20", {"block": "wide"}, "bottleneck"),
    ("resnet20", {"colour": "red"}, "gate_bias"),
    ("resnet-x", {}, "resnet"),
    ("imagenet-resnet20", {}, "152"),
    ("vgg17", {}, "19"),
    ("resnet32", {"block": "bottleneck"}, "9n+2"),
])
def test_bad_configurations_name_the_valid_choices(name, options, needle):
    with pytest.raises(ValueError, match=needle.replace("+", r"\+")):
        build_model(name, **options)


def test_names_are_forgiving_and_listed():
    assert count_parameters(build_model("ResNet-20")) == CIFAR_PARAMS["resnet20"]
    assert display_name("resnet56") == "ResNet-56"
    assert display_name("imagenet-plain34") == "plain-34"
    models = list_models()
    for name in models:  # every named net parses (built ones are checked above)
        assert display_name(name)


def test_pre_activation_is_shared_by_the_first_unit_of_each_stage_only():
    """fb.resnet.torch preresnet.lua ('both_preact') and resnet-1k-layers: the first unit of
    every stage applies BN-ReLU before the split; no other unit does."""
    units = build_model("preresnet110").units
    assert [i for i, u in enumerate(units) if u.preact is not None] == [0, 18, 36]
    assert all(u.preact is None for u in build_model("resnet110").units)
