"""Turn a :class:`~smallseg.eda.scan.DatasetScan` into a summary dict, strategy hints and files.

``build_summary`` gives the JSON-ready dict (key layout documented in ``write_readme``'s output
and in ``eda/run_eda.py``); ``write_json``, ``write_text`` and ``write_readme`` write
``eda_summary.json``, ``eda_summary.txt`` and ``README.md``.
"""
from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .scan import LABEL_KINDS, PROBLEM_KINDS, DatasetScan

TINY_SPLIT = 20        # fewer usable pairs than this: metrics on that split are noisy
IMBALANCE_RATIO = 10.0  # max/min class pixel share above this: "strong imbalance"
WEIGHT_FORMULA = ('median-frequency balancing on the train split: f_c = pixels of class c / '
                  'labelled pixels, w_c = median(f) / f_c over classes present, rescaled so the '
                  'mean weight is 1 (absent classes get 0). Alternative '
                  '(class_weights_inverse_frequency): w_c = 1 / f_c, rescaled to mean 1.')


def _round32(x: float) -> int:
    return max(32, int(round(x / 32.0)) * 32)


def _weights(freq: np.ndarray, raw: np.ndarray) -> list[float]:
    present = freq > 0
    w = np.zeros_like(freq, dtype=float)
    if present.any():
        w[present] = raw[present]
        w[present] /= w[present].mean()
    return [round(float(v), 4) for v in w]


def median_frequency_weights(pixel_counts: Sequence[int] | np.ndarray) -> list[float]:
    """Class weights from per-class pixel counts, as :data:`WEIGHT_FORMULA` says."""
    counts = np.asarray(pixel_counts, dtype=float)
    freq = counts / max(1.0, counts.sum())
    present = freq > 0
    if not present.any():
        return [0.0] * len(freq)
    med = float(np.median(freq[present]))
    return _weights(freq, np.where(present, med / np.maximum(freq, 1e-12), 0))


def _stats_split(scan: DatasetScan) -> str | None:
    """The split the strategy is computed from: train if usable, else the first usable one."""
    usable = [s for s, st in scan.splits.items() if st.usable_pairs]
    return 'train' if 'train' in usable else (usable[0] if usable else None)


