"""Hook that puts the model in channels-last memory format before the run."""
from __future__ import annotations

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS


@HOOKS.register_module()
class ChannelsLastHook(Hook):
    """Convert the model's 4-D parameters to ``torch.channels_last`` before the run.

    oneDNN (CPU) and cuDNN (GPU, tensor cores) run convolutions faster in NHWC; convolutions
    propagate the weight's memory format, so inputs need no conversion. Parameters are
    converted in place, so optimizer state built later follows them.

    Args:
        enabled (bool): Turn the conversion on. Defaults to True.
    """

    priority = 'VERY_HIGH'

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled

    def before_run(self, runner) -> None:
        if not self.enabled:
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        model.to(memory_format=torch.channels_last)
