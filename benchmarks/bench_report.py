"""The benchmark's results: what one measurement found, the table, and the issue's targets,
each a ratio of two figures measured in the same run."""

from __future__ import annotations

from dataclasses import dataclass

TARGET_WHOLE_OF_MODEL = 0.90  # (b) end to end / the model alone
TARGET_PEAK_SHARE = 0.75  # the model alone / the matmul peak of its precision
TARGET_STARTUP_S = 2.0
TARGET_FP32 = 1.3  # (c)/(a)
TARGET_RSS_MB = 50.0  # long (b) minus short (b)


@dataclass
class Run:
    label: str
    frames: int
    wall_s: float  # the whole process, from its start to its exit
    work_s: float  # as the process timed itself: decoding to results, after the weights loaded
    peak_rss_mb: float
    precision: str
    exit_s: float = 0.0  # from the last output written to the process's end

    @property
    def startup_s(self) -> float:
        """From the process's start to its first frame: interpreter, imports, weights."""
        return self.wall_s - self.work_s - self.exit_s

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s


@dataclass
class ModelRun:
    """The model alone in one process: its speed and its start-up, split."""

    precision: str
    fps: float
    imports_s: float  # process start to the imports of `emonet analyze` done
    weights_s: float  # load, check and SHA-256 of the weights, Predictor set up
    first_batch_s: float  # the first batch, warm-up included
    steady_batch_s: float  # a batch after it


def format_table(
    runs: list[Run],
    baseline: Run,
    models: dict[str, ModelRun],
    gflop: float,
    peaks: dict[str, float],
) -> str:
    header = (
        "configuration",
        "frames",
        "wall s",
        "startup s",
        "exit s",
        "frames/s",
        "model alone",
        "of model",
        "x (a)",
        "model GFLOP/s",
        "of matmul peak",
        "peak RSS MB",
    )
    rows = []
    for run in runs:
        model = models.get(run.precision) if run is not baseline else None
        rate = model.fps * gflop if model else None
        peak = peaks.get(run.precision)
        rows.append(
            (
                run.label,
                str(run.frames),
                f"{run.wall_s:.1f}",
                f"{run.startup_s:.1f}",
                f"{run.exit_s:.1f}",
                f"{run.fps:.2f}",
                f"{model.fps:.2f}" if model else "-",
                f"{100 * run.fps / model.fps:.0f}%" if model else "-",
                f"{run.fps / baseline.fps:.2f}",
                f"{rate:.0f}" if rate else "-",
                f"{100 * rate / peak:.0f}% of {run.precision}" if rate and peak else "-",
                f"{run.peak_rss_mb:.0f}",
            )
        )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def family_lines(title: str, runs: dict[str, ModelRun], emonet: dict[str, ModelRun]) -> list[str]:
    """Another family's model alone beside EmoNet's, at each precision both were measured at
    in this run (one face per crop: faces/s)."""
    return [
        f"{title}, the model alone in {precision}: {run.fps:.2f} faces/s, "
        f"{run.fps / emonet[precision].fps:.2f}x EmoNet's {emonet[precision].fps:.2f} faces/s "
        f"(same run, precision and batches)"
        for precision, run in sorted(runs.items())
        if precision in emonet
    ]


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def print_targets(default, fp32, baseline, long_run, models, gflop, peaks) -> None:
    """The issue's targets, each a ratio of two figures of this run."""
    model = models[default.precision]
    whole = default.fps / model.fps
    print(
        f"(b) end to end / the model alone = {100 * whole:.0f}% (target >= "
        f"{100 * TARGET_WHOLE_OF_MODEL:.0f}%: {verdict(whole >= TARGET_WHOLE_OF_MODEL)}); "
        f"what (b) spends beyond the model: {default.wall_s - default.frames / model.fps:.1f} s"
    )
    for precision, run in sorted(models.items()):
        if precision in peaks:
            share = run.fps * gflop / peaks[precision]
            print(
                f"the model alone in {precision}: {100 * share:.0f}% of the {precision} matmul "
                f"peak (target >= {100 * TARGET_PEAK_SHARE:.0f}%: "
                f"{verdict(share >= TARGET_PEAK_SHARE)})"
            )
    startup = default.startup_s
    print(
        f"start-up of (b): {startup:.2f} s (target < {TARGET_STARTUP_S:g} s: "
        f"{verdict(startup < TARGET_STARTUP_S)}); in the model-alone process: interpreter and "
        f"imports {model.imports_s:.2f} s, weights (load, build, SHA-256, Predictor) "
        f"{model.weights_s:.2f} s; its first batch took {model.first_batch_s:.2f} s, a steady one "
        f"{model.steady_batch_s:.2f} s"
    )
    ratio = default.fps / baseline.fps
    print(f"(b)/(a) = {ratio:.2f}x with {default.precision}")
    fp32_ratio = fp32.fps / baseline.fps
    print(f"(c)/(a) = {fp32_ratio:.2f}x (target >= {TARGET_FP32:g}x: "
          f"{verdict(fp32_ratio >= TARGET_FP32)})")  # fmt: skip
    growth = long_run.peak_rss_mb - default.peak_rss_mb
    print(
        f"peak RSS of (b): {default.peak_rss_mb:.0f} MB at {default.frames} frames, "
        f"{long_run.peak_rss_mb:.0f} MB at {long_run.frames} frames, {growth:+.0f} MB "
        f"(target within {TARGET_RSS_MB:g} MB: {verdict(abs(growth) <= TARGET_RSS_MB)})"
    )


# The operators of the model's profile, by what they do; the rest is "other".
OPERATOR_NAMES = {
    "aten::cat": "concatenation",
    "aten::native_batch_norm": "batch norm",
    "aten::clamp_min": "ReLU",
    "aten::clamp_min_": "ReLU",
    "aten::add": "additions",
    "aten::add_": "additions",
    "aten::max_pool2d_with_indices": "max-pooling",
    "aten::upsample_nearest2d": "upsampling",
    "aten::copy_": "casts and copies",
    "aten::mul": "attention product",
    "aten::argmax": "landmark argmax",
}


def is_convolution(operator: str) -> bool:
    return "conv" in operator  # aten::conv2d, aten::convolution, aten::mkldnn_convolution...


def operators_line(result: dict, peaks: dict[str, float]) -> str:
    """Where the model's time goes: the convolutions' share and rate, then the memory-bound
    rest by kind, largest first."""
    precision, shares = result["precision"], result["shares"]
    conv = sum(share for name, share in shares.items() if is_convolution(name))
    kinds: dict[str, float] = {}
    for name, share in shares.items():
        if not is_convolution(name):
            kind = OPERATOR_NAMES.get(name, "other")
            kinds[kind] = kinds.get(kind, 0.0) + share
    kinds["other"] = kinds.get("other", 0.0) + max(1.0 - conv - sum(kinds.values()), 0.0)
    largest = sorted(kinds.items(), key=lambda item: -item[1])
    rest = ", ".join(f"{kind} {100 * share:.0f}%" for kind, share in largest if share >= 0.005)
    rate = result["conv_gflop_per_s"]
    peak = peaks.get(precision)
    of_peak = f" ({100 * rate / peak:.0f}% of the {precision} matmul peak)" if peak else ""
    return (
        f"the model's time in {precision} (torch.profiler): convolutions {100 * conv:.0f}% at "
        f"{rate:.0f} GFLOP/s{of_peak}; the rest, memory-bound around them: {rest}"
    )
