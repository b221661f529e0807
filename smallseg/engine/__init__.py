from . import atomic_io
from .autocast_optim_wrapper import AutocastOptimWrapper

atomic_io.install()  # checkpoints and other local files are written atomically

__all__ = ['AutocastOptimWrapper', 'atomic_io']
