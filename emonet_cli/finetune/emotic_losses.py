"""EMOTIC's training losses, as Tandon's re-implementation (loss.py) defines them.

Categories: a weighted squared error of the raw scores against the 0/1 labels, summed over
the batch and the 26 categories. The weights are "dynamic" (the reference's default): per
batch, 1 / ln(positives of the category in the batch + 1.2), and 0.0001 for a category with
none; or "mean": 1/26 each.

Valence, arousal, dominance (on the 1-10 scale, where the reference compares them): with
"smooth-l1" (its default), 0.5 d^2 where the error d <= 1 and d - 0.5 above; with "l2",
d^2 where d >= 1 and nothing below (a margin of 1). Summed over the batch and the three.
"""

from __future__ import annotations

import torch

DISCRETE_WEIGHTS = ("dynamic", "mean")
CONTINUOUS_LOSSES = ("smooth-l1", "l2")
MARGIN = 1.0
ABSENT_WEIGHT = 0.0001


def category_weights(target: torch.Tensor, kind: str = "dynamic") -> torch.Tensor:
    """(1, categories) weights of the squared errors for a batch of 0/1 `target`s."""
    categories = target.shape[1]
    if kind == "mean":
        return torch.full((1, categories), 1.0 / categories, device=target.device)
    if kind != "dynamic":
        raise ValueError(f"discrete weights must be one of {', '.join(DISCRETE_WEIGHTS)}")
    counts = target.detach().float().sum(dim=0, keepdim=True)
    weights = torch.full_like(counts, ABSENT_WEIGHT)
    present = counts != 0
    weights[present] = 1.0 / torch.log(counts[present] + 1.2)
    return weights


def category_loss(
    scores: torch.Tensor, target: torch.Tensor, kind: str = "dynamic"
) -> torch.Tensor:
    return (((scores - target) ** 2) * category_weights(target, kind)).sum()


def vad_loss(
    predicted: torch.Tensor, target: torch.Tensor, kind: str = "smooth-l1"
) -> torch.Tensor:
    """The margin loss of VAD on the 1-10 scale."""
    error = torch.abs(predicted - target)
    if kind == "smooth-l1":
        return torch.where(error > MARGIN, error - 0.5, 0.5 * error**2).sum()
    if kind == "l2":
        return torch.where(error < MARGIN, torch.zeros_like(error), error**2).sum()
    raise ValueError(f"the continuous loss must be one of {', '.join(CONTINUOUS_LOSSES)}")
