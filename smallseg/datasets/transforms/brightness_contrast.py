"""Random brightness and contrast (albumentations ``RandomBrightnessContrast`` semantics)."""
from __future__ import annotations

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class RandomBrightnessContrast(BaseTransform):
    """``img = img * alpha + beta * 255`` with ``alpha ~ U(1 - c, 1 + c)``, ``beta ~ U(-b, b)``.

    Required keys: img. Modified keys: img (uint8, clipped).

    Args:
        brightness_limit (float): ``b``, as a fraction of the 255 range. Defaults to 0.2.
        contrast_limit (float): ``c``. Defaults to 0.2.
        prob (float): Probability of applying. Defaults to 0.5.
    """

    def __init__(self, brightness_limit: float = 0.2, contrast_limit: float = 0.2,
                 prob: float = 0.5) -> None:
        self.brightness_limit = brightness_limit
        self.contrast_limit = contrast_limit
        self.prob = prob

    def transform(self, results: dict) -> dict:
        if np.random.rand() >= self.prob:
            return results
        alpha = 1.0 + np.random.uniform(-self.contrast_limit, self.contrast_limit)
        beta = 255.0 * np.random.uniform(-self.brightness_limit, self.brightness_limit)
        img = results['img'].astype(np.float32) * alpha + beta
        results['img'] = np.clip(img, 0, 255).astype(np.uint8)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(brightness_limit={self.brightness_limit}, '
                f'contrast_limit={self.contrast_limit}, prob={self.prob})')
