"""resnetlab.data: loading, caching, normalisation, augmentation and batching (R-Sec. 4.2)."""

from __future__ import annotations

import os
import pickle
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from resnetlab import data as D
from resnetlab.data import loading
from resnetlab.data import (
    DATA_ENV,
    BatchStream,
    CifarArrays,
    DataCacheWarning,
    DatasetNotFoundError,
    Normalizer,
    augment_batch,
    eval_batches,
    load_cifar,
    resolve_data_root,
)
from resnetlab.testing import CIFAR10_CLASSES, fabricate_cifar


def _raw(file: Path) -> dict:
    with open(file, "rb") as fh:
        return pickle.load(fh, encoding="bytes")


def _cache_files(root: Path) -> list[Path]:
    return sorted((root / D.CACHE_DIR).glob("*.pt"))


def _load_quietly(*args, **kwargs) -> CifarArrays:
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataCacheWarning)
        return load_cifar(*args, progress=False, **kwargs)


# ----------------------------------------------------------------------------- loading


def test_cifar10_pickles_shapes_and_known_pixels(cifar_pickles: Path) -> None:
    a = _load_quietly("cifar10", cifar_pickles)
    assert a.name == "cifar10" and a.source == "CIFAR-10 (torchvision pickles)"
    assert a.classes == CIFAR10_CLASSES
    assert a.train_images.shape == (200, 3, 32, 32) and a.train_images.dtype == torch.uint8
    assert a.test_images.shape == (50, 3, 32, 32) and a.test_labels.dtype == torch.int64
    folder = cifar_pickles / "cifar-10-batches-py"
    b2, test = _raw(folder / "data_batch_2"), _raw(folder / "test_batch")
    n1 = len(_raw(folder / "data_batch_1")[b"labels"])
    # image 3 of data_batch_2; row layout is 1024 R, then G, then B, each 32x32 row-major
    for c, y, x in [(0, 0, 0), (1, 5, 17), (2, 31, 31), (0, 12, 3)]:
        assert a.train_images[n1 + 3, c, y, x] == b2[b"data"][3, c * 1024 + y * 32 + x]
    assert a.train_labels[n1 + 3] == b2[b"labels"][3]
    assert a.test_labels.tolist() == test[b"labels"]
    assert torch.equal(a.test_images[7].flatten(), torch.from_numpy(test[b"data"][7]))


def test_cifar100_pickles(cifar100_pickles: Path) -> None:
    a = _load_quietly("CIFAR-100", cifar100_pickles)
    raw = _raw(cifar100_pickles / "cifar-100-python" / "train")
    assert a.name == "cifar100" and len(a.classes) == 100 and a.classes[0] == "class_00"
    assert a.train_images.shape == (300, 3, 32, 32) and a.test_images.shape == (100, 3, 32, 32)
    assert a.train_labels.tolist() == raw[b"fine_labels"]
    assert a.train_images[42, 2, 9, 30] == raw[b"data"][42, 2 * 1024 + 9 * 32 + 30]


def test_image_folder(cifar_folder: Path) -> None:
    a = _load_quietly("cifar10", cifar_folder)
    folder = cifar_folder / "cifar10"
    assert a.source == f"CIFAR-10 (image folder: {folder.absolute()})"
    assert a.classes == sorted(CIFAR10_CLASSES)
    assert a.train_images.shape == (100, 3, 32, 32) and a.test_images.shape == (30, 3, 32, 32)
    # order: classes sorted, files sorted within a class
    expected = [
        (f, label)
        for label, cls in enumerate(a.classes)
        for f in sorted((folder / "test" / cls).iterdir())
    ]
    for i in (0, 13, 29):
        f, label = expected[i]
        pixels = np.array(Image.open(f).convert("RGB"))  # [32,32,3]
        assert a.test_labels[i] == label
        assert torch.equal(a.test_images[i].permute(1, 2, 0), torch.from_numpy(pixels))


