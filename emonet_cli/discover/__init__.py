"""emonet-cli as a DISCOVER module: NOVA (or any script) posts a `/process` request naming the
module's trainer, and DISCOVER's `du-process` runs our streaming pipeline on the session's
video and BlazeFace boxes, writing the expression, valence and arousal annotations.

- `spec`: the module's ids, its trainer file and its options (the one table of defaults);
- `faces`: where the faces come from (the BlazeFace stream, later the built-in detector);
- `results`: per-frame results turned into the rows of NOVA annotations and streams;
- `processor`: the class DISCOVER instantiates (needs hcai-discover-utils, imported only there);
- `install`: writes the module folder into a DISCOVER modules directory.
"""

from emonet_cli.discover.install import MODULE_FOLDER, install_module

__all__ = ["MODULE_FOLDER", "install_module"]
