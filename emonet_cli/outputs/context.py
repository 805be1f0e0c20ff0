"""What every output writer is told (`OutputOptions`, `WriterContext`) and what it answers to
(`ResultWriter`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from emonet_cli.constants import Classes
from emonet_cli.media.frames import MediaInfo
from emonet_cli.media.selection import FrameSelection, Timeline
from emonet_cli.models.registry import DEFAULT_FAMILY, ModelFamily, family
from emonet_cli.outputs.results import ResultBatch


@dataclass(frozen=True, kw_only=True)
class OutputOptions:
    """Which files to write, and where: `directory` None means beside each input."""

    directory: Path | None = None
    landmarks: bool = False
    embeddings: bool = False
    pose: bool = False  # S.pose.stream: yaw, pitch, roll per frame
    merge: bool = False
    annotation_ftype: str = "ASCII"
    box_stream: bool = False  # the faces were detected: write the box streams that were used
    family: str = DEFAULT_FAMILY  # the model family whose results are written (models.registry)

    @property
    def model(self) -> ModelFamily:
        return family(self.family)


@dataclass(frozen=True)
class WriterContext:
    """What every writer may need to know about the analysis it records."""

    info: MediaInfo
    nclass: int
    options: OutputOptions
    meta: dict  # role and description for NOVA headers
    selection: FrameSelection | None = None  # None: every frame (images ignore it)
    person: str | None = None  # whose results, with several people: `face1`...
    classes: Classes | None = None  # names and colours; None: the published ones of nclass

    @property
    def class_set(self) -> Classes:
        return self.classes or Classes.default(self.nclass)

    @property
    def frame_rate(self) -> float:
        """The sample rate of the time series written: the video's, or the selection's."""
        if self.info.is_image:
            return 1.0
        if self.selection is not None and self.selection.sample_rate is not None:
            return self.selection.sample_rate
        return self.info.fps

    def timeline(self) -> Timeline | None:
        """How analysed frames become the samples of a time series; None: one per row."""
        if self.selection is None or self.info.is_image:
            return None
        return Timeline(self.selection)


class ResultWriter(Protocol):
    """Writes one output (`paths`: all its files) batch by batch. finish() writes everything
    out, publish() renames it into place: see `close_all`."""

    paths: list[Path]

    def add(self, batch: ResultBatch) -> None: ...

    def finish(self) -> None: ...

    def publish(self) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


def close_all(writers: list[ResultWriter]) -> None:
    """Finish every writer, then publish them all: a disk that fills up while the last file is
    written out leaves none of an input's new files beside its earlier results."""
    for writer in writers:
        writer.finish()
    for writer in writers:
        writer.publish()
