"""ImageNet encoder weights: a local file, the torch hub cache, a download (from a loopback
server here), or from scratch with a warning; the fine-tuning configs."""
from __future__ import annotations

import hashlib
import http.server
import io
import json
import runpy
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Iterator, Optional

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmseg.registry import MODELS

from smallseg.apis.config import load_config
from smallseg.utils.errors import UserError
from smallseg.apis.pretrained import resolve_pretrained
from smallseg.apis.recipes import recipe_of
from smallseg.apis.test import settle_auto
from smallseg.apis.train import build_train_cfg, train
from smallseg.apis.weights import TORCHVISION_FILES, WeightsError, hub_checkpoint_dir

from conftest import tiny_options


def fake_imagenet_resnet34(path: Path, config: str = 'configs/unet_r34.py') -> dict:
    """A torchvision-style ResNet state dict (conv1/bn1/layer*/fc keys) of ``config``'s
    backbone, random values."""
    cfg = Config.fromfile(config)
    backbone = MODELS.build(dict(cfg.model.backbone, init_cfg=None))
    state = {k: torch.randn_like(v) if v.is_floating_point() else v
             for k, v in backbone.state_dict().items()}
    state['fc.weight'] = torch.randn(1000, backbone.feat_dim)  # the classifier, ignored
    torch.save(state, path)
    return state


def build_model(cfg: Config) -> torch.nn.Module:
    settle_auto(cfg, None)  # 'auto' values as test and inference settle them without a record
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


@pytest.mark.parametrize('config', ['configs/unet_r34.py', 'configs/deeplabv3plus_r50.py',
                                    'configs/unet_r34_seed.py'])
def test_local_file_is_loaded(tmp_path: Path, config: str) -> None:
    weights = tmp_path / 'resnet.pth'
    state = fake_imagenet_resnet34(weights, config)
    cfg = Config.fromfile(config)
    info = resolve_pretrained(cfg, str(weights))
    assert info == dict(init='imagenet', checkpoint=str(weights), reason='--pretrained')
    model = build_model(cfg)
    torch.testing.assert_close(model.backbone.layer4[2].conv2.weight,
                               state['layer4.2.conv2.weight'])
    torch.testing.assert_close(model.backbone.conv1.weight, state['conv1.weight'])


def test_auto_finds_torch_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    monkeypatch.setenv('SMALLSEG_WEIGHTS_URL', f'http://127.0.0.1:{closed_port()}')
    cache = tmp_path / 'hub' / 'checkpoints'
    cache.mkdir(parents=True)
    state = fake_imagenet_resnet34(tmp_path / 'fake.pth')
    name = f'resnet34-{hashlib.sha256((tmp_path / "fake.pth").read_bytes()).hexdigest()[:8]}.pth'
    (tmp_path / 'fake.pth').rename(cache / name)  # torchvision's name for this content
    monkeypatch.setitem(TORCHVISION_FILES, 'resnet34', name)
    cfg = Config.fromfile('configs/unet_r34.py')
    info = resolve_pretrained(cfg, 'auto')
    assert info['init'] == 'imagenet' and info['checkpoint'] == str(cache / name)
    model = build_model(cfg)
    torch.testing.assert_close(model.backbone.conv1.weight, state['conv1.weight'])


