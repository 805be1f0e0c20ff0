"""What the model families publish, and how each one's weights file is found: the file by
expression classes, the variable naming a file or folder (`models/weights.py` does the
looking; this module needs nothing, so that the registry and the weights code both build on it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from emonet_cli.constants import DEFAULT_NCLASS

URL_TEMPLATE = (
    "https://github.com/face-analysis/emonet/raw/refs/heads/master/pretrained/emonet_{nclass}.pth"
)
WEIGHTS_ENV = "EMONET_WEIGHTS"


@dataclass(frozen=True)
class PublishedWeights:
    """A weights file as its family publishes it. A file made here (EMOTIC's, converted from
    the published files) has no URL to fetch it from and no SHA-256 to check it against."""

    nclass: int
    filename: str
    url: str = ""
    sha256: str = ""


@dataclass(frozen=True)
class WeightsLookup:
    """How one model family's weights are found: the file, by expression classes, and the
    variable naming a file or folder; the overrides of its URL and SHA-256 are that variable
    with `_URL` and `_SHA256_{nclass}` appended."""

    family: str  # as --model and `emonet weights` name it
    label: str  # as messages name it
    files: Mapping[int, PublishedWeights]
    env: str
    # Files that make a named folder the weights themselves, read from there (EMOTIC's four
    # published files), when the folder does not hold the file.
    folder_files: tuple[str, ...] = ()
    how_to_get: str = ""  # for files without a URL: where they come from, as an instruction
    default_nclass: int | None = None  # the file used when none is asked for: the fewest classes

    @property
    def url_env(self) -> str:
        return f"{self.env}_URL"

    def sha256_env(self, nclass: int) -> str:
        return f"{self.env}_SHA256_{nclass}"

    @property
    def several(self) -> bool:
        """Whether it has a file per class count (then messages and commands name it)."""
        return len(self.files) > 1

    @property
    def nclass(self) -> int:
        """The class count of the file used when none is asked for."""
        return self.default_nclass if self.default_nclass is not None else min(self.files)

    def subject(self, nclass: int) -> str:
        model = f" for the {nclass}-class model" if self.several else ""
        return f"{self.label} weights{model}"

    def fetch_command(self, nclass: int) -> str:
        family = "" if self.family == EMONET_LOOKUP.family else f" {self.family}"
        return f"emonet weights fetch{family}{f' --nclass {nclass}' if self.several else ''}"


PUBLISHED: dict[int, PublishedWeights] = {
    nclass: PublishedWeights(
        nclass=nclass,
        filename=f"emonet_{nclass}.pth",
        url=URL_TEMPLATE.replace("{nclass}", str(nclass)),
        sha256=sha256,
    )
    for nclass, sha256 in (
        (5, "1d8fac689dc04fc65a8a25c050bd5888e1fc794fcf71c2b20a1f2e6b78d933dd"),
        (8, "52918cffba56f31886e6959f6837266a5f7ef5c0a552baf4c6dabe1e8fa9bc97"),
    )
}
EMONET_LOOKUP = WeightsLookup(
    "emonet", "EmoNet", PUBLISHED, WEIGHTS_ENV, default_nclass=DEFAULT_NCLASS
)
