"""Optimizer wrapper that trains under ``torch.autocast`` on any device, CPU included."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn as nn
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose forward runs in ``torch.autocast(device_type, dtype)``.

    mmengine's ``AmpOptimWrapper`` asserts a CUDA/NPU/MLU device, so bf16 training on a CPU
    (AMX / AVX512-BF16) needs this wrapper. bf16 has fp32's exponent range, so no loss
    scaling is needed. On CUDA with fp16 use ``AmpOptimWrapper`` (it scales the loss).

    Args:
        dtype (str): Autocast dtype. Defaults to 'bfloat16'.
        device_type (str): 'cpu' or 'cuda'. Defaults to 'cpu'.
        **kwargs: :class:`mmengine.optim.OptimWrapper` arguments (``optimizer``...).
    """

    def __init__(self, dtype: str = 'bfloat16', device_type: str = 'cpu', **kwargs) -> None:
        super().__init__(**kwargs)
        self.dtype = getattr(torch, dtype)
        self.device_type = device_type

    @contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        with super().optim_context(model), torch.autocast(self.device_type, dtype=self.dtype):
            yield
