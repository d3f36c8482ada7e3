"""The model zoo of the trainer: `build_model(name, ...)` and the architectures behind it.

Every model takes `in_channels` (1 for Fashion-MNIST, 3 for CIFAR/ImageNet) and accepts both 28×28
and 32×32 inputs: the heads pool adaptively, so only ViT needs `image_size` (its position table).
Which layout a model gets for a data set is the catalogue's (`core.catalog.model_variant`): the
CIFAR layouts below for small images; on ImageNet, `resnet18` is torchvision's ImageNet ResNet-18
and `vit-s16` is ViT-S/16 (patch 16), and VGG16-BN and WideResNet are refused.

- `fastcnn`: a small airbench-style net (conv-BN-GELU blocks with max-pooling, widths w/2w/4w) for
  CPU demos; default w = 16 trains Fashion-MNIST to ~90 % in about a minute on 2 cores.
- `resnet18`: the CIFAR variant (3×3 stem, no max-pool), ~11.2 M parameters for 10 classes; on
  ImageNet torchvision's (7×7 stride-2 stem + max-pool, 11.7 M for 1000 classes).
- `wrn-D-K`: WideResNet-D-K (Zagoruyko & Komodakis), pre-activation, no dropout; `width`
  overrides K.
- `vgg16-bn`: the CIFAR variant (13 convs with BN, one linear classifier).
- `vit-s16`: ViT-S adapted to small images (patch 4, dim 384, depth 12, heads 6); `width` overrides
  the embedding dim (heads = dim // 64) for small CPU runs.
- `resnet50`, `resnet101`: torchvision's ImageNet models (weights=None).
- a registered name (`core.registry.register_model`, usually from a plugin): its builder.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rstsweep.core import registry
from rstsweep.core.catalog import LARGE, MODEL_NAMES, WRN_RE, input_kind, model_variant
from rstsweep.errors import RstError

FASTCNN_WIDTH = 16


# ----------------------------------------------------------------------- fastcnn (airbench-like)
def _conv_bn_gelu(c_in: int, c_out: int, pool: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)]
    if pool:  # airbench pools right after the first conv of a block (cheaper BN/GELU)
        layers.append(nn.MaxPool2d(2))
    return [*layers, nn.BatchNorm2d(c_out), nn.GELU()]


class FastCNN(nn.Module):
    """Three blocks (conv-pool-BN-GELU, conv-BN-GELU) of widths w, 2w, 4w, a global max-pool and a
    linear head. 28 px -> 14 -> 7 -> 3, 32 px -> 16 -> 8 -> 4."""

    def __init__(self, in_channels: int, num_classes: int, width: int = FASTCNN_WIDTH) -> None:
        super().__init__()
        widths = (width, 2 * width, 4 * width)
        # no separate full-resolution stem: on CPU it doubled the step time for no accuracy gain
        layers: list[nn.Module] = []
        c_in = in_channels
        for c_out in widths:
            layers += _conv_bn_gelu(c_in, c_out, pool=True) + _conv_bn_gelu(
                c_out, c_out, pool=False
            )
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.head = nn.Linear(c_in, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(torch.flatten(self.pool(self.features(x)), 1))


# --------------------------------------------------------------------------- ResNet-18 (CIFAR)
class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class CifarResNet18(nn.Module):
    """ResNet-18 for small images: 3×3 stride-1 stem, no max-pool, stages 64/128/256/512."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 64) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        stages: list[nn.Module] = []
        c_in = width
        for i, stride in enumerate((1, 2, 2, 2)):
            c_out = width * 2**i
            stages += [BasicBlock(c_in, c_out, stride), BasicBlock(c_out, c_out, 1)]
            c_in = c_out
        self.layers = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(torch.flatten(self.pool(self.layers(self.stem(x))), 1))


# --------------------------------------------------------------------------- WideResNet-D-K
class WideBlock(nn.Module):
    """Pre-activation wide basic block (BN-ReLU-conv ×2), 1×1 projection when shapes change."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.shortcut: nn.Module | None = None
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Conv2d(c_in, c_out, 1, stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        pre = torch.relu(self.bn1(x))
        out = self.conv2(torch.relu(self.bn2(self.conv1(pre))))
        # the projection sees the pre-activated input, as in the reference implementation
        return out + (x if self.shortcut is None else self.shortcut(pre))


class WideResNet(nn.Module):
    def __init__(self, depth: int, k: int, in_channels: int, num_classes: int) -> None:
        super().__init__()
        n = (depth - 4) // 6
        widths = (16, 16 * k, 32 * k, 64 * k)
        self.stem = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        blocks: list[nn.Module] = []
        c_in = widths[0]
        for c_out, stride in zip(widths[1:], (1, 2, 2), strict=True):
            for i in range(n):
                blocks.append(WideBlock(c_in, c_out, stride if i == 0 else 1))
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(c_in)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        out = torch.relu(self.bn(self.blocks(self.stem(x))))
        return self.fc(torch.flatten(self.pool(out), 1))


def _wrn(name: str, in_channels: int, num_classes: int, width: int | None) -> WideResNet:
    match = WRN_RE.match(name)
    assert match is not None
    depth, k = int(match[1]), int(match[2])
    if depth < 10 or (depth - 4) % 6:
        raise RstError(f"model: {name}: WideResNet depth must be 6n+4 with n >= 1 (e.g. 16, 28)")
    k = width if width is not None else k
    if k < 1:
        raise RstError(f"model: {name}: width factor must be >= 1")
    return WideResNet(depth, k, in_channels, num_classes)


# --------------------------------------------------------------------------- VGG16-BN (CIFAR)
_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class VGG16BN(nn.Module):
    """CIFAR VGG16-BN: 13 conv-BN-ReLU layers, 5 max-pools, one linear classifier. ceil_mode pools
    keep 28 px inputs valid (28 -> 14 -> 7 -> 4 -> 2 -> 1) and change nothing for 32 px."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = in_channels
        for item in _VGG16:
            if item == "M":
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            else:
                assert isinstance(item, int)
                layers += [nn.Conv2d(c_in, item, 3, padding=1), nn.BatchNorm2d(item), nn.ReLU()]
                c_in = item
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_in, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


