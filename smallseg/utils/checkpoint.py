"""Facts read from checkpoint file names."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional


def epoch_from_name(checkpoint: Optional[str | Path]) -> Optional[int]:
    """The epoch in ``epoch_12.pth``, ``best_mDice_epoch_12.pth`` or
    ``interrupted_epoch_3_iter_7.pth``; None when the name holds none."""
    match = re.search(r'epoch_(\d+)', Path(str(checkpoint or '')).stem)
    return int(match.group(1)) if match else None
