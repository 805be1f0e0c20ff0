"""Process-wide settings that make analysis fast (and keep the decoders' own messages off
stderr), applied by one explicit call.

They change the whole process (every thread, every library), so the command line, the
benchmark or a worker process calls `tune_process()` once; constructing a Predictor or an
Analysis never does it behind a Python user's back.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform
import sys
import threading

import cv2

from emonet_cli.media.images import mute_native_messages

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


# Nice value added to the decoding thread (see background_thread).
BACKGROUND_NICE = 10


def background_thread() -> None:
    """Let the calling thread (the pipeline's decoding thread) run behind the model's threads.

    torch splits each operation between its threads (one per core) and waits for the slowest:
    a decoding thread that takes a core for a few milliseconds stalls the whole operation.
    At nice +10 it gets a core when the model's threads wait (between operations, or for the
    next batch), and a small share when they compete: measured on 2 cores with a thread
    decoding 720p H.264 without pause, the model's best time per frame was 2.6-2.9x the
    undisturbed one at the same priority and 1.05-1.26x at +10, where the thread still decoded
    about 60 frames/s (at +19 it starved: under 10). Linux only (the nice value of one
    thread); elsewhere, or where refused, nothing changes."""
    if sys.platform != "linux":
        return
    thread = threading.get_native_id()
    try:
        nice = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(nice + BACKGROUND_NICE, 19))
    except OSError:
        pass


def decoder_threads_beside(device) -> int:
    """FFmpeg's threads for a video decoded beside a model on `device` (a torch.device or its
    name). Beside a model on the CPU, one: the model needs every core (see DECODER_THREADS).
    Beside an accelerator the cores have nothing else to do, and one thread decodes 720p H.264
    at a few hundred frames/s where the model runs thousands of faces/s: FFmpeg's own choice
    (0, one per core; frame threads, the same frames) lets a single long video keep it fed,
    and several inputs at once (--decoders) share the cores between their decoders."""
    kind = getattr(device, "type", str(device).split(":")[0])
    return 1 if kind == "cpu" else 0


def tune_process() -> None:
    """Settings for a process that decodes video and runs the model on the CPU cores."""
    # Decoding shares the cores with the model: OpenCV's own thread pool on top of torch's
    # oversubscribes them (measured 1.7x slower end to end on 2 cores).
    cv2.setNumThreads(1)
    keep_freed_memory()
    # One line per failing input: the decoders' own messages stay off stderr.
    mute_native_messages()
