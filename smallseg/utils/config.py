"""Reading nested config values without the tools' config logic."""
from __future__ import annotations

from typing import Any

from mmengine.model import is_model_wrapper
from torch import nn

LOADER_KEYS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def cfg_get(cfg: Any, dotted: str, default: Any = None) -> Any:
    """``cfg['a.b.c']`` that returns ``default`` when a part is missing."""
    node: Any = cfg
    for part in dotted.split('.'):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def head_losses(model: Any) -> list:
    """The losses of a model's decode and auxiliary heads: loss configs of a model config,
    or loss modules of a built model (unwrapped from DDP first)."""
    model = model.module if is_model_wrapper(model) else model
    heads = [_attr(model, 'decode_head')]
    aux = _attr(model, 'auxiliary_head')
    heads += list(aux) if isinstance(aux, (list, tuple, nn.ModuleList)) else [aux]
    losses = []
    for head in heads:
        loss_decode = _attr(head, 'loss_decode') if head is not None else None
        if isinstance(loss_decode, (list, tuple, nn.ModuleList)):
            losses += [loss for loss in loss_decode if loss is not None]
        elif loss_decode is not None:
            losses.append(loss_decode)
    return losses


def _attr(node: Any, name: str) -> Any:
    """``node[name]`` of a config dict, ``node.name`` of a module; None when missing."""
    return node.get(name) if isinstance(node, dict) else getattr(node, name, None)

