"""Catch config mistakes mmengine accepts silently or reports with a traceback: unknown
``--cfg-options`` keys, a config name with a typo, a ``type`` no registry knows, class names
that do not match the model's ``num_classes``."""
from __future__ import annotations

import difflib
import inspect
from pathlib import Path
from typing import Any, Iterable, Optional

from mmengine.config import Config
from torch.utils.data import DataLoader

from ..utils.errors import UserError

#: top-level keys the Runner reads besides its ``__init__`` arguments (``self.cfg.get``),
#: and those mmengine's Config (``custom_imports``) and FlexibleRunner (``strategy``) read
RUNNER_CFG_KEYS = frozenset({'model_wrapper_cfg', 'sync_bn', 'compile', 'custom_imports',
                             'strategy'})
#: what a dataloader dict takes: torch DataLoader's arguments (mmengine builds the
#: ``dataset``, ``sampler``, ``batch_sampler``, ``collate_fn`` and ``worker_init_fn`` in it)
DATALOADER_ARGS = frozenset(inspect.signature(DataLoader.__init__).parameters) - {'self'}
#: keys read by a builder rather than by the component's __init__
EXTRA_KEYS = {'optim_wrapper': {'optimizer', 'paramwise_cfg', 'constructor'}}


def runner_keys() -> set[str]:
    """The top-level keys mmengine's Runner takes: its ``__init__`` arguments, read from the
    installed mmengine, and :data:`RUNNER_CFG_KEYS`."""
    from mmengine.runner import Runner
    return (set(inspect.signature(Runner.__init__).parameters) - {'self', 'cfg'}
            | RUNNER_CFG_KEYS)


def suggest_config(path: Path) -> str:
    """`` (did you mean configs/x.py?)`` for a config path that does not exist, else ''."""
    folder = path.parent
    if not (folder.is_dir() and any(folder.glob('*.py'))):
        folder = Path('configs')
    files = {p.name: p for p in sorted(folder.glob('*.py'))} if folder.is_dir() else {}
    close = difflib.get_close_matches(path.name, list(files), n=1, cutoff=0.7)
    if close:
        return f'; did you mean {files[close[0]]}?'
    if files:
        return f' ({folder} has: ' + ', '.join(files) + ')'
    return ''


def _component_class(type_: Any) -> Optional[type]:
    if isinstance(type_, type):
        return type_
    if not isinstance(type_, str):
        return None
    import mmseg.registry as reg
    from mmengine.registry import Registry
    for name in dir(reg):
        registry = getattr(reg, name)
        if isinstance(registry, Registry):
            try:
                found = registry.get(type_)
            except Exception:  # noqa: BLE001 - a registry that cannot resolve it
                found = None
            if isinstance(found, type):
                return found
    return None


