"""K-fold cross-validation over train+val, written as the split lists the dataset reads.

A fold is two text files, ``train.txt`` and ``val.txt``, one image per line as
``train/<stem>`` or ``val/<stem>``. A config reads them through mmseg's ``ann_file``
(:class:`~mmseg.datasets.BaseSegDataset` joins each line to ``data_prefix.img_path`` +
``img_suffix`` and to ``data_prefix.seg_map_path`` + ``seg_map_suffix``) with ``data_prefix``
set to the split folders' parents, ``img`` and ``labels`` (:func:`fold_options`). This is the
simplest layout the stock dataset reads: images of ``img/train`` and ``img/val`` mix in one
list without copies or links (which some file systems lack), a stem found in both folders
stays two images, and ``img/test`` is in no list, so the test split is never read.

Folds are stratified by the image's class: the foreground class its mask holds; masks with no
foreground and masks with several classes form a stratum each. Within each stratum the images
are shuffled (seeded) and dealt to the folds in turn, the dealing going on from stratum to
stratum, so fold sizes differ by one at most and every fold holds its share of each class.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image

from ..utils.errors import UserError

SPLITS = ('train', 'val')
FOLDS_FILE = 'folds.json'


def stratum_of(mask: np.ndarray, ignore_index: Optional[int] = 255) -> str:
    """``'class <c>'`` for one foreground class (values > 0), ``'none'`` without foreground,
    ``'several'`` with more than one class; ``ignore_index`` pixels do not count."""
    values = np.unique(mask)
    values = [int(v) for v in values if v > 0 and v != ignore_index]
    if not values:
        return 'none'
    return f'class {values[0]}' if len(values) == 1 else 'several'


def image_strata(data_root: str | Path, splits: Sequence[str] = SPLITS,
                 img_suffix: str = '.jpg', seg_map_suffix: str = '.png',
                 ignore_index: Optional[int] = 255) -> dict[str, str]:
    """``'<split>/<stem>' -> stratum`` of every image of ``img/<split>`` (its mask in
    ``labels/<split>``), sorted by name."""
    root = Path(data_root)
    strata: dict[str, str] = {}
    for split in splits:
        img_dir, seg_dir = root / 'img' / split, root / 'labels' / split
        if not img_dir.is_dir():
            raise UserError(f'--folds: {img_dir} is missing (layout: img/<split>, '
                            'labels/<split>)')
        for path in sorted(img_dir.iterdir()):
            if not (path.is_file() and path.name.endswith(img_suffix)):
                continue
            stem = path.name[:-len(img_suffix)]
            seg = seg_dir / f'{stem}{seg_map_suffix}'
            try:
                mask = np.asarray(Image.open(seg))
            except OSError as exc:
                raise UserError(f'--folds: cannot read the mask {seg} ({exc}); fix or '
                                'remove the pair') from exc
            strata[f'{split}/{stem}'] = stratum_of(mask, ignore_index)
    return dict(sorted(strata.items()))


def assign_folds(strata: dict[str, str], k: int, seed: int) -> dict[str, int]:
    """``name -> fold`` (0..k-1): each stratum shuffled with ``seed`` and dealt in turn."""
    if k < 2:
        raise UserError(f'--folds must be 2 or more, got {k}')
    if len(strata) < k:
        raise UserError(f'--folds {k}: train+val hold only {len(strata)} images')
    rng = np.random.default_rng(seed)
    by_stratum: dict[str, list[str]] = {}
    for name in sorted(strata):
        by_stratum.setdefault(strata[name], []).append(name)
    folds: dict[str, int] = {}
    turn = 0
    for stratum in sorted(by_stratum):
        names = by_stratum[stratum]
        for i in rng.permutation(len(names)):
            folds[names[i]] = turn % k
            turn += 1
    return dict(sorted(folds.items()))


def write_folds(data_root: str | Path, k: int, seed: int, out_dir: str | Path,
                img_suffix: str = '.jpg', seg_map_suffix: str = '.png',
                ignore_index: Optional[int] = 255) -> list[dict]:
    """Write ``out_dir/fold<i>/{train,val}.txt`` for i in 0..k-1 and ``out_dir/folds.json``
    (seed, strata, each image's fold); returns per fold ``dict(fold, train, val)`` (the list
    files' absolute paths). The same seed and images give the same folds."""
    out = Path(out_dir).resolve()
    strata = image_strata(data_root, img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                          ignore_index=ignore_index)
    assignment = assign_folds(strata, k, seed)
    record = dict(data_root=str(Path(data_root).resolve()), k=k, seed=int(seed),
                  strata=strata, folds=assignment)
    folds = []
    for fold in range(k):
        paths = dict(fold=fold, train=out / f'fold{fold}' / 'train.txt',
                     val=out / f'fold{fold}' / 'val.txt')
        paths['train'].parent.mkdir(parents=True, exist_ok=True)
        for part, names in (('train', [n for n, f in assignment.items() if f != fold]),
                            ('val', [n for n, f in assignment.items() if f == fold])):
            paths[part].write_text('\n'.join(names) + '\n')
        folds.append({key: str(v) if isinstance(v, Path) else v for key, v in paths.items()})
    (out / FOLDS_FILE).write_text(json.dumps(record, indent=1) + '\n')
    return folds


def fold_options(fold: dict) -> dict:
    """``--cfg-options`` that train on ``fold['train']`` and validate on ``fold['val']``."""
    prefix = dict(img_path='img', seg_map_path='labels')
    return {'train_dataloader.dataset.data_prefix': prefix,
            'train_dataloader.dataset.ann_file': fold['train'],
            'val_dataloader.dataset.data_prefix': dict(prefix),
            'val_dataloader.dataset.ann_file': fold['val']}
