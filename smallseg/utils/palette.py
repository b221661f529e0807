"""The one palette of smallseg's pictures: the dataset's colours, generated ones after them,
and one colour for ignored pixels (label 255 and any label past the classes)."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

IGNORE_COLOR = (255, 255, 255)  # ignored pixels in every colourised mask, overlay and legend


def make_palette(num_classes: int, palette: Optional[Sequence[Sequence[int]]] = None
                 ) -> np.ndarray:
    """``(num_classes, 3)`` uint8 RGB colours: ``palette`` first, then distinct generated ones."""
    colors = [tuple(int(v) for v in c)[:3] for c in (palette or [])][:num_classes]
    rng = np.random.default_rng(0)
    while len(colors) < num_classes:
        colors.append(tuple(int(v) for v in rng.integers(40, 256, 3)))
    return np.asarray(colors, dtype=np.uint8).reshape(num_classes, 3)


def colorize(mask: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """RGB picture of an index mask; labels past the palette (e.g. 255) get
    :data:`IGNORE_COLOR`."""
    mask = np.asarray(mask)
    palette = np.asarray(palette, dtype=np.uint8)
    out = np.empty(mask.shape + (3,), dtype=np.uint8)
    out[:] = IGNORE_COLOR
    valid = mask < len(palette)
    out[valid] = palette[mask[valid]]
    return out
