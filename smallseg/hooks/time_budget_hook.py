"""Fit the training schedule to a time budget: as many epochs as the minutes allow."""
from __future__ import annotations

import time
from typing import Any, Optional

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS

FIT_KEY = 'time_budget_max_epochs'  # message hub info: a resumed run keeps its fitted length
RECORD_KEY = 'time_budget'  # message hub info after training: the run's budget record


def _now() -> float:
    return time.perf_counter()


def fitted_epochs(done: int, used_s: float, per_epoch_s: float, budget_s: float) -> int:
    """Epochs in all once ``done`` took ``used_s`` and each further one takes ``per_epoch_s``:
    as many as end inside ``budget_s``, never fewer than ``done``."""
    left = max(0.0, budget_s - used_s)
    return done + int(left // per_epoch_s) if per_epoch_s > 0 else done


def stretch_schedule(runner: Any, max_epochs: int) -> None:
    """Make ``max_epochs`` the run's length: the train loop's, and the end of every parameter
    scheduler that ended with the old schedule (a poly decay then reaches its minimum at the
    new last iteration; mmengine's schedulers compute each step from the current value, so
    the change is smooth). A warm-up that ends earlier is left as it is."""
    loop = runner.train_loop
    per_epoch = len(loop.dataloader)
    old_epochs, old_iters = loop.max_epochs, loop.max_iters
    loop._max_epochs = max_epochs
    loop._max_iters = max_epochs * per_epoch
    schedulers = runner.param_schedulers or []
    if isinstance(schedulers, dict):
        schedulers = [s for group in schedulers.values() for s in group]
    for scheduler in schedulers:
        old_end, new_end = ((old_epochs, max_epochs) if scheduler.by_epoch
                            else (old_iters, loop._max_iters))
        if scheduler.end < old_end:
            continue
        scheduler.end = max(new_end, scheduler.begin + 1)
        if hasattr(scheduler, 'total_iters'):  # poly, linear: their length
            scheduler.total_iters = scheduler.end - scheduler.begin - 1


@HOOKS.register_module()
class TimeBudgetHook(Hook):
    """Train for as many epochs as fit in ``minutes`` (validation included): after the first
    and again after the second epoch (the first carries warm-up costs) ``max_epochs`` becomes
    the number of epochs that fit, more or fewer than the config's, and the learning-rate
    decay is stretched or shrunk to end there (:func:`stretch_schedule`). Should epochs then
    get slower (their mean since the first), the length and the decay shrink again, so the
    decay still ends inside the budget; faster, they grow again while two or more epochs are
    left (so the budget is used, not only the first epochs' estimate of it); and training
    ends after the epoch where one more would pass the budget, normally, with its best and
    last checkpoints (a resumed run, which keeps its length, only stops). tools/train.py
    ``--time-budget MIN`` adds it.

    At the end of training one INFO line and the message hub's ``'time_budget'`` info (see
    :func:`budget_record`; run_info.json carries it) say how many epochs were planned (the
    config's), fitted (the last fit) and run, and the mean train step time: a run cut short
    by a machine that slowed down reads apart from a recipe that is weak.

    Args:
        minutes: Wall-clock budget of the training loop.
        fit_schedule: Fit ``max_epochs`` and the schedule; False only stops early.
    """

    priority = 'LOWEST'  # after validation and the checkpoint of the epoch

    def __init__(self, minutes: float, fit_schedule: bool = True) -> None:
        self.seconds = float(minutes) * 60.0
        self.fit_schedule = fit_schedule
        self._start: Optional[float] = None
        self._ends: list[float] = []  # seconds since the start at the end of each epoch

    def before_train(self, runner) -> None:
        self._start, self._ends = _now(), []  # a resumed run's earlier epochs are not timed
        self._planned = int(runner.cfg.train_cfg.get('max_epochs') or runner.max_epochs)
        fitted = runner.message_hub.get_info(FIT_KEY)
        if fitted and runner.epoch > 0:  # resumed: the length fitted before, not a new one
            stretch_schedule(runner, int(fitted))
            self.fit_schedule = False

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

    def after_train(self, runner) -> None:
        record = budget_record(runner, self.seconds / 60.0,
                               getattr(self, '_planned', runner.max_epochs))
        runner.message_hub.update_info(RECORD_KEY, record, resumed=False)
        step = record['mean_step_s']
        print_log(f"time budget: {record['minutes']:g} min; epochs planned "
                  f"{record['epochs_planned']}, fitted {record['epochs_fitted']}, run "
                  f"{record['epochs_run']}; mean train step "
                  f"{'-' if step is None else f'{step:.3f}'} s", logger='current')

    def _check(self, runner, done: int) -> None:
        if self._start is None:
            return
        used = _now() - self._start
        self._ends.append(used)
        timed = len(self._ends)
        # an epoch's cost: without the first one (warm-up) once there are two
        per_epoch = (used - self._ends[0]) / (timed - 1) if timed > 1 else used
        loop = runner.train_loop
        if self.fit_schedule and timed <= 2 and per_epoch > 0:
            epochs = fitted_epochs(done, used, per_epoch, self.seconds)
            if epochs != loop.max_epochs:
                print_log(f'time budget: {per_epoch:.0f} s per epoch, so {epochs} epochs fit in '
                          f'{self.seconds / 60:g} min; max_epochs {loop.max_epochs} -> '
                          f'{epochs}, the learning-rate schedule now ends there',
                          logger='current')
                stretch_schedule(runner, epochs)
            runner.message_hub.update_info(FIT_KEY, loop.max_epochs)
        elif self.fit_schedule and done < loop.max_epochs:
            # epochs got slower than fitted: end the run and its decay sooner, inside budget;
            # faster (the first ones often carry a busy machine's or warm-up's cost): later,
            # while two or more epochs are left for the decay to stretch over
            epochs = fitted_epochs(done, used, per_epoch, self.seconds)
            if epochs > loop.max_epochs:  # grow only with room to spare (5% slower epochs),
                # so that the length does not go back and forth by one with the noise
                epochs = max(loop.max_epochs, fitted_epochs(done, used, per_epoch * 1.05,
                                                            self.seconds))
            if epochs < loop.max_epochs or (epochs > loop.max_epochs
                                            and loop.max_epochs - done >= 2):
                print_log(f'time budget: epochs now take {per_epoch:.0f} s, so {epochs} '
                          f'epochs fit; max_epochs {loop.max_epochs} -> {epochs}, the '
                          'learning-rate schedule now ends there', logger='current')
                stretch_schedule(runner, epochs)
                runner.message_hub.update_info(FIT_KEY, epochs)
        if done < loop.max_epochs and used + per_epoch > self.seconds:
            loop.stop_training = True
            print_log(f'time budget: {used / 60:.1f} of {self.seconds / 60:g} min used after '
                      f'epoch {done} ({per_epoch / 60:.1f} min per epoch); training stops '
                      'here', logger='current')


def mean_step_s(runner) -> Optional[float]:
    """Mean time of a training iteration in seconds, data loading included (mmengine's
    IterTimerHook's ``train/time``; a resumed run's earlier iterations too); None untimed."""
    buffer = runner.message_hub.log_scalars.get('train/time')
    if buffer is None or not len(buffer.data[0]):
        return None
    return round(float(buffer.mean()), 4)


def budget_record(runner, minutes: float, planned: int) -> dict:
    """``minutes`` (the budget), ``epochs_planned`` (the config's max_epochs),
    ``epochs_fitted`` (the length of the last fit), ``epochs_run`` and ``mean_step_s``."""
    fitted = runner.message_hub.get_info(FIT_KEY)
    return dict(minutes=round(float(minutes), 4), epochs_planned=int(planned),
                epochs_fitted=int(fitted) if fitted else int(runner.train_loop.max_epochs),
                epochs_run=int(runner.epoch), mean_step_s=mean_step_s(runner))
