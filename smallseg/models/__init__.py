from .cross_entropy_loss import IgnoreSafeCrossEntropyLoss
from .dice_loss import ClassDiceLoss
from .resnet_with_stem import ResNetWithStem
from .unet_head import UNetHead

__all__ = ['ClassDiceLoss', 'IgnoreSafeCrossEntropyLoss', 'ResNetWithStem', 'UNetHead']
