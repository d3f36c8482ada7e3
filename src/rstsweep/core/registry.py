"""A user's own models and data sets, registered in Python (typically by a plugin module of the
entry-point group `rstsweep.plugins`, see `rstsweep.plugins`), so that their names work wherever
the built-in ones of `core.catalog` do: sweeps.yaml, `rstsweep train`, `plan` (step counts),
probes, `rstsweep fields --models` and the Ray workers (which import the plugins before a trial).

No torch here: a model is registered as a *builder* the trainer calls, a data set as a *loader*.

    register_model("mymlp", build)          build(in_channels, num_classes, width, image_size)
                                            -> torch.nn.Module; width is None unless the cell
                                            sets one, image_size is the data set's side
    register_dataset("mydata", load, shape=(1, 8, 8), num_classes=3, train_size=256)
                                            load(data_dir) -> (train_x, train_y, test_x, test_y)

The loader's contract (checked by `trainers.data` when it loads): numpy arrays, images uint8
N×C×H×W with (C, H, W) == `shape`, labels integers in [0, num_classes), exactly `train_size`
training images (the count plans are made with) and `test_size` test images when given.
`data_dir` is the cell's `data_dir` (a pathlib.Path) or None. Subsets, label noise, the per-channel
normalisation and augmentation are then applied by rstsweep as for the built-in data sets.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rstsweep.errors import RstError

SMALL_IMAGE, IMAGENET = "small-image", "imagenet"  # the input kinds of core.catalog
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")

# build(in_channels, num_classes, width, image_size) -> torch.nn.Module
ModelBuilder = Callable[[int, int, int | None, int], Any]
# load(data_dir) -> (train_x, train_y, test_x, test_y) as numpy arrays
DatasetLoader = Callable[[Any], tuple[Any, Any, Any, Any]]


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: its builder, the input kinds it accepts and a one-line description."""

    name: str
    build: ModelBuilder
    input_kinds: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class DatasetEntry:
    """A registered data set: its loader and what plans and probes need without loading it."""

    name: str
    load: DatasetLoader
    shape: tuple[int, int, int]  # (C, H, W), H == W
    num_classes: int
    train_size: int
    test_size: int | None
    input_kind: str


MODELS: dict[str, ModelEntry] = {}
DATASETS: dict[str, DatasetEntry] = {}


def _check_name(kind: str, name: str, taken: bool) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise RstError(f"register_{kind}: name {name!r} must match [a-z0-9][a-z0-9._-]*")
    if taken:
        raise RstError(f"register_{kind}: {kind} {name!r} is already registered")
    return name


def register_model(
    name: str,
    build: ModelBuilder,
    *,
    input_kinds: tuple[str, ...] = (SMALL_IMAGE,),
    description: str = "",
) -> None:
    """Make model `name` known everywhere a built-in model name is accepted. `input_kinds`: the
    data sets it may train on by kind (`small-image`: every data set but ImageNet; `imagenet`);
    other pairs are refused like VGG16-BN on ImageNet. RstError for a taken or malformed name."""
    from rstsweep.core import catalog  # catalog reads this module's tables

    _check_name("model", name, name in MODELS or catalog.is_builtin_model(name))
    if not callable(build):
        raise RstError(f"register_model: {name}: build must be callable")
    kinds = tuple(input_kinds)
    bad = [k for k in kinds if k not in (SMALL_IMAGE, IMAGENET)]
    if bad or not kinds:
        raise RstError(
            f"register_model: {name}: input_kinds {kinds} must be among {SMALL_IMAGE}, {IMAGENET}"
        )
    text = description or f"{name} (registered by {getattr(build, '__module__', '?')})"
    MODELS[name] = ModelEntry(name, build, kinds, text)


def register_dataset(
    name: str,
    load: DatasetLoader,
    *,
    shape: tuple[int, int, int],
    num_classes: int,
    train_size: int,
    test_size: int | None = None,
    input_kind: str = SMALL_IMAGE,
) -> None:
    """Make data set `name` known everywhere a built-in data set name is accepted; `load` is
    called by the trainer (contract: the module docstring). `shape` = (C, H, W) with H == W,
    `train_size` = the number of training images `load` returns (plans count steps with it).
    RstError for a taken or malformed name or an impossible shape/size."""
    from rstsweep.core import catalog  # catalog reads this module's tables

    _check_name("dataset", name, name in DATASETS or name in catalog.DATASETS)
    if not callable(load):
        raise RstError(f"register_dataset: {name}: load must be callable")
    dims = tuple(int(d) for d in shape)
    if len(dims) != 3 or min(dims) < 1 or dims[1] != dims[2]:
        raise RstError(f"register_dataset: {name}: shape {shape} must be (C, H, W) with H == W")
    if num_classes < 2 or train_size < 1 or (test_size is not None and test_size < 1):
        raise RstError(
            f"register_dataset: {name}: needs num_classes >= 2 and train_size, test_size >= 1"
        )
    if input_kind not in (SMALL_IMAGE, IMAGENET):
        raise RstError(f"register_dataset: {name}: input_kind must be {SMALL_IMAGE} or {IMAGENET}")
    DATASETS[name] = DatasetEntry(
        name, load, (dims[0], dims[1], dims[2]), num_classes, train_size, test_size, input_kind
    )
    # plans (cell_steps) and probes (synthetic batches) read these tables
    catalog.TRAIN_SIZES[name] = train_size
    catalog.DATASET_SHAPES[name] = (dims[0], dims[1], num_classes)


def unregister(name: str) -> None:
    """Forget a registered model or data set of that name (tests; a notebook re-running a cell)."""
    from rstsweep.core import catalog

    MODELS.pop(name, None)
    if DATASETS.pop(name, None) is not None:
        catalog.TRAIN_SIZES.pop(name, None)
        catalog.DATASET_SHAPES.pop(name, None)
