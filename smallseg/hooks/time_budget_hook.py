"""Stop training when the next epoch would not fit in a time budget."""
from __future__ import annotations

import time
from typing import Optional

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS


@HOOKS.register_module()
class TimeBudgetHook(Hook):
    """End training after the epoch where one more epoch (as long as the mean so far,
    validation included) would pass ``minutes``: the run ends normally, with its best and
    last checkpoints. tools/train.py ``--time-budget MIN`` adds it.

    Args:
        minutes: Wall-clock budget of the training loop.
    """

    priority = 'LOWEST'  # after validation and the checkpoint of the epoch

    def __init__(self, minutes: float) -> None:
        self.seconds = float(minutes) * 60.0
        self._start: Optional[float] = None
        self._first_epoch = 0  # a resumed run's epochs before this start are not timed

    def before_train(self, runner) -> None:
        self._start, self._first_epoch = time.perf_counter(), runner.epoch

    def after_train_epoch(self, runner) -> None:
        done = runner.epoch + 1  # the loop counts the epoch after its hooks
        loop = runner.train_loop
        validates = (runner.cfg.get('val_cfg') is not None and done >= loop.val_begin
                     and (done % loop.val_interval == 0 or done == loop.max_epochs))
        if not validates:  # else after_val_epoch checks, with the validation time counted
            self._check(runner, done)

    def after_val_epoch(self, runner, metrics=None) -> None:
        if self._start is not None:  # validation inside training: the epoch is counted
            self._check(runner, runner.epoch)

    def _check(self, runner, done: int) -> None:
        if self._start is None:
            return
        used = time.perf_counter() - self._start
        per_epoch = used / max(1, done - self._first_epoch)
        loop = runner.train_loop
        if done < loop.max_epochs and used + per_epoch > self.seconds:
            loop.stop_training = True
            print_log(f'time budget: {used / 60:.1f} of {self.seconds / 60:g} min used after '
                      f'epoch {done} ({per_epoch / 60:.1f} min per epoch); training stops '
                      'here', logger='current')
