"""mmseg's flip/scale test-time augmentation, then the one-object prior of the model."""
from __future__ import annotations

from typing import Any, Iterator, List

import torch
from mmseg.models.segmentors import SegTTAModel
from mmseg.registry import MODELS
from mmseg.utils import SampleList

from .object_prior import apply_object_prior
from .object_prior_encoder_decoder import prior_options


@MODELS.register_module()
class ObjectPriorTTAModel(SegTTAModel):
    """``SegTTAModel`` (mean softmax of the augmented views, argmax), then
    :func:`apply_object_prior` on the mean probabilities as the wrapped model's ``test_cfg``
    asks (:class:`ObjectPriorEncoderDecoder`); the same as ``SegTTAModel`` otherwise.

    When the views include mirrored ones (mmseg's ``TestTimeAug`` pairs every view with its
    mirror), the model's own ``test_cfg.flip`` is off while they run: it would only repeat
    them, at twice the cost, for the same mean.
    """

    def test_step(self, data: Any) -> SampleList:
        test_cfg = getattr(self.module, 'test_cfg', None)
        if not (test_cfg and test_cfg.get('flip') is True and any(_flipped(data))):
            return super().test_step(data)
        test_cfg['flip'] = False
        try:
            return super().test_step(data)
        finally:
            test_cfg['flip'] = True

    def merge_preds(self, data_samples_list: List[SampleList]) -> SampleList:
        predictions = super().merge_preds(data_samples_list)
        one_class, largest_object = prior_options(getattr(self.module, 'test_cfg', None))
        if not (one_class or largest_object) or self.module.out_channels < 2:
            return predictions
        for prediction, samples in zip(predictions, data_samples_list):
            probs = torch.stack([s.seg_logits.data.float().softmax(dim=0)
                                 for s in samples]).mean(dim=0)
            pred = prediction.pred_sem_seg.data
            labels = apply_object_prior(probs, pred.reshape(probs.shape[1:]), one_class,
                                        largest_object)
            prediction.pred_sem_seg.data = labels.reshape(pred.shape)
        return predictions


def _flipped(data: Any) -> Iterator[bool]:
    """Whether each view's samples were mirrored by the TTA pipeline (their ``flip`` meta)."""
    views = data.get('data_samples', []) if isinstance(data, dict) else []
    for samples in views:
        for sample in samples or []:
            yield bool(sample.metainfo.get('flip', False))
