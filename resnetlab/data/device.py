"""CIFAR on the training device: normalise, augment and batch (R-Sec. 4.2).

* "The network inputs are 32x32 images, with the per-pixel mean subtracted."
  -> :class:`Normalizer` (mode ``"per_pixel_mean"``).
* "4 pixels are padded on each side, and a 32x32 crop is randomly sampled from the padded
  image or its horizontal flip." -> :func:`augment_batch`, applied per batch by
  :class:`BatchStream` on the training device.
* "For testing, we only evaluate the single view of the original 32x32 image."
  -> :func:`eval_batches` (no augmentation).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F

from .arrays import check_uint8_images

NORMALIZATIONS: dict[str, str] = {
    "per_pixel_mean": "x/255 minus the mean training image (R-Sec. 4.2, the paper's choice)",
    "per_channel": "x/255 minus the channel mean, divided by the channel std",
}


class Normalizer:
    """Maps uint8 images to normalised float32 images.

    ``"per_pixel_mean"`` is R-Sec. 4.2's "per-pixel mean subtracted": ``x/255 - mean/255``
    with ``mean`` the [3,32,32] mean training image. ``"per_channel"`` is the common
    alternative ``(x/255 - mu_c) / sigma_c``.
    """

    def __init__(self, mode: str, train_images_uint8: torch.Tensor) -> None:
        _check_mode(mode)
        check_uint8_images(train_images_uint8, "train_images_uint8")
        dev = train_images_uint8.device
        total = torch.zeros(3, 32, 32, dtype=torch.float64, device=dev)
        squares = torch.zeros(3, dtype=torch.float64, device=dev)
        for chunk in train_images_uint8.split(1024):  # float64 copy of a chunk only
            c = chunk.to(torch.float64)
            total += c.sum(0)
            if mode == "per_channel":
                squares += c.square().sum((0, 2, 3))
        n = len(train_images_uint8)
        mean_image = total / n / 255
        self.mode = mode
        if mode == "per_pixel_mean":
            self.mean, self.std = mean_image.float().cpu(), None
        else:
            mu = mean_image.mean((1, 2))
            var = squares / (n * 32 * 32) / 255**2 - mu.square()
            self.mean = mu.float().reshape(3, 1, 1).cpu()
            self.std = var.clamp_min(1e-12).sqrt().float().reshape(3, 1, 1).cpu()

    @classmethod
    def _from_tensors(cls, mode: str, mean: torch.Tensor, std: torch.Tensor | None) -> Normalizer:
        _check_mode(mode)
        self = cls.__new__(cls)
        self.mode, self.mean, self.std = mode, mean, std
        return self

    def to(self, device: str | torch.device) -> Normalizer:
        std = None if self.std is None else self.std.to(device)
        return self._from_tensors(self.mode, self.mean.to(device), std)

    def __call__(self, images_uint8: torch.Tensor) -> torch.Tensor:
        if images_uint8.dtype != torch.uint8:
            raise TypeError(f"Normalizer expects uint8 images, got {images_uint8.dtype}")
        dev = images_uint8.device
        x = images_uint8.to(torch.float32).div_(255).sub_(self.mean.to(dev))
        return x if self.std is None else x.div_(self.std.to(dev))

    def state_dict(self) -> dict[str, Any]:
        std = None if self.std is None else self.std.cpu().clone()
        return {"mode": self.mode, "mean": self.mean.cpu().clone(), "std": std}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> Normalizer:
        return cls._from_tensors(state["mode"], state["mean"], state["std"])

    def __repr__(self) -> str:
        return f"Normalizer({self.mode!r}, device={self.mean.device})"


def _check_mode(mode: str) -> None:
    if mode not in NORMALIZATIONS:
        valid = "; ".join(f"{k!r}: {v}" for k, v in NORMALIZATIONS.items())
        raise ValueError(f"unknown normalization {mode!r}; valid modes are {valid}")


def augment_batch(
    x: torch.Tensor, generator: torch.Generator | None = None, pad: int = 4
) -> torch.Tensor:
    """R-Sec. 4.2 augmentation: "4 pixels are padded on each side, and a 32x32 crop is
    randomly sampled from the padded image or its horizontal flip".

    ``x`` is a normalised float batch [B,C,H,W]; padding is with zeros (the mean image after
    normalisation). Every image gets its own crop offsets, uniform in ``0..2*pad``, and its own
    flip with p=0.5, all drawn from ``generator`` (default: the global RNG of ``x.device``); one
    gather over the whole batch, no loop over images. Flipping the crop instead of the padded
    image gives the same distribution, since the offsets are symmetric.
    """
    if x.dim() != 4 or not x.is_floating_point():
        raise ValueError(f"augment_batch expects float [B,C,H,W], got {x.dtype} {list(x.shape)}")
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    b, c, h, w = x.shape
    dev = x.device
    rng_dev = generator.device if generator is not None else dev
    offsets = torch.randint(0, 2 * pad + 1, (2, b), generator=generator, device=rng_dev).to(dev)
    flips = torch.randint(0, 2, (b,), generator=generator, device=rng_dev).to(dev).bool()
    rows = offsets[0, :, None] + torch.arange(h, device=dev)  # [B,H] rows of the padded image
    cols = offsets[1, :, None] + torch.arange(w, device=dev)  # [B,W]
    cols = torch.where(flips[:, None], cols.flip(1), cols)
    padded = F.pad(x, (pad, pad, pad, pad))
    return padded[
        torch.arange(b, device=dev)[:, None, None, None],
        torch.arange(c, device=dev)[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]


def _derived_seed(seed: int, tag: str, n: int) -> int:
    digest = hashlib.blake2b(f"resnetlab/{tag}/{seed}/{n}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


#: Epochs of permutations :class:`BatchStream` draws and copies to the device at a time
#: (8 epochs of CIFAR's 50k indices: 3.2 MB).
PERM_BLOCK_EPOCHS = 8


class BatchStream:
    """Deterministic stream of training batches: epoch e uses torch.randperm(N, generator
    seeded with (seed, e)); batches of batch_size, last incomplete batch of each epoch dropped.
    Position is (epoch, index within epoch) so a resumed run sees exactly the same batches.
    Per-iteration augmentation randomness is also derived from (seed, iteration) so resume is
    exact without saving RNG state.

    The uint8 images and labels are moved to ``device`` once (CIFAR is 150 MB as uint8, so on a
    GPU the whole set lives there); normalisation and the R-Sec. 4.2 augmentation run on the
    device per batch. The shuffling is device-independent (drawn on the CPU); the augmentation
    is drawn by a generator on ``device``, so it is identical across runs on the same kind of
    device.

    The permutations are drawn :data:`PERM_BLOCK_EPOCHS` epochs at a time and copied to the
    device ahead of use (from pinned memory, ``non_blocking``), the next block as soon as a
    block is first used: an epoch boundary is then a slice of a tensor already on the device,
    never a blocking host-to-device copy in the middle of training.
    """

    def __init__(
        self,
        images_uint8: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        seed: int,
        normalizer: Normalizer,
        augment: bool = True,
        device: str | torch.device = "cpu",
    ) -> None:
        check_uint8_images(images_uint8, "images_uint8")
        if len(labels) != len(images_uint8):
            raise ValueError(f"{len(images_uint8)} images but {len(labels)} labels")
        if not 0 < batch_size <= len(images_uint8):
            raise ValueError(f"batch_size must be in 1..{len(images_uint8)}, got {batch_size}")
        self.device = torch.device(device)
        self.images = images_uint8.to(self.device)
        self.labels = labels.to(self.device, torch.int64)
        self.batch_size, self.seed, self.augment = batch_size, seed, augment
        self.normalizer = normalizer.to(self.device)
        self.batches_per_epoch = len(images_uint8) // batch_size
        self._blocks: dict[int, torch.Tensor] = {}  # block number -> [PERM_BLOCK_EPOCHS, N] on the device
        self._aug_gen = torch.Generator(device=self.device)

    def position(self, iteration: int) -> tuple[int, int]:
        """(epoch, batch index within the epoch) of a global iteration."""
        if iteration < 0:
            raise ValueError(f"iteration must be >= 0, got {iteration}")
        return divmod(iteration, self.batches_per_epoch)

    def indices(self, iteration: int) -> torch.Tensor:
        """Dataset indices (on ``device``) of the batch of a global iteration."""
        epoch, i = self.position(iteration)
        block, row = divmod(epoch, PERM_BLOCK_EPOCHS)
        if block not in self._blocks or block + 1 not in self._blocks:
            # a block's first use (or a jump, as on resume): keep it, queue the next one ahead
            kept = {b: p for b, p in self._blocks.items() if block <= b <= block + 1}
            for b in (block, block + 1):
                if b not in kept:
                    kept[b] = self._perm_block(b)
            self._blocks = kept
        return self._blocks[block][row, i * self.batch_size : (i + 1) * self.batch_size]

    def epoch_permutation(self, epoch: int) -> torch.Tensor:
        """The order of the training set in ``epoch``: ``torch.randperm(N)`` drawn by a CPU
        generator seeded with (seed, epoch), the same on every device."""
        g = torch.Generator().manual_seed(_derived_seed(self.seed, "epoch", epoch))
        return torch.randperm(len(self.labels), generator=g)

    def _perm_block(self, block: int) -> torch.Tensor:
        """The permutations of the epochs of ``block``, on the device; the copy is queued on
        the current stream without waiting for it (pinned memory on CUDA)."""
        first = block * PERM_BLOCK_EPOCHS
        perms = torch.stack([self.epoch_permutation(first + k) for k in range(PERM_BLOCK_EPOCHS)])
        if self.device.type == "cuda":
            return perms.pin_memory().to(self.device, non_blocking=True)
        return perms.to(self.device)

    def batch(self, iteration: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised (and augmented) float32 images [B,3,32,32] and int64 labels [B]."""
        idx = self.indices(iteration)
        x = self.normalizer(self.images[idx])
        if self.augment:
            self._aug_gen.manual_seed(_derived_seed(self.seed, "augment", iteration))
            x = augment_batch(x, self._aug_gen)
        return x, self.labels[idx]


def eval_batches(
    images_uint8: torch.Tensor,
    labels: torch.Tensor,
    normalizer: Normalizer,
    batch_size: int = 1000,
    device: str | torch.device = "cpu",
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Normalised, unaugmented batches in order, the last one possibly smaller (R-Sec. 4.2:
    "we only evaluate the single view of the original 32x32 image")."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    norm = normalizer.to(device)
    for start in range(0, len(images_uint8), batch_size):
        chunk = slice(start, start + batch_size)
        yield norm(images_uint8[chunk].to(device)), labels[chunk].to(device, torch.int64)

