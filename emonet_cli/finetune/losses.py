"""The EmoNet paper's training loss: cross-entropy for the expression and, for valence and
arousal where the labels have them, RMSE plus (1 - PCC) plus (1 - CCC).

Correlations use population (1/n) moments over the labelled faces of the batch, as
`metrics` scores them; with fewer than two labelled faces only the RMSE term is used.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

EPS = 1e-8  # keeps a correlation of a constant batch finite (its gradient is then zero)


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms (the documented defaults: 1 each). The affect terms are
    summed over valence and arousal."""

    expression: float = 1.0  # cross-entropy
    rmse: float = 1.0
    pcc: float = 1.0  # of 1 - PCC
    ccc: float = 1.0  # of 1 - CCC


def rmse(predicted: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(torch.mean((predicted - truth) ** 2) + EPS)


def pcc(predicted: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Pearson correlation coefficient."""
    predicted_dev = predicted - predicted.mean()
    truth_dev = truth - truth.mean()
    covariance = torch.mean(predicted_dev * truth_dev)
    return covariance / (torch.sqrt(torch.mean(predicted_dev**2) * torch.mean(truth_dev**2)) + EPS)


def ccc(predicted: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Lin's concordance correlation coefficient."""
    predicted_dev = predicted - predicted.mean()
    truth_dev = truth - truth.mean()
    covariance = torch.mean(predicted_dev * truth_dev)
    denominator = (
        torch.mean(predicted_dev**2)
        + torch.mean(truth_dev**2)
        + (predicted.mean() - truth.mean()) ** 2
    )
    return 2.0 * covariance / (denominator + EPS)


def affect_loss(predicted: torch.Tensor, truth: torch.Tensor, weights: LossWeights) -> torch.Tensor:
    """One dimension's terms over labelled faces (`truth` without NaN)."""
    loss = weights.rmse * rmse(predicted, truth)
    if len(truth) >= 2:
        loss = loss + weights.pcc * (1.0 - pcc(predicted, truth))
        loss = loss + weights.ccc * (1.0 - ccc(predicted, truth))
    return loss


def emonet_loss(
    head: torch.Tensor,
    target: torch.Tensor,
    valence: torch.Tensor,
    arousal: torch.Tensor,
    weights: LossWeights = LossWeights(),
    class_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss of a batch of head outputs (B, nclass + 2: logits, valence, arousal) against
    class targets (B,) and valence, arousal labels (B,), NaN where a face has none. Returns
    the loss and its parts as numbers ("expression", "affect")."""
    nclass = head.shape[1] - 2
    head = head.to(torch.promote_types(head.dtype, torch.float32))  # float32 at least
    if class_weights is not None:
        class_weights = class_weights.to(head.dtype)
    expression = F.cross_entropy(head[:, :nclass], target, weight=class_weights)
    affect = head.new_zeros(())
    for k, truth in enumerate((valence, arousal)):
        truth = truth.to(head.dtype)
        labelled = ~torch.isnan(truth)
        if labelled.any():
            affect = affect + affect_loss(head[labelled, nclass + k], truth[labelled], weights)
    total = weights.expression * expression + affect
    return total, {"expression": float(expression.detach()), "affect": float(affect.detach())}
