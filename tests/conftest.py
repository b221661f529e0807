"""Shared fixtures: a tiny generated dataset and the repository root as working directory."""
from __future__ import annotations

import importlib.util
import os
import types
from pathlib import Path

import pytest

import smallseg  # noqa: F401  (registers components, applies compat fixes)
from mmengine.registry import init_default_scope

REPO = Path(__file__).resolve().parents[1]
# no ClearML in tests (nor a developer's ~/clearml.conf) unless a test asks for it
os.environ.setdefault('SMALLSEG_CLEARML', 'off')
# no test downloads ImageNet weights: pretrained='auto' meets a closed loopback port and
# falls back to scratch at once (tests/test_pretrained.py serves its own files)
os.environ.setdefault('SMALLSEG_WEIGHTS_URL', 'http://127.0.0.1:9')
TINY = 64  # image size for tests: small enough for seconds per training epoch on 2 cores
TINY_CFG = 'tests/configs/tiny_unet.py'


def load_script(relpath: str) -> types.ModuleType:
    """A script of the repository (``tools/train.py``, ``eda/run_eda.py``) as a module."""
    path = REPO / relpath
    spec = importlib.util.spec_from_file_location(f'script_{path.stem}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _repo_cwd(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test from the repository root, as the README's commands do."""
    monkeypatch.chdir(REPO)
    init_default_scope('mmseg')


@pytest.fixture(scope='session')
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16/8/8 generated 64x64 images in the project's layout."""
    from smallseg.synthetic import generate_dataset
    root = tmp_path_factory.mktemp('tiny_data')
    generate_dataset(root, seed=1, counts={'train': 16, 'val': 8, 'test': 8}, size=TINY,
                     progress=False)
    return root


def tiny_options(batch_size: int = 4) -> dict:
    """--cfg-options that make a config train fast on the tiny dataset."""
    return {
        'train_dataloader.batch_size': batch_size,
        'val_dataloader.batch_size': 8,
        'test_dataloader.batch_size': 8,
        'img_size': (TINY, TINY),  # every pipeline Resize and the preprocessor
        'default_hooks.logger.interval': 1,
    }


def cli_env() -> dict:
    """Environment for running the tools in a subprocess."""
    env = dict(os.environ)
    env.setdefault('OMP_NUM_THREADS', '2')
    return env