# --------------------------------------------------------------------------- ViT-S for small images
class SmallViT(nn.Module):
    """ViT with a conv patch embedding, class token, learned positions and pre-norm encoder."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        image_size: int,
        patch: int = 4,
        dim: int = 384,
        depth: int = 12,
        heads: int = 6,
    ) -> None:
        super().__init__()
        grid = -(-image_size // patch)  # ceil: a 30 px image still gets whole patches (padded)
        self.patch = patch
        self.embed = nn.Conv2d(in_channels, dim, patch, patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, grid * grid + 1, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(
            dim, heads, 4 * dim, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        pad_h, pad_w = (-x.shape[-2]) % self.patch, (-x.shape[-1]) % self.patch
        if pad_h or pad_w:
            x = nn.functional.pad(x, (0, pad_w, 0, pad_h))
        tokens = self.embed(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls.expand(len(x), -1, -1), tokens], dim=1)
        tokens = tokens + self.pos[:, : tokens.shape[1]]
        return self.head(self.norm(self.encoder(tokens))[:, 0])


def _vit(
    in_channels: int, num_classes: int, width: int | None, image_size: int, patch: int = 4
) -> SmallViT:
    dim = width if width is not None else 384
    heads = max(1, dim // 64)
    if dim % heads:
        raise RstError(f"model: vit-s16: width {dim} must be divisible by its {heads} heads")
    return SmallViT(in_channels, num_classes, image_size, patch=patch, dim=dim, heads=heads)


# --------------------------------------------------------------------------- torchvision ResNets
def _torchvision_resnet(name: str, in_channels: int, num_classes: int) -> nn.Module:
    import torchvision  # slow import (~5 s): only when an ImageNet model is really built

    model = getattr(torchvision.models, name)(weights=None, num_classes=num_classes)
    if in_channels != 3:
        model.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
    return model


# --------------------------------------------------------------------------- entry point
def build_model(
    name: str,
    in_channels: int,
    num_classes: int,
    width: int | None = None,
    image_size: int = 32,
    dataset: str | None = None,
) -> nn.Module:
    """Build model `name` for `in_channels`×`image_size`² inputs and `num_classes` outputs, in the
    layout the catalogue gives it for `dataset` (None: the small-image layouts).

    `width` overrides the width knob where there is one (fastcnn w, CIFAR resnet18 base width, WRN
    k, ViT embedding dim); VGG and the torchvision ResNets ignore it. Unknown names and refused
    (model, dataset) pairs raise RstError.
    """
    key = name.strip().lower()
    if key in registry.MODELS:
        return _registered(key, in_channels, num_classes, width, image_size, dataset)
    large = dataset is not None and input_kind(dataset) == LARGE
    if large:
        try:
            model_variant(key, dataset)  # refuses VGG16-BN and WideResNet on ImageNet
        except ValueError as exc:
            raise RstError(str(exc), field="model") from None
    if key == "fastcnn":
        return FastCNN(in_channels, num_classes, width or FASTCNN_WIDTH)
    if key == "resnet18" and large:
        return _torchvision_resnet(key, in_channels, num_classes)
    if key == "resnet18":
        return CifarResNet18(in_channels, num_classes, width or 64)
    if WRN_RE.match(key):
        return _wrn(key, in_channels, num_classes, width)
    if key == "vgg16-bn":
        return VGG16BN(in_channels, num_classes)
    if key == "vit-s16":
        return _vit(in_channels, num_classes, width, image_size, patch=16 if large else 4)
    if key in ("resnet50", "resnet101"):
        return _torchvision_resnet(key, in_channels, num_classes)
    known = ", ".join((*MODEL_NAMES, *registry.MODELS))
    raise RstError(f"model: unknown model {name!r}; known: {known} (e.g. wrn-28-10, wrn-16-4)")


def _registered(
    key: str,
    in_channels: int,
    num_classes: int,
    width: int | None,
    image_size: int,
    dataset: str | None,
) -> nn.Module:
    """A registered model from its builder; refused on an input kind it was not registered for,
    and a builder that returns no nn.Module is a one-line error naming the model."""
    if dataset is not None:
        try:
            model_variant(key, dataset)
        except ValueError as exc:
            raise RstError(str(exc), field="model") from None
    model = registry.MODELS[key].build(in_channels, num_classes, width, image_size)
    if not isinstance(model, nn.Module):
        raise RstError(f"model: {key}: its builder returned {type(model).__name__}, not a Module")
    return model
