"""Command-line arguments shared by the tools, with one-line errors instead of tracebacks."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from mmengine.config import DictAction

from ..utils.errors import UserError

EXAMPLE = 'e.g. --cfg-options train_cfg.max_epochs=5 train_dataloader.batch_size=4'


class CfgOptionsAction(DictAction):
    """mmengine's :class:`DictAction` (``KEY=VALUE`` pairs) that reports bad pairs in one line.

    A pair without ``=`` (often CONFIG written after ``--cfg-options``, which takes every word
    that follows) or a value mmengine cannot parse raises :class:`UserError`.
    """

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Optional[Sequence[str]], option_string: Optional[str] = None) -> None:
        for kv in values or ():
            if '=' in kv and kv.split('=', 1)[0]:
                continue
            if Path(kv).suffix == '.py':
                raise UserError(f'--cfg-options: {kv!r} is not KEY=VALUE; it looks like the '
                                'config: put CONFIG first, then --cfg-options KEY=VALUE ...')
            raise UserError(f'--cfg-options: {kv!r} is not KEY=VALUE ({EXAMPLE})')
        try:
            super().__call__(parser, namespace, values, option_string)
        except Exception as exc:  # noqa: BLE001 - mmengine's parser errors, as one line
            reason = ' '.join(str(exc).split()) or type(exc).__name__
            raise UserError(f'--cfg-options: cannot read {" ".join(values or ())!r} '
                            f'({reason}); {EXAMPLE}') from exc


def add_cfg_options_argument(parser: argparse.ArgumentParser, **kwargs: Any) -> None:
    """``--cfg-options KEY=VALUE ...`` (dest ``cfg_options``) parsed by
    :class:`CfgOptionsAction`."""
    kwargs.setdefault('help', 'override config settings: KEY=VALUE pairs after CONFIG')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, **kwargs)


DATA_ROOT_HELP = 'dataset root (img/<split>, labels/<split>)'
LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')
Spec = Union[str, dict, None]


def _kwargs(spec: Spec) -> dict:
    return dict(help=spec) if isinstance(spec, str) else dict(spec)


def add_common_arguments(parser: argparse.ArgumentParser, work_dir: Spec = None,
                         data_root: Spec = DATA_ROOT_HELP, cfg_options: Spec = None,
                         launcher: bool = False, clearml: bool = False) -> None:
    """The options the tools share, with mmseg's names.

    Args:
        parser: The tool's parser.
        work_dir: ``--work-dir``: its help text, or a dict of ``add_argument`` keywords
            (``default``, ``required``, ``help``); None leaves it out.
        data_root: ``--data-root``, likewise.
        cfg_options: ``--cfg-options`` (:func:`add_cfg_options_argument`): its help text or
            keywords; False leaves it out, None gives the usual help.
        launcher: ``--launcher`` and ``--local_rank`` (``--local-rank``), for several
            processes (tools/dist_train.sh).
        clearml: ``--clearml`` (dest ``clearml``; give it to ``tracking.set_mode``).
    """
    if work_dir is not None:
        parser.add_argument('--work-dir', **_kwargs(work_dir))
    if data_root is not None:
        parser.add_argument('--data-root', **_kwargs(data_root))
    if cfg_options is not False:
        add_cfg_options_argument(parser, **_kwargs(cfg_options or {}))
    if launcher:
        parser.add_argument('--launcher', choices=LAUNCHERS, default='none', help='job launcher')
        parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    if clearml:
        from smallseg.tracking import MODES
        parser.add_argument(
            '--clearml', choices=MODES, default=None,
            help="ClearML tracking: 'auto' (default, from the config's clearml.mode) = online "
                 "when credentials are configured (clearml-init / CLEARML_API_*) and the server "
                 "answers, else an offline session in <work_dir>/clearml/; 'off' = none")


__all__ = ['CfgOptionsAction', 'add_cfg_options_argument', 'add_common_arguments']
