"""ClearML for mmengine's runner: a vis backend for what mmengine sends to visualizers and a
hook for what it does not (per-epoch curves, test metrics, prediction pictures, the model).

Both log through the run's :class:`smallseg.apis.tracking.Tracker` (one task per run, bounded
calls, offline fallback); the config's ``clearml`` block and ``--clearml`` choose the mode.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.visualization import ClearMLVisBackend
from mmseg.registry import HOOKS, VISBACKENDS

from smallseg.apis.tracking import Tracker, tracker_for
from smallseg.apis.tracking_ops import encode_png

SKIP_KEYS = {'epoch', 'iter', 'step'}


@VISBACKENDS.register_module()
class SafeClearMLVisBackend(ClearMLVisBackend):
    """mmengine's ``ClearMLVisBackend`` on the run's tracker instead of its own ``Task.init``.

    The config binds the backend to the run's task; LoggerHook's training scalars become
    ``iter/<key>`` curves; images (e.g. SegVisualizationHook with ``draw=True``) become debug
    samples, at most ``max_images`` per run. Validation and test metrics come from
    :class:`ClearMLHook`, once per epoch. Nothing is uploaded on close (mmengine's backend
    uploads every checkpoint): the tracker closes the task when the run is over.
    """

    def __init__(self, save_dir: Optional[str] = None, init_kwargs: Optional[dict] = None,
                 artifact_suffix: Sequence[str] = (), max_images: int = 20) -> None:
        super().__init__(save_dir, init_kwargs, tuple(artifact_suffix))
        self._tracker: Optional[Tracker] = None
        self._images_left = max_images

    def _init_env(self) -> None:  # the tracker owns the task
        return None

    @property
    def experiment(self) -> Any:
        """The ClearML task (None before the run starts or when tracking is off)."""
        return self._tracker.task if self._tracker else None

    def add_config(self, config: Any, **kwargs: Any) -> None:
        self._tracker = tracker_for(config)

    def add_image(self, name: str, image: np.ndarray, step: int = 0, **kwargs: Any) -> None:
        if self._tracker is not None and self._tracker.active and self._images_left > 0:
            self._images_left -= 1
            self._tracker.log('image', name, name, encode_png(image), step)

    def add_scalar(self, name: str, value: Any, step: int = 0, **kwargs: Any) -> None:
        self.add_scalars({name: value}, step)

    def add_scalars(self, scalar_dict: dict, step: int = 0, file_path: Optional[str] = None,
                    **kwargs: Any) -> None:
        tracker = self._tracker
        if tracker is None or not tracker.active or tracker.phase != 'train':
            return
        rows = [(f'iter/{k}', 'train', v, step) for k, v in scalar_dict.items()
                if k not in SKIP_KEYS and _number(v) is not None]
        if rows:
            tracker.log('scalars', [(t, s, _number(v), i) for t, s, v, i in rows])

    def close(self) -> None:
        return None


@HOOKS.register_module()
class ClearMLHook(Hook):
    """Runner events -> the run's ClearML task.

    Logs the resolved config and the hyper-parameters (editable), per epoch the training
    loss (mean), learning rate, val mDice and per-class val Dice/IoU, ``num_images``
    pictures (image | truth | prediction) per validation and test, the test metrics
    (scalars, summary values, confusion matrix), and the best checkpoint as output model.

    Args:
        num_images (int): Prediction pictures per validation/test. Defaults to 4.
        health_check (bool): Online, ping the server after each epoch and switch to offline
            when it stopped answering. Defaults to True.
    """

    priority = 'LOW'  # after LoggerHook; before CheckpointHook saves the best checkpoint

    def __init__(self, num_images: int = 4, health_check: bool = True) -> None:
        self.num_images = num_images
        self.health_check = health_check
        self._samples: list = []

    def _tracker(self, runner: Any) -> Optional[Tracker]:
        if not is_main_process():
            return None
        tracker = tracker_for(runner.cfg)
        return tracker if tracker.active else None

    # -- start ---------------------------------------------------------------------------------
    def before_train(self, runner: Any) -> None:
        tracker = self._tracker(runner)
        if tracker is None:
            return
        tracker.start('train')
        tracker.log('config', 'config', runner.cfg.to_dict())
        tracker.log('params', 'Hyperparameters', hyperparameters(runner.cfg))

    def before_test(self, runner: Any) -> None:
        tracker = self._tracker(runner)
        if tracker is None:
            return
        tracker.start('test', checkpoint=runner.cfg.get('load_from'))
        tracker.log('config', 'test config', runner.cfg.to_dict())

    def before_val(self, runner: Any) -> None:
        tracker = self._tracker(runner)
        if tracker is not None and tracker.mode is None:  # runner.val() on its own
            tracker.start('test', checkpoint=runner.cfg.get('load_from'))

    # -- phases and pictures -------------------------------------------------------------------
    def _phase(self, runner: Any, phase: str) -> None:
        tracker = self._tracker(runner)
        if tracker is not None:
            tracker.phase = phase
        self._samples = []

    def before_train_epoch(self, runner: Any) -> None:
        self._phase(runner, 'train')

    def before_val_epoch(self, runner: Any) -> None:
        self._phase(runner, 'val')

    def before_test_epoch(self, runner: Any) -> None:
        self._phase(runner, 'test')

    def _collect(self, outputs: Optional[Sequence]) -> None:
        for sample in outputs or []:
            if len(self._samples) >= self.num_images:
                return
            try:
                self._samples.append((sample.img_path, sample.gt_sem_seg.data[0].cpu().numpy(),
                                      sample.pred_sem_seg.data[0].cpu().numpy()))
            except AttributeError:
                return

    def after_val_iter(self, runner: Any, batch_idx: int, data_batch: Any = None,
                       outputs: Optional[Sequence] = None) -> None:
        if self._tracker(runner) is not None:
            self._collect(outputs)

    def after_test_iter(self, runner: Any, batch_idx: int, data_batch: Any = None,
                        outputs: Optional[Sequence] = None) -> None:
        if self._tracker(runner) is not None:
            self._collect(outputs)

    def _log_pictures(self, runner: Any, tracker: Tracker, split: str, step: int) -> None:
        palette = _palette(runner, split)
        for img_path, truth, pred in self._samples:
            try:
                picture = side_by_side(img_path, truth, pred, palette)
            except (OSError, ValueError):
                continue
            tracker.log('image', f'{split} predictions', Path(img_path).stem,
                        encode_png(picture), step)
        self._samples = []

    # -- per epoch -----------------------------------------------------------------------------
    def after_train_epoch(self, runner: Any) -> None:
        tracker = self._tracker(runner)
        if tracker is None:
            return
        rows, epoch = [], runner.epoch + 1  # the loop counts the epoch after this hook
        buffer = runner.message_hub.log_scalars.get('train/loss')
        if buffer is not None:
            rows.append(('loss', 'train', buffer.mean(max(1, len(runner.train_dataloader))),
                         epoch))
        lr = runner.message_hub.log_scalars.get('train/lr')
        if lr is not None:
            rows.append(('learning rate', 'lr', lr.current(), epoch))
        if rows:
            tracker.log('scalars', [(t, s, float(v), e) for t, s, v, e in rows])
        if self.health_check:
            tracker.check_server()

    def after_val_epoch(self, runner: Any, metrics: Optional[dict] = None) -> None:
        tracker = self._tracker(runner)
        if tracker is None:
            return
        step = runner.epoch if tracker.kind == 'train' else _epoch_of(runner.cfg.get('load_from'))
        self._log_metrics(tracker, metrics or {}, 'val', step)
        self._log_pictures(runner, tracker, 'val', step)
        tracker.phase = 'train'

    def after_test_epoch(self, runner: Any, metrics: Optional[dict] = None) -> None:
        tracker = self._tracker(runner)
        if tracker is None:
            return
        step = _epoch_of(runner.cfg.get('load_from'))
        metrics = metrics or {}
        self._log_metrics(tracker, metrics, 'test', step)
        for key, value in metrics.items():
            if _number(value) is not None and '.' not in key:
                tracker.log('single', f'test {key}', _number(value))
        matrix = metrics.get('confusion_matrix')
        classes = list(runner.test_dataloader.dataset.metainfo.get('classes', []))
        if matrix is not None and len(classes) == len(matrix):
            tracker.log('confusion', 'test confusion matrix', 'test',
                        np.asarray(matrix).tolist(), classes, step)
        self._log_pictures(runner, tracker, 'test', step)

    @staticmethod
    def _log_metrics(tracker: Tracker, metrics: dict, split: str, step: int) -> None:
        rows = []
        for key, value in metrics.items():
            value = _number(value)
            if value is None or key in SKIP_KEYS:
                continue
            group, _, cls = key.partition('.')
            rows.append((f'{split} {group} per class', cls, value, step) if cls
                        else (key, split, value, step))
        if rows:
            tracker.log('scalars', rows)

    # -- end -----------------------------------------------------------------------------------
    def after_run(self, runner: Any) -> None:
        tracker = self._tracker(runner)
        if tracker is None or tracker.kind != 'train':
            return
        best = runner.message_hub.get_info('best_ckpt')
        if not best:
            last = Path(runner.work_dir) / 'last_checkpoint'
            best = last.read_text().strip() if last.is_file() else None
        if best and Path(best).is_file():
            classes = runner.cfg.get('metainfo', {}).get('classes') or _classes(runner)
            tracker.log('model', str(Path(best).resolve()), f'{tracker.name} best',
                        _epoch_of(best), {c: i for i, c in enumerate(classes)})


def hyperparameters(cfg: Any) -> dict:
    """The settings worth comparing across runs, as an editable parameter section."""
    optimizer = dict(_get(cfg, 'optim_wrapper.optimizer', {}) or {})
    loss = _get(cfg, 'model.decode_head.loss_decode', {})
    loss = loss[0] if isinstance(loss, (list, tuple)) and loss else loss
    return {
        'model': {'backbone': _get(cfg, 'model.backbone.type'),
                  'depth': _get(cfg, 'model.backbone.depth'),
                  'decode_head': _get(cfg, 'model.decode_head.type'),
                  'num_classes': _get(cfg, 'model.decode_head.num_classes'),
                  'class_weight': (loss or {}).get('class_weight') if isinstance(loss, dict)
                  else None,
                  'pretrained': _get(cfg, 'model.backbone.init_cfg.checkpoint')},
        'optimizer': optimizer,
        'optim_wrapper': {'type': _get(cfg, 'optim_wrapper.type'),
                          'dtype': _get(cfg, 'optim_wrapper.dtype')},
        'schedule': {'max_epochs': _get(cfg, 'train_cfg.max_epochs'),
                     'val_interval': _get(cfg, 'train_cfg.val_interval'),
                     'param_scheduler': [p.get('type') for p in (
                         cfg.get('param_scheduler') or []) if isinstance(p, dict)]},
        'data': {'data_root': cfg.get('data_root'),
                 'batch_size': _get(cfg, 'train_dataloader.batch_size'),
                 'img_size': cfg.get('img_size'),
                 'num_workers': _get(cfg, 'train_dataloader.num_workers')},
        'seed': _get(cfg, 'randomness.seed'),
    }


def side_by_side(img_path: str, truth: np.ndarray, pred: np.ndarray,
                 palette: np.ndarray, height: int = 256) -> np.ndarray:
    """image | truth | prediction (RGB, masks in the dataset's palette, ignored pixels grey)."""
    import cv2
    image = cv2.imread(str(img_path), cv2.IMREAD_COLOR)
    if image is None:
        raise OSError(f'cannot read {img_path}')
    h, w = truth.shape
    if image.shape[:2] != (h, w):
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    panels = [image[..., ::-1], _colour(truth, palette), _colour(pred, palette)]
    if h > height:
        size = (max(1, round(w * height / h)), height)
        panels = [cv2.resize(np.ascontiguousarray(p), size, interpolation=cv2.INTER_NEAREST)
                  for p in panels]
    gap = np.full((panels[0].shape[0], 4, 3), 255, np.uint8)
    return np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1)


