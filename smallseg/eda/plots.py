"""Matplotlib (Agg) figures of a :class:`~smallseg.eda.scan.DatasetScan`.

Each ``plot_*`` function writes one PNG and returns its path.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use('Agg')
import cv2  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from PIL import Image  # noqa: E402

from ..utils.palette import IGNORE_COLOR, make_palette  # noqa: E402
from .scan import DatasetScan, PairRecord  # noqa: E402

SPLIT_COLORS = {'train': '#1f77b4', 'val': '#ff7f0e', 'test': '#2ca02c'}


def _split_color(split: str, i: int) -> str:
    return SPLIT_COLORS.get(split, f'C{i + 3}')


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.savefig(path, dpi=110, bbox_inches='tight')
    plt.close(fig)
    return path


def plot_class_distribution(scan: DatasetScan, path: Path) -> Path:
    """Pixels per class (log scale, share in % on the bars) and images containing each class."""
    names, splits = scan.classes, [s for s, st in scan.splits.items() if st.usable_pairs]
    x = np.arange(len(names))
    width = 0.8 / max(1, len(splits))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(max(10, 2.2 * len(names) + 4), 4.6),
                                   layout='constrained')
    for i, split in enumerate(splits):
        st = scan.splits[split]
        off = x - 0.4 + width * (i + 0.5)
        share = 100 * st.pixel_counts / max(1, st.pixel_counts.sum())
        bars = ax1.bar(off, np.maximum(st.pixel_counts, 0.9), width, color=_split_color(split, i),
                       label=f'{split} ({st.usable_pairs} masks)')
        for b, p in zip(bars, share):
            ax1.annotate(f'{p:.1f}%', (b.get_x() + b.get_width() / 2, b.get_height()),
                         ha='center', va='bottom', fontsize=7)
        pct = 100 * st.images_with_class / max(1, st.usable_pairs)
        ax2.bar(off, pct, width, color=_split_color(split, i), label=split)
    ax1.set_yscale('log')
    ax1.set_ylabel('pixels (log scale)')
    ax1.set_title('Pixels per class (label: % of labelled pixels)')
    ax2.set_ylabel('% of images containing the class')
    ax2.set_ylim(0, 110)
    ax2.set_title('Images containing each class')
    for ax in (ax1, ax2):
        ax.set_xticks(x, names, rotation=20 if len(names) > 6 else 0)
        ax.set_xlabel('class')
        ax.legend(fontsize=8)
    ax1.margins(y=0.15)
    fig.suptitle(f'Class distribution: {scan.root}')
    return _save(fig, path)


def plot_image_sizes(scan: DatasetScan, path: Path, top: int = 10) -> Path:
    """Left: width vs height scatter (marker area ~ images). Right: most common sizes per split."""
    splits = [(i, sp, st) for i, (sp, st) in enumerate(scan.splits.items()) if st.image_sizes]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.8), layout='constrained')
    total: dict[tuple[int, int], int] = {}
    for i, split, st in splits:
        uniq, cnt = np.unique(np.array(st.image_sizes), axis=0, return_counts=True)
        ax.scatter(uniq[:, 0], uniq[:, 1], s=20 + 300 * np.sqrt(cnt / cnt.max()), alpha=0.45,
                   color=_split_color(split, i), edgecolors='k', linewidths=0.5,
                   label=f'{split} ({len(st.image_sizes)} images, {len(uniq)} distinct '
                         f'size{"s" * (len(uniq) > 1)})')
        for wh, n in zip(map(tuple, uniq.tolist()), cnt.tolist()):
            total[wh] = total.get(wh, 0) + n
    common = sorted(total, key=lambda wh: -total[wh])[:top]
    for wh in common[:3]:
        ax.annotate(f'{wh[0]}x{wh[1]}', wh, fontsize=8, xytext=(8, 6), textcoords='offset points')
    ax.set_xlabel('width (px)')
    ax.set_ylabel('height (px)')
    ax.set_title('Image sizes (marker area ~ number of images)')
    ax.margins(0.3)
    ax.grid(alpha=0.3)
    if splits:
        ax.legend(fontsize=8, loc='lower right')
    y = np.arange(len(common))
    height = 0.8 / max(1, len(splits))
    for j, (i, split, st) in enumerate(splits):
        per = {wh: 0 for wh in common}
        for wh in map(tuple, st.image_sizes):
            if wh in per:
                per[wh] += 1
        bx.barh(y - 0.4 + height * (j + 0.5), [100 * per[wh] / len(st.image_sizes)
                                               for wh in common],
                height, color=_split_color(split, i), label=split)
    bx.set_yticks(y, [f'{w}x{h}' for w, h in common])
    bx.set_ylim(max(len(common), 4) - 0.5, -0.5)  # largest first; thin bars when few sizes
    bx.set_xlim(0, 125)
    bx.set_xticks(range(0, 101, 20))
    bx.set_xlabel('% of the split\'s images')
    bx.set_ylabel('width x height')
    bx.set_title(f'Most common sizes (top {len(common)} of {len(total)})')
    if splits:
        bx.legend(fontsize=8)
    return _save(fig, path)


def _class_panels(scan: DatasetScan, title: str):
    fg = list(range(1, len(scan.classes))) or [0]
    fig, axes = plt.subplots(1, len(fg), figsize=(4.2 * len(fg), 3.8), squeeze=False,
                             layout='constrained')
    fig.suptitle(title)
    return fig, list(zip(fg, axes[0]))


def plot_objects_per_image(scan: DatasetScan, path: Path) -> Path:
    """Share of images with 0, 1, 2... objects, one panel per foreground class, bars per split."""
    fig, panels = _class_panels(scan, 'Objects per image (8-connected components of each class)')
    splits = [(i, sp, st) for i, (sp, st) in enumerate(scan.splits.items()) if st.usable_pairs]
    width = 0.8 / max(1, len(splits))
    for c, ax in panels:
        top = max([max(st.objects_per_image[c], default=0) for _, _, st in splits] + [1])
        x = np.arange(top + 1)
        for j, (i, split, st) in enumerate(splits):
            hist = np.bincount(st.objects_per_image[c], minlength=top + 1)
            ax.bar(x - 0.4 + width * (j + 0.5), 100 * hist / st.usable_pairs, width,
                   color=_split_color(split, i), label=f'{split} (n={st.usable_pairs})')
        ax.set_title(scan.classes[c])
        ax.set_xlabel('objects in the image')
        ax.set_ylabel('% of images')
        if top <= 20:
            ax.set_xticks(x)
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_object_sizes(scan: DatasetScan, path: Path) -> Path:
    """Histogram of object areas (log-spaced bins), one panel per foreground class."""
    fig, panels = _class_panels(scan, 'Object size (pixels per connected component)')
    for c, ax in panels:
        allv = [v for st in scan.splits.values() for v in st.object_sizes[c]]
        if allv:
            bins = np.geomspace(max(1, min(allv)), max(allv) + 1, 30)
            for i, (split, st) in enumerate(scan.splits.items()):
                if st.object_sizes[c]:
                    ax.hist(st.object_sizes[c], bins=bins, histtype='step', linewidth=1.8,
                            label=f'{split} ({len(st.object_sizes[c])} objects)',
                            color=_split_color(split, i))
            ax.set_xscale('log')
            ax.legend(fontsize=8)
        ax.set_title(scan.classes[c])
        ax.set_xlabel('object area (px, log scale)')
        ax.set_ylabel('objects')
    return _save(fig, path)


def pick_samples(records: Sequence[PairRecord], k: int, n: int) -> list[PairRecord]:
    """Up to ``n`` records: one showing each foreground class first, then evenly spaced ones."""
    chosen: list[PairRecord] = []
    if n <= 0 or not records:
        return chosen
    for c in range(1, k):
        hit = [r for r in records if c in r.classes and r not in chosen]
        if hit and len(chosen) < n:
            chosen.append(hit[len(hit) // 2])
    for idx in np.linspace(0, len(records) - 1, num=min(n, len(records))).astype(int):
        if len(chosen) < n and records[idx] not in chosen:
            chosen.append(records[idx])
    return chosen


def overlay(image: np.ndarray, mask: np.ndarray, palette: np.ndarray, ignore_index: int | None,
            alpha: float = 0.45) -> np.ndarray:
    """RGB image with foreground classes blended in their palette colour and outlined."""
    out = image.astype(np.float32)
    k = len(palette)
    for c in range(1, k):
        m = mask == c
        if m.any():
            out[m] = (1 - alpha) * out[m] + alpha * palette[c]
    if ignore_index is not None and (mask == ignore_index).any():
        out[mask == ignore_index] = (0.5 * out[mask == ignore_index]
                                     + 0.5 * np.array(IGNORE_COLOR))
    out = out.astype(np.uint8)
    for c in range(1, k):
        contours, _ = cv2.findContours((mask == c).astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, tuple(int(v) for v in palette[c]), 1)
    return out


def plot_samples(scan: DatasetScan, path: Path, palette: Sequence[Sequence[int]] | None = None,
                 n: int = 8, split: str | None = None) -> Path:
    """Grid of images with their masks overlaid in the dataset palette and a class legend."""
    split = split or next((s for s in ('train', *scan.splits) if s in scan.splits
                           and scan.splits[s].records), None)
    records: list[PairRecord] = []
    if split:  # prefer pairs without any reported problem
        bad = {p.file for p in scan.problems}
        pool = scan.splits[split].records
        clean = [r for r in pool if r.image not in bad and r.mask not in bad]
        records = pick_samples(clean, len(scan.classes), n)
        records += pick_samples([r for r in pool if r not in clean], len(scan.classes),
                                n - len(records))
    pal = make_palette(len(scan.classes), palette)
    cols = min(4, max(1, len(records)))
    rows = max(1, -(-len(records) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 3.7 * rows + 0.8), squeeze=False,
                             layout='constrained')
    for ax in axes.ravel():
        ax.axis('off')
    for ax, rec in zip(axes.ravel(), records):
        img = cv2.imread(str(scan.root / rec.image), cv2.IMREAD_COLOR)
        mask = np.asarray(Image.open(scan.root / rec.mask))
        ax.imshow(overlay(img[:, :, ::-1], mask, pal, scan.ignore_index))
        shown = (', '.join(scan.classes[c] for c in rec.classes if c)
                 or ('background only' if rec.classes else 'nothing labelled'))
        ax.set_title(f'{rec.stem[:22]}\n{shown}', fontsize=8)
    if not records:
        axes[0, 0].text(0.5, 0.5, 'no usable image/mask pair', ha='center', va='center')
    handles = [Patch(facecolor=pal[c] / 255, edgecolor='k', label=name)
               for c, name in enumerate(scan.classes)]
    handles[0].set_label(f'{scan.classes[0]} (not tinted)')
    if any(st.ignore_pixels for st in scan.splits.values()):
        handles.append(Patch(facecolor=np.array(IGNORE_COLOR) / 255, edgecolor='k',
                             label=f'ignore ({scan.ignore_index})'))
    fig.legend(handles=handles, loc='outside lower center', ncol=min(6, len(handles)),
               fontsize=9, frameon=False)
    fig.suptitle(f'Samples from {split or "-"}: masks overlaid in the dataset palette')
    return _save(fig, path)


def write_plots(scan: DatasetScan, out_dir: Path,
                palette: Sequence[Sequence[int]] | None = None) -> list[str]:
    """Write every figure into ``out_dir``; returns the file names."""
    files = [plot_class_distribution(scan, out_dir / 'class_distribution.png'),
             plot_image_sizes(scan, out_dir / 'image_sizes.png'),
             plot_objects_per_image(scan, out_dir / 'objects_per_image.png'),
             plot_object_sizes(scan, out_dir / 'object_sizes.png'),
             plot_samples(scan, out_dir / 'samples.png', palette)]
    return [p.name for p in files]
