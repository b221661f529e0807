"""Fit the training schedule to a time budget: as many epochs as the minutes allow."""
from __future__ import annotations

import math
import time
from typing import Any, Optional

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS

from .safe_checkpoint_hook import validation_follows

FIT_KEY = 'time_budget_max_epochs'  # message hub info: a resumed run keeps its fitted length
RECORD_KEY = 'time_budget'  # message hub info after training: the run's budget record
VAL_BEGIN_KEY = 'time_budget_val_begin'  # message hub info: a resumed run keeps it too


def _now() -> float:
    return time.perf_counter()


def validation_begin(epochs: int, val_from: float) -> int:
    """The first epoch validated in the second part of a run of ``epochs``: the one at
    ``val_from`` of the run, at least the second (the first is always validated)."""
    return max(2, math.ceil(val_from * epochs - 1e-9))


def _validating(loop: Any, done: int) -> bool:
    """Whether the second-part validation has begun (or begins with the next epoch) once
    ``done`` epochs ran: its start, the loop's ``val_begin``, then stays where it is."""
    return done + 1 >= loop.val_begin > 1


def fitted_epochs(done: int, used_s: float, train_s: float, val_s: float, budget_s: float,
                  val_from: float = 0.0, val_begin: Optional[int] = None) -> int:
    """Epochs in all once ``done`` took ``used_s``, each further one trains in ``train_s``
    and each validation takes ``val_s``: as many as end inside ``budget_s``, never fewer than
    ``done``. A run of E epochs validates from ``val_begin`` (once fixed) or
    :func:`validation_begin` (E, ``val_from``) on, and always after its last epoch."""
    left = max(0.0, budget_s - used_s)
    if train_s <= 0:
        return done
    best = done
    for epochs in range(done + 1, done + int(left // train_s) + 2):
        begin = val_begin or validation_begin(epochs, val_from)
        validated = sum(1 for e in range(done + 1, epochs + 1) if e >= begin or e == epochs)
        if (epochs - done) * train_s + validated * val_s <= left:
            best = epochs
    return best


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

    With ``val_from`` above 0 the run validates the first epoch (the cost of a validation
    is then known) and then only from ``val_from`` of the fitted length on (the train loop's
    ``val_begin``), where the decayed learning rate gives the best weights: the minutes of
    early validations go to more epochs. Train epochs and validations are timed apart, so
    the fit counts each where it falls.

    At the end of training one INFO line and the message hub's ``'time_budget'`` info (see
    :func:`budget_record`; run_info.json carries it) say how many epochs were planned (the
    config's), fitted (the last fit) and run, the first epoch validated after the first, and
    the mean train step time: a run cut short by a machine that slowed down reads apart
    from a recipe that is weak.

    Args:
        minutes: Wall-clock budget of the training loop.
        fit_schedule: Fit ``max_epochs`` and the schedule; False only stops early.
        val_from: Share of the fitted epochs before validation resumes (0: every epoch).
    """

    priority = 'LOWEST'  # after validation and the checkpoint of the epoch

    def __init__(self, minutes: float, fit_schedule: bool = True, val_from: float = 0.0) -> None:
        if not 0.0 <= val_from < 1.0:
            raise ValueError(f'val_from must be in [0, 1), got {val_from}')
        self.seconds = float(minutes) * 60.0
        self.fit_schedule = fit_schedule
        self.val_from = float(val_from)
        self._start: Optional[float] = None
        self._ends: list[float] = []  # seconds since the start at the end of each epoch
        self._vals: list[float] = []  # seconds of each validation (its checkpoint included)
        self._val_start: Optional[float] = None
        self._first_validated = False  # whether the first timed epoch ended in a validation

    def before_train(self, runner) -> None:
        self._start, self._ends, self._vals = _now(), [], []  # a resumed run's earlier
        # epochs are not timed
        self._planned = int(runner.cfg.train_cfg.get('max_epochs') or runner.max_epochs)
        fitted = runner.message_hub.get_info(FIT_KEY)
        if fitted and runner.epoch > 0:  # resumed: the length fitted before, not a new one
            stretch_schedule(runner, int(fitted))
            self.fit_schedule = False
            if self.val_from > 0:
                runner.train_loop.val_begin = int(runner.message_hub.get_info(
                    VAL_BEGIN_KEY) or validation_begin(int(fitted), self.val_from))

    def after_train_epoch(self, runner) -> None:
        if not validation_follows(runner):  # else after_val_epoch checks, with the validation
            self._check(runner, runner.epoch + 1, validated=False)  # time counted

    def before_val_epoch(self, runner) -> None:
        if self._start is not None:
            self._val_start = _now()

    def after_val_epoch(self, runner, metrics=None) -> None:
        if self._start is not None:  # validation inside training: the epoch is counted
            self._check(runner, runner.epoch, validated=True)

    def after_train(self, runner) -> None:
        record = budget_record(runner, self.seconds / 60.0,
                               getattr(self, '_planned', runner.max_epochs))
        runner.message_hub.update_info(RECORD_KEY, record, resumed=False)
        step = record['mean_step_s']
        validated = (f"validated after epoch 1 and from epoch {record['val_begin']} on; "
                     if 1 < record['val_begin'] <= record['epochs_run'] else '')
        print_log(f"time budget: {record['minutes']:g} min; epochs planned "
                  f"{record['epochs_planned']}, fitted {record['epochs_fitted']}, run "
                  f"{record['epochs_run']}; {validated}mean train step "
                  f"{'-' if step is None else f'{step:.3f}'} s", logger='current')

    def _costs(self) -> tuple[float, float]:
        """Seconds of a train epoch and of a validation, without the first epoch's warm-up
        once there is a later one."""
        ends, vals = self._ends, self._vals
        val_s = sum(vals[1:]) / (len(vals) - 1) if len(vals) > 1 else (vals[0] if vals else 0.0)
        if len(ends) == 1:
            return ends[0] - (vals[0] if vals else 0.0), val_s
        trained = ends[-1] - ends[0] - sum(vals[1:] if self._first_validated else vals)
        return trained / (len(ends) - 1), val_s

    def _fit(self, runner, done: int, used: float, train_s: float, val_s: float,
             slack: float = 1.0) -> int:
        loop = runner.train_loop
        # every epoch validates (val_from 0), or validation has begun: its start stays
        fixed = loop.val_begin if self.val_from == 0 or _validating(loop, done) else None
        return fitted_epochs(done, used, train_s * slack, val_s * slack, self.seconds,
                             self.val_from, fixed)

    def _set_length(self, runner, done: int, epochs: int) -> None:
        loop = runner.train_loop
        stretch_schedule(runner, epochs)
        runner.message_hub.update_info(FIT_KEY, epochs)
        if self.val_from > 0 and not _validating(loop, done):
            loop.val_begin = max(done + 1, validation_begin(epochs, self.val_from))
            runner.message_hub.update_info(VAL_BEGIN_KEY, loop.val_begin)

    def _check(self, runner, done: int, validated: bool) -> None:
        if self._start is None:
            return
        now = _now()
        used = now - self._start
        if not self._ends:
            self._first_validated = validated
        self._ends.append(used)
        if validated and self._val_start is not None:
            self._vals.append(now - self._val_start)
        timed = len(self._ends)
        train_s, val_s = self._costs()
        loop = runner.train_loop
        if self.fit_schedule and timed <= 2 and train_s > 0:
            epochs = self._fit(runner, done, used, train_s, val_s)
            if epochs != loop.max_epochs:
                print_log(f'time budget: {train_s:.0f} s per train epoch, {val_s:.0f} s per '
                          f'validation, so {epochs} epochs fit in {self.seconds / 60:g} min; '
                          f'max_epochs {loop.max_epochs} -> {epochs}, the learning-rate '
                          'schedule now ends there', logger='current')
            self._set_length(runner, done, epochs)
            if self.val_from > 0 and timed == 1 and loop.val_begin <= loop.max_epochs:
                print_log(f'time budget: validation ({val_s:.0f} s) after epoch 1, then from '
                          f'epoch {loop.val_begin} on', logger='current')
        elif self.fit_schedule and done < loop.max_epochs:
            # epochs got slower than fitted: end the run and its decay sooner, inside budget;
            # faster (the first ones often carry a busy machine's or warm-up's cost): later,
            # while two or more epochs are left for the decay to stretch over
            epochs = self._fit(runner, done, used, train_s, val_s)
            if epochs > loop.max_epochs:  # grow only with room to spare (5% slower epochs),
                # so that the length does not go back and forth by one with the noise
                epochs = max(loop.max_epochs, self._fit(runner, done, used, train_s, val_s,
                                                        slack=1.05))
            if epochs < loop.max_epochs or (epochs > loop.max_epochs
                                            and loop.max_epochs - done >= 2):
                print_log(f'time budget: train epochs now take {train_s:.0f} s and '
                          f'validations {val_s:.0f} s, so {epochs} epochs fit; max_epochs '
                          f'{loop.max_epochs} -> {epochs}, the learning-rate schedule now ends '
                          'there', logger='current')
                self._set_length(runner, done, epochs)
        nxt = done + 1
        next_s = train_s + (val_s if nxt >= loop.val_begin or nxt == loop.max_epochs else 0.0)
        if done < loop.max_epochs and used + next_s > self.seconds:
            loop.stop_training = True
            print_log(f'time budget: {used / 60:.1f} of {self.seconds / 60:g} min used after '
                      f'epoch {done} ({next_s / 60:.1f} min for the next); training stops '
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
    ``epochs_fitted`` (the length of the last fit), ``epochs_run``, ``val_begin`` (the train
    loop's: validation from that epoch on, and after the first) and ``mean_step_s``."""
    fitted = runner.message_hub.get_info(FIT_KEY)
    return dict(minutes=round(float(minutes), 4), epochs_planned=int(planned),
                epochs_fitted=int(fitted) if fitted else int(runner.train_loop.max_epochs),
                epochs_run=int(runner.epoch), val_begin=int(runner.train_loop.val_begin),
                mean_step_s=mean_step_s(runner))
