from .cross_entropy_loss import IgnoreSafeCrossEntropyLoss
from .resnet_with_stem import ResNetWithStem
from .unet_head import UNetHead

__all__ = ['IgnoreSafeCrossEntropyLoss', 'ResNetWithStem', 'UNetHead']
