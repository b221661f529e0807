"""Dice metric: mmseg's IoUMetric plus foreground / per-image Dice, confusion matrix, CSV rows."""
from __future__ import annotations

import csv
import os.path as osp
import re
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from mmengine.logging import MMLogger, print_log
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS
from PIL import Image
from prettytable import PrettyTable

# keys of DiceMetric's result that are percentages (everything else: counts, lists)
PERCENT_KEY = re.compile(r'^(aAcc|m(Dice|IoU|Acc)(_\w+)?|(Dice|IoU|Acc)\..+|img_class_acc)$')
CSV_NAME = 'per_image.csv'


def _get(obj: Any, key: str) -> Any:
    """``obj[key]`` for the dicts mmengine passes, ``getattr`` for data elements."""
    return obj[key] if isinstance(obj, dict) else getattr(obj, key)


def confusion_matrix(pred: torch.Tensor | np.ndarray, label: torch.Tensor | np.ndarray,
                     num_classes: int, ignore_index: int = 255) -> np.ndarray:
    """``(C, C)`` pixel counts, rows = true class, columns = predicted class.

    Pixels whose label is ``ignore_index`` (or outside ``0..C-1``) are not counted.
    """
    pred, label = torch.as_tensor(pred), torch.as_tensor(label)
    pred, label = pred.reshape(-1).long(), label.reshape(-1).long().to(pred.device)
    valid = (label != ignore_index) & (label >= 0) & (label < num_classes) & (pred >= 0) & (
        pred < num_classes)
    idx = label[valid] * num_classes + pred[valid]
    counts = torch.bincount(idx, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).cpu().numpy().astype(np.int64)


