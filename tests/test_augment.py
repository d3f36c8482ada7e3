"""On-device augmentation and batching: determinism in (seed, epoch), crops/flips checked against an
independent numpy implementation on position-coded images, Cutout geometry, batch bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rstsweep.errors import RstError
from rstsweep.trainers import augment
from rstsweep.trainers.augment import cutout_size, steps_per_epoch, train_batches
from rstsweep.trainers.data import DataBundle

torch.set_num_threads(1)


def make_bundle(
    images: torch.Tensor, mean: float = 0.0, std: float = 1 / 255, n_test: int = 5
) -> DataBundle:
    """Labels are the sample indices, so every output image can be traced to its source. With the
    default mean 0 / std 1/255 normalisation is the identity on pixel values."""
    c = images.shape[1]
    return DataBundle(
        name="toy",
        train_images=images,
        train_labels=torch.arange(len(images)),
        test_images=images[:n_test],
        test_labels=torch.arange(n_test),
        num_classes=len(images),
        mean=torch.full((c,), mean),
        std=torch.full((c,), std),
    )


def position_coded(n: int, c: int, size: int) -> torch.Tensor:
    """img[i, ch, y, x] = 1 + (ch*size*size + y*size + x) % 250: non-zero everywhere (so zero
    padding is visible) and distinct at every position of a channel (size <= 15)."""
    base = 1 + (torch.arange(c * size * size) % 250)
    return base.view(1, c, size, size).repeat(n, 1, 1, 1).to(torch.uint8)


def numpy_crop_flip(
    img: np.ndarray, dy: int, dx: int, flip: bool, pad: int = 4, mode: str = "constant"
) -> np.ndarray:
    """Independent reference: pad (zeros, or `mode="reflect"`: the border mirrored without
    repeating the edge, as tf.pad REFLECT), slice, mirror."""
    h, w = img.shape[-2:]
    padded = np.pad(img, ((0, 0), (pad, pad), (pad, pad)), mode=mode)
    out = padded[:, dy : dy + h, dx : dx + w]
    return out[:, :, ::-1] if flip else out


def all_batches(bundle: DataBundle, batch_size: int, aug: str, seed: int, epoch: int, **kw):
    xs, ys = zip(*train_batches(bundle, batch_size, aug, seed, epoch, **kw), strict=True)
    return torch.cat(xs), torch.cat(ys)


def test_same_seed_epoch_same_batches_independent_of_global_rng() -> None:
    bundle = make_bundle(torch.randint(0, 256, (40, 3, 12, 12), dtype=torch.uint8))
    torch.manual_seed(1)
    before = torch.get_rng_state()
    a = list(train_batches(bundle, 8, "cutout", seed=3, epoch=2))
    assert torch.equal(torch.get_rng_state(), before)  # the global RNG is never touched
    torch.manual_seed(999)
    b = list(train_batches(bundle, 8, "cutout", seed=3, epoch=2))
    assert len(a) == len(b) == 5
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_batches_differ_across_epochs_and_seeds() -> None:
    bundle = make_bundle(torch.randint(0, 256, (40, 3, 12, 12), dtype=torch.uint8))
    x0, y0 = all_batches(bundle, 8, "basic", seed=0, epoch=0)
    x1, y1 = all_batches(bundle, 8, "basic", seed=0, epoch=1)
    xs, ys = all_batches(bundle, 8, "basic", seed=1, epoch=0)
    assert not torch.equal(y0, y1) and not torch.equal(x0, x1)
    assert not torch.equal(y0, ys) and not torch.equal(x0, xs)


def test_epoch_is_a_permutation_and_independent_of_batch_size() -> None:
    bundle = make_bundle(torch.randint(0, 256, (60, 1, 10, 10), dtype=torch.uint8))
    x10, y10 = all_batches(bundle, 10, "cutout", seed=5, epoch=4)
    x20, y20 = all_batches(bundle, 20, "cutout", seed=5, epoch=4)
    assert torch.equal(torch.sort(y10).values, torch.arange(60))  # every sample exactly once
    assert torch.equal(y10, y20) and torch.equal(x10, x20)


def test_none_only_shuffles_and_normalises() -> None:
    images = torch.randint(0, 256, (30, 3, 8, 8), dtype=torch.uint8)
    mean, std = torch.tensor([0.1, 0.5, 0.9]), torch.tensor([0.2, 0.3, 0.4])
    bundle = make_bundle(images)
    bundle.mean, bundle.std = mean, std
    x, y = all_batches(bundle, 10, "none", seed=0, epoch=0)
    assert not torch.equal(y, torch.arange(30))  # shuffled
    ref = (images[y].double() / 255 - mean.double().view(1, 3, 1, 1)) / std.double().view(
        1, 3, 1, 1
    )
    assert x.dtype == torch.float32
    assert torch.allclose(x.double(), ref, atol=1e-5)


@pytest.mark.parametrize(("pad_mode", "np_mode"), [("zero", "constant"), ("reflect", "reflect")])
def test_basic_crops_and_flips_match_numpy_reference(pad_mode: str, np_mode: str) -> None:
    n, size = 400, 8
    bundle = make_bundle(position_coded(n, 2, size))
    x, _ = all_batches(bundle, 50, "basic", seed=7, epoch=0, pad_mode=pad_mode)
    # every sample has the same content, so the 162 possible outputs can be tabulated once
    source = bundle.train_images[0].numpy()
    table = {
        numpy_crop_flip(source, dy, dx, flip, mode=np_mode).tobytes(): (dy, dx, flip)
        for dy in range(9)
        for dx in range(9)
        for flip in (False, True)
    }
    # the position coding makes every offset/flip distinguishable with zeros; a mirrored border
    # makes some crops coincide (8 px images, 4 px reflected)
    assert len(table) == 162 if pad_mode == "zero" else len(table) > 100
    seen_shifts, flips = set(), 0
    for out in x.round().to(torch.uint8).numpy():
        assert out.tobytes() in table, "each output must be one padded crop (+ flip)"
        dy, dx, flip = table[out.tobytes()]
        seen_shifts.add((dy, dx))
        flips += flip
    assert len(seen_shifts) >= (70 if pad_mode == "zero" else 50)  # 81 offsets, 400 draws
    assert 150 < flips < 250  # p = 1/2, 400 draws: ~5 sigma band


def test_crop_flip_on_hand_made_image() -> None:
    img = torch.tensor([[[1, 2, 3], [4, 5, 6], [7, 8, 9]]], dtype=torch.uint8)[None]  # 1x1x3x3
    shift = augment.crop_flip(img, torch.tensor([5]), torch.tensor([3]), torch.tensor([False]))
    # pad 4 then take rows 5..7, cols 3..5: content moves up by 1 and right by 1
    expected = torch.tensor([[0, 4, 5], [0, 7, 8], [0, 0, 0]], dtype=torch.uint8)
    assert torch.equal(shift[0, 0], expected)
    mirror = augment.crop_flip(img, torch.tensor([4]), torch.tensor([4]), torch.tensor([True]))
    assert torch.equal(mirror[0, 0], img[0, 0].flip(-1))


@pytest.mark.parametrize(("size", "side"), [(32, 16), (28, 14)])
def test_cutout_zeroes_a_square_of_the_right_size(size: int, side: int) -> None:
    # pixels 200 -> +100, zero padding -> -100, so exact zeros can only come from Cutout
    images = torch.full((300, 3, size, size), 200, dtype=torch.uint8)
    bundle = make_bundle(images, mean=100 / 255, std=1 / 255)
    assert cutout_size(size) == side
    x, _ = all_batches(bundle, 100, "cutout", seed=0, epoch=0)
    full = 0
    for out in x:
        zero = out == 0
        assert torch.equal(zero[0], zero[1]) and torch.equal(zero[0], zero[2])  # all channels
        ys, xs = torch.nonzero(zero[0], as_tuple=True)
        assert len(ys) > 0
        top, bottom, left, right = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        assert zero[0, top:bottom, left:right].all()  # a filled rectangle
        h, w = bottom - top, right - left
        assert h <= side and w <= side
        # clipped only at the image border
        assert h == side or top == 0 or bottom == size
        assert w == side or left == 0 or right == size
        full += int(h == side and w == side)
    assert full > 50  # centres are uniform: about a quarter of squares lie fully inside
    basic, _ = all_batches(bundle, 100, "basic", seed=0, epoch=0, pad_mode="zero")
    assert not (basic == 0).any()


def test_steps_per_epoch_and_batch_sizes() -> None:
    assert steps_per_epoch(100, 32) == 3
    assert steps_per_epoch(100, 32, drop_last=False) == 4
    assert steps_per_epoch(96, 32, drop_last=False) == 3
    assert steps_per_epoch(10, 32) == 1  # smaller than one batch: still one step
    assert steps_per_epoch(0, 32) == 0
    bundle = make_bundle(torch.zeros((100, 1, 4, 4), dtype=torch.uint8))
    sizes = [len(y) for _, y in train_batches(bundle, 32, "basic", 0, 0)]
    assert sizes == [32, 32, 32]
    sizes = [len(y) for _, y in train_batches(bundle, 32, "basic", 0, 0, drop_last=False)]
    assert sizes == [32, 32, 32, 4]
    small = make_bundle(torch.zeros((10, 1, 4, 4), dtype=torch.uint8))
    assert [len(y) for _, y in train_batches(small, 32, "none", 0, 0)] == [10]


def test_test_batches_in_order() -> None:
    images = torch.randint(0, 256, (23, 3, 6, 6), dtype=torch.uint8)
    bundle = make_bundle(images, mean=0.5, std=0.25, n_test=23)
    batches = list(augment.test_batches(bundle, 10))
    assert [len(y) for _, y in batches] == [10, 10, 3]
    x = torch.cat([b[0] for b in batches])
    assert torch.equal(torch.cat([b[1] for b in batches]), torch.arange(23))
    assert torch.allclose(x, (images.float() / 255 - 0.5) / 0.25, atol=1e-5)


def test_unknown_augment_is_a_user_error() -> None:
    bundle = make_bundle(torch.zeros((4, 1, 4, 4), dtype=torch.uint8))
    with pytest.raises(RstError, match=r"augment: unknown.*none, basic, cutout"):
        train_batches(bundle, 2, "mixup", 0, 0)
