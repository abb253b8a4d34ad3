"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from resnetlab.testing import fabricate_cifar


@pytest.fixture
def one_torch_thread():
    """Run a test with one torch thread: on a small, shared CPU two OpenMP threads on tiny
    tensors are many times slower than one. Use with ``pytestmark = usefixtures(...)``."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

# --- data fixtures (resnetlab.data): tiny fabricated CIFAR copies in the real on-disk formats


@pytest.fixture
def cifar_pickles(tmp_path: Path) -> Path:
    """Data root holding a fake ``cifar-10-batches-py`` (200 train / 50 test images)."""
    return fabricate_cifar(tmp_path / "pickles", "cifar10", "pickle", n_train=200, n_test=50)


@pytest.fixture
def cifar100_pickles(tmp_path: Path) -> Path:
    """Data root holding a fake ``cifar-100-python`` (300 train / 100 test images)."""
    return fabricate_cifar(tmp_path / "pickles100", "cifar100", "pickle", n_train=300, n_test=100)


@pytest.fixture
def cifar_folder(tmp_path: Path) -> Path:
    """Data root holding a fake image folder ``cifar10/{train,test}/<class>/*.png`` (100/30)."""
    return fabricate_cifar(tmp_path / "folder", "cifar10", "folder", n_train=100, n_test=30)
