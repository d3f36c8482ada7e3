"""What the trainer knows by name, without importing torch: the model and dataset names, which
network a (model, dataset) pair builds, the training-set sizes, the batching rule and a cell's
step count. The sweeper validates YAML and plans with these, and the torch modules (models, data,
augment) use the same definitions, so the two can never disagree. A user's models and data sets
(`core.registry`, registered by plugins) join the built-in names through `model_names()`,
`dataset_names()`, `is_known_model` and the TRAIN_SIZES / DATASET_SHAPES tables."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

from rstsweep.core import registry

if TYPE_CHECKING:  # core.config imports this module
    from rstsweep.core.config import CellConfig

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


# Which network a model name builds for a data set. Small images (Fashion-MNIST, CIFAR) get the
# CIFAR layouts the RST paper (Zhao et al.) trains; ImageNet gets the layout the ImageNet papers
# train, and the pairs no cited recipe covers are refused rather than silently run as a CIFAR net
# on 224 px inputs.
SMALL, LARGE = registry.SMALL_IMAGE, registry.IMAGENET  # "small-image", "imagenet"
VARIANTS: dict[tuple[str, str], str] = {
    ("fastcnn", SMALL): "airbench-style demo CNN (widths w/2w/4w)",
    ("fastcnn", LARGE): "airbench-style demo CNN (widths w/2w/4w; a demo net, not a paper's)",
    ("resnet18", SMALL): "CIFAR ResNet-18: 3×3 stride-1 stem, no max-pool",
    ("resnet18", LARGE): "ImageNet ResNet-18: 7×7 stride-2 stem + max-pool (He et al. 2016; "
    "torchvision resnet18)",
    ("wrn-D-K", SMALL): "WideResNet-D-K, pre-activation (Zagoruyko & Komodakis 2016)",
    ("vgg16-bn", SMALL): "CIFAR VGG16-BN: 13 conv-BN-ReLU, one linear classifier",
    ("vit-s16", SMALL): "ViT-S for small images: patch 4, dim 384, depth 12, 6 heads",
    ("vit-s16", LARGE): "ViT-S/16: patch 16, dim 384, depth 12, 6 heads (Dosovitskiy et al. 2021)",
    ("resnet50", SMALL): "torchvision ResNet-50 (ImageNet layout)",
    ("resnet50", LARGE): "ImageNet ResNet-50 (He et al. 2016; torchvision resnet50)",
    ("resnet101", SMALL): "torchvision ResNet-101 (ImageNet layout)",
    ("resnet101", LARGE): "ImageNet ResNet-101 (He et al. 2016; torchvision resnet101)",
}


def input_kind(dataset: str) -> str:
    """`imagenet` for ImageNet, `small-image` for every other data set (a registered data set:
    the kind it was registered with)."""
    if dataset in registry.DATASETS:
        return registry.DATASETS[dataset].input_kind
    return LARGE if dataset == "imagenet" else SMALL


def model_names() -> tuple[str, ...]:
    """The built-in model names, then those registered (`core.registry.register_model`)."""
    return (*MODEL_NAMES, *registry.MODELS)


def dataset_names() -> tuple[str, ...]:
    """The built-in data set names, then those registered (`core.registry.register_dataset`)."""
    return (*DATASETS, *registry.DATASETS)


def _registered_variant(model: str, dataset: str) -> str:
    entry = registry.MODELS[model]
    kind = input_kind(dataset)
    if kind not in entry.input_kinds:
        raise ValueError(
            f"model: {model} on {dataset}: registered for {', '.join(entry.input_kinds)} inputs "
            f"only, not {kind}"
        )
    return entry.description


def model_variant(model: str, dataset: str) -> str:
    """The network `model` builds for `dataset`, described with its source (`VARIANTS`). Raises
    ValueError, naming `model`, for a pair no cited recipe covers (VGG16-BN and WideResNet on
    ImageNet); unknown model names are left to the model builder's error. A registered model is
    refused on the input kinds it was not registered for."""
    if model in registry.MODELS:
        return _registered_variant(model, dataset)
    key = "wrn-D-K" if WRN_RE.match(model) else model
    kind = input_kind(dataset)
    if (key, kind) in VARIANTS:
        return VARIANTS[(key, kind)]
    if (key, SMALL) in VARIANTS:  # a known model without an ImageNet layout
        on = sorted({m for (m, k) in VARIANTS if k == LARGE})
        raise ValueError(
            f"model: {model} on {dataset}: no ImageNet recipe is cited for it (its layout here is "
            f"the CIFAR one); on imagenet use one of {', '.join(on)}"
        )
    return ""


def is_builtin_model(name: str) -> bool:
    """Whether `name` is one of MODEL_NAMES (`wrn-D-K` standing for any depth and width)."""
    return name in MODEL_NAMES or bool(WRN_RE.match(name))


def is_known_model(name: str) -> bool:
    """Whether `name` is a built-in model (`is_builtin_model`) or a registered one."""
    return is_builtin_model(name) or name in registry.MODELS


def steps_per_epoch(n_train: int, batch_size: int, drop_last: bool = True) -> int:
    """Number of batches `train_batches` yields per epoch (at least 1 when n_train > 0)."""
    if n_train <= 0:
        return 0
    if drop_last and n_train >= batch_size:
        return n_train // batch_size
    return math.ceil(n_train / batch_size)


def cell_steps(config: CellConfig) -> int | None:
    """T = steps_per_epoch × epochs for a cell, or None for an unknown dataset."""
    size = TRAIN_SIZES.get(config.dataset)
    if size is None:
        return None
    n = min(size, config.train_subset) if config.train_subset else size
    return steps_per_epoch(n, config.batch_size) * config.epochs
