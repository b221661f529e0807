"""ClearML tracking with the real ClearML client (no mocks): offline sessions read back from
disk, a closed port, bad credentials, a silent server, and a server lost in the middle of a
run (a small stand-in for the ClearML API on 127.0.0.1). HOME and CLEARML_CONFIG_FILE point
into tmp folders: the user's ~/clearml.conf is never read or written."""
from __future__ import annotations

import base64
import inspect
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

from smallseg import tracking
from smallseg.apis.test import build_test_cfg, evaluate
from smallseg.apis.train import build_train_cfg, train

from conftest import TINY, tiny_options

pytestmark = pytest.mark.slow

CONFIG = 'configs/unet_r34.py'
CLASSES = ('background', 'round', 'angular')
CLEARML_ENV = ('CLEARML_API_HOST', 'CLEARML_API_ACCESS_KEY', 'CLEARML_API_SECRET_KEY',
               'CLEARML_WEB_HOST', 'CLEARML_FILES_HOST', 'CLEARML_CACHE_DIR',
               'CLEARML_OFFLINE_MODE', tracking.ENV_MODE)


def options(mode: str) -> dict:
    """Tiny runs: one training iteration, 4 val images, and the ClearML mode."""
    return {**tiny_options(), 'train_dataloader.dataset.indices': 4,
            'val_dataloader.dataset.indices': 4, 'clearml.mode': mode}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def clearml_warnings(text: str) -> list[str]:
    """Warning/error lines about ClearML (and ClearML's retries, tracebacks through it)."""
    lines = text.splitlines()
    found = []
    for i, line in enumerate(lines):
        low = line.lower()
        if low.startswith('traceback'):
            if any('clearml' in later.lower() or 'tracking' in later
                   for later in lines[i + 1:i + 20]):
                found.append(line)
        elif 'clearml' in low and any(m in low for m in ('warning', 'error', 'retrying')):
            found.append(line)
    return found


def read_session(zip_path: Path) -> tuple[zipfile.ZipFile, dict, list[dict]]:
    """The offline session as ClearML wrote it: the zip, task.json and the metric events."""
    zf = zipfile.ZipFile(zip_path)
    task = json.loads(zf.read('task.json'))
    events = [e for line in zf.read('metrics.jsonl').decode().splitlines() if line.strip()
              for e in json.loads(line)]
    return zf, task, events


def scalars(events: list[dict]) -> dict[tuple[str, str], dict[int, float]]:
    out: dict = {}
    for e in events:
        if e['type'] == 'training_stats_scalar':
            out.setdefault((e['metric'], e['variant']), {})[e['iter']] = e['value']
    return out


