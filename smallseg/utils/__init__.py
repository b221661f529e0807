"""Leaf helpers shared by every layer of smallseg; they import nothing else from it."""
from .checkpoint import epoch_from_name
from .config import LOADER_KEYS, cfg_get, head_losses
from .errors import Interrupted, UserError, cli_entry
from .run_info import RUN_INFO, device_name

__all__ = ['Interrupted', 'LOADER_KEYS', 'RUN_INFO', 'UserError', 'cfg_get', 'cli_entry',
           'device_name', 'epoch_from_name', 'head_losses']
