""":func:`load_cifar`: find a copy, decode it once into the cache, hand back the tensors."""

from __future__ import annotations

import os

from .arrays import CifarArrays
from .cache import CACHE_DIR, TENSORS, fingerprint, new_blob, read_cache, write_cache
from .decode import decode_folder, decode_pickles
from .sources import TITLES, check_classes, check_pickles, dataset_key, find_source, list_folder, not_found, \
    resolve_data_root, source_kind, torchvision_download

#: ``load_cifar``'s description of each kind of copy (``data.source``)
_DESCRIPTIONS = {"torchvision": "{title} (torchvision pickles)", "jpeg-copy": "{title} (JPEG copy)",
                 "image-folder": "{title} (image folder: {path})"}


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
    dataset is fetched by torchvision into the root. Raises :class:`DatasetNotFoundError`, or a
    ``ValueError`` naming the file or folder and the fix for a copy that is not a sound CIFAR
    copy: the wrong number of classes, a class missing or empty, a file that is not a 32x32
    image, a symbolic link out of the dataset folder. Nothing is skipped silently.
    """
    name = dataset_key(name)
    title, root = TITLES[name], resolve_data_root(data)
    src = find_source(name, root)
    if src is None and download:
        try:
            torchvision_download(name, root)
        except Exception as exc:  # any failure of the download: reported, with its cause chained
            raise not_found(name, root, f" and the download failed ({type(exc).__name__}: {exc})") from exc
        src = find_source(name, root)
    if src is None:
        raise not_found(name, root)

    if src.kind == "folder":
        classes, files = list_folder(src.path)  # refuses links out of the folder, stray files, empty classes
        check_classes(name, src.path, classes)
    else:
        check_pickles(name, src)
        classes, files = [], None
    kind = source_kind(src, files)
    fp = fingerprint(name, src, files)
    cache_file = root / CACHE_DIR / f"{name}-{fp}.pt"
    blob = read_cache(cache_file, name, fp)
    if blob is None:
        if src.kind == "pickle":
            classes, tensors = decode_pickles(name, src.path)
        else:
            tensors = decode_folder(files, title, progress)
        blob = new_blob(name, fp, classes, tensors)
        write_cache(cache_file, blob, name)
    source = _DESCRIPTIONS[kind].format(title=title, path=src.path)
    return CifarArrays(name, source, list(blob["classes"]), *(blob[k] for k in TENSORS), kind=kind)