def compute_strategy(scan: DatasetScan) -> dict[str, Any]:
    """Class weights, training size, class count and warnings, derived from the scan."""
    names, k = scan.classes, len(scan.classes)
    ref = _stats_split(scan)
    out: dict[str, Any] = {'num_classes': k, 'computed_on': ref, 'weight_formula': WEIGHT_FORMULA,
                           'class_weights': [0.0] * k, 'class_weights_inverse_frequency': [0.0] * k,
                           'img_size': None, 'img_size_note': '', 'warnings': [], 'notes': []}
    warn, note = out['warnings'], out['notes']
    if ref is None:
        warn.append('no usable image/mask pair: nothing to compute a strategy from')
        return out
    st = scan.splits[ref]
    freq = st.pixel_counts / max(1, st.pixel_counts.sum())
    present = freq > 0
    if present.any():
        out['class_weights'] = median_frequency_weights(st.pixel_counts)
        out['class_weights_inverse_frequency'] = _weights(
            freq, np.where(present, 1 / np.maximum(freq, 1e-12), 0))
        lo, hi = int(np.argmin(np.where(present, freq, np.inf))), int(np.argmax(freq))
        ratio = float(freq[hi] / freq[lo])
        out['imbalance_ratio'] = round(ratio, 2)
        if ratio > IMBALANCE_RATIO:
            warn.append(f'strong class imbalance on {ref}: {names[hi]} has {ratio:.1f}x the pixels '
                        f'of {names[lo]}; use class_weight (below) or a Dice/focal term, and '
                        'judge models by per-class IoU, not pixel accuracy')
    if st.image_sizes:
        sizes = np.array(st.image_sizes)
        w, h = np.median(sizes[:, 0]), np.median(sizes[:, 1])
        out['img_size'] = [_round32(w), _round32(h)]
        out['img_size_note'] = (f'(width, height) = median {ref} image size {w:g}x{h:g} rounded '
                                'to a multiple of 32; use as Resize scale / crop size')
        if len({tuple(s) for s in st.image_sizes}) > 1:
            note.append(f'image sizes vary on {ref} ({sizes[:, 0].min()}..{sizes[:, 0].max()} wide,'
                        f' {sizes[:, 1].min()}..{sizes[:, 1].max()} high): the pipeline resizes')
        if max(w, h) > 1024:
            note.append('large images: consider training on random crops of img_size')
        area = float(w * h)
        for c in range(1, k):
            specks = sum(a < 16 for a in st.object_sizes[c])
            if specks:
                note.append(f'{specks} {names[c]} object(s) on {ref} are under 16 px: likely '
                            'annotation specks, check the masks')
            if st.object_sizes[c]:
                m = float(np.median(st.object_sizes[c]))
                if m < 0.01 * area:
                    note.append(f'{names[c]} objects are small on {ref} (median {m:.0f} px = '
                                f'{100 * m / area:.2f}% of an image): avoid downscaling much')
    for split, s in scan.splits.items():
        if s.usable_pairs:
            absent = [names[c] for c in range(k) if s.pixel_counts[c] == 0]
            if absent:
                warn.append(f'class(es) {", ".join(absent)} absent from {split}: '
                            + ('cannot be learned' if split == ref else 'no metric on this split'))
            rare = [f'{names[c]} ({int(s.images_with_class[c])})' for c in range(1, k)
                    if 0 < s.images_with_class[c] < 5]
            if rare:
                warn.append(f'class(es) in fewer than 5 {split} images: {", ".join(rare)}')
        if s.usable_pairs < TINY_SPLIT:
            warn.append(f'{split} has only {s.usable_pairs} usable pairs (< {TINY_SPLIT}): '
                        'its metrics will be noisy')
    if 'val' not in scan.splits:
        warn.append('no val split: hold out part of train for validation')
    if 'test' not in scan.splits:
        note.append('no test split: final numbers will come from val')
    counts = scan.problem_counts()
    if counts['duplicate_across_splits']:
        warn.append(f'leakage: {counts["duplicate_across_splits"]} image(s) appear in two splits '
                    '(kind duplicate_across_splits); remove them from val/test')
    if counts['near_duplicate_across_splits']:
        warn.append(f'leakage: {counts["near_duplicate_across_splits"]} image(s) look like an '
                    'image of another split (re-encoded or resized; kind '
                    'near_duplicate_across_splits); check them and remove them from val/test')
    if scan.problems:
        kinds = ', '.join(f'{kd} {n}' for kd, n in sorted(counts.items()))
        warn.append(f'{len(scan.problems)} problem(s) found ({kinds}); see "problems"')
    return out


def _by_class(names: Sequence[str], values: Sequence, cast=int) -> dict[str, Any]:
    return {n: cast(v) for n, v in zip(names, values)}


def _distribution(values: Sequence[int]) -> dict[str, float]:
    if not len(values):
        return {'count': 0}
    a = np.asarray(values, dtype=float)
    q = np.percentile(a, [10, 50, 90])
    return {'count': int(a.size), 'min': int(a.min()), 'p10': round(float(q[0]), 1),
            'median': round(float(q[1]), 1), 'mean': round(float(a.mean()), 2),
            'p90': round(float(q[2]), 1), 'max': int(a.max())}


