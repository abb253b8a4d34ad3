"""resnetlab.tools.bench: runs end to end on fabricated data (no timing is asserted)."""

import json

import numpy as np
import pytest
import torch

from resnetlab.tools.bench import PeakMemory, PickleCIFAR10, standard_datasets
from resnetlab.cli import main
from resnetlab.data import load_cifar
from resnetlab.testing import fabricate_cifar

FIELDS = ("images_per_s", "step_ms", "peak_memory_bytes", "peak_memory_kind", "projected_train_s",
          "projected_eval_s", "projected_total_s", "eval_s_per_10k", "precision", "channels_last")


def test_bench_runs_both_pipelines(tmp_path, capsys):
    out_json = tmp_path / "bench.json"
    rc = main(["bench", "--fake", "--fake-images", "256", "--models", "resnet8", "--batch-size", "32",
               "--warmup", "1", "--steps", "2", "--workers", "1", "--eval-images", "64", "--device", "cpu",
               "--json", str(out_json)])
    assert rc == 0
    out = capsys.readouterr().out
    for text in ("images/s", "resnetlab", "standard", "ratio resnetlab/standard", "peak memory", "CPU peak RSS",
                 "64k train", "PickleCIFAR10", "fabricated", torch.__version__):
        assert text in out, text
    blob = json.loads(out_json.read_text())
    for key in ("date", "device", "torch", "torchvision", "cpu", "data", "standard_dataset"):
        assert blob["environment"][key], key
    rows = {r["pipeline"]: r for r in blob["results"]}
    assert set(rows) == {"resnetlab", "standard"}
    for r in rows.values():
        for key in FIELDS:
            assert key in r, key
        assert r["images_per_s"] > 0 and r["projected_total_s"] > r["projected_train_s"] > 0
        assert np.isfinite(r["final_loss"])
    assert rows["standard"]["workers"] == 1 and rows["standard"]["precision"] == "fp32"
    assert blob["ratios"]["resnet8"] == pytest.approx(rows["resnetlab"]["images_per_s"] / rows["standard"]["images_per_s"])


def test_bench_memory_mode_on_a_small_net(tmp_path, capsys):
    out_json = tmp_path / "mem.json"
    rc = main(["bench", "--memory", "--memory-models", "resnet8", "--memory-batch", "8", "--checkpoint-segments", "0,1",
               "--device", "cpu", "--json", str(out_json)])
    assert rc == 0
    assert "CPU peak RSS" in capsys.readouterr().out
    rows = json.loads(out_json.read_text())["memory"]
    assert [r["activation_checkpointing"] for r in rows] == [0, 1]
    assert all(r["peak_memory_bytes"] is not None and "CPU" in r["peak_memory_kind"] for r in rows)


def test_bench_fused_mode_times_both_sides(tmp_path, capsys):
    out_json = tmp_path / "fused.json"
    rc = main(["bench", "--fused", "2", "--fake", "--fake-images", "256", "--models", "resnet8", "--batch-size", "16",
               "--warmup", "1", "--steps", "1", "--device", "cpu", "--json", str(out_json)])
    assert rc == 0
    assert "fused/separate" in capsys.readouterr().out
    (row,) = json.loads(out_json.read_text())["fused"]
    assert row["members"] == 2 and row["separate_images_per_s"] > 0 and row["fused_images_per_s"] > 0
    assert row["speedup"] == pytest.approx(row["fused_images_per_s"] / row["separate_images_per_s"])


def test_bench_rejects_unknown_pipeline(capsys):
    assert main(["bench", "--fake", "--pipelines", "nope", "--device", "cpu"]) == 2


def test_peak_memory_sees_a_large_allocation():
    with PeakMemory(torch.device("cpu")) as meter:
        x = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
        del x
    assert meter.peak_bytes >= 48 * 2**20


