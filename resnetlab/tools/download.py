"""``python -m resnetlab download``: fetch CIFAR through torchvision and decode it into the cache."""

from __future__ import annotations

import argparse
import os
import sys

from ..data import CifarArrays, DatasetNotFoundError, load_cifar


def download(dataset: str = "cifar10", data: str | os.PathLike | None = None) -> CifarArrays:
    """``dataset`` from the data root ``data`` (see :func:`resnetlab.data.resolve_data_root`),
    downloaded by torchvision first when there is no copy; decoded into the cache either way.
    Raises :class:`~resnetlab.data.DatasetNotFoundError` when it can be neither found nor
    downloaded."""
    return load_cifar(dataset, data, download=True)


def main(args: argparse.Namespace) -> int:
    """The command: ``args.dataset`` and ``args.data``; exit status 2 when it fails."""
    try:
        data = download(args.dataset, args.data)
    except DatasetNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{data.source}: {len(data.train_labels)} training and {len(data.test_labels)} test images, cached")
    return 0