def test_jpeg_folder_gets_its_own_label(tmp_path: Path) -> None:
    root = fabricate_cifar(tmp_path, "cifar10", "folder", n_train=20, n_test=10, ext="jpg")
    assert _load_quietly("cifar10", root).source == "CIFAR-10 (JPEG copy)"


def test_image_of_wrong_size_is_named(cifar_folder: Path) -> None:
    bad = cifar_folder / "cifar10" / "train" / "cat" / "99999.png"
    Image.new("RGB", (31, 32)).save(bad)
    with pytest.raises(ValueError, match=r"99999\.png.*31x32.*32x32"):
        load_cifar("cifar10", cifar_folder, progress=False)


def test_folder_classes_must_match(cifar_folder: Path) -> None:
    (cifar_folder / "cifar10" / "test" / "unicorn").mkdir()
    with pytest.raises(ValueError, match="unicorn"):
        load_cifar("cifar10", cifar_folder, progress=False)


# ----------------------------------------------------------------------------- bad copies
# Each refusal is a ValueError that names the file or folder and says what to do; nothing is
# skipped silently.


def test_a_cifar10_folder_given_as_cifar100_is_refused(tmp_path: Path) -> None:
    root = fabricate_cifar(tmp_path, "cifar10", "folder", n_train=20, n_test=10)
    (root / "cifar10").rename(root / "cifar100")
    with pytest.raises(ValueError, match=r"cifar100: found 10 class folders, but CIFAR-100 has 100.*--dataset cifar10"):
        load_cifar("cifar100", root, progress=False)


def test_a_class_missing_from_one_split_is_named(cifar_folder: Path) -> None:
    import shutil

    folder = cifar_folder / "cifar10"
    shutil.rmtree(folder / "train" / "cat")
    with pytest.raises(ValueError, match=r"class 'cat' is in .*test but missing from .*cifar10/train"):
        load_cifar("cifar10", cifar_folder, progress=False)


def test_a_class_missing_from_both_splits_is_not_a_9_class_cifar10(cifar_folder: Path) -> None:
    import shutil

    for split in ("train", "test"):
        shutil.rmtree(cifar_folder / "cifar10" / split / "cat")
    with pytest.raises(ValueError, match=r"cifar10: found 9 class folders, but CIFAR-10 has 10"):
        load_cifar("cifar10", cifar_folder, progress=False)


def test_an_empty_class_folder_is_named(cifar_folder: Path) -> None:
    empty = cifar_folder / "cifar10" / "test" / "cat"
    for f in empty.iterdir():
        f.unlink()
    with pytest.raises(ValueError, match=r"class 'cat' has no images in .*cifar10/test/cat"):
        load_cifar("cifar10", cifar_folder, progress=False)


def _garbage(f: Path) -> None:
    f.write_bytes(b"\x00\x13garbage, not a PNG" * 7)


def _truncated(f: Path) -> None:
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def _empty(f: Path) -> None:
    f.write_bytes(b"")


def _text(f: Path) -> None:
    f.write_text("these are my notes\n")


@pytest.mark.parametrize("damage", [_garbage, _truncated, _empty, _text])
def test_a_corrupt_image_is_named_with_the_fix(cifar_folder: Path, damage) -> None:
    bad = sorted((cifar_folder / "cifar10" / "train" / "cat").iterdir())[1]
    damage(bad)
    with pytest.raises(ValueError, match=rf"{bad.name}: not a readable image .*delete or replace this file, "
                                         "then rerun"):
        load_cifar("cifar10", cifar_folder, progress=False)


@pytest.mark.parametrize("image, what", [
    (Image.new("RGBA", (32, 32)), "32x32 RGBA"),
    (Image.new("RGB", (64, 64)), "64x64 RGB"),
    (Image.new("I;16", (32, 32)), "32x32 I;16"),
    (Image.new("CMYK", (32, 32)), "32x32 CMYK"),
])
def test_an_image_that_is_not_32x32_rgb_is_named(cifar_folder: Path, image, what: str) -> None:
    bad = cifar_folder / "cifar10" / "test" / "dog" / ("99999.jpg" if image.mode == "CMYK" else "99999.png")
    image.save(bad)
    with pytest.raises(ValueError, match=rf"99999\.(png|jpg): image is {what}, CIFAR images must be 32x32 RGB; "
                                         "delete or replace"):
        load_cifar("cifar10", cifar_folder, progress=False)