@pytest.mark.parametrize("fmt", ["pickle", "folder"])
def test_the_standard_pipeline_sees_the_same_images(tmp_path, fmt):
    root = fabricate_cifar(tmp_path / "d", "cifar10", fmt, n_train=40, n_test=10)
    arrays = load_cifar("cifar10", root, progress=False)
    train, test, note = standard_datasets(arrays, root)
    assert isinstance(train, PickleCIFAR10) and "PickleCIFAR10" in note
    assert len(train) == 40 and len(test) == 10
    assert np.array_equal(train.data, arrays.train_images.permute(0, 2, 3, 1).numpy())
    assert train.targets == arrays.train_labels.tolist()
    x, y = train[3]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and y == arrays.train_labels[3].item()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_cuda_step_never_waits_for_the_gpu():
    """The trainer's step (batch, augmentation, bf16 forward/backward, fused SGD) issues no
    host synchronisation: torch raises on one in sync-debug mode "error". The checked steps
    stay inside epoch 0 (8 batches of 128): the epoch boundary has its own test below."""
    from resnetlab.train import PAPER, build_trainer, learning_rate, train_step

    fake = fabricate_cifar_arrays(8 * 128)
    t = build_trainer("resnet8", fake, PAPER, device="cuda")
    assert torch.backends.cudnn.benchmark
    for it in range(2):  # the first steps allocate state (momentum buffers, cuDNN plans)
        train_step(t, *t.stream.batch(it), learning_rate(PAPER, it, warmup_end=0))
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for it in range(2, 7):
            assert t.stream.position(it)[0] == 0
            x, y = t.stream.batch(it)
            loss, out = train_step(t, x, y, learning_rate(PAPER, it, warmup_end=0))
            (out.argmax(1) != y).sum()
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_cuda_epoch_boundary_never_waits_for_the_gpu():
    """The permutations are on the device ahead of use: crossing epochs, and the block of
    epochs whose first use queues the next block, issue no host synchronisation."""
    from resnetlab.data.device import PERM_BLOCK_EPOCHS
    from resnetlab.train import PAPER, build_trainer

    t = build_trainer("resnet8", fabricate_cifar_arrays(4 * 128), PAPER, device="cuda")
    t.stream.batch(0)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for it in (3, 4, 5, 4 * PERM_BLOCK_EPOCHS - 1, 4 * PERM_BLOCK_EPOCHS, 4 * PERM_BLOCK_EPOCHS + 1):
            t.stream.batch(it)
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_the_precomputed_permutations_are_the_per_epoch_ones():
    """Drawing the permutations a block of epochs at a time changes no batch: epoch e is still
    ``randperm(N)`` of a CPU generator seeded with (seed, e), from the start or after a resume."""
    from resnetlab.data import BatchStream, Normalizer
    from resnetlab.data.device import PERM_BLOCK_EPOCHS, _derived_seed

    fake = fabricate_cifar_arrays(40)
    norm = Normalizer("per_pixel_mean", fake.train_images)
    stream = BatchStream(fake.train_images, fake.train_labels, 10, 3, norm)
    per_epoch = stream.batches_per_epoch
    epochs = 2 * PERM_BLOCK_EPOCHS + 2
    for it in range(epochs * per_epoch):
        epoch, i = divmod(it, per_epoch)
        g = torch.Generator().manual_seed(_derived_seed(3, "epoch", epoch))
        want = torch.randperm(40, generator=g)[i * 10:(i + 1) * 10]
        assert torch.equal(stream.indices(it), want), it
    resumed = BatchStream(fake.train_images, fake.train_labels, 10, 3, norm)
    late = (PERM_BLOCK_EPOCHS + 3) * per_epoch + 1
    assert torch.equal(resumed.indices(late), stream.indices(late))
    assert len(stream._blocks) <= 2  # old blocks are let go


def fabricate_cifar_arrays(n=512):
    from resnetlab.data import CifarArrays
    from resnetlab.testing import CIFAR10_CLASSES, fabricate_images

    x, y = fabricate_images(n, 10)
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    return CifarArrays("cifar10", "fabricated", list(CIFAR10_CLASSES), x, y, x[:64], y[:64])
