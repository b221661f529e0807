"""Deterministic generator of the embedded default dataset ("round" vs "angular" objects).

Layout written (the seed layout read by :class:`smallseg.datasets.ImgLabelsSegDataset`)::

    out_dir/img/{train,val,test}/<stem>.jpg     RGB JPEG, quality 95
    out_dir/labels/{train,val,test}/<stem>.png  single-channel uint8:
        0 background, 1 round, 2 angular
    out_dir/dataset_info.json                   parameters + per-split statistics

Design (mimics the seed report: one labelled object per image, ~55/45 round/angular images,
~9 % foreground pixels, object area log-uniform from ~1 % to ~30 % of the image):

* the classes differ by SHAPE and TEXTURE, never by colour: "round" = wobbly ellipses with a
  spotted, mottled or smoothly shaded fill; "angular" = polygons, stars or jagged outlines with
  a striped, checkered or cross-hatched fill (periods 4-10 px). Both take their two colours
  from the same random HSV distribution, so per-pixel colour says nothing about the class.
* cluttered backgrounds: multi-scale smooth colour noise, two-colour patches, low-contrast
  lines and shapes, a lighting gradient, mild blur and Gaussian sensor noise.
* 1-4 unlabelled distractors (mask = background), of either shape family, always smaller
  than the labelled object and either faded (alpha 0.15-0.4) or hollow outlines. The
  labelled object is the one opaque, high-contrast, filled object (contrast to its
  surroundings is enforced), a rule a CNN can learn.

Every image uses its own ``np.random.default_rng([seed, split_index, i])`` (its first two
draws give the stem), so images are independent and generated in parallel (threads); the same
``seed``/``counts``/``size`` give byte-identical files (fixed ``cv2.imencode`` parameters).
"""
from __future__ import annotations

import json
import os
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterable, NamedTuple

import cv2
import numpy as np

GENERATOR_VERSION = '1.0'
SPLITS = ('train', 'val', 'test')
CLASSES = ('background', 'round', 'angular')
DEFAULT_COUNTS = {'train': 200, 'val': 120, 'test': 120}
ROUND_SHARE = 0.55  # share of images whose labelled object is "round"
GOLDEN = 0.6180339887498949  # Weyl-sequence step for the object-area quantiles
OBJECT_AREA_RANGE = (0.012, 0.30)  # fraction of the image, drawn log-uniformly
MAX_DISTRACTOR_AREA = 0.02
JPEG_PARAMS = (cv2.IMWRITE_JPEG_QUALITY, 95, cv2.IMWRITE_JPEG_OPTIMIZE, 0,
               cv2.IMWRITE_JPEG_PROGRESSIVE, 0)
PNG_PARAMS = (cv2.IMWRITE_PNG_COMPRESSION, 6)
INFO_NAME = 'dataset_info.json'
STEM_PATTERN = re.compile(r'^\d{12}_\d{4}$')


class ImageRecord(NamedTuple):
    """Per-image result returned by the workers."""

    split: str
    index: int
    stem: str
    label: int
    class_pixels: tuple[int, int, int]


# ----------------------------------------------------------------------------- random helpers
def _image_rng(seed: int, split_index: int, index: int) -> np.random.Generator:
    """The generator of one image; its first two draws are the stem."""
    return np.random.default_rng([seed, split_index, index])


def _split_phases(seed: int, split_index: int) -> tuple[float, float]:
    """Per-split offsets of the low-discrepancy class and area sequences.

    The 5-word key cannot collide with the 3-word image keys ``[seed, split_index, i]``.
    """
    return tuple(float(x) for x in np.random.default_rng([seed, split_index, 0, 0, 1]).random(2))


