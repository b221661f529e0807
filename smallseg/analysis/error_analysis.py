"""Error analysis of a trained model on one split: best/worst/correct/error pictures + summary.

Writes to ``out_dir`` (default ``supplementary/viz/<model>``): ``best.png``, ``worst.png``,
``correct_1..3.png``, ``error_1..3.png`` (image | true mask | predicted mask),
``confusion_matrix.png``, ``per_image.csv`` and ``summary.json`` / ``summary.txt`` (per-class
statistics and the worst class: how many images miss it entirely).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np
from PIL import Image

from smallseg.apis.config import check_data_root, load_config, set_data_root
from smallseg.utils.errors import UserError
from smallseg.apis.infer import load_model, predict, read_image
from smallseg.evaluation.dice_metric import (confusion_matrix, per_image_dice,
                                             write_per_image_csv)

from .figures import plot_confusion_matrix, plot_example
from ..utils.palette import make_palette


@dataclass
class ImageResult:
    """One image's prediction and scores (Dice NaN = class in neither mask, skipped)."""

    name: str
    img_path: str
    seg_path: str
    cm: np.ndarray
    pred: np.ndarray = field(repr=False)
    dice: np.ndarray = field(init=False)
    mdice: float = field(init=False)

    def __post_init__(self) -> None:
        self.dice = per_image_dice(self.cm)
        self.mdice = float(np.nanmean(self.dice)) if np.isfinite(self.dice).any() else 0.0

    def missed(self) -> list[int]:
        """Foreground classes in the truth with no predicted pixel at all."""
        return [c for c in range(1, len(self.cm)) if self.cm[c].sum() > 0
                and self.cm[:, c].sum() == 0]


def read_mask(path: str) -> np.ndarray:
    """An index mask as mmseg's LoadAnnotations reads it (Pillow: palette PNGs give indices)."""
    with Image.open(path) as im:
        return np.asarray(im).squeeze().astype(np.uint8)


