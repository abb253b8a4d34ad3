"""Decoding a CIFAR copy into uint8 tensors: torchvision's pickles (read by a restricted
unpickler) or an image folder (read with PIL)."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .sources import PICKLES, FolderFiles


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


def read_pickle(file: Path) -> dict[str, Any]:
    """One CIFAR pickle as a dict with str keys (the files were written by Python 2, so keys
    come back as bytes or str depending on the encoding; both are accepted)."""
    with open(file, "rb") as fh:
        obj = _CifarUnpickler(fh, encoding="latin1").load()
    if not isinstance(obj, dict):
        raise ValueError(f"{file}: expected a CIFAR pickle dict, got {type(obj).__name__}")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _read_split(path: Path, files: tuple[str, ...], label_key: str) -> tuple[torch.Tensor, torch.Tensor]:
    datas, labels = [], []
    for f in files:
        d = read_pickle(path / f)
        data, lbls = np.asarray(d["data"]), d[label_key]
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
            raise ValueError(f"{path / f}: 'data' must be uint8 [N,3072], got {data.dtype} {data.shape}")
        if len(lbls) != len(data):
            raise ValueError(f"{path / f}: {len(data)} images but {len(lbls)} labels")
        datas.append(data)
        labels.extend(int(v) for v in lbls)
    # rows are 1024 red, 1024 green, 1024 blue values, each 32x32 row-major
    images = torch.from_numpy(np.concatenate(datas)).reshape(-1, 3, 32, 32)
    return images, torch.tensor(labels, dtype=torch.int64)


def decode_pickles(name: str, path: Path) -> tuple[list[str], dict[str, torch.Tensor]]:
    """Classes and the four tensors of torchvision's pickles of ``name`` in ``path``."""
    layout = PICKLES[name]
    names = read_pickle(path / layout.meta)[layout.names_key]
    classes = [c.decode() if isinstance(c, bytes) else str(c) for c in names]
    out: dict[str, torch.Tensor] = {}
    for split, files in (("train", layout.train), ("test", layout.test)):
        out[f"{split}_images"], out[f"{split}_labels"] = _read_split(path, files, layout.label_key)
    return classes, out


#: Image modes that convert to RGB without losing anything (a PNG optimiser may store a grey
#: or few-coloured image as "L" or "P"); anything else (alpha, CMYK, 16-bit) is refused.
LOSSLESS_MODES = ("RGB", "L", "P")


def decode_image(f: Path) -> np.ndarray:
    """One 32x32 image as uint8 [32,32,3]; a ``ValueError`` naming ``f`` and the fix if it is not
    a readable 32x32 RGB image (checked before the pixels are decoded)."""
    from PIL import Image

    try:
        with Image.open(f) as im:
            (w, h), mode = im.size, im.mode
            if (w, h) != (32, 32) or mode not in LOSSLESS_MODES or (mode == "P" and "transparency" in im.info):
                raise _BadImage(f"image is {w}x{h} {mode}, CIFAR images must be 32x32 RGB")
            return np.asarray(im.convert("RGB"))
    except _BadImage as exc:
        raise ValueError(f"{f}: {exc}; delete or replace this file, then rerun") from None
    except Exception as exc:  # PIL raises many kinds (UnidentifiedImageError, OSError, SyntaxError, ...)
        raise ValueError(f"{f}: not a readable image ({type(exc).__name__}: {exc}); delete or replace this "
                         "file, then rerun") from exc


class _BadImage(Exception):
    pass


def decode_folder(files: FolderFiles, title: str, progress: bool) -> dict[str, torch.Tensor]:
    """The four tensors of an image folder (see :func:`~.sources.list_folder`)."""
    from tqdm.auto import tqdm

    out: dict[str, torch.Tensor] = {}
    total = sum(map(len, files.values()))
    with tqdm(total=total, desc=f"decoding {title}", unit="img", disable=not progress) as bar:
        for split in ("train", "test"):
            images = np.empty((len(files[split]), 32, 32, 3), dtype=np.uint8)
            for i, (f, _) in enumerate(files[split]):
                images[i] = decode_image(f)
                bar.update()
            out[f"{split}_images"] = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
            out[f"{split}_labels"] = torch.tensor([lbl for _, lbl in files[split]], dtype=torch.int64)
    return out
