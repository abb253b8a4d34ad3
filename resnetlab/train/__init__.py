"""Train a CIFAR net the papers' way (R-Sec. 4.2; IM appendix).

The recipe: mini-batch 128, SGD with momentum 0.9 and weight decay 1e-4, learning rate 0.1
divided by 10 at 32k and 48k iterations, stop at 64k. ResNet-110 and deeper warm up at
0.01 "until the training error is below 80% (about 400 iterations)"; IM warms every run
up for 400 iterations. The reported result is the final iterate's test error.

* :mod:`.recipe`: the recipe as data, and the learning rate and warm-up as pure functions;
* :mod:`.checkpoint`: the resumable checkpoint, one dict of :data:`CHECKPOINT_KEYS`;
* :mod:`.trainer`: model, optimizer and data on the device, and one training step;
* :mod:`.loop`: :func:`train`, evaluation, divergence, resume;
* :mod:`.fused` and :mod:`.fused_loop`: :func:`train_fused`, K runs of one architecture as
  one fused net (HFTA), each member exactly as alone.
"""

from .checkpoint import CHECKPOINT_KEYS, CHECKPOINT_VERSION, load_checkpoint, save_checkpoint
from .fused_loop import Member, ResumeMismatch, train_fused
from .loop import HISTORY_COLUMNS, DivergedError, Progress, TrainResult, train
from .recipe import (PAPER, PROFILE_SEEDS, PROFILES, WEIGHT_DECAY_POLICIES, Recipe, get_recipe, initial_warmup_end,
                     learning_rate, stuck_at_chance, wants_warmup, warmup_over)
from .trainer import (Trainer, build_optimizer, build_trainer, channels_last_for, decay_groups, device_name, evaluate,
                      half_state_dict, pick_device, prepare_data, train_step)

__all__ = [
    "CHECKPOINT_KEYS", "CHECKPOINT_VERSION", "load_checkpoint", "save_checkpoint",
    "Member", "ResumeMismatch", "train_fused",
    "HISTORY_COLUMNS", "DivergedError", "Progress", "TrainResult", "train",
    "PAPER", "PROFILE_SEEDS", "PROFILES", "WEIGHT_DECAY_POLICIES", "Recipe", "get_recipe", "initial_warmup_end",
    "learning_rate", "stuck_at_chance", "wants_warmup", "warmup_over",
    "Trainer", "build_optimizer", "build_trainer", "channels_last_for", "decay_groups", "device_name", "evaluate",
    "half_state_dict", "pick_device", "prepare_data", "train_step",
]
