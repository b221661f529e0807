"""Check a config's data before the model is built (one pass of smallseg.eda.scan).

:func:`validate_dataset` scans the folders of the train and val dataloaders (training) or of
the split a checkpoint is scored on (``purpose='test'``) once and sorts what
:func:`smallseg.eda.scan.scan_dataset` finds into

* problems that break or corrupt training or a score (:data:`BLOCKING_KINDS`, the rule EDA's
  usable pairs follow too, and empty splits): they stop ``tools/train.py`` and
  ``tools/test.py`` with one line per kind (count, first files, how to fix); for training,
  ``skip_invalid`` leaves the bad pairs out through the dataset's ``exclude`` option and
  reports the number dropped;
* warnings that do not stop training (images shared by train and val, palette masks).

An empty split stops the run even with ``skip_invalid``.
"""
from __future__ import annotations

import inspect
import os
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Sequence

from mmengine.config import Config
from mmengine.logging import print_log

from smallseg.eda.scan import (BLOCKING_KINDS, PROBLEM_KINDS, DatasetScan, Problem,
                               scan_dataset)

from ..utils.errors import UserError

#: scan kinds reported as a warning
WARNING_KINDS: tuple[str, ...] = ('duplicate_across_splits', 'near_duplicate_across_splits')

FIXES: dict[str, str] = {
    'image_without_mask': 'add the mask (same stem) or remove the image',
    'mask_without_image': 'add the image (same stem) or remove the mask',
    'unreadable_image': 're-export the image or remove the pair',
    'unreadable_mask': 're-export the mask as a 1-channel PNG or remove the pair',
    'size_mismatch': 'resize the mask to its image with nearest-neighbour interpolation',
    'not_single_channel': 'convert colour masks to index masks: python datasets/rgb_to_masks.py',
    'out_of_range_values': 'map the values to 0..K-1 (255 = ignore), or add the classes to the '
                           "config's metainfo and num_classes",
    'empty_mask': 'label the pixels (0 = background; 255 only where nothing is known)',
    'empty_split': 'put image/mask pairs there, or point --data-root / data_prefix at them',
}
SHOW_FILES = 3


@dataclass
class SplitCheck:
    """What validation found for one dataloader."""
    loader: str                       # 'train_dataloader'
    split: str                        # name in the scan ('train')
    images: int = 0                   # image files the dataset would load
    invalid: dict[str, list[Problem]] = field(default_factory=dict)  # image stem -> problems
    orphan_masks: list[Problem] = field(default_factory=list)  # masks without an image

    @property
    def valid(self) -> int:
        return self.images - len(self.invalid)


@dataclass
class ValidationReport:
    """Result of :func:`validate_dataset`."""
    root: str
    checks: list[SplitCheck]
    warnings: list[str]
    seconds: float
    scans: list[DatasetScan]
    dropped: dict[str, list[str]] = field(default_factory=dict)  # loader -> excluded stems
    purpose: str = 'train'            # 'train' or 'test': how the messages are worded

    @property
    def problems(self) -> list[Problem]:
        return [p for c in self.checks for p in
                [q for ps in c.invalid.values() for q in ps] + c.orphan_masks]

    @property
    def ok(self) -> bool:
        return not self.problems


def _dataset_cfg(cfg: Config, key: str) -> Optional[dict]:
    ds = cfg[key].get('dataset')
    while isinstance(ds, dict) and isinstance(ds.get('dataset'), dict):  # RepeatDataset & co
        ds = ds['dataset']
    return ds if isinstance(ds, dict) and 'datasets' not in ds else None


def _dataset_default(ds: dict, name: str, fallback):
    if name in ds:
        return ds[name]
    from mmseg.registry import DATASETS
    cls = DATASETS.get(ds.get('type')) if isinstance(ds.get('type'), str) else ds.get('type')
    for klass in getattr(cls, '__mro__', ()):
        init = klass.__dict__.get('__init__')
        if init is not None:
            param = inspect.signature(init).parameters.get(name)
            if param is not None and param.default is not param.empty:
                return param.default
    return fallback


def _classes(cfg: Config, ds: dict) -> tuple[str, ...]:
    meta = ds.get('metainfo') or cfg.get('metainfo') or {}
    classes = meta.get('classes')
    if not classes:
        from mmseg.registry import DATASETS
        cls = DATASETS.get(ds.get('type')) if isinstance(ds.get('type'), str) else None
        classes = getattr(cls, 'METAINFO', {}).get('classes')
    if not classes:
        raise UserError(f'cannot validate the dataset: no class names in the config '
                        f'(metainfo.classes) or in dataset type {ds.get("type")}')
    return tuple(classes)


