"""Split one folder of images + index masks into train/val/test, stratified by class presence.

Each pair's stratum is the set of foreground classes its mask contains (``(1,)``, ``(1, 2)``,
``()`` for background-only...). Pairs are shuffled inside their stratum with ``seed``; strata
are laid end to end and dealt to the splits by largest remaining quota, so every stratum,
and the whole, is divided in the requested ratios (within one pair). Same files + same seed
= the same split. The result is the project's layout, ``out/img/<split>`` and
``out/labels/<split>``, plus ``out/split.json`` (seed, ratios, the stems of each split).
"""
from __future__ import annotations

import json
import os
import shutil
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from smallseg.utils.errors import UserError

PathLike = Union[str, Path]
SPLITS = ('train', 'val', 'test')
IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def _by_stem(folder: Path, suffixes: Sequence[str]) -> dict[str, Path]:
    if not folder.is_dir():
        raise UserError(f'folder {folder} not found')
    found: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in suffixes:
            if p.stem in found:
                raise UserError(f'{found[p.stem].name} and {p.name} in {folder} share the stem '
                                f'{p.stem!r}')
            found[p.stem] = p
    return found


def presence(mask_path: Path, ignore_index: Optional[int] = 255) -> tuple[int, ...]:
    """The foreground classes in a mask (its stratum)."""
    from PIL import Image
    try:
        with Image.open(mask_path) as img:
            arr = np.asarray(img)
    except Exception as exc:  # noqa: BLE001
        raise UserError(f'cannot read mask {mask_path} ({type(exc).__name__})') from exc
    if arr.ndim != 2:
        raise UserError(f'mask {mask_path} is not single-channel (convert colour masks with '
                        'datasets/rgb_to_masks.py first)')
    values = np.unique(arr).tolist()
    return tuple(int(v) for v in values if v != 0 and v != ignore_index)


def assign(strata: dict[str, tuple[int, ...]], ratios: Sequence[float], seed: int = 0,
           names: Sequence[str] = SPLITS) -> dict[str, list[str]]:
    """``{split: [stems]}``: stratified, seeded assignment (see the module docstring)."""
    r = np.asarray(ratios, float)
    if len(r) != len(names) or (r < 0).any() or r.sum() <= 0:
        raise UserError(f'ratios must be {len(names)} non-negative numbers, got {list(ratios)}')
    r = r / r.sum()
    rng = np.random.default_rng(seed)
    groups: dict[tuple[int, ...], list[str]] = defaultdict(list)
    for stem in sorted(strata):
        groups[strata[stem]].append(stem)
    order: list[str] = []
    for key in sorted(groups, key=lambda k: (len(groups[k]), k)):  # rare strata first
        stems = groups[key]
        order += [stems[i] for i in rng.permutation(len(stems))]
    counts = np.zeros(len(names))
    group_counts: dict[tuple[int, ...], np.ndarray] = defaultdict(lambda: np.zeros(len(names)))
    seen: Counter = Counter()
    out: dict[str, list[str]] = {n: [] for n in names}
    for i, stem in enumerate(order):
        key = strata[stem]
        seen[key] += 1
        # deficit inside the stratum first, then overall; never a split with ratio 0
        local = r * seen[key] - group_counts[key]
        overall = r * (i + 1) - counts
        score = np.where(r > 0, local * 1e6 + overall, -np.inf)
        s = int(np.argmax(score))
        counts[s] += 1
        group_counts[key][s] += 1
        out[names[s]].append(stem)
    return {n: sorted(v) for n, v in out.items()}


def split_dataset(images_dir: PathLike, masks_dir: PathLike, out_dir: PathLike,
                  ratios: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0,
                  seg_suffix: str = '.png', ignore_index: Optional[int] = 255,
                  mode: str = 'copy', skip_unpaired: bool = False) -> dict[str, Any]:
    """Write ``out_dir/{img,labels}/{train,val,test}`` from one folder pair; returns a summary.

    ``mode``: 'copy', 'hardlink' or 'symlink'. Images without a mask (or masks without an
    image) are an error unless ``skip_unpaired``. ``out_dir`` must not hold a split already.
    """
    if mode not in ('copy', 'hardlink', 'symlink'):
        raise UserError(f"mode must be 'copy', 'hardlink' or 'symlink', got {mode!r}")
    images = _by_stem(Path(images_dir), IMAGE_EXTS)
    masks = _by_stem(Path(masks_dir), (seg_suffix,))
    unpaired = sorted(set(images) ^ set(masks))
    if unpaired and not skip_unpaired:
        raise UserError(f'{len(unpaired)} files have no partner (image without mask or mask '
                        f'without image), e.g. {", ".join(unpaired[:3])}; fix them or pass '
                        '--skip-unpaired')
    stems = sorted(set(images) & set(masks))
    if not stems:
        raise UserError(f'no image/mask pairs (same stem) in {images_dir} and {masks_dir}')
    out = Path(out_dir)
    for name in SPLITS:
        for sub in ('img', 'labels'):
            d = out / sub / name
            if d.is_dir() and any(d.iterdir()):
                raise UserError(f'{d} is not empty; choose a new --out folder')
    strata = {s: presence(masks[s], ignore_index) for s in stems}
    splits = assign(strata, ratios, seed)
    suffixes = {p.suffix for p in images.values()}
    for name, members in splits.items():
        for sub in ('img', 'labels'):
            (out / sub / name).mkdir(parents=True, exist_ok=True)
        for stem in members:
            _place(images[stem], out / 'img' / name / images[stem].name, mode)
            _place(masks[stem], out / 'labels' / name / masks[stem].name, mode)
    table = {name: dict(Counter('+'.join(map(str, strata[s])) or 'background'
                                for s in members)) for name, members in splits.items()}
    manifest = dict(seed=seed, ratios=list(ratios), images_dir=str(images_dir),
                    masks_dir=str(masks_dir), img_suffixes=sorted(suffixes),
                    strata=table, splits=splits, skipped_unpaired=unpaired)
    (out / 'split.json').write_text(json.dumps(manifest, indent=2) + '\n')
    return dict(manifest, counts={n: len(v) for n, v in splits.items()}, out_dir=str(out))


def _place(src: Path, dst: Path, mode: str) -> None:
    if mode == 'copy':
        shutil.copy2(src, dst)
    elif mode == 'hardlink':
        os.link(src, dst)
    else:
        dst.symlink_to(src.resolve())
