"""Tiny fake CIFAR datasets in the real on-disk formats, for tests and CI notebooks.

:func:`fabricate_cifar` writes either torchvision's pickles (the layout of
``cifar-10-batches-py`` / ``cifar-100-python``, same dict keys as the originals read with
``encoding="bytes"``) or an image folder ``<name>/{train,test}/<class>/NNNNN.png``, so
:func:`resnetlab.data.load_cifar` reads them through exactly the code path used for the real
data. Each class has its own colour and a coarse 4x4 pattern, plus per-image noise: a small
network learns them in a few hundred steps, even with the crop/flip augmentation of R-Sec. 4.2.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
]


def class_templates(num_classes: int) -> np.ndarray:
    """float [K,3,32,32] in 0..255: class colour plus a coarse class pattern (fixed seed)."""
    rng = np.random.default_rng(12345)
    colours = rng.uniform(50, 205, size=(num_classes, 3, 1, 1))
    patterns = np.kron(rng.uniform(-45, 45, size=(num_classes, 3, 4, 4)), np.ones((8, 8)))
    return (colours + patterns).astype(np.float32)


def fabricate_images(
    n: int, num_classes: int, seed: int = 0, noise: float = 20.0
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images uint8 [n,3,32,32] with balanced, shuffled int64 labels [n]."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % num_classes)
    images = class_templates(num_classes)[labels]
    images += noise * rng.standard_normal((n, 3, 32, 32), dtype=np.float32)
    return np.clip(np.rint(images), 0, 255).astype(np.uint8), labels.astype(np.int64)


def fabricate_cifar(
    root: str | os.PathLike,
    name: str = "cifar10",
    fmt: str = "pickle",
    n_train: int = 500,
    n_test: int = 100,
    ext: str = "png",
    seed: int = 0,
) -> Path:
    """Write a fake ``name`` ("cifar10" | "cifar100") under ``root`` in format ``fmt``
    ("pickle" | "folder", the latter with ``ext`` "png" | "jpg") and return ``root``, the
    directory to pass as ``load_cifar(data=...)`` / ``--data`` / ``$RESNETLAB_DATA``."""
    if name not in ("cifar10", "cifar100"):
        raise ValueError(f"name must be 'cifar10' or 'cifar100', got {name!r}")
    root = Path(root)
    classes = CIFAR10_CLASSES if name == "cifar10" else [f"class_{k:02d}" for k in range(100)]
    train = fabricate_images(n_train, len(classes), seed)
    test = fabricate_images(n_test, len(classes), seed + 1)
    if fmt == "pickle":
        _write_pickles(root, name, classes, train, test)
    elif fmt == "folder":
        if ext not in ("png", "jpg"):
            raise ValueError(f"ext must be 'png' or 'jpg', got {ext!r}")
        _write_folder(root / name, classes, train, test, ext)
    else:
        raise ValueError(f"fmt must be 'pickle' or 'folder', got {fmt!r}")
    return root


def _dump(obj: dict, file: Path) -> None:
    with open(file, "wb") as fh:
        pickle.dump(obj, fh, protocol=2)


def _batch(images: np.ndarray, labels: np.ndarray, key: bytes, batch_label: str, start: int) -> dict:
    return {
        b"batch_label": batch_label.encode(),
        key: [int(v) for v in labels],
        b"data": images.reshape(len(images), 3072),
        b"filenames": [f"fake_{start + i:05d}.png".encode() for i in range(len(images))],
    }


def _write_pickles(root: Path, name: str, classes: list[str], train: tuple, test: tuple) -> None:
    if name == "cifar10":
        folder = root / "cifar-10-batches-py"
        folder.mkdir(parents=True, exist_ok=True)
        start = 0
        for i, chunk in enumerate(np.array_split(np.arange(len(train[1])), 5), 1):
            label = f"training batch {i} of 5"
            part = _batch(train[0][chunk], train[1][chunk], b"labels", label, start)
            _dump(part, folder / f"data_batch_{i}")
            start += len(chunk)
        _dump(_batch(*test, b"labels", "testing batch 1 of 1", 0), folder / "test_batch")
        meta = {
            b"num_cases_per_batch": len(train[1]) // 5,
            b"label_names": [c.encode() for c in classes],
            b"num_vis": 3072,
        }
        _dump(meta, folder / "batches.meta")
    else:
        folder = root / "cifar-100-python"
        folder.mkdir(parents=True, exist_ok=True)
        for split, (images, labels) in (("train", train), ("test", test)):
            part = _batch(images, labels, b"fine_labels", f"{split}ing batch 1 of 1", 0)
            part[b"coarse_labels"] = [int(v) // 5 for v in labels]
            _dump(part, folder / split)
        meta = {
            b"fine_label_names": [c.encode() for c in classes],
            b"coarse_label_names": [f"superclass_{k:02d}".encode() for k in range(20)],
        }
        _dump(meta, folder / "meta")


def _write_folder(folder: Path, classes: list[str], train: tuple, test: tuple, ext: str) -> None:
    from PIL import Image

    for split, (images, labels) in (("train", train), ("test", test)):
        for cls in classes:
            (folder / split / cls).mkdir(parents=True, exist_ok=True)
        for i, (image, label) in enumerate(zip(images, labels)):
            path = folder / split / classes[label] / f"{i:05d}.{ext}"
            options = {"quality": 95} if ext == "jpg" else {}
            Image.fromarray(image.transpose(1, 2, 0)).save(path, **options)