def test_grey_and_palette_pngs_are_lossless_rgb(cifar_folder: Path) -> None:
    cat = cifar_folder / "cifar10" / "train" / "cat"
    Image.new("L", (32, 32), 77).save(cat / "99998.png")
    Image.new("RGB", (32, 32), (1, 2, 3)).convert("P", palette=Image.Palette.ADAPTIVE).save(cat / "99999.png")
    a = _load_quietly("cifar10", cifar_folder)
    pixels = {tuple(img[:, 0, 0].tolist()) for img in a.train_images}
    assert {(77, 77, 77), (1, 2, 3)} <= pixels


def test_a_stray_file_in_a_class_folder_is_refused(cifar_folder: Path) -> None:
    cat = cifar_folder / "cifar10" / "train" / "cat"
    (cat / ".DS_Store").write_bytes(b"\x00")  # hidden files and the OS's own are ignored
    (cat / "Thumbs.db").write_bytes(b"\x00")
    assert len(_load_quietly("cifar10", cifar_folder).train_labels) == 100
    (cat / "notes.txt").write_text("hi")
    with pytest.raises(ValueError, match=r"notes\.txt is not an image .*delete it or move it out"):
        load_cifar("cifar10", cifar_folder, progress=False)
    (cat / "notes.txt").unlink()
    (cat / "more").mkdir()
    with pytest.raises(ValueError, match=r"cat/more is a folder inside the class folder"):
        load_cifar("cifar10", cifar_folder, progress=False)


def test_symlinks_inside_the_dataset_are_followed(cifar_folder: Path) -> None:
    train = cifar_folder / "cifar10" / "train"
    dog = sorted((train / "dog").iterdir())[0]
    (train / "cat" / "99999.png").symlink_to(Path("..") / "dog" / dog.name)
    assert len(_load_quietly("cifar10", cifar_folder).train_labels) == 101


def test_symlinks_out_of_the_dataset_are_refused(cifar_folder: Path, tmp_path: Path) -> None:
    import shutil

    outside = tmp_path / "elsewhere"
    shutil.copytree(cifar_folder / "cifar10" / "test" / "cat", outside / "cat")
    secret = outside / "secret.png"
    Image.new("RGB", (32, 32)).save(secret)
    link = cifar_folder / "cifar10" / "train" / "cat" / "99999.png"
    link.symlink_to(secret)  # an image that resolves outside
    with pytest.raises(ValueError, match=rf"99999\.png is a symbolic link to {re.escape(str(secret))}, outside "
                                         "the dataset folder"):
        load_cifar("cifar10", cifar_folder, progress=False)
    link.unlink()
    cls = cifar_folder / "cifar10" / "test" / "cat"
    shutil.rmtree(cls)
    cls.symlink_to(outside / "cat", target_is_directory=True)  # a class folder that does
    with pytest.raises(ValueError, match=r"test/cat is a symbolic link to .*elsewhere/cat, outside the dataset"):
        load_cifar("cifar10", cifar_folder, progress=False)


def test_pickles_linked_from_outside_are_refused(cifar_pickles: Path, tmp_path: Path) -> None:
    batch = cifar_pickles / "cifar-10-batches-py" / "data_batch_2"
    outside = tmp_path / "data_batch_2"
    batch.rename(outside)
    batch.symlink_to(outside)
    with pytest.raises(ValueError, match=r"data_batch_2 is a symbolic link .*outside the dataset folder"):
        load_cifar("cifar10", cifar_pickles, progress=False)


def test_fabricated_classes_are_learnable() -> None:
    from resnetlab.testing import fabricate_images

    train_x, train_y = fabricate_images(500, 10, seed=0)
    test_x, test_y = fabricate_images(200, 10, seed=1)
    centroids = np.stack([train_x[train_y == k].mean(0) for k in range(10)]).reshape(10, -1)
    dists = ((test_x.reshape(200, 1, -1).astype(float) - centroids[None]) ** 2).sum(-1)
    assert (dists.argmin(1) == test_y).mean() > 0.95


