"""Datasets: IDX and CIFAR on-disk formats read back from files generated here, the real offline
Fashion-MNIST, seeded subsets, symmetric label noise statistics, statistics, missing-data errors."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from rstsweep.errors import RstError
from rstsweep.trainers import data
from rstsweep.trainers.data import load_data

torch.set_num_threads(1)


# --------------------------------------------------------------------------- file generators
def write_idx(path: Path, array: np.ndarray) -> None:
    """IDX: magic 0x00000800 | rank (uint8 data), big-endian int32 dims, then the bytes."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(
        f">{array.ndim}i", *array.shape
    )
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def index_coded(n: int, size: int = 4) -> np.ndarray:
    """n images whose first two pixels hold the index (low byte, high byte)."""
    images = np.zeros((n, size, size), dtype=np.uint8)
    images[:, 0, 0] = np.arange(n) % 256
    images[:, 0, 1] = np.arange(n) // 256
    return images


def decode_index(images: torch.Tensor) -> np.ndarray:
    flat = images.reshape(len(images), -1).numpy().astype(np.int64)
    return flat[:, 0] + 256 * flat[:, 1]


def make_idx_dataset(
    directory: Path, n_train: int, n_test: int, classes: int = 10, seed: int = 0
) -> dict:
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte.gz": index_coded(n_train),
        "train-labels-idx1-ubyte.gz": rng.integers(0, classes, n_train).astype(np.uint8),
        "t10k-images-idx3-ubyte.gz": index_coded(n_test),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, classes, n_test).astype(np.uint8),
    }
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        write_idx(directory / name, array)
    return arrays


def write_pickle(path: Path, obj: dict) -> None:
    with open(path, "wb") as fh:
        pickle.dump(obj, fh)


def make_cifar10(root: Path, per_batch: int = 6, n_test: int = 5) -> tuple[np.ndarray, list[int]]:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    rows = rng.integers(0, 256, (5 * per_batch + n_test, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, len(rows))]
    for b in range(5):
        sl = slice(b * per_batch, (b + 1) * per_batch)
        write_pickle(folder / f"data_batch_{b + 1}", {"data": rows[sl], "labels": labels[sl]})
    write_pickle(
        folder / "test_batch", {"data": rows[5 * per_batch :], "labels": labels[5 * per_batch :]}
    )
    write_pickle(folder / "batches.meta", {"label_names": [f"c{i}" for i in range(10)]})
    return rows, labels


def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """No network and no system/cache copies: point both defaults into tmp_path."""
    calls: list[str] = []

    def no_download(dataset: str, root: Path) -> None:
        calls.append(dataset)
        raise OSError("network is unreachable")

    monkeypatch.setattr(data, "_download", no_download)
    monkeypatch.setattr(data, "SYSTEM_FASHION_MNIST", tmp_path / "system")
    monkeypatch.setattr(data, "CACHE_DIR", tmp_path / "cache")
    return calls


# --------------------------------------------------------------------------- Fashion-MNIST / IDX
def test_idx_files_read_back_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    offline(monkeypatch, tmp_path)
    arrays = make_idx_dataset(tmp_path / "fm", 50, 20)
    bundle = load_data("fashion-mnist", data_dir=tmp_path / "fm")
    assert bundle.train_images.dtype == torch.uint8 and bundle.train_labels.dtype == torch.int64
    assert bundle.train_images.shape == (50, 1, 4, 4) and bundle.test_images.shape == (20, 1, 4, 4)
    assert np.array_equal(bundle.train_images[:, 0].numpy(), arrays["train-images-idx3-ubyte.gz"])
    assert np.array_equal(bundle.train_labels.numpy(), arrays["train-labels-idx1-ubyte.gz"])
    assert np.array_equal(bundle.test_labels.numpy(), arrays["t10k-labels-idx1-ubyte.gz"])
    assert (bundle.num_classes, bundle.in_channels, bundle.image_size) == (10, 1, 4)


def test_torchvision_layout_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    offline(monkeypatch, tmp_path)
    make_idx_dataset(tmp_path / "d" / "FashionMNIST" / "raw", 12, 6)
    assert load_data("fashion-mnist", data_dir=tmp_path / "d").n_train == 12


