"""``results.json``: per-model val/test mDice and the best model, in the seed report's schema."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

TARGET_MDICE = 0.75


def read_results(path: str | Path) -> dict:
    """The current results, or an empty skeleton when the file does not exist yet."""
    path = Path(path)
    if path.is_file() and path.stat().st_size:
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            from .errors import UserError
            raise UserError(f'{path} is not valid JSON ({exc}); fix or remove it') from exc
        data.setdefault('models', {})
        return data
    return {'models': {}}


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix='.tmp')
    with os.fdopen(fd, 'w') as f:
        f.write(text)
    os.replace(tmp, path)


def update_results(path: str | Path, model: str, entry: dict[str, Any],
                   target: float = TARGET_MDICE) -> dict:
    """Merge ``entry`` into ``models[model]`` and recompute the summary fields.

    Summary: ``best_model`` / ``best_mdice`` by test mDice (val mDice when no model has a
    test score), ``target`` and ``target_achieved`` (best_mdice > target).
    """
    path = Path(path)
    data = read_results(path)
    data['models'].setdefault(model, {}).update(entry)
    key = 'test_mdice' if any(
        m.get('test_mdice') is not None for m in data['models'].values()) else 'val_mdice'
    scored = {name: m[key] for name, m in data['models'].items() if m.get(key) is not None}
    best = max(scored, key=scored.get) if scored else None
    data.update(
        best_model=best,
        best_mdice=scored.get(best) if best else None,
        best_by=key,
        target=target,
        target_achieved=bool(best is not None and scored[best] > target))
    _atomic_write(path, json.dumps(data, indent=2) + '\n')
    return data
