"""The mode and the ClearML task of one run. Every ClearML call has a time budget; a journal of
what is logged online lets a lost server cost one warning and a switch to offline, replayed."""
from __future__ import annotations

import atexit
import json
import logging
import os
from contextlib import suppress
from pathlib import Path
from typing import Any, Optional

from mmengine.dist import is_main_process
from mmengine.logging import print_log

from smallseg.utils.config import cfg_get, head_losses
from smallseg.utils.errors import UserError
from smallseg.utils.run_info import RUN_INFO
from smallseg.utils.timeout import call_with_timeout

from . import session as ops
from .session import Server, check_server, find_server

MODES = ('auto', 'online', 'offline', 'off')
ENV_MODE = 'SMALLSEG_CLEARML'
TASK_FILE = 'clearml_task.json'
CALL_BUDGET_S = 20.0  # a batch of logging calls; offline Task.init
INIT_BUDGET_S = 40.0  # online Task.init
CLOSE_BUDGET_S = 120.0  # closing an online task, waiting for its uploads
OFFLINE_CLOSE_BUDGET_S = 30.0
HYPERPARAMETERS = {  # the settings worth comparing across runs: name -> config key
    'model/backbone': 'model.backbone.type', 'model/depth': 'model.backbone.depth',
    'model/decode_head': 'model.decode_head.type',
    'model/num_classes': 'model.decode_head.num_classes',
    'model/pretrained': 'model.backbone.init_cfg.checkpoint',
    'optimizer': 'optim_wrapper.optimizer', 'optim_wrapper/type': 'optim_wrapper.type',
    'optim_wrapper/dtype': 'optim_wrapper.dtype', 'schedule/max_epochs': 'train_cfg.max_epochs',
    'schedule/val_interval': 'train_cfg.val_interval', 'data/data_root': 'data_root',
    'data/img_size': 'img_size', 'data/batch_size': 'train_dataloader.batch_size',
    'data/num_workers': 'train_dataloader.num_workers', 'seed': 'randomness.seed'}
_cli_mode: Optional[str] = None
_current: Optional[Tracker] = None


def set_mode(mode: Optional[str]) -> None:
    """The tools' ``--clearml`` flag: overrides the environment and the config (None: unset)."""
    global _cli_mode
    _cli_mode = mode


