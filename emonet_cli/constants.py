"""What EmoNet outputs and how its results are named, for every module, without torch.

The model (`model.py`), the writers, plot, render and the command line all read these; keeping
them here lets the modules that never run the network start without importing torch.
"""

from __future__ import annotations

NCLASS_CHOICES = (5, 8)
DEFAULT_NCLASS = 8
N_LANDMARKS = 68
INPUT_SIZE = 256  # side of the aligned face crop the network sees
HEATMAP_SIZE = 64
EMBEDDING_SIZE = 256

CLASS_NAMES = {
    8: ("Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger", "Contempt"),
    5: ("Neutral", "Happy", "Sad", "Surprise", "Fear"),
}
# NOVA colours (#AARRGGBB), one per class in the published order.
CLASS_COLORS = {
    "Neutral": "#FF9E9E9E",
    "Happy": "#FFFFC107",
    "Sad": "#FF2196F3",
    "Surprise": "#FFFF9800",
    "Fear": "#FF9C27B0",
    "Disgust": "#FF4CAF50",
    "Anger": "#FFF44336",
    "Contempt": "#FF795548",
}

# The published demo smooths the raw outputs over the current and the previous 4 frames.
SMOOTHING_WEIGHTS = (0.1, 0.1, 0.15, 0.25, 0.4)  # oldest to newest

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEFAULT_MIN_FACE_CONF = 0.65  # DISCOVER's BlazeFace threshold for a face
