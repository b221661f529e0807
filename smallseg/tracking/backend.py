"""mmengine's ClearML vis backend, on the run's task: config, scalars and images."""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
from mmengine.visualization import ClearMLVisBackend
from mmseg.registry import VISBACKENDS

from smallseg.utils.config import cfg_get

SKIP_KEYS = {'epoch', 'iter', 'step', 'time', 'data_time'}
HYPERPARAMETERS = {  # the settings worth comparing across runs: name -> config key
    'model': dict(backbone='model.backbone.type', depth='model.backbone.depth',
                  decode_head='model.decode_head.type',
                  num_classes='model.decode_head.num_classes',
                  pretrained='model.backbone.init_cfg.checkpoint'),
    'optim_wrapper': dict(type='optim_wrapper.type', dtype='optim_wrapper.dtype'),
    'schedule': dict(max_epochs='train_cfg.max_epochs', val_interval='train_cfg.val_interval'),
    'data': dict(data_root='data_root', img_size='img_size',
                 batch_size='train_dataloader.batch_size',
                 num_workers='train_dataloader.num_workers')}


@VISBACKENDS.register_module()
class SafeClearMLVisBackend(ClearMLVisBackend):
    """``ClearMLVisBackend`` on the run's :class:`~smallseg.tracking.Tracker` (bounded calls,
    offline fallback) instead of its own ``Task.init``.

    The config and its hyper-parameters (editable) go to the task when it starts; LoggerHook's
    training scalars become ``iter/<key>`` curves, its validation metrics per-epoch curves
    (per class: ``val <metric> per class``); images become debug samples. The tracker, not
    :meth:`close`, closes the task.

    Args:
        max_images (int): Images logged per run. Defaults to 20.
    """

    def __init__(self, save_dir: Optional[str] = None, init_kwargs: Optional[dict] = None,
                 artifact_suffix: Sequence[str] = (), max_images: int = 20) -> None:
        super().__init__(save_dir, init_kwargs, tuple(artifact_suffix))
        self._tracker: Any = None
        self._images_left = max_images

    def _init_env(self) -> None:  # the tracker owns the task
        return None

    @property
    def experiment(self) -> Any:
        """The ClearML task (None before the run starts or when tracking is off)."""
        return self._tracker.task if self._tracker else None

    def add_config(self, config: Any, **kwargs: Any) -> None:
        from . import tracker_for
        self._tracker = tracker_for(config)
        self._tracker.run_config = (config.to_dict(), hyperparameters(config.to_dict()))

    def add_image(self, name: str, image: np.ndarray, step: int = 0, **kwargs: Any) -> None:
        if self._tracker is not None and self._images_left > 0:
            self._images_left -= 1
            self._tracker.log('image', name, name, encode_png(image), step)

    def add_scalar(self, name: str, value: Any, step: int = 0, **kwargs: Any) -> None:
        self.add_scalars({name: value}, step)

    def add_scalars(self, scalar_dict: dict, step: int = 0, file_path: Optional[str] = None,
                    **kwargs: Any) -> None:
        if self._tracker is not None and self._tracker.phase in ('train', 'val'):
            self._tracker.log('scalars', metric_rows(scalar_dict, 'val', step)
                              if self._tracker.phase == 'val' else
                              [(f'iter/{k}', 'train', v, step) for k, v in numbers(scalar_dict)])

    def close(self) -> None:
        return None


def hyperparameters(cfg: dict) -> dict:
    """The :data:`HYPERPARAMETERS`, the optimizer, loss class weights, schedulers and seed."""
    out: dict = {group: {name: cfg_get(cfg, key) for name, key in keys.items()}
                 for group, keys in HYPERPARAMETERS.items()}
    loss = cfg_get(cfg, 'model.decode_head.loss_decode') or {}
    out['model']['class_weight'] = (loss[0] if isinstance(loss, (list, tuple)) and loss
                                    else loss or {}).get('class_weight')
    out['optimizer'] = dict(cfg_get(cfg, 'optim_wrapper.optimizer') or {})
    out['schedule']['param_scheduler'] = [p.get('type') for p in cfg.get('param_scheduler')
                                          or [] if isinstance(p, dict)]
    out['seed'] = cfg_get(cfg, 'randomness.seed')
    return out


def numbers(values: dict) -> list[tuple[str, float]]:
    """The finite numbers in ``values`` (SKIP_KEYS, bools and strings left out)."""
    out = []
    for key, value in values.items():
        try:
            value = float(value) if not isinstance(value, (bool, str)) else None
        except (TypeError, ValueError):
            value = None
        if key not in SKIP_KEYS and value is not None and np.isfinite(value):
            out.append((key, value))
    return out


def metric_rows(metrics: dict, split: str, step: int) -> list[tuple]:
    """``mDice`` -> ('mDice', split); ``Dice.<class>`` -> ('<split> Dice per class', class)."""
    return [(f'{split} {key.partition(".")[0]} per class', key.partition('.')[2], value, step)
            if '.' in key else (key, split, value, step) for key, value in numbers(metrics)]


def encode_png(rgb: np.ndarray) -> bytes:
    """An RGB picture as PNG bytes (small enough to keep in the journal)."""
    import cv2
    ok, buf = cv2.imencode('.png', np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:
        raise ValueError('cannot encode the picture')
    return buf.tobytes()
