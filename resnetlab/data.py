"""CIFAR-10/100 on a device: find, decode, cache, normalise, augment and batch.

The protocol is the one of R-Sec. 4.2 (He et al. 2015, "Deep Residual Learning for Image
Recognition"):

* "The network inputs are 32x32 images, with the per-pixel mean subtracted."
  -> :class:`Normalizer` (mode ``"per_pixel_mean"``).
* "4 pixels are padded on each side, and a 32x32 crop is randomly sampled from the padded
  image or its horizontal flip." -> :func:`augment_batch`, applied per batch by
  :class:`BatchStream` on the training device.
* "For testing, we only evaluate the single view of the original 32x32 image."
  -> :func:`eval_batches` (no augmentation).
* "... on a 45k/5k train/val split" -> :meth:`CifarArrays.split_validation`.

>>> data = load_cifar("cifar10", data="data")             # or $RESNETLAB_DATA
>>> norm = Normalizer("per_pixel_mean", data.train_images)
>>> stream = BatchStream(data.train_images, data.train_labels, 128, seed=0, normalizer=norm)
>>> x, y = stream.batch(0)                                  # float32 [128,3,32,32], int64 [128]

Sources are decoded once into ``<root>/.resnetlab-cache/<name>-<fingerprint>.pt``; a cache
that is unreadable, tampered with or written for another source is reported, deleted and
rebuilt, never used silently.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

DATA_ENV = "RESNETLAB_DATA"
CACHE_DIR = ".resnetlab-cache"
CACHE_VERSION = 1
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
NORMALIZATIONS: dict[str, str] = {
    "per_pixel_mean": "x/255 minus the mean training image (R-Sec. 4.2, the paper's choice)",
    "per_channel": "x/255 minus the channel mean, divided by the channel std",
}

_TITLES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}
#: The kinds of copy a dataset can come from. They are part of a run's config (and so of its
#: id): a run trained on the lossy JPEG copy is never handed back as an official-CIFAR run.
SOURCES: dict[str, str] = {
    "torchvision": "the official CIFAR python batches, as torchvision downloads them",
    "jpeg-copy": "an image-folder copy with JPEG files (lossy: about 1-2 points of accuracy lower)",
    "image-folder": "an image-folder copy of lossless PNG files",
}
_TENSORS = ("train_images", "train_labels", "test_images", "test_labels")


class DatasetNotFoundError(FileNotFoundError):
    """No copy of the requested CIFAR dataset was found (and none could be downloaded)."""


class DataCacheWarning(UserWarning):
    """A decoded-data cache was unusable (and is rebuilt) or could not be written."""


def resolve_data_root(data: str | os.PathLike | None = None) -> Path:
    """The data root: ``data`` if given, else ``$RESNETLAB_DATA``, else ``./data``."""
    chosen = data if data not in (None, "") else os.environ.get(DATA_ENV) or "data"
    return Path(chosen).expanduser().absolute()


# ----------------------------------------------------------------------------- arrays


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
            _check_uint8_images(images, f"{split}_images")
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


def _check_uint8_images(images: torch.Tensor, what: str = "images") -> None:
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1:] != (3, 32, 32):
        raise ValueError(
            f"{what} must be uint8 [N,3,32,32] CIFAR images, got {images.dtype} {list(images.shape)}"
        )


# ----------------------------------------------------------------------------- sources


class _Source(NamedTuple):
    kind: str  # "pickle" | "folder"
    path: Path


class _PickleLayout(NamedTuple):
    train: tuple[str, ...]
    test: tuple[str, ...]
    meta: str
    label_key: str
    names_key: str


_PICKLES = {
    "cifar10": _PickleLayout(
        tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",), "batches.meta",
        "labels", "label_names",
    ),
    "cifar100": _PickleLayout(("train",), ("test",), "meta", "fine_labels", "fine_label_names"),
}


def _candidates(name: str, root: Path) -> list[_Source]:
    if name == "cifar10":
        folders = [root / "cifar10", root / "cifar10-jpeg", root / "CIFAR-10-images", root]
        pickles = _Source("pickle", root / "cifar-10-batches-py")
        return [pickles] + [_Source("folder", f) for f in folders]
    return [_Source("pickle", root / "cifar-100-python"), _Source("folder", root / "cifar100")]


def _present(name: str, src: _Source) -> bool:
    if src.kind == "pickle":
        layout = _PICKLES[name]
        return all((src.path / f).is_file() for f in (*layout.train, *layout.test, layout.meta))
    return (src.path / "train").is_dir() and (src.path / "test").is_dir()


def _describe(name: str, src: _Source) -> str:
    if src.kind == "pickle":
        layout = _PICKLES[name]
        train = f"{layout.train[0]}..{len(layout.train)}" if len(layout.train) > 1 else layout.train[0]
        files = (*layout.train, *layout.test, layout.meta)
        missing = [f for f in files if not (src.path / f).is_file()]
        note = f"; the folder exists but lacks {', '.join(missing)}" if src.path.is_dir() else ""
        return f"{src.path}  (torchvision pickles: {train}, {layout.test[0]}, {layout.meta}{note})"
    return f"{src.path / '{train,test}'}  (image folder: <split>/<class>/*.png|jpg)"


def _not_found(name: str, root: Path, reason: str = "") -> DatasetNotFoundError:
    title = _TITLES[name]
    looked = "\n".join(f"  - {_describe(name, s)}" for s in _candidates(name, root))
    return DatasetNotFoundError(
        f"{title} not found under data root {root}{reason}.\nLooked in:\n{looked}\n"
        "Provide it in one of two ways:\n"
        f"  1. let torchvision download it (needs network): python -m resnetlab download {name} "
        f"--data {root}\n"
        f"     (this calls torchvision.datasets.{title.replace('-', '')}(root, download=True));\n"
        f"  2. point --data or the {DATA_ENV} environment variable at an existing copy: a folder "
        f"holding torchvision's {_candidates(name, root)[0].path.name} folder, or an image folder "
        "with train/<class>/*.png|jpg and test/<class>/*."
    )


def _download(name: str, root: Path) -> None:
    from torchvision import datasets  # slow import, only needed here

    root.mkdir(parents=True, exist_ok=True)
    getattr(datasets, _TITLES[name].replace("-", ""))(root=str(root), train=True, download=True)


def _list_folder(path: Path) -> tuple[list[str], dict[str, list[tuple[Path, int]]]]:
    """Classes (sorted sub-folders of train/) and, per split, sorted (file, label) pairs."""

    def subdirs(p: Path) -> list[str]:
        return sorted(d.name for d in p.iterdir() if d.is_dir() and not d.name.startswith("."))

    classes = subdirs(path / "train")
    test_classes = subdirs(path / "test")
    if test_classes != classes:
        only = sorted(set(classes) ^ set(test_classes))
        raise ValueError(
            f"{path}: train/ and test/ must have the same class folders; differing: {only}"
        )
    files: dict[str, list[tuple[Path, int]]] = {}
    for split in ("train", "test"):
        files[split] = [
            (f, label)
            for label, cls in enumerate(classes)
            for f in sorted((path / split / cls).iterdir())
            if f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith(".")
        ]
        if not files[split]:
            raise ValueError(f"{path / split} holds no class folders with .png/.jpg images")
    return classes, files


def _fingerprint(
    name: str, src: _Source, folder_files: dict[str, list[tuple[Path, int]]] | None
) -> str:
    """Short hash of the source: pickle names+sizes+mtimes, or folder file list+sizes."""
    if src.kind == "pickle":
        layout = _PICKLES[name]
        entries = [
            [f, (st := (src.path / f).stat()).st_size, st.st_mtime_ns]
            for f in (*layout.train, *layout.test, layout.meta)
        ]
    else:
        assert folder_files is not None
        entries = [
            [f.relative_to(src.path).as_posix(), f.stat().st_size]
            for split in ("train", "test")
            for f, _ in folder_files[split]
        ]
    blob = json.dumps([name, src.kind, entries]).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


class _CifarUnpickler(pickle.Unpickler):
    """Allows only the globals a CIFAR pickle needs (numpy arrays), so that a stray pickle
    under the data root cannot run code."""

    _ALLOWED = {
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name} from a CIFAR pickle")
        return super().find_class(module, name)


def _read_pickle(file: Path) -> dict[str, Any]:
    """One CIFAR pickle as a dict with str keys (the files were written by Python 2, so keys
    come back as bytes or str depending on the encoding; both are accepted)."""
    with open(file, "rb") as fh:
        obj = _CifarUnpickler(fh, encoding="latin1").load()
    if not isinstance(obj, dict):
        raise ValueError(f"{file}: expected a CIFAR pickle dict, got {type(obj).__name__}")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _decode_pickles(name: str, path: Path) -> tuple[list[str], dict[str, torch.Tensor]]:
    layout = _PICKLES[name]
    names = _read_pickle(path / layout.meta)[layout.names_key]
    classes = [c.decode() if isinstance(c, bytes) else str(c) for c in names]
    out: dict[str, torch.Tensor] = {}
    for split, files in (("train", layout.train), ("test", layout.test)):
        datas, labels = [], []
        for f in files:
            d = _read_pickle(path / f)
            data, lbls = np.asarray(d["data"]), d[layout.label_key]
            if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
                raise ValueError(f"{path / f}: 'data' must be uint8 [N,3072], got {data.dtype} {data.shape}")
            if len(lbls) != len(data):
                raise ValueError(f"{path / f}: {len(data)} images but {len(lbls)} labels")
            datas.append(data)
            labels.extend(int(v) for v in lbls)
        # rows are 1024 red, 1024 green, 1024 blue values, each 32x32 row-major
        out[f"{split}_images"] = torch.from_numpy(np.concatenate(datas)).reshape(-1, 3, 32, 32)
        out[f"{split}_labels"] = torch.tensor(labels, dtype=torch.int64)
    return classes, out


def _decode_folder(
    files: dict[str, list[tuple[Path, int]]], title: str, progress: bool
) -> dict[str, torch.Tensor]:
    from PIL import Image
    from tqdm.auto import tqdm

    out: dict[str, torch.Tensor] = {}
    total = sum(map(len, files.values()))
    with tqdm(total=total, desc=f"decoding {title}", unit="img", disable=not progress) as bar:
        for split in ("train", "test"):
            images = np.empty((len(files[split]), 32, 32, 3), dtype=np.uint8)
            for i, (f, _) in enumerate(files[split]):
                with Image.open(f) as im:
                    rgb = im.convert("RGB")
                if rgb.size != (32, 32):
                    w, h = rgb.size
                    raise ValueError(f"{f}: image is {w}x{h}, CIFAR images must be 32x32")
                images[i] = np.asarray(rgb)
                bar.update()
            out[f"{split}_images"] = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
            out[f"{split}_labels"] = torch.tensor([lbl for _, lbl in files[split]], dtype=torch.int64)
    return out


# ----------------------------------------------------------------------------- cache


def _checksum(classes: list[str], tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256(json.dumps(classes).encode())
    for key in _TENSORS:
        t = tensors[key].contiguous()
        h.update(f"{key}{list(t.shape)}{t.dtype}".encode())
        h.update(memoryview(t.numpy()).cast("B"))
    return h.hexdigest()


def _cache_problem(blob: Any, name: str, fingerprint: str) -> str | None:
    if not isinstance(blob, dict):
        return "it does not hold a dict"
    if blob.get("version") != CACHE_VERSION:
        return f"format version {blob.get('version')!r} != {CACHE_VERSION}"
    if blob.get("name") != name or blob.get("fingerprint") != fingerprint:
        return "it was written for a different source"
    if not all(isinstance(blob.get(k), torch.Tensor) for k in _TENSORS):
        return "tensors are missing"
    if blob.get("sha256") != _checksum(blob.get("classes", []), blob):
        return "checksum mismatch (the file is corrupt)"
    return None


def _read_cache(file: Path, name: str, fingerprint: str) -> dict[str, Any] | None:
    if not file.exists():
        return None
    try:
        blob = torch.load(file, map_location="cpu", weights_only=True)
        problem = _cache_problem(blob, name, fingerprint)
    except Exception as exc:  # any unreadable file: truncated zip, garbage, ...
        problem = f"it cannot be read ({type(exc).__name__}: {exc})"
    if problem is None:
        return blob
    warnings.warn(
        f"data cache {file} is unusable: {problem}; deleting it and rebuilding it from the source",
        DataCacheWarning,
        stacklevel=3,
    )
    file.unlink(missing_ok=True)
    return None


def _write_cache(file: Path, blob: dict[str, Any], name: str) -> None:
    """Atomic write (temp file in the same folder, then os.replace); stale caches of the
    same dataset are removed. A read-only data root only costs a warning."""
    tmp = file.with_name(f"{file.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        torch.save(blob, tmp)
        os.replace(tmp, file)
    except (OSError, RuntimeError) as exc:  # torch.save reports some write errors as RuntimeError
        tmp.unlink(missing_ok=True)
        warnings.warn(
            f"cannot write data cache {file} ({exc}); decoding again next time", DataCacheWarning
        )
        return
    for stale in file.parent.glob(f"{name}-*.pt"):
        if stale != file:
            stale.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- loading


def load_cifar(
    name: str = "cifar10",
    data: str | os.PathLike | None = None,
    download: bool = False,
    progress: bool = True,
) -> CifarArrays:
    """Load CIFAR-10 or CIFAR-100 (the 50k/10k sets of R-Sec. 4.2) as CPU tensors.

    Looks under :func:`resolve_data_root` ``(data)`` for torchvision's pickles
    (``cifar-10-batches-py`` / ``cifar-100-python``), then for image folders
    (``cifar10/``, ``cifar10-jpeg/``, ``CIFAR-10-images/``, the root itself; ``cifar100/``),
    each with ``train/<class>/*`` and ``test/<class>/*``. With ``download=True`` a missing
    dataset is fetched by torchvision into the root. Raises :class:`DatasetNotFoundError`.
    """
    key = name.lower().replace("-", "").replace("_", "")
    if key not in _TITLES:
        raise ValueError(f"unknown dataset {name!r}; choose from {sorted(_TITLES)}")
    name, title = key, _TITLES[key]
    root = resolve_data_root(data)

    src = _find(name, root)
    if src is None and download:
        try:
            _download(name, root)
        except Exception as exc:
            reason = f" and the download failed ({type(exc).__name__}: {exc})"
            raise _not_found(name, root, reason) from exc
        src = _find(name, root)
    if src is None:
        raise _not_found(name, root)

    classes, files = _list_folder(src.path) if src.kind == "folder" else ([], None)
    kind = _kind(src, files)
    source = {"torchvision": f"{title} (torchvision pickles)", "jpeg-copy": f"{title} (JPEG copy)",
              "image-folder": f"{title} (image folder: {src.path})"}[kind]

    fingerprint = _fingerprint(name, src, files)
    cache_file = root / CACHE_DIR / f"{name}-{fingerprint}.pt"
    blob = _read_cache(cache_file, name, fingerprint)
    if blob is None:
        if src.kind == "pickle":
            classes, tensors = _decode_pickles(name, src.path)
        else:
            tensors = _decode_folder(files, title, progress)
        blob = {"version": CACHE_VERSION, "name": name, "fingerprint": fingerprint, "classes": classes}
        blob.update(tensors, sha256=_checksum(classes, tensors))
        _write_cache(cache_file, blob, name)
    return CifarArrays(name, source, list(blob["classes"]), *(blob[k] for k in _TENSORS), kind=kind)


def _find(name: str, root: Path) -> _Source | None:
    return next((s for s in _candidates(name, root) if _present(name, s)), None)


def _kind(src: _Source, files: dict[str, list[tuple[Path, int]]] | None) -> str:
    if src.kind == "pickle":
        return "torchvision"
    lossy = any(f.suffix.lower() != ".png" for split in (files or {}).values() for f, _ in split)
    return "jpeg-copy" if lossy else "image-folder"


def detect_source(name: str = "cifar10", data: str | os.PathLike | None = None) -> str | None:
    """The kind of copy (a key of :data:`SOURCES`) that :func:`load_cifar` would load from
    ``data``, without decoding anything; ``None`` when there is no copy (a download would then
    bring the official one, "torchvision")."""
    key = name.lower().replace("-", "").replace("_", "")
    if key not in _TITLES:
        raise ValueError(f"unknown dataset {name!r}; choose from {sorted(_TITLES)}")
    src = _find(key, resolve_data_root(data))
    if src is None:
        return None
    return _kind(src, _list_folder(src.path)[1] if src.kind == "folder" else None)


# ----------------------------------------------------------------------------- on the device


class Normalizer:
    """Maps uint8 images to normalised float32 images.

    ``"per_pixel_mean"`` is R-Sec. 4.2's "per-pixel mean subtracted": ``x/255 - mean/255``
    with ``mean`` the [3,32,32] mean training image. ``"per_channel"`` is the common
    alternative ``(x/255 - mu_c) / sigma_c``.
    """

    def __init__(self, mode: str, train_images_uint8: torch.Tensor) -> None:
        _check_mode(mode)
        _check_uint8_images(train_images_uint8, "train_images_uint8")
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


class BatchStream:
    """Deterministic stream of training batches: epoch e uses torch.randperm(N, generator
    seeded with (seed, e)); batches of batch_size, last incomplete batch of each epoch dropped.
    Position is (epoch, index within epoch) so a resumed run sees exactly the same batches.
    Per-iteration augmentation randomness is also derived from (seed, iteration) so resume is
    exact without saving RNG state.

    The uint8 images and labels are moved to ``device`` once (CIFAR is 150 MB as uint8, so on a
    GPU the whole set lives there); normalisation and the R-Sec. 4.2 augmentation run on the
    device per batch. The shuffling is device-independent (drawn on the CPU once per epoch);
    the augmentation is drawn by a generator on ``device``, so it is identical across runs on
    the same kind of device.
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
        _check_uint8_images(images_uint8, "images_uint8")
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
        self._epoch, self._perm = -1, torch.empty(0, dtype=torch.int64)
        self._aug_gen = torch.Generator(device=self.device)

    def position(self, iteration: int) -> tuple[int, int]:
        """(epoch, batch index within the epoch) of a global iteration."""
        if iteration < 0:
            raise ValueError(f"iteration must be >= 0, got {iteration}")
        return divmod(iteration, self.batches_per_epoch)

    def indices(self, iteration: int) -> torch.Tensor:
        """Dataset indices (on ``device``) of the batch of a global iteration."""
        epoch, i = self.position(iteration)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(_derived_seed(self.seed, "epoch", epoch))
            self._perm = torch.randperm(len(self.labels), generator=g).to(self.device)
            self._epoch = epoch
        return self._perm[i * self.batch_size : (i + 1) * self.batch_size]

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
