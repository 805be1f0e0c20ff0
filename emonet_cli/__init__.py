"""emonet-cli: batch facial-affect analysis of videos with the published EmoNet model.

The public API, imported on first use so that `import emonet_cli` (and `emonet --help`) stays
quick::

    import emonet_cli

    model = emonet_cli.ModelOptions(nclass=8, precision="fp32")
    for outcome in emonet_cli.run_many(
        emonet_cli.find_media([Path("videos")], recursive=True),
        boxes=emonet_cli.BoxOptions(bbox_dir=Path("boxes")),
        model=model,
    ):
        print(outcome.line())
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# name -> module that defines it
_PUBLIC = {
    "load_model": "emonet_cli.models.emonet.checkpoint",
    "Predictor": "emonet_cli.models.emonet.inference",
    "Analysis": "emonet_cli.analysis.pipeline",
    "AnalysisSettings": "emonet_cli.analysis.pipeline",
    "analyze_file": "emonet_cli.analysis.analyze",
    "BoxOptions": "emonet_cli.faces",
    "BoxSource": "emonet_cli.faces",
    "DetectionSettings": "emonet_cli.faces.detection.detector",
    "OutputOptions": "emonet_cli.outputs.writers",
    "ModelOptions": "emonet_cli.run.one_input",
    "Outcome": "emonet_cli.run.one_input",
    "run_many": "emonet_cli.run.runner",
    "find_media": "emonet_cli.media.video",
    "read_results": "emonet_cli.outputs.results",
    "tune_process": "emonet_cli.media.tuning",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'emonet_cli' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
