"""ClearML experiment tracking that never costs a run.

``mode``: ``'auto'`` = online when ClearML credentials are configured (``clearml-init``'s
clearml.conf or ``CLEARML_API_HOST/ACCESS_KEY/SECRET_KEY``) and the server answers a login
within a few seconds, else offline; ``'online'``, ``'offline'``, ``'off'``. Precedence: the
tools' ``--clearml`` (:func:`set_mode`) > ``$SMALLSEG_CLEARML`` > the config's ``clearml.mode``.

Offline sessions go to ``<work_dir>/clearml/offline/<task id>.zip``. Every ClearML call runs
in a helper thread with a time budget; the first failure prints ONE warning and an online run
switches to an offline session into which everything already logged is replayed, so nothing
is lost and training goes on. Runner events: :mod:`smallseg.hooks.clearml_hook`.
"""
from __future__ import annotations

import atexit
import json
import logging
import os
from pathlib import Path
from typing import Any, Optional

from mmengine.logging import print_log

from . import tracking_ops as ops
from ..utils.errors import UserError
from .tracking_server import (CHECK_TIMEOUT_S, Server, bounded, check_server,  # noqa: F401
                              find_server)

MODES = ('auto', 'online', 'offline', 'off')
ENV_MODE = 'SMALLSEG_CLEARML'
TASK_FILE = 'clearml_task.json'
CALL_BUDGET_S = 20.0  # one batch of logging calls
INIT_BUDGET_S = 40.0  # Task.init (online: session, task creation)
CLOSE_BUDGET_S = 120.0  # closing an online task, waiting for its uploads
OFFLINE_CLOSE_BUDGET_S = 30.0
_cli_mode: Optional[str] = None


def set_mode(mode: Optional[str]) -> None:
    """The tools' ``--clearml`` flag: overrides the environment and the config (None: unset)."""
    global _cli_mode
    if mode is not None and mode not in MODES:
        raise UserError(f"--clearml must be one of {', '.join(MODES)}, got {mode!r}")
    _cli_mode = mode


def add_argument(parser: Any) -> None:
    """The tools' ``--clearml`` option (pass its value to :func:`set_mode`)."""
    parser.add_argument(
        '--clearml', choices=MODES, default=None,
        help="ClearML tracking: 'auto' (default, from the config's clearml.mode) = online when "
             "credentials are configured (clearml-init / CLEARML_API_*) and the server "
             "answers, else an offline session in <work_dir>/clearml/; 'off' = none")


