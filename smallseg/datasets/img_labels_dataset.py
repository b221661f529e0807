"""Dataset for the ``img/<split>/<stem>.jpg`` + ``labels/<split>/<stem>.png`` layout."""
from __future__ import annotations

import os.path as osp
from typing import Sequence

from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS


@DATASETS.register_module()
class ImgLabelsSegDataset(BaseSegDataset):
    """Images in ``img/<split>`` and single-channel index masks in ``labels/<split>``.

    Mask values are class indices (0 = background, 1..K), ``reduce_zero_label`` is False:
    background is a real class here, as in the seed report. Class names and palette come
    from the config (``metainfo=dict(classes=..., palette=...)``); the defaults below are
    those of the embedded default dataset.

    Args:
        img_suffix (str): Image file suffix. Defaults to '.jpg'.
        seg_map_suffix (str): Mask file suffix. Defaults to '.png'.
        exclude (Sequence[str]): Image names (path under the image folder, without the
            suffix) left out, e.g. the pairs ``tools/train.py --skip-invalid`` found unusable.
        **kwargs: Passed to :class:`mmseg.datasets.BaseSegDataset`
            (``data_root``, ``data_prefix=dict(img_path='img/train', seg_map_path='labels/train')``,
            ``pipeline``, ``metainfo``...).
    """

    METAINFO = dict(
        classes=('background', 'round', 'angular'),
        palette=[[0, 0, 0], [230, 25, 75], [60, 180, 75]])

    def __init__(self, img_suffix: str = '.jpg', seg_map_suffix: str = '.png',
                 reduce_zero_label: bool = False, exclude: Sequence[str] = (),
                 **kwargs) -> None:
        self.exclude = frozenset(exclude)
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=reduce_zero_label, **kwargs)

    def load_data_list(self) -> list[dict]:
        data_list = super().load_data_list()
        if not self.exclude:
            return data_list
        img_dir = self.data_prefix.get('img_path', '')
        return [d for d in data_list if osp.relpath(d['img_path'], img_dir)[
            :-len(self.img_suffix)].replace(osp.sep, '/') not in self.exclude]
