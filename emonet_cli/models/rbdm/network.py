"""The RBDM network in PyTorch, layer for layer as the module's Keras definition.

Module names are the Keras layer names (Conv1, bn_Conv1, block_1_expand, ..., Conv_1_bn,
valence_arousal, emotions), so the .h5 reader maps weights by name. Keras semantics kept:
BatchNormalization epsilon 1e-3, ReLU6, TensorFlow's 'same' padding for the stride-2 stem
(bottom/right padded) and `correct_pad` ZeroPadding2D before each stride-2 depthwise conv.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from emonet_cli.models.rbdm.architecture import (
    BLOCKS,
    BN_EPSILON,
    EXPRESSION_CLASSES,
    EXPRESSION_HEAD,
    FIRST_FILTERS,
    LAST_FILTERS,
    VA_HEAD,
    Block,
    correct_pad,
    tf_same_pad,
)


class RbdmOutput(NamedTuple):
    expression: torch.Tensor  # (B, 8) the "emotions" Dense before its softmax
    valence_arousal: torch.Tensor  # (B, 2) after tanh, in [-1, 1]
    pooled: torch.Tensor  # (B, 1280) GlobalAveragePooling2D of out_relu


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPSILON)


def _relu6(x: torch.Tensor) -> torch.Tensor:
    return F.hardtanh(x, 0.0, 6.0)


class InvertedResidual(nn.Module):
    """keras.applications.mobilenet_v2._inverted_res_block; children named as its layers
    without the block prefix (the parent registers them under the full Keras names)."""

    def __init__(self, block: Block):
        super().__init__()
        self.block = block
        if block.expansion != 1:
            self.expand = nn.Conv2d(block.in_channels, block.hidden, 1, bias=False)
            self.expand_BN = _bn(block.hidden)
        self.depthwise = nn.Conv2d(
            block.hidden, block.hidden, 3, stride=block.stride, groups=block.hidden, bias=False
        )
        self.depthwise_BN = _bn(block.hidden)
        self.project = nn.Conv2d(block.hidden, block.filters, 1, bias=False)
        self.project_BN = _bn(block.filters)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs
        if self.block.expansion != 1:
            x = _relu6(self.expand_BN(self.expand(x)))
        if self.block.stride == 2:
            top, bottom = correct_pad(x.shape[-2])
            left, right = correct_pad(x.shape[-1])
            x = F.pad(x, (left, right, top, bottom))  # ZeroPadding2D, then 'valid'
        else:
            x = F.pad(x, (1, 1, 1, 1))  # 'same' for a 3x3 stride-1 kernel
        x = _relu6(self.depthwise_BN(self.depthwise(x)))
        x = self.project_BN(self.project(x))  # linear bottleneck: no activation
        return inputs + x if self.block.residual else x


class RbdmNet(nn.Module):
    """MobileNetV2 (alpha 1.0, include_top=False) + the valence/arousal and emotions heads.
    Takes NCHW float input already scaled to [-1, 1] (mobilenet.preprocess_input)."""

    def __init__(self, nclass: int = EXPRESSION_CLASSES):
        super().__init__()
        self.nclass = nclass
        self.Conv1 = nn.Conv2d(3, FIRST_FILTERS, 3, stride=2, bias=False)
        self.bn_Conv1 = _bn(FIRST_FILTERS)
        self.blocks = nn.ModuleList(InvertedResidual(b) for b in BLOCKS)
        self.Conv_1 = nn.Conv2d(BLOCKS[-1].filters, LAST_FILTERS, 1, bias=False)
        self.Conv_1_bn = _bn(LAST_FILTERS)
        setattr(self, VA_HEAD, nn.Linear(LAST_FILTERS, 2))
        setattr(self, EXPRESSION_HEAD, nn.Linear(LAST_FILTERS, nclass))

    def keras_modules(self) -> dict[str, nn.Module]:
        """Each Keras layer name -> the module holding its weights."""
        found = {name: getattr(self, name) for name in ("Conv1", "bn_Conv1", "Conv_1")}
        found.update(Conv_1_bn=self.Conv_1_bn)
        for block in self.blocks:
            for child, module in block.named_children():
                found[block.block.prefix + child] = module
        found[VA_HEAD] = getattr(self, VA_HEAD)
        found[EXPRESSION_HEAD] = getattr(self, EXPRESSION_HEAD)
        return found

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """Conv1 ('same', stride 2) -> bn_Conv1 -> Conv1_relu."""
        top, bottom = tf_same_pad(x.shape[-2], 3, 2)
        left, right = tf_same_pad(x.shape[-1], 3, 2)
        return _relu6(self.bn_Conv1(self.Conv1(F.pad(x, (left, right, top, bottom)))))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The base model's output: out_relu, (B, 1280, 7, 7) for a 224x224 input."""
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return _relu6(self.Conv_1_bn(self.Conv_1(x)))

    def heads(self, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(emotions before softmax, tanh(valence_arousal)) from the pooled features."""
        va = torch.tanh(getattr(self, VA_HEAD)(pooled))
        return getattr(self, EXPRESSION_HEAD)(pooled), va

    def forward(self, x: torch.Tensor) -> RbdmOutput:
        # Both heads' GlobalAveragePooling2D layers pool the same map: computed once.
        pooled = self.features(x).mean(dim=(2, 3))
        expression, va = self.heads(pooled)
        return RbdmOutput(expression, va, pooled)