def _colour(mask: np.ndarray, palette: np.ndarray) -> np.ndarray:
    table = np.full((256, 3), 128, np.uint8)
    table[:len(palette)] = palette
    return table[mask.astype(np.int64).clip(0, 255)]


def _palette(runner: Any, split: str) -> np.ndarray:
    try:  # the loop running now (another one's dataloader would be built for nothing)
        palette = getattr(runner, f'{split}_dataloader').dataset.metainfo.get('palette')
    except Exception:  # noqa: BLE001
        palette = None
    if palette:
        return np.asarray(palette, np.uint8)[:255]
    return np.array([[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200]],
                    np.uint8)


def _classes(runner: Any) -> list:
    for key in ('val_dataloader', 'test_dataloader'):
        try:
            return list(getattr(runner, key).dataset.metainfo.get('classes', []))
        except Exception:  # noqa: BLE001
            continue
    return []


def _get(cfg: Any, dotted: str, default: Any = None) -> Any:
    """``cfg.a.b.c`` for a Config or dict, ``default`` when a part is missing."""
    node = cfg
    for part in dotted.split('.'):
        node = node.get(part) if hasattr(node, 'get') else None
        if node is None:
            return default
    return node


def _number(value: Any) -> Optional[float]:
    if isinstance(value, (bool, str)) or value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) else None


def _epoch_of(checkpoint: Optional[str]) -> int:
    match = re.search(r'epoch_(\d+)', Path(str(checkpoint or '')).stem)
    return int(match.group(1)) if match else 0