def test_refuses_pickles_with_foreign_globals(cifar_pickles: Path) -> None:
    class Evil:
        def __reduce__(self):
            return (os.getcwd, ())

    with open(cifar_pickles / "cifar-10-batches-py" / "data_batch_1", "wb") as fh:
        pickle.dump({b"data": Evil(), b"labels": []}, fh, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="posix.getcwd|os.getcwd|nt.getcwd"):
        load_cifar("cifar10", cifar_pickles)


# ----------------------------------------------------------------------------- data root


def test_missing_data_lists_paths_and_both_remedies(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as info:
        load_cifar("cifar10", tmp_path)
    msg = str(info.value)
    for looked in ["cifar-10-batches-py", "cifar10", "cifar10-jpeg", "CIFAR-10-images"]:
        assert str(tmp_path / looked) in msg
    assert f"{tmp_path}/{{train,test}}" in msg
    assert "python -m resnetlab download cifar10 --data" in msg
    assert "torchvision.datasets.CIFAR10(root, download=True)" in msg
    assert "--data" in msg and DATA_ENV in msg and "train/<class>/" in msg
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(DatasetNotFoundError, match="cifar-100-python"):
        load_cifar("cifar100", tmp_path)


def test_failed_download_is_chained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(name: str, root: Path) -> None:
        raise OSError("no network")

    monkeypatch.setattr(loading, "torchvision_download", no_network)
    with pytest.raises(DatasetNotFoundError, match="download failed.*no network") as info:
        load_cifar("cifar10", tmp_path, download=True)
    assert isinstance(info.value.__cause__, OSError)
    assert str(tmp_path / "cifar-10-batches-py") in str(info.value)


def test_download_then_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_download(name: str, root: Path) -> None:
        fabricate_cifar(root, name, n_train=20, n_test=10)

    monkeypatch.setattr(loading, "torchvision_download", fake_download)
    assert len(_load_quietly("cifar10", tmp_path, download=True).train_labels) == 20


def test_data_root_resolution(
    cifar_pickles: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(DATA_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert resolve_data_root() == tmp_path / "data"
    monkeypatch.setenv(DATA_ENV, str(cifar_pickles))
    assert resolve_data_root() == cifar_pickles
    assert resolve_data_root("elsewhere") == tmp_path / "elsewhere"
    assert len(_load_quietly("cifar10").train_labels) == 200


# ----------------------------------------------------------------------------- cache


def test_cache_is_written_and_used(cifar_pickles: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _load_quietly("cifar10", cifar_pickles)
    (cache,) = _cache_files(cifar_pickles)
    assert cache.name.startswith("cifar10-")
    monkeypatch.setattr(loading, "decode_pickles", lambda *a: pytest.fail("cache not used"))
    second = _load_quietly("cifar10", cifar_pickles)
    assert torch.equal(first.train_images, second.train_images)
    assert torch.equal(first.test_labels, second.test_labels)


def _truncate(f: Path) -> None:
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def _flip_bytes(f: Path) -> None:
    blob = bytearray(f.read_bytes())
    for i in range(len(blob) // 3, len(blob) // 3 + 64):
        blob[i] ^= 0xFF
    f.write_bytes(bytes(blob))


def _tamper_pixel(f: Path) -> None:
    blob = torch.load(f, weights_only=True)
    blob["train_images"][0, 0, 0, 0] += 1
    torch.save(blob, f)


def _old_version(f: Path) -> None:
    blob = torch.load(f, weights_only=True)
    blob["version"] = D.CACHE_VERSION - 1
    torch.save(blob, f)


@pytest.mark.parametrize(
    "damage, reason",
    [
        (_truncate, "cannot be read"),
        (_flip_bytes, "checksum|cannot be read"),
        (_tamper_pixel, "checksum"),
        (_old_version, "version"),
    ],
)
def test_damaged_cache_is_reported_and_rebuilt(cifar_pickles: Path, damage, reason: str) -> None:
    good = _load_quietly("cifar10", cifar_pickles)
    (cache,) = _cache_files(cifar_pickles)
    damage(cache)
    with pytest.warns(DataCacheWarning, match=f"(?s)({reason}).*rebuilding"):
        rebuilt = load_cifar("cifar10", cifar_pickles, progress=False)
    assert torch.equal(rebuilt.train_images, good.train_images)
    assert torch.equal(rebuilt.train_labels, good.train_labels)
    assert _cache_files(cifar_pickles) == [cache]
    _load_quietly("cifar10", cifar_pickles)  # the rebuilt cache is sound


def test_changed_pickles_are_not_served_from_cache(cifar_pickles: Path) -> None:
    old = _load_quietly("cifar10", cifar_pickles)
    (old_cache,) = _cache_files(cifar_pickles)
    f = cifar_pickles / "cifar-10-batches-py" / "data_batch_1"
    raw, st = _raw(f), f.stat()
    raw[b"data"][[0, 1]] = raw[b"data"][[1, 0]]  # swap two images: same file size
    with open(f, "wb") as fh:
        pickle.dump(raw, fh, protocol=2)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # only the mtime tells
    assert f.stat().st_size == st.st_size
    changed = _load_quietly("cifar10", cifar_pickles)
    assert torch.equal(changed.train_images[0], old.train_images[1])
    assert _cache_files(cifar_pickles) != [old_cache] and len(_cache_files(cifar_pickles)) == 1


def test_changed_folder_is_not_served_from_cache(cifar_folder: Path) -> None:
    old = _load_quietly("cifar10", cifar_folder)
    train = cifar_folder / "cifar10" / "train"
    moved = sorted((train / "ship").iterdir())[0]
    moved.rename(train / "cat" / moved.name)  # same files and sizes, one label changed
    relabelled = _load_quietly("cifar10", cifar_folder)
    cat, ship = relabelled.classes.index("cat"), relabelled.classes.index("ship")
    assert (relabelled.train_labels == cat).sum() == (old.train_labels == cat).sum() + 1
    assert (relabelled.train_labels == ship).sum() == (old.train_labels == ship).sum() - 1
    Image.new("RGB", (32, 32), (1, 2, 3)).save(train / "ship" / "99999.png")
    grown = _load_quietly("cifar10", cifar_folder)
    assert len(grown.train_labels) == 101
    assert any(
        img[:, 0, 0].tolist() == [1, 2, 3] and lbl == ship
        for img, lbl in zip(grown.train_images, grown.train_labels.tolist())
    )
    assert len(_cache_files(cifar_folder)) == 1


def test_swapped_images_of_the_same_size_are_not_served_from_cache(cifar_folder: Path) -> None:
    # the cache key hashes contents: swapping two same-size files (mtimes kept) is seen
    train = cifar_folder / "cifar10" / "train"
    a, b = sorted((train / "cat").iterdir())[0], sorted((train / "dog").iterdir())[0]
    Image.new("RGB", (32, 32), (200, 0, 0)).save(a, compress_level=0)  # same size, whatever the pixels
    Image.new("RGB", (32, 32), (0, 0, 200)).save(b, compress_level=0)
    assert a.stat().st_size == b.stat().st_size
    old = _load_quietly("cifar10", cifar_folder)
    cat, dog = old.classes.index("cat"), old.classes.index("dog")
    red = [lbl for img, lbl in zip(old.train_images, old.train_labels.tolist()) if img[:, 0, 0].tolist() == [200, 0, 0]]
    assert red == [cat]
    stats = a.stat(), b.stat()
    blob_a, blob_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(blob_b)
    b.write_bytes(blob_a)
    for f, st in zip((a, b), stats):
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # nothing but the bytes tells
    new = _load_quietly("cifar10", cifar_folder)
    red = [lbl for img, lbl in zip(new.train_images, new.train_labels.tolist()) if img[:, 0, 0].tolist() == [200, 0, 0]]
    assert red == [dog]
    assert len(_cache_files(cifar_folder)) == 1


def test_pickles_changed_behind_a_kept_mtime_are_not_served_from_cache(cifar_pickles: Path) -> None:
    old = _load_quietly("cifar10", cifar_pickles)
    f = cifar_pickles / "cifar-10-batches-py" / "data_batch_1"
    raw, st = _raw(f), f.stat()
    raw[b"data"][[0, 1]] = raw[b"data"][[1, 0]]
    with open(f, "wb") as fh:
        pickle.dump(raw, fh, protocol=2)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert f.stat().st_size == st.st_size and f.stat().st_mtime_ns == st.st_mtime_ns
    changed = _load_quietly("cifar10", cifar_pickles)
    assert torch.equal(changed.train_images[0], old.train_images[1])


def test_a_cache_of_an_older_key_is_rebuilt_and_removed(cifar_pickles: Path) -> None:
    first = _load_quietly("cifar10", cifar_pickles)
    (cache,) = _cache_files(cifar_pickles)
    old = cache.with_name("cifar10-d3417a853d8d82e3.pt")  # keyed by paths and sizes, as before
    cache.rename(old)
    again = _load_quietly("cifar10", cifar_pickles)
    assert torch.equal(first.train_images, again.train_images)
    assert _cache_files(cifar_pickles) == [cache]


def test_temporary_cache_files_of_dead_writers_are_removed(cifar_pickles: Path) -> None:
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()
    cache = cifar_pickles / D.CACHE_DIR
    cache.mkdir()
    stale = [cache / f"cifar10-0123456789abcdef.pt.1a2b3c4d.tmp-{dead.pid}",
             cache / f"cifar10-0123456789abcdef.pt.{dead.pid}.1a2b3c4d.tmp"]  # the older naming
    live = cache / f"cifar10-0123456789abcdef.pt.1a2b3c4d.tmp-{os.getppid()}"  # a write in progress
    for f in (*stale, live):
        f.write_bytes(b"half a cache")
    _load_quietly("cifar10", cifar_pickles)
    assert not any(f.exists() for f in stale)
    assert live.exists()


def test_a_failed_cache_write_leaves_no_temporary_file(cifar_pickles: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from resnetlab.data import cache as C

    def full_disk(obj, f, *a, **k):
        Path(f).write_bytes(b"x" * 1000)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(C.torch, "save", full_disk)
    with pytest.warns(DataCacheWarning, match="cannot write data cache .*No space left"):
        data = load_cifar("cifar10", cifar_pickles, progress=False)
    assert len(data.train_labels) == 200
    assert list((cifar_pickles / D.CACHE_DIR).iterdir()) == []


# ----------------------------------------------------------------------------- splits


def _indexed_arrays(n_train: int, n_test: int = 10) -> CifarArrays:
    """Images whose first two pixels encode their index."""

    def images(n: int) -> torch.Tensor:
        x = torch.zeros(n, 3, 32, 32, dtype=torch.uint8)
        x[:, 0, 0, 0] = torch.arange(n) % 256
        x[:, 0, 0, 1] = torch.arange(n) // 256
        return x

    return CifarArrays(
        "cifar10", "fake", list(CIFAR10_CLASSES),
        images(n_train), torch.arange(n_train) % 10, images(n_test), torch.arange(n_test) % 10,
    )


def _ids(images: torch.Tensor) -> list[int]:
    return (images[:, 0, 0, 0].long() + 256 * images[:, 0, 0, 1].long()).tolist()


def test_split_validation() -> None:
    a = _indexed_arrays(2000)
    s = a.split_validation(n_val=1000, seed=0)
    assert s.source == "fake [1k/1k val split]"
    train, val = _ids(s.train_images), _ids(s.test_images)
    assert len(train) == 1000 and len(val) == 1000
    assert sorted(train + val) == list(range(2000))
    assert s.train_labels.tolist() == [i % 10 for i in train]
    assert s.test_labels.tolist() == [i % 10 for i in val]
    assert _ids(a.split_validation(1000, seed=0).test_images) == val
    assert _ids(a.split_validation(1000, seed=1).test_images) != val
    small = _indexed_arrays(200).split_validation(n_val=20)
    assert len(small.train_labels) == 180 and small.source == "fake [180/20 val split]"
    with pytest.raises(ValueError):
        a.split_validation(n_val=2000)


def test_subset() -> None:
    a = _indexed_arrays(300, 50)
    s = a.subset(40, None, seed=3)
    assert len(s.train_labels) == 40 and len(s.test_labels) == 50
    ids = _ids(s.train_images)
    assert len(set(ids)) == 40 and s.train_labels.tolist() == [i % 10 for i in ids]
    assert _ids(a.subset(40, None, seed=3).train_images) == ids
    assert "subset 40/50" in s.source
    with pytest.raises(ValueError, match="n_test"):
        a.subset(10, 51)


# ----------------------------------------------------------------------------- normalisation


def test_per_pixel_mean_zeroes_the_mean_image() -> None:
    images = torch.randint(0, 256, (300, 3, 32, 32), dtype=torch.uint8)
    norm = Normalizer("per_pixel_mean", images)
    assert norm.mean.shape == (3, 32, 32)
    x = norm(images)
    assert x.dtype == torch.float32 and x.shape == images.shape
    assert x.mean(0).abs().max() < 1e-5
    assert torch.allclose(x, images.float() / 255 - images.float().mean(0) / 255, atol=1e-6)


def test_per_channel_gives_zero_mean_unit_std() -> None:
    images = (torch.rand(300, 3, 32, 32) * torch.tensor([50.0, 120, 255]).view(3, 1, 1)).to(torch.uint8)
    x = Normalizer("per_channel", images)(images)
    assert x.mean((0, 2, 3)).abs().max() < 1e-4
    assert (x.std((0, 2, 3)) - 1).abs().max() < 1e-3


def test_normalizer_state_and_errors() -> None:
    images = torch.randint(0, 256, (20, 3, 32, 32), dtype=torch.uint8)
    for mode in D.NORMALIZATIONS:
        norm = Normalizer(mode, images)
        clone = Normalizer.from_state_dict(norm.state_dict())
        assert torch.equal(clone(images), norm(images)) and clone.mode == mode
    with pytest.raises(ValueError, match="per_pixel_mean.*per_channel"):
        Normalizer("zca", images)
    with pytest.raises(TypeError):
        norm(images.float())


# ----------------------------------------------------------------------------- augmentation


def _match_crops(x: torch.Tensor, out: torch.Tensor, pad: int) -> list[tuple[int, int, bool]]:
    """For every output image, the unique (row offset, col offset, flipped) it came from."""
    b, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad,) * 4)
    found: list[list[tuple[int, int, bool]]] = [[] for _ in range(b)]
    for oy in range(2 * pad + 1):
        for ox in range(2 * pad + 1):
            window = padded[:, :, oy : oy + h, ox : ox + w]
            for flip in (False, True):
                candidate = window.flip(-1) if flip else window
                for i in torch.nonzero((out == candidate).flatten(1).all(1)).flatten().tolist():
                    found[i].append((oy, ox, flip))
    assert all(len(f) == 1 for f in found), "every output must be exactly one padded window"
    return [f[0] for f in found]


def test_augmentation_is_random_crop_and_flip() -> None:
    b, pad = 128, 4
    # every value distinct and nonzero, so a window is identified and padding is visible
    x = torch.arange(1, b * 3 * 32 * 32 + 1, dtype=torch.float32).reshape(b, 3, 32, 32)
    out = augment_batch(x, torch.Generator().manual_seed(0), pad=pad)
    assert out.shape == x.shape and out.dtype == x.dtype
    crops = _match_crops(x, out, pad)
    flips = [f for _, _, f in crops]
    assert 0.3 < sum(flips) / b < 0.7
    assert len({(oy, ox) for oy, ox, _ in crops}) > 30
    assert {oy for oy, _, _ in crops} == set(range(2 * pad + 1))
    for i, (oy, ox, _) in enumerate(crops):  # extreme offsets show the zero padding at the borders
        if oy == 0:
            assert (out[i, :, :pad] == 0).all() and (out[i, :, pad, pad:-pad] != 0).all()
        if oy == 2 * pad:
            assert (out[i, :, -pad:] == 0).all()
        if ox in (0, 2 * pad):
            assert (out[i, :, :, :pad] == 0).all() or (out[i, :, :, -pad:] == 0).all()
    assert any(oy == 0 for oy, _, _ in crops) and any(ox == 2 * pad for _, ox, _ in crops)


def test_augmentation_reproducible_from_generator() -> None:
    x = torch.randn(64, 3, 32, 32)
    a = augment_batch(x, torch.Generator().manual_seed(5))
    assert torch.equal(a, augment_batch(x, torch.Generator().manual_seed(5)))
    assert not torch.equal(a, augment_batch(x, torch.Generator().manual_seed(6)))
    assert augment_batch(x).shape == x.shape  # global RNG
    flipped_only = augment_batch(x, torch.Generator().manual_seed(5), pad=0)
    same = (flipped_only == x).flatten(1).all(1)
    assert (same | (flipped_only == x.flip(-1)).flatten(1).all(1)).all() and 0 < same.sum() < 64


# ----------------------------------------------------------------------------- batching


def _stream(n: int = 103, batch_size: int = 10, seed: int = 0, augment: bool = True) -> BatchStream:
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8)
    images[:, 0, 0, 0] = torch.arange(n, dtype=torch.uint8)  # identifiable (n < 256)
    labels = torch.arange(n) % 10
    return BatchStream(images, labels, batch_size, seed, Normalizer("per_pixel_mean", images), augment)


def test_batch_stream_is_deterministic_and_resumable() -> None:
    s1 = _stream()
    s2 = BatchStream(s1.images, s1.labels, 10, 0, s1.normalizer)  # same data, separate stream
    x, y = s1.batch(17)
    assert x.shape == (10, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    s2.batch(3)  # a different history must not matter
    assert torch.equal(s2.batch(17)[0], x) and torch.equal(s2.batch(17)[1], y)
    s1.batch(40)
    assert torch.equal(s1.batch(17)[0], x)  # going back (resume) gives the same batch
    assert not torch.equal(s1.batch(18)[0], x)
    other = BatchStream(s1.images, s1.labels, 10, 1, s1.normalizer)
    assert not torch.equal(other.indices(17), s1.indices(17))


def test_batch_stream_epochs_cover_distinct_indices() -> None:
    s = _stream(n=103, batch_size=10, augment=False)
    assert s.batches_per_epoch == 10  # the last incomplete batch is dropped
    assert s.position(25) == (2, 5)
    epoch0 = torch.cat([s.indices(i) for i in range(10)])
    epoch1 = torch.cat([s.indices(i) for i in range(10, 20)])
    assert len(set(epoch0.tolist())) == 100 and len(set(epoch1.tolist())) == 100
    assert not torch.equal(epoch0, epoch1)
    x, y = s.batch(12)
    idx = s.indices(12)
    assert torch.equal(y, s.labels[idx])
    assert torch.equal(x, s.normalizer(s.images[idx]))  # augment=False: just normalised
    with pytest.raises(ValueError):
        BatchStream(s.images, s.labels, 104, 0, s.normalizer)


def test_eval_batches_in_order_with_partial_last() -> None:
    images = torch.randint(0, 256, (25, 3, 32, 32), dtype=torch.uint8)
    labels = torch.arange(25) % 10
    norm = Normalizer("per_pixel_mean", images)
    batches = list(eval_batches(images, labels, norm, batch_size=10))
    assert [len(y) for _, y in batches] == [10, 10, 5]
    assert torch.equal(torch.cat([x for x, _ in batches]), norm(images))
    assert torch.equal(torch.cat([y for _, y in batches]), labels)
