"""``class_weight='auto'`` in a loss: median-frequency weights of the training masks.

The weights are those the EDA report suggests
(:func:`smallseg.eda.report.median_frequency_weights`), computed from the masks the train
dataloader actually reads, and written into the config before the runner is built, so the
checkpoint's config holds the numbers. Test and inference take them from the checkpoint's
config (:func:`settle_class_weights`); a model built with an unresolved 'auto' raises.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Optional

import numpy as np
from mmengine.config import Config, ConfigDict
from PIL import Image

from ..eda.report import median_frequency_weights
from ..models.cross_entropy_loss import AUTO_POWERS
from ..utils.config import head_losses
from ..utils.errors import UserError


def needs_class_weights(cfg: Config) -> bool:
    """True when some loss asks for ``class_weight='auto'``."""
    return any(_power(loss) is not None for loss in head_losses(cfg.model))


def _power(loss: ConfigDict) -> Optional[float]:
    weight = loss.get('class_weight')
    return AUTO_POWERS.get(weight) if isinstance(weight, str) else None


def iter_train_masks(cfg: Config, purpose: str) -> Iterator[tuple[Path, np.ndarray]]:
    """``(path, mask)`` of every mask the train dataloader reads; ``purpose`` (the setting
    that needs them) starts the one-line error for a wrong folder or an unreadable mask."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    dataset_cfg = cfg.train_dataloader.dataset.copy()
    dataset_cfg.pipeline = []
    dataset_cfg.pop('metainfo', None)  # the files are the same; values >= num_classes skipped
    try:
        dataset = DATASETS.build(dataset_cfg)
    except Exception as exc:  # noqa: BLE001 - a wrong folder or setting, in one line
        raise UserError(f'{purpose}: cannot list the training masks '
                        f'({type(exc).__name__}: {exc}); check train_dataloader.dataset') from exc
    for i in range(len(dataset)):
        path = Path(dataset.get_data_info(i)['seg_map_path'])
        try:
            mask = np.asarray(Image.open(path))
        except OSError as exc:
            raise UserError(f'{path}: cannot read this mask for {purpose} ({exc}); '
                            'fix or remove the file') from exc
        yield path, mask


def mask_pixel_counts(cfg: Config, num_classes: int) -> np.ndarray:
    """Pixels per class over the train dataloader's masks (other values, e.g. 255, skipped)."""
    counts = np.zeros(num_classes, dtype=np.int64)
    for _, mask in iter_train_masks(cfg, "class_weight='auto'"):
        values = np.bincount(mask.ravel(), minlength=num_classes)
        counts += values[:num_classes]
    return counts


def resolve_class_weights(cfg: Config) -> Optional[list[float]]:
    """Replace ``class_weight='auto'`` in every loss by the training masks' median-frequency
    weights (``'auto_sqrt'``: their square roots, rescaled to mean 1, a milder balance for a
    loss that has a Dice term); returns the weights of the first such loss (None: none)."""
    if not needs_class_weights(cfg):
        return None
    num_classes = int(cfg.model.decode_head.num_classes)
    counts = mask_pixel_counts(cfg, num_classes)
    if counts.sum() == 0:
        raise UserError(f"class_weight='auto': the training masks have no pixel of any class "
                        f'0..{num_classes - 1}; check labels/train or give class_weight a list')
    base = np.array(median_frequency_weights(counts))
    first = None
    for loss in head_losses(cfg.model):
        power = _power(loss)
        if power is None:
            continue
        weights = base ** power
        present = weights > 0
        weights[present] /= weights[present].mean()
        loss.class_weight = ([round(float(w), 4) for w in weights] if power != 1.0
                             else [float(w) for w in base])
        first = first or loss.class_weight
    return first


def settle_class_weights(cfg: Config, meta: Optional[dict]) -> None:
    """For test and inference: a ``class_weight='auto'`` left in a loss takes the weights
    recorded in the checkpoint's config (``meta['cfg']``, written by the training run), or
    none where there is no record (the loss does not change a prediction)."""
    if not needs_class_weights(cfg):
        return
    trained: list = []
    text = (meta or {}).get('cfg')
    if isinstance(text, str):
        try:
            trained = head_losses(Config.fromstring(text, '.py').model)
        except Exception:  # noqa: BLE001 - an unreadable record means no weights
            trained = []
    losses = head_losses(cfg.model)
    for i, loss in enumerate(losses):
        if _power(loss) is None:
            continue
        weight = trained[i].get('class_weight') if len(trained) == len(losses) else None
        loss.class_weight = weight if isinstance(weight, (list, tuple)) else None