def requested_mode(cfg_mode: Optional[str] = None) -> str:
    """The mode asked for: ``--clearml``, else ``$SMALLSEG_CLEARML``, else the config's."""
    mode = (_cli_mode or os.environ.get(ENV_MODE) or cfg_mode or 'auto').strip().lower()
    if mode not in MODES:
        raise UserError(f"clearml mode must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


def resolve_mode(requested: str) -> tuple[str, Optional[Server], Optional[str]]:
    """``(mode, server, warning)`` with mode 'online' (the server answered), 'offline' or
    'off'; ``warning`` says why an expected online run goes offline."""
    if requested in ('off', 'offline'):
        return requested, None, None
    try:
        server = find_server()
    except Exception as exc:  # noqa: BLE001 - a broken clearml.conf never stops a run
        return 'offline', None, f'cannot read the ClearML configuration ({exc})'
    if server is None:
        return 'offline', None, None if requested == 'auto' else (
            'online logging needs credentials (clearml-init, or CLEARML_API_HOST / '
            'CLEARML_API_ACCESS_KEY / CLEARML_API_SECRET_KEY)')
    budget = 2 * CHECK_TIMEOUT_S + 1  # DNS, connect and read, whatever happens
    try:
        problem = bounded(lambda: check_server(server), budget, 'clearml-check')
    except TimeoutError:
        problem = f'did not answer in {budget:.0f} s'
    if problem:
        return 'offline', server, f'server {server.host} {problem}'
    return 'online', server, None


class Tracker:
    """The ClearML task of one run: a training run, or a test that continues its task.

    Logging goes through :meth:`log` (an operation of :mod:`.tracking_ops` and its
    arguments). Before :meth:`start` entries wait in a journal; online, the journal is kept
    so a switch to offline replays it into the new session.
    """

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        settings = dict(cfg.get('clearml', None) or {})
        self.settings = settings
        self.work_dir = Path(cfg.get('work_dir') or '.').resolve()
        config_name = Path(cfg.filename).stem if getattr(cfg, 'filename', None) else ''
        self.name = settings.get('task_name') or config_name or self.work_dir.name
        self.mode: Optional[str] = None  # set by start(): 'online', 'offline' or 'off'
        self.kind = 'train'
        self.phase = 'train'  # the loop now running: 'train', 'val' or 'test'
        self.task: Any = None
        self.server: Optional[Server] = None
        self.previous_online_id: Optional[str] = None
        self.continue_id: Optional[str] = None
        self.cache_dir = self.work_dir / 'clearml'
        self.finished = False
        self._journal: list[tuple[str, tuple]] = []
        self._warned = False

    @property
    def active(self) -> bool:
        """False once the run is over or tracking is off."""
        return not self.finished and self.mode != 'off'

    # -- logging -------------------------------------------------------------------------------
    def log(self, op: str, *args: Any) -> None:
        """Record ``op(*args)`` (see :mod:`.tracking_ops`) and send it when the task is up."""
        if self.finished or self.mode == 'off':
            return
        if self.mode in (None, 'online'):
            self._journal.append((op, args))
        if self.task is not None:
            self._send([(op, args)])

    def _send(self, entries: list[tuple[str, tuple]], budget: float = CALL_BUDGET_S) -> None:
        try:
            bounded(lambda: [ops.OPS[op](self.task, *args) for op, args in entries], budget)
        except Exception as exc:  # noqa: BLE001 - never fatal
            self._failed(f'{type(exc).__name__}: {exc}' if str(exc) else type(exc).__name__)

    def warn(self, message: str) -> None:
        """The run's one ClearML warning line."""
        if not self._warned:
            self._warned = True
            print_log(message, logger='current', level=logging.WARNING)

    def _failed(self, reason: str) -> None:
        if self.mode == 'online':
            self._fallback(f'server {self.server.host if self.server else ""} stopped '
                           f'answering ({reason})')
        elif self.mode == 'offline':
            self.warn(f'ClearML: offline logging failed ({reason}); tracking stops here, '
                      'training goes on')
            self.mode = 'off'  # the task is still closed at the end: its session is kept

    def _fallback(self, reason: str) -> None:
        """Online -> offline: one warning, a new offline task, the journal replayed into it."""
        message = (f'ClearML: {reason}; switching to offline logging, session in '
                   f'{self.cache_dir / "offline"} (nothing logged so far is lost)')
        old, self.task = self.task, None
        # the new session holds everything (replayed); a continued task's id lets the import
        # add it to that task
        self.previous_online_id = self.continue_id
        self._journal.append(('properties', ({'online_task_id': getattr(old, 'id', '')},)))
        self.mode = 'offline'
        try:
            ops.detach(old)  # and offline: its pending requests give up at once
            self._init_task(None)
        except Exception as exc:  # noqa: BLE001
            self.warn(f'{message[:-1]}, but it could not start: {exc})')
            self.mode, self.task = 'off', None
            return
        self.warn(message)
        journal, self._journal = self._journal, []
        self._send(journal, budget=CALL_BUDGET_S + 2 * len(journal))

    # -- life cycle ----------------------------------------------------------------------------
    def start(self, kind: str = 'train', checkpoint: Optional[str] = None) -> None:
        """Resolve the mode and open the task (``kind`` 'test' continues the training task
        found next to ``checkpoint`` or in the work dir). Idempotent."""
        if self.mode is not None:
            return
        self.kind = kind
        mode, self.server, warning = resolve_mode(requested_mode(self.settings.get('mode')))
        previous = self._previous_task(kind, checkpoint) if mode != 'off' else None
        continue_id = None
        if previous and previous.get('mode') == 'offline':
            mode, continue_id = 'offline', previous['id']
            self.cache_dir = Path(previous['cache_dir'])
        elif previous and mode == 'online':
            continue_id = previous['id']
        elif previous:
            self.previous_online_id = previous['id']
        self.mode, self.continue_id = mode, continue_id
        if mode == 'off':
            self._journal.clear()
            return
        if warning:
            self.warn(f'ClearML: {warning}; logging offline to {self.cache_dir / "offline"}')
        try:
            self._init_task(continue_id)
        except Exception as exc:  # noqa: BLE001
            self._failed(f'{type(exc).__name__}: {exc}')
            return
        if kind == 'train' or continue_id is None:
            self._send([('properties', (ops.environment_info(self.work_dir),))])
        if mode == 'offline':
            journal, self._journal = self._journal, []
            self._send(journal)
        else:
            self._send(list(self._journal))

    def _previous_task(self, kind: str, checkpoint: Optional[str]) -> Optional[dict]:
        folders = [self.work_dir]
        if checkpoint:
            folders.insert(0, Path(checkpoint).resolve().parent)
        if kind == 'train' and not self.cfg.get('resume'):
            return None
        for folder in folders:
            path = folder / TASK_FILE
            try:
                info = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if info.get('mode') != 'offline' or Path(info.get('session_dir', '')).is_dir():
                return info
        return None

    def _init_task(self, continue_id: Optional[str]) -> None:
        settings = dict(project=self.settings.get('project') or 'smallseg',
                        name=self.name if self.kind == 'train' else f'{self.name} test',
                        tags=list(self.settings.get('tags') or []), kind=self.kind,
                        freeze=self.cache_dir / 'requirements.txt')
        budget = INIT_BUDGET_S if self.mode == 'online' else CALL_BUDGET_S
        before = os.environ.get('CLEARML_CACHE_DIR')
        if self.mode == 'offline':  # read once, by Task.init: the session's folder
            os.environ['CLEARML_CACHE_DIR'] = str(self.cache_dir)
        try:
            self.task = bounded(lambda: ops.init_task(self.mode, self.server, continue_id,
                                                      settings), budget, 'clearml-init')
        finally:
            ops.set_env('CLEARML_CACHE_DIR', before)
        if self.kind == 'train':
            self._write_task_file()
        _register_atexit()
        where = (f'online at {self.server.host}' if self.mode == 'online'
                 else f'offline in {self.session_dir()}')
        print_log(f'ClearML: task {self.task.id} ({self.kind}) logging {where}',
                  logger='current')

    def session_dir(self) -> Optional[Path]:
        """The offline session folder (its zip is ``<folder>.zip``)."""
        if self.mode != 'offline' or self.task is None:
            return None
        return self.cache_dir / 'offline' / self.task.id

    def _write_task_file(self) -> None:
        info = dict(id=self.task.id, mode=self.mode, name=self.name,
                    project=self.settings.get('project') or 'smallseg',
                    cache_dir=str(self.cache_dir),
                    host=self.server.host if self.server and self.mode == 'online' else None)
        if self.mode == 'offline':
            info.update(session_dir=str(self.session_dir()), zip=f'{self.session_dir()}.zip')
        if self.previous_online_id:
            info['previous_online_id'] = self.previous_online_id
        try:
            (self.work_dir / TASK_FILE).write_text(json.dumps(info, indent=2) + '\n')
        except OSError:
            pass

    def check_server(self) -> None:
        """Online: ping the server (bounded); no answer -> switch to offline."""
        if self.mode != 'online' or self.server is None:
            return
        server = self.server
        try:
            problem = bounded(lambda: check_server(server, login=False),
                              2 * CHECK_TIMEOUT_S + 1, 'clearml-ping')
        except TimeoutError as exc:
            problem = str(exc)
        if problem:
            self._fallback(f'server {server.host} {problem}')

    def finish(self, artifacts: Optional[dict[str, str | Path]] = None) -> None:
        """Upload ``artifacts`` ({name: file}, missing files skipped), close the task (bounded)
        and print where the run is: its web page, or the offline zip and its import command."""
        if self.finished:
            return
        if self.mode is None:
            self._journal.clear()
        if self.task is not None:
            files = {**ops.default_artifacts(self.work_dir), **(artifacts or {})}
            for name, path in files.items():
                if path and Path(path).is_file():
                    self.log('artifact', name, str(Path(path).resolve()))
        self.finished = True
        if self.task is not None:
            self._close()

    def _close(self) -> None:
        task, session = self.task, self.session_dir()
        try:
            if session is not None:
                ops.close_offline(task, session, OFFLINE_CLOSE_BUDGET_S)
            else:
                bounded(task.close, CLOSE_BUDGET_S, 'clearml-close')
        except Exception as exc:  # noqa: BLE001
            self.warn(f'ClearML: closing the task did not finish ({exc}); the run itself is '
                      'complete')
            ops.detach(task, online=session is None)
            return
        if session is not None:
            zip_path = f'{session}.zip'
            prev = (f", previous_task_id='{self.previous_online_id}'"
                    if self.previous_online_id else '')
            print_log(f'ClearML offline session: {zip_path}\nimport it into a ClearML server '
                      f'with:\n  python -c "from clearml import Task; '
                      f"Task.import_offline_session('{zip_path}'{prev})\"", logger='current')
        else:
            url = ops.web_page(task)
            print_log(f'ClearML task: {url or task.id}', logger='current')


_current: Optional[Tracker] = None
_atexit_registered = False


def tracker_for(cfg: Any) -> Tracker:
    """The tracker of the run configured by ``cfg`` (a Runner's config); a new run's config
    finishes the previous tracker first."""
    global _current
    if _current is not None and _current.cfg is cfg:
        return _current
    if _current is not None and not _current.finished:
        _current.finish()
    _current = Tracker(cfg)
    return _current


def current() -> Optional[Tracker]:
    """The latest tracker (None before the first run)."""
    return _current


def finish_tracking(artifacts: Optional[dict[str, str | Path]] = None) -> None:
    """Close the latest run's task, uploading ``artifacts`` ({name: file}) first."""
    if _current is not None:
        _current.finish(artifacts)


def _register_atexit() -> None:
    # registered after clearml's own exit hook, so it runs first: a bounded close
    global _atexit_registered
    if not _atexit_registered:
        _atexit_registered = True
        atexit.register(finish_tracking)