def test_auto_without_weights_trains_from_scratch(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    monkeypatch.setenv('SMALLSEG_WEIGHTS_URL', f'http://127.0.0.1:{closed_port()}')
    cfg = Config.fromfile('configs/deeplabv3plus_r50.py')
    info = resolve_pretrained(cfg, 'auto')
    assert info['init'] == 'scratch' and 'torchvision://resnet50' in info['reason']
    assert cfg.model.backbone.init_cfg is None
    assert '\n' not in info['warning'] and '--pretrained FILE' in info['warning']
    assert str(tmp_path / 'hub' / 'checkpoints' / 'resnet50-0676ba61.pth') in info['warning']


def test_disabled_and_missing_file(tmp_path: Path) -> None:
    cfg = Config.fromfile('configs/unet_r34.py')
    assert resolve_pretrained(cfg, None)['init'] == 'scratch'
    assert cfg.model.backbone.init_cfg is None
    with pytest.raises(UserError, match='not found'):
        resolve_pretrained(Config.fromfile('configs/unet_r34.py'), str(tmp_path / 'x.pth'))


# --- downloads, from a loopback server only (127.0.0.1) ---------------------------------------

class _Files(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files`` (name -> bytes) and records the requested paths."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.server.requests.append(self.path)
        body = self.server.files.get(self.path.lstrip('/'))
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def weights_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """A file server on 127.0.0.1 as ``$SMALLSEG_WEIGHTS_URL``; the hub cache in tmp_path."""
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Files)
    server.files, server.requests = {}, []
    server.url = f'http://127.0.0.1:{server.server_port}'
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    monkeypatch.setenv('SMALLSEG_WEIGHTS_URL', server.url)
    yield server
    server.shutdown()
    server.server_close()


def serve(server, monkeypatch: pytest.MonkeyPatch, arch: str, data: bytes,
          name: Optional[str] = None) -> str:
    """Serve ``data`` as ``arch``'s torchvision file, named ``<arch>-<sha256[:8]>.pth``."""
    name = name or f'{arch}-{hashlib.sha256(data).hexdigest()[:8]}.pth'
    monkeypatch.setitem(TORCHVISION_FILES, arch, name)
    server.files[name] = data
    return name


def small_state() -> bytes:
    """A small torchvision-style state dict (the stem's keys), serialised."""
    buffer = io.BytesIO()
    torch.save({'conv1.weight': torch.randn(64, 3, 7, 7), 'bn1.weight': torch.ones(64),
                'bn1.bias': torch.zeros(64)}, buffer)
    return buffer.getvalue()


def cache_files() -> list[str]:
    """Everything in the hub cache, temporary files included."""
    folder = hub_checkpoint_dir()
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_auto_downloads_into_the_hub_cache(weights_server, monkeypatch) -> None:
    data = small_state()
    name = serve(weights_server, monkeypatch, 'resnet34', data)
    cfg = Config.fromfile('configs/unet_r34.py')
    info = resolve_pretrained(cfg, 'auto')
    path = hub_checkpoint_dir() / name
    assert info == dict(init='imagenet', checkpoint=str(path),
                        reason=f'torchvision://resnet34: downloaded from '
                               f'{weights_server.url}/{name}')
    assert path.read_bytes() == data and cache_files() == [name]  # no temporary file left
    assert cfg.model.backbone.init_cfg == dict(type='Pretrained', checkpoint=str(path))


def test_second_run_uses_the_cache(weights_server, monkeypatch) -> None:
    name = serve(weights_server, monkeypatch, 'resnet34', small_state())
    resolve_pretrained(Config.fromfile('configs/unet_r34.py'), 'auto')
    info = resolve_pretrained(Config.fromfile('configs/unet_r34.py'), 'auto')
    assert info['checkpoint'] == str(hub_checkpoint_dir() / name)
    assert 'found in the torch hub cache' in info['reason']
    assert weights_server.requests == [f'/{name}']  # one download for the two runs


def test_hash_mismatch_is_an_error(weights_server, monkeypatch) -> None:
    serve(weights_server, monkeypatch, 'resnet34', small_state(), name='resnet34-0badc0de.pth')
    start = time.perf_counter()
    with pytest.raises(WeightsError, match=r'resnet34-0badc0de\.pth: the downloaded file'):
        resolve_pretrained(Config.fromfile('configs/unet_r34.py'), 'auto')
    print(f'\nhash mismatch (download): error after {time.perf_counter() - start:.2f} s')
    assert cache_files() == []  # nothing kept, not even a partial file
    # a corrupt file already in the cache: an error naming it, never loaded
    corrupt = hub_checkpoint_dir() / 'resnet34-0badc0de.pth'
    corrupt.write_bytes(small_state())
    with pytest.raises(WeightsError, match=f'{corrupt} is corrupt'):
        resolve_pretrained(Config.fromfile('configs/unet_r34.py'), 'auto')
    assert weights_server.requests == ['/resnet34-0badc0de.pth']


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_refused_connection_trains_from_scratch(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    monkeypatch.setenv('SMALLSEG_WEIGHTS_URL', f'http://127.0.0.1:{closed_port()}')
    start = time.perf_counter()
    cfg = Config.fromfile('configs/unet_r34.py')
    info = resolve_pretrained(cfg, 'auto')
    took = time.perf_counter() - start
    print(f'\nrefused connection: scratch after {took:.2f} s')
    assert took < 2 and info['init'] == 'scratch' and cfg.model.backbone.init_cfg is None
    assert 'Connection refused' in info['warning'] and '\n' not in info['warning']
    assert cache_files() == []
    with pytest.raises(UserError, match='which this config needs'):  # the fine-tuning configs
        resolve_pretrained(Config.fromfile('configs/unet_r34.py'), 'required')


def test_server_that_never_answers_times_out(tmp_path, monkeypatch) -> None:
    """A server that accepts no connection: the download gives up after ``timeout`` s. (The
    listener closes after 8 s, so a download without a timeout fails here, not hangs.)"""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(1)  # the kernel completes the connection; nobody ever reads or answers
    threading.Timer(8, listener.close).start()
    start = time.perf_counter()
    info = resolve_pretrained(Config.fromfile('configs/deeplabv3plus_r50.py'), 'auto',
                              base_url=f'http://127.0.0.1:{listener.getsockname()[1]}',
                              timeout=1.0)
    took = time.perf_counter() - start
    print(f'\nserver that never answers: scratch after {took:.2f} s (timeout 1 s)')
    assert took < 3 and info['init'] == 'scratch' and 'timed out' in info['warning']
    assert cache_files() == []


# --- the fine-tuning configs ------------------------------------------------------------------

FINETUNE = ['configs/deeplabv3plus_r50_pretrained.py', 'configs/unet_r34_pretrained.py']


@pytest.mark.parametrize('config', FINETUNE)
def test_finetune_config_builds(config: str) -> None:
    cfg = load_config(config)
    assert cfg.pretrained == 'required' and tuple(cfg.img_size) == (256, 256)
    assert recipe_of(config)[1] == 'pretrained'  # its name in tools/compare_recipes.py tables
    assert tuple(cfg.model.data_preprocessor.size) == (256, 256)
    scratch = load_config(config.replace('_pretrained', ''))
    assert cfg.train_cfg.max_epochs < scratch.train_cfg.max_epochs
    settle_auto(cfg, None)  # 'auto' values as test and inference settle them without a record
    model = MODELS.build(cfg.model)
    groups = build_optim_wrapper(model, cfg.optim_wrapper).optimizer.param_groups
    backbone = {id(p) for p in model.backbone.parameters()}
    lrs = {id(p): g['lr'] for g in groups for p in g['params']}
    base = cfg.optim_wrapper.optimizer.lr
    assert {round(lr, 9) for key, lr in lrs.items() if key in backbone} == {round(base * 0.1, 9)}
    assert {lr for key, lr in lrs.items() if key not in backbone} == {base}


@pytest.mark.parametrize('config', FINETUNE)
def test_finetune_config_trains_from_downloaded_weights(config: str, tiny_data: Path,
                                                        tmp_path: Path, weights_server,
                                                        monkeypatch) -> None:
    arch = 'resnet50' if 'r50' in config else 'resnet34'
    fake = tmp_path / 'fake.pth'
    state = fake_imagenet_resnet34(fake, config)
    name = serve(weights_server, monkeypatch, arch, fake.read_bytes())
    options = {**tiny_options(), 'train_dataloader.dataset.indices': 4,
               'val_dataloader.dataset.indices': 4}
    cfg, info = build_train_cfg(config, work_dir=str(tmp_path / 'w'), data_root=str(tiny_data),
                                epochs=1, cfg_options=options)
    info = train(cfg, info)
    assert info['init']['init'] == 'imagenet'
    assert info['init']['checkpoint'] == str(hub_checkpoint_dir() / name)
    assert json.loads((tmp_path / 'w' / 'run_info.json').read_text())['init'] == info['init']
    log = next((tmp_path / 'w').glob('*/*.log')).read_text()
    assert f'encoder init: ImageNet weights {hub_checkpoint_dir() / name}' in log
    assert f'downloaded from {weights_server.url}/{name}' in log
    # the encoder started from the file: one small step (LR x0.1, warm-up) away from it
    trained = torch.load(info['best_checkpoint'], map_location='cpu',
                         weights_only=False)['state_dict']
    torch.testing.assert_close(trained['backbone.conv1.weight'], state['conv1.weight'],
                               atol=1e-3, rtol=0)


# --- tools/fetch_weights.py: fetch on a machine with internet, check on the offline one --------

def fetch_weights(monkeypatch: pytest.MonkeyPatch, *args: str) -> None:
    monkeypatch.setattr(sys, 'argv', ['tools/fetch_weights.py', *args])
    runpy.run_path('tools/fetch_weights.py', run_name='__main__')


def test_fetch_weights_downloads_and_checks(weights_server, monkeypatch, tmp_path,
                                            capsys: pytest.CaptureFixture) -> None:
    r34 = serve(weights_server, monkeypatch, 'resnet34', small_state())
    r50 = serve(weights_server, monkeypatch, 'resnet50', small_state())
    out = tmp_path / 'weights'
    fetch_weights(monkeypatch, 'configs/unet_r34_pretrained.py', 'configs/deeplabv3plus_r50.py',
                  'tests/configs/tiny_unet.py', '--out-dir', str(out))  # tiny_unet: no weights
    assert sorted(p.name for p in out.iterdir()) == sorted([r34, r50])
    assert "into the offline machine's torch hub cache" in capsys.readouterr().out
    fetch_weights(monkeypatch, 'configs/unet_r34.py', '--check', str(out))
    assert capsys.readouterr().out.count('sha256 matches') == 2
    (out / r50).write_bytes((out / r50).read_bytes()[:-1])  # a truncated copy
    with pytest.raises(SystemExit) as stop:
        fetch_weights(monkeypatch, '--check', str(out))
    assert stop.value.code == 2
    assert capsys.readouterr().err.startswith(f'error: {out / r50} is corrupt')
    (out / r34).unlink()
    with pytest.raises(SystemExit):
        fetch_weights(monkeypatch, 'configs/unet_r34.py', '--check', str(out))
    assert capsys.readouterr().err == f'error: {out / r34} is missing\n'
