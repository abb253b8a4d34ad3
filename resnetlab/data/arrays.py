"""A whole CIFAR dataset as CPU tensors, and the splits R-Sec. 4.2 trains on."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from .sources import SOURCES


@dataclass(repr=False)
class CifarArrays:
    """A whole CIFAR dataset as CPU tensors: uint8 images [N,3,32,32], int64 labels [N]."""

    name: str
    source: str
    classes: list[str]
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    #: what kind of copy the images came from (a key of :data:`SOURCES`); part of a run's identity
    kind: str = "torchvision"

    def __post_init__(self) -> None:
        if self.kind not in SOURCES:
            raise ValueError(f"unknown data source kind {self.kind!r}; valid choices: {', '.join(SOURCES)}")
        for split in ("train", "test"):
            images, labels = getattr(self, f"{split}_images"), getattr(self, f"{split}_labels")
            check_uint8_images(images, f"{split}_images")
            if labels.dtype != torch.int64 or labels.shape != images.shape[:1]:
                raise ValueError(
                    f"{split}_labels must be int64 [{len(images)}], got {labels.dtype} "
                    f"{list(labels.shape)}"
                )

    def __repr__(self) -> str:
        return (
            f"CifarArrays(name={self.name!r}, source={self.source!r}, classes={len(self.classes)}, "
            f"train={len(self.train_labels)}, test={len(self.test_labels)})"
        )

    def split_validation(self, n_val: int = 5000, seed: int = 0) -> CifarArrays:
        """Hold out ``n_val`` random training images as the test set (R-Sec. 4.2's "45k/5k
        train/val split" for the default ``n_val``); the real test set is dropped."""
        n = len(self.train_labels)
        if not 0 < n_val < n:
            raise ValueError(f"n_val must be in 1..{n - 1} for {n} training images, got {n_val}")
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        val, train = perm[:n_val].sort().values, perm[n_val:].sort().values
        return replace(
            self,
            source=f"{self.source} [{_count(n - n_val)}/{_count(n_val)} val split]",
            classes=list(self.classes),
            train_images=self.train_images[train],
            train_labels=self.train_labels[train],
            test_images=self.train_images[val],
            test_labels=self.train_labels[val],
        )

    def subset(self, n_train: int | None, n_test: int | None, seed: int = 0) -> CifarArrays:
        """A deterministic random subset (``None`` keeps a split whole), for smoke runs."""
        g = torch.Generator().manual_seed(seed)
        train = _pick(len(self.train_labels), n_train, g, "n_train")
        test = _pick(len(self.test_labels), n_test, g, "n_test")
        return replace(
            self,
            source=f"{self.source} [subset {len(train)}/{len(test)}]",
            classes=list(self.classes),
            train_images=self.train_images[train],
            train_labels=self.train_labels[train],
            test_images=self.test_images[test],
            test_labels=self.test_labels[test],
        )


def _count(n: int) -> str:
    return f"{n // 1000}k" if n and n % 1000 == 0 else str(n)


def _pick(n: int, k: int | None, g: torch.Generator, what: str) -> torch.Tensor:
    if k is None:
        return torch.arange(n)
    if not 0 <= k <= n:
        raise ValueError(f"{what}={k} but only {n} images are available")
    return torch.randperm(n, generator=g)[:k].sort().values


def check_uint8_images(images: torch.Tensor, what: str = "images") -> None:
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1:] != (3, 32, 32):
        raise ValueError(
            f"{what} must be uint8 [N,3,32,32] CIFAR images, got {images.dtype} {list(images.shape)}"
        )
