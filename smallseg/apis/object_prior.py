"""``one_class='auto'`` / ``largest_object='auto'`` in ``model.test_cfg``, from the training
masks: the one-object prior (:class:`smallseg.models.ObjectPriorEncoderDecoder`) is switched
on where nearly every training mask shows it, and written into the config before the runner
is built, so the checkpoint's config holds the decision."""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np
from mmengine.config import Config

from ..models.object_prior_encoder_decoder import PRIOR_KEYS
from .class_weights import iter_train_masks

NEARLY_ALL = 0.95  # share of the masks with foreground that must show the prior


def needs_object_prior(cfg: Config) -> bool:
    """True when ``model.test_cfg`` has a prior key set to ``'auto'``."""
    test_cfg = cfg.model.get('test_cfg') or {}
    return any(test_cfg.get(key) == 'auto' for key in PRIOR_KEYS)


def count_objects(cfg: Config, num_classes: int) -> dict[str, int]:
    """Masks with foreground (labels 1..num_classes-1), and of those the ones with a single
    foreground class and with a single 8-connected foreground region."""
    counts = dict(with_foreground=0, one_class=0, largest_object=0)
    for _, mask in iter_train_masks(cfg, "model.test_cfg 'auto'"):
        foreground = (mask > 0) & (mask < num_classes)
        if not foreground.any():
            continue
        counts['with_foreground'] += 1
        counts['one_class'] += int(len(np.unique(mask[foreground])) == 1)
        regions, _ = cv2.connectedComponents(foreground.astype(np.uint8), connectivity=8)
        counts['largest_object'] += int(regions == 2)
    return counts


def resolve_object_prior(cfg: Config) -> Optional[dict]:
    """Replace ``'auto'`` in ``model.test_cfg`` by True when at least :data:`NEARLY_ALL` of
    the training masks with foreground show it, else False. Returns the decision with the
    counts behind it (None: nothing was 'auto')."""
    if not needs_object_prior(cfg):
        return None
    counts = count_objects(cfg, int(cfg.model.decode_head.num_classes))
    decision: dict = dict(counts=counts)
    total = counts['with_foreground']
    for key in PRIOR_KEYS:
        if cfg.model.test_cfg.get(key) == 'auto':
            cfg.model.test_cfg[key] = bool(total) and counts[key] >= NEARLY_ALL * total
        decision[key] = cfg.model.test_cfg.get(key)
    return decision


def settle_object_prior(cfg: Config, meta: Optional[dict]) -> None:
    """For test and inference: an ``'auto'`` left in ``model.test_cfg`` takes the decision
    recorded in the checkpoint's config (``meta['cfg']``, written by the training run), or is
    off where there is none (the masks at hand need not be the training ones)."""
    if not needs_object_prior(cfg):
        return
    trained: dict = {}
    text = (meta or {}).get('cfg')
    if isinstance(text, str):
        try:
            trained = Config.fromstring(text, '.py').model.get('test_cfg') or {}
        except Exception:  # noqa: BLE001 - an unreadable record means no decision
            trained = {}
    for key in PRIOR_KEYS:
        if cfg.model.test_cfg.get(key) == 'auto':
            cfg.model.test_cfg[key] = trained.get(key) is True
