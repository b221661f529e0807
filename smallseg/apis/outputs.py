"""Check where a tool's outputs go before it starts its work (one line if they cannot go there).

Every tool calls :func:`check_output_dir` / :func:`check_output_file` for each place it writes
(work dir, ``--out``, ``--results``, ``--show-dir``) before it trains, evaluates or infers, so
an unwritable place costs seconds, not the run.
"""
from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Iterable, Optional

from ..utils.errors import UserError


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _probe(folder: Path) -> None:
    """Create ``folder`` (and its parents) and write and remove a small file there."""
    probe = folder / f'.write_test.{os.getpid()}'
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
    folder.mkdir(parents=True, exist_ok=True)
    probe.write_bytes(b'ok')
    probe.unlink()


def check_output_dir(path: str | Path, option: str, what: str = 'folder') -> Path:
    """Create ``path`` and prove a file can be written there; :class:`UserError` if not.

    Args:
        path: the folder.
        option: the command-line option that names it, for the message (``--work-dir``).
        what: what the folder is, for the message ('work dir').
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f'{what} {path} is a file, not a folder; pass {option} DIR')
    try:
        _probe(path)
    except OSError as exc:
        raise UserError(f'{what} {path} is not writable ({_reason(exc)}); pass {option} DIR '
                        'on a writable disk') from exc
    return path


def check_output_file(path: str | Path, option: str) -> Path:
    """Prove ``path`` can be written (its folder is created): :class:`UserError` if not.

    An existing file is left as it is; it must be a writable file, not a folder.
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f'{option} {path} is a folder; pass a file name')
    try:
        _probe(path.parent)
        if path.exists() and not os.access(path, os.W_OK):
            raise PermissionError(13, 'Permission denied')
    except OSError as exc:
        raise UserError(f'{option} {path} cannot be written ({_reason(exc)}); pass a path '
                        'on a writable disk') from exc
    return path


def check_outputs(files: Iterable[tuple[str, Optional[str | Path]]] = (),
                  dirs: Iterable[tuple[str, Optional[str | Path]]] = ()) -> None:
    """Check ``(option, path)`` pairs of files and folders; None paths are skipped."""
    for option, path in dirs:
        if path is not None:
            check_output_dir(path, option)
    for option, path in files:
        if path is not None:
            check_output_file(path, option)


__all__ = ['check_output_dir', 'check_output_file', 'check_outputs']
