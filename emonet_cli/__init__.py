"""emonet-cli: batch facial-affect analysis of videos with the published EmoNet model."""

__version__ = "0.1.0"
