"""The decoded-data cache: ``<root>/.resnetlab-cache/<name>-<fingerprint>.pt``.

A source is decoded once; the cache holds its uint8 tensors and a checksum of them. A cache
that is unreadable, tampered with or written for another source is reported, deleted and
rebuilt, never used silently. The fingerprint hashes the source's bytes (every file's path,
size and content), so that any change of the source, even one that keeps every file's size,
leads to a new cache; caches keyed by an older fingerprint are simply rebuilt and removed.
A write goes to ``<file>.<random>.tmp-<pid>`` first; the temporary files of dead processes
(a write killed half-way) are removed at the next load.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
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


#: 1: paths and sizes (folders), sizes and mtimes (pickles); 2: every file's path, size and bytes
FINGERPRINT_SCHEME = 2


def fingerprint(name: str, src: Source, folder_files: FolderFiles | None) -> str:
    """Short hash of the source's contents: each file's relative path, size and bytes, in order
    (1-2 s for the 60k files of the JPEG copy in the page cache, on 2 busy cores)."""
    if src.kind == "pickle":
        files = [str(src.path / f) for f in PICKLES[name].files]
    else:
        assert folder_files is not None
        files = [str(f) for split in ("train", "test") for f, _ in folder_files[split]]
    base = len(str(src.path)) + 1
    h = hashlib.sha256(json.dumps([name, src.kind, FINGERPRINT_SCHEME]).encode())
    for f in files:
        with open(f, "rb", buffering=0) as fh:
            size = os.fstat(fh.fileno()).st_size
            h.update(f"\0{f[base:].replace(os.sep, '/')}\0{size}\0".encode())
            while chunk := fh.read(1 << 22):
                h.update(chunk)
    return h.hexdigest()[:16]


#: temporary files: ``*.tmp-<pid>``, and the ``*.<pid>.<hex8>.tmp`` of older versions
_TEMP_NAMES = (re.compile(r"\.tmp-(\d+)$"), re.compile(r"\.(\d+)\.[0-9a-f]{8}\.tmp$"))


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (on this machine); ``True`` when that cannot be told."""
    if pid == os.getpid():
        return True
    if os.name == "nt" or pid <= 0:  # os.kill(pid, 0) would terminate it on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, and belongs to another user
        return True
    return True


def remove_stale_temps(folder: Path, prefix: str = "") -> list[Path]:
    """Delete the temporary files in ``folder`` (names starting with ``prefix``) whose writer
    is dead, i.e. writes killed half-way; the removed files."""
    removed: list[Path] = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        if not name.startswith(prefix):
            continue
        for pattern in _TEMP_NAMES:
            m = pattern.search(name)
            if m:
                if not pid_alive(int(m.group(1))):
                    try:
                        (folder / name).unlink()
                        removed.append(folder / name)
                    except OSError:
                        pass
                break
    return removed


def temp_name(file: Path) -> Path:
    """Where ``file`` is written before it is renamed into place: ``<file>.<random>.tmp-<pid>``."""
    return file.with_name(f"{file.name}.{uuid.uuid4().hex[:8]}.tmp-{os.getpid()}")


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
    (an unusable file is deleted, with a :class:`DataCacheWarning`). Temporary files of dead
    writers are removed first."""
    remove_stale_temps(file.parent)
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
    same dataset are removed. A read-only data root or a full disk only costs a warning, and
    leaves no temporary file."""
    tmp = temp_name(file)
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(file.parent)
        torch.save(blob, tmp)
        os.replace(tmp, file)
    except BaseException as exc:  # Ctrl-C as well: no temporary file outlives a failed write
        tmp.unlink(missing_ok=True)
        if not isinstance(exc, (OSError, RuntimeError)):  # torch.save reports write errors as RuntimeError
            raise
        warnings.warn(
            f"cannot write data cache {file} ({exc}); decoding again next time", DataCacheWarning
        )
        return
    for stale in file.parent.glob(f"{name}-*.pt"):
        if stale != file:
            stale.unlink(missing_ok=True)