@pytest.fixture(scope='module')
def clearml_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A throw-away HOME and clearml.conf; no CLEARML_* or SMALLSEG_CLEARML from outside."""
    home = tmp_path_factory.mktemp('home')
    (home / 'clearml.conf').write_text('')
    mp = pytest.MonkeyPatch()
    mp.setenv('HOME', str(home))
    mp.setenv('CLEARML_CONFIG_FILE', str(home / 'clearml.conf'))
    for name in CLEARML_ENV:
        mp.setenv(name, '')  # recorded, so undo() restores the outside values
        mp.delenv(name)
    yield home
    mp.undo()
    for name in ('CLEARML_OFFLINE_MODE', 'TRAINS_OFFLINE_MODE'):  # set by ClearML offline
        os.environ.pop(name, None)


# -- a stand-in for the ClearML API server (enough for Task.init, reports and close) ---------
class _Api(BaseHTTPRequestHandler):
    calls: list[str] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.do_POST()

    def do_POST(self) -> None:
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length) if length else b''
        action = self.path.split('?')[0].strip('/').split('/')[-1]
        self.calls.append(action)
        try:
            req = json.loads(body) if body[:1] in (b'{', b'[') else {}
        except ValueError:
            req = {}
        auth = self.headers.get('Authorization', '')
        if action == 'auth.login':
            if auth.startswith('Basic ') and base64.b64decode(auth[6:]) != b'key:secret':
                return self._reply(401, {})
            import jwt
            token = jwt.encode({'exp': int(time.time()) + 3600, 'api_version': '2.30',
                                'server_version': '1.16.0', 'env': 'test',
                                'identity': {'user': 'u', 'company': 'c'}}, 'k',
                               algorithm='HS256')
            return self._reply(200, {'token': token})
        def task(task_id: str) -> dict:
            return {'id': task_id, 'name': 'run', 'status': 'in_progress', 'project': 'p',
                    'type': 'training', 'execution': {}, 'script': {}, 'hyperparams': {},
                    'configuration': {}, 'system_tags': [], 'tags': [], 'runtime': {},
                    'last_iteration': 0, 'models': {'input': [], 'output': []}, 'output': {},
                    'comment': ''}

        data = {'tasks.get_by_id': {'task': task(req.get('task') or 'x')},
                'tasks.get_all': {'tasks': [task(i) for i in req.get('id') or []]},
                'projects.get_all': {'projects': [{'id': 'p', 'name': 'smallseg'}]},
                'projects.get_by_id': {'project': {'id': 'p', 'name': 'smallseg'}},
                'models.get_all': {'models': []},
                'models.get_by_id': {'model': {'id': req.get('model'), 'name': 'm', 'uri': '',
                                               'ready': False}}}.get(action)
        if data is None:
            data = {'id': uuid.uuid4().hex} if action.endswith('.create') else {'updated': 1}
        self._reply(200, data)

    def _reply(self, code: int, data: dict) -> None:
        out = json.dumps({'meta': {'id': 'm', 'trx': 't', 'result_code': code,
                                   'result_subcode': 0, 'result_msg': 'OK',
                                   'endpoint': {'name': '', 'requested_version': '2.30',
                                                'actual_version': '2.30'}},
                          'data': data}).encode()
        self.send_response(code)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(out)))
        self.end_headers()
        self.wfile.write(out)


@pytest.fixture
def api_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(('127.0.0.1', 0), _Api)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _point_at(host: str, secret: str = 'secret') -> dict[str, str]:
    """The environment that points ClearML at ``host``."""
    return dict(CLEARML_API_HOST=host, CLEARML_WEB_HOST=host, CLEARML_FILES_HOST=host,
                CLEARML_API_ACCESS_KEY='key', CLEARML_API_SECRET_KEY=secret)


def _env(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)


# -- mode resolution (no training) -------------------------------------------------------------
def test_mode_resolution(clearml_home: Path, monkeypatch: pytest.MonkeyPatch,
                         api_server: ThreadingHTTPServer) -> None:
    assert tracking.resolve_mode('auto') == ('offline', None, None)  # nothing configured
    assert tracking.resolve_mode('off')[0] == 'off'
    mode, _, warning = tracking.resolve_mode('online')
    assert mode == 'offline' and 'credentials' in warning
    # credentials from a clearml.conf (what clearml-init writes), server answering
    host = f'http://127.0.0.1:{api_server.server_address[1]}'
    conf = clearml_home / 'with_server.conf'
    conf.write_text('api {\n  api_server: "%s"\n  credentials {\n    access_key: "key"\n'
                    '    secret_key: "secret"\n  }\n}\n' % host)
    monkeypatch.setenv('CLEARML_CONFIG_FILE', str(conf))
    mode, server, warning = tracking.resolve_mode('auto')
    assert (mode, warning) == ('online', None)
    assert server == (host, 'key', 'secret')
    # bad credentials (the environment wins over the file)
    _env(monkeypatch, _point_at(host, secret='wrong'))
    mode, _, warning = tracking.resolve_mode('auto')
    assert mode == 'offline' and 'rejected the credentials' in warning
    # precedence: --clearml > $SMALLSEG_CLEARML > config
    monkeypatch.setenv(tracking.ENV_MODE, 'off')
    assert tracking.requested_mode('auto') == 'off'
    tracking.set_mode('offline')
    try:
        assert tracking.requested_mode('auto') == 'offline'
    finally:
        tracking.set_mode(None)


def test_silent_server_costs_seconds_not_minutes(clearml_home: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as listener:  # accepts connections (backlog), never answers
        listener.bind(('127.0.0.1', 0))
        listener.listen(8)
        _env(monkeypatch, _point_at(f'http://127.0.0.1:{listener.getsockname()[1]}'))
        start = time.perf_counter()
        mode, _, warning = tracking.resolve_mode('auto')
        elapsed = time.perf_counter() - start
    print(f'silent server: offline after {elapsed:.1f} s')
    assert mode == 'offline' and 'not reachable' in warning
    assert elapsed < 2 * tracking.CHECK_TIMEOUT_S + 2


LOST = """
import json, os, sys, threading, time, uuid
from http.server import ThreadingHTTPServer
from mmengine.config import Config
from mmengine.logging import MMLogger
from test_clearml import _Api, _point_at
from smallseg import tracking
server = ThreadingHTTPServer(('127.0.0.1', 0), _Api)
threading.Thread(target=server.serve_forever, daemon=True).start()
os.environ.update(_point_at(f'http://127.0.0.1:{server.server_address[1]}'))
os.environ.pop(tracking.ENV_MODE)  # set to 'off' by conftest
MMLogger.get_instance(f'lost-{uuid.uuid4().hex}')  # the 'current' logger
cfg = Config(dict(work_dir=sys.argv[1], clearml=dict(mode='auto', task_name='lost')))
tracker = tracking.tracker_for(cfg)
tracker.start('train')
online = tracker.mode
tracker.log('params', 'Hyperparameters', {'lr': 0.1})
tracker.log('scalars', [('loss', 'train', 1.0, 1)])
server.shutdown()
server.server_close()
start = time.perf_counter()
tracker.check_server()  # what ClearMLHook does after each epoch
switch_s = time.perf_counter() - start
after = tracker.mode
tracker.log('scalars', [('loss', 'train', 0.5, 2)])
tracker.finish()
print('RESULT', json.dumps(dict(online=online, after=after, switch_s=switch_s)))
"""


def test_server_lost_mid_run_switches_to_offline_keeping_everything(tmp_path: Path) -> None:
    # a fresh process: online logging needs one that never went offline
    env = {k: v for k, v in os.environ.items() if not k.startswith(('CLEARML_', 'TRAINS_'))}
    env.update(HOME=str(tmp_path), CLEARML_CONFIG_FILE=str(tmp_path / 'clearml.conf'),
               PYTHONPATH=str(Path(__file__).parent))
    (tmp_path / 'clearml.conf').write_text('')
    env.pop(tracking.ENV_MODE, None)
    work = tmp_path / 'work'
    work.mkdir()
    proc = subprocess.run([sys.executable, '-c', LOST, str(work)], capture_output=True,
                          text=True, timeout=180, env=env, cwd=Path(__file__).parents[1])
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.split('RESULT ')[-1])
    print(f"server lost: offline after {result['switch_s']:.1f} s")
    assert (result['online'], result['after']) == ('online', 'offline')
    assert result['switch_s'] < 15
    info = json.loads((work / tracking.TASK_FILE).read_text())
    assert info['mode'] == 'offline'
    _, task, events = read_session(Path(info['zip']))
    assert scalars(events)[('loss', 'train')] == {1: 1.0, 2: 0.5}  # before and after
    assert task['hyperparams']['Hyperparameters']['lr']['value'] == '0.1'
    warnings = clearml_warnings(proc.stdout + proc.stderr)
    assert len(warnings) == 1 and 'switching to offline' in warnings[0], warnings


def test_clearml_internals_exist() -> None:
    """The private ClearML names smallseg.tracking.session.clearml_internals uses (the
    instance attributes are exercised by the lost-server and offline-run tests)."""
    from clearml import Task
    from clearml.backend_interface.base import InterfaceBase
    assert isinstance(InterfaceBase.__dict__['_send'], classmethod)
    assert '_offline_mode' in InterfaceBase.__dict__
    for name in ('_report_subprocess_enabled', '_at_exit', '_Task__update_master_pid_task',
                 '_Task__main_task', '_Task__forked_proc_main_pid'):
        assert hasattr(Task, name), name
    from clearml import logger
    from clearml.backend_interface.metrics import interface
    from clearml.backend_interface.task import Task as BackendTask, log
    source = ''.join(inspect.getsource(m) for m in (Task, BackendTask, log, interface, logger))
    for name in ('self._offline_dir', 'self._offline_output_models', 'self._dev_worker',
                 'self._resource_monitor', 'self.__reporter', 'self._metrics_manager',
                 'self._logger', '_offline_log_filename', '_task_handler', '_background_log'):
        assert name in source, name


RACE = """
from clearml.backend_api import Session
from clearml.backend_api.services import tasks
from clearml.backend_interface.base import InterfaceBase
from smallseg.tracking.session import clearml_internals
clearml_internals(detach='lost')  # the patch, and the process goes offline
InterfaceBase._offline_mode = False  # a request that checked before the switch
session = object.__new__(Session)
session._offline_mode = True  # the session went offline meanwhile
print('result', InterfaceBase._send(session=session, req=tasks.GetByIdRequest(task='x')))
"""


def test_request_in_flight_when_going_offline_gives_up() -> None:
    # unpatched, ClearML 2.1.12 prints a traceback in a tight loop forever (CI ran 10x slower)
    env = {k: v for k, v in os.environ.items() if not k.startswith(('CLEARML_', 'TRAINS_'))}
    proc = subprocess.run([sys.executable, '-c', RACE], capture_output=True, text=True,
                          timeout=60, env=env)
    assert proc.returncode == 0 and 'Traceback' not in proc.stderr, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith('result None')


NO_NETWORK = """
import socket, sys, threading
from pathlib import Path
looked_up = []
lookup = socket.getaddrinfo
def spy(host, *args, **kwargs):
    looked_up.append(host)
    return lookup(host, *args, **kwargs)