def split_samples(cfg, split: str = 'test') -> list[tuple[str, str]]:
    """``(image path, mask path)`` of every sample of the config's ``split`` dataloader."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    ds_cfg = cfg[f'{split}_dataloader'].dataset.copy()
    ds_cfg.pipeline = []
    dataset = DATASETS.build(ds_cfg)
    infos = (dataset.get_data_info(i) for i in range(len(dataset)))
    return [(d['img_path'], d['seg_map_path']) for d in infos]


def predict_split(model, samples: Sequence[tuple[str, str]], num_classes: int,
                  ignore_index: int = 255, batch_size: int = 4) -> list[ImageResult]:
    """Predict every sample and score it against its mask (at the original size)."""
    results: list[ImageResult] = []
    for start in range(0, len(samples), batch_size):
        chunk = samples[start:start + batch_size]
        images = [read_image(img) for img, _ in chunk]
        for (img, seg), pred in zip(chunk, predict(model, images, batch_size=len(images))):
            truth = read_mask(seg)
            cm = confusion_matrix(pred, truth, num_classes, ignore_index)
            results.append(ImageResult(Path(img).name, img, seg, cm, pred))
    return results


def select_examples(results: Sequence[ImageResult], n: int = 3) -> dict[str, ImageResult]:
    """best / worst by per-image mDice; correct_1..n next best; error_1..n the worst others,
    images that miss a true class entirely first. No image is shown twice."""
    by_score = sorted(results, key=lambda r: (-r.mdice, r.name))
    by_error = sorted(results, key=lambda r: (-len(r.missed()), r.mdice, r.name))
    chosen: dict[str, ImageResult] = {}
    used: set[str] = set()

    def take(key: str, ranking: Sequence[ImageResult]) -> None:
        for r in ranking:
            if r.name not in used:
                chosen[key] = r
                used.add(r.name)
                return

    take('best', by_score)
    take('worst', by_score[::-1])
    for i in range(1, n + 1):
        take(f'error_{i}', by_error)
    for i in range(1, n + 1):
        take(f'correct_{i}', by_score)
    order = ['best', 'worst'] + [f'correct_{i}' for i in range(1, n + 1)] + [
        f'error_{i}' for i in range(1, n + 1)]
    return {k: chosen[k] for k in order if k in chosen}


def class_summary(results: Sequence[ImageResult], classes: Sequence[str]) -> dict:
    """Per-class statistics over the split and the worst foreground class."""
    cms = np.stack([r.cm for r in results])
    total = cms.sum(0)
    dice = np.stack([r.dice for r in results])
    per_class = {}
    for c, name in enumerate(classes):
        in_truth = cms[:, c, :].sum(1) > 0
        predicted = cms[:, :, c].sum(1) > 0
        denom = total[c].sum() + total[:, c].sum()
        per_class[name] = dict(
            dice=round(float(2 * total[c, c] / denom), 4) if denom else None,
            dice_per_image=(round(float(np.nanmean(dice[:, c])), 4)
                            if np.isfinite(dice[:, c]).any() else None),
            images_with_class=int(in_truth.sum()),
            images_missed=int((in_truth & ~predicted).sum()),
            images_false_positive=int((~in_truth & predicted).sum()),
            missed_images=[r.name for r, t, p in zip(results, in_truth, predicted) if t and not p],
            true_pixels_predicted_as={classes[p]: int(total[c, p]) for p in range(len(classes))})
    fg = {k: v for i, (k, v) in enumerate(per_class.items()) if i > 0 and v['dice'] is not None}
    worst = min(fg, key=lambda k: fg[k]['dice']) if fg else None
    return dict(num_images=len(results), classes=per_class, worst_class=worst,
                mdice_per_image=round(float(np.mean([r.mdice for r in results])), 4))


def summary_text(summary: dict, model: str, split: str) -> str:
    """A few lines for summary.txt (the report's key finding first)."""
    lines = [f'Error analysis of {model} on the {split} split ({summary["num_images"]} images)']
    worst = summary['worst_class']
    if worst:
        w = summary['classes'][worst]
        share = w['images_missed'] / max(w['images_with_class'], 1)
        confused = {k: v for k, v in w['true_pixels_predicted_as'].items() if k != worst}
        total = sum(w['true_pixels_predicted_as'].values()) or 1
        where = ', '.join(f'{k} {100 * v / total:.0f}%' for k, v in confused.items())
        lines.append(
            f'Worst class: {worst} (Dice {w["dice"]}): {w["images_missed"]} of '
            f'{w["images_with_class"]} images that contain it ({100 * share:.0f}%) have no '
            f'{worst} pixel predicted at all (missed entirely, Dice 0). Its true pixels were '
            f'predicted as: {where}.')
    lines.append('')
    lines.append(f'{"class":<16}{"Dice":>8}{"Dice/img":>10}{"images":>8}{"missed":>8}{"false+":>8}')
    for name, c in summary['classes'].items():
        d = '-' if c['dice'] is None else f'{c["dice"]:.4f}'
        di = '-' if c['dice_per_image'] is None else f'{c["dice_per_image"]:.4f}'
        lines.append(f'{name:<16}{d:>8}{di:>10}{c["images_with_class"]:>8}'
                     f'{c["images_missed"]:>8}{c["images_false_positive"]:>8}')
    lines.append('')
    lines.append('Pictures (image | true mask | predicted mask):')
    for key, pic in summary.get('pictures', {}).items():
        lines.append(f'  {key}.png: {pic["image"]} (mDice {pic["mdice"]:.3f}'
                     + (f', missed {", ".join(pic["missed"])}' if pic['missed'] else '') + ')')
    return '\n'.join(lines) + '\n'


def run_error_analysis(config: str | Path, checkpoint: str | Path, out_dir: str | Path,
                       data_root: Optional[str] = None, split: str = 'test',
                       batch_size: int = 4, device: Optional[str] = None,
                       cfg_options: Optional[dict] = None) -> dict:
    """Predict ``split`` with ``checkpoint``; write pictures, confusion matrix and summary."""
    if split not in ('val', 'test'):
        raise UserError(f"split must be 'val' or 'test', got {split!r}")
    cfg = load_config(config, cfg_options)
    set_data_root(cfg, data_root)
    check_data_root(cfg, (f'{split}_dataloader',))
    model = load_model(cfg, checkpoint, device=device)
    classes = list(model.dataset_meta['classes'])
    palette = make_palette(len(classes), model.dataset_meta.get('palette'))
    ignore = (cfg.get(f'{split}_evaluator') or {}).get('ignore_index', 255)
    samples = split_samples(cfg, split)
    if not samples:
        raise UserError(f'the {split} split of {cfg[f"{split}_dataloader"].dataset.data_root} '
                        'has no images')
    results = predict_split(model, samples, len(classes), ignore, batch_size)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = class_summary(results, classes)
    summary.update(model=Path(config).stem, split=split, checkpoint=str(checkpoint),
                   config=str(config), pictures={})
    for key, r in select_examples(results).items():
        rgb = cv2.cvtColor(read_image(r.img_path), cv2.COLOR_BGR2RGB)
        truth = read_mask(r.seg_path)
        label = key.replace('_', ' ')
        plot_example(rgb, truth, r.pred, classes, palette, r.dice,
                     f'{summary["model"]} {split} — {label}: {r.name}', out / f'{key}.png')
        summary['pictures'][key] = dict(image=r.name, mdice=round(r.mdice, 4),
                                        dice={c: (None if np.isnan(d) else round(float(d), 4))
                                              for c, d in zip(classes, r.dice)},
                                        missed=[classes[c] for c in r.missed()])
    cm = np.stack([r.cm for r in results]).sum(0)
    plot_confusion_matrix(cm, classes, out / 'confusion_matrix.png',
                          title=f'{summary["model"]} — {split} confusion matrix')
    write_per_image_csv(out / 'per_image.csv', [r.name for r in results],
                        np.stack([r.cm for r in results]), classes)
    (out / 'summary.json').write_text(json.dumps(summary, indent=2) + '\n')
    (out / 'summary.txt').write_text(summary_text(summary, summary['model'], split))
    return summary
