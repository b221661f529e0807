"""The one palette of smallseg's pictures (the dataset's colours, generated ones after them, and
one colour for ignored pixels: label 255 and any label past the classes), image | truth |
prediction pictures in it, and pictures as PNG bytes."""
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


def encode_png(rgb: np.ndarray) -> bytes:
    """An RGB picture as PNG bytes (small enough to keep in the journal)."""
    import cv2
    return cv2.imencode('.png', np.ascontiguousarray(rgb[..., ::-1]))[1].tobytes()


def side_by_side(img_path: str, truth: np.ndarray, pred: np.ndarray,
                 palette: np.ndarray, height: int = 256) -> np.ndarray:
    """image | truth | prediction (RGB, masks in ``palette``), at most ``height`` high."""
    import cv2
    image = cv2.imread(str(img_path), cv2.IMREAD_COLOR)
    if image is None:
        raise OSError(f'cannot read {img_path}')
    h, w = truth.shape
    size = (max(1, round(w * height / h)), height) if h > height else (w, h)
    truth, pred = (cv2.resize(colorize(m.astype(np.int64), palette), size,
                              interpolation=cv2.INTER_NEAREST) for m in (truth, pred))
    gap = np.full((size[1], 4, 3), 255, np.uint8)
    image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)[..., ::-1]
    return np.concatenate([image, gap, truth, gap, pred], axis=1)


def decode_png(png: bytes) -> np.ndarray:
    """RGB picture of PNG bytes (:func:`encode_png`)."""
    import cv2
    return np.ascontiguousarray(cv2.imdecode(np.frombuffer(png, np.uint8), 1)[..., ::-1])
