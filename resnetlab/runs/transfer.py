"""Carrying records and checkpoints between machines: pack them into a few ``.tar.gz`` files,
and import such files into a runs folder.

A GPU window (``python -m resnetlab window``) may hand back only a few files of a bounded
size, so :func:`pack_runs` splits finished records (and then resumable checkpoints) into at
most ``max_files`` parts of at most ``max_file_bytes`` each. A part holds

* ``manifest.json``: what it holds, with the sha256 of every other member;
* ``records/<id>/{config.json,history.csv,summary.json[,weights.pt]}``: a finished record;
* ``checkpoints/<id>/{config.json,last.pt}``: the checkpoint of an unfinished run and its config.

:func:`import_packs` reads such parts (``python -m resnetlab import-runs``): every record is
checked as :func:`~.records.load_record` checks the records of a runs folder (its config's
hash is its id, its summary is finished and agrees with its history); one that is already
there byte for byte is skipped; one whose id is taken by a *different* record (or by a
damaged one) is refused, never merged. A checkpoint goes where a later run of its config
resumes from it (:func:`~.execute.checkpoint_path`), unless its run is recorded or the
checkpoint there is as far along.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

from .config import run_id
from .execute import checkpoint_path
from .records import DamagedRecord, RecordError, load_record, resolve_runs_dir

MiB = 2**20
PACK_FORMAT = "resnetlab-pack"
PACK_VERSION = 1
#: The files of a record that travel (checkpoints/ and temporary files stay behind).
RECORD_FILES = ("config.json", "history.csv", "summary.json", "weights.pt")
CHECKPOINT_FILES = ("config.json", "last.pt")
_ID = r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}"
_MEMBER = re.compile(rf"^(?:manifest\.json|records/(?P<rid>{_ID})/(?P<rfile>[a-z.]+)"
                     rf"|checkpoints/(?P<cid>{_ID})/(?P<cfile>[a-z.]+))$")
#: Room a part keeps below ``max_file_bytes`` for what the size estimate misses.
_SLACK = 64 * 1024


@dataclass
class _Item:
    kind: str  # "record" | "checkpoint"
    rid: str
    files: list[tuple[str, bytes]]  # (arcname, content)
    estimate: int = 0


@dataclass
class Packed:
    """What :func:`pack_runs` wrote."""

    files: list[Path] = field(default_factory=list)
    records: list[str] = field(default_factory=list)
    checkpoints: list[str] = field(default_factory=list)
    left_out: list[tuple[str, str]] = field(default_factory=list)  # (id, why)

    @property
    def bytes(self) -> int:
        return sum(f.stat().st_size for f in self.files)


def _record_item(path: Path) -> _Item:
    rec = load_record(path)  # never pack a record that would not import
    files = [(f"records/{rec.id}/{name}", (path / name).read_bytes()) for name in RECORD_FILES
             if (path / name).is_file()]
    return _Item("record", rec.id, files)


def _checkpoint_item(ckpt: Path, config: dict[str, Any]) -> _Item:
    rid = run_id(config)
    blob = (json.dumps(config, indent=2, sort_keys=True) + "\n").encode()
    return _Item("checkpoint", rid, [(f"checkpoints/{rid}/config.json", blob),
                                     (f"checkpoints/{rid}/last.pt", ckpt.read_bytes())])


def _estimate(item: _Item) -> int:
    """Compressed size in a part: gzip of each file plus tar headers and padding."""
    return sum(len(gzip.compress(data, compresslevel=6)) + 1536 for _, data in item.files)


def _write_part(path: Path, items: list[_Item]) -> None:
    files = [f for item in items for f in item.files]
    manifest = {"format": PACK_FORMAT, "version": PACK_VERSION,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "records": [i.rid for i in items if i.kind == "record"],
                "checkpoints": [i.rid for i in items if i.kind == "checkpoint"],
                "sha256": {name: hashlib.sha256(data).hexdigest() for name, data in files}}
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    now = time.time()
    with tarfile.open(tmp, "w:gz", compresslevel=6, format=tarfile.PAX_FORMAT) as tar:
        for name, data in [("manifest.json", (json.dumps(manifest, indent=2) + "\n").encode()), *files]:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, now
            tar.addfile(info, io.BytesIO(data))
    os.replace(tmp, path)


def pack_runs(out_dir: str | Path, records: Iterable[str | Path],
              checkpoints: Iterable[tuple[str | Path, dict[str, Any]]] = (), *, max_files: int = 8,
              max_file_bytes: int = 16 * MiB, max_total_bytes: int = 64 * MiB, prefix: str = "runs") -> Packed:
    """Pack the finished ``records`` (folders), then the ``checkpoints`` (``(last.pt, config)``
    pairs), in that order of preference, into ``<out_dir>/<prefix>-N.tar.gz``: at most
    ``max_files`` files, each at most ``max_file_bytes``, all together at most
    ``max_total_bytes``. What does not fit is listed in ``Packed.left_out``, with why."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    packed = Packed()
    items: list[_Item] = []
    for path in records:
        try:
            items.append(_record_item(Path(path)))
        except RecordError as exc:
            packed.left_out.append((Path(path).name, f"not a good record: {exc}"))
    for ckpt, config in checkpoints:
        if Path(ckpt).is_file():
            items.append(_checkpoint_item(Path(ckpt), config))
    limit = max_file_bytes - _SLACK
    parts: list[list[_Item]] = []
    sizes: list[int] = []
    total = 0
    for item in items:
        item.estimate = _estimate(item)
        if item.estimate > limit:
            packed.left_out.append((item.rid, f"its {item.kind} (~{item.estimate / MiB:.1f} MiB packed) is larger "
                                              f"than one file may be ({max_file_bytes / MiB:.0f} MiB)"))
            continue
        if total + item.estimate > max_total_bytes - _SLACK * max_files:
            packed.left_out.append((item.rid, f"no room left: {max_total_bytes / MiB:.0f} MiB in all"))
            continue
        slot = next((k for k, s in enumerate(sizes) if s + item.estimate <= limit), None)
        if slot is None and len(parts) < max_files:
            parts.append([])
            sizes.append(0)
            slot = len(parts) - 1
        if slot is None:
            packed.left_out.append((item.rid, f"no room left: {max_files} files in all"))
            continue
        parts[slot].append(item)
        sizes[slot] += item.estimate
        total += item.estimate
    for k, part in enumerate(parts, 1):
        path = out / f"{prefix}-{k}.tar.gz"
        _write_part(path, part)
        while path.stat().st_size > max_file_bytes and part:  # the estimate was short: give up the last item
            dropped = part.pop()
            packed.left_out.append((dropped.rid, "its part came out larger than the estimate"))
            _write_part(path, part)
        packed.files.append(path)
        for item in part:
            (packed.records if item.kind == "record" else packed.checkpoints).append(item.rid)
    return packed


