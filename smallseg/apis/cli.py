"""Command-line arguments shared by the tools, with one-line errors instead of tracebacks."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Optional, Sequence

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
    kwargs.setdefault('help', 'override config settings, KEY=VALUE pairs after CONFIG')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, **kwargs)


__all__ = ['CfgOptionsAction', 'add_cfg_options_argument']
