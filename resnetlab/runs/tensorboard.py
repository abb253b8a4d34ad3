"""Optional: a recorded run's history as TensorBoard scalars, for readers who watch runs there.

``python -m resnetlab tensorboard --logdir tb`` then ``tensorboard --logdir tb``. It needs
the ``tensorboard`` package (``pip install 'resnetlab[tensorboard]'``); nothing else does.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable

#: history column -> TensorBoard tag
TAGS = {"train_error": "error/train", "test_error": "error/test", "train_loss": "loss/train",
        "test_loss": "loss/test", "lr": "lr"}


def export_tensorboard(records: Iterable[Any], logdir: str | Path, writer_class: Any = None) -> int:
    """Write each record's history under ``logdir/<run id>``; returns the number of runs."""
    if writer_class is None:
        try:
            from torch.utils.tensorboard import SummaryWriter as writer_class
        except ImportError as exc:
            raise RuntimeError("TensorBoard export needs the tensorboard package: "
                               "pip install 'resnetlab[tensorboard]'") from exc
    n = 0
    for rec in records:
        writer = writer_class(log_dir=str(Path(logdir) / rec.id))
        for row in rec.history.to_dict("records"):
            for column, tag in TAGS.items():
                value = row.get(column)
                if value is not None and math.isfinite(float(value)):
                    writer.add_scalar(tag, float(value), int(row["iteration"]))
        writer.close()
        n += 1
    return n


__all__ = ["TAGS", "export_tensorboard"]
