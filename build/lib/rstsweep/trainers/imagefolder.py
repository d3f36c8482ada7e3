"""Streamed ImageFolder data sets (ImageNet): `load_folder(...) -> FolderData`, batches decoded from
the image files by DataLoader worker processes, never the whole set in memory.

Layout: torchvision's ImageFolder, `data_dir/train/<class>/*` and `data_dir/val/<class>/*` (the
same classes). The recipe is the standard ResNet one (He et al. 2016; torchvision's reference
scripts): training images get RandomResizedCrop to `image_size` (scale 0.08-1, aspect 3/4-4/3) and
a horizontal flip with p = ½; evaluation resizes the short side to image_size·256/224 and takes the
centre image_size crop. Pixels are normalised with the usual ImageNet mean and std.

Determinism: an epoch's order is a permutation seeded by (seed, epoch) only, and each image's crop
and flip are drawn from a generator seeded by (seed, epoch, index): batches do not depend on the
number of DataLoader workers, and a resumed run sees the same batches. Under data parallelism each
worker loads only its contiguous part of every global batch (`augment.shard_slice`: the rule of
the in-memory path), so the workers' parts concatenate to the one-process batch.

Transfers: with CUDA the loader pins its batches and copies them with `non_blocking=True`; the
uint8 → float normalisation then runs on the device. Decoding is PIL on the CPU (no GPU decoder).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from rstsweep.core.catalog import steps_per_epoch
from rstsweep.errors import RstError
from rstsweep.trainers.augment import normalize, shard_slice

IMAGE_SIZE = 224
RESIZE_RATIO = 256 / 224  # evaluation: resize the short side to 256 for a 224 crop
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
_CROP_SCALE, _CROP_RATIO = (0.08, 1.0), (3 / 4, 4 / 3)


def folder_root(data_dir: Path | None) -> Path:
    """The ImageFolder root with train/ and val/, or RstError."""
    if data_dir is None or not (data_dir / "train").is_dir() or not (data_dir / "val").is_dir():
        looked = str(data_dir) if data_dir is not None else "(no --data-dir)"
        raise RstError(
            f"dataset: imagenet not found in {looked}; pass --data-dir DIR with ImageFolder "
            "subdirectories train/ and val/"
        )
    return data_dir


# torchvision's ImageFolder extensions; scanned here without importing torchvision (seconds)
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def _scan(root: Path) -> tuple[list[str], np.ndarray, list[str]]:
    """(paths, labels, classes) of an ImageFolder split, in torchvision's order: classes sorted,
    each class folder walked recursively in sorted order."""
    classes = sorted(entry.name for entry in os.scandir(root) if entry.is_dir())
    if not classes:
        raise RstError(f"dataset: imagenet at {root} has no class folders")
    paths, labels = [], []
    for label, name in enumerate(classes):
        for folder, _, files in sorted(os.walk(root / name, followlinks=True)):
            for file in sorted(files):
                if file.lower().endswith(IMG_EXTENSIONS):
                    paths.append(os.path.join(folder, file))
                    labels.append(label)
    return paths, np.asarray(labels, dtype=np.int64), classes


def crop_box(rng: np.random.Generator, width: int, height: int) -> tuple[int, int, int, int]:
    """RandomResizedCrop's box (left, top, w, h): 10 tries at a random area fraction and log-uniform
    aspect ratio, then the centre crop at the nearest allowed ratio (torchvision's algorithm)."""
    area = width * height
    log_ratio = (math.log(_CROP_RATIO[0]), math.log(_CROP_RATIO[1]))
    for _ in range(10):
        target = area * rng.uniform(*_CROP_SCALE)
        ratio = math.exp(rng.uniform(*log_ratio))
        w, h = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1)), w, h
    ratio = width / height
    if ratio < _CROP_RATIO[0]:
        w, h = width, round(width / _CROP_RATIO[0])
    elif ratio > _CROP_RATIO[1]:
        w, h = round(height * _CROP_RATIO[1]), height
    else:
        w, h = width, height
    return (width - w) // 2, (height - h) // 2, w, h


class _Images(torch.utils.data.Dataset):
    """Decodes one image per key (index, epoch): epoch ≥ 0 trains (crop + flip), -1 evaluates."""

    def __init__(self, paths: list[str], labels: np.ndarray, size: int, seed: int) -> None:
        self.paths, self.labels, self.size, self.seed = paths, labels, size, seed

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key: tuple[int, int]) -> tuple[Tensor, int]:
        from PIL import Image

        index, epoch = key
        with open(self.paths[index], "rb") as fh:
            image = Image.open(fh).convert("RGB")
        s = self.size
        if epoch >= 0:
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, epoch, index, 0xC0]))
            left, top, w, h = crop_box(rng, *image.size)
            image = image.resize((s, s), Image.BILINEAR, box=(left, top, left + w, top + h))
            if rng.random() < 0.5:
                image = image.transpose(Image.FLIP_LEFT_RIGHT)
        else:
            short = round(s * RESIZE_RATIO)
            scale = short / min(image.size)
            w, h = max(s, round(image.size[0] * scale)), max(s, round(image.size[1] * scale))
            image = image.resize((w, h), Image.BILINEAR)
            left, top = (w - s) // 2, (h - s) // 2
            image = image.crop((left, top, left + s, top + s))
        pixels = np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)
        return torch.from_numpy(np.ascontiguousarray(pixels)), int(self.labels[index])


