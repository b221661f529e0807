from .channels_last_hook import ChannelsLastHook
from .class_weight_anneal_hook import ClassWeightAnnealHook
from .nonfinite_loss_hook import NonFiniteLossError, NonFiniteLossHook
from .safe_checkpoint_hook import SafeCheckpointHook
from .signal_checkpoint_hook import SignalCheckpointHook
from .time_budget_hook import TimeBudgetHook

__all__ = ['ChannelsLastHook', 'ClassWeightAnnealHook', 'NonFiniteLossError', 'NonFiniteLossHook',
           'SafeCheckpointHook', 'SignalCheckpointHook', 'TimeBudgetHook']
