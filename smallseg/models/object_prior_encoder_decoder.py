"""EncoderDecoder whose predictions follow the one-object prior (``test_cfg``)."""
from __future__ import annotations

from typing import List, Optional

import torch
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.utils import OptSampleList, SampleList
from torch import Tensor

from ..utils.errors import UserError
from .object_prior import apply_object_prior


PRIOR_KEYS = ('one_class', 'largest_object')


def prior_options(test_cfg: Optional[dict]) -> tuple[bool, bool]:
    """``(one_class, largest_object)`` of a ``test_cfg``: True, or off when False or unset;
    an unresolved ``'auto'`` (or any other value) raises :class:`UserError`."""
    test_cfg = test_cfg or {}
    for key in PRIOR_KEYS:
        value = test_cfg.get(key)
        if value == 'auto':
            raise UserError(
                f"ObjectPriorEncoderDecoder: model.test_cfg.{key}='auto' is decided from the "
                'training masks before the model is built; train through tools/train.py '
                '(tools/test.py and tools/infer.py take the decision from the checkpoint), '
                f'or set {key} to True or False')
        if value not in (None, True, False):
            raise UserError(f'ObjectPriorEncoderDecoder: model.test_cfg.{key} must be True, '
                            f"False or 'auto', got {value!r}")
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
      It is the one flip mechanism: ``tools/test.py --tta`` switches it on.

    ``one_class`` and ``largest_object`` are True, False or ``'auto'``: training
    (:func:`smallseg.apis.train.build_train_cfg`) replaces ``'auto'`` by True when nearly all
    training masks hold one object of one class, test and inference by the checkpoint's
    decision; a model built with an unresolved ``'auto'`` raises :class:`UserError`.
    Validation, test and inference all go through :meth:`postprocess_result`, so the best
    checkpoint is chosen on what the user gets. Without ``flip``, ``seg_logits`` stay the
    network's own.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        prior_options(self.test_cfg)  # an unresolved 'auto' fails here, not at test time

    def inference(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """mmseg's inference, averaged with that of the mirrored inputs under ``flip``.

        The logits come back channels-last: mmseg's post-processing takes the argmax over the
        classes of each image, which on a CPU is many times faster with the classes innermost.
        """
        if (self.test_cfg or {}).get('flip') is not True:
            seg_logits = super().inference(inputs, batch_img_metas)
        else:  # the image and its mirror in one batch: one pass of the network, not two
            both = super().inference(torch.cat([inputs, inputs.flip(-1)]), batch_img_metas * 2)
            seg_logits, mirrored = both[:len(inputs)], both[len(inputs):].flip(-1)
            seg_logits = (seg_logits + mirrored) / 2 if seg_logits.shape[1] < 2 else (
                (seg_logits.float().softmax(1) + mirrored.float().softmax(1)) / 2).log()
        return seg_logits.contiguous(memory_format=torch.channels_last)

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
