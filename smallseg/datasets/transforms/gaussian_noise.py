"""Additive Gaussian pixel noise (albumentations ``GaussNoise(var_limit)`` semantics)."""
from __future__ import annotations

from typing import Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class RandomGaussianNoise(BaseTransform):
    """Add ``N(0, var)`` noise per pixel and channel, ``var ~ U(var_limit)`` in 0-255 units.

    Required keys: img. Modified keys: img (uint8, clipped).

    Args:
        var_limit (tuple[float, float]): Range of the noise variance. Defaults to (10, 50).
        prob (float): Probability of applying. Defaults to 0.5.
    """

    def __init__(self, var_limit: Tuple[float, float] = (10.0, 50.0), prob: float = 0.5) -> None:
        self.var_limit = tuple(var_limit)
        self.prob = prob

    def transform(self, results: dict) -> dict:
        if np.random.rand() >= self.prob:
            return results
        std = np.sqrt(np.random.uniform(*self.var_limit))
        img = results['img']
        noise = np.random.normal(0.0, std, img.shape).astype(np.float32)
        results['img'] = np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(var_limit={self.var_limit}, prob={self.prob})'
