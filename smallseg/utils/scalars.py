"""The numbers of a logged record (mmengine's scalars, a metrics dict)."""
from __future__ import annotations

import numpy as np

SKIP_KEYS = {'epoch', 'iter', 'step', 'time', 'data_time'}  # mmengine's bookkeeping, not metrics


def numbers(values: dict) -> list[tuple[str, float]]:
    """The finite numbers in ``values`` (:data:`SKIP_KEYS` and bools left out)."""
    return [(key, float(value)) for key, value in values.items()
            if key not in SKIP_KEYS and isinstance(value, (int, float, np.number))
            and not isinstance(value, bool) and np.isfinite(value)]
