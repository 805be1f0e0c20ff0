"""ResNet-18 (He, Zhang, Ren, Sun, "Deep residual learning for image recognition", CVPR 2016)
up to its global average pool: the 512-d features EMOTIC takes from the body crop and from the
whole image.

The published EMOTIC files hold torchvision's resnet18 with its final `fc` cut off
(`nn.Sequential(*list(resnet.children())[:-1])`): the context one with Places365 weights, the
body one with ImageNet weights. The layer names here are torchvision's, so that a torchvision
state dict loads unchanged; `from_sequential_keys` renames the Sequential's numbered children.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

import torch
from torch import nn

FEATURES = 512  # channels of layer4, the length of the pooled feature vector

# torchvision's ResNet children in order; the published Sequential numbers them 0..8.
CHILD_NAMES = (
    "conv1",
    "bn1",
    "relu",
    "maxpool",
    "layer1",
    "layer2",
    "layer3",
    "layer4",
    "avgpool",
)
STAGES = (  # (name, input channels, output channels, stride of the first block)
    ("layer1", 64, 64, 1),
    ("layer2", 64, 128, 2),
    ("layer3", 128, 256, 2),
    ("layer4", 256, 512, 2),
)

T = TypeVar("T")


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a shortcut; a 1x1 strided projection
    (`downsample`) where the block changes resolution or width."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = conv3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample: nn.Sequential | None = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + shortcut)


class ResNet18Features(nn.Module):
    """ResNet-18 without its classifier: (B, 3, H, W) normalised RGB -> (B, 512)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        for name, in_planes, planes, stride in STAGES:
            blocks = nn.Sequential(
                BasicBlock(in_planes, planes, stride), BasicBlock(planes, planes)
            )
            self.add_module(name, blocks)
        self.avgpool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        # The reference keeps the (B, 512, 1, 1) map and flattens it in the fusion head.
        return torch.flatten(self.avgpool(x), 1)


def from_sequential_keys(state: Mapping[str, T]) -> dict[str, T]:
    """Keys of the published Sequential ("4.0.conv1.weight") renamed to torchvision's
    ("layer1.0.conv1.weight"); a key that does not start with a child's number is kept."""
    renamed = {}
    for key, value in state.items():
        head, dot, rest = key.partition(".")
        if dot and head.isdigit() and int(head) < len(CHILD_NAMES):
            key = f"{CHILD_NAMES[int(head)]}.{rest}"
        renamed[key] = value
    return renamed