def requested_mode(cfg_mode: Optional[str] = None) -> str:
    """The mode asked for: ``--clearml``, else ``$SMALLSEG_CLEARML``, else the config's."""
    mode = (_cli_mode or os.environ.get(ENV_MODE) or cfg_mode or 'auto').strip().lower()
    if mode not in MODES:
        raise UserError(f"clearml mode must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


def resolve_mode(requested: str) -> tuple[str, Optional[Server], Optional[str]]:
    """``(mode, server, warning)``: the mode to log in, and why an online run goes offline."""
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
    problem = check_server(server)
    return ('offline', server, f'server {server.host} {problem}') if problem else (
        'online', server, None)


def tracker_for(cfg: Any) -> Tracker:
    """The tracker of the run configured by ``cfg`` (a new config finishes the previous one)."""
    global _current
    if _current is None or _current.cfg is not cfg:
        if _current is not None:
            _current.finish()
        _current = Tracker(cfg)
    return _current


def finish_tracking(artifacts: Optional[dict[str, str | Path]] = None) -> None:
    """Close the latest run's task, uploading ``artifacts`` ({name: file}) first."""
    if _current is not None:
        _current.finish(artifacts)


def hyperparameters(cfg: dict) -> dict:
    """The :data:`HYPERPARAMETERS`, the loss class weights and the schedulers of ``cfg``."""
    losses = head_losses(cfg.get('model') or {})
    return {**{name: cfg_get(cfg, key) for name, key in HYPERPARAMETERS.items()},
            'model/class_weight': losses[0].get('class_weight') if losses else None,
            'schedule/param_scheduler': [p.get('type') for p in cfg.get('param_scheduler') or []
                                         if isinstance(p, dict)]}


class Tracker:
    """The ClearML task of the run configured by ``cfg``."""

    def __init__(self, cfg: Any) -> None:
        self.cfg, self.settings = cfg, dict(cfg.get('clearml', None) or {})
        self.work_dir = Path(cfg.get('work_dir') or '.').resolve()
        stem = Path(cfg.filename).stem if getattr(cfg, 'filename', None) else ''
        self.name = self.settings.get('task_name') or stem or self.work_dir.name
        self.cache_dir = self.work_dir / 'clearml'
        self.mode: Optional[str] = None  # start(): 'online', 'offline' or 'off'
        self.kind, self.phase = 'train', 'train'  # phase: 'val' while validating
        self.task, self.server = None, None  # the ClearML task; online: the server (Server)
        self.session: Optional[Path] = None  # an offline task's folder (and <folder>.zip)
        self.continue_id: Optional[str] = None  # the task this run continues
        self.previous_online_id: Optional[str] = None  # the offline import continues it
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
            call_with_timeout(lambda: [ops.OPS[op](self.task, *args) for op, args in entries],
                              budget)
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
        self.previous_online_id = getattr(old, 'id', None) or self.continue_id
        self._journal.append(('properties', ({'online_task_id': self.previous_online_id},)))
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
        """Resolve the mode and open the task (once, on the main process); a test, or a resumed
        training, continues the task of the TASK_FILE next to ``checkpoint`` or in the work dir."""
        if self.mode is not None or self.finished:
            return
        self.kind = kind
        requested = requested_mode(self.settings.get('mode')) if is_main_process() else 'off'
        mode, self.server, warning = resolve_mode(requested)
        previous = self._previous_task(checkpoint) if mode != 'off' else {}
        if previous.get('mode') == 'offline':
            mode, self.continue_id = 'offline', previous['id']
            self.cache_dir = Path(previous['cache_dir'])
            self.previous_online_id = previous.get('previous_online_id')
        elif previous and mode == 'online':
            self.continue_id = previous['id']
        elif previous:
            self.previous_online_id = previous['id']
        self.mode = mode
        if mode == 'off':
            return self._journal.clear()
        config = self.cfg.to_dict()  # a test's config must not replace the training's
        self._journal[:0] = [('config', ('config', config)), ('params', (
            'Hyperparameters', hyperparameters(config)))] if kind == 'train' else [
            ('config', ('test config', config))]
        if warning:
            self.warn(f'ClearML: {warning}; logging offline to {self.cache_dir / "offline"}')
        try:
            self._init_task(self.continue_id)
        except Exception as exc:  # noqa: BLE001
            return self._failed(f'{type(exc).__name__}: {exc}')
        journal = list(self._journal)
        self._journal = self._journal if mode == 'online' else []
        self._send(journal)

    def _previous_task(self, checkpoint: Optional[str]) -> dict:
        if self.kind == 'train' and not self.cfg.get('resume'):
            return {}
        folders = [Path(checkpoint).resolve().parent] if checkpoint else []
        for path in [folder / TASK_FILE for folder in folders + [self.work_dir]]:
            with suppress(OSError, ValueError):
                info = json.loads(path.read_text())
                if info.get('mode') != 'offline' or Path(info.get('session_dir') or '').is_dir():
                    return info
        return {}

    def _init_task(self, continue_id: Optional[str]) -> None:
        project = self.settings.get('project') or 'smallseg'
        settings = dict(project=project, tags=list(self.settings.get('tags') or []),
                        name=self.name if self.kind == 'train' else f'{self.name} test',
                        kind=self.kind)
        before = os.environ.get('CLEARML_CACHE_DIR')
        if self.mode == 'offline':  # read by Task.init: where the session goes
            os.environ['CLEARML_CACHE_DIR'] = str(self.cache_dir)
        try:
            self.task = call_with_timeout(
                lambda: ops.init_task(self.mode, continue_id, settings),
                INIT_BUDGET_S if self.mode == 'online' else CALL_BUDGET_S)
        finally:
            os.environ.pop('CLEARML_CACHE_DIR', None)
            os.environ.update({} if before is None else {'CLEARML_CACHE_DIR': before})
        session = self.session = (self.cache_dir / 'offline' / self.task.id
                                  if self.mode == 'offline' else None)
        if self.kind == 'train':  # what tools/test.py and --resume continue
            (self.work_dir / TASK_FILE).write_text(json.dumps(dict(
                id=self.task.id, mode=self.mode, name=self.name, project=project,
                cache_dir=str(self.cache_dir), previous_online_id=self.previous_online_id,
                session_dir=str(session) if session else None,
                zip=f'{session}.zip' if session else None,
                host=self.server.host if self.server else None), indent=2) + '\n')
        atexit.register(self.finish)  # after ClearML's exit hook, so it runs first: bounded
        where = f'offline in {session}' if session else f'online at {self.server.host}'
        print_log(f'ClearML: task {self.task.id} ({self.kind}) logging {where}', 'current')

    def check_server(self) -> None:
        """Online: check the server (bounded); no answer -> switch to offline."""
        if self.mode == 'online' and (problem := check_server(self.server)):
            self._fallback(f'server {self.server.host} {problem}')

    def finish(self, artifacts: Optional[dict[str, str | Path]] = None) -> None:
        """Upload ``artifacts`` ({name: file}) and the result files, close the task (bounded),
        print its web page or the offline zip and its import command."""
        if self.finished:
            return
        atexit.unregister(self.finish)
        for name, path in {'run_info': self.work_dir / RUN_INFO,
                           'training_curves': self.work_dir / 'training_curves.png',
                           'eda_summary': Path('eda_results/eda_summary.json'),
                           **(artifacts or {})}.items():
            if path and Path(path).is_file():
                self.log('artifact', name, str(Path(path).resolve()))
        self.finished, task, session = True, self.task, self.session
        self._journal.clear()
        if task is None:
            return
        try:
            if session is not None:
                ops.close_offline(task, session, OFFLINE_CLOSE_BUDGET_S)
            else:
                call_with_timeout(task.close, CLOSE_BUDGET_S)
        except Exception as exc:  # noqa: BLE001
            self.warn(f'ClearML: closing the task did not finish ({exc}); the run itself is '
                      'complete')
            return ops.clearml_internals(task, detach='closing' if session else 'lost')
        if session is not None:
            prev = f", previous_task_id='{self.previous_online_id}'" * bool(
                self.previous_online_id)
            return print_log(f'ClearML offline session: {session}.zip\nimport it into a ClearML '
                             f'server with:\n  python -c "from clearml import Task; '
                             f"Task.import_offline_session('{session}.zip'{prev})\"", 'current')
        page = task.id
        with suppress(Exception):
            page = task.get_output_log_web_page() or page
        print_log(f'ClearML task: {page}', 'current')
