"""Matplotlib figures: image | true mask | predicted mask panels and the confusion matrix."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from .overlay import overlay  # noqa: E402


def _fmt(x: Optional[float]) -> str:
    return '–' if x is None or not np.isfinite(x) else f'{x:.3f}'


def class_legend(classes: Sequence[str], palette: np.ndarray) -> list[Patch]:
    """Legend entries: one coloured patch per class (background drawn unpainted)."""
    handles = []
    for i, name in enumerate(classes):
        color = np.asarray(palette[i]) / 255.0
        if i == 0:
            handles.append(Patch(facecolor='none', edgecolor='0.4', label=f'{name} (unpainted)'))
        else:
            handles.append(Patch(facecolor=color, edgecolor=color, label=name))
    return handles


def plot_example(image_rgb: np.ndarray, truth: np.ndarray, pred: np.ndarray,
                 classes: Sequence[str], palette: np.ndarray, dice: Sequence[float],
                 title: str, out_path: str | Path) -> Path:
    """Save ``image | true mask | predicted mask`` with a legend and the image's Dice.

    ``dice``: per-class Dice of this image (NaN = class in neither mask, skipped).
    """
    dice = np.asarray(dice, dtype=float)
    mdice = float(np.nanmean(dice)) if np.isfinite(dice).any() else float('nan')
    per_class = '   '.join(f'{c}: {_fmt(d)}' for c, d in zip(classes, dice))
    if not np.isfinite(dice).all():
        per_class += '   (– = in neither mask, skipped)'
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.9))
    panels = [(image_rgb, 'image'),
              (overlay(image_rgb, truth, palette), 'true mask'),
              (overlay(image_rgb, pred, palette), 'predicted mask')]
    for ax, (img, name) in zip(axes, panels):
        ax.imshow(img, interpolation='nearest')
        ax.set_title(name, fontsize=11)
        ax.set_xticks([])
        ax.set_yticks([])
    missed = [c for i, c in enumerate(classes)
              if i > 0 and (truth == i).any() and not (pred == i).any()]
    if missed:
        axes[2].text(0.02, 0.02, 'missed: ' + ', '.join(missed), transform=axes[2].transAxes,
                     color='white', fontsize=10, va='bottom',
                     bbox=dict(facecolor='black', alpha=0.7, edgecolor='none'))
    fig.suptitle(f'{title}  —  mDice {_fmt(mdice)}\nDice per class: {per_class}',
                 fontsize=12)
    fig.legend(handles=class_legend(classes, palette), loc='lower center',
               ncol=len(classes), frameon=False, fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 0.92))
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path


def plot_confusion_matrix(cm: np.ndarray, classes: Sequence[str], out_path: str | Path,
                          title: str = 'Confusion matrix') -> Path:
    """Row-normalised confusion matrix (share of each true class's pixels) with pixel counts."""
    cm = np.asarray(cm, dtype=np.int64)
    with np.errstate(divide='ignore', invalid='ignore'):
        share = np.nan_to_num(cm / cm.sum(1, keepdims=True))
    n = len(classes)
    size = max(4.5, 1.1 * n + 2.5)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(share, cmap='Blues', vmin=0, vmax=1)
    for t in range(n):
        for p in range(n):
            ax.text(p, t, f'{100 * share[t, p]:.1f}%\n{cm[t, p]:,}', ha='center', va='center',
                    fontsize=9, color='white' if share[t, p] > 0.6 else 'black')
    ax.set_xticks(range(n), classes, rotation=30, ha='right')
    ax.set_yticks(range(n), classes)
    ax.set_xlabel('predicted class')
    ax.set_ylabel('true class')
    ax.set_title(f'{title}\n(row = true class, % of its pixels; count below)', fontsize=11)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path