def _stem(problem: Problem, img_suffix: str, seg_suffix: str) -> str:
    name = Path(problem.file).name
    for suffix in (img_suffix, seg_suffix):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[:-len(suffix)]
    return Path(name).stem


def _is_palette(problem: Problem, scan: DatasetScan) -> bool:
    """A palette PNG: flagged by the scan, but its indices load fine (kept as a warning)."""
    if problem.kind != 'not_single_channel':
        return False
    stats = scan.splits.get(problem.split)
    return bool(stats) and any(r.mask == problem.file for r in stats.records)


def validate_dataset(cfg: Config, loaders: Sequence[str] = ('train_dataloader', 'val_dataloader'),
                     skip_invalid: bool = False, verbose: bool = True, purpose: str = 'train',
                     names: Optional[Mapping[str, str]] = None) -> ValidationReport:
    """Scan the data of ``loaders`` once; raise :class:`UserError` on unusable pairs.

    Args:
        skip_invalid: exclude the unusable pairs (``dataset.exclude`` in ``cfg``) and go on
            with the rest (training only: a score over part of a split is another score).
        verbose: print the summary and warnings (rank 0 only).
        purpose: 'train' or 'test' (the split a checkpoint is scored on), for the messages.
        names: split name per loader in the messages (default: the loader's, 'train').
    """
    if purpose not in ('train', 'test'):
        raise ValueError(f"purpose must be 'train' or 'test', got {purpose!r}")
    start = time.perf_counter()
    groups: dict[tuple, list[tuple[str, str, dict]]] = defaultdict(list)
    skipped = []
    for key in loaders:
        if cfg.get(key) is None:
            continue
        ds = _dataset_cfg(cfg, key)
        if ds is None:
            skipped.append(key)
            continue
        prefix = ds.get('data_prefix') or {}
        root = str(ds.get('data_root') or '.')
        group = (root, _dataset_default(ds, 'img_suffix', '.jpg'),
                 _dataset_default(ds, 'seg_map_suffix', '.png'), _classes(cfg, ds),
                 _dataset_default(ds, 'ignore_index', 255))
        split = (names or {}).get(key) or key.replace('_dataloader', '')
        groups[group].append((key, split, dict(
            folders=(prefix.get('img_path', ''), prefix.get('seg_map_path', '')),
            ann_file=ds.get('ann_file') or '', ds=ds)))

    checks: list[SplitCheck] = []
    warnings: list[str] = []
    scans: list[DatasetScan] = []
    for (root, img_suffix, seg_suffix, classes, ignore_index), members in groups.items():
        scan = scan_dataset(root, classes, splits=[m[1] for m in members],
                            img_suffix=img_suffix, seg_suffix=seg_suffix,
                            ignore_index=ignore_index, progress=False,
                            folders={m[1]: m[2]['folders'] for m in members})
        scans.append(scan)
        for key, split, info in members:
            check = SplitCheck(key, split)
            stats = scan.splits.get(split)
            listed = _listed(info['ann_file'], root)
            check.images = stats.images if stats and listed is None else (
                len(listed) if listed is not None else 0)
            for p in scan.problems:
                if p.split != split:
                    continue
                stem = _stem(p, img_suffix, seg_suffix)
                if listed is not None and stem not in listed:
                    continue
                if p.kind in WARNING_KINDS or _is_palette(p, scan):
                    warnings.append(f'{p.kind}: {p.file} ({p.detail})')
                elif p.kind == 'mask_without_image':  # never loaded: not a dropped pair
                    check.orphan_masks.append(p)
                elif p.kind in BLOCKING_KINDS:
                    check.invalid.setdefault(stem, []).append(p)
            checks.append(check)

    report = ValidationReport(str(next(iter(groups))[0]) if groups else '', checks, warnings,
                              time.perf_counter() - start, scans, purpose=purpose)
    empty = [c for c in checks if c.images == 0 or (skip_invalid and c.valid <= 0)]
    if report.problems and not (skip_invalid and purpose == 'train'):
        raise UserError(format_problems(report))
    if empty:
        raise UserError(format_empty(report, empty))
    if skip_invalid and report.problems:
        for check in checks:
            stems = sorted(check.invalid)
            if stems:
                ds = _dataset_cfg(cfg, check.loader)
                if 'exclude' not in _init_params(ds.get('type')):
                    raise UserError(f'--skip-invalid needs a dataset type with an exclude '
                                    f'option (ImgLabelsSegDataset); {check.loader} uses '
                                    f'{ds.get("type")}')
                ds['exclude'] = sorted(set(ds.get('exclude') or ()) | set(stems))
                report.dropped[check.loader] = stems
    if verbose and _rank_zero():
        _print_summary(report, skipped)
    return report


