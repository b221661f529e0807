"""EncoderDecoder whose predictions follow the one-object prior (``test_cfg``)."""
from __future__ import annotations

from typing import List, Optional

import torch
import torch.nn.functional as F
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.utils import OptSampleList, SampleList
from torch import Tensor

from ..utils.errors import UserError
from .image_class_head import ImageClassHead
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


def class_from_head(test_cfg: Optional[dict], auxiliary_head) -> bool:
    """Whether ``test_cfg.class_from`` asks for the image-level head's class (``'head'``) or
    the summed-probability vote (``'vote'``, the default); ``'head'`` needs an
    :class:`ImageClassHead` as the auxiliary head and ``mode='whole'``."""
    test_cfg = test_cfg or {}
    value = test_cfg.get('class_from', 'vote')
    if value not in ('vote', 'head'):
        raise UserError("ObjectPriorEncoderDecoder: model.test_cfg.class_from must be 'vote' or "
                        f"'head', got {value!r}")
    if value == 'head' and not isinstance(auxiliary_head, ImageClassHead):
        raise UserError("ObjectPriorEncoderDecoder: model.test_cfg.class_from='head' needs "
                        "model.auxiliary_head=dict(type='ImageClassHead', ...)")
    if value == 'head' and test_cfg.get('mode', 'whole') != 'whole':
        raise UserError("ObjectPriorEncoderDecoder: model.test_cfg.class_from='head' needs "
                        "mode='whole' (one class per image, not per window)")
    return value == 'head'


def img_ratios(test_cfg: Optional[dict]) -> tuple[float, ...]:
    """``test_cfg.img_ratios``: the scales, relative to the input size, whose predictions are
    averaged (mmseg's test-time augmentation term); ``(1.0,)`` when unset."""
    ratios = (test_cfg or {}).get('img_ratios') or (1.0,)
    if isinstance(ratios, (int, float)):
        ratios = (ratios,)
    if not all(isinstance(r, (int, float)) and not isinstance(r, bool) and r > 0
               for r in ratios):
        raise UserError('ObjectPriorEncoderDecoder: model.test_cfg.img_ratios must be positive '
                        f'numbers, e.g. (0.8, 1.0, 1.25), got {ratios!r}')
    return tuple(float(r) for r in ratios)


