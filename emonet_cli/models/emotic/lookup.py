"""Where EMOTIC's weights are found (no torch needed): the file `emonet weights convert
emotic` writes, or a folder of the four published files, looked for as every family's weights
are (see models/weights.py). The published files cannot be fetched: they are on Google Drive,
behind the links of the reference's README."""

from __future__ import annotations

from pathlib import Path

from emonet_cli.models.published import PublishedWeights, WeightsLookup
from emonet_cli.models.weights import find_weights, weights_not_found

CONTEXT_FILE = "model_context1.pth"
BODY_FILE = "model_body1.pth"
FUSION_FILE = "model_emotic1.pth"
THRESHOLDS_FILE = "val_thresholds.npy"
PUBLISHED_FILES = (CONTEXT_FILE, BODY_FILE, FUSION_FILE, THRESHOLDS_FILE)
CONVERTED_FILE = "emotic_converted.pth"  # what `emonet weights convert emotic` writes
N_CATEGORIES = 26  # the key of its file: categories, as other families key theirs by classes
REFERENCE_URL = "https://github.com/Tandon-A/emotic"
WEIGHTS_ENV = "EMONET_EMOTIC_WEIGHTS"

HOW_TO_GET = (
    f"download {', '.join(PUBLISHED_FILES)} from the Google Drive links in the README of "
    f"{REFERENCE_URL} (they cannot be fetched from here) into a folder DIR, then run "
    f"`emonet weights convert emotic DIR`, or set {WEIGHTS_ENV} or pass --weights to use DIR"
)

EMOTIC_LOOKUP = WeightsLookup(
    family="emotic",
    label="EMOTIC",
    files={N_CATEGORIES: PublishedWeights(N_CATEGORIES, CONVERTED_FILE)},  # no URL, no SHA-256
    env=WEIGHTS_ENV,
    folder_files=PUBLISHED_FILES,
    how_to_get=HOW_TO_GET,
)


def find_emotic_weights(weights: str | Path | None = None) -> Path:
    """The converted file, or a folder of the published files, that EMOTIC would load: from
    --weights (the file, a folder holding it, or a folder of the published files), else
    $EMONET_EMOTIC_WEIGHTS (the same), else the converted file in the checkout's weights/ or
    the cache. Found nowhere: the one-line error says where to get the files."""
    found = find_weights(N_CATEGORIES, weights, EMOTIC_LOOKUP)
    if found is None:
        raise weights_not_found(N_CATEGORIES, weights, lookup=EMOTIC_LOOKUP)
    return found
