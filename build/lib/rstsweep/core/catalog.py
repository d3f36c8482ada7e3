"""What the trainer knows by name, without importing torch: the model and dataset names, the
training-set sizes and the batching rule. The sweeper validates YAML and plans with these, and the
torch modules (models, data, augment) use the same definitions, so the two can never disagree."""

from __future__ import annotations

import math
import re

MODEL_NAMES: tuple[str, ...] = (
    "fastcnn",
    "resnet18",
    "wrn-D-K",
    "vgg16-bn",
    "vit-s16",
    "resnet50",
    "resnet101",
)
WRN_RE = re.compile(r"^wrn-(\d+)-(\d+)$")  # WideResNet-depth-width, e.g. wrn-28-10

DATASETS: tuple[str, ...] = ("fashion-mnist", "cifar10", "cifar100", "imagenet")
# Training-set sizes of the known datasets (ImageNet-1k train split).
TRAIN_SIZES: dict[str, int] = {
    "fashion-mnist": 60_000,
    "cifar10": 50_000,
    "cifar100": 50_000,
    "imagenet": 1_281_167,
}

# (channels, image side, classes) of each dataset's images as the trainer sees them
# (ImageNet at the trainer's default 224 px): synthetic batches of these shapes are what the step
# probe times.
DATASET_SHAPES: dict[str, tuple[int, int, int]] = {
    "fashion-mnist": (1, 28, 10),
    "cifar10": (3, 32, 10),
    "cifar100": (3, 32, 100),
    "imagenet": (3, 224, 1000),
}


def is_known_model(name: str) -> bool:
    """Whether `name` is one of MODEL_NAMES (`wrn-D-K` standing for any depth and width)."""
    return name in MODEL_NAMES or bool(WRN_RE.match(name))


def steps_per_epoch(n_train: int, batch_size: int, drop_last: bool = True) -> int:
    """Number of batches `train_batches` yields per epoch (at least 1 when n_train > 0)."""
    if n_train <= 0:
        return 0
    if drop_last and n_train >= batch_size:
        return n_train // batch_size
    return math.ceil(n_train / batch_size)
