"""Where the time of one `emonet analyze` goes: start-up (imports, weights), the model, the
writers, and the decoding thread's own CPU time (decoding, box lookup, cropping).

    python benchmarks/profile_analysis.py VIDEO STREAM WEIGHTS [--precision P] [--inline]

Runs what the command line runs for one input, in this process, with timers around the
pipeline's parts (nothing in emonet_cli is changed). CPU times are per thread
(time.thread_time), so they hold up on a busy machine better than wall times do. `--inline`
decodes in the model's thread between batches instead of in the decoding thread, to compare.
"""

from __future__ import annotations

import argparse
import json
import queue
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

STARTED = time.perf_counter()
REPO = Path(__file__).resolve().parent.parent


class Timer:
    """Wall and thread-CPU seconds summed over the calls of a wrapped function."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0
        self.calls = 0
        self.first_wall: float | None = None

    def wrap(self, function):
        def timed(*args, **kwargs):
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                spent = time.perf_counter() - wall
                if self.first_wall is None:
                    self.first_wall = spent
                self.wall += spent
                self.cpu += time.thread_time() - cpu
                self.calls += 1

        return timed


def process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs=3, type=Path, metavar="VIDEO STREAM WEIGHTS")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--inline", action="store_true", help="decode in the model's thread")
    parser.add_argument(
        "--same-priority", action="store_true", help="the decoding thread not at nice +10"
    )
    parser.add_argument("--detect", action="store_true", help="detect the faces (STREAM unused)")
    parser.add_argument("--sample-rate", type=float, help="analyse frames at this rate")
    args = parser.parse_args(argv)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    video, stream, weights = args.inputs

    import emonet_cli.cli  # noqa: F401  (what `emonet` imports first)
    from emonet_cli.media.tuning import tune_process

    tune_process()
    import emonet_cli.analysis.analyze as analyze
    import emonet_cli.analysis.pipeline as pipeline
    from emonet_cli.faces import BoxSource
    from emonet_cli.media.selection import FrameSelection
    from emonet_cli.outputs.writers import OutputOptions
    from emonet_cli.run.one_input import ModelOptions

    imported = time.perf_counter()
    predictor, provenance = ModelOptions(
        weights=weights, device=args.device, precision=args.precision, offline=True
    ).load()
    loaded = time.perf_counter()

    model, producer, crops, writers = Timer(), Timer(), Timer(), Timer()
    predictor.__call__ = model.wrap(predictor.__call__)
    type(predictor).__call__ = lambda self, crops_: self.__dict__["__call__"](crops_)
    pipeline._decode_and_align = producer.wrap(pipeline._decode_and_align)
    crop_name = "crop_frame" if hasattr(pipeline, "crop_frame") else "crop_face"
    setattr(pipeline, crop_name, crops.wrap(getattr(pipeline, crop_name)))
    if args.inline:
        serialise(pipeline)
    if args.same_priority and hasattr(pipeline, "background_thread"):
        pipeline.background_thread = lambda: None
    open_writers = analyze.open_writers

    def timed_writers(context):
        opened = open_writers(context)
        for writer in opened:
            writer.add = writers.wrap(writer.add)
        return opened

    analyze.open_writers = timed_writers
    cpu_before = process_cpu()
    with tempfile.TemporaryDirectory() as out:
        options = OutputOptions(directory=Path(out))
        analysis_started = time.perf_counter()
        if args.detect:
            from emonet_cli.faces.detection.detector import DetectionSettings

            source = BoxSource(detect=DetectionSettings(device=args.device))
        else:
            source = BoxSource(path=stream)
        selection = FrameSelection(sample_rate=args.sample_rate) if args.sample_rate else None
        report = analyze.analyze_file(
            video,
            predictor,
            source,
            pipeline.AnalysisSettings(selection=selection),
            options=options,
            provenance=provenance,
        )
        analysis = time.perf_counter() - analysis_started
    frames = report.summary["frames"]
    result = {
        "frames": frames,
        "precision": predictor.precision,
        "decoding": "inline" if args.inline else "thread",
        "same_priority": args.same_priority,
        "detect": args.detect,
        "sample_rate": args.sample_rate,
        "imports_s": round(imported - STARTED, 3),
        "weights_s": round(loaded - imported, 3),
        "analysis_s": round(analysis, 3),
        "model_s": round(model.wall, 3),
        "model_first_batch_s": round(model.first_wall or 0.0, 3),
        "writers_s": round(writers.wall, 3),
        "rest_of_analysis_s": round(analysis - model.wall - writers.wall, 3),
        "decode_thread_cpu_ms_per_frame": round(1000 * producer.cpu / frames, 2),
        "of_which_crop_cpu_ms_per_frame": round(1000 * crops.cpu / frames, 2),
        "model_ms_per_frame": round(1000 * model.wall / frames, 1),
        "process_cpu_s_analysis": round(process_cpu() - cpu_before, 2),
    }
    print(json.dumps(result))
    return 0


class SerialQueue(queue.Queue):
    """The decoding thread's queue, made to take turns: it decodes the next batch only while
    the model's thread waits for it, never beside the model (for --inline)."""

    def __init__(self, maxsize: int = 0):
        super().__init__()
        self.turn = threading.Semaphore(0)

    def put(self, item, block=True, timeout=None):
        super().put(item)
        if item is not None and not isinstance(item, BaseException):
            self.turn.acquire()

    def get(self, block=True, timeout=None):
        self.turn.release()
        return super().get(block, timeout)


def serialise(pipeline) -> None:
    produce = pipeline._decode_and_align

    def taking_turns(reader, lookup, min_face_conf, batch_size, out, stop):
        out.turn.acquire()
        return produce(reader, lookup, min_face_conf, batch_size, out, stop)

    pipeline._decode_and_align = taking_turns
    pipeline.queue = type("queues", (), {"Queue": SerialQueue, "Empty": queue.Empty})


if __name__ == "__main__":
    sys.exit(main())
