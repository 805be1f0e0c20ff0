"""Decoding: frames and what a container says (`frames`), still images (`images`), videos
(`video`), which frames a run takes (`selection`) and the process settings that make decoding
and the model fast (`tuning`). No torch."""
