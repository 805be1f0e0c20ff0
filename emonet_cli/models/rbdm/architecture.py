"""The RBDM network's layers as the DISCOVER module builds them in Keras, without torch.

`keras.applications.MobileNetV2(weights=None, include_top=False)` (alpha 1.0) on a 224x224x3
input, then two heads on the same 7x7x1280 map: GlobalAveragePooling2D -> Dense(2, tanh,
"valence_arousal") and GlobalAveragePooling2D -> Dense(8, softmax, "emotions"). The model's
outputs are [valence_arousal, emotions]. The table here names every layer holding weights,
with its Keras weight names and shapes, so the network, the .h5 reader and the stand-in
writer agree on one list.
"""

from __future__ import annotations

from dataclasses import dataclass

INPUT_SIZE = 224
EXPRESSION_CLASSES = 8
CLASS_NAMES = ("Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger", "Contempt")
FIRST_FILTERS = 32
LAST_FILTERS = 1280
BN_EPSILON = 1e-3  # Keras' MobileNetV2 BatchNormalization(epsilon=1e-3)
VA_HEAD = "valence_arousal"
EXPRESSION_HEAD = "emotions"
BN_WEIGHTS = ("gamma", "beta", "moving_mean", "moving_variance")


@dataclass(frozen=True)
class Block:
    """One inverted-residual block of keras.applications.MobileNetV2 (alpha 1.0)."""

    block_id: int
    in_channels: int
    filters: int
    stride: int
    expansion: int

    @property
    def prefix(self) -> str:
        # Block 0 has no expansion layer and Keras calls it "expanded_conv_".
        return f"block_{self.block_id}_" if self.block_id else "expanded_conv_"

    @property
    def hidden(self) -> int:
        return self.in_channels * self.expansion

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.in_channels == self.filters


def _blocks() -> tuple[Block, ...]:
    # (filters, stride, expansion) in the order of keras.applications.MobileNetV2's body.
    plan = [(16, 1, 1), (24, 2, 6), (24, 1, 6), (32, 2, 6), (32, 1, 6), (32, 1, 6)]
    plan += [(64, 2, 6), (64, 1, 6), (64, 1, 6), (64, 1, 6), (96, 1, 6), (96, 1, 6)]
    plan += [(96, 1, 6), (160, 2, 6), (160, 1, 6), (160, 1, 6), (320, 1, 6)]
    blocks, channels = [], FIRST_FILTERS
    for block_id, (filters, stride, expansion) in enumerate(plan):
        blocks.append(Block(block_id, channels, filters, stride, expansion))
        channels = filters
    return tuple(blocks)


BLOCKS = _blocks()


def _bn(name: str, channels: int) -> tuple[str, tuple[tuple[str, tuple[int, ...]], ...]]:
    return name, tuple((f"{name}/{w}:0", (channels,)) for w in BN_WEIGHTS)


def _conv(name: str, shape: tuple[int, ...]) -> tuple[str, tuple[tuple[str, tuple[int, ...]]]]:
    return name, ((f"{name}/kernel:0", shape),)  # MobileNetV2's convolutions have no bias


def _dense(name: str, inputs: int, outputs: int):
    return name, ((f"{name}/kernel:0", (inputs, outputs)), (f"{name}/bias:0", (outputs,)))


def keras_layers() -> list[tuple[str, tuple[tuple[str, tuple[int, ...]], ...]]]:
    """Every layer with weights, in the Keras model's order: (layer name, ((weight name,
    Keras shape), ...)). Kernels are HWIO; depthwise kernels (H, W, C, 1)."""
    layers = [_conv("Conv1", (3, 3, 3, FIRST_FILTERS)), _bn("bn_Conv1", FIRST_FILTERS)]
    for b in BLOCKS:
        p = b.prefix
        if b.expansion != 1:
            layers += [_conv(p + "expand", (1, 1, b.in_channels, b.hidden))]
            layers += [_bn(p + "expand_BN", b.hidden)]
        layers += [_conv(p + "depthwise", (3, 3, b.hidden, 1)), _bn(p + "depthwise_BN", b.hidden)]
        layers += [_conv(p + "project", (1, 1, b.hidden, b.filters))]
        layers += [_bn(p + "project_BN", b.filters)]
    layers += [_conv("Conv_1", (1, 1, BLOCKS[-1].filters, LAST_FILTERS))]
    layers += [_bn("Conv_1_bn", LAST_FILTERS)]
    layers += [_dense(VA_HEAD, LAST_FILTERS, 2), _dense(EXPRESSION_HEAD, LAST_FILTERS, 8)]
    return layers


def correct_pad(size: int) -> tuple[int, int]:
    """(before, after) zero padding Keras' `imagenet_utils.correct_pad` puts before a
    stride-2 3x3 'valid' depthwise convolution: one more after than before on even sizes."""
    adjust = 1 - size % 2
    return 1 - adjust, 1


def tf_same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of TensorFlow's 'same' convolution: the odd pixel goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2
