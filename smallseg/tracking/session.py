"""The ClearML calls behind a run's task: server check, open, the logging operations its journal
replays (``OPS``), close. Any may block or raise: the tracker gives each a time budget."""
from __future__ import annotations

import atexit
import base64
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from contextlib import suppress
from pathlib import Path
from types import SimpleNamespace
from typing import Any, NamedTuple, Optional, Sequence

import numpy as np
import torch

from smallseg.utils.palette import decode_png
from smallseg.utils.provenance import code_version, installed_packages
from smallseg.utils.run_info import device_name
from smallseg.utils.timeout import call_with_timeout

CHECK_TIMEOUT_S = 3.0  # server check (login), per socket operation
# nothing patched, no repository scan (it asks updates.clear.ml): smallseg logs git and pip
FRAMEWORKS_OFF = dict.fromkeys((
    'pytorch matplotlib tensorflow tensorboard tfdefines hydra scikit joblib megengine xgboost '
    'catboost fastai lightgbm gradio jsonargparse detect_repository').split(), False)


class Server(NamedTuple):
    """Where and as whom to log online."""
    host: str
    access_key: str
    secret_key: str


def find_server() -> Optional[Server]:
    """The configured server and credentials (environment first, then clearml.conf), or None."""
    env = {k: os.environ.get(f'CLEARML_API_{k}') for k in ('HOST', 'ACCESS_KEY', 'SECRET_KEY')}
    path = Path(os.environ.get('CLEARML_CONFIG_FILE') or '~/clearml.conf').expanduser()
    api: dict = {}
    if path.is_file():
        from clearml.utilities.pyhocon import ConfigFactory
        api = ConfigFactory.parse_file(str(path)).get('api', {}) or {}
    creds = api.get('credentials', {}) or {}
    key = env['ACCESS_KEY'] or creds.get('access_key')
    secret = env['SECRET_KEY'] or creds.get('secret_key')
    if not (key and secret):
        return None
    host = env['HOST'] or api.get('api_server') or api.get('host') or 'https://api.clear.ml'
    return Server(str(host).rstrip('/'), str(key), str(secret))


def check_server(server: Server) -> Optional[str]:
    """None when the server accepts a login within seconds, else why not."""
    token = base64.b64encode(f'{server.access_key}:{server.secret_key}'.encode()).decode()
    request = urllib.request.Request(f'{server.host}/auth.login', b'{}', method='POST', headers={
        'Content-Type': 'application/json', 'Authorization': f'Basic {token}'})

    def login() -> None:
        urllib.request.urlopen(request, timeout=CHECK_TIMEOUT_S).close()

    try:  # the budget covers DNS, connect and read, whatever happens
        call_with_timeout(login, 2 * CHECK_TIMEOUT_S + 1)
    except urllib.error.HTTPError as exc:
        return 'rejected the credentials' if exc.code in (401, 403) else f'answered HTTP {exc.code}'
    except OSError as exc:  # URLError and TimeoutError included
        why = getattr(exc, 'reason', exc)
        return f'is not reachable ({getattr(why, "strerror", None) or why or type(exc).__name__})'
    return None


def init_task(mode: str, continue_id: Optional[str], settings: dict) -> Any:
    """``Task.init`` with ``settings`` (project, name, tags, kind), or ``continue_id`` reopened;
    a new or training task gets git commit, pip freeze and machine."""
    from clearml import Task
    from clearml.config import get_offline_dir
    logging.getLogger('clearml').setLevel(logging.ERROR)  # the run prints one warning
    models = []
    if mode == 'offline':
        Task.set_offline(True)
        task_file = get_offline_dir(continue_id) / 'task.json' if continue_id else None
        if task_file and task_file.is_file():
            models = json.loads(task_file.read_text()).get('offline_output_models') or []
    elif Task.is_offline():
        raise RuntimeError('this process already logs offline')
    clearml_internals()
    Task.set_random_seed(None)  # else Task.init reseeds random, numpy and torch with one seed
    task = Task.init(
        project_name=settings['project'], task_name=settings['name'], tags=settings['tags'],
        task_type='training' if settings['kind'] == 'train' or continue_id else 'testing',
        reuse_last_task_id=continue_id or False, continue_last_task=0 if continue_id else False,
        auto_connect_arg_parser=False, auto_connect_frameworks=FRAMEWORKS_OFF,
        auto_resource_monitoring=mode == 'online')
    for name in [n for n in logging.root.manager.loggerDict if n.startswith('clearml')]:
        logging.getLogger(name).setLevel(logging.ERROR)
    clearml_internals(task, models=models)
    if settings['kind'] == 'train' or not continue_id:
        code, pip = code_version(), '\n'.join(installed_packages())
        task.update_task({'script': {
            'repository': code['remote'], 'branch': code['branch'], 'version_num': code['commit'],
            'requirements': {'pip': pip}}})
        task.set_user_properties(
            **{f'git_{k}': 'unknown' if v in ('', None) else str(v) for k, v in code.items()},
            host=platform.node(), platform=platform.platform(), device=device_name(),
            cpu_count=str(os.cpu_count()), python=platform.python_version(),
            torch=torch.__version__, command=' '.join(sys.argv))
    return task


