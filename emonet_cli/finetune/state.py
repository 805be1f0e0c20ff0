"""The checkpoints of `emonet finetune`: the initial model (with a new final layer when the
class count changes), the files written each epoch (`best.pth`, `last.pth`) and what
`--resume` reads back.

Both files are the published state dict plus checkpoint.METADATA_KEY (see `checkpoint`):
class names, colours when given, how label files name the classes, the training settings,
the initial weights' SHA-256, the epoch and its validation scores. `last.pth` also keeps,
under the metadata's "resume", the optimizer and scheduler states and the metrics of every
epoch so far. Randomness is drawn from streams keyed by (seed, epoch, ...) (see `data`), so
the epoch number is all of the random state a resumed run needs.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from emonet_cli.errors import EmonetError
from emonet_cli.formats.fileio import atomic_path, remove_partial_files
from emonet_cli.models import registry
from emonet_cli.models.emonet.checkpoint import (
    HEAD_BIAS_KEY,
    HEAD_WEIGHT_KEY,
    METADATA_KEY,
    LoadedModel,
    read_checkpoint,
)
from emonet_cli.models.emonet.model import EmoNet
from emonet_cli.models.registry import DEFAULT_FAMILY, trainable_families

FORMAT = 1
BEST_NAME = "best.pth"
LAST_NAME = "last.pth"
PUBLISHED_INITS = {"published-8": 8, "published-5": 5}


def run_folder(out_dir: Path, resume: bool) -> tuple[Path, Path]:
    """The run folder made ready: (best.pth, last.pth) in it. A folder already holding a run
    is refused unless `resume` continues it."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EmonetError(f"cannot write into {out_dir}: {exc.strerror or exc}") from None
    best_path, last_path = out_dir / BEST_NAME, out_dir / LAST_NAME
    if not resume and last_path.exists():
        raise EmonetError(
            f"{out_dir} already holds a training run ({LAST_NAME}): --resume continues it, "
            "or train into another folder"
        )
    return best_path, last_path


def load_initial(
    init: str | Path, offline: bool = False, progress: bool = False, family: str = DEFAULT_FAMILY
) -> LoadedModel:
    """The weights training starts from: "published-8", "published-5" or a file (published
    layout, e.g. an earlier fine-tuned model), of a model family that can be trained."""
    entry = registry.family(family)
    if not entry.trainable:
        raise EmonetError(
            f"--model {family} cannot be fine-tuned (only {', '.join(trainable_families())})"
        )
    if entry.categories:
        raise EmonetError(
            f"--model {family} is trained from its dataset, not fine-tuned from weights "
            "(finetune.emotic_train.finetune_emotic)"
        )
    if str(init) in PUBLISHED_INITS:
        return entry.load(nclass=PUBLISHED_INITS[str(init)], offline=offline, progress=progress)
    if not Path(init).is_file():
        raise EmonetError(
            f"--init {init}: no such file (give {', '.join(PUBLISHED_INITS)} or a weights file)"
        )
    return entry.load(weights=Path(init), offline=True)


def adapt_head(model: EmoNet, nclass: int, seed: int) -> EmoNet:
    """`model` itself when it has `nclass` classes, else a copy with a new final layer: its
    class rows drawn as torch draws a new nn.Linear's (from `seed`), its valence and arousal
    rows those of `model`, which keep predicting as before."""
    if model.nclass == nclass:
        return model
    state = {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}
    weight, bias = state[HEAD_WEIGHT_KEY], state[HEAD_BIAS_KEY]
    generator = torch.Generator().manual_seed(seed)
    bound = 1.0 / math.sqrt(weight.shape[1])
    new_weight = (torch.rand(nclass + 2, weight.shape[1], generator=generator) * 2 - 1) * bound
    new_bias = (torch.rand(nclass + 2, generator=generator) * 2 - 1) * bound
    new_weight[nclass:], new_bias[nclass:] = weight[-2:], bias[-2:]
    with torch.device("meta"):  # no memory or random values: the state replaces both
        adapted = EmoNet(nclass)
    state = {**state, HEAD_WEIGHT_KEY: new_weight, HEAD_BIAS_KEY: new_bias}
    adapted.load_state_dict(state, strict=True, assign=True)
    return adapted.eval()


def save_checkpoint(path: Path, model: EmoNet, metadata: dict) -> Path:
    """The model's state dict (plain contiguous CPU tensors, the published keys) and
    `metadata` under METADATA_KEY, written atomically."""
    state = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    remove_partial_files(path)
    with atomic_path(path) as tmp:
        torch.save({**state, METADATA_KEY: metadata}, tmp)
    return path


def plain(document):
    """`document` as JSON would give it back (tuples as lists...), to compare settings."""
    return json.loads(json.dumps(document))


def check_same_settings(path: Path, before: dict, now: dict) -> None:
    """Refuse to resume the run of `path` with other settings than it was trained with,
    naming each difference."""
    before, now = plain(before), plain(now)
    differences = [
        f"{key} {before.get(key)!r} then, {now.get(key)!r} now"
        for key in sorted(set(before) | set(now))
        if before.get(key) != now.get(key)
    ]
    if differences:
        raise EmonetError(
            f"{path} was trained with other settings ({'; '.join(differences)}): resume with "
            "the same options, or train into another folder"
        )


@dataclass
class ResumeState:
    """What `last.pth` holds for a resumed run."""

    epoch: int  # epochs done
    model_state: dict[str, torch.Tensor]
    optimizer: dict
    scheduler: dict
    history: list[dict] = field(default_factory=list)  # metrics.csv rows so far
    best_epoch: int | None = None
    best_score: float | None = None


def read_resume(path: Path, settings: dict) -> ResumeState:
    """The state `last.pth` saved, refused with an EmonetError when it was trained with other
    `settings` (naming what differs)."""
    if not path.is_file():
        raise EmonetError(f"nothing to resume: {path} does not exist")
    state, metadata = read_checkpoint(path)
    resume = (metadata or {}).get("resume")
    if not isinstance(resume, dict) or (metadata or {}).get("format") != FORMAT:
        raise EmonetError(f"{path} is not the last checkpoint of an `emonet finetune` run")
    check_same_settings(path, metadata.get("settings", {}), settings)
    return ResumeState(
        epoch=int(metadata["epoch"]),
        model_state=state,
        optimizer=resume["optimizer"],
        scheduler=resume["scheduler"],
        history=list(resume.get("history", [])),
        best_epoch=resume.get("best_epoch"),
        best_score=resume.get("best_score"),
    )
