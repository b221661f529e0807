"""Crash-safe local writes for mmengine: temp file in the same folder, fsync, ``os.replace``.

mmengine's ``LocalBackend.put`` opens the target with ``'wb'`` and writes into it, so a run
killed (or a disk filling up) while a checkpoint is saved leaves a truncated ``.pth`` that
``--resume`` cannot load. :class:`AtomicLocalBackend` is registered as mmengine's ``local``
backend (the one every local path uses) on ``import smallseg``: readers see the old file or
the complete new one, never a partial one. A failed write (disk full, permissions) removes
its temp file, leaves the previous file untouched and raises :class:`SaveError`, a
:class:`~smallseg.utils.errors.UserError`, so the tools print one line.
"""
from __future__ import annotations

import errno
import os
import os.path as osp
import threading
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Callable, Iterator, Optional, Union

from mmengine.fileio.backends import LocalBackend, register_backend

from smallseg.utils.errors import UserError

_HINTS = {
    errno.ENOSPC: 'the disk is full: free space',
    errno.EDQUOT: 'the disk quota is exceeded: free space',
    errno.EROFS: 'the file system is read-only: use another --work-dir',
    errno.EACCES: 'permission denied: use a writable --work-dir',
    errno.EPERM: 'permission denied: use a writable --work-dir',
}


class SaveError(UserError):
    """A file could not be written; the previous version (if any) is intact."""


def save_error(path: Union[str, Path], exc: OSError) -> SaveError:
    """The one-line error for a failed write of ``path`` (see :class:`SaveError`)."""
    path = Path(path)
    reason = exc.strerror or type(exc).__name__
    hint = _HINTS.get(exc.errno, 'check the disk and the folder permissions')
    previous = (f'the previous {path.name} is intact' if path.is_file()
                else 'nothing was written')
    what = 'checkpoint ' if path.suffix == '.pth' else ''
    resume = ', then continue with --resume' if path.suffix == '.pth' or path.name == (
        'last_checkpoint') else ''
    return SaveError(f'cannot save {what}{path} ({reason}); {previous}; {hint}{resume}')


def atomic_write(path: Union[str, Path], data: Union[bytes, str],
                 encoding: str = 'utf-8') -> None:
    """Write ``data`` to ``path`` through ``<path>.tmp<pid>`` + fsync + ``os.replace``.

    Raises :class:`SaveError` (and removes the temp file) when the write fails.
    """
    path = os.fspath(path)
    if isinstance(data, str):
        data = data.encode(encoding)
    tmp = f'{path}.tmp{os.getpid()}'
    try:
        os.makedirs(osp.dirname(path) or '.', exist_ok=True)
        with open(tmp, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise save_error(path, exc) from exc
    try:  # make the rename itself durable (best effort: not every file system allows it)
        fd = os.open(osp.dirname(path) or '.', os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


class AtomicLocalBackend(LocalBackend):
    """mmengine's local backend with atomic :meth:`put` / :meth:`put_text`.

    Inside :func:`deferred_puts`, :meth:`put` records the write instead of doing it.
    """

    deferred: Optional[list[Callable[[], None]]] = None

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        if AtomicLocalBackend.deferred is not None:
            AtomicLocalBackend.deferred.append(partial(atomic_write, filepath, obj))
            return
        atomic_write(filepath, obj)

    def put_text(self, obj: str, filepath: Union[str, Path], encoding: str = 'utf-8') -> None:
        atomic_write(filepath, obj, encoding=encoding)


def install() -> None:
    """Make :class:`AtomicLocalBackend` the backend of local paths (idempotent)."""
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')
    from mmengine.fileio import io as mmio
    for key, backend in list(mmio.backend_instances.items()):
        if type(backend) is LocalBackend:  # cached before the switch
            del mmio.backend_instances[key]


@contextmanager
def deferred_puts() -> Iterator[list[Callable[[], None]]]:
    """Collect the writes of local ``put`` calls (a checkpoint's bytes, already serialised)
    as jobs for :func:`write_in_background` instead of writing them."""
    jobs: list[Callable[[], None]] = []
    AtomicLocalBackend.deferred = jobs
    try:
        yield jobs
    finally:
        AtomicLocalBackend.deferred = None


class _Writer:
    """The one background write in flight: its thread and the error it ended with."""

    thread: Optional[threading.Thread] = None
    error: Optional[BaseException] = None


def _run(jobs: list[Callable[[], None]]) -> None:
    try:
        for job in jobs:
            job()
    except BaseException as exc:  # handed to the main thread by wait_for_writes()
        _Writer.error = exc


def write_in_background(jobs: list[Callable[[], None]]) -> None:
    """Run ``jobs`` in order in a thread, after the previous background jobs have finished.

    Training goes on while a checkpoint is written and synced to disk. The thread is not a
    daemon, so the interpreter finishes the write before it exits; a kill leaves the previous
    files, as every job is an atomic write, a ``last_checkpoint`` update or a removal.
    """
    wait_for_writes()
    _Writer.thread = threading.Thread(target=_run, args=(jobs,), name='checkpoint-writer')
    _Writer.thread.start()


def wait_for_writes() -> None:
    """Wait for the background write in flight; raise its error (a :class:`SaveError`)."""
    if _Writer.thread is not None:
        _Writer.thread.join()
        _Writer.thread = None
    error, _Writer.error = _Writer.error, None
    if error is not None:
        raise error
