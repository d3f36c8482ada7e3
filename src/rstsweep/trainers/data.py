"""Datasets for the trainer: `load_data(...) -> DataBundle`, the whole train/test split as uint8
N×C×H×W tensors on the training device (augmentation then runs there, see `augment.py`).

Where each dataset is looked for, in order:
- fashion-mnist: the IDX files (`train-images-idx3-ubyte[.gz]` ...) in `data_dir` (or its
  `FashionMNIST/raw`); without `data_dir`: `/usr/share/datasets/fashion-mnist/` (Debian package
  `dataset-fashion-mnist`), then `~/.cache/rstsweep/FashionMNIST/raw`; last, torchvision's download.
- cifar10 / cifar100: `cifar-10-batches-py` / `cifar-100-python` in `data_dir` (default
  `~/.cache/rstsweep`), read directly (CIFAR's pickle format; no md5 pass); if absent, torchvision's
  CIFAR10/CIFAR100 download into that directory.
- imagenet: torchvision ImageFolder `data_dir/train` and `data_dir/val`, streamed from the files
  by DataLoader workers (`imagefolder.py`: a `FolderData` instead of a DataBundle; any size).
- a registered data set (`core.registry`, from a plugin): its loader (`registered_data.py`).

Subsets and label noise are seeded and independent of each other: the noisy label of training
example i depends only on (seed, i), never on the subset size; test labels are never noised.
"""

from __future__ import annotations

import gzip
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from rstsweep.core.catalog import DATASETS, dataset_names
from rstsweep.errors import RstError
from rstsweep.trainers.imagefolder import FolderData, folder_root, load_folder
from rstsweep.trainers.registered_data import is_registered, load_registered

SYSTEM_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
CACHE_DIR = Path("~/.cache/rstsweep").expanduser()

# Independent streams of one seed (numpy SeedSequence spawn keys).
_SUBSET_TRAIN, _SUBSET_TEST, _NOISE = 1, 2, 3


@dataclass
class DataBundle:
    """Train and test split on one device. Images are uint8 N×C×H×W, labels int64 N.
    `mean`/`std` are float32 (C,) tensors on the same device, in [0, 1] pixel units, computed from
    the training images actually used (after the subset)."""

    name: str
    train_images: Tensor
    train_labels: Tensor
    test_images: Tensor
    test_labels: Tensor
    num_classes: int
    mean: Tensor
    std: Tensor

    @property
    def in_channels(self) -> int:
        return int(self.train_images.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.train_images.shape[-1])

    @property
    def device(self) -> torch.device:
        return self.train_images.device

    @property
    def n_train(self) -> int:
        return int(self.train_images.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.test_images.shape[0])


