"""The model zoo: forward shapes on 28×28×1 and 32×32×3 inputs, parameter counts against the
published figures (and a hand-derived formula for ViT), width overrides, name errors."""

from __future__ import annotations

import pytest
import torch

from rstsweep.errors import RstError
from rstsweep.trainers.models import MODEL_NAMES, build_model

torch.set_num_threads(1)


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def forward(model: torch.nn.Module, channels: int, size: int, batch: int = 2) -> torch.Tensor:
    model.eval()  # BN in eval mode: batch 2 of 1×1 feature maps is fine either way
    with torch.no_grad():
        return model(torch.randn(batch, channels, size, size))


# small/medium models: both input shapes
@pytest.mark.parametrize("name", ["fastcnn", "resnet18", "wrn-16-4", "vgg16-bn", "vit-s16"])
@pytest.mark.parametrize(("channels", "size", "classes"), [(1, 28, 10), (3, 32, 100)])
def test_forward_shapes(name: str, channels: int, size: int, classes: int) -> None:
    model = build_model(name, channels, classes, image_size=size)
    out = forward(model, channels, size)
    assert out.shape == (2, classes) and torch.isfinite(out).all()


def test_wrn_28_10_forward_and_size() -> None:
    model = build_model("wrn-28-10", 3, 10)
    assert n_params(model) == 36_479_194  # the WRN paper's 36.5 M
    assert forward(model, 3, 32).shape == (2, 10)


@pytest.mark.slow  # imports torchvision (~6 s) and builds two large ImageNet models
def test_torchvision_resnets() -> None:
    r50 = build_model("resnet50", 3, 1000)
    assert n_params(r50) == 25_557_032  # torchvision's published count
    assert n_params(build_model("resnet101", 3, 1000)) == 44_549_160
    grey = build_model("resnet50", 1, 10)
    assert grey.conv1.in_channels == 1
    assert forward(grey, 1, 28).shape == (2, 10)
    assert forward(build_model("resnet101", 3, 10), 3, 32).shape == (2, 10)


def test_parameter_counts_match_published_figures() -> None:
    assert n_params(build_model("resnet18", 3, 10)) == 11_173_962  # CIFAR ResNet-18, 11.2 M
    assert n_params(build_model("wrn-16-4", 3, 10)) == 2_748_890  # WRN-16-4, 2.7 M
    assert n_params(build_model("vgg16-bn", 3, 10)) == 14_728_266  # CIFAR VGG16-BN, 14.7 M


def vit_params(d: int, depth: int, channels: int, grid: int, classes: int, patch: int = 4) -> int:
    """Hand count: patch conv, cls token, positions, per block (attention 4d²+4d, MLP 8d²+5d,
    two LayerNorms 4d), final LayerNorm, head."""
    embed = channels * patch * patch * d + d
    block = 12 * d * d + 13 * d
    return embed + d + (grid * grid + 1) * d + depth * block + 2 * d + d * classes + classes


def test_vit_size_and_width_override() -> None:
    assert n_params(build_model("vit-s16", 3, 10)) == vit_params(384, 12, 3, 8, 10)  # ~21.3 M
    small = build_model("vit-s16", 1, 10, width=64, image_size=28)
    assert n_params(small) == vit_params(64, 12, 1, 7, 10)
    assert small.encoder.layers[0].self_attn.num_heads == 1  # heads = dim // 64


def test_width_overrides() -> None:
    assert n_params(build_model("wrn-16-4", 3, 10, width=2)) == n_params(
        build_model("wrn-16-2", 3, 10)
    )
    narrow = build_model("fastcnn", 1, 10, width=8)
    assert narrow.head.in_features == 32  # widths w, 2w, 4w
    assert build_model("fastcnn", 1, 10).head.in_features == 64  # default w = 16


def test_fastcnn_trains_a_step() -> None:
    model = build_model("fastcnn", 1, 10, image_size=28)
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_unknown_and_bad_names() -> None:
    with pytest.raises(RstError) as info:
        build_model("resnet34", 3, 10)
    for name in MODEL_NAMES:
        assert name in str(info.value)
    with pytest.raises(RstError, match="depth must be 6n"):
        build_model("wrn-27-10", 3, 10)
    assert isinstance(build_model(" ResNet18 ", 3, 10), torch.nn.Module)  # case/space tolerant


# ----------------------------------------------------------------- layouts per data set (catalogue)
def test_imagenet_resnet18_is_torchvisions_imagenet_layout() -> None:
    """On ImageNet `resnet18` is He et al.'s ImageNet network (7×7 stride-2 stem + max-pool), the
    layout of torchvision's resnet18, not the CIFAR one (3×3 stride-1 stem, no max-pool)."""
    import torchvision

    model = build_model("resnet18", 3, 1000, image_size=224, dataset="imagenet")
    reference = torchvision.models.resnet18(weights=None, num_classes=1000)
    shapes = [(n, tuple(p.shape)) for n, p in model.state_dict().items()]
    assert shapes == [(n, tuple(p.shape)) for n, p in reference.state_dict().items()]
    assert n_params(model) == 11_689_512  # torchvision's published count
    assert model.conv1.kernel_size == (7, 7) and model.conv1.stride == (2, 2)
    assert isinstance(model.maxpool, torch.nn.MaxPool2d)
    assert forward(model, 3, 224, batch=1).shape == (1, 1000)
    # small images keep the CIFAR network (same parameters as without a data set)
    cifar = build_model("resnet18", 3, 10, dataset="cifar10")
    assert n_params(cifar) == 11_173_962 and cifar.stem[0].kernel_size == (3, 3)
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in cifar.modules())


def test_vit_s16_on_imagenet_has_16_pixel_patches() -> None:
    vit = build_model("vit-s16", 3, 1000, width=64, image_size=224, dataset="imagenet")
    assert vit.patch == 16 and n_params(vit) == vit_params(64, 12, 3, 14, 1000, patch=16)
    assert build_model("vit-s16", 3, 10, width=64, dataset="cifar10").patch == 4


@pytest.mark.parametrize("name", ["vgg16-bn", "wrn-28-10"])
def test_models_without_an_imagenet_recipe_are_refused(name: str) -> None:
    from rstsweep.core.config import CellConfig

    with pytest.raises(RstError, match=rf"model: {name} on imagenet: no ImageNet recipe"):
        build_model(name, 3, 1000, image_size=224, dataset="imagenet")
    with pytest.raises(ValueError, match=rf"model: {name} on imagenet"):
        CellConfig(model=name, dataset="imagenet")
    assert CellConfig(model=name, dataset="cifar10").model == name  # small images: fine


def test_the_catalogue_and_fields_say_which_layout_a_pair_gets(cli) -> None:
    from rstsweep.core.catalog import model_variant

    assert "7×7 stride-2 stem + max-pool" in model_variant("resnet18", "imagenet")
    assert "3×3 stride-1 stem, no max-pool" in model_variant("resnet18", "cifar100")
    assert model_variant("wrn-16-4", "fashion-mnist").startswith("WideResNet")
    assert "rstsweep fields --models" in cli("fields").output
    listing = cli("fields", "--models")
    assert listing.exit_code == 0
    assert "ImageNet ResNet-18: 7×7 stride-2 stem" in listing.output
    assert "vgg16-bn   imagenet     refused" in listing.output
    bad = cli("train", "--model", "vgg16-bn", "--dataset", "imagenet")
    assert bad.exit_code == 2 and "model: vgg16-bn on imagenet" in bad.output
