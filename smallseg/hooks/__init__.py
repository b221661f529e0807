from .channels_last_hook import ChannelsLastHook
from .nonfinite_loss_hook import NonFiniteLossError, NonFiniteLossHook
from .safe_checkpoint_hook import SafeCheckpointHook
from .signal_checkpoint_hook import SignalCheckpointHook

__all__ = ['ChannelsLastHook', 'NonFiniteLossError', 'NonFiniteLossHook', 'SafeCheckpointHook',
           'SignalCheckpointHook']
