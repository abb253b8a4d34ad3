"""The papers' own numbers, in one place, labelled as the papers'.

Nothing else in resnetlab writes a paper number; figures and tables draw these beside
ours, never instead of ours. Sources:

* R  = He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR 2016
  (arXiv:1512.03385).
* IM = He, Zhang, Ren, Sun, "Identity Mappings in Deep Residual Networks", ECCV 2016
  (arXiv:1603.05027).
* VGG = Simonyan, Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
  Recognition", ICLR 2015 (arXiv:1409.1556).

Errors are percentages on the test set. ``FAIL`` marks a run the paper reports as failed
(IM Table 1 and its text).
"""

from __future__ import annotations

import math

import pandas as pd

FAIL = math.inf
PAPER_LABEL = "paper"

#: R-Table 1 and R-Sec. 3.3: multiply-adds at 224x224, in billions ("FLOPs").
R_TABLE1_GFLOPS: dict[str, float] = {
    "imagenet-resnet18": 1.8,
    "imagenet-resnet34": 3.6,
    "imagenet-resnet50": 3.8,
    "imagenet-resnet101": 7.6,
    "imagenet-resnet152": 11.3,
    "imagenet-plain34": 3.6,  # R-Sec. 3.3: "Our 34-layer baseline has 3.6 billion FLOPs"
    "vgg19": 19.6,  # R-Sec. 3.3: "VGG-19 (19.6 billion FLOPs)"
}

#: VGG Table 2: number of parameters in millions (R gives none for the ImageNet ResNets).
VGG_TABLE2_PARAMS_M: dict[str, float] = {"vgg11": 133.0, "vgg13": 133.0, "vgg16": 138.0, "vgg19": 144.0}

