"""Where an epoch's time goes in a real training run: a hook that writes per-epoch timings.

Standalone on purpose (stdlib and mmengine only): the epoch benchmark copies this file next to
a generated config and runs another revision's own ``tools/train.py`` with it, so it must not
import that revision's ``smallseg``. Registered as ``BenchmarkEpochTimerHook``.

With priority ``HIGHEST`` it runs first at every point, so per epoch (mmengine's
``EpochBasedTrainLoop`` and ``ValLoop``):

- ``train_s``: ``before_train_epoch`` to ``after_train_epoch`` (the iterations, data included);
- ``after_train_s``: the other ``after_train_epoch`` hooks (the resumable checkpoint);
- ``val_s``: ``before_val`` to ``after_val_epoch`` (the val iterations and the evaluator);
- ``after_val_s``: the other ``after_val_epoch`` hooks (a new best checkpoint, the val log);
- ``checkpoint_s`` = ``after_train_s + after_val_s``; ``epoch_s``: from the epoch's start to
  the end of its validation (or the next epoch's start where it is not validated).
"""
from __future__ import annotations

import json
import os
import sys
import time

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module(force=True)
class BenchmarkEpochTimerHook(Hook):
    """Write ``{'epochs': [...], ...}`` to ``out`` (JSON) after every epoch.

    Args:
        out (str): JSON file to (re)write; relative paths are under the work dir.
    """

    priority = 'HIGHEST'

    def __init__(self, out: str = 'epoch_times.json') -> None:
        self.out = out
        self.epochs: list[dict] = []
        self.current: dict | None = None
        self.run_start = self.train_start = None

    # -- bookkeeping --------------------------------------------------------------------------
    def _close(self, now: float, runner) -> None:
        """End the open epoch at ``now`` and write the file."""
        rec = self.current
        if rec is None:
            return
        self.current = None
        t = rec.pop('_t')
        train_end = t.get('train_end', now)
        val_start, val_end = t.get('val_start'), t.get('val_end')
        after_train = (val_start if val_start is not None else now) - train_end
        after_val = (now - val_end) if val_end is not None else 0.0
        rec.update(
            epoch_s=now - t['start'],
            train_s=train_end - t['start'],
            val_s=(val_end - val_start) if val_start is not None and val_end is not None else 0.0,
            after_train_s=after_train,
            after_val_s=after_val,
            checkpoint_s=after_train + after_val)
        for key, value in rec.items():
            if key.endswith('_s'):
                rec[key] = round(value, 4)
        self.epochs.append(rec)
        self._write(runner)

    def _write(self, runner, finished: bool = False) -> None:
        if getattr(runner, 'rank', 0) != 0:
            return
        path = self.out if os.path.isabs(self.out) else os.path.join(runner.work_dir, self.out)
        package = sys.modules.get('smallseg')
        data = dict(
            epochs=self.epochs, finished=finished,
            train_wall_s=(round(time.perf_counter() - self.train_start, 3)
                          if finished and self.train_start is not None else None),
            package=getattr(package, '__file__', None),
            optim_wrapper=type(getattr(runner, 'optim_wrapper', None)).__name__)
        tmp = f'{path}.tmp{os.getpid()}'
        with open(tmp, 'w') as f:
            json.dump(data, f, indent=1)
        os.replace(tmp, path)

    # -- hook points --------------------------------------------------------------------------
    def before_train(self, runner) -> None:
        self.train_start = time.perf_counter()

    def before_train_epoch(self, runner) -> None:
        now = time.perf_counter()
        self._close(now, runner)  # an epoch without validation ends here
        self.current = dict(epoch=runner.epoch + 1, iters=0, _t=dict(start=now))

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self.current is not None:
            self.current['iters'] += 1

    def after_train_epoch(self, runner) -> None:
        if self.current is not None:
            self.current['_t']['train_end'] = time.perf_counter()

    def before_val(self, runner) -> None:
        if self.current is not None:
            self.current['_t']['val_start'] = time.perf_counter()
            self.current['best_before'] = runner.message_hub.get_info('best_ckpt')

    def after_val_epoch(self, runner, metrics=None) -> None:
        if self.current is not None:
            self.current['_t']['val_end'] = time.perf_counter()

    def after_val(self, runner) -> None:
        rec = self.current
        if rec is None or 'val_end' not in rec['_t']:
            return
        best = runner.message_hub.get_info('best_ckpt')
        rec['new_best'] = best is not None and best != rec.pop('best_before', None)
        self._close(time.perf_counter(), runner)

    def after_train(self, runner) -> None:
        self._close(time.perf_counter(), runner)
        self._write(runner, finished=True)
