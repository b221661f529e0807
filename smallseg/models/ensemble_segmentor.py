"""An ensemble of segmentors: the mean of their class probabilities, then the one-object prior."""
from __future__ import annotations

from typing import List, Optional, Sequence

import torch.nn.functional as F
from mmengine.model import BaseDataPreprocessor
from mmengine.runner import load_checkpoint
from mmengine.structures import PixelData
from mmseg.models.segmentors import BaseSegmentor
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import OptSampleList, SampleList
from torch import Tensor, nn

from ..utils.errors import UserError
from .object_prior import apply_object_prior
from .object_prior_encoder_decoder import prior_options


def _member_name(spec, index: int) -> str:
    if isinstance(spec, dict) and spec.get('name'):
        return str(spec['name'])
    return f'member {index + 1}'


@MODELS.register_module()
class EnsembleSegmentor(BaseSegmentor):
    """Averages the class probabilities of several segmentors at the mask size.

    Each member predicts the batch its own way: its own data preprocessor (normalisation,
    padding), its own input size and its own ``test_cfg`` (``flip`` included); its class
    probabilities (softmax of its ``seg_logits``, padding removed, resized to the image's
    original size) enter a mean, weighted by ``weights``. The one-object prior
    (:func:`apply_object_prior`) is then applied once, on the mean. Results are standard
    ``SegDataSample``\\ s: ``seg_logits`` holds the log of the mean probabilities,
    ``pred_sem_seg`` the labels, so mmseg's metrics and visualizer work unchanged.

    The ensemble's own data preprocessor only moves the batch to the device: the images stay
    a list of uint8 tensors as the dataset pipeline left them, for each member to preprocess.

    Args:
        members: Each a built segmentor (``nn.Module``) or a dict with ``model`` (a model
            config or a built segmentor), optional ``checkpoint`` (weights loaded into a
            model built from a config), optional ``name`` (used in messages) and optional
            ``input_size`` ``(h, w)``: the size the member's own test pipeline resizes
            images to; images of another size are resized to it (bilinear) before the
            member's data preprocessor.
        weights: One weight per member (normalised to sum 1); default equal.
        test_cfg: ``one_class`` / ``largest_object`` of the prior on the mean; default: the
            first member's.
    """

    def __init__(self, members: Sequence, weights: Optional[Sequence[float]] = None,
                 test_cfg: Optional[dict] = None, data_preprocessor=None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor or BaseDataPreprocessor(),
                         init_cfg=init_cfg)
        if len(members) < 1:
            raise UserError('EnsembleSegmentor: no members given')
        self.members = nn.ModuleList()
        self.member_names: list[str] = []
        self.input_sizes: list[Optional[tuple[int, int]]] = []
        for i, spec in enumerate(members):
            self.member_names.append(_member_name(spec, i))
            if isinstance(spec, nn.Module):
                model, size = spec, None
            elif isinstance(spec['model'], nn.Module):
                model, size = spec['model'], spec.get('input_size')
            else:
                model = MODELS.build(spec['model'])
                if spec.get('checkpoint'):
                    load_checkpoint(model, str(spec['checkpoint']), map_location='cpu',
                                    logger='silent')
                size = spec.get('input_size')
            self.members.append(model)
            self.input_sizes.append(tuple(size) if size else None)
        counts = [self._num_classes(m) for m in self.members]
        if len(set(counts)) > 1:
            listed = ', '.join(f'{n} ({c})' for n, c in zip(self.member_names, counts))
            raise UserError(f'ensemble members predict different numbers of classes: {listed}')
        if counts[0] < 2:
            raise UserError('ensembles average softmax class probabilities: members need '
                            f'2 or more classes, {self.member_names[0]} has {counts[0]}')
        self.num_classes = counts[0]
        weights = [1.0] * len(self.members) if weights is None else [float(w) for w in weights]
        if len(weights) != len(self.members) or min(weights) < 0 or sum(weights) <= 0:
            raise UserError(f'ensemble weights must be {len(self.members)} non-negative '
                            f'numbers, not all 0; got {list(weights)}')
        self.weights = [w / sum(weights) for w in weights]
        if test_cfg is None:
            test_cfg = dict(getattr(self.members[0], 'test_cfg', None) or {})
        self.test_cfg = test_cfg
        self.one_class, self.largest_object = prior_options(test_cfg)
        self.align_corners = False

    @staticmethod
    def _num_classes(model: nn.Module) -> int:
        head = getattr(model, 'decode_head', None)
        return int(getattr(head, 'out_channels', getattr(head, 'num_classes', 0)))

    def member_probabilities(self, index: int, inputs: List[Tensor],
                             data_samples: SampleList) -> List[Tensor]:
        """Member ``index``'s class probabilities ``(C, H, W)`` per image, at its original
        size (``ori_shape``), computed as the member computes its own predictions."""
        member, size = self.members[index], self.input_sizes[index]
        metas = []
        images = []
        for img, sample in zip(inputs, data_samples):
            meta = dict(sample.metainfo)
            if size is not None and tuple(img.shape[-2:]) != size:
                h, w = img.shape[-2:]
                resized = F.interpolate(img[None].float(), size=size, mode='bilinear',
                                        align_corners=False)[0]
                if not img.is_floating_point():  # as the dataset's Resize gives it: uint8
                    resized = resized.round().clamp(0, 255).to(img.dtype)
                img = resized
                meta['img_shape'] = size
                meta['scale_factor'] = (size[1] / w, size[0] / h)
            images.append(img)
            metas.append(SegDataSample(metainfo=meta))
        data = member.data_preprocessor(dict(inputs=images, data_samples=metas), False)
        batch_metas = [s.metainfo for s in data['data_samples']]
        seg_logits = member.inference(data['inputs'], batch_metas)
        # mmseg's own post-processing (padding removed, resized to ori_shape), without the
        # member's prior: the prior acts once, on the mean
        samples = BaseSegmentor.postprocess_result(member, seg_logits, data['data_samples'])
        return [s.seg_logits.data.float().softmax(dim=0) for s in samples]

    def predict(self, inputs, data_samples: OptSampleList = None) -> SampleList:
        if isinstance(inputs, Tensor):
            inputs = list(inputs)
        if data_samples is None:
            data_samples = [SegDataSample(metainfo=dict(
                ori_shape=tuple(img.shape[-2:]), img_shape=tuple(img.shape[-2:])))
                for img in inputs]
        mean: Optional[List[Tensor]] = None
        for i, weight in enumerate(self.weights):
            probs = self.member_probabilities(i, inputs, data_samples)
            if mean is None:
                mean = [weight * p for p in probs]
            else:
                mean = [m + weight * p.to(m.device) for m, p in zip(mean, probs)]
        for sample, probs in zip(data_samples, mean):
            pred = probs.argmax(dim=0)
            if self.one_class or self.largest_object:
                pred = apply_object_prior(probs, pred, self.one_class, self.largest_object)
            sample.set_data({'seg_logits': PixelData(data=probs.clamp_min(1e-12).log()),
                             'pred_sem_seg': PixelData(data=pred[None])})
        return data_samples

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        raise NotImplementedError('EnsembleSegmentor predicts only; train its members')

    def _forward(self, inputs: Tensor, data_samples: OptSampleList = None) -> Tensor:
        raise NotImplementedError('EnsembleSegmentor predicts only (mode="predict")')

    def extract_feat(self, inputs: Tensor) -> bool:
        raise NotImplementedError('EnsembleSegmentor has no features of its own')

    def encode_decode(self, inputs: Tensor, batch_data_samples: SampleList) -> Tensor:
        raise NotImplementedError('EnsembleSegmentor predicts through predict()')