#: VGG Sec. 3.1: the training recipe (mini-batch 256, momentum 0.9, weight decay 5e-4,
#: "The learning rate was initially set to 10^-2"). VGG trained net A (VGG-11) from random
#: initialisation and initialised the deeper nets from it.
VGG_RECIPE: dict[str, float] = {"lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4, "batch_size": 256}

#: R-Table 6 and IM Sec. 4-5: parameter counts of the CIFAR nets, in millions.
CIFAR_PARAMS_M: dict[str, float] = {
    "resnet20": 0.27, "resnet32": 0.46, "resnet44": 0.66, "resnet56": 0.85,
    "resnet110": 1.7, "resnet1202": 19.4, "resnet164": 1.7, "resnet1001": 10.2,
}

#: R-Table 6: CIFAR-10 test error (%). ResNet-110 is "best (mean +- std)" over 5 runs.
R_TABLE6_ERROR: dict[str, float] = {
    "resnet20": 8.75, "resnet32": 7.51, "resnet44": 7.17, "resnet56": 6.97,
    "resnet110": 6.43, "resnet1202": 7.93,
}
R_TABLE6_RESNET110_MEAN_STD: tuple[float, float] = (6.61, 0.16)

#: R-Table 2: ImageNet top-1 error (%, 10-crop testing).
R_TABLE2_TOP1: dict[str, float] = {
    "imagenet-plain18": 27.94, "imagenet-plain34": 28.54,
    "imagenet-resnet18": 27.88, "imagenet-resnet34": 25.03,
}

#: R-Table 3: ImageNet validation error (%, 10-crop): (top-1, top-5).
R_TABLE3_ERROR: dict[str, tuple[float, float]] = {
    "vgg16": (28.07, 9.33),
    "imagenet-plain34": (28.54, 10.02),
    "imagenet-resnet34 (A)": (25.03, 7.76),
    "imagenet-resnet34 (B)": (24.52, 7.46),
    "imagenet-resnet34 (C)": (24.19, 7.40),
    "imagenet-resnet50": (22.85, 6.71),
    "imagenet-resnet101": (21.75, 6.05),
    "imagenet-resnet152": (21.43, 5.71),
}

#: IM Table 1: ResNet-110 on CIFAR-10 with shortcut variants (IM Fig. 2); median of 5 runs.
#: Keys: (variant, settings) -> error (%), FAIL for "fail".
IM_TABLE1_ERROR: dict[tuple[str, str], float] = {
    ("original", ""): 6.61,
    ("constant_scaling", "shortcut 0, F 1"): FAIL,  # "This is a plain net"
    ("constant_scaling", "shortcut 0.5, F 1"): FAIL,
    ("constant_scaling", "shortcut 0.5, F 0.5"): 12.35,  # "frozen gating"
    ("exclusive_gating", "b_g 0 to -5"): FAIL,
    ("exclusive_gating", "b_g -6"): 8.70,
    ("exclusive_gating", "b_g -7"): 9.81,
    ("shortcut_only_gating", "b_g 0"): 12.86,
    ("shortcut_only_gating", "b_g -6"): 6.91,
    ("conv_shortcut", ""): 12.22,
    ("dropout_shortcut", "p 0.5"): FAIL,
}

#: IM Table 2: CIFAR-10 test error (%) with activation placements (IM Fig. 4).
IM_TABLE2_ERROR: dict[str, dict[str, float]] = {
    "original": {"resnet110": 6.61, "resnet164": 5.93},
    "bn_after_addition": {"resnet110": 8.17, "resnet164": 6.50},
    "relu_before_addition": {"resnet110": 7.84, "resnet164": 6.14},
    "relu_only_preact": {"resnet110": 6.71, "resnet164": 5.91},
    "full_preact": {"resnet110": 6.37, "resnet164": 5.46},
}

#: IM Table 3: test error (%), original ("baseline") vs pre-activation units.
#: Keys: (dataset, depth name) -> {"original": err, "full_preact": err}; "resnet110-single"
#: is the table's "ResNet-110 (1layer skip)": units of one 3x3 layer.
IM_TABLE3_ERROR: dict[tuple[str, str], dict[str, float]] = {
    ("cifar10", "resnet110-single"): {"original": 9.90, "full_preact": 8.91},
    ("cifar10", "resnet110"): {"original": 6.61, "full_preact": 6.37},
    ("cifar10", "resnet164"): {"original": 5.93, "full_preact": 5.46},
    ("cifar10", "resnet1001"): {"original": 7.61, "full_preact": 4.92},
    ("cifar100", "resnet164"): {"original": 25.16, "full_preact": 24.33},
    ("cifar100", "resnet1001"): {"original": 27.82, "full_preact": 22.71},
}
#: The 4.62% of IM's abstract: pre-activation ResNet-1001 trained with mini-batch 64 (IM
#: Table 4, the row marked with a dagger; also the authors' code release,
#: KaimingHe/resnet-1k-layers, README), CIFAR-10 test error as (median, mean, std) over 5 runs;
#: with mini-batch 128 IM Table 4 gives 4.92 (4.89 +- 0.14).
IM_RESNET1001_BATCH64: tuple[float, float, float] = (4.62, 4.69, 0.20)

#: The CIFAR training recipe of R-Sec. 4.2 and the IM appendix is not repeated here: it is
#: :data:`resnetlab.train.PAPER` (one copy, the one every run uses), whose docstrings quote
#: the papers.


def is_fail(value: float) -> bool:
    """True where the paper reports "fail"."""
    return math.isinf(value)


def format_error(value: float | None) -> str:
    """A paper or measured error as a table cell: "6.61", "fail" or "–"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return "fail" if is_fail(value) else f"{value:.2f}"


def complexity_table() -> pd.DataFrame:
    """R-Table 1 / R-Fig. 3 paper values: model, paper GFLOPs, paper parameters (M) where given."""
    rows = []
    for model, gflops in R_TABLE1_GFLOPS.items():
        rows.append({"model": model, "macs_g_paper": gflops, "params_m_paper": VGG_TABLE2_PARAMS_M.get(model, math.nan)})
    return pd.DataFrame(rows)
