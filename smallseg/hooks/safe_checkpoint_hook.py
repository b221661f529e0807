"""CheckpointHook that never leaves a run without a loadable checkpoint."""
from __future__ import annotations

import os.path as osp
from contextlib import contextmanager
from functools import partial
from typing import Callable, Iterator, Optional

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmseg.registry import HOOKS

from smallseg.engine.atomic_io import (atomic_write, deferred_puts, wait_for_writes,
                                       write_in_background)
from smallseg.engine.text_cached_config import TextCachedConfig

LAST_CHECKPOINT = 'last_checkpoint'


def write_last_checkpoint(work_dir: str, ckpt_path: str) -> None:
    """Point ``<work_dir>/last_checkpoint`` (what ``--resume`` reads) at ``ckpt_path``."""
    atomic_write(osp.join(work_dir, LAST_CHECKPOINT), str(ckpt_path))


class _DeferRemoval:
    """Stands in for the hook's file backend and records removals instead of doing them."""

    def __init__(self, backend) -> None:
        self._backend = backend
        self.removed: list[tuple[str, str]] = []

    def remove(self, path) -> None:
        self.removed.append(('remove', str(path)))

    def rmtree(self, path) -> None:
        self.removed.append(('rmtree', str(path)))

    def __getattr__(self, name: str):
        return getattr(self._backend, name)


@HOOKS.register_module()
class SafeCheckpointHook(CheckpointHook):
    """mmengine's :class:`CheckpointHook` with crash-safe ordering.

    mmengine deletes the outdated checkpoint (``max_keep_ckpts``) and the previous best one
    *before* it writes the new one, and writes ``last_checkpoint`` in place: a kill or a full
    disk in between leaves nothing to resume from, or a ``last_checkpoint`` naming a deleted
    file. Here the new file is written first (atomically, see :mod:`smallseg.engine.atomic_io`),
    then ``last_checkpoint`` is replaced atomically, and only then are old files removed.

    When a validation follows the epoch, the epoch's resumable checkpoint is saved once, after
    it, with the epoch's best score in it (mmengine saves it before validation and again after a
    new best score: two full checkpoints, optimizer state included, per improving epoch). A kill
    during validation still loses at most that one epoch.

    The config text each checkpoint holds is formatted once
    (:class:`~smallseg.engine.text_cached_config.TextCachedConfig`), not in every save.

    The writes run in a background thread (:func:`~smallseg.engine.atomic_io.write_in_background`)
    while training goes on; the next save and the end of training wait
    for them. ``background=False`` writes in the training thread.

    Args:
        background (bool): Write checkpoints in a background thread. Defaults to True.
        **kwargs: :class:`CheckpointHook` arguments.
    """

    def __init__(self, background: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.background = background
        self._save_after_val = False
        self._after_put: Optional[list[Callable[[], None]]] = None  # jobs of the save under way

    def before_train(self, runner) -> None:
        TextCachedConfig.cache_text(runner.cfg)
        super().before_train(runner)

    def after_train_epoch(self, runner) -> None:
        self._save_after_val = self.by_epoch and validation_follows(runner) and (
            self.every_n_epochs(runner, self.interval, self.save_begin)
            or (self.save_last and self.is_last_train_epoch(runner)))
        if not self._save_after_val:
            super().after_train_epoch(runner)

    def after_val_epoch(self, runner, metrics) -> None:
        if not self._save_after_val:
            return super().after_val_epoch(runner, metrics)
        self._save_after_val = False
        with self._removals_after_save():  # the best and the epoch checkpoint: one write job
            last, self.last_ckpt = self.last_ckpt, None  # mmengine re-saves it after a new best
            try:
                super().after_val_epoch(runner, metrics)
            finally:
                self.last_ckpt = last
            runner.logger.info(f'Saving checkpoint at {runner.epoch} epochs')
            self._save_checkpoint_with_step(runner, runner.epoch,
                                            dict(epoch=runner.epoch, iter=runner.iter))

    @contextmanager
    def _removals_after_save(self, after_put: Optional[list[Callable[[], None]]] = None
                             ) -> Iterator[None]:
        """Save with the removals the body asks for done last: the writes, then the
        ``after_put`` jobs, then the removals, in a background thread when ``background``.
        A save inside another one adds its writes and jobs to the outer one's."""
        if self._after_put is not None:
            yield
            self._after_put += after_put or []
            return
        wait_for_writes()  # the previous save is on disk; its error surfaces here
        backend = self.file_backend
        proxy = _DeferRemoval(backend)
        self.file_backend = proxy
        self._after_put = after_put if after_put is not None else []
        try:
            with deferred_puts() as jobs:
                yield
                jobs += self._after_put
        finally:
            self.file_backend, self._after_put = backend, None
        keep = {self.last_ckpt, getattr(self, 'best_ckpt_path', None),
                *getattr(self, 'best_ckpt_path_dict', {}).values()}
        jobs += [partial(_remove, backend, how, path)
                 for how, path in proxy.removed if path not in keep]
        if self.background:
            write_in_background(jobs)
        else:
            for job in jobs:
                job()

    def _save_checkpoint_with_step(self, runner, step, meta):
        after_put: list[Callable[[], None]] = []
        with self._removals_after_save(after_put):
            if self.max_keep_ckpts > 0 and not (
                    self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
                if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                    old = self.keep_ckpt_ids.popleft()
                    if is_main_process():
                        self.file_backend.remove(self.file_backend.join_path(
                            self.out_dir, self.filename_tmpl.format(old)))
                self.keep_ckpt_ids.append(step)
                runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))

            ckpt_filename = self.filename_tmpl.format(step)
            self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
            runner.message_hub.update_info('last_ckpt', self.last_ckpt)
            runner.save_checkpoint(
                self.out_dir, ckpt_filename, self.file_client_args,
                save_optimizer=self.save_optimizer,
                save_param_scheduler=self.save_param_scheduler, meta=meta,
                by_epoch=self.by_epoch, backend_args=self.backend_args, **self.args)
            if is_main_process():
                after_put.append(partial(write_last_checkpoint, runner.work_dir,
                                         self.last_ckpt))

    def _save_best_checkpoint(self, runner, metrics) -> None:
        with self._removals_after_save():
            super()._save_best_checkpoint(runner, metrics)

    def after_train(self, runner) -> None:
        wait_for_writes()  # the best and last checkpoints are on disk when training returns
        super().after_train(runner)


def validation_follows(runner) -> bool:
    """Whether the train loop validates after the epoch that is ending (mmengine's rule)."""
    loop, done = runner.train_loop, runner.epoch + 1
    return (runner.val_loop is not None and done >= loop.val_begin
            and (done % loop.val_interval == 0 or done == loop.max_epochs))


def _remove(backend, how: str, path: str) -> None:
    """Remove an outdated checkpoint file or folder if it is still there."""
    if how == 'remove' and backend.isfile(path):
        backend.remove(path)
    elif how == 'rmtree' and backend.isdir(path):
        backend.rmtree(path)