def accepted_keys(node: dict, path: str) -> Optional[set[str]]:
    """Keys ``node`` (the dict at dotted ``path``) may take, or None when anything goes.

    A component (a dict with ``type``) takes its class's ``__init__`` arguments, following
    the base classes while they pass ``**kwargs`` on; the top level takes the Runner's keys.
    """
    if path == '':
        return runner_keys()
    if path.endswith('_dataloader') and '.' not in path:
        return set(DATALOADER_ARGS)
    cls = _component_class(node.get('type'))
    if cls is None:
        return None
    keys = {'type', '_scope_'} | EXTRA_KEYS.get(path, set())
    for klass in cls.__mro__:
        if klass is object:
            return keys
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        try:
            params = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            return None
        keys |= {p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            return keys
    return keys


def _leaf_paths(node: Any, prefix: str = '') -> Iterable[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            path = f'{prefix}.{key}' if prefix else str(key)
            yield path
            yield from _leaf_paths(value, path)


def _nearest(cfg: Config, parent: str, part: str, siblings: Iterable[str]) -> str:
    siblings = sorted(set(siblings))
    close = difflib.get_close_matches(part, siblings, n=1, cutoff=0.6)
    if close:
        return f'{parent}.{close[0]}' if parent else close[0]
    paths = list(_leaf_paths(cfg._cfg_dict.to_dict()))
    tails = {}
    for p in paths:
        tails.setdefault(p.rsplit('.', 1)[-1], p)
    close = difflib.get_close_matches(part, list(tails), n=1, cutoff=0.75)
    if close:
        return tails[close[0]]
    return ''


def check_option_keys(cfg: Config, options: dict) -> None:
    """Refuse ``--cfg-options`` keys that neither exist in ``cfg`` nor are taken by the component
    they would be added to (mmengine would add them silently and ignore or crash on them)."""
    for key in options:
        parts = str(key).split('.')
        node: Any = cfg._cfg_dict
        for i, part in enumerate(parts):
            parent = '.'.join(parts[:i])
            if isinstance(node, (list, tuple)):
                if part.isdigit() and int(part) < len(node):
                    node = node[int(part)]
                    continue
                raise UserError(f'--cfg-options {key}: {parent} is a list of {len(node)} '
                                f'items, {part!r} is not an index into it')
            if not isinstance(node, dict):
                raise UserError(f'--cfg-options {key}: {parent} is {node!r} '
                                f'({type(node).__name__}), not a group of settings')
            if part in node:
                node = node[part]
                continue
            if part.startswith('_'):
                break
            accepted = accepted_keys(node, parent)
            if accepted is None or part in accepted:
                break  # a new argument of a component that takes it
            here = f'{parent}.{part}' if parent else part
            near = _nearest(cfg, parent, part, list(node) + sorted(accepted))
            hint = f'; did you mean {near}?' if near else (
                f'; {parent or "the config"} has: ' + ', '.join(sorted(map(str, node))[:12]))
            raise UserError(f'--cfg-options {key}: unknown key {here!r} (not in the config and '
                            f'not an argument of {node.get("type", parent or "the runner")})'
                            f'{hint}')


def config_classes(cfg: Config) -> Optional[tuple[str, ...]]:
    """The class names the training data uses (train dataset metainfo, else ``metainfo``)."""
    loader = cfg.get('train_dataloader') or {}
    ds = loader.get('dataset', {}) if isinstance(loader, dict) else {}
    meta = (ds.get('metainfo') if isinstance(ds, dict) else None) or cfg.get('metainfo') or {}
    classes = meta.get('classes') if isinstance(meta, dict) else None
    return tuple(classes) if classes else None


def check_num_classes(cfg: Config) -> None:
    """The class names and every decode head's ``num_classes`` must agree."""
    classes = config_classes(cfg)
    model = cfg.get('model') or {}
    heads = [('model.decode_head', model.get('decode_head'))]
    aux = model.get('auxiliary_head')
    heads += [(f'model.auxiliary_head.{i}', h) for i, h in enumerate(aux)] if isinstance(
        aux, list) else [('model.auxiliary_head', aux)]
    for where, head in heads:
        if classes is None or not isinstance(head, dict) or 'num_classes' not in head:
            continue
        if head['num_classes'] != len(classes):
            raise UserError(
                f'the config names {len(classes)} classes ({", ".join(classes)}) but '
                f'{where}.num_classes is {head["num_classes"]}: set both (metainfo.classes in '
                'the dataloaders and num_classes in the heads) to the same number')


def _registered_names() -> set[str]:
    import mmseg.registry as reg
    from mmengine.registry import Registry
    names: set[str] = set()
    for attr in dir(reg):
        registry = getattr(reg, attr)
        while isinstance(registry, Registry):
            names |= set(registry.module_dict)
            registry = registry.parent
    return names


def _types(node: Any, path: str = '') -> Iterable[tuple[str, str]]:
    if isinstance(node, dict):
        if isinstance(node.get('type'), str):
            yield path or 'the config', node['type']
        for key, value in node.items():
            yield from _types(value, f'{path}.{key}' if path else str(key))
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _types(value, f'{path}.{i}')


def check_types(cfg: Config) -> None:
    """Every ``type='Name'`` must be registered (mmengine fails later, with a traceback)."""
    unknown = [(where, name) for where, name in _types(cfg._cfg_dict.to_dict())
               if '.' not in name and _component_class(name) is None]
    if not unknown:
        return
    where, name = unknown[0]
    close = difflib.get_close_matches(name, sorted(_registered_names()), n=1, cutoff=0.6)
    hint = f'; did you mean {close[0]!r}?' if close else ''
    raise UserError(f"{where}.type: {name!r} is not a registered component{hint}")