@dataclass
class _Arrays:
    """Host-side split as numpy (N×C×H×W uint8, N int64) before subsets, noise and the device."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    num_classes: int


# --------------------------------------------------------------------------- download (patchable)
def _download(dataset: str, root: Path) -> None:
    """Fetch `dataset` into `root` with torchvision; any failure propagates (callers turn it into a
    one-line RstError). Kept a separate function so tests can forbid network access."""
    import torchvision  # slow import: only when a download is really needed

    root.mkdir(parents=True, exist_ok=True)
    cls = {
        "fashion-mnist": torchvision.datasets.FashionMNIST,
        "cifar10": torchvision.datasets.CIFAR10,
        "cifar100": torchvision.datasets.CIFAR100,
    }[dataset]
    cls(str(root), train=True, download=True)
    cls(str(root), train=False, download=True)


def _missing(dataset: str, looked: list[Path], how: str, err: BaseException | None) -> RstError:
    where = ", ".join(str(p) for p in looked)
    why = (
        f"; download failed: {type(err).__name__}: {str(err).splitlines()[0][:120]}" if err else ""
    )
    return RstError(f"dataset: {dataset} not found in {where}{why}; {how}")


# --------------------------------------------------------------------------- Fashion-MNIST (IDX)
_IDX_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}


def _find_idx(directory: Path, stem: str) -> Path | None:
    for path in (directory / f"{stem}.gz", directory / stem):
        if path.is_file():
            return path
    return None


def _read_idx(path: Path) -> np.ndarray:
    """An IDX file (big-endian header: magic with the rank in its last byte, then the dims)."""
    if path.suffix == ".gz":
        with gzip.open(path) as fh:
            raw = fh.read()
    else:
        raw = path.read_bytes()
    rank = raw[3]
    dims = np.frombuffer(raw, dtype=">i4", count=rank, offset=4)
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * rank).reshape(
        tuple(int(d) for d in dims)
    )


def _idx_dir(candidates: list[Path]) -> Path | None:
    for directory in candidates:
        if all(_find_idx(directory, stem) for stem in _IDX_FILES.values()):
            return directory
    return None


def _fashion_mnist_dir(data_dir: Path | None) -> Path:
    """The directory holding the four IDX files (downloading them if possible), or RstError."""
    if data_dir is not None:
        candidates, download_root = [data_dir, data_dir / "FashionMNIST" / "raw"], data_dir
    else:
        cache_raw = CACHE_DIR / "FashionMNIST" / "raw"
        candidates, download_root = [SYSTEM_FASHION_MNIST, cache_raw], CACHE_DIR
    found = _idx_dir(candidates)
    if found is None:
        error: BaseException | None = None
        try:
            _download("fashion-mnist", download_root)
        except Exception as exc:  # no network, proxy, disk full: all become one line
            error = exc
        found = _idx_dir(candidates)
        if found is None:
            how = (
                "install it (apt-get install dataset-fashion-mnist) "
                "or pass --data-dir DIR with the IDX files"
            )
            raise _missing("fashion-mnist", candidates, how, error)
    return found


def _load_fashion_mnist(data_dir: Path | None) -> _Arrays:
    found = _fashion_mnist_dir(data_dir)
    arrays = {key: _read_idx(_find_idx(found, stem)) for key, stem in _IDX_FILES.items()}  # type: ignore[arg-type]
    return _Arrays(
        train_x=arrays["train_x"][:, None],
        train_y=arrays["train_y"].astype(np.int64),
        test_x=arrays["test_x"][:, None],
        test_y=arrays["test_y"].astype(np.int64),
        num_classes=10,
    )


# --------------------------------------------------------------------------- CIFAR (python pickles)
_CIFAR = {
    # dataset: (folder, train files, test files, label key, meta file, meta key)
    "cifar10": (
        "cifar-10-batches-py",
        [f"data_batch_{i}" for i in range(1, 6)],
        ["test_batch"],
        "labels",
        "batches.meta",
        "label_names",
    ),
    "cifar100": (
        "cifar-100-python",
        ["train"],
        ["test"],
        "fine_labels",
        "meta",
        "fine_label_names",
    ),
}


def _read_cifar_files(
    folder: Path, files: list[str], label_key: str
) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for name in files:
        with open(folder / name, "rb") as fh:
            entry = pickle.load(fh, encoding="latin1")
        images.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.append(np.asarray(entry[label_key], dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)


def _cifar_folder(dataset: str, data_dir: Path | None) -> Path:
    """The extracted CIFAR folder (downloading it if possible), or RstError."""
    folder_name, train_files, test_files, _, meta_file, _ = _CIFAR[dataset]
    root = data_dir if data_dir is not None else CACHE_DIR
    # accept both the parent directory (torchvision's `root`) and the extracted folder itself
    candidates = [root / folder_name, root]
    needed = [*train_files, *test_files, meta_file]

    def present() -> Path | None:
        return next((c for c in candidates if all((c / f).is_file() for f in needed)), None)

    folder = present()
    if folder is None:
        error: BaseException | None = None
        try:
            _download(dataset, root)
        except Exception as exc:
            error = exc
        folder = present()
        if folder is None:
            how = f"pass --data-dir DIR containing {folder_name}/ (torchvision's CIFAR layout)"
            raise _missing(dataset, candidates[:1], how, error)
    return folder


def _load_cifar(dataset: str, data_dir: Path | None) -> _Arrays:
    _, train_files, test_files, label_key, meta_file, meta_key = _CIFAR[dataset]
    folder = _cifar_folder(dataset, data_dir)
    with open(folder / meta_file, "rb") as fh:
        num_classes = len(pickle.load(fh, encoding="latin1")[meta_key])
    train_x, train_y = _read_cifar_files(folder, train_files, label_key)
    test_x, test_y = _read_cifar_files(folder, test_files, label_key)
    return _Arrays(train_x, train_y, test_x, test_y, num_classes)


# --------------------------------------------------------------------------- subsets, noise, stats
def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, stream]))


def subset_indices(n: int, size: int | None, seed: int, stream: int) -> np.ndarray:
    """The first `size` entries of a seeded permutation of range(n), sorted (prefix-stable: a
    smaller subset is contained in a larger one for the same seed). None: all of them."""
    if size is None or size >= n:
        return np.arange(n)
    return np.sort(_rng(seed, stream).permutation(n)[:size])


def noisy_labels(labels: np.ndarray, eta: float, num_classes: int, seed: int) -> np.ndarray:
    """Symmetric label noise: each label is replaced with probability `eta` by a class drawn
    uniformly from the *other* num_classes - 1 classes. Both draws are made for every example, so
    the result for example i depends only on (seed, i, labels[i])."""
    if eta <= 0.0:
        return labels.copy()
    rng = _rng(seed, _NOISE)
    flip = rng.random(len(labels)) < eta
    offset = rng.integers(1, num_classes, size=len(labels))  # 1..C-1: never the same class
    return np.where(flip, (labels + offset) % num_classes, labels)


def channel_stats(images: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel mean and std (population) in [0, 1] units of a uint8 N×C×H×W tensor, exact,
    from a 256-bin histogram per channel (no float copy of the whole set)."""
    values = torch.arange(256, dtype=torch.float64, device=images.device) / 255.0
    means, stds = [], []
    for c in range(images.shape[1]):  # C <= 3: a loop over channels, not samples
        counts = torch.bincount(images[:, c].reshape(-1), minlength=256).to(torch.float64)
        total = counts.sum()
        mean = (counts * values).sum() / total
        var = (counts * (values - mean) ** 2).sum() / total
        means.append(mean)
        stds.append(var.sqrt().clamp_min(1e-6))
    return torch.stack(means).float(), torch.stack(stds).float()


