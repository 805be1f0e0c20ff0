"""The EMOTIC network: body and context features fused into 26 emotion categories and
valence, arousal and dominance.

Kosti, Alvarez, Recasens, Lapedriza, "Context based emotion recognition using EMOTIC
dataset", TPAMI 2019, as re-implemented by Tandon (github.com/Tandon-A/emotic), whose weights
these modules load: a ResNet-18 on the person's body crop (128x128, ImageNet-initialised), a
ResNet-18 on the whole image (224x224, Places365-initialised), and a fusion head.

The fusion head keeps the reference's parameter names (fc1, bn1, fc_cat, fc_cont), so that the
published state dict loads unchanged and the numbers agree to float rounding.
"""

from __future__ import annotations

import torch
from torch import nn

from emonet_cli.models.emotic.resnet import FEATURES, ResNet18Features

N_CATEGORIES = 26
N_VAD = 3  # valence, arousal, dominance
FUSED = 256  # width of the fusion layer
DROPOUT = 0.5  # in the reference; inactive in eval mode
# Training divided the 1-10 VAD labels by 10, so the head predicts a tenth of the EMOTIC
# scale; the reference's inference and test multiply by 10 again.
VAD_OUTPUT_SCALE = 10.0


class EmoticFusion(nn.Module):
    """The reference's `Emotic` module: the concatenated features through a fully connected
    layer, batch norm, ReLU and dropout, then one linear layer per output. Returns raw
    category scores (no sigmoid) and VAD on a tenth of the EMOTIC scale."""

    def __init__(self, num_context_features: int = FEATURES, num_body_features: int = FEATURES):
        super().__init__()
        self.num_context_features = num_context_features
        self.num_body_features = num_body_features
        self.fc1 = nn.Linear(num_context_features + num_body_features, FUSED)
        self.bn1 = nn.BatchNorm1d(FUSED)
        self.d1 = nn.Dropout(p=DROPOUT)
        self.fc_cat = nn.Linear(FUSED, N_CATEGORIES)
        self.fc_cont = nn.Linear(FUSED, N_VAD)
        self.relu = nn.ReLU()

    def forward(
        self, context_features: torch.Tensor, body_features: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # Context first, then body: the order of fc1's input columns.
        fused = torch.cat(
            (
                context_features.reshape(-1, self.num_context_features),
                body_features.reshape(-1, self.num_body_features),
            ),
            1,
        )
        hidden = self.d1(self.relu(self.bn1(self.fc1(fused))))
        return self.fc_cat(hidden), self.fc_cont(hidden)


class EmoticNet(nn.Module):
    """Context and body ResNet-18s, the fusion head, and the per-category thresholds.

    forward(context (B, 3, 224, 224), body (B, 3, 128, 128)), both normalised as
    `preprocess` does, returns:
      scores (B, 26): the raw outputs of `fc_cat`, in `metrics.CATEGORIES` order. They are not
        probabilities: training regressed them onto 0/1 labels with a weighted squared error,
        so they mostly lie in [0, 1] but are not bounded. The reference reports a category
        when its raw score is strictly greater than its threshold (`decide`).
      vad (B, 3): valence, arousal, dominance on the EMOTIC 1-10 scale (the head's output
        times VAD_OUTPUT_SCALE, as the reference prints it); not clipped to [1, 10].
    """

    def __init__(self):
        super().__init__()
        self.context = ResNet18Features()
        self.body = ResNet18Features()
        self.fusion = EmoticFusion()
        # Thresholds from the validation set, where each category's precision equals its recall
        # (`val_thresholds.npy`); a buffer, so that the converted file carries them.
        self.register_buffer("thresholds", torch.zeros(N_CATEGORIES))

    def forward(
        self, context: torch.Tensor, body: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        scores, vad = self.fusion(self.context(context), self.body(body))
        return scores, vad * VAD_OUTPUT_SCALE

    def decide(self, scores: torch.Tensor) -> torch.Tensor:
        """(B, 26) booleans: the categories the reference reports (score > threshold)."""
        return scores > self.thresholds
