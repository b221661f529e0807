"""Image overlays of index masks in the palette of :mod:`smallseg.utils.palette`."""
from __future__ import annotations

import numpy as np

from ..utils.palette import colorize


def overlay(image_rgb: np.ndarray, mask: np.ndarray, palette: np.ndarray,
            alpha: float = 0.55, skip_background: bool = True) -> np.ndarray:
    """Blend the class colours onto the image; class 0 (background) is left as is by default."""
    image = np.asarray(image_rgb, dtype=np.float32)
    colors = colorize(mask, palette).astype(np.float32)
    painted = (mask > 0) if skip_background else np.ones(mask.shape, bool)
    painted &= mask < len(palette)
    out = image.copy()
    out[painted] = (1 - alpha) * image[painted] + alpha * colors[painted]
    return _draw_edges(out.round().astype(np.uint8), mask, palette)


def _draw_edges(image: np.ndarray, mask: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Outline each foreground region in its class colour (1 px), so thin shapes stay visible."""
    m = np.asarray(mask)
    edge = np.zeros(m.shape, bool)
    edge[:-1] |= m[:-1] != m[1:]
    edge[1:] |= m[1:] != m[:-1]
    edge[:, :-1] |= m[:, :-1] != m[:, 1:]
    edge[:, 1:] |= m[:, 1:] != m[:, :-1]
    edge &= (m > 0) & (m < len(palette))
    image[edge] = palette[m[edge]]
    return image