@pytest.mark.skipif(not data.SYSTEM_FASHION_MNIST.is_dir(), reason="dataset-fashion-mnist missing")
def test_real_fashion_mnist_offline() -> None:
    bundle = load_data("fashion-mnist")
    assert bundle.train_images.shape == (60000, 1, 28, 28)
    assert bundle.test_images.shape == (10000, 1, 28, 28)
    # Fashion-MNIST is balanced: 6000 / 1000 images per class
    assert torch.equal(torch.bincount(bundle.train_labels), torch.full((10,), 6000))
    assert torch.equal(torch.bincount(bundle.test_labels), torch.full((10,), 1000))
    # the commonly quoted normalisation constants of Fashion-MNIST
    assert bundle.mean.item() == pytest.approx(0.2860, abs=1e-4)
    assert bundle.std.item() == pytest.approx(0.3530, abs=1e-4)


def test_mean_std_match_numpy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    offline(monkeypatch, tmp_path)
    rows, _ = make_cifar10(tmp_path)
    bundle = load_data("cifar10", data_dir=tmp_path)
    train = rows[:30].reshape(30, 3, 32, 32) / 255.0
    assert np.allclose(bundle.mean.numpy(), train.mean(axis=(0, 2, 3)), atol=1e-6)
    assert np.allclose(bundle.std.numpy(), train.std(axis=(0, 2, 3)), atol=1e-6)


# --------------------------------------------------------------------------- CIFAR on-disk format
def test_cifar10_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = offline(monkeypatch, tmp_path)
    rows, labels = make_cifar10(tmp_path)
    for root in (tmp_path, tmp_path / "cifar-10-batches-py"):  # parent dir or the folder itself
        bundle = load_data("cifar10", data_dir=root)
        assert bundle.train_images.shape == (30, 3, 32, 32) and bundle.test_images.shape == (
            5,
            3,
            32,
            32,
        )
        assert bundle.num_classes == 10
        # CIFAR rows are 1024 red, 1024 green, 1024 blue values, each row-major
        i, c, y, x = 13, 2, 5, 30
        assert bundle.train_images[i, c, y, x].item() == rows[i, c * 1024 + y * 32 + x]
        assert bundle.test_images[4, 1, 31, 0].item() == rows[34, 1024 + 31 * 32]
        assert bundle.train_labels.tolist() == labels[:30]
        assert bundle.test_labels.tolist() == labels[30:]
    assert calls == []  # files present: no download attempted


def test_cifar100_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    offline(monkeypatch, tmp_path)
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(2)
    train, test = (
        rng.integers(0, 256, (8, 3072), dtype=np.uint8),
        rng.integers(0, 256, (4, 3072), dtype=np.uint8),
    )
    fine, coarse = [0, 99, 5, 7, 42, 3, 3, 1], [0, 19, 1, 1, 8, 0, 0, 0]
    write_pickle(folder / "train", {"data": train, "fine_labels": fine, "coarse_labels": coarse})
    write_pickle(
        folder / "test", {"data": test, "fine_labels": [9, 8, 7, 6], "coarse_labels": [1] * 4}
    )
    write_pickle(
        folder / "meta",
        {"fine_label_names": [str(i) for i in range(100)], "coarse_label_names": []},
    )
    bundle = load_data("cifar100", data_dir=tmp_path)
    assert bundle.num_classes == 100
    assert bundle.train_labels.tolist() == fine  # fine labels, not coarse
    assert bundle.test_labels.tolist() == [9, 8, 7, 6]
    assert np.array_equal(bundle.test_images.reshape(4, -1).numpy(), test)


# --------------------------------------------------------------------------- subsets and noise
def test_subsets_are_seeded_and_prefix_stable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    offline(monkeypatch, tmp_path)
    make_idx_dataset(tmp_path, 500, 100)

    def indices(**kw) -> tuple[set, set]:
        b = load_data("fashion-mnist", data_dir=tmp_path, **kw)
        return set(decode_index(b.train_images)), set(decode_index(b.test_images))

    tr_a, te_a = indices(train_subset=100, test_subset=30, seed=4)
    tr_b, te_b = indices(train_subset=100, test_subset=30, seed=4)
    tr_c, _ = indices(train_subset=100, seed=5)
    tr_big, _ = indices(train_subset=200, seed=4)
    assert tr_a == tr_b and te_a == te_b and len(tr_a) == 100 and len(te_a) == 30
    assert tr_a != tr_c
    assert tr_a < tr_big  # a smaller subset lies inside a larger one
    assert tr_a != set(range(100))  # random, not the first 100


