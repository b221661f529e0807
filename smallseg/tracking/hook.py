"""What a Runner logs to its ClearML task: mmengine's vis backend and a hook for the rest."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
from mmengine.hooks import Hook
from mmengine.visualization import ClearMLVisBackend
from mmseg.registry import HOOKS, VISBACKENDS

from smallseg.utils.checkpoint import epoch_from_name
from smallseg.utils.palette import encode_png, make_palette, side_by_side
from smallseg.utils.scalars import numbers

from .tracker import tracker_for


@VISBACKENDS.register_module()
class SafeClearMLVisBackend(ClearMLVisBackend):
    """``ClearMLVisBackend`` into the run's :class:`~smallseg.tracking.Tracker`, which opens and
    closes the task: training scalars as ``iter/<key>``, validation metrics per epoch, at most
    ``max_images`` images a run."""

    def __init__(self, save_dir: Optional[str] = None, max_images: int = 20, **kwargs: Any) -> None:
        super().__init__(save_dir, **kwargs)
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
    """Opens the run's ClearML task (a test continues its training task); logs training loss and
    learning rate per epoch, ``num_images`` prediction pictures per validation or test, test
    metrics and the output model; online, ``health_check`` checks the server after each epoch
    and switches to offline when it stopped answering."""

    priority = 'LOW'  # after LoggerHook; before CheckpointHook saves the best checkpoint

    def __init__(self, num_images: int = 4, health_check: bool = True) -> None:
        self.num_images, self.health_check = num_images, health_check
        self._samples: list = []

    def before_train(self, runner: Any) -> None:
        tracker_for(runner.cfg).start('train')

    def before_test(self, runner: Any) -> None:
        tracker_for(runner.cfg).start('test', checkpoint=runner.cfg.get('load_from'))

    def before_val_epoch(self, runner: Any) -> None:
        tracker_for(runner.cfg).phase = 'val'  # LoggerHook logs the val metrics

    def after_val_iter(self, runner: Any, batch_idx: int, data_batch: Any = None,
                       outputs: Optional[Sequence] = None) -> None:
        wanted = self.num_images - len(self._samples) if tracker_for(runner.cfg).active else 0
        for sample in (outputs or [])[:max(0, wanted)]:
            try:
                self._samples.append((sample.img_path, sample.gt_sem_seg.data[0].cpu().numpy(),
                                      sample.pred_sem_seg.data[0].cpu().numpy()))
            except AttributeError:  # no ground truth
                return

    after_test_iter = after_val_iter

    def after_train_epoch(self, runner: Any) -> None:
        tracker, scalars = tracker_for(runner.cfg), runner.message_hub.log_scalars
        epoch = runner.epoch + 1  # counted after this hook
        if (loss := scalars.get('train/loss')) is not None:
            n = max(1, len(runner.train_dataloader))
            tracker.log('scalars', [('loss', 'train', float(loss.mean(n)), epoch)])
        if (lr := scalars.get('train/lr')) is not None:
            tracker.log('scalars', [('learning rate', 'lr', float(lr.current()), epoch)])
        if self.health_check:
            tracker.check_server()

    def after_val_epoch(self, runner: Any, metrics: Optional[dict] = None) -> None:
        self._log_pictures(runner, 'val', runner.epoch)  # the backend logs the metrics
        tracker_for(runner.cfg).phase = 'train'

    def after_test_epoch(self, runner: Any, metrics: Optional[dict] = None) -> None:
        tracker, metrics = tracker_for(runner.cfg), metrics or {}
        step = epoch_from_name(runner.cfg.get('load_from')) or 0
        tracker.log('scalars', metric_rows(metrics, 'test', step))
        tracker.log('single', [(f'test {k}', v) for k, v in numbers(metrics) if '.' not in k])
        matrix, classes = metrics.get('confusion_matrix'), _meta(runner)[0]
        if matrix is not None and len(classes) == len(matrix):
            tracker.log('confusion', np.asarray(matrix).tolist(), classes, step)
        self._log_pictures(runner, 'test', step)

    def _log_pictures(self, runner: Any, split: str, step: int) -> None:
        tracker, palette = tracker_for(runner.cfg), _meta(runner)[1]
        for img_path, truth, pred in self._samples:
            try:
                picture = side_by_side(img_path, truth, pred, palette)
            except (OSError, ValueError):
                continue
            tracker.log('image', f'{split} predictions', Path(img_path).stem,
                        encode_png(picture), step)
        self._samples = []

    def after_run(self, runner: Any) -> None:
        tracker, last = tracker_for(runner.cfg), Path(runner.work_dir) / 'last_checkpoint'
        best = runner.message_hub.get_info('best_ckpt') or (
            last.read_text().strip() if last.is_file() else None)
        if tracker.kind == 'train' and best and Path(best).is_file():
            classes = _meta(runner)[0]
            tracker.log('model', str(Path(best).resolve()), f'{tracker.name} best',
                        epoch_from_name(best) or 0, {c: i for i, c in enumerate(classes)})


def metric_rows(metrics: dict, split: str, step: int) -> list[tuple]:
    """``mDice`` -> ('mDice', split); ``Dice.<class>`` -> ('<split> Dice per class', class)."""
    return [(f'{split} {key.partition(".")[0]} per class', key.partition('.')[2], value, step)
            if '.' in key else (key, split, value, step) for key, value in numbers(metrics)]


def _meta(runner: Any) -> tuple[list, np.ndarray]:
    """Classes and palette of the dataset of the loop running now (or last)."""
    meta = runner.visualizer.dataset_meta or {}
    classes = list(meta.get('classes') or ())
    return classes, make_palette(len(classes), meta.get('palette'))