@MODELS.register_module()
class ObjectPriorEncoderDecoder(EncoderDecoder):
    """mmseg's ``EncoderDecoder``, then :func:`apply_object_prior` on each prediction.

    ``test_cfg`` keys, besides mmseg's ``mode``/``crop_size``/``stride``:

    - ``one_class``: all foreground of an image gets one class;
    - ``largest_object``: only the largest connected foreground region is kept;
    - ``class_from``: where ``one_class`` takes the class: ``'vote'`` (default), the class
      with the largest summed probability over the foreground, or ``'head'``, the class an
      :class:`ImageClassHead` in ``auxiliary_head`` predicts from the whole image;
    - ``flip``: predict from the mean class probabilities of the image and its horizontal
      mirror (mmseg's flip test-time augmentation, here inside the model, so validation
      picks the best checkpoint with it; ``seg_logits`` are then the log of that mean).
      It is the one flip mechanism: ``tools/test.py --tta`` switches it on;
    - ``img_ratios``: predict from the mean class probabilities of the image resized by each
      ratio (e.g. ``(0.8, 1.0, 1.25)``), each back at the input size; with ``flip`` every
      ratio is mirrored too.

    ``one_class`` and ``largest_object`` are True, False or ``'auto'``: training
    (:func:`smallseg.apis.train.build_train_cfg`) replaces ``'auto'`` by True when nearly all
    training masks hold one object of one class, test and inference by the checkpoint's
    decision; a model built with an unresolved ``'auto'`` raises :class:`UserError`.
    Validation, test and inference all go through :meth:`postprocess_result`, so the best
    checkpoint is chosen on what the user gets. With one view (no ``flip``, one ratio),
    ``seg_logits`` stay the network's own.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        prior_options(self.test_cfg)  # an unresolved 'auto' fails here, not at test time
        img_ratios(self.test_cfg)
        class_from_head(self.test_cfg, getattr(self, 'auxiliary_head', None))
        self._class_probs: Optional[Tensor] = None  # the head's, for postprocess_result

    def encode_decode(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """mmseg's encode_decode; with ``class_from='head'`` the head's class probabilities
        of the same features are kept for :meth:`postprocess_result`."""
        x = self.extract_feat(inputs)
        if class_from_head(self.test_cfg, getattr(self, 'auxiliary_head', None)):
            self._class_probs = self.auxiliary_head.predict_probs(x)
        return self.decode_head.predict(x, batch_img_metas, self.test_cfg)

    def inference(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """mmseg's inference, averaged over the views of ``img_ratios`` and ``flip``.

        The logits come back channels-last: mmseg's post-processing takes the argmax over the
        classes of each image, which on a CPU is many times faster with the classes innermost.
        """
        self._class_probs = None
        test_cfg = self.test_cfg or {}
        flip = test_cfg.get('flip') is True
        views, class_probs = [], []
        for ratio in img_ratios(test_cfg):
            logits, probs = self._ratio_views(inputs, batch_img_metas, ratio, flip)
            views += logits
            class_probs += [] if probs is None else [probs]
        self._class_probs = sum(class_probs) / len(class_probs) if class_probs else None
        if len(views) == 1:
            seg_logits = views[0]
        elif views[0].shape[1] < 2:  # one sigmoid output: the mean of the logits
            seg_logits = sum(views) / len(views)
        else:
            seg_logits = (sum(view.float().softmax(1) for view in views) / len(views)).log()
        return seg_logits.contiguous(memory_format=torch.channels_last)

    def _ratio_views(self, inputs: Tensor, batch_img_metas: List[dict], ratio: float,
                     flip: bool) -> tuple[list[Tensor], Optional[Tensor]]:
        """The logits of ``inputs`` resized by ``ratio`` (and, under ``flip``, of their mirror,
        in the same batch: one pass of the network), back at the input size, and the image
        class head's probabilities (their mean over the mirror) where ``class_from='head'``."""
        size = inputs.shape[-2:]
        if ratio != 1.0:
            scaled = (max(1, round(size[0] * ratio)), max(1, round(size[1] * ratio)))
            inputs = F.interpolate(inputs, size=scaled, mode='bilinear', align_corners=False)
            batch_img_metas = [dict(meta, img_shape=scaled, pad_shape=scaled)
                               for meta in batch_img_metas]
        n = len(inputs)
        if flip:
            inputs, batch_img_metas = torch.cat([inputs, inputs.flip(-1)]), batch_img_metas * 2
        logits = super().inference(inputs, batch_img_metas)
        if ratio != 1.0:
            logits = F.interpolate(logits, size=size, mode='bilinear',
                                   align_corners=self.align_corners)
        class_probs, self._class_probs = self._class_probs, None
        if not flip:
            return [logits], class_probs
        if class_probs is not None:
            class_probs = (class_probs[:n] + class_probs[n:]) / 2
        return [logits[:n], logits[n:].flip(-1)], class_probs

    def postprocess_result(self, seg_logits: Tensor,
                           data_samples: OptSampleList = None) -> SampleList:
        data_samples = super().postprocess_result(seg_logits, data_samples)
        one_class, largest_object = prior_options(self.test_cfg)
        if not (one_class or largest_object) or seg_logits.shape[1] < 2:
            return data_samples
        class_probs, self._class_probs = self._class_probs, None
        for i, sample in enumerate(data_samples):
            probs = sample.seg_logits.data.float().softmax(dim=0)
            pred = sample.pred_sem_seg.data
            sample.pred_sem_seg.data = apply_object_prior(
                probs, pred[0], one_class, largest_object,
                None if class_probs is None else class_probs[i].to(probs.device))[None]
        return data_samples
