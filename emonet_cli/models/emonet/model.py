"""The EmoNet network: a two-stack FAN hourglass plus the emotion head with heatmap attention.

Toisoul, Kossaifi, Bulat, Tzimiropoulos and Pantic, "Estimation of continuous valence and
arousal levels from faces in naturalistic conditions", Nature Machine Intelligence 2021.

Module names and the order of operations follow the published implementation, so that its
state dict (keys and shapes) loads unchanged and the numbers agree to float rounding.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from emonet_cli.constants import N_LANDMARKS, NCLASS_CHOICES, Classes

# NCLASS_CHOICES (the published weights' class counts) is imported from here too.
__all__ = [
    "EMOTION_BRANCH",
    "NCLASS_CHOICES",
    "EmoNet",
    "EmoNetOutput",
]


class EmoNetOutput(NamedTuple):
    expression: torch.Tensor  # (B, nclass) logits
    valence: torch.Tensor  # (B,)
    arousal: torch.Tensor  # (B,)
    heatmap: torch.Tensor  # (B, 68, 64, 64)
    embedding: torch.Tensor  # (B, 256): the pooled features entering the final head


def conv3x3(in_planes: int, out_planes: int) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=1, padding=1, bias=False)


class ConvBlock(nn.Module):
    """Pre-activation residual block whose three 3x3 convs (1/2, 1/4, 1/4 of the width) are
    concatenated, as in Bulat & Tzimiropoulos' hierarchical, parallel and multi-scale block."""

    def __init__(self, in_planes: int, out_planes: int):
        super().__init__()
        half, quarter = out_planes // 2, out_planes // 4
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = conv3x3(in_planes, half)
        self.bn2 = nn.BatchNorm2d(half)
        self.conv2 = conv3x3(half, quarter)
        self.bn3 = nn.BatchNorm2d(quarter)
        self.conv3 = conv3x3(quarter, quarter)
        self.downsample = None
        if in_planes != out_planes:
            self.downsample = nn.Sequential(
                nn.BatchNorm2d(in_planes),
                nn.ReLU(inplace=True),
                nn.Conv2d(in_planes, out_planes, kernel_size=1, bias=False),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # In-place ReLU and sum on fresh tensors: the same numbers with fewer buffers to fill
        # (4% faster in float32 on a 2-core CPU).
        out1 = self.conv1(F.relu(self.bn1(x), inplace=True))
        out2 = self.conv2(F.relu(self.bn2(out1), inplace=True))
        out3 = self.conv3(F.relu(self.bn3(out2), inplace=True))
        residual = x if self.downsample is None else self.downsample(x)
        out = torch.cat((out1, out2, out3), dim=1)
        out += residual
        return out


class HourGlass(nn.Module):
    """Recursive hourglass of the given depth; every level keeps 256 features."""

    def __init__(self, depth: int = 4, features: int = 256):
        super().__init__()
        self.depth = depth
        self._add_level(depth, features)

    def _add_level(self, level: int, features: int) -> None:
        self.add_module(f"b1_{level}", ConvBlock(features, features))
        self.add_module(f"b2_{level}", ConvBlock(features, features))
        if level > 1:
            self._add_level(level - 1, features)
        else:
            self.add_module(f"b2_plus_{level}", ConvBlock(features, features))
        self.add_module(f"b3_{level}", ConvBlock(features, features))

    def _forward_level(self, level: int, x: torch.Tensor) -> torch.Tensor:
        up1 = self._modules[f"b1_{level}"](x)
        low = self._modules[f"b2_{level}"](F.max_pool2d(x, 2, stride=2))
        if level > 1:
            low = self._forward_level(level - 1, low)
        else:
            low = self._modules[f"b2_plus_{level}"](low)
        low = self._modules[f"b3_{level}"](low)
        return up1 + F.interpolate(low, scale_factor=2, mode="nearest")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._forward_level(self.depth, x)


# The emotion branch, the part that learns when EmoNet is trained (the FAN stays frozen).
EMOTION_BRANCH = ("conv1x1_input_emo_2", "emo_net_2", "emo_fc_2")


class EmoNet(nn.Module):
    """FAN backbone (stem + 2 stacked hourglasses giving 68 landmark heatmaps) and the emotion
    head, which weights the hourglass features by the summed heatmaps (attention).

    The published weights have 5 or 8 classes; a fine-tuned model any number from 2. `classes`
    names them (the published names for 5 and 8 unless the weights say otherwise)."""

    def __init__(self, nclass: int = 8, num_stacks: int = 2, n_emo_blocks: int = 4):
        super().__init__()
        if nclass < 2:
            raise ValueError(f"nclass must be at least 2, not {nclass}")
        self.nclass = nclass
        self.classes = Classes.default(nclass)
        self.num_stacks = num_stacks

        # Stem: 256x256 input -> 64x64 features.
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = ConvBlock(64, 128)
        self.conv3 = ConvBlock(128, 128)
        self.conv4 = ConvBlock(128, 256)

        for i in range(num_stacks):
            self.add_module(f"m{i}", HourGlass(depth=4, features=256))
            self.add_module(f"top_m_{i}", ConvBlock(256, 256))
            self.add_module(f"conv_last{i}", nn.Conv2d(256, 256, kernel_size=1))
            self.add_module(f"bn_end{i}", nn.BatchNorm2d(256))
            self.add_module(f"l{i}", nn.Conv2d(256, N_LANDMARKS, kernel_size=1))
            if i < num_stacks - 1:
                self.add_module(f"bl{i}", nn.Conv2d(256, 256, kernel_size=1))
                self.add_module(f"al{i}", nn.Conv2d(N_LANDMARKS, 256, kernel_size=1))

        # Emotion head: stem features + every stack's features, 4 blocks each halving 64 -> 4.
        self.conv1x1_input_emo_2 = nn.Conv2d(256 * (num_stacks + 1), 256, kernel_size=1)
        emo_layers: list[nn.Module] = []
        for _ in range(n_emo_blocks):
            emo_layers += [ConvBlock(256, 256), nn.MaxPool2d(2, 2)]
        self.emo_net_2 = nn.Sequential(*emo_layers)
        self.avg_pool_2 = nn.AvgPool2d(4)
        self.emo_fc_2 = nn.Sequential(
            nn.Linear(256, 128),
            nn.BatchNorm1d(128),
            nn.ReLU(inplace=True),
            nn.Linear(128, nclass + 2),  # class logits, then valence and arousal
        )

    def forward(self, x: torch.Tensor) -> EmoNetOutput:
        """x: (B, 3, 256, 256) RGB in [0, 1], no mean/std normalisation."""
        features, heatmap = self.fan(x)
        head, embedding = self.emotion(features)
        return EmoNetOutput(
            expression=head[:, : self.nclass],
            valence=head[:, self.nclass],
            arousal=head[:, self.nclass + 1],
            heatmap=heatmap,
            embedding=embedding,
        )

    # forward() in its stages: fan() = stem(), stack() for each hourglass, attend(); then
    # emotion(). Training runs the frozen stages without gradients.

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """256x256 input -> (B, 256, 64, 64) features."""
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(self.conv2(x), 2, stride=2)
        return self.conv4(self.conv3(x))

    def stack(
        self, i: int, previous: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Hourglass i on `previous`: its features, its heatmaps and the next stack's input."""
        ll = self._modules[f"top_m_{i}"](self._modules[f"m{i}"](previous))
        ll = F.relu(self._modules[f"bn_end{i}"](self._modules[f"conv_last{i}"](ll)))
        heatmap = self._modules[f"l{i}"](ll)
        if i < self.num_stacks - 1:
            ll = self._modules[f"bl{i}"](ll)
            previous = previous + ll + self._modules[f"al{i}"](heatmap)
        return ll, heatmap, previous

    @staticmethod
    def attend(
        x: torch.Tensor, stack_features: list[torch.Tensor], heatmap: torch.Tensor
    ) -> torch.Tensor:
        """The emotion branch's input: the stem features and every stack's features weighted
        by the summed last heatmaps (attention), (B, 256 * (stacks + 1), 64, 64)."""
        attention = heatmap.sum(dim=1, keepdim=True)
        return torch.cat((x, torch.cat(stack_features, dim=1) * attention), dim=1)

    def fan(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The face-alignment network: the emotion branch's input and the last heatmaps."""
        x = self.stem(x)
        previous = x
        stack_features = []
        heatmap = x  # reassigned by every stack
        for i in range(self.num_stacks):
            ll, heatmap, previous = self.stack(i, previous)
            stack_features.append(ll)
        return self.attend(x, stack_features, heatmap), heatmap

    def emotion(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The emotion branch: (B, nclass + 2) float32 head outputs (class logits, valence,
        arousal) and the (B, 256) pooled embedding entering the final head."""
        features = self.emo_net_2(self.conv1x1_input_emo_2(features))
        embedding = self.avg_pool_2(features).flatten(1).float()
        # The head is tiny; under reduced-precision autocast it still runs in float32 so that
        # valence and arousal keep their digits instead of bfloat16's three.
        with torch.autocast(embedding.device.type, enabled=False):
            head = self.emo_fc_2(embedding)
        return head, embedding