socket.getaddrinfo = spy
from smallseg.tracking import session
root = Path(sys.argv[1])
task = session.init_task('offline', None, dict(
    project='p', name='n', tags=[], kind='train'))
task.get_logger().report_scalar('loss', 'train', 1.0, 0)
session.close_offline(task, root / 'offline' / task.id, 30.0)
for thread in threading.enumerate():  # ClearML's helper threads: let them finish
    if thread is not threading.current_thread():
        thread.join(timeout=5.0)
print('looked up', sorted(set(map(str, looked_up))))
"""


def test_offline_session_sends_nothing_to_the_network(tmp_path: Path) -> None:
    # ClearML's update check asked DNS for updates.clear.ml from every offline session
    env = {k: v for k, v in os.environ.items() if not k.startswith(('CLEARML_', 'TRAINS_'))}
    env['CLEARML_CACHE_DIR'] = str(tmp_path)
    proc = subprocess.run([sys.executable, '-c', NO_NETWORK, str(tmp_path)], capture_output=True,
                          text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == 'looked up []', proc.stdout[-1000:]
    assert list((tmp_path / 'offline').glob('*.zip')), 'no offline session was written'


RANDOM_STATE = """
import numpy as np, torch
from smallseg.tracking import session
def draw():  # python's random is left out: ClearML draws from it (ids), it does not reseed it
    return float(np.random.rand()), float(torch.rand(1))
