"""The files a training run leaves beside its checkpoints, and the device it ran on."""
from __future__ import annotations

import platform

import torch

RUN_INFO = 'run_info.json'  # what the run used (config, init, precision, recipe) and reached


def device_name() -> str:
    """A short description of the device this process computes on."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f'cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)'
