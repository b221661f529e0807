"""EncoderDecoder whose predictions follow the one-object prior (``test_cfg``)."""
from __future__ import annotations

from typing import List

from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.utils import OptSampleList, SampleList
from torch import Tensor

from .object_prior import apply_object_prior


def prior_options(test_cfg: dict) -> tuple[bool, bool]:
    """``(one_class, largest_object)`` of a ``test_cfg``; anything but True (e.g. an
    'auto' no training run has resolved) is off."""
    test_cfg = test_cfg or {}
    return test_cfg.get('one_class') is True, test_cfg.get('largest_object') is True


@MODELS.register_module()
class ObjectPriorEncoderDecoder(EncoderDecoder):
    """mmseg's ``EncoderDecoder``, then :func:`apply_object_prior` on each prediction.

    ``test_cfg`` keys, besides mmseg's ``mode``/``crop_size``/``stride``:

    - ``one_class``: all foreground of an image gets one class;
    - ``largest_object``: only the largest connected foreground region is kept;
    - ``flip``: predict from the mean class probabilities of the image and its horizontal
      mirror (mmseg's flip test-time augmentation, here inside the model, so validation
      picks the best checkpoint with it; ``seg_logits`` are then the log of that mean).

    ``one_class`` and ``largest_object`` are True, False or ``'auto'``: training
    (:func:`smallseg.apis.train.build_train_cfg`) sets ``'auto'`` to True when nearly all
    training masks hold one object of one class. Validation, test and inference all go
    through :meth:`postprocess_result`, so the best checkpoint is chosen on what the user
    gets. Without ``flip``, ``seg_logits`` stay the network's own.
    """

    def inference(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """mmseg's inference, averaged with that of the mirrored inputs under ``flip``."""
        seg_logits = super().inference(inputs, batch_img_metas)
        if (self.test_cfg or {}).get('flip') is not True:
            return seg_logits
        mirrored = super().inference(inputs.flip(-1), batch_img_metas).flip(-1)
        if seg_logits.shape[1] < 2:  # one sigmoid channel: the mean logit
            return (seg_logits + mirrored) / 2
        return ((seg_logits.float().softmax(1) + mirrored.float().softmax(1)) / 2).log()

    def postprocess_result(self, seg_logits: Tensor,
                           data_samples: OptSampleList = None) -> SampleList:
        data_samples = super().postprocess_result(seg_logits, data_samples)
        one_class, largest_object = prior_options(self.test_cfg)
        if not (one_class or largest_object) or seg_logits.shape[1] < 2:
            return data_samples
        for sample in data_samples:
            probs = sample.seg_logits.data.float().softmax(dim=0)
            pred = sample.pred_sem_seg.data
            sample.pred_sem_seg.data = apply_object_prior(
                probs, pred[0], one_class, largest_object)[None]
        return data_samples