def clearml_internals(task: Any = None, models: Sequence[dict] = (), weights: tuple = (),
                      detach: Optional[str] = None) -> None:
    """Every private ClearML attribute smallseg uses (clearml 2.1); reports go through a thread.
    ``models``: output models a reopened offline session forgot; ``weights``: ``(model, file,
    iteration)`` of an offline output model; ``detach``: let go of ``task``, 'closing' (its close
    ran out of time) or 'lost' (server gone: the process goes offline, its threads stop)."""
    from clearml import Task
    from clearml.backend_interface.base import InterfaceBase
    Task._report_subprocess_enabled = False
    if models:
        task._offline_output_models.extend(models)
    if weights:
        weights[0]._update_weights_offline(weights_filename=weights[1], iteration=weights[2])
    if detach and task is not None:
        atexit.unregister(task._at_exit)
        if Task.current_task() is task:  # what close() does after its (unbounded) flush
            Task._Task__update_master_pid_task(task=None)
            Task._Task__forked_proc_main_pid = Task._Task__main_task = None
    if detach != 'lost':
        return
    original = InterfaceBase.__dict__['_send']
    if not getattr(original, 'smallseg', False):
        # clearml 2.1.12 checks offline mode once, then retries `while True`: a request in
        # flight when the process goes offline gets None and loops on `res.meta` forever
        def _send(cls: Any, session: Any, req: Any, *args: Any, **kwargs: Any) -> Any:
            def send(*a: Any, **k: Any) -> Any:  # `session.send` is all it uses
                if (result := session.send(*a, **k)) is None:
                    raise _WentOffline
                return result
            try:
                return original.__func__(cls, SimpleNamespace(send=send), req, *args, **kwargs)
            except _WentOffline:
                return None
        _send.smallseg = True  # type: ignore[attr-defined]
        InterfaceBase._send = classmethod(_send)
    Task.set_offline(True)
    if task is not None:
        task._offline_dir = scratch = Path(tempfile.mkdtemp(prefix='clearml-detached-'))
        task._metrics_manager._offline_log_filename = scratch / 'metrics.jsonl'
        task._logger._task_handler._background_log._offline_log_filename = scratch / 'log'
        for stop in filter(None, (getattr(task._dev_worker, 'unregister', None),
                                  getattr(task._resource_monitor, 'stop', None),
                                  getattr(task._Task__reporter, 'stop', None))):
            with suppress(Exception):
                call_with_timeout(stop, 3.0)
        task._dev_worker = task._resource_monitor = None


class _WentOffline(BaseException):
    """Raised past ClearML's ``except Exception`` retry loop."""


def close_offline(task: Any, session: Path, budget: float) -> None:
    """Close an offline task; its weights join the session zip uncompressed (deflating a
    100 MB checkpoint costs seconds and saves a few percent)."""
    models, parked = session / 'models', session.parent / f'{session.name}.models'
    shutil.rmtree(parked, ignore_errors=True)  # a previous close that was cut short
    if models.is_dir():
        models.rename(parked)
    try:
        call_with_timeout(task.close, budget)
    finally:
        if parked.is_dir():
            parked.rename(models)
    if models.is_dir() and Path(f'{session}.zip').is_file():
        with zipfile.ZipFile(f'{session}.zip', 'a', zipfile.ZIP_STORED, allowZip64=True) as zf:
            for path in sorted(p for p in models.iterdir() if p.is_file()):
                zf.write(path, f'models/{path.name}')


def _model(task: Any, path: str, name: str, iteration: int, labels: dict) -> None:
    from clearml import OutputModel  # no model design: the task holds the config
    model = OutputModel(task=task, name=name, framework='PyTorch', label_enumeration=labels)
    if task.is_offline():
        return clearml_internals(weights=(model, path, iteration))
    model.update_weights(weights_filename=path, auto_delete_file=False, iteration=iteration)


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda v: getattr(v, 'tolist', v.__str__)()))


OPS = {  # replayable logging operations: plain arguments (pictures as PNG bytes)
    'scalars': lambda task, rows: [task.get_logger().report_scalar(
        title, series, float(value), int(step)) for title, series, value, step in rows],
    'single': lambda task, pairs: [task.get_logger().report_single_value(name, value)
                                   for name, value in pairs],
    'image': lambda task, title, series, png, step: task.get_logger().report_image(
        title, series, step, image=decode_png(png)),
    'confusion': lambda task, matrix, labels, step: task.get_logger().report_confusion_matrix(
        'test confusion matrix', 'test', np.asarray(matrix, float), step, xaxis='predicted',
        yaxis='truth', xlabels=labels, ylabels=labels),
    'params': lambda task, name, params: task.connect(_plain(params), name=name),
    'config': lambda task, name, config: task.connect_configuration(_plain(config), name=name),
    'properties': lambda task, props: task.set_user_properties(
        **{k: str(v) for k, v in props.items()}),
    'artifact': lambda task, name, path: task.upload_artifact(
        name, artifact_object=Path(path), wait_on_upload=False),
    'model': _model}