def seed():
    np.random.seed(7), torch.manual_seed(7)
seed()
expected = draw()
seed()
session.init_task('offline', None, dict(project='p', name='n', tags=[], kind='train'))
print('same draws', draw() == expected)
"""


def test_a_task_leaves_the_random_state_alone(tmp_path: Path) -> None:
    # ClearML's Task.init reseeds the global generators, so unseeded runs after it repeated
    env = {k: v for k, v in os.environ.items() if not k.startswith(('CLEARML_', 'TRAINS_'))}
    env['CLEARML_CACHE_DIR'] = str(tmp_path)
    proc = subprocess.run([sys.executable, '-c', RANDOM_STATE], capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'same draws True' in proc.stdout.splitlines(), proc.stdout[-1000:]


# -- a real run, offline ------------------------------------------------------------------------
@pytest.fixture(scope='module')
def offline_run(tiny_data: Path, clearml_home: Path,
                tmp_path_factory: pytest.TempPathFactory) -> dict:
    work = tmp_path_factory.mktemp('offline') / 'unet_r34'
    cfg, info = build_train_cfg(CONFIG, work_dir=str(work), data_root=str(tiny_data), epochs=1,
                                pretrained=None, cfg_options=options('offline'))
    info = train(cfg, info)  # closes the task: run_info.json is an artifact
    test_cfg = build_test_cfg(CONFIG, info['best_checkpoint'], data_root=str(tiny_data),
                              work_dir=str(work / 'test'),
                              cfg_options={'img_size': (TINY, TINY),
                                           'clearml.mode': 'offline'})
    metrics = evaluate(test_cfg)  # logs into the training run's task (clearml_task.json)
    results = work / 'test_metrics.json'
    results.write_text(json.dumps(metrics))
    tracking.finish_tracking({'test_metrics': results})
    return dict(work=work, info=info, metrics=metrics,
                task_file=json.loads((work / tracking.TASK_FILE).read_text()))


def test_offline_session_holds_the_whole_run(offline_run: dict,
                                            api_server: ThreadingHTTPServer) -> None:
    from clearml import Task
    work, info = offline_run['work'], offline_run['info']
    task_file = offline_run['task_file']
    assert task_file['mode'] == 'offline'
    zip_path = Path(task_file['zip'])
    assert zip_path.parent.parent == work / 'clearml' and zip_path.is_file()
    zf, task, events = read_session(zip_path)
    names = zf.namelist()
    assert task['id'] == task_file['id'] and task['name'] == 'unet_r34'
    # config and editable hyper-parameters
    assert 'UNetHead' in task['configuration']['config']['value']
    assert 'test config' in task['configuration']
    hyper = task['hyperparams']['Hyperparameters']
    assert hyper['optimizer/type']['value'] == 'AdamW'
    assert float(hyper['optimizer/lr']['value']) == pytest.approx(1e-3)
    assert hyper['model/decode_head']['value'] == 'UNetHead'
    props = task['hyperparams']['properties']
    assert {'git_commit', 'git_dirty', 'host', 'python', 'torch', 'cpu_count'} <= set(props)
    assert 'torch==' in task['script']['requirements']['pip']  # pip freeze
    assert (task['script']['version_num'] or 'unknown') == props['git_commit']['value']
    assert not re.search(r'//[^/@]*@', task['script']['repository'])  # no user:token@
    # per-epoch scalars: train loss, learning rate, val mDice, per-class val Dice/IoU
    curves = scalars(events)
    assert set(curves[('loss', 'train')]) == {1}
    assert curves[('learning rate', 'lr')][1] == pytest.approx(1e-3 * 0.05)  # warm-up start
    assert curves[('mDice', 'val')][1] == pytest.approx(info['best_val_mdice'] * 100, abs=0.01)
    for cls in CLASSES:
        assert 1 in curves[('val Dice per class', cls)]
        assert 1 in curves[('val IoU per class', cls)]
    # test metrics, in the same task (percent, as mmengine logs them)
    test_mdice = offline_run['metrics']['mDice'] * 100
    assert curves[('mDice', 'test')][1] == pytest.approx(test_mdice, abs=0.01)
    assert curves[('Summary', 'test mDice')][-2 ** 31] == pytest.approx(test_mdice, abs=0.01)
    assert any(e['type'] == 'plot' and e['metric'] == 'test confusion matrix' for e in events)
    # prediction pictures: image | truth | prediction, stored in the session
    pictures = [e for e in events if e['type'] == 'training_debug_image'
                and e['metric'] == 'val predictions']
    assert 1 <= len(pictures) <= 4
    assert any('val predictions' in n and n.endswith('.jpeg') for n in names)
    # the best checkpoint as output model, stored uncompressed in the zip
    model = task['offline_output_models'][0]
    ckpt = Path(info['best_checkpoint'])
    assert Path(model['weights']['weights_filename']).name == ckpt.name
    assert model['init']['label_enumeration'] == {c: i for i, c in enumerate(CLASSES)}
    entry = zf.getinfo(f'models/{ckpt.name}')
    assert entry.compress_type == zipfile.ZIP_STORED and entry.file_size == ckpt.stat().st_size
    # artifacts: run info (written after training) and the test metrics
    artifacts = {a['key'] for a in task['execution']['artifacts']}
    assert {'run_info', 'test_metrics'} <= artifacts
    assert any(n.endswith('artifacts/run_info/run_info.json') for n in names)
    # the run ends with the session's path and the command that imports it, which works
    log = next(work.glob('*/*.log')).read_text()
    assert f"Task.import_offline_session('{zip_path}')" in log
    assert 'session_folder_zip' in inspect.signature(Task.import_offline_session).parameters
    command = re.findall(r'python -c "(.+)"', log)[-1]
    host = f'http://127.0.0.1:{api_server.server_address[1]}'
    env = {k: v for k, v in os.environ.items() if not k.endswith('_OFFLINE_MODE')}  # new shell
    env.update(CLEARML_API_HOST=host, CLEARML_WEB_HOST=host, CLEARML_FILES_HOST=host,
               CLEARML_API_ACCESS_KEY='key', CLEARML_API_SECRET_KEY='secret')
    _Api.calls.clear()
    done = subprocess.run([sys.executable, '-c', command], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert {'tasks.create', 'models.create', 'events.add_batch'} <= set(_Api.calls)


# -- a closed port: one warning, offline, training goes on -------------------------------------
def _timed_train(tiny_data: Path, work: Path, mode: str) -> tuple[float, dict]:
    start = time.perf_counter()
    cfg, info = build_train_cfg(CONFIG, work_dir=str(work), data_root=str(tiny_data), epochs=1,
                                pretrained=None, cfg_options=options(mode))
    info = train(cfg, info)
    return time.perf_counter() - start, info


def test_closed_port_costs_one_warning_and_seconds(
        tiny_data: Path, clearml_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture, offline_run: dict) -> None:
    off_s, _ = _timed_train(tiny_data, tmp_path / 'off', 'off')
    assert not (tmp_path / 'off' / 'clearml').exists()
    port = free_port()  # nobody listens there
    _env(monkeypatch, _point_at(f'http://127.0.0.1:{port}', secret='not-a-real-secret'))
    capfd.readouterr()
    closed_s, info = _timed_train(tiny_data, tmp_path / 'closed', 'auto')
    work = Path(info['work_dir'])
    # training went to the end with its checkpoints and metrics
    assert info['epochs'] == 1 and info['best_val_mdice'] is not None
    assert Path(info['best_checkpoint']).is_file() and (work / 'run_info.json').is_file()
    assert next(work.glob('*/vis_data/scalars.json')).read_text().count('mDice') >= 1
    out = capfd.readouterr()
    warnings = clearml_warnings(out.out + out.err)
    assert len(warnings) == 1, warnings  # exactly one line, naming the server
    assert f'127.0.0.1:{port} is not reachable' in warnings[0] and 'offline' in warnings[0]
    # the test run logs into the training run's (offline) task, with its own one warning
    metrics = evaluate(build_test_cfg(CONFIG, info['best_checkpoint'], data_root=str(tiny_data),
                                      work_dir=str(work / 'test'),
                                      cfg_options={'img_size': (TINY, TINY)}))
    tracking.finish_tracking()
    assert 0.0 <= metrics['mDice'] <= 1.0
    out = capfd.readouterr()
    assert len(clearml_warnings(out.out + out.err)) == 1
    with capfd.disabled():  # shown in the test output
        print(f'\nclosed port: training {closed_s:.1f} s vs {off_s:.1f} s with ClearML off '
              f'({closed_s - off_s:+.1f} s)')
    task_file = json.loads((work / tracking.TASK_FILE).read_text())
    assert task_file['mode'] == 'offline' and Path(task_file['zip']).is_file()
    assert closed_s - off_s < 30  # generous: measured a few seconds (printed above)