def test_label_noise_statistics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    offline(monkeypatch, tmp_path)
    n, eta = 20000, 0.3
    arrays = make_idx_dataset(tmp_path, n, 50)
    clean = arrays["train-labels-idx1-ubyte.gz"].astype(np.int64)
    noisy = load_data("fashion-mnist", data_dir=tmp_path, label_noise=eta, seed=1)
    changed = noisy.train_labels.numpy() != clean
    # flipped labels always change class, so the changed fraction is eta itself (not eta*9/10)
    sigma = np.sqrt(eta * (1 - eta) / n)
    assert abs(changed.mean() - eta) < 4 * sigma
    # the new class is uniform over the 9 others: offsets (new - old) mod 10 take values 1..9
    offsets = (noisy.train_labels.numpy()[changed] - clean[changed]) % 10
    counts = np.bincount(offsets, minlength=10)
    assert counts[0] == 0
    expected = changed.sum() / 9
    assert np.all(np.abs(counts[1:] - expected) < 5 * np.sqrt(expected))
    assert np.array_equal(noisy.test_labels.numpy(), arrays["t10k-labels-idx1-ubyte.gz"])
    again = load_data("fashion-mnist", data_dir=tmp_path, label_noise=eta, seed=1)
    other = load_data("fashion-mnist", data_dir=tmp_path, label_noise=eta, seed=2)
    assert torch.equal(again.train_labels, noisy.train_labels)
    assert not torch.equal(other.train_labels, noisy.train_labels)
    # independent of the subset: a kept example has the same noisy label as in the full set
    sub = load_data("fashion-mnist", data_dir=tmp_path, label_noise=eta, seed=1, train_subset=700)
    idx = decode_index(sub.train_images)
    assert np.array_equal(sub.train_labels.numpy(), noisy.train_labels.numpy()[idx])


def test_two_class_noise_flips_to_the_other_class() -> None:
    labels = np.array([0, 1] * 500)
    noisy = data.noisy_labels(labels, 1.0 - 1e-9, 2, seed=0)
    assert np.array_equal(noisy, 1 - labels)
    assert np.array_equal(data.noisy_labels(labels, 0.0, 2, seed=0), labels)


# --------------------------------------------------------------------------- user errors
def test_missing_fashion_mnist_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = offline(monkeypatch, tmp_path)
    with pytest.raises(RstError) as info:
        load_data("fashion-mnist")
    message = str(info.value)
    assert "\n" not in message and calls == ["fashion-mnist"]
    assert str(tmp_path / "system") in message
    assert "apt-get install dataset-fashion-mnist" in message and "--data-dir" in message
    assert "network is unreachable" in message


def test_missing_cifar_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    offline(monkeypatch, tmp_path)
    with pytest.raises(
        RstError, match=r"cifar100 not found in .*cifar-100-python.*--data-dir"
    ) as info:
        load_data("cifar100", data_dir=tmp_path / "nowhere")
    assert "\n" not in str(info.value)
    with pytest.raises(RstError, match=r"imagenet not found.*train/ and val/"):
        load_data("imagenet", data_dir=tmp_path)


def test_bad_arguments_are_user_errors() -> None:
    with pytest.raises(RstError, match=r"unknown dataset 'mnist'.*fashion-mnist, cifar10"):
        load_data("mnist")
    with pytest.raises(RstError, match=r"label_noise: 1.5 is not in \[0, 1\)"):
        load_data("fashion-mnist", label_noise=1.5)


def test_ensure_dataset_finds_without_reading_and_fails_like_load_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = offline(monkeypatch, tmp_path)
    make_cifar10(tmp_path / "data")
    assert (
        data.ensure_dataset("cifar10", tmp_path / "data")
        == tmp_path / "data" / "cifar-10-batches-py"
    )
    assert calls == []  # present: no download attempted
    (tmp_path / "imagenet" / "train").mkdir(parents=True)
    (tmp_path / "imagenet" / "val").mkdir()
    assert data.ensure_dataset("imagenet", tmp_path / "imagenet") == tmp_path / "imagenet"
    with pytest.raises(RstError, match=r"^dataset: fashion-mnist not found in .*--data-dir"):
        data.ensure_dataset("fashion-mnist")
    assert calls == ["fashion-mnist"]  # missing: one download attempt, then the one-line error
    with pytest.raises(RstError, match=r"unknown dataset 'mnist'"):
        data.ensure_dataset("mnist")
