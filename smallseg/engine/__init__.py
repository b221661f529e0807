from . import atomic_io
from .autocast_optim_wrapper import AutocastOptimWrapper
from .text_cached_config import TextCachedConfig

atomic_io.install()  # checkpoints and other local files are written atomically

__all__ = ['AutocastOptimWrapper', 'TextCachedConfig', 'atomic_io']
