"""Errors a user can cause. The CLI prints them as one line and exits with status 1."""


class EmonetError(Exception):
    """Base class: a problem with the user's input, files, weights or environment."""


class FormatError(EmonetError):
    """A stream, annotation or label file that cannot be read as its format says."""


class WeightsError(EmonetError):
    """Weights that are missing, corrupt, unsafe or of the wrong model."""


class InputError(EmonetError):
    """A video or image that cannot be decoded, or an input without a box source."""


class ModelOutputError(EmonetError):
    """Model outputs that are not finite numbers (broken weights, fp16 overflow)."""


class DeviceMemoryError(EmonetError):
    """A batch that does not fit in the device's memory: every input would fail alike, so it
    ends the run (the remedy is a smaller --batch-size)."""
