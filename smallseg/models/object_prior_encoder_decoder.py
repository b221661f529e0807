"""EncoderDecoder whose predictions follow the one-object prior (``test_cfg``)."""
from __future__ import annotations

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
    - ``largest_object``: only the largest connected foreground region is kept.

    Each is True, False or ``'auto'``: training (:func:`smallseg.apis.train.build_train_cfg`)
    sets ``'auto'`` to True when nearly all training masks hold one object of one class.
    Validation, test and inference all go through :meth:`postprocess_result`, so the best
    checkpoint is chosen on what the user gets. ``seg_logits`` stay the network's own.
    """

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