def scores_from_confusion(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class Dice, IoU and accuracy (fractions); NaN where a class has no pixels at all."""
    cm = np.asarray(cm, dtype=np.float64)
    inter = np.diag(cm)
    pred, true = cm.sum(0), cm.sum(1)
    with np.errstate(divide='ignore', invalid='ignore'):
        return {'Dice': 2 * inter / (pred + true), 'IoU': inter / (pred + true - inter),
                'Acc': inter / true}


def per_image_dice(cm: np.ndarray) -> np.ndarray:
    """Dice of every class in one image; NaN (skipped) where neither truth nor prediction has it."""
    return scores_from_confusion(cm)['Dice']


def image_classes(cms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each image's true and predicted class from its ``(C, C)`` confusion matrix: the
    foreground class (>= 1) with the most pixels, 0 where the image has none."""
    cms = np.asarray(cms)
    true_px, pred_px = cms[:, 1:, :].sum(2), cms[:, :, 1:].sum(1)  # (N, C - 1) each

    def top(px: np.ndarray) -> np.ndarray:
        if px.shape[1] == 0:  # background is the only class
            return np.zeros(len(px), dtype=np.int64)
        return np.where(px.sum(1) > 0, px.argmax(1) + 1, 0)

    return top(true_px), top(pred_px)


def _nanmean(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=np.float64)
    return float(np.nanmean(values)) if np.isfinite(values).any() else float('nan')


def metrics_to_fractions(metrics: dict, digits: int = 4) -> dict:
    """DiceMetric's percentages as fractions (0-1); NaN becomes None; other keys unchanged."""
    out = {}
    for key, value in metrics.items():
        if PERCENT_KEY.match(key) and isinstance(value, (int, float, np.floating)):
            value = None if np.isnan(value) else round(float(value) / 100.0, digits)
        out[key] = value
    return out


@METRICS.register_module()
class DiceMetric(IoUMetric):
    """Dice and IoU per class, dataset-level and per image, with a confusion matrix.

    Dataset-level values follow mmseg: intersections and unions are summed over all images,
    then per-class scores are computed and averaged (``nanmean``, a class with no pixels in
    truth and prediction of the whole split is skipped). Per-image values use the empty-class
    rule: in one image, a class absent from both prediction and truth is skipped (neither
    1 nor 0); a class in the truth but not predicted scores 0, and vice versa. An image's
    mDice is the mean over the classes it keeps; ``mDice_per_image`` is the mean over images.

    Returned keys (percent, 2 decimals, like IoUMetric): ``aAcc``, ``mDice``, ``mIoU``,
    ``mAcc``, ``mDice_fg``, ``mIoU_fg`` (classes >= 1), ``mDice_per_image``,
    ``mDice_fg_per_image`` (images with no foreground in truth and prediction skipped),
    ``Dice.<class>``, ``IoU.<class>``, ``Acc.<class>``; ``img_class_acc`` (the images with
    foreground whose most-predicted foreground class is their true one, none predicted
    counting as wrong: where datasets hold one object per image, how often the class is
    right, apart from the outline; NaN without foreground images); plus ``confusion_matrix``
    (list of C lists, rows = truth, columns = prediction, pixel counts). ``mDice`` is
    what ``CheckpointHook(save_best='mDice')`` reads.

    Args:
        ignore_index (int): Label value left out of every count. Defaults to 255.
        csv_path (str, optional): Write one row per image here (image, Dice per class,
            mDice, mDice_fg, true/predicted pixels per class; fractions 0-1, empty = skipped).
        output_dir (str, optional): As IoUMetric, predicted masks are saved there as PNG;
            the per-image rows also go to ``<output_dir>/per_image.csv`` unless ``csv_path``.
        nan_to_num (int, optional): Replace NaN per-class scores by this before averaging.
        collect_device (str): 'cpu' or 'gpu', for distributed collection.
        format_only (bool): Only save predictions (``output_dir``), no metrics.
        prefix (str, optional): Prefix of the metric names.
    """

    def __init__(self, ignore_index: int = 255, csv_path: Optional[str] = None,
                 output_dir: Optional[str] = None, nan_to_num: Optional[int] = None,
                 collect_device: str = 'cpu', format_only: bool = False,
                 prefix: Optional[str] = None, **kwargs: Any) -> None:
        kwargs.pop('iou_metrics', None)  # always Dice + IoU
        super().__init__(ignore_index=ignore_index, iou_metrics=['mIoU', 'mDice'],
                         nan_to_num=nan_to_num, collect_device=collect_device,
                         output_dir=output_dir, format_only=format_only, prefix=prefix,
                         **kwargs)
        self.csv_path = csv_path or (osp.join(output_dir, CSV_NAME) if output_dir else None)

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        """Store each image's name and confusion matrix (save the mask with ``output_dir``)."""
        num_classes = len(self.dataset_meta['classes'])
        for sample in data_samples:
            pred = _get(_get(sample, 'pred_sem_seg'), 'data').squeeze()
            img_path = sample.get('img_path', '') if isinstance(sample, dict) else (
                sample.metainfo.get('img_path', ''))
            name = Path(str(img_path)).name if img_path else f'image_{len(self.results)}'
            if not self.format_only:
                label = _get(_get(sample, 'gt_sem_seg'), 'data').squeeze().to(pred)
                self.results.append(dict(
                    name=name, cm=confusion_matrix(pred, label, num_classes, self.ignore_index)))
            if self.output_dir is not None:
                out = osp.join(self.output_dir, f'{osp.splitext(name)[0]}.png')
                Image.fromarray(pred.cpu().numpy().astype(np.uint8)).save(out)

    def compute_metrics(self, results: list) -> dict[str, Any]:
        """Dataset-level and per-image scores from the stored confusion matrices."""
        logger = MMLogger.get_current_instance()
        if self.format_only:
            logger.info(f'results are saved to {self.output_dir}')
            return {}
        classes = list(self.dataset_meta['classes'])
        cms = np.stack([r['cm'] for r in results]).astype(np.int64)
        total = cms.sum(0)
        scores = scores_from_confusion(total)
        if self.nan_to_num is not None:
            scores = {k: np.nan_to_num(v, nan=self.nan_to_num) for k, v in scores.items()}
        image_dice = np.stack([per_image_dice(cm) for cm in cms])  # (N, C)
        image_mdice = [_nanmean(d) for d in image_dice]
        image_fg = [_nanmean(d[1:]) for d in image_dice]

        def pct(x: float) -> float:
            return float(np.round(x * 100, 2))

        metrics: dict[str, Any] = {
            'aAcc': pct(np.diag(total).sum() / max(total.sum(), 1)),
            'mDice': pct(_nanmean(scores['Dice'])), 'mIoU': pct(_nanmean(scores['IoU'])),
            'mAcc': pct(_nanmean(scores['Acc'])),
            'mDice_fg': pct(_nanmean(scores['Dice'][1:])),
            'mIoU_fg': pct(_nanmean(scores['IoU'][1:])),
            'mDice_per_image': pct(_nanmean(image_mdice)),
            'mDice_fg_per_image': pct(_nanmean(image_fg))}
        for kind in ('Dice', 'IoU', 'Acc'):
            metrics.update({f'{kind}.{c}': pct(v) for c, v in zip(classes, scores[kind])})
        true_cls, pred_cls = image_classes(cms)
        has_fg = true_cls > 0
        right = pred_cls[has_fg] == true_cls[has_fg]
        metrics['img_class_acc'] = pct(right.mean() if has_fg.any() else float('nan'))
        metrics['confusion_matrix'] = total.tolist()

        table = PrettyTable(['Class', 'Dice', 'IoU', 'Acc', 'Dice/img', 'missed imgs'])
        for i, name in enumerate(classes):
            missed = int(((cms[:, i, :].sum(1) > 0) & (cms[:, :, i].sum(1) == 0)).sum())
            table.add_row([name] + [pct(scores[k][i]) for k in ('Dice', 'IoU', 'Acc')]
                          + [pct(_nanmean(image_dice[:, i])), missed])
        print_log('per class results (missed imgs: class in the truth, 0 predicted pixels):',
                  logger)
        print_log('\n' + table.get_string(), logger=logger)
        if has_fg.any():
            print_log(f'image class (the most-predicted foreground class): right for '
                      f'{int(right.sum())} of '
                      f'{int(has_fg.sum())} images with foreground, none predicted for '
                      f'{int((pred_cls[has_fg] == 0).sum())}', logger)
        if self.csv_path:
            write_per_image_csv(self.csv_path, [r['name'] for r in results], cms, classes)
        return metrics


def write_per_image_csv(path: str | Path, names: Sequence[str], cms: np.ndarray,
                        classes: Sequence[str]) -> Path:
    """One row per image: Dice per class, mDice, mDice_fg (fractions) and pixel counts."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def fmt(x: float) -> str:
        return '' if np.isnan(x) else f'{x:.4f}'

    header = (['image'] + [f'Dice.{c}' for c in classes] + ['mDice', 'mDice_fg']
              + [f'true_px.{c}' for c in classes] + [f'pred_px.{c}' for c in classes])
    with path.open('w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for name, cm in zip(names, cms):
            dice = per_image_dice(cm)
            writer.writerow([name] + [fmt(d) for d in dice]
                            + [fmt(_nanmean(dice)), fmt(_nanmean(dice[1:]))]
                            + [int(x) for x in cm.sum(1)] + [int(x) for x in cm.sum(0)])
    return path
