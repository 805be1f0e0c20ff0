"""RBDM's input: the crop the DISCOVER module cuts from a BlazeFace box, and its scaling.

The module converts BlazeFace's normalised (ymin, xmin, ymax, xmax) to frame pixels and
hands the box to its DataAugmentor(224, 224), which (augmentation off) takes the box centre
and scale = (width + height) / 220, maps a square of side 200 * scale about the centre onto
224x224 (`get_transform`) and warps with cv2.warpAffine's defaults (bilinear, black border).
That is the EmoNet crop rule at 224 pixels, computed in float32: the module's box comes from a
float32 SSI stream and stays float32 through its arithmetic. `RBDM_CROP` is therefore
`module_affine_from_box` at size 224 (the float64 rule moves 1-117 pixels of most crops by a
grey level on real streams); tests/test_discover_crops.py compares it with the module's code
on a real clip. The commented-out older path of the module (slicing the box and cv2.resize) is
not what it runs. The frames are RGB, as the module receives them from discover_utils.

The network's first op is keras.applications.mobilenet.preprocess_input ('tf' mode):
x / 127.5 - 1, on RGB; the predictor applies it (`normalise`).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from emonet_cli.faces.align import FaceCrop, affine_full_frame, module_affine_from_box
from emonet_cli.models.rbdm.architecture import INPUT_SIZE

RBDM_CROP = FaceCrop(
    "the RBDM module's crop: a square of side 200 * (w + h) / 220 about the box centre, "
    f"warped bilinearly onto {INPUT_SIZE}x{INPUT_SIZE}, in the module's float32 arithmetic",
    INPUT_SIZE,
    partial(module_affine_from_box, size=INPUT_SIZE),
    partial(affine_full_frame, size=INPUT_SIZE),
)


def normalise(crops: np.ndarray) -> np.ndarray:
    """uint8 RGB -> float32 in [-1, 1], as mobilenet.preprocess_input."""
    return crops.astype(np.float32) / 127.5 - 1.0
