"""What mmengine's ClearML backend does not log: test metrics, prediction pictures, the
confusion matrix, per-epoch loss and learning rate, the output model; and the task's life."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from smallseg.utils.checkpoint import epoch_from_name
from smallseg.utils.palette import colorize, make_palette

from .backend import encode_png, metric_rows, numbers


@HOOKS.register_module()
class ClearMLHook(Hook):
    """Opens the run's ClearML task (a test continues its training task) and logs the
    training loss (mean) and learning rate per epoch, ``num_images`` pictures (image | truth |
    prediction) per validation and test, the test metrics (curves, summary values, confusion
    matrix) and the best checkpoint as output model.

    Args:
        num_images (int): Prediction pictures per validation/test. Defaults to 4.
        health_check (bool): Online, ping the server after each epoch and switch to offline
            when it stopped answering. Defaults to True.
    """

    priority = 'LOW'  # after LoggerHook; before CheckpointHook saves the best checkpoint

    def __init__(self, num_images: int = 4, health_check: bool = True) -> None:
        self.num_images, self.health_check = num_images, health_check
        self._samples: list = []

    def _tracker(self, runner: Any, phase: Optional[str] = None) -> Any:
        from . import tracker_for
        tracker = tracker_for(runner.cfg) if is_main_process() else None
        if tracker is not None and phase:
            tracker.phase, self._samples = phase, []
        return tracker if tracker is not None and tracker.active else None

    def before_train(self, runner: Any) -> None:
        if (tracker := self._tracker(runner)) is not None:
            tracker.start('train')

    def before_test(self, runner: Any) -> None:
        if (tracker := self._tracker(runner)) is not None:
            tracker.start('test', checkpoint=runner.cfg.get('load_from'))

    def before_train_epoch(self, runner: Any) -> None:
        self._tracker(runner, 'train')

    def before_val_epoch(self, runner: Any) -> None:
        self._tracker(runner, 'val')

    def before_test_epoch(self, runner: Any) -> None:
        self._tracker(runner, 'test')

    def after_val_iter(self, runner: Any, batch_idx: int, data_batch: Any = None,
                       outputs: Optional[Sequence] = None) -> None:
        for sample in (outputs or [])[:max(0, self.num_images - len(self._samples))]:
            try:
                self._samples.append((sample.img_path, sample.gt_sem_seg.data[0].cpu().numpy(),
                                      sample.pred_sem_seg.data[0].cpu().numpy()))
            except AttributeError:  # no ground truth
                return

    after_test_iter = after_val_iter

    def after_train_epoch(self, runner: Any) -> None:
        if (tracker := self._tracker(runner)) is None:
            return
        epoch, scalars = runner.epoch + 1, runner.message_hub.log_scalars  # counted after
        if (loss := scalars.get('train/loss')) is not None:
            n = max(1, len(runner.train_dataloader))
            tracker.log('scalars', [('loss', 'train', float(loss.mean(n)), epoch)])
        if (lr := scalars.get('train/lr')) is not None:
            tracker.log('scalars', [('learning rate', 'lr', float(lr.current()), epoch)])
        if self.health_check:
            tracker.check_server()

    def after_val_epoch(self, runner: Any, metrics: Optional[dict] = None) -> None:
        if (tracker := self._tracker(runner)) is not None:  # metrics: the backend's
            self._log_pictures(runner, tracker, 'val', runner.epoch)
            tracker.phase = 'train'

    def after_test_epoch(self, runner: Any, metrics: Optional[dict] = None) -> None:
        if (tracker := self._tracker(runner)) is None:
            return
        metrics, step = metrics or {}, epoch_from_name(runner.cfg.get('load_from')) or 0
        tracker.log('scalars', metric_rows(metrics, 'test', step))
        for key, value in numbers(metrics):
            if '.' not in key:
                tracker.log('single', f'test {key}', value)
        matrix, classes = metrics.get('confusion_matrix'), _meta(runner, 'test', 'classes')
        if matrix is not None and len(classes or ()) == len(matrix):
            tracker.log('confusion', 'test confusion matrix', 'test',
                        np.asarray(matrix).tolist(), list(classes), step)
        self._log_pictures(runner, tracker, 'test', step)

    def _log_pictures(self, runner: Any, tracker: Any, split: str, step: int) -> None:
        classes = _meta(runner, split, 'classes') or ()
        palette = make_palette(len(classes), _meta(runner, split, 'palette'))
        for img_path, truth, pred in self._samples:
            try:
                picture = side_by_side(img_path, truth, pred, palette)
            except (OSError, ValueError):
                continue
            tracker.log('image', f'{split} predictions', Path(img_path).stem,
                        encode_png(picture), step)
        self._samples = []

    def after_run(self, runner: Any) -> None:
        if (tracker := self._tracker(runner)) is None or tracker.kind != 'train':
            return
        last = Path(runner.work_dir) / 'last_checkpoint'
        best = runner.message_hub.get_info('best_ckpt') or (
            last.read_text().strip() if last.is_file() else None)
        if best and Path(best).is_file():
            classes = _meta(runner, 'val', 'classes') or []
            tracker.log('model', str(Path(best).resolve()), f'{tracker.name} best',
                        epoch_from_name(best) or 0, {c: i for i, c in enumerate(classes)})


def side_by_side(img_path: str, truth: np.ndarray, pred: np.ndarray,
                 palette: np.ndarray, height: int = 256) -> np.ndarray:
    """image | truth | prediction (RGB, masks in the dataset's palette, ignored pixels in
    :data:`~smallseg.utils.palette.IGNORE_COLOR`), at most ``height`` pixels high."""
    import cv2
    image = cv2.imread(str(img_path), cv2.IMREAD_COLOR)
    if image is None:
        raise OSError(f'cannot read {img_path}')
    h, w = truth.shape
    panels = [cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)[..., ::-1]] + [
        colorize(m.astype(np.int64), palette) for m in (truth, pred)]
    size = (max(1, round(w * height / h)), height) if h > height else (w, h)
    gap = np.full((size[1], 4, 3), 255, np.uint8)
    return np.concatenate([x for p in panels for x in (cv2.resize(
        np.ascontiguousarray(p), size, interpolation=cv2.INTER_NEAREST), gap)][:-1], axis=1)


def _meta(runner: Any, split: str, key: str) -> Any:
    """``classes`` or ``palette`` of the config's metainfo, else of the split's dataset."""
    if (value := (runner.cfg.get('metainfo') or {}).get(key)):
        return list(value)
    try:  # the loop running now (another one's dataloader would be built for nothing)
        return getattr(runner, f'{split}_dataloader').dataset.metainfo.get(key)
    except Exception:  # noqa: BLE001
        return None
