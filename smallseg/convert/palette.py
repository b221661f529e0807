"""RGB colour masks (one colour per class) -> single-channel index masks."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Sequence, Union

import cv2
import numpy as np

from smallseg.utils.errors import UserError
from smallseg.utils.palette import colorize

PathLike = Union[str, Path]
Color = tuple[int, int, int]
MASK_EXTS = ('.png', '.bmp', '.tif', '.tiff', '.gif', '.webp', '.jpg', '.jpeg')


def parse_palette(spec: Union[str, Sequence]) -> list[Color]:
    """A palette from ``'0,0,0;230,25,75;...'``, ``'#000000,#e6194b'``, a JSON file
    (a list of [r, g, b] or ``{"palette": [...]}``), a config file (its ``metainfo.palette``)
    or a list of triples. Entry ``i`` is the colour of class ``i``."""
    if not isinstance(spec, str):
        entries = list(spec)
    elif spec.endswith('.py') and Path(spec).is_file():
        from smallseg.apis.config import load_config
        cfg = load_config(spec)
        ds = cfg.train_dataloader.dataset
        meta = ds.get('metainfo') or cfg.get('metainfo') or {}
        entries = list(meta.get('palette') or [])
        if not entries:
            raise UserError(f'config {spec} has no metainfo.palette')
    elif spec.endswith('.json') and Path(spec).is_file():
        data = json.loads(Path(spec).read_text())
        entries = data.get('palette', []) if isinstance(data, dict) else data
    else:
        sep = ';' if ';' in spec else (',' if spec.lstrip().startswith('#') else ';')
        entries = [e.strip() for e in spec.split(sep) if e.strip()]
    palette: list[Color] = []
    for e in entries:
        try:
            if isinstance(e, str) and e.startswith('#') and len(e) == 7:
                rgb = tuple(int(e[i:i + 2], 16) for i in (1, 3, 5))
            elif isinstance(e, str):
                rgb = tuple(int(v) for v in e.replace(' ', '').split(','))
            else:
                rgb = tuple(int(v) for v in e)
        except ValueError as exc:
            raise UserError(f'--palette: cannot read colour {e!r}; write r,g,b;r,g,b;... '
                            'or #rrggbb,#rrggbb') from exc
        if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
            raise UserError(f'--palette: colour {e!r} is not three values 0..255')
        palette.append(rgb)  # type: ignore[arg-type]
    if not palette:
        raise UserError('--palette is empty')
    if len(set(palette)) != len(palette):
        dup = [c for c, n in Counter(palette).items() if n > 1]
        raise UserError(f'--palette: colour {dup[0]} is given to two classes')
    return palette


def _keys(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.int32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def rgb_to_index(rgb: np.ndarray, palette: Sequence[Color], unknown: str = 'error',
                 ignore_index: int = 255) -> tuple[np.ndarray, Counter]:
    """Map an ``(H, W, 3)`` RGB array to class indices; returns the mask and the colours
    not in the palette (pixel counts). ``unknown``: 'error' (they stay ``ignore_index``
    and the caller decides), 'ignore' (``ignore_index``), 'nearest' (closest palette colour,
    for JPEG artefacts or anti-aliased edges)."""
    keys = _keys(rgb)
    uniq, inverse = np.unique(keys.ravel(), return_inverse=True)
    lut = {k: i for i, k in enumerate(_keys(np.array(palette, np.int32)).tolist())}
    table = np.full(len(uniq), ignore_index, np.uint8)
    missing: Counter = Counter()
    counts = np.bincount(inverse, minlength=len(uniq))
    pal = np.array(palette, np.int32)
    for j, k in enumerate(uniq.tolist()):
        if k in lut:
            table[j] = lut[k]
            continue
        colour = ((k >> 16) & 255, (k >> 8) & 255, k & 255)
        missing[colour] += int(counts[j])
        if unknown == 'nearest':
            table[j] = int(np.argmin(((pal - np.array(colour)) ** 2).sum(1)))
    return table[inverse].reshape(keys.shape), missing


def convert_rgb_folder(src_dir: PathLike, out_dir: PathLike, palette: Sequence[Color],
                       unknown: str = 'error', ignore_index: int = 255) -> dict[str, Any]:
    """Convert every colour mask in ``src_dir`` to ``out_dir/<stem>.png`` (uint8 indices).

    With ``unknown='error'`` nothing is written when a colour is not in the palette: the
    error names the colours, their pixel counts and the first files.
    """
    from PIL import Image
    if unknown not in ('error', 'ignore', 'nearest'):
        raise UserError(f"unknown must be 'error', 'ignore' or 'nearest', got {unknown!r}")
    if len(palette) > 255 or len(palette) > ignore_index:
        raise UserError(f'{len(palette)} colours: at most {min(255, ignore_index)} classes')
    src = Path(src_dir)
    files = sorted(p for p in src.iterdir() if p.suffix.lower() in MASK_EXTS) \
        if src.is_dir() else []
    if not files:
        raise UserError(f'no mask images ({", ".join(MASK_EXTS)}) in {src}')
    results: dict[Path, np.ndarray] = {}
    missing: Counter = Counter()
    where: dict[Color, list[str]] = {}
    for path in files:
        try:
            with Image.open(path) as img:
                rgb = np.asarray(img.convert('RGB'))
        except Exception as exc:  # noqa: BLE001
            raise UserError(f'cannot read {path} ({type(exc).__name__})') from exc
        mask, miss = rgb_to_index(rgb, palette, unknown, ignore_index)
        missing.update(miss)
        for colour in miss:
            where.setdefault(colour, []).append(path.name)
        results[path] = mask
    if missing and unknown == 'error':
        shown = '; '.join(f'{c} {n} px in {len(where[c])} files (e.g. {where[c][0]})'
                          for c, n in missing.most_common(5))
        more = f' and {len(missing) - 5} more' if len(missing) > 5 else ''
        raise UserError(f'{len(missing)} colours are not in the palette: {shown}{more}; add '
                        'them to --palette, or pass --unknown nearest (JPEG/anti-aliased '
                        'edges) or --unknown ignore (255)')
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pixels: Counter = Counter()
    for path, mask in results.items():
        cv2.imwrite(str(out / f'{path.stem}.png'), mask)
        v, n = np.unique(mask, return_counts=True)
        pixels.update(dict(zip(v.tolist(), n.tolist())))
    return dict(files=len(results), out_dir=str(out), unknown_colours=len(missing),
                unknown_pixels=int(sum(missing.values())),
                pixels={int(k): int(v) for k, v in sorted(pixels.items())})


def index_to_rgb(mask: np.ndarray, palette: Sequence[Color]) -> np.ndarray:
    """The reverse, for pictures and tests: ``(H, W)`` indices -> ``(H, W, 3)`` RGB, labels
    past the palette in :data:`~smallseg.utils.palette.IGNORE_COLOR`."""
    return colorize(mask, np.asarray(palette, np.uint8))
