"""Process-wide settings that make analysis fast (and keep the decoders' own messages off
stderr), applied by one explicit call.

They change the whole process (every thread, every library), so the command line, the
benchmark or a worker process calls `tune_process()` once; constructing a Predictor or an
Analysis never does it behind a Python user's back.
"""

from __future__ import annotations

import ctypes
import functools
import platform

import cv2

from emonet_cli.video import mute_native_messages

# glibc's malloc hands blocks this large straight back to the kernel on free, so every
# activation of every pass was page-faulted in and zeroed again (~18k faults per frame, 9% of
# the time in float32). Keeping them in the heap removes that.
MALLOC_MMAP_THRESHOLD = 64 << 20
MALLOC_TRIM_THRESHOLD = 128 << 20
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters from glibc's malloc.h


@functools.lru_cache(maxsize=1)
def keep_freed_memory() -> bool:
    """Make glibc keep freed activation buffers for reuse instead of unmapping them; a no-op
    elsewhere. Process-wide, done once; True if it took effect."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    # Some glibc versions cap the mmap threshold at 32 MiB: fall back on that.
    mmap_ok = libc.mallopt(M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD) or libc.mallopt(
        M_MMAP_THRESHOLD, 32 << 20
    )
    return bool(mmap_ok and libc.mallopt(M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD))


def tune_process() -> None:
    """Settings for a process that decodes video and runs the model on the CPU cores."""
    # Decoding shares the cores with the model: OpenCV's own thread pool on top of torch's
    # oversubscribes them (measured 1.7x slower end to end on 2 cores).
    cv2.setNumThreads(1)
    keep_freed_memory()
    # One line per failing input: the decoders' own messages stay off stderr.
    mute_native_messages()
