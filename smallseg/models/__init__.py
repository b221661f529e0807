from .cross_entropy_loss import IgnoreSafeCrossEntropyLoss
from .dice_loss import ClassDiceLoss
from .ensemble_segmentor import EnsembleSegmentor
from .image_class_head import ImageClassHead
from .object_prior import apply_object_prior
from .object_prior_encoder_decoder import ObjectPriorEncoderDecoder
from .resnet_with_stem import ResNetWithStem
from .unet_head import UNetHead

__all__ = ['ClassDiceLoss', 'EnsembleSegmentor', 'IgnoreSafeCrossEntropyLoss', 'ImageClassHead',
           'ObjectPriorEncoderDecoder', 'ResNetWithStem', 'UNetHead', 'apply_object_prior']