def _init_params(type_) -> set[str]:
    from mmseg.registry import DATASETS
    cls = DATASETS.get(type_) if isinstance(type_, str) else type_
    return set(inspect.signature(cls.__init__).parameters) if cls else set()


def _listed(ann_file: str, root: str) -> Optional[set[str]]:
    if not ann_file:
        return None
    path = Path(ann_file) if Path(ann_file).is_absolute() else Path(root) / ann_file
    if not path.is_file():
        raise UserError(f'ann_file {path} not found')
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


def _rank_zero() -> bool:
    return os.environ.get('RANK', '0') == '0'


def _kind_lines(problems: list[Problem]) -> list[str]:
    by_kind: dict[str, list[Problem]] = defaultdict(list)
    for p in problems:
        by_kind[p.kind].append(p)
    lines = []
    for kind in BLOCKING_KINDS:
        found = by_kind.get(kind)
        if not found:
            continue
        files = ', '.join(p.file for p in found[:SHOW_FILES])
        more = f' and {len(found) - SHOW_FILES} more' if len(found) > SHOW_FILES else ''
        lines.append(f'  {kind} ({len(found)} file{"s" if len(found) > 1 else ""}): {files}{more}'
                     f' [{found[0].detail}] -> {FIXES[kind]}')
    return lines


def format_problems(report: ValidationReport) -> str:
    """The error text: a summary line, one line per problem kind, what to do."""
    bad = sum(len(c.invalid) for c in report.checks)
    total = sum(c.images for c in report.checks)
    per_split = ', '.join(f'{c.split} {c.valid}' for c in report.checks)
    kinds = len({p.kind for p in report.problems})
    n = len(report.problems)
    train = report.purpose == 'train'
    lines = [f'dataset check failed for {report.root}: {bad} of {total} image/mask pairs cannot '
             f'be used for {"training" if train else "scoring"} ({n} problem'
             f'{"s" if n > 1 else ""} of {kinds} kind{"s" if kinds > 1 else ""}); nothing was '
             f'{"trained" if train else "evaluated"}']
    lines += _kind_lines(report.problems)
    eda = f'python eda/run_eda.py --data-root {report.root} lists all of them'
    if train:
        lines.append(f'  fix the files ({eda}) or pass --skip-invalid to train on the valid '
                     f'pairs ({per_split})')
    else:
        lines.append(f'  fix the files ({eda}); a score over part of the split would not be '
                     'comparable')
    return '\n'.join(lines)


def format_empty(report: ValidationReport, empty: list[SplitCheck]) -> str:
    parts = []
    for c in empty:
        what = 'no image files' if c.images == 0 else f'no valid pairs (all {c.images} invalid)'
        parts.append(f'the {c.split} split has {what}')
    return (f'dataset check failed for {report.root}: ' + '; '.join(parts) +
            f' -> {FIXES["empty_split"]}')


def _print_summary(report: ValidationReport, skipped: list[str]) -> None:
    counts = ', '.join(f'{c.split} {c.valid}' for c in report.checks)
    if report.dropped:
        dropped = sum(len(v) for v in report.dropped.values())
        total = sum(c.images for c in report.checks)
        per_split = ', '.join(f"{k.replace('_dataloader', '')} {len(v)}"
                              for k, v in report.dropped.items())
        print(f'warning: --skip-invalid: dropped {dropped} of {total} image/mask pairs '
              f'({per_split}); training on {counts}', file=sys.stderr)
        for line in _kind_lines(report.problems):
            print('warning:' + line[1:], file=sys.stderr)
    for w in report.warnings[:SHOW_FILES]:
        print(f'warning: {w}', file=sys.stderr)
    if len(report.warnings) > SHOW_FILES:
        print(f'warning: ... and {len(report.warnings) - SHOW_FILES} more (python eda/run_eda.py '
              'lists them)', file=sys.stderr)
    for key in skipped:
        print(f'warning: {key}: dataset wrappers with several datasets are not validated',
              file=sys.stderr)
    print_log(f'dataset check: {counts} valid image/mask pairs in {report.root} '
              f'({report.seconds:.1f} s)', logger='current')


__all__ = ['BLOCKING_KINDS', 'FIXES', 'PROBLEM_KINDS', 'ValidationReport', 'format_problems',
           'validate_dataset']
