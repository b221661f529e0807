"""Palette colouring of index masks and image overlays (shared by inference and analysis)."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

IGNORE_COLOR = (255, 255, 255)  # label 255 (ignored pixels) in colourised masks


def make_palette(num_classes: int, palette: Optional[Sequence[Sequence[int]]] = None
                 ) -> np.ndarray:
    """``(num_classes, 3)`` uint8 RGB colours: ``palette`` first, then distinct generated ones."""
    colors = [tuple(int(v) for v in c) for c in (palette or [])][:num_classes]
    rng = np.random.default_rng(0)
    while len(colors) < num_classes:
        colors.append(tuple(int(v) for v in rng.integers(40, 256, 3)))
    return np.asarray(colors, dtype=np.uint8).reshape(num_classes, 3)


def colorize(mask: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """RGB picture of an index mask; out-of-range labels (e.g. 255 = ignored) are white."""
    mask = np.asarray(mask)
    out = np.empty(mask.shape + (3,), dtype=np.uint8)
    out[:] = IGNORE_COLOR
    valid = mask < len(palette)
    out[valid] = palette[mask[valid]]
    return out


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