def _class_and_area(seed: int, split_index: int, index: int) -> tuple[int, float]:
    """Class and target area fraction of image ``index``, from low-discrepancy sequences.

    Class: ``(phase + 0.55 i) mod 1 < 0.55`` -> round, so any run of images is 55 % round
    (+/- one image); area: log-uniform quantile ``(phase' + 0.618 i) mod 1``, so each split
    covers the whole size range evenly. Both depend on ``index`` only, not on other images.
    """
    p_class, p_area = _split_phases(seed, split_index)
    label = 1 if (p_class + ROUND_SHARE * index) % 1.0 < ROUND_SHARE else 2
    lo, hi = OBJECT_AREA_RANGE
    return label, float(lo * (hi / lo) ** ((p_area + GOLDEN * index) % 1.0))


def _draw_stem(rng: np.random.Generator) -> str:
    """``000000287341_6222``-like stem (12 digits, underscore, 4 digits)."""
    return f'{int(rng.integers(0, 10**12)):012d}_{int(rng.integers(0, 10**4)):04d}'


def make_stems(seed: int, counts: dict[str, int]) -> dict[str, list[str]]:
    """Stems of every split, unique over the whole dataset (deterministic from ``seed``)."""
    seen: set[str] = set()
    stems: dict[str, list[str]] = {}
    for split_index, split in enumerate(SPLITS):
        stems[split] = []
        for i in range(counts.get(split, 0)):
            stem = _draw_stem(_image_rng(seed, split_index, i))
            while stem in seen:  # astronomically rare; resolved deterministically
                head, tail = stem.split('_')
                stem = f'{head}_{(int(tail) + 1) % 10**4:04d}'
            seen.add(stem)
            stems[split].append(stem)
    return stems


def _hsv_colour(rng: np.random.Generator, sat: tuple[float, float],
                val: tuple[float, float]) -> np.ndarray:
    """A random RGB colour in [0, 1] (uniform hue, saturation/value in the given ranges)."""
    h, s, v = rng.uniform(0.0, 1.0), rng.uniform(*sat), rng.uniform(*val)
    k = (np.array([5.0, 3.0, 1.0]) + h * 6.0) % 6.0
    return (v - v * s * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)).astype(np.float32)


def _luma(c: np.ndarray) -> float:
    return float(0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2])