# ---------------------------------------------------------------------------------------
# importing


@dataclass
class Imported:
    """What :func:`import_packs` did, per run id."""

    imported: list[str] = field(default_factory=list)
    identical: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (id or file, why)
    checkpoints: list[tuple[str, Path]] = field(default_factory=list)  # (id, where it went)
    checkpoints_skipped: list[tuple[str, str]] = field(default_factory=list)  # (id, why)

    @property
    def ok(self) -> bool:
        return not self.refused


def pack_files(paths: Iterable[str | Path]) -> list[Path]:
    """The ``.tar.gz`` files named, a folder standing for the ones it holds."""
    out: list[Path] = []
    for p in map(Path, paths):
        out += sorted(p.glob("*.tar.gz")) if p.is_dir() else [p]
    return out


def _stage(pack: Path, into: Path) -> None:
    """Unpack ``pack`` into ``into`` member by member: only the names of the pack format,
    only regular files, each checked against the manifest's sha256."""
    wanted = {"records": RECORD_FILES, "checkpoints": CHECKPOINT_FILES}
    seen: dict[str, str] = {}
    with tarfile.open(pack, "r:gz") as tar:
        for member in tar:
            if member.isdir():
                continue
            m = _MEMBER.match(member.name)
            if not member.isfile() or m is None:
                raise ValueError(f"{pack}: unexpected member {member.name!r}: not a resnetlab pack")
            kind, name = ("records", m["rfile"]) if m["rid"] else ("checkpoints", m["cfile"])
            if m["rid"] or m["cid"]:
                if name not in wanted[kind]:
                    raise ValueError(f"{pack}: unexpected member {member.name!r}: not a resnetlab pack")
            fh = tar.extractfile(member)
            assert fh is not None
            data = fh.read()
            target = into.joinpath(*member.name.split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            seen[member.name] = hashlib.sha256(data).hexdigest()
    manifest_file = into / "manifest.json"
    if not manifest_file.is_file():
        raise ValueError(f"{pack}: no manifest.json: not a resnetlab pack")
    manifest = json.loads(manifest_file.read_text())
    if manifest.get("format") != PACK_FORMAT or manifest.get("version") != PACK_VERSION:
        raise ValueError(f"{pack}: a pack of format {manifest.get('format')!r} version {manifest.get('version')!r}, "
                         f"not {PACK_FORMAT} {PACK_VERSION}")
    sums = manifest.get("sha256", {})
    seen.pop("manifest.json", None)
    bad = sorted(n for n in set(sums) | set(seen) if sums.get(n) != seen.get(n))
    if bad:
        raise ValueError(f"{pack}: member(s) {', '.join(bad)} missing or not as the manifest says (damaged in transit?)")


def _same_files(a: Path, b: Path) -> list[str]:
    """The record files that differ between the folders ``a`` and ``b``."""
    diff = []
    for name in RECORD_FILES:
        fa, fb = a / name, b / name
        if fa.is_file() != fb.is_file() or (fa.is_file() and fa.read_bytes() != fb.read_bytes()):
            diff.append(name)
    return diff


def _install_record(staged: Path, dest: Path) -> None:
    """Copy a checked record into place; ``summary.json`` last, as :func:`~.records.save_record` does."""
    if not dest.exists():
        tmp = dest.with_name(f".{dest.name}.import-{os.getpid()}")
        shutil.copytree(staged, tmp)
        os.replace(tmp, dest)
        return
    for name in (*[n for n in RECORD_FILES if n != "summary.json"], "summary.json"):  # an unfinished folder
        if (staged / name).is_file():
            tmp = dest / f".{name}.import-{os.getpid()}"
            shutil.copyfile(staged / name, tmp)
            os.replace(tmp, dest / name)


def _import_record(staged: Path, root: Path, result: Imported, dry_run: bool) -> None:
    rid = staged.name
    try:
        load_record(staged)
    except RecordError as exc:
        result.refused.append((rid, f"the packed record does not check out: {exc}"))
        return
    dest = root / rid
    try:
        load_record(dest)
    except DamagedRecord as exc:
        result.refused.append((rid, f"a damaged record of the same id is in the way ({exc}); move it aside first"))
        return
    except RecordError:  # nothing there, or an unfinished run (no summary.json): the record takes its place
        if not dry_run:
            root.mkdir(parents=True, exist_ok=True)
            _install_record(staged, dest)
            load_record(dest)
        result.imported.append(rid)
        return
    diff = _same_files(staged, dest)
    if diff:
        result.refused.append((rid, f"conflicts with the different record of the same id in {dest} "
                                    f"({', '.join(diff)} differ); keep one by hand"))
    else:
        result.identical.append(rid)


def _checkpoint_iteration(path: Path) -> int:
    import torch

    try:
        return int(torch.load(path, map_location="cpu", weights_only=True).get("iteration", -1))
    except Exception:  # noqa: BLE001 - an unreadable checkpoint is as good as none
        return -1


def _import_checkpoint(staged: Path, root: Path, checkpoints: str | Path | None, result: Imported,
                       dry_run: bool) -> None:
    import torch

    from ..train import CHECKPOINT_KEYS, CHECKPOINT_VERSION

    rid = staged.name
    try:
        config = json.loads((staged / "config.json").read_text())
        if run_id(config) != rid:
            raise ValueError(f"its config belongs to run {run_id(config)}")
        state = torch.load(staged / "last.pt", map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION or set(state) != set(CHECKPOINT_KEYS):
            raise ValueError("not a resnetlab checkpoint of this version")
        if state["model_name"] != config["model"] or state["recipe"] != config["recipe"]:
            raise ValueError("it is the checkpoint of another model or recipe than its config says")
    except Exception as exc:  # noqa: BLE001 - every way a checkpoint can be bad is reported the same way
        result.refused.append((rid, f"checkpoint refused: {type(exc).__name__}: {exc}"))
        return
    if (root / rid / "summary.json").exists():
        result.checkpoints_skipped.append((rid, "the run is recorded already"))
        return
    dest = checkpoint_path(config, root, checkpoints)
    there = _checkpoint_iteration(dest) if dest.exists() else -1
    if there >= state["iteration"]:
        result.checkpoints_skipped.append((rid, f"the checkpoint in {dest} is as far along (iteration {there})"))
        return
    if not dry_run:
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            os.replace(dest, dest.with_name(dest.stem + ".prev" + dest.suffix))
        tmp = dest.with_name(f".{dest.name}.import-{os.getpid()}")
        shutil.copyfile(staged / "last.pt", tmp)
        os.replace(tmp, dest)
    result.checkpoints.append((rid, dest))


def import_packs(files: Sequence[str | Path], runs: str | Path | None = None,
                 checkpoints: str | Path | None = None, *, dry_run: bool = False) -> Imported:
    """Merge the packs ``files`` (or folders of them) into ``runs`` (default
    :func:`~.records.resolve_runs_dir`), their checkpoints where
    :func:`~.execute.checkpoint_path` ``(config, runs, checkpoints)`` says (see the module
    docstring). ``dry_run``: check and report, write nothing."""
    root = resolve_runs_dir(runs)
    result = Imported()
    for pack in pack_files(files):
        with tempfile.TemporaryDirectory(prefix="resnetlab-import-") as tmp:
            staged = Path(tmp)
            try:
                _stage(pack, staged)
            except (OSError, ValueError, tarfile.TarError, EOFError) as exc:
                result.refused.append((str(pack), f"unreadable pack: {exc}"))
                continue
            for rec in sorted((staged / "records").glob("*")) if (staged / "records").is_dir() else []:
                _import_record(rec, root, result, dry_run)
            for ck in sorted((staged / "checkpoints").glob("*")) if (staged / "checkpoints").is_dir() else []:
                _import_checkpoint(ck, root, checkpoints, result, dry_run)
    return result


__all__ = ["CHECKPOINT_FILES", "Imported", "PACK_FORMAT", "PACK_VERSION", "Packed", "RECORD_FILES", "import_packs",
           "pack_files", "pack_runs"]