def _resolve_device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _dataset_key(dataset: str) -> str:
    key = dataset.strip().lower()
    if key not in DATASETS and not is_registered(key):
        raise RstError(f"dataset: unknown dataset {dataset!r}; known: {', '.join(dataset_names())}")
    return key


def ensure_dataset(dataset: str, data_dir: str | Path | None = None) -> Path:
    """Find `dataset`'s files where `load_data` would (downloading them once if they are missing
    and a download is possible) without reading them; RstError naming where it looked otherwise.
    The sweep driver calls it before starting any trial, so a missing data set fails in seconds."""
    key = _dataset_key(dataset)
    root = Path(data_dir).expanduser() if data_dir is not None else None
    if key == "fashion-mnist":
        return _fashion_mnist_dir(root)
    if key in _CIFAR:
        return _cifar_folder(key, root)
    # a registered data set's loader finds its own files (checked when a trial loads them)
    return folder_root(root) if key == "imagenet" else (root or Path.cwd())


def load_data(
    dataset: str,
    *,
    data_dir: str | Path | None = None,
    device: str | torch.device = "cpu",
    train_subset: int | None = None,
    test_subset: int | None = None,
    seed: int = 0,
    label_noise: float = 0.0,
    image_size: int | None = None,
    loader_workers: int | None = None,
) -> DataBundle | FolderData:
    """Load `dataset` onto `device` (see the module docstring for where files are looked for).

    `train_subset`/`test_subset` keep a seeded random subset; `label_noise` = η applies symmetric
    noise to the training labels only; `image_size` and `loader_workers` apply to imagenet only
    (streamed; default 224 px and `imagefolder.default_workers()`).
    """
    key = _dataset_key(dataset)
    if not 0.0 <= label_noise < 1.0:
        raise RstError(f"label_noise: {label_noise} is not in [0, 1)")
    root = Path(data_dir).expanduser() if data_dir is not None else None
    if key == "imagenet":
        return _stream_imagenet(
            root, device, train_subset, test_subset, seed, label_noise, image_size, loader_workers
        )
    if is_registered(key):
        arrays = _Arrays(*load_registered(key, root))
    else:
        arrays = _load_fashion_mnist(root) if key == "fashion-mnist" else _load_cifar(key, root)

    labels = noisy_labels(arrays.train_y, label_noise, arrays.num_classes, seed)
    train_idx = subset_indices(len(labels), train_subset, seed, _SUBSET_TRAIN)
    test_idx = subset_indices(len(arrays.test_y), test_subset, seed, _SUBSET_TEST)
    dev = _resolve_device(device)

    def put(array: np.ndarray) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(dev)

    train_images = put(arrays.train_x[train_idx])
    mean, std = channel_stats(train_images)
    return DataBundle(
        name=key,
        train_images=train_images,
        train_labels=put(labels[train_idx]),
        test_images=put(arrays.test_x[test_idx]),
        test_labels=put(arrays.test_y[test_idx]),
        num_classes=arrays.num_classes,
        mean=mean,
        std=std,
    )


def _stream_imagenet(
    root: Path | None,
    device: str | torch.device,
    train_subset: int | None,
    test_subset: int | None,
    seed: int,
    label_noise: float,
    image_size: int | None,
    loader_workers: int | None,
) -> FolderData:
    """ImageNet streamed from its ImageFolder, with the same subset and noise rules as above."""

    def train_idx(n: int, labels: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
        noisy = noisy_labels(labels, label_noise, num_classes, seed)
        return subset_indices(n, train_subset, seed, _SUBSET_TRAIN), noisy

    return load_folder(
        root,
        device=_resolve_device(device),
        train_idx_fn=train_idx,
        test_idx_fn=lambda n: subset_indices(n, test_subset, seed, _SUBSET_TEST),
        seed=seed,
        image_size=image_size,
        loader_workers=loader_workers,
    )
