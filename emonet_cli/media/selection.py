"""Which frames of a video an analysis looks at (`--start`, `--end`, `--sample-rate`), and how
the analysed frames are laid out on the time series written (NOVA annotations, SSI streams).

Numpy only: the decoder (video.MediaReader) picks the frames, the writers lay them out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from emonet_cli.errors import InputError

if TYPE_CHECKING:
    from emonet_cli.media.frames import MediaInfo

TIME_EPSILON = 1e-6  # frame times are rounded to microseconds
RATE_TOLERANCE = 5e-4  # a rate written with 3 decimals (29.970) is the video's (29.97003)


@dataclass(frozen=True)
class FrameSelection:
    """The frames of a video an analysis looks at: those at `start` <= t < `end` (seconds from
    the first frame) and, with `sample_rate` (Hz), of those only the first frame at or after
    each time k / sample_rate (k = 0, 1, 2...: a grid from t = 0, so that samples at the same
    rate line up across videos and with NOVA's annotations). Frames in between are skipped
    without being converted to RGB. Frames keep their true index and time. Still images
    ignore the selection."""

    start: float = 0.0
    end: float | None = None
    sample_rate: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.start) and self.start >= 0):
            raise ValueError("start must be a time in seconds, 0 or more")
        if self.end is not None and not self.end > self.start:
            raise ValueError("end must be after start")
        if self.sample_rate is not None and not (
            math.isfinite(self.sample_rate) and self.sample_rate > 0
        ):
            raise ValueError("sample_rate must be a positive number of frames per second")

    def as_dict(self) -> dict:
        """What the summary JSON records."""
        return {"start": self.start, "end": self.end, "sample_rate": self.sample_rate}

    def sample_of(self, index: int, time: float) -> int:
        """The sample of the output time series (one per frame, or one per 1 / sample_rate
        from t = 0) that a selected frame's results belong to: with a sample rate, the last
        grid point at or before the frame (the frame covers every grid point since the
        previous selected frame's)."""
        if self.sample_rate is None:
            return index
        return math.floor((time + TIME_EPSILON) * self.sample_rate)

    def first_sample(self) -> int | None:
        """The first grid point at or after `start` (None without a sample rate: then the
        first selected frame's index)."""
        if self.sample_rate is None:
            return None
        return math.ceil((self.start - TIME_EPSILON) * self.sample_rate)

    def check(self, info: MediaInfo) -> None:
        """Refuse, with one line, a selection that cannot fit the video."""
        if info.is_image:
            return
        rate = self.sample_rate
        if rate is not None and rate > info.fps + RATE_TOLERANCE:
            raise InputError(
                f"{info.path}: --sample-rate {rate:g} is above the video's frame rate "
                f"({info.fps:g} frames/s)"
            )
        # The container's duration may be an estimate: refuse only what is clearly past it
        # here; a start past the last frame is found when decoding (see MediaReader).
        if info.frame_count > 1 and self.start > info.duration + 1.0:
            raise InputError(
                f"{info.path}: --start {self.start:g} s is past the end of the video "
                f"({info.duration:.3f} s)"
            )

    def expected_frames(self, info: MediaInfo) -> int:
        """About how many frames will be selected (for a progress bar)."""
        if info.is_image:
            return 1
        end = info.duration if self.end is None else min(self.end, info.duration)
        span = max(end - self.start, 0.0)
        return max(1, round(span * (self.sample_rate or info.fps)))


class Picker:
    """The frame-by-frame decision of a FrameSelection, from the frames' times alone."""

    def __init__(self, selection: FrameSelection):
        self.selection = selection
        self.next_sample = selection.first_sample()

    def past_end(self, time: float) -> bool:
        end = self.selection.end
        return end is not None and time >= end - TIME_EPSILON

    def wants(self, index: int, time: float) -> bool:
        if time < self.selection.start - TIME_EPSILON or self.past_end(time):
            return False
        if self.next_sample is None:
            return True
        sample = self.selection.sample_of(index, time)
        if sample < self.next_sample:
            return False
        self.next_sample = sample + 1
        return True


class Timeline:
    """Lays the analysed frames of a selection out on a time series that starts at t = 0, as
    NOVA and SSI read them: sample k at k / rate. Samples before the selection's first frame
    are padding (no face), so that the series lines up with the video; with a sample rate, a
    frame that covers several grid points (a variable frame rate's long frame) fills each."""

    def __init__(self, selection: FrameSelection):
        self.selection = selection
        self.first = selection.first_sample()
        self.next = 0  # the next sample to write

    def rows(self, frame: np.ndarray, time: np.ndarray) -> np.ndarray:
        """For each sample the batch of these frames completes, its row in the batch, or -1
        for padding."""
        rows: list[int] = []
        for row, (index, seconds) in enumerate(zip(frame, time)):
            sample = self.selection.sample_of(int(index), float(seconds))
            if self.first is None:
                self.first = sample
            rows.extend(-1 if k < self.first else row for k in range(self.next, sample + 1))
            self.next = max(self.next, sample + 1)
        return np.asarray(rows, dtype=np.int64)


def laid_out(values: np.ndarray, rows: np.ndarray | None, fill) -> np.ndarray:
    """`values` (one per frame) as the samples `rows` lists, `fill` for padding."""
    if rows is None:
        return values
    out = np.empty((len(rows), *values.shape[1:]), dtype=values.dtype)
    out[...] = fill
    used = rows >= 0
    out[used] = values[rows[used]]
    return out
