"""The ClearML task of one run (a training run, or a test continuing its task).

Each ClearML call has a time budget (:func:`.server.bounded`). Entries logged before
:meth:`Tracker.start` wait in a journal; online it is kept, so a lost server costs one warning
and a switch to an offline session into which everything is replayed.
"""
from __future__ import annotations

import atexit
import json
import logging
import os
from pathlib import Path
from typing import Any, Callable, Optional

from mmengine.logging import print_log

from . import session as ops
from .server import CHECK_TIMEOUT_S, bounded, check_server

TASK_FILE = 'clearml_task.json'
CALL_BUDGET_S = 20.0  # a batch of logging calls; offline Task.init
INIT_BUDGET_S = 40.0  # online Task.init
CLOSE_BUDGET_S = 120.0  # closing an online task, waiting for its uploads
OFFLINE_CLOSE_BUDGET_S = 30.0


class Tracker:
    """The run's task; ``resolve()`` gives ``(mode, server, warning)`` when it starts."""

    def __init__(self, cfg: Any, resolve: Callable[[], tuple]) -> None:
        self.cfg, self._resolve = cfg, resolve
        self.settings = dict(cfg.get('clearml', None) or {})
        self.work_dir = Path(cfg.get('work_dir') or '.').resolve()
        stem = Path(cfg.filename).stem if getattr(cfg, 'filename', None) else ''
        self.name = self.settings.get('task_name') or stem or self.work_dir.name
        self.mode: Optional[str] = None  # start(): 'online', 'offline' or 'off'
        self.kind, self.phase = 'train', 'train'  # phase: the loop running now
        self.task: Any = None
        self.server: Any = None
        self.continue_id: Optional[str] = None  # the task this run continues
        self.previous_online_id: Optional[str] = None  # the offline import continues it
        self.cache_dir = self.work_dir / 'clearml'
        self.session: Optional[Path] = None  # an offline task's folder (and <folder>.zip)
        self.run_config: Optional[tuple[dict, dict]] = None  # (config, hyper-parameters)
        self.finished = self._warned = False
        self._journal: list[tuple[str, tuple]] = []

    @property
    def active(self) -> bool:
        """False once the run is over or tracking is off."""
        return not self.finished and self.mode != 'off'

    def log(self, op: str, *args: Any) -> None:
        """``op(task, *args)``, an operation of :data:`.session.OPS`, when the task is up."""
        if self.active and self.mode in (None, 'online'):
            self._journal.append((op, args))
        if self.active and self.task is not None:
            self._send([(op, args)])

    def _send(self, entries: list, budget: float = CALL_BUDGET_S) -> None:
        try:
            bounded(lambda: [ops.OPS[op](self.task, *args) for op, args in entries], budget)
        except Exception as exc:  # noqa: BLE001 - never fatal
            self._failed(f'{type(exc).__name__}: {exc}')

    def _failed(self, reason: str) -> None:
        if self.mode == 'online':
            self._fallback(f'server {self.server.host} stopped answering ({reason})')
        elif self.mode == 'offline':
            self.warn(f'ClearML: offline logging failed ({reason}); tracking stops here, '
                      'training goes on')
            self.mode = 'off'  # a task is still closed at the end: its session is kept

    def warn(self, message: str) -> None:
        """The run's one ClearML warning line."""
        if not self._warned:
            self._warned = True
            print_log(message, logger='current', level=logging.WARNING)

    def _fallback(self, reason: str) -> None:
        """Online -> offline: one warning, a new offline task, the journal replayed into it."""
        message = f'ClearML: {reason}; switching to offline logging, session in ' \
                  f'{self.cache_dir / "offline"} (nothing logged so far is lost)'
        old, self.task, self.mode = self.task, None, 'offline'
        self.previous_online_id = self.continue_id
        self._journal.append(('properties', ({'online_task_id': getattr(old, 'id', '')},)))
        try:
            ops.clearml_internals(old, detach='lost')
            self._init_task(None)
        except Exception as exc:  # noqa: BLE001
            self.mode, self.task = 'off', None
            return self.warn(f'{message[:-1]}, but it could not start: {exc})')
        self.warn(message)
        journal, self._journal = self._journal, []
        self._send(journal, budget=CALL_BUDGET_S + 2 * len(journal))

    def start(self, kind: str = 'train', checkpoint: Optional[str] = None) -> None:
        """Resolve the mode and open the task; ``kind`` 'test' continues the training task
        whose TASK_FILE is next to ``checkpoint`` or in the work dir. Idempotent."""
        if self.mode is not None:
            return
        self.kind = kind
        mode, self.server, warning = self._resolve()
        previous = self._previous_task(checkpoint) if mode != 'off' else None
        if previous and previous.get('mode') == 'offline':
            mode, self.continue_id = 'offline', previous['id']
            self.cache_dir = Path(previous['cache_dir'])
        elif previous and mode == 'online':
            self.continue_id = previous['id']
        elif previous:
            self.previous_online_id = previous['id']
        self.mode = mode
        if mode == 'off':
            return self._journal.clear()
        if self.run_config is not None:  # a test's config must not replace the training's
            config, hyper = self.run_config
            self._journal[:0] = [('config', ('config', config)), ('params', (
                'Hyperparameters', hyper))] if kind == 'train' else [
                ('config', ('test config', config))]
        if warning:
            self.warn(f'ClearML: {warning}; logging offline to {self.cache_dir / "offline"}')
        try:
            self._init_task(self.continue_id)
        except Exception as exc:  # noqa: BLE001
            return self._failed(f'{type(exc).__name__}: {exc}')
        journal = list(self._journal)
        if mode == 'offline':
            self._journal.clear()
        self._send(journal)

    def _previous_task(self, checkpoint: Optional[str]) -> Optional[dict]:
        if self.kind == 'train' and not self.cfg.get('resume'):
            return None
        folders = [Path(checkpoint).resolve().parent] if checkpoint else []
        for path in [folder / TASK_FILE for folder in folders + [self.work_dir]]:
            try:
                info = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if info.get('mode') != 'offline' or Path(info.get('session_dir', '')).is_dir():
                return info
        return None

    def _init_task(self, continue_id: Optional[str]) -> None:
        project = self.settings.get('project') or 'smallseg'
        settings = dict(project=project, tags=list(self.settings.get('tags') or []),
                        name=self.name if self.kind == 'train' else f'{self.name} test',
                        kind=self.kind)
        before = os.environ.get('CLEARML_CACHE_DIR')
        if self.mode == 'offline':  # read once, by Task.init: where the session goes
            os.environ['CLEARML_CACHE_DIR'] = str(self.cache_dir)
        try:
            self.task = bounded(lambda: ops.init_task(self.mode, continue_id, settings),
                                INIT_BUDGET_S if self.mode == 'online' else CALL_BUDGET_S)
        finally:
            os.environ.pop('CLEARML_CACHE_DIR', None)
            os.environ.update({} if before is None else {'CLEARML_CACHE_DIR': before})
        session = self.session = (self.cache_dir / 'offline' / self.task.id
                                  if self.mode == 'offline' else None)
        if self.kind == 'train':  # what tools/test.py and --resume continue
            info = dict(id=self.task.id, mode=self.mode, name=self.name, project=project,
                        cache_dir=str(self.cache_dir), previous_online_id=self.previous_online_id,
                        host=None if session else self.server.host)
            if session:
                info.update(session_dir=str(session), zip=f'{session}.zip')
            try:
                (self.work_dir / TASK_FILE).write_text(json.dumps(info, indent=2) + '\n')
            except OSError:
                pass
        atexit.register(self.finish)  # after ClearML's exit hook, so it runs first: bounded
        where = f'offline in {session}' if session else f'online at {self.server.host}'
        print_log(f'ClearML: task {self.task.id} ({self.kind}) logging {where}', 'current')

    def check_server(self) -> None:
        """Online: ping the server (bounded); no answer -> switch to offline."""
        if self.mode == 'online':
            try:
                problem = bounded(lambda: check_server(self.server, login=False),
                                  2 * CHECK_TIMEOUT_S + 1, 'clearml-ping')
            except TimeoutError as exc:
                problem = str(exc)
            if problem:
                self._fallback(f'server {self.server.host} {problem}')

    def finish(self, artifacts: Optional[dict[str, str | Path]] = None) -> None:
        """Upload ``artifacts`` ({name: file}) and the run's result files that exist, close
        the task (bounded), print its web page or the offline zip and its import command."""
        if self.finished:
            return
        atexit.unregister(self.finish)
        for name, path in {'run_info': self.work_dir / 'run_info.json',
                           'training_curves': self.work_dir / 'training_curves.png',
                           'eda_summary': Path('eda_results/eda_summary.json'),
                           **(artifacts or {})}.items():
            if self.task is not None and path and Path(path).is_file():
                self.log('artifact', name, str(Path(path).resolve()))
        self.finished, task, session = True, self.task, self.session
        self._journal.clear()
        try:
            if task is not None and session is not None:
                ops.close_offline(task, session, OFFLINE_CLOSE_BUDGET_S)
            elif task is not None:
                bounded(task.close, CLOSE_BUDGET_S, 'clearml-close')
        except Exception as exc:  # noqa: BLE001
            self.warn(f'ClearML: closing the task did not finish ({exc}); the run itself is '
                      'complete')
            return ops.clearml_internals(task, detach='closing' if session else 'lost')
        if session is not None:
            prev = f", previous_task_id='{self.previous_online_id}'" * bool(
                self.previous_online_id)
            print_log(f'ClearML offline session: {session}.zip\nimport it into a ClearML '
                      f'server with:\n  python -c "from clearml import Task; '
                      f"Task.import_offline_session('{session}.zip'{prev})\"", 'current')
        elif task is not None:
            print_log(f'ClearML task: {ops.web_page(task)}', 'current')
