"""The tools share one argparse helper: the same options, names and defaults in every tool."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from smallseg.apis.cli import add_common_arguments

from conftest import load_script

SHARED = ['--work-dir', 'w', '--data-root', 'd', '--cfg-options', 'a=1']
# tool: (positional arguments, shared options it takes, whether --launcher and --clearml)
TOOLS = {
    'train': (['c.py'], SHARED, True),
    'test': (['c.py', 'k.pth'], SHARED, True),
    'infer': (['c.py', 'k.pth', 'img', '--out', 'o'], SHARED[2:], False),
    'analyze': (['c.py'], SHARED, False),
    'run_all': (['--clearml', 'off'], SHARED[:4], False),
    'compare_recipes': (['--clearml', 'off'], SHARED, False),
    'benchmark': (['c.py'], SHARED[2:], False),
}


@pytest.mark.parametrize('tool', sorted(TOOLS))
def test_each_tool_takes_the_shared_options(tool: str, monkeypatch: pytest.MonkeyPatch) -> None:
    positional, options, launcher = TOOLS[tool]
    extra = ['--launcher', 'pytorch', '--local-rank', '1', '--clearml', 'off'] if launcher else []
    monkeypatch.setattr('sys.argv', [tool, *positional, *options, *extra])
    args = load_script(f'tools/{tool}.py').parse_args()
    if '--work-dir' in options:
        assert args.work_dir == 'w'
    if '--data-root' in options:
        assert args.data_root == 'd'
    if '--cfg-options' in options:
        assert args.cfg_options == {'a': 1}
    if launcher:
        assert (args.launcher, args.local_rank, args.clearml) == ('pytorch', 1, 'off')


def test_defaults_and_what_is_left_out() -> None:
    parser = argparse.ArgumentParser()
    add_common_arguments(parser, work_dir=dict(default='work_dirs', help='runs'),
                         data_root=dict(required=True, help='root'), cfg_options=False,
                         launcher=True, clearml=True)
    args = parser.parse_args(['--data-root', 'r'])
    assert vars(args) == dict(work_dir='work_dirs', data_root='r', launcher='none',
                              local_rank=0, clearml=None)
    with pytest.raises(SystemExit):  # required
        parser.parse_args([])
    bare = argparse.ArgumentParser()
    add_common_arguments(bare, data_root=None)
    assert vars(bare.parse_args([])) == dict(cfg_options=None)


def test_no_tool_declares_a_shared_option_itself() -> None:
    for path in sorted(Path('tools').glob('*.py')):
        text = path.read_text()
        for option in ('--cfg-options', '--launcher', '--local_rank', '--work-dir', '--data-root'):
            assert f"'{option}'" not in text, f'{path}: {option} (use add_common_arguments)'
        assert 'tracking.add_argument' not in text, path
