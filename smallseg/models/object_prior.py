"""The one-object prior: each image holds at most one object, of one foreground class.

Many small medical datasets look like this (a lesion per image, labelled benign or malignant):
a network trained on a few hundred images still scatters small false regions and mixes the
two classes inside one lesion. Both cost most of the foreground Dice. Class 0 is background.
"""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np
import torch


def apply_object_prior(probs: torch.Tensor, pred: torch.Tensor, one_class: bool = True,
                       largest_object: bool = True,
                       class_scores: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Impose the prior on one image's prediction.

    Args:
        probs: Class probabilities, ``(C, H, W)``.
        pred: The predicted labels, ``(H, W)`` (argmax of ``probs``).
        one_class: Give all foreground the foreground class with the largest summed
            probability over the predicted foreground.
        largest_object: Keep only the connected foreground region (8-connected) with the
            largest summed foreground probability; the rest becomes background.
        class_scores: Scores of the foreground classes ``(C - 1,)`` for ``one_class``, from
            an image-level head; the summed probability vote when None.

    Returns:
        The new labels, ``(H, W)``, same dtype and device as ``pred``.
    """
    foreground = pred > 0
    if probs.shape[0] < 2 or not bool(foreground.any()):
        return pred
    if largest_object:
        fg_np = foreground.cpu().numpy().astype(np.uint8)
        count, regions = cv2.connectedComponents(fg_np, connectivity=8)
        if count > 2:  # background + more than one region
            regions = torch.from_numpy(regions).to(pred.device)
            mass = torch.zeros(count, dtype=probs.dtype, device=probs.device)
            mass.index_add_(0, regions.flatten().to(probs.device),
                            (1 - probs[0]).flatten())
            mass[0] = -1  # background is not a region
            foreground = regions == int(mass.argmax())
            pred = torch.where(foreground, pred, torch.zeros_like(pred))
    if one_class:
        scores = (class_scores if class_scores is not None
                  else probs[1:, foreground.to(probs.device)].sum(dim=1))
        label = 1 + int(scores.argmax())
        pred = torch.where(foreground, torch.full_like(pred, label), pred)
    return pred
