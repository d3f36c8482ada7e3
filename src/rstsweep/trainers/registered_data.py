"""A registered data set's arrays (`core.registry.register_dataset`, usually from a plugin): its
loader called, and what it returned checked against what it was registered with, so that a plan's
step count (from `train_size`) and the probe's shapes (from `shape`) are the ones the trial trains
with. Each violation of the loader contract is a one-line RstError naming the data set."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rstsweep.core import registry
from rstsweep.errors import RstError

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]


def _images(name: str, part: str, value: object, shape: tuple[int, int, int]) -> np.ndarray:
    images = np.asarray(value)
    if images.dtype != np.uint8 or images.ndim != 4 or tuple(images.shape[1:]) != shape:
        raise RstError(
            f"dataset: {name}: its loader's {part}_x is {images.dtype} {tuple(images.shape)}; "
            f"expected uint8 N×C×H×W with (C, H, W) = {shape}"
        )
    return images


def _labels(name: str, part: str, value: object, n: int, num_classes: int) -> np.ndarray:
    labels = np.asarray(value)
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
        raise RstError(
            f"dataset: {name}: its loader's {part}_y is {labels.dtype} {labels.shape}; "
            f"expected {n} integer labels"
        )
    if n and (labels.min() < 0 or labels.max() >= num_classes):
        raise RstError(f"dataset: {name}: {part}_y has labels outside [0, {num_classes})")
    return labels.astype(np.int64)


def is_registered(name: str) -> bool:
    """Whether `name` is a registered (not a built-in) data set."""
    return name in registry.DATASETS


def load_registered(name: str, data_dir: Path | None) -> Arrays:
    """(train_x, train_y, test_x, test_y, num_classes) of registered data set `name`: images uint8
    N×C×H×W, labels int64, exactly `train_size` (and `test_size`, when registered) examples."""
    entry = registry.DATASETS[name]
    try:
        train_x, train_y, test_x, test_y = entry.load(data_dir)
    except RstError:
        raise
    except Exception as exc:  # user code: one line naming the data set, as for a plugin import
        raise RstError(f"dataset: {name}: its loader failed: {type(exc).__name__}: {exc}") from exc
    train_x = _images(name, "train", train_x, entry.shape)
    test_x = _images(name, "test", test_x, entry.shape)
    sizes = (("train", train_x, entry.train_size), ("test", test_x, entry.test_size))
    for part, images, want in sizes:
        if want is not None and len(images) != want:
            raise RstError(
                f"dataset: {name}: its loader returned {len(images)} {part} images; it was "
                f"registered with {part}_size={want}"
            )
    return (
        train_x,
        _labels(name, "train", train_y, len(train_x), entry.num_classes),
        test_x,
        _labels(name, "test", test_y, len(test_x), entry.num_classes),
        entry.num_classes,
    )
