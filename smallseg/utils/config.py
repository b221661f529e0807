"""Reading nested config values without the tools' config logic."""
from __future__ import annotations

from typing import Any

LOADER_KEYS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def cfg_get(cfg: Any, dotted: str, default: Any = None) -> Any:
    """``cfg['a.b.c']`` that returns ``default`` when a part is missing."""
    node: Any = cfg
    for part in dotted.split('.'):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node