def build_summary(scan: DatasetScan, palette: Sequence[Sequence[int]] | None = None,
                  config: str | None = None) -> dict[str, Any]:
    """JSON-ready dict of everything the scan found (see README.md for the key layout)."""
    names, k = list(scan.classes), len(scan.classes)
    total = scan.problem_counts()
    s: dict[str, Any] = {
        'data_root': str(scan.root), 'config': config, 'classes': names, 'num_classes': k,
        'palette': [list(map(int, c)) for c in palette] if palette else None,
        'ignore_index': scan.ignore_index, 'img_suffix': scan.img_suffix,
        'seg_suffix': scan.seg_suffix, 'splits_found': list(scan.splits),
        'splits_missing': scan.missing_splits, 'splits': {},
        'problem_counts': {kd: total[kd] for kd in PROBLEM_KINDS},
        'label_errors': {kd: total[kd] for kd in LABEL_KINDS},
        'problems': [p._asdict() for p in scan.problems],
    }
    for key in ('pixel_counts', 'pixel_share', 'ignore_pixels', 'out_of_range_pixels',
                'images_with_class', 'image_sizes', 'objects_per_image', 'object_sizes'):
        s[key] = {}
    for split, st in scan.splits.items():
        pc = scan.problem_counts(split)
        s['splits'][split] = {'integrity': st.integrity(), 'problems': sum(pc.values()),
                              'label_errors': {kd: pc[kd] for kd in LABEL_KINDS},
                              'other_files': dict(st.other_files)}
        labelled = int(st.pixel_counts.sum())
        s['pixel_counts'][split] = _by_class(names, st.pixel_counts)
        s['pixel_share'][split] = _by_class(
            names, st.pixel_counts / labelled if labelled else np.zeros(k),
            lambda v: round(float(v), 6))
        s['ignore_pixels'][split] = st.ignore_pixels
        s['out_of_range_pixels'][split] = st.out_of_range_pixels
        s['images_with_class'][split] = _by_class(names, st.images_with_class)
        sizes = np.array(st.image_sizes).reshape(-1, 2)
        uniq, cnt = np.unique(sizes, axis=0, return_counts=True)
        s['image_sizes'][split] = {'count': len(sizes)} | ({
            'median': [float(np.median(sizes[:, 0])), float(np.median(sizes[:, 1]))],
            'min': sizes.min(0).tolist(), 'max': sizes.max(0).tolist(),
            'unique': {f'{w}x{h}': int(n) for (w, h), n in
                       sorted(zip(uniq.tolist(), cnt.tolist()), key=lambda t: -t[1])}}
            if len(sizes) else {})
        s['objects_per_image'][split] = {}
        s['object_sizes'][split] = {}
        for c in range(1, k):
            per_img = st.objects_per_image[c]
            hist = np.bincount(per_img) if per_img else np.zeros(0, int)
            s['objects_per_image'][split][names[c]] = _distribution(per_img) | {
                'total': int(sum(per_img)),
                'histogram': {str(i): int(n) for i, n in enumerate(hist) if n}}
            s['object_sizes'][split][names[c]] = _distribution(st.object_sizes[c])
    s['strategy'] = compute_strategy(scan)
    return s


def write_json(summary: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(summary, indent=2) + '\n')


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], md: bool) -> str:
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    if md:
        out = ['| ' + ' | '.join(cells[0]) + ' |', '|' + '---|' * len(header)]
        return '\n'.join(out + ['| ' + ' | '.join(r) + ' |' for r in cells[1:]])
    width = [max(len(r[i]) for r in cells) for i in range(len(header))]
    fmt = lambda r: '  '.join(c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
                              for i, (c, w) in enumerate(zip(r, width)))
    return '\n'.join([fmt(cells[0]), '-' * len(fmt(cells[0]))] + [fmt(r) for r in cells[1:]])


def tables(s: dict[str, Any], md: bool) -> list[tuple[str, str]]:
    """(title, table) pairs shared by the text and Markdown reports."""
    splits, names = s['splits_found'], s['classes']
    keys = list(next(iter(s['splits'].values()))['integrity']) if splits else []
    fg = names[1:]
    obj = s['objects_per_image']
    return [
        ('Integrity (files per split)', _table(
            ['split'] + keys, [[sp] + [s['splits'][sp]['integrity'][k] for k in keys]
                               for sp in splits], md)),
        ('Label errors (masks per kind)', _table(
            ['kind'] + splits, [[k] + [s['splits'][sp]['label_errors'][k] for sp in splits]
                                for k in LABEL_KINDS], md)),
        ('Pixel share per class (% of labelled pixels)', _table(
            ['class'] + splits, [[n] + [f"{100 * s['pixel_share'][sp][n]:.1f}" for sp in splits]
                                 for n in names], md)),
        ('Pixel counts per class', _table(
            ['class'] + splits, [[n] + [s['pixel_counts'][sp][n] for sp in splits]
                                 for n in names], md)),
        ('Images containing each class', _table(
            ['class'] + splits, [[n] + [s['images_with_class'][sp][n] for sp in splits]
                                 for n in names], md)),
        ('Objects per image (connected components, 8-connectivity): mean / max', _table(
            ['class'] + splits, [[n] + [f"{obj[sp][n].get('mean', 0)} / {obj[sp][n].get('max', 0)}"
                                        for sp in splits] for n in fg], md)),
        ('Object size in pixels: median (p10..p90), objects', _table(
            ['class'] + splits, [[n] + [_size_cell(s['object_sizes'][sp][n]) for sp in splits]
                                 for n in fg], md)),
        ('Suggested class weights', _table(
            ['class', 'median-frequency', 'inverse-frequency'],
            [[n, a, b] for n, a, b in zip(names, s['strategy']['class_weights'],
                                          s['strategy']['class_weights_inverse_frequency'])], md)),
    ]


