"""Training curves from mmengine's logs: train loss, learning rate, val mDice and per-class Dice.

mmengine's ``LocalVisBackend`` writes ``<work_dir>/<timestamp>/vis_data/scalars.json``, one
JSON object per line: training lines carry ``loss``, ``lr``, ``epoch`` and ``iter``; validation
lines carry the metric keys (``mDice``, ``Dice.<class>``...) with ``step`` = epoch (the
config logs metrics by epoch). A resumed run has several timestamp folders; later ones win.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Optional

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..utils.scalars import numbers  # noqa: E402

CURVES_NAME = 'training_curves.png'


def scalar_files(work_dir: str | Path) -> list[Path]:
    """The run's ``scalars.json`` files, oldest first (timestamp folder names sort by time)."""
    return sorted(Path(work_dir).glob('*/vis_data/scalars.json'))


def read_curves(work_dir: str | Path) -> dict:
    """Per-epoch series: ``epochs``, ``loss`` (mean of the logged values), ``lr`` (last),
    ``val_epochs`` and ``val`` (metric name -> values as fractions 0-1)."""
    train: dict[int, dict] = {}
    val: dict[int, dict] = {}
    for path in scalar_files(work_dir):
        run_train: dict[int, list] = defaultdict(list)
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by an interrupted run
            if 'loss' in rec and 'epoch' in rec:
                run_train[int(rec['epoch'])].append(rec)
            elif 'mDice' in rec or 'mIoU' in rec:
                epoch = int(rec.get('epoch', rec.get('step', 0)))
                val[epoch] = {k: v / 100.0 for k, v in numbers(rec)}
        for epoch, recs in run_train.items():  # a resumed run replaces the epochs it redid
            train[epoch] = dict(loss=float(np.mean([r['loss'] for r in recs])),
                                lr=recs[-1].get('lr'))
    epochs = sorted(train)
    val_epochs = sorted(val)
    keys = list(dict.fromkeys(k for e in val_epochs for k in val[e]))  # the logged order
    return dict(epochs=epochs, loss=[train[e]['loss'] for e in epochs],
                lr=[train[e]['lr'] for e in epochs], val_epochs=val_epochs,
                val={k: [val[e].get(k, np.nan) for e in val_epochs] for k in keys})


def best_epoch(curves: dict, key: str = 'mDice') -> Optional[int]:
    """The validation epoch with the highest ``key`` (the one CheckpointHook keeps)."""
    values = curves['val'].get(key)
    if not values or not np.isfinite(values).any():
        return None
    return curves['val_epochs'][int(np.nanargmax(values))]


def plot_training_curves(work_dir: str | Path, out_path: Optional[str | Path] = None,
                         title: Optional[str] = None) -> Path:
    """Save loss / learning rate / validation Dice per epoch; default ``<work_dir>/
    training_curves.png``. Raises FileNotFoundError when the run has no logged scalars."""
    work_dir = Path(work_dir)
    curves = read_curves(work_dir)
    if not curves['epochs'] and not curves['val_epochs']:
        raise FileNotFoundError(f'no */vis_data/scalars.json with training scalars in {work_dir}')
    out_path = Path(out_path) if out_path else work_dir / CURVES_NAME
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    ep = curves['epochs']
    ax = axes[0]
    ax.plot(ep, curves['loss'], 'o-', color='tab:blue', ms=4)
    ax.set(title='train loss (mean per epoch)', xlabel='epoch', ylabel='loss')
    ax = axes[1]
    lr = np.array([np.nan if v is None else v for v in curves['lr']], dtype=float)
    ax.plot(ep, lr, 'o-', color='tab:orange', ms=4)
    ax.set(title='learning rate', xlabel='epoch', ylabel='lr')
    if np.isfinite(lr).any():
        lo, hi = np.nanmin(lr), np.nanmax(lr)
        if lo > 0 and hi / lo > 20:
            ax.set_yscale('log')
        else:  # from 0, so a constant rate reads as constant
            ax.set_ylim(0, 1.25 * hi if hi > 0 else 1)
            ax.ticklabel_format(axis='y', style='sci', scilimits=(-3, 3))
        if lo == hi:
            ax.set_title(f'learning rate (constant {hi:.1e})')
    ax = axes[2]
    vep, val = curves['val_epochs'], curves['val']
    styles = {'mDice': dict(color='black', lw=2.2, marker='o', ms=4),
              'mDice_fg': dict(color='0.45', lw=1.6, ls='--')}
    for key, kw in styles.items():
        if key in val:
            ax.plot(vep, val[key], label=key, **kw)
    for key in val:
        if key.startswith('Dice.'):
            ax.plot(vep, val[key], lw=1.2, marker='.', label=key[5:])
    best = best_epoch(curves)
    if best is not None:
        score = val['mDice'][vep.index(best)]
        ax.axvline(best, color='tab:red', lw=1, ls=':',
                   label=f'best: epoch {best}\n(mDice {score:.3f})')
    ax.set(title='validation Dice', xlabel='epoch', ylabel='Dice', ylim=(0, 1.02))
    ax.legend(fontsize=8, loc='upper left', bbox_to_anchor=(1.01, 1.0), frameon=False)
    all_epochs = sorted(set(ep) | set(vep))
    for a in axes:
        a.grid(alpha=0.3)
        if 0 < len(all_epochs) < 12:  # integer epoch ticks on short runs
            a.set_xticks(range(all_epochs[0], all_epochs[-1] + 1))
    fig.suptitle(f'Training curves — {title or work_dir.name}', fontsize=12)
    fig.tight_layout()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path
