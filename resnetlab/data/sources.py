"""Where a CIFAR copy is: the data root, the kinds of copy, finding one, and saying why not.

A copy is either torchvision's python pickles (``cifar-10-batches-py`` / ``cifar-100-python``)
or an image folder with ``train/<class>/*`` and ``test/<class>/*``; its kind (a key of
:data:`SOURCES`) is part of a run's identity.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

DATA_ENV = "RESNETLAB_DATA"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
TITLES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}
#: The kinds of copy a dataset can come from. They are part of a run's config (and so of its
#: id): a run trained on the lossy JPEG copy is never handed back as an official-CIFAR run.
SOURCES: dict[str, str] = {
    "torchvision": "the official CIFAR python batches, as torchvision downloads them",
    "jpeg-copy": "an image-folder copy with JPEG files (lossy: about 1-2 points of accuracy lower)",
    "image-folder": "an image-folder copy of lossless PNG files",
}

#: (file, label) pairs per split of an image folder
FolderFiles = dict[str, list[tuple[Path, int]]]


class DatasetNotFoundError(FileNotFoundError):
    """No copy of the requested CIFAR dataset was found (and none could be downloaded)."""


def resolve_data_root(data: str | os.PathLike | None = None) -> Path:
    """The data root: ``data`` if given, else ``$RESNETLAB_DATA``, else ``./data``."""
    chosen = data if data not in (None, "") else os.environ.get(DATA_ENV) or "data"
    return Path(chosen).expanduser().absolute()


def dataset_key(name: str) -> str:
    """"cifar10" or "cifar100" for any spelling ("CIFAR-10", "cifar_100", ...)."""
    key = name.lower().replace("-", "").replace("_", "")
    if key not in TITLES:
        raise ValueError(f"unknown dataset {name!r}; choose from {sorted(TITLES)}")
    return key


class Source(NamedTuple):
    kind: str  # "pickle" | "folder"
    path: Path


class PickleLayout(NamedTuple):
    train: tuple[str, ...]
    test: tuple[str, ...]
    meta: str
    label_key: str
    names_key: str

    @property
    def files(self) -> tuple[str, ...]:
        return (*self.train, *self.test, self.meta)


PICKLES = {
    "cifar10": PickleLayout(
        tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",), "batches.meta",
        "labels", "label_names",
    ),
    "cifar100": PickleLayout(("train",), ("test",), "meta", "fine_labels", "fine_label_names"),
}


def candidates(name: str, root: Path) -> list[Source]:
    """Where a copy of ``name`` may be under ``root``, in the order they are tried."""
    if name == "cifar10":
        folders = [root / "cifar10", root / "cifar10-jpeg", root / "CIFAR-10-images", root]
        pickles = Source("pickle", root / "cifar-10-batches-py")
        return [pickles] + [Source("folder", f) for f in folders]
    return [Source("pickle", root / "cifar-100-python"), Source("folder", root / "cifar100")]


def _present(name: str, src: Source) -> bool:
    if src.kind == "pickle":
        return all((src.path / f).is_file() for f in PICKLES[name].files)
    return (src.path / "train").is_dir() and (src.path / "test").is_dir()


def find_source(name: str, root: Path) -> Source | None:
    """The first copy of ``name`` under ``root``, if any."""
    return next((s for s in candidates(name, root) if _present(name, s)), None)


def _describe(name: str, src: Source) -> str:
    if src.kind == "pickle":
        layout = PICKLES[name]
        train = f"{layout.train[0]}..{len(layout.train)}" if len(layout.train) > 1 else layout.train[0]
        missing = [f for f in layout.files if not (src.path / f).is_file()]
        note = f"; the folder exists but lacks {', '.join(missing)}" if src.path.is_dir() else ""
        return f"{src.path}  (torchvision pickles: {train}, {layout.test[0]}, {layout.meta}{note})"
    return f"{src.path / '{train,test}'}  (image folder: <split>/<class>/*.png|jpg)"


def not_found(name: str, root: Path, reason: str = "") -> DatasetNotFoundError:
    """The error for a missing ``name``: where it looked, and the two ways to provide it."""
    title = TITLES[name]
    looked = "\n".join(f"  - {_describe(name, s)}" for s in candidates(name, root))
    return DatasetNotFoundError(
        f"{title} not found under data root {root}{reason}.\nLooked in:\n{looked}\n"
        "Provide it in one of two ways:\n"
        f"  1. let torchvision download it (needs network): python -m resnetlab download {name} "
        f"--data {root}\n"
        f"     (this calls torchvision.datasets.{title.replace('-', '')}(root, download=True));\n"
        f"  2. point --data or the {DATA_ENV} environment variable at an existing copy: a folder "
        f"holding torchvision's {candidates(name, root)[0].path.name} folder, or an image folder "
        "with train/<class>/*.png|jpg and test/<class>/*."
    )


def torchvision_download(name: str, root: Path) -> None:
    """Fetch the official pickles of ``name`` into ``root`` (needs network)."""
    from torchvision import datasets  # slow import, only needed here

    root.mkdir(parents=True, exist_ok=True)
    getattr(datasets, TITLES[name].replace("-", ""))(root=str(root), train=True, download=True)


#: How many classes each dataset has (the official CIFAR-10 has 10, CIFAR-100 100).
NUM_CLASSES = {"cifar10": 10, "cifar100": 100}
#: Files an operating system drops into folders; ignored in class folders (hidden files are too).
OS_FILES = frozenset({"thumbs.db", "desktop.ini"})


def confine(entry: Path, root: Path) -> None:
    """Refuse ``entry`` if it is a symbolic link that resolves outside ``root`` (resolved), or
    that leads nowhere. Links that stay inside are fine."""
    if not entry.is_symlink():
        return
    try:
        target = entry.resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise ValueError(f"{entry} is a broken symbolic link ({exc}): delete it or make it point at a file inside "
                         f"{root}, then rerun") from exc
    if not target.is_relative_to(root):
        raise ValueError(
            f"{entry} is a symbolic link to {target}, outside the dataset folder {root}; resnetlab reads only files "
            "inside the folder you point it at: replace the link by the files themselves (or point --data at the "
            "folder they are in), then rerun"
        )


def list_folder(path: Path) -> tuple[list[str], FolderFiles]:
    """Classes (sorted sub-folders of train/) and, per split, sorted (file, label) pairs.

    Every class folder must be in both train/ and test/ and hold images; any other file in a
    class folder (but hidden files and the OS's Thumbs.db/desktop.ini) is refused, and so is
    a symbolic link that resolves outside ``path``: a ValueError names the file and the fix.
    """
    root = path.resolve()
    for split in ("train", "test"):
        confine(path / split, root)

    def subdirs(p: Path) -> list[str]:
        out = []
        with os.scandir(p) as it:
            for e in it:
                if e.name.startswith(".") or not e.is_dir():
                    continue
                if e.is_symlink():
                    confine(Path(e.path), root)
                out.append(e.name)
        return sorted(out)

    classes = subdirs(path / "train")
    test_classes = subdirs(path / "test")
    if test_classes != classes:
        problems = [f"class {c!r} is in {path / 'test'} but missing from {path / 'train'}"
                    for c in sorted(set(test_classes) - set(classes))]
        problems += [f"class {c!r} is in {path / 'train'} but missing from {path / 'test'}"
                     for c in sorted(set(classes) - set(test_classes))]
        raise ValueError(f"{path}: train/ and test/ must have the same class folders: {'; '.join(problems)}; "
                         "restore the missing class folder (or remove the extra one), then rerun")
    files: FolderFiles = {}
    for split in ("train", "test"):
        files[split] = []
        for label, cls in enumerate(classes):
            found = _class_images(path / split / cls, root)
            if not found:
                raise ValueError(f"class {cls!r} has no images in {path / split / cls}: a CIFAR copy needs "
                                 "images of every class in train/ and test/; put them back, then rerun")
            files[split].extend((f, label) for f in found)
        if not files[split]:
            raise ValueError(f"{path / split} holds no class folders with .png/.jpg images")
    return classes, files


def _class_images(folder: Path, root: Path) -> list[Path]:
    """The sorted image files of one class folder; anything else there is refused."""
    images = []
    with os.scandir(folder) as it:
        entries = sorted(it, key=lambda e: e.name)
    for e in entries:
        name = e.name
        if name.startswith(".") or name.lower() in OS_FILES:
            continue
        if e.is_symlink():
            confine(folder / name, root)
        if e.is_dir():
            raise ValueError(f"{folder / name} is a folder inside the class folder {folder}; class folders hold "
                             "images only: move it out of the data folder, then rerun")
        if os.path.splitext(name)[1].lower() not in IMAGE_SUFFIXES:
            raise ValueError(f"{folder / name} is not an image ({'/'.join(IMAGE_SUFFIXES)} expected) but lies in "
                             f"the class folder {folder}: delete it or move it out of the data folder, then rerun")
        images.append(folder / name)
    return images


def check_classes(name: str, path: Path, classes: list[str]) -> None:
    """Refuse an image folder whose class count is not ``name``'s (10 or 100)."""
    want = NUM_CLASSES[name]
    if len(classes) == want:
        return
    other = next((k for k, n in NUM_CLASSES.items() if n == len(classes)), None)
    hint = (f"it looks like {TITLES[other]}: ask for --dataset {other}, or point --data at a {TITLES[name]} copy"
            if other else f"point --data at a complete {TITLES[name]} copy (one folder per class in train/ "
            "and test/)")
    raise ValueError(f"{path}: found {len(classes)} class folders, but {TITLES[name]} has {want}; {hint}, "
                     "then rerun")


def check_pickles(name: str, src: Source) -> None:
    """Refuse pickle files that are symbolic links out of their folder."""
    root = src.path.resolve()
    for f in PICKLES[name].files:
        confine(src.path / f, root)


def source_kind(src: Source, files: FolderFiles | None) -> str:
    """The kind of copy (a key of :data:`SOURCES`): a folder with any non-PNG file is lossy."""
    if src.kind == "pickle":
        return "torchvision"
    lossy = any(f.suffix.lower() != ".png" for split in (files or {}).values() for f, _ in split)
    return "jpeg-copy" if lossy else "image-folder"


def detect_source(name: str = "cifar10", data: str | os.PathLike | None = None) -> str | None:
    """The kind of copy (a key of :data:`SOURCES`) that :func:`~resnetlab.data.load_cifar`
    would load from ``data``, without decoding anything; ``None`` when there is no copy (a
    download would then bring the official one, "torchvision")."""
    src = find_source(dataset_key(name), resolve_data_root(data))
    if src is None:
        return None
    return source_kind(src, list_folder(src.path)[1] if src.kind == "folder" else None)