@dataclass
class FolderData:
    """A streamed train/test split: file lists and labels on the host, batches on `device`.
    Offers what the trainer reads of a DataBundle (labels, sizes, classes, mean/std) plus
    `stream_train`/`stream_test`, which `augment.train_batches`/`test_batches` hand over to."""

    name: str
    train: _Images
    test: _Images
    train_labels: Tensor  # host int64 (the trainer only counts them)
    test_labels: Tensor
    num_classes: int
    mean: Tensor
    std: Tensor
    loader_workers: int

    in_channels = 3

    @property
    def image_size(self) -> int:
        return self.train.size

    @property
    def device(self) -> torch.device:
        return self.mean.device

    @property
    def n_train(self) -> int:
        return len(self.train)

    @property
    def n_test(self) -> int:
        return len(self.test)

    def stream_train(
        self,
        batch_size: int,
        augment: str,
        seed: int,
        epoch: int,
        shard: tuple[int, int] = (0, 1),
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """Worker `shard[0]`'s part of every training batch of `epoch` (drop_last as in-memory).
        `augment`: "basic" is the crop + flip recipe, "none" the evaluation transform."""
        if augment == "cutout":
            raise RstError("augment: cutout is for the in-memory data sets, not imagenet")
        n = len(self.train)
        key = epoch if augment == "basic" else -1
        perm = np.random.default_rng(np.random.SeedSequence([seed, epoch, 0x5EED])).permutation(n)
        batches = []
        for step in range(steps_per_epoch(n, batch_size)):
            part = perm[shard_slice(step * batch_size, min((step + 1) * batch_size, n), shard)]
            batches.append([(int(i), key) for i in part])
        return self._load(self.train, batches)

    def stream_test(self, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
        n = len(self.test)
        keys = [(i, -1) for i in range(n)]
        return self._load(self.test, [keys[i : i + batch_size] for i in range(0, n, batch_size)])

    def _load(
        self, images: _Images, batches: list[list[tuple[int, int]]]
    ) -> Iterator[tuple[Tensor, Tensor]]:
        on_cuda = self.device.type == "cuda"
        loader = torch.utils.data.DataLoader(
            images,
            batch_sampler=batches,
            num_workers=self.loader_workers,
            pin_memory=on_cuda,
            prefetch_factor=4 if self.loader_workers else None,
        )
        for x, y in loader:
            x = x.to(self.device, non_blocking=on_cuda)
            yield normalize(x, self.mean, self.std), y.to(self.device, non_blocking=on_cuda)


def default_workers() -> int:
    """DataLoader workers when the config names none: the CPUs this process may use, at most 8."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(8, cpus))


def load_folder(
    data_dir: Path | None,
    *,
    device: torch.device,
    train_idx_fn,  # (n_train, labels, num_classes) -> (indices, labels): data.py's subset/noise
    test_idx_fn,  # n_test -> indices
    seed: int,
    image_size: int | None,
    loader_workers: int | None,
) -> FolderData:
    """Scan `data_dir/train` and `data_dir/val` (no image is read here)."""
    root = folder_root(data_dir)
    train_paths, train_y, classes = _scan(root / "train")
    test_paths, test_y, val_classes = _scan(root / "val")
    if val_classes != classes:
        raise RstError(f"dataset: imagenet at {root}: train/ and val/ have different classes")
    train_idx, labels = train_idx_fn(len(train_paths), train_y, len(classes))
    test_idx = test_idx_fn(len(test_paths))
    size = image_size or IMAGE_SIZE
    train = _Images([train_paths[i] for i in train_idx], labels[train_idx], size, seed)
    test = _Images([test_paths[i] for i in test_idx], test_y[test_idx], size, seed)
    return FolderData(
        name="imagenet",
        train=train,
        test=test,
        train_labels=torch.from_numpy(np.ascontiguousarray(train.labels)),
        test_labels=torch.from_numpy(np.ascontiguousarray(test.labels)),
        num_classes=len(classes),
        mean=torch.tensor(MEAN, device=device),
        std=torch.tensor(STD, device=device),
        loader_workers=default_workers() if loader_workers is None else loader_workers,
    )
