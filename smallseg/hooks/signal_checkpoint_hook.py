"""Save a resumable checkpoint when the run is stopped with Ctrl-C (SIGINT) or SIGTERM."""
from __future__ import annotations

import copy
import signal
import threading
from pathlib import Path
from typing import Optional, Sequence

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.optim import OptimWrapperDict
from mmseg.registry import HOOKS

from smallseg.engine.atomic_io import wait_for_writes
from smallseg.utils.errors import Interrupted

from .safe_checkpoint_hook import validation_follows, write_last_checkpoint

PREFIX = 'interrupted_'


@HOOKS.register_module()
class SignalCheckpointHook(Hook):
    """On SIGINT/SIGTERM, finish the current iteration, save a checkpoint, then stop.

    The handler only sets a flag; after the running train iteration (or validation) ends,
    ``interrupted_epoch_<E>_iter_<I>.pth`` is written (atomically) to the work dir,
    ``last_checkpoint`` points at it and :class:`~smallseg.utils.errors.Interrupted` ends the
    run (exit code 128 + signal number, e.g. 143 for SIGTERM). ``tools/train.py --resume``
    continues from it with the schedule of an uninterrupted run:

    * a signal in an epoch's last iteration lets the epoch finish (its checkpoint and, when
      due, its validation): the resumed run starts at the next epoch;
    * a signal earlier in the epoch saves the loop position, the LR schedulers and the
      optimiser's scheduled values (LR, momentum) as they were when the epoch began, with the
      current weights: the resumed run trains that epoch again from its first iteration, and
      every iteration gets the learning rate it gets without the interruption.

    A second signal while waiting stops at once.
    A cluster's SIGKILL (``kill -9``) cannot be caught: then ``--resume`` starts from the last
    epoch checkpoint, which :class:`SafeCheckpointHook` keeps usable.

    Args:
        signals (Sequence[str]): Signal names to handle. Defaults to ('SIGINT', 'SIGTERM').
    """

    priority = 'LOWEST'  # after the checkpoint and logger hooks of the same stage

    def __init__(self, signals: Sequence[str] = ('SIGINT', 'SIGTERM')) -> None:
        self.signals = [getattr(signal, name) for name in signals]
        self._previous: dict[int, object] = {}
        self.received: Optional[int] = None
        self._epoch_start: Optional[dict] = None

    # -- signal handling -------------------------------------------------------------------
    def _handler(self, signum: int, frame) -> None:
        if self.received is not None:  # second signal: stop now, without a checkpoint
            self._restore()
            raise Interrupted(f'stopped by a second {signal.Signals(signum).name}; no checkpoint '
                              'was saved for the current iteration', 128 + signum)
        self.received = signum
        print_log(f'received {signal.Signals(signum).name}: saving a checkpoint after the '
                  'current iteration (send it again to stop at once)', logger='current')

    def _restore(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()

    def before_train(self, runner) -> None:
        self.received = None
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for sig in self.signals:
            self._previous[sig] = signal.signal(sig, self._handler)

    def after_train(self, runner) -> None:
        self._restore()
        if is_main_process():  # the run finished: older interruption checkpoints are stale
            for old in Path(runner.work_dir).glob(f'{PREFIX}*.pth'):
                old.unlink(missing_ok=True)

    # -- where the epoch began ----------------------------------------------------------
    def before_train_epoch(self, runner) -> None:
        self._epoch_start = dict(
            iter=runner.iter,
            schedulers=[copy.deepcopy(s.state_dict()) for s in _schedulers(runner)],
            groups=[{k: copy.deepcopy(v) for k, v in group.items() if k != 'params'}
                    for group in _param_groups(runner)])

    def _rewind(self, runner) -> int:
        """Set the schedulers and the optimiser's scheduled values back to the epoch's start;
        returns the iteration count there."""
        start = self._epoch_start
        if start is None:
            return runner.iter + 1
        for scheduler, state in zip(_schedulers(runner), start['schedulers']):
            scheduler.load_state_dict(copy.deepcopy(state))
        for group, values in zip(_param_groups(runner), start['groups']):
            group.update(copy.deepcopy(values))
        return start['iter']

    # -- stopping points -------------------------------------------------------------------
    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self.received is None:
            return
        try:
            last = batch_idx + 1 >= len(runner.train_dataloader)
        except TypeError:  # a loader without a length
            last = False
        if not last:  # else the epoch ends now: stop after it (and its validation)
            self._save_and_stop(runner, epoch_done=False)

    def after_train_epoch(self, runner) -> None:
        # a validation due now runs first (CheckpointHook saves the epoch after it)
        if self.received is not None and not validation_follows(runner):
            self._save_and_stop(runner, epoch_done=True)

    def after_val_epoch(self, runner, metrics=None) -> None:
        if self.received is not None:
            self._save_and_stop(runner, epoch_done=True, after_val=True)

    def _save_and_stop(self, runner, epoch_done: bool, after_val: bool = False) -> None:
        signum, self.received = self.received, None
        self._restore()
        wait_for_writes()  # a background checkpoint write of this epoch lands first
        name = signal.Signals(signum).name
        work_dir = Path(runner.work_dir)
        if epoch_done:
            # runner.epoch counts finished epochs after validation, not before it
            epoch = runner.epoch if after_val else runner.epoch + 1
            meta = dict(epoch=epoch, iter=runner.iter)
            where = f'after epoch {epoch}'
        else:  # restart the unfinished epoch from its first iteration, schedule rewound
            meta = dict(epoch=runner.epoch, iter=self._rewind(runner))
            where = f'in epoch {runner.epoch + 1} (iteration {runner.iter + 1})'
        # named for where the run stopped; meta says where the resumed run starts
        stopped = runner.iter if epoch_done else runner.iter + 1
        filename = f"{PREFIX}epoch_{meta['epoch']}_iter_{stopped}.pth"
        runner.save_checkpoint(str(work_dir), filename, meta=meta, save_optimizer=True,
                               save_param_scheduler=True)
        path = work_dir / filename
        if is_main_process():
            write_last_checkpoint(str(work_dir), str(path))
            for old in work_dir.glob(f'{PREFIX}*.pth'):
                if old != path:
                    old.unlink(missing_ok=True)
        message = (f'interrupted by {name} {where}: checkpoint saved to {path}; continue '
                   'with the same command and --resume')
        print_log(message, logger='current')
        raise Interrupted(message, 128 + signum)


def _schedulers(runner) -> list:
    schedulers = runner.param_schedulers or []
    if isinstance(schedulers, dict):  # one list per optimiser
        return [s for group in schedulers.values() for s in group]
    return list(schedulers)


def _param_groups(runner) -> list[dict]:
    wrapper = runner.optim_wrapper
    wrappers = wrapper.values() if isinstance(wrapper, OptimWrapperDict) else [wrapper]
    return [group for w in wrappers for group in w.optimizer.param_groups]
