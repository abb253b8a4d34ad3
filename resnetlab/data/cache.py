"""The decoded-data cache: ``<root>/.resnetlab-cache/<name>-<fingerprint>.pt``.

A source is decoded once; the cache holds its uint8 tensors and a checksum of them. A cache
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
from pathlib import Path
from typing import Any

import torch

from .sources import PICKLES, FolderFiles, Source

CACHE_DIR = ".resnetlab-cache"
CACHE_VERSION = 1
TENSORS = ("train_images", "train_labels", "test_images", "test_labels")
#: What ``torch.load`` raises on an unreadable file (truncated zip, garbage, a foreign pickle).
_UNREADABLE = (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, KeyError, OSError)


class DataCacheWarning(UserWarning):
    """A decoded-data cache was unusable (and is rebuilt) or could not be written."""


def fingerprint(name: str, src: Source, folder_files: FolderFiles | None) -> str:
    """Short hash of the source: pickle names+sizes+mtimes, or folder file list+sizes."""
    if src.kind == "pickle":
        entries = [
            [f, (st := (src.path / f).stat()).st_size, st.st_mtime_ns]
            for f in PICKLES[name].files
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


def checksum(classes: list[str], tensors: dict[str, Any]) -> str:
    """sha256 of the classes and of the four tensors' shapes, dtypes and bytes."""
    h = hashlib.sha256(json.dumps(classes).encode())
    for key in TENSORS:
        t = tensors[key].contiguous()
        h.update(f"{key}{list(t.shape)}{t.dtype}".encode())
        h.update(memoryview(t.numpy()).cast("B"))
    return h.hexdigest()


def _cache_problem(blob: Any, name: str, fp: str) -> str | None:
    if not isinstance(blob, dict):
        return "it does not hold a dict"
    if blob.get("version") != CACHE_VERSION:
        return f"format version {blob.get('version')!r} != {CACHE_VERSION}"
    if blob.get("name") != name or blob.get("fingerprint") != fp:
        return "it was written for a different source"
    if not all(isinstance(blob.get(k), torch.Tensor) for k in TENSORS):
        return "tensors are missing"
    if blob.get("sha256") != checksum(blob.get("classes", []), blob):
        return "checksum mismatch (the file is corrupt)"
    return None


def read_cache(file: Path, name: str, fp: str) -> dict[str, Any] | None:
    """The cache blob in ``file`` if it is sound and written for this source; else ``None``
    (an unusable file is deleted, with a :class:`DataCacheWarning`)."""
    if not file.exists():
        return None
    try:
        blob = torch.load(file, map_location="cpu", weights_only=True)
    except _UNREADABLE as exc:
        problem = f"it cannot be read ({type(exc).__name__}: {exc})"
    else:
        problem = _cache_problem(blob, name, fp)
    if problem is None:
        return blob
    warnings.warn(
        f"data cache {file} is unusable: {problem}; deleting it and rebuilding it from the source",
        DataCacheWarning,
        stacklevel=3,
    )
    file.unlink(missing_ok=True)
    return None


def new_blob(name: str, fp: str, classes: list[str], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    """The cache blob of freshly decoded ``tensors``, with their checksum."""
    blob: dict[str, Any] = {"version": CACHE_VERSION, "name": name, "fingerprint": fp, "classes": classes}
    blob.update(tensors, sha256=checksum(classes, tensors))
    return blob


def write_cache(file: Path, blob: dict[str, Any], name: str) -> None:
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