def _smooth_field(rng: np.random.Generator, size: int, cells: int, channels: int = 1) -> np.ndarray:
    """Smooth noise (about unit variance) from a ``cells x cells`` grid upsampled bicubically."""
    low = rng.standard_normal((cells + 3, cells + 3, channels)).astype(np.float32)
    big = cv2.resize(low, (size + 3 * size // cells, size + 3 * size // cells),
                     interpolation=cv2.INTER_CUBIC)
    off = size // cells
    field = big[off:off + size, off:off + size]
    return field.reshape(size, size, channels) / max(float(field.std()), 1e-6)


# ----------------------------------------------------------------------------- background
def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Cluttered background: two-colour smooth patches, colour noise, faint lines and shapes."""
    col_a = _hsv_colour(rng, (0.0, 0.6), (0.2, 0.9))
    col_b = np.clip(col_a + rng.uniform(-0.3, 0.3, 3), 0.0, 1.0).astype(np.float32)
    weight = 1.0 / (1.0 + np.exp(-rng.uniform(1.0, 4.0) * _smooth_field(
        rng, size, int(rng.integers(2, 6)))))
    img = col_a * (1.0 - weight) + col_b * weight
    for cells, amp in ((4, 0.07), (12, 0.04), (max(size // 8, 16), 0.025)):
        img += rng.uniform(0.3, 1.0) * amp * _smooth_field(rng, size, cells, 3)
    # faint straight lines and filled shapes (low contrast clutter)
    overlay = img.copy()
    mean = img.reshape(-1, 3).mean(0)
    for _ in range(int(rng.integers(3, 12))):
        p1, p2 = rng.uniform(-0.2, 1.2, 2) * size, rng.uniform(-0.2, 1.2, 2) * size
        colour = np.clip(mean + rng.uniform(-0.35, 0.35, 3), 0, 1)
        cv2.line(overlay, tuple(int(v) for v in p1), tuple(int(v) for v in p2),
                 colour.tolist(), int(rng.integers(1, 4)), cv2.LINE_AA)
    for _ in range(int(rng.integers(1, 5))):
        centre = tuple(int(v) for v in rng.uniform(0, size, 2))
        axes = tuple(int(v) for v in rng.uniform(0.05, 0.3, 2) * size)
        colour = np.clip(mean + rng.uniform(-0.3, 0.3, 3), 0, 1)
        if rng.random() < 0.5:
            cv2.ellipse(overlay, centre, axes, float(rng.uniform(0, 180)), 0, 360,
                        colour.tolist(), -1, cv2.LINE_AA)
        else:
            cv2.rectangle(overlay, (centre[0] - axes[0], centre[1] - axes[1]),
                          (centre[0] + axes[0], centre[1] + axes[1]), colour.tolist(), -1)
    alpha = rng.uniform(0.15, 0.35)
    return np.clip(img * (1.0 - alpha) + overlay * alpha, 0.0, 1.0).astype(np.float32)


# ----------------------------------------------------------------------------- shapes
def _round_contour(rng: np.random.Generator) -> np.ndarray:
    """Unit wobbly ellipse (N x 2), smooth everywhere."""
    theta = np.linspace(0.0, 2.0 * np.pi, 96, endpoint=False)
    r = np.ones_like(theta)
    for k in range(2, 6):
        r += rng.uniform(0.0, 0.16 / k) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    aspect = rng.uniform(1.0, 2.0)
    return np.stack([r * np.cos(theta) * aspect, r * np.sin(theta)], 1)


def _angular_contour(rng: np.random.Generator) -> np.ndarray:
    """Unit polygon, star or jagged outline (N x 2) with straight edges and sharp corners."""
    kind = rng.choice(3, p=[0.45, 0.3, 0.25])
    if kind == 0:  # irregular convex-ish polygon, 3-6 corners
        n = int(rng.integers(3, 7))
        theta = np.arange(n) * 2 * np.pi / n + rng.uniform(-0.25, 0.25, n) * 2 * np.pi / n
        r = rng.uniform(0.8, 1.15, n)
    elif kind == 1:  # star
        n = int(rng.integers(4, 8))
        theta = np.arange(2 * n) * np.pi / n + rng.uniform(-0.1, 0.1, 2 * n) * np.pi / n
        r = np.where(np.arange(2 * n) % 2 == 0, 1.0, rng.uniform(0.45, 0.7))
        r = r * rng.uniform(0.9, 1.1, 2 * n)
    else:  # jagged: alternating deep and shallow corners
        n = int(rng.integers(7, 12))
        theta = np.arange(n) * 2 * np.pi / n + rng.uniform(-0.2, 0.2, n) * 2 * np.pi / n
        r = np.where(np.arange(n) % 2 == 0, rng.uniform(0.9, 1.1, n), rng.uniform(0.55, 0.8, n))
    aspect = rng.uniform(1.0, 1.7)
    theta = theta + rng.uniform(0, 2 * np.pi)
    return np.stack([r * np.cos(theta) * aspect, r * np.sin(theta)], 1)


def _polygon_area(pts: np.ndarray) -> float:
    x, y = pts[:, 0], pts[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _place(rng: np.random.Generator, unit: np.ndarray, area_px: float, size: int,
           inside: bool) -> np.ndarray:
    """Rotate, scale ``unit`` to ``area_px`` pixels and translate it into the image.

    ``inside``: keep the whole shape within a margin (labelled object: one connected,
    un-clipped component); otherwise it may leave the image partly (distractors).
    """
    a = rng.uniform(0, 2 * np.pi)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    pts = unit @ rot.T
    pts = pts * np.sqrt(area_px / max(_polygon_area(pts), 1e-9))
    margin = max(2.0, 0.03 * size)
    extent = pts.max(0) - pts.min(0)
    limit = size - 2 * margin
    if inside and extent.max() > limit:
        pts = pts * (limit / extent.max())
        extent = pts.max(0) - pts.min(0)
    pts = pts - pts.min(0)
    if inside:
        lo, hi = np.full(2, margin), size - margin - extent
    else:
        lo, hi = -0.3 * extent, size - 0.7 * extent
    return pts + rng.uniform(lo, np.maximum(hi, lo))


def _rasterise(pts: np.ndarray, size: int) -> np.ndarray:
    """Filled polygon as a uint8 0/1 mask (sub-pixel vertex precision)."""
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [np.round(pts * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
    return mask


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """Keep only the largest 4-connected component of a 0/1 mask."""
    n, lab, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
    if n <= 2:
        return mask
    keep = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return (lab == keep).astype(np.uint8)


# ----------------------------------------------------------------------------- textures
def _bbox(pts: np.ndarray, size: int, pad: int = 3) -> tuple[int, int, int, int]:
    """Integer box ``(x0, y0, x1, y1)`` around ``pts`` plus ``pad``, clipped to the image."""
    x0, y0 = np.clip(np.floor(pts.min(0)).astype(int) - pad, 0, size - 1)
    x1, y1 = np.clip(np.ceil(pts.max(0)).astype(int) + pad + 1, 1, size)
    return int(x0), int(y0), int(max(x1, x0 + 1)), int(max(y1, y0 + 1))


def _texture(rng: np.random.Generator, label: int, box: tuple[int, int, int, int],
             pts: np.ndarray) -> np.ndarray:
    """Fill pattern in [0, 1] over ``box`` (image coordinates); the family depends on the class.

    round (1): spots on a jittered lattice, mottled blobs, or smooth radial shading.
    angular (2): stripes, checkerboard, or cross-hatching (periods 4-10 px).
    """
    x0, y0, x1, y1 = box
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    a = rng.uniform(0, np.pi)
    u = xx * np.cos(a) + yy * np.sin(a) + rng.uniform(0, 50)
    v = -xx * np.sin(a) + yy * np.cos(a) + rng.uniform(0, 50)
    kind = rng.choice(3, p=[0.55, 0.2, 0.25] if label == 1 else [0.45, 0.3, 0.25])
    if label == 1:
        if kind == 0:  # spots, radius 2-4 px on a jittered lattice
            radius = rng.uniform(2.0, 4.0)
            spacing = rng.uniform(2.0 * radius + 3.0, 2.0 * radius + 7.0)
            jit = rng.uniform(-1, 1, (16, 16, 2)) * max(0.0, spacing / 2 - radius - 0.5)
            iu, iv = np.floor(u / spacing), np.floor(v / spacing)
            idx_u, idx_v = iu.astype(np.int64) % 16, iv.astype(np.int64) % 16
            cu = (iu + 0.5) * spacing + jit[idx_u, idx_v, 0]
            cv = (iv + 0.5) * spacing + jit[idx_u, idx_v, 1]
            d = np.sqrt((u - cu) ** 2 + (v - cv) ** 2)
            return np.clip(radius + 0.5 - d, 0.0, 1.0)
        if kind == 1:  # smooth shading with a highlight (sphere-like)
            centre = pts.mean(0) + rng.uniform(-0.35, 0.35, 2) * (pts.max(0) - pts.min(0))
            rad = max(float(np.linalg.norm(pts.max(0) - pts.min(0))) * 0.6, 1.0)
            d = np.sqrt((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) / rad
            return np.clip(d, 0.0, 1.0) ** rng.uniform(0.7, 1.4)
        # mottled: soft blobs about 5-9 px across
        n = max(x1 - x0, y1 - y0)
        field = _smooth_field(rng, n, max(4, int(n / rng.uniform(5.0, 9.0))))
        return 1.0 / (1.0 + np.exp(-2.5 * field[:y1 - y0, :x1 - x0, 0]))
    if kind == 0:  # stripes
        period, duty = rng.uniform(4.0, 10.0), rng.uniform(0.35, 0.6)
        return ((u / period) % 1.0 < duty).astype(np.float32)
    if kind == 1:  # checkerboard, cells 3-6 px
        cell = rng.uniform(3.0, 6.0)
        return ((np.floor(u / cell) + np.floor(v / cell)) % 2).astype(np.float32)
    # cross-hatching: two line families at 60-90 degrees
    period, width = rng.uniform(5.0, 10.0), rng.uniform(1.3, 2.5)
    b = a + rng.uniform(np.pi / 3, np.pi / 2)
    w = xx * np.cos(b) + yy * np.sin(b)
    return (((u / period) % 1.0 < width / period) | ((w / period) % 1.0 < width / period)).astype(
        np.float32)


def _object_colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Base and pattern colours (same distribution for every class), clearly different luma."""
    c1 = _hsv_colour(rng, (0.2, 1.0), (0.25, 1.0))
    for _ in range(8):
        if rng.random() < 0.5:
            c2 = _hsv_colour(rng, (0.0, 1.0), (0.1, 1.0))
        else:
            c2 = np.clip(c1 * rng.uniform(0.3, 0.6) if _luma(c1) > 0.45
                         else c1 + rng.uniform(0.35, 0.6), 0, 1).astype(np.float32)
        if abs(_luma(c1) - _luma(c2)) > 0.22:
            break
    return c1, c2


def _paint(img: np.ndarray, box: tuple[int, int, int, int], alpha: np.ndarray,
           pattern: np.ndarray | float, c1: np.ndarray, c2: np.ndarray) -> None:
    """In place, inside ``box``: ``img = img * (1 - alpha) + fill * alpha``, ``fill = c1..c2``.

    ``alpha`` is a full-image map; ``pattern`` is the box-sized fill pattern (or a scalar).
    """
    x0, y0, x1, y1 = box
    crop = img[y0:y1, x0:x1]
    fill = c1 + (c2 - c1) * np.asarray(pattern, np.float32)[..., None]
    a = alpha[y0:y1, x0:x1, None]
    crop *= 1.0 - a
    crop += fill * a


def _ring_mean(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean colour of a band of pixels just outside ``mask``."""
    band = cv2.dilate(mask, np.ones((9, 9), np.uint8)) - mask
    sel = band.astype(bool) if band.any() else ~mask.astype(bool)
    return img[sel].mean(0)


# ----------------------------------------------------------------------------- one image
def render_image(seed: int, split_index: int, index: int, size: int
                 ) -> tuple[str, np.ndarray, np.ndarray, int]:
    """Render image ``index`` of split ``split_index``: ``(stem, rgb uint8, mask uint8, label)``."""
    rng = _image_rng(seed, split_index, index)
    stem = _draw_stem(rng)
    label, area = _class_and_area(seed, split_index, index)

    img = _background(rng, size)

    # unlabelled distractors: smaller, and faded or hollow
    for _ in range(int(rng.integers(1, 5))):
        d_label = int(rng.integers(1, 3))
        unit = _round_contour(rng) if d_label == 1 else _angular_contour(rng)
        d_hi = min(0.5 * area, MAX_DISTRACTOR_AREA)
        d_area = float(np.exp(rng.uniform(np.log(0.25 * d_hi), np.log(d_hi))))
        pts = _place(rng, unit, d_area * size * size, size, inside=False)
        c1, c2 = _object_colours(rng)
        box = _bbox(pts, size)
        if rng.random() < 0.6:  # faded filled object
            alpha = _rasterise(pts, size).astype(np.float32) * np.float32(rng.uniform(0.15, 0.4))
            _paint(img, box, alpha, _texture(rng, d_label, box, pts), c1, c2)
        else:  # hollow outline
            layer = np.zeros((size, size), np.float32)
            cv2.polylines(layer, [np.round(pts * 16).astype(np.int32)], True, 1.0,
                          int(rng.integers(1, 3)), cv2.LINE_AA, shift=4)
            _paint(img, box, layer * np.float32(rng.uniform(0.4, 0.8)), 0.0, c1, c1)

    # the labelled object: opaque, textured, contrasted to its surroundings
    unit = _round_contour(rng) if label == 1 else _angular_contour(rng)
    pts = _place(rng, unit, area * size * size, size, inside=True)
    mask = _largest_component(_rasterise(pts, size))
    box = _bbox(pts, size)
    pattern = _texture(rng, label, box, pts)
    ring = _ring_mean(img, mask)
    sel = mask[box[1]:box[3], box[0]:box[2]].astype(bool)
    best, best_score = None, -1.0
    for _ in range(8):
        c1, c2 = _object_colours(rng)
        fill_mean = (c1 + (c2 - c1) * float(pattern[sel].mean())) if sel.any() else c1
        score = float(np.linalg.norm(fill_mean - ring))
        if score > best_score:
            best, best_score = (c1, c2), score
        if score > 0.3:
            break
    _paint(img, box, mask.astype(np.float32), pattern, *best)

    # lighting gradient, optical blur, sensor noise
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    g = rng.uniform(0, 2 * np.pi)
    light = 1.0 + rng.uniform(0.1, 0.4) * (xx * np.cos(g) + yy * np.sin(g)) \
        - rng.uniform(0.0, 0.3) * (xx ** 2 + yy ** 2)
    img *= light[..., None]
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.4, 1.0))
    img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(rng.uniform(0.01, 0.035))
    rgb = np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return stem, rgb, mask * np.uint8(label), label


def _write_one(job: tuple[Path, int, int, int, int]) -> ImageRecord:
    """Render one image and write its JPEG + PNG (worker-thread entry point)."""
    out_dir, seed, split_index, index, size = job
    split = SPLITS[split_index]
    stem, rgb, mask, label = render_image(seed, split_index, index, size)
    ok_img, jpg = cv2.imencode('.jpg', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), JPEG_PARAMS)
    ok_mask, png = cv2.imencode('.png', mask, PNG_PARAMS)
    if not (ok_img and ok_mask):
        raise RuntimeError(f'encoding failed for {split}/{stem}')
    (out_dir / 'img' / split / f'{stem}.jpg').write_bytes(jpg.tobytes())
    (out_dir / 'labels' / split / f'{stem}.png').write_bytes(png.tobytes())
    counts = np.bincount(mask.ravel(), minlength=3)
    return ImageRecord(split, index, stem, label, (int(counts[0]), int(counts[1]), int(counts[2])))


# ----------------------------------------------------------------------------- dataset
def _params(seed: int, counts: dict[str, int], size: int) -> dict[str, Any]:
    return {'generator_version': GENERATOR_VERSION, 'seed': int(seed), 'size': int(size),
            'counts': {s: int(counts.get(s, 0)) for s in SPLITS}}


def _is_complete(out_dir: Path, params: dict[str, Any]) -> bool:
    """True when ``dataset_info.json`` has ``params`` and every expected file exists."""
    info_path = out_dir / INFO_NAME
    try:
        info = json.loads(info_path.read_text())
    except (OSError, ValueError):
        return False
    if any(info.get(k) != v for k, v in params.items()):
        return False
    stems = make_stems(params['seed'], params['counts'])
    return all((out_dir / 'img' / s / f'{t}.jpg').is_file()
               and (out_dir / 'labels' / s / f'{t}.png').is_file()
               for s in SPLITS for t in stems[s])


def _remove_stale(out_dir: Path, stems: dict[str, list[str]]) -> int:
    """Delete generator-named files (``<12 digits>_<4 digits>``) not in ``stems``."""
    removed = 0
    for split in SPLITS:
        keep = set(stems[split])
        for sub, ext in (('img', '.jpg'), ('labels', '.png')):
            for path in (out_dir / sub / split).glob(f'*{ext}'):
                if STEM_PATTERN.match(path.stem) and path.stem not in keep:
                    path.unlink()
                    removed += 1
    return removed


def _summarise(records: Iterable[ImageRecord], params: dict[str, Any]) -> dict[str, Any]:
    """``dataset_info.json`` content: parameters + per-split image and pixel statistics."""
    by_split: dict[str, list[ImageRecord]] = {s: [] for s in SPLITS}
    for rec in records:
        by_split[rec.split].append(rec)
    splits = {}
    for split in SPLITS:
        recs = sorted(by_split[split], key=lambda r: r.index)
        pix = np.array([r.class_pixels for r in recs], np.float64).reshape(-1, 3)
        total = max(pix.sum(), 1.0)
        fg_share = (pix[:, 1:].sum(1) / np.maximum(pix.sum(1), 1.0)) if len(recs) else np.zeros(1)
        splits[split] = {
            'images': len(recs),
            'images_per_class': {CLASSES[c]: sum(r.label == c for r in recs) for c in (1, 2)},
            'pixel_share': {CLASSES[c]: round(float(pix[:, c].sum() / total), 6)
                            for c in range(3)},
            'object_area_share': {'min': round(float(fg_share.min()), 6),
                                  'mean': round(float(fg_share.mean()), 6),
                                  'max': round(float(fg_share.max()), 6)},
        }
    return {'generator': 'smallseg.synthetic', **params, 'classes': list(CLASSES),
            'splits': splits}


def generate_dataset(out_dir: Path, seed: int = 0, counts: dict[str, int] | None = None,
                     size: int = 256, progress: bool = True, force: bool = False,
                     workers: int | None = None) -> dict[str, Any]:
    """Write the default dataset under ``out_dir`` and return its ``dataset_info.json`` content.

    Args:
        out_dir: Dataset root (``img/``, ``labels/`` and ``dataset_info.json`` go there).
        seed: Base seed in ``[0, 2**32)``; same seed + counts + size give byte-identical files.
        counts: Images per split, default ``{'train': 200, 'val': 120, 'test': 120}``.
        size: Image side in pixels (square images).
        progress: Print a progress bar and a summary line.
        force: Regenerate even when ``out_dir`` is already complete for these parameters.
        workers: Worker threads (default: CPU count).

    Returns:
        The dataset info dict, plus ``'generated'``: False when nothing had to be done.
    """
    out_dir = Path(out_dir)
    counts = dict(DEFAULT_COUNTS if counts is None else counts)
    unknown = set(counts) - set(SPLITS)
    if unknown or any(int(n) < 0 for n in counts.values()) or size < 32 or not 0 <= seed < 2**32:
        raise ValueError(f'bad parameters: counts={counts} (splits {SPLITS}), size={size} '
                         f'(>= 32), seed={seed} (0 <= seed < 2**32)')
    params = _params(seed, counts, size)
    if not force and _is_complete(out_dir, params):
        info = json.loads((out_dir / INFO_NAME).read_text())
        if progress:
            print(f'{out_dir}: dataset already complete for seed={seed}, '
                  f'counts={params["counts"]}, size={size}; nothing to do')
        return {**info, 'generated': False}

    start = time.perf_counter()
    (out_dir / INFO_NAME).unlink(missing_ok=True)  # written last: marks a complete dataset
    for split in SPLITS:
        (out_dir / 'img' / split).mkdir(parents=True, exist_ok=True)
        (out_dir / 'labels' / split).mkdir(parents=True, exist_ok=True)
    _remove_stale(out_dir, make_stems(seed, params['counts']))

    jobs = [(out_dir, int(seed), si, i, int(size))
            for si, split in enumerate(SPLITS) for i in range(params['counts'][split])]
    n_workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(jobs), desc='generating', unit='img', file=sys.stdout, mininterval=0.5)
    records: list[ImageRecord] = []
    # threads, not processes: numpy/cv2 release the GIL for the heavy work, and there is no
    # fork of a process holding torch/OpenCV thread pools (which can deadlock)
    with ThreadPoolExecutor(n_workers) as pool:
        try:
            for rec in pool.map(_write_one, jobs):
                records.append(rec)
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()

    info = _summarise(records, params)
    tmp = out_dir / (INFO_NAME + '.tmp')
    tmp.write_text(json.dumps(info, indent=2, sort_keys=True) + '\n')
    tmp.replace(out_dir / INFO_NAME)
    if progress:
        share = info['splits']['train']['pixel_share']
        print(f'wrote {len(jobs)} images to {out_dir} in {time.perf_counter() - start:.1f} s '
              f'(train pixel share: ' + ', '.join(f'{k} {100 * v:.1f}%' for k, v in share.items())
              + ')')
    return {**info, 'generated': True}
