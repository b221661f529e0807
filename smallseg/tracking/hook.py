"""What a Runner logs to its ClearML task: mmengine's vis backend and a hook for the rest."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.visualization import ClearMLVisBackend
from mmseg.registry import HOOKS, VISBACKENDS

from smallseg.utils.checkpoint import epoch_from_name
from smallseg.utils.palette import colorize, make_palette

from .tracker import tracker_for

SKIP_KEYS = {'epoch', 'iter', 'step', 'time', 'data_time'}


@VISBACKENDS.register_module()
class SafeClearMLVisBackend(ClearMLVisBackend):
    """``ClearMLVisBackend`` on the run's :class:`~smallseg.tracking.Tracker`, which opens and
    closes the task: training scalars as ``iter/<key>`` curves, validation metrics per epoch.

    Args:
        max_images (int): Images logged per run. Defaults to 20.
    """

    def __init__(self, save_dir: Optional[str] = None, init_kwargs: Optional[dict] = None,
                 artifact_suffix: Sequence[str] = (), max_images: int = 20) -> None:
        super().__init__(save_dir, init_kwargs, tuple(artifact_suffix))
        self._tracker: Any = None
        self._images_left = max_images

    @property
    def experiment(self) -> Any:
        """The ClearML task (None before the run starts or when tracking is off)."""
        return self._tracker.task if self._tracker else None

    def add_config(self, config: Any, **kwargs: Any) -> None:
        self._tracker = tracker_for(config)  # it logs the config when the task starts

    def add_image(self, name: str, image: np.ndarray, step: int = 0, **kwargs: Any) -> None:
        if self._tracker is not None and self._images_left > 0:
            self._images_left -= 1
            self._tracker.log('image', name, name, encode_png(image), step)

    def add_scalar(self, name: str, value: Any, step: int = 0, **kwargs: Any) -> None:
        self.add_scalars({name: value}, step)

    def add_scalars(self, scalar_dict: dict, step: int = 0, file_path: Optional[str] = None,
                    **kwargs: Any) -> None:
        if self._tracker is not None:
            self._tracker.log('scalars', metric_rows(scalar_dict, 'val', step)
                              if self._tracker.phase == 'val' else
                              [(f'iter/{k}', 'train', v, step) for k, v in numbers(scalar_dict)])


@HOOKS.register_module()
class ClearMLHook(Hook):
    """Opens the run's ClearML task (a test continues its training task); logs training loss
    and learning rate per epoch, prediction pictures, test metrics and the output model.

    Args:
        num_images (int): Prediction pictures per validation/test. Defaults to 4.
        health_check (bool): Online, check the server after each epoch and switch to offline
            when it stopped answering. Defaults to True.
    """

    priority = 'LOW'  # after LoggerHook; before CheckpointHook saves the best checkpoint

    def __init__(self, num_images: int = 4, health_check: bool = True) -> None:
        self.num_images, self.health_check = num_images, health_check
        self._samples: list = []

    def _tracker(self, runner: Any) -> Any:
        tracker = tracker_for(runner.cfg) if is_main_process() else None
        return tracker if tracker is not None and tracker.active else None

    def before_train(self, runner: Any) -> None:
        if (tracker := self._tracker(runner)) is not None:
            tracker.start('train')

    def before_test(self, runner: Any) -> None:
        if (tracker := self._tracker(runner)) is not None:
            tracker.start('test', checkpoint=runner.cfg.get('load_from'))

    def before_val_epoch(self, runner: Any) -> None:
        if (tracker := self._tracker(runner)) is not None:  # LoggerHook logs val metrics
            tracker.phase = 'val'

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
        tracker.log('single', [(f'test {k}', v) for k, v in numbers(metrics) if '.' not in k])
        matrix, classes = metrics.get('confusion_matrix'), _meta(runner)[0]
        if matrix is not None and len(classes) == len(matrix):
            tracker.log('confusion', np.asarray(matrix).tolist(), classes, step)
        self._log_pictures(runner, tracker, 'test', step)

    def _log_pictures(self, runner: Any, tracker: Any, split: str, step: int) -> None:
        classes, palette = _meta(runner)
        palette = make_palette(len(classes), palette)
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
            classes = _meta(runner)[0]
            tracker.log('model', str(Path(best).resolve()), f'{tracker.name} best',
                        epoch_from_name(best) or 0, {c: i for i, c in enumerate(classes)})


def numbers(values: dict) -> list[tuple[str, float]]:
    """The finite numbers in ``values`` (:data:`SKIP_KEYS` and bools left out)."""
    return [(key, float(value)) for key, value in values.items()
            if key not in SKIP_KEYS and isinstance(value, (int, float, np.number))
            and not isinstance(value, bool) and np.isfinite(value)]


def metric_rows(metrics: dict, split: str, step: int) -> list[tuple]:
    """``mDice`` -> ('mDice', split); ``Dice.<class>`` -> ('<split> Dice per class', class)."""
    return [(f'{split} {key.partition(".")[0]} per class', key.partition('.')[2], value, step)
            if '.' in key else (key, split, value, step) for key, value in numbers(metrics)]


def encode_png(rgb: np.ndarray) -> bytes:
    """An RGB picture as PNG bytes (small enough to keep in the journal)."""
    import cv2
    return cv2.imencode('.png', np.ascontiguousarray(rgb[..., ::-1]))[1].tobytes()


def side_by_side(img_path: str, truth: np.ndarray, pred: np.ndarray,
                 palette: np.ndarray, height: int = 256) -> np.ndarray:
    """image | truth | prediction (RGB, masks in ``palette``), at most ``height`` high."""
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


def _meta(runner: Any) -> tuple[list, Any]:
    """Classes and palette of the dataset of the loop running now (or last)."""
    meta = runner.visualizer.dataset_meta or {}
    return list(meta.get('classes') or ()), meta.get('palette')
