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

* :mod:`.sources`: the data root, the kinds of copy, finding one;
* :mod:`.decode`: torchvision's pickles (restricted unpickler) and image folders to tensors;
* :mod:`.cache`: the verified decoded cache;
* :mod:`.loading`: :func:`load_cifar`;
* :mod:`.arrays`: :class:`CifarArrays`, the dataset as CPU tensors;
* :mod:`.device`: normalisation, augmentation and batches on the training device.
"""

from .arrays import CifarArrays
from .cache import CACHE_DIR, CACHE_VERSION, DataCacheWarning
from .device import NORMALIZATIONS, BatchStream, Normalizer, augment_batch, eval_batches
from .loading import load_cifar
from .sources import DATA_ENV, IMAGE_SUFFIXES, SOURCES, DatasetNotFoundError, detect_source, resolve_data_root

__all__ = [
    "CifarArrays", "CACHE_DIR", "CACHE_VERSION", "DataCacheWarning", "NORMALIZATIONS", "BatchStream", "Normalizer",
    "augment_batch", "eval_batches", "load_cifar", "DATA_ENV", "IMAGE_SUFFIXES", "SOURCES", "DatasetNotFoundError",
    "detect_source", "resolve_data_root",
]