def _size_cell(d: dict[str, float]) -> str:
    if not d.get('count'):
        return '-'
    return f"{d['median']:.0f} ({d['p10']:.0f}..{d['p90']:.0f}), n={d['count']}"


def _strategy_lines(st: dict[str, Any]) -> list[str]:
    size = st['img_size']
    return ([f"num_classes: {st['num_classes']}",
             f"img_size: {tuple(size) if size else '-'}  {st['img_size_note']}",
             f"class_weight (median-frequency): {st['class_weights']}",
             f"weight formula: {st['weight_formula']}"]
            + [f'WARNING: {w}' for w in st['warnings']] + [f'note: {n}' for n in st['notes']])


def write_text(s: dict[str, Any], path: Path) -> None:
    """Human summary: every table, the strategy and every problem file."""
    lines = [f"EDA of {s['data_root']}  classes: {', '.join(s['classes'])}",
             f"splits found: {', '.join(s['splits_found']) or '-'}; missing: "
             f"{', '.join(s['splits_missing']) or '-'}", '']
    for title, table in tables(s, md=False):
        lines += [title, table, '']
    lines += ['Strategy'] + ['  ' + x for x in _strategy_lines(s['strategy'])] + ['']
    lines.append(f"Problems ({len(s['problems'])})")
    lines += [f"  [{p['split']}] {p['file']}: {p['kind']} - {p['detail']}" for p in s['problems']]
    path.write_text('\n'.join(lines) + '\n')


def write_readme(s: dict[str, Any], path: Path, plots: Sequence[str],
                 max_problems: int = 50) -> None:
    """Short Markdown report embedding the plots and tables."""
    st = s['strategy']
    out = [f"# EDA: `{s['data_root']}`", '',
           f"Classes ({s['num_classes']}): {', '.join(s['classes'])}. Splits found: "
           f"{', '.join(s['splits_found']) or '-'}; missing: "
           f"{', '.join(s['splits_missing']) or '-'}."
           f" Full data: `eda_summary.json` (machine), `eda_summary.txt` (human).", '',
           '## Strategy', '']
    out += [f'- {x}' for x in _strategy_lines(st)]
    if st['img_size']:
        w, h = st['img_size']
        out += ['', 'Train at this size (w, h; it sizes every pipeline, crop and the '
                'preprocessor):', '', '```bash',
                'python tools/train.py configs/unet_r34.py '
                f"--data-root {shlex.quote(str(s['data_root']))} "
                f'--cfg-options "img_size=({w},{h})"', '```']
    for title, table in tables(s, md=True):
        out += ['', f'## {title}', '', table]
    out += ['', '## Plots', '']
    out += [f'![{Path(p).stem}]({p})' for p in plots]
    out += ['', f"## Problems ({len(s['problems'])})", '']
    if s['problems']:
        rows = [[p['split'], f"`{p['file']}`", p['kind'], p['detail'].replace('|', '/')]
                for p in s['problems'][:max_problems]]
        out.append(_table(['split', 'file', 'kind', 'detail'], rows, md=True))
        if len(s['problems']) > max_problems:
            out.append(f"\n... {len(s['problems']) - max_problems} more in eda_summary.txt")
    else:
        out.append('None.')
    out += ['', '## Problem kinds', ''] + [f'- `{k}`: {v}' for k, v in PROBLEM_KINDS.items()]
    path.write_text('\n'.join(out) + '\n')
