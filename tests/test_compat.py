"""The stack fixes in smallseg.compat: mmcv.ops shim and torch>=2.6 checkpoint loading."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.runner.checkpoint import load_checkpoint, save_checkpoint

from smallseg import compat


def test_mmseg_models_import() -> None:
    import mmseg.models  # noqa: F401  (fails on mmcv-lite without the shim)
    from mmseg.models.decode_heads import DepthwiseSeparableASPPHead  # noqa: F401


@pytest.mark.skipif(compat.has_compiled_mmcv_ops(), reason='full mmcv: shim steps aside')
def test_shim_point_sample_and_missing_ops() -> None:
    from mmcv.ops import point_sample
    x = torch.randn(1, 2, 5, 5)
    pts = torch.rand(1, 7, 2)
    expected = F.grid_sample(x, (2 * pts - 1).unsqueeze(2), align_corners=False).squeeze(3)
    torch.testing.assert_close(point_sample(x, pts), expected)
    with pytest.raises(ModuleNotFoundError, match='compiled'):
        from mmcv.ops import CrissCrossAttention  # noqa: F401
    from mmcv.ops import sigmoid_focal_loss
    with pytest.raises(RuntimeError, match='mmcv-lite'):
        sigmoid_focal_loss(x, x)


def test_mmengine_checkpoint_with_history_buffer_loads(tmp_path) -> None:
    model = torch.nn.Linear(3, 2)
    hub = MessageHub.get_instance('compat_test')
    hub.update_scalar('train/loss', 1.5)
    assert isinstance(hub.log_scalars['train/loss'], HistoryBuffer)
    path = tmp_path / 'ckpt.pth'
    save_checkpoint({'state_dict': model.state_dict(), 'message_hub': hub.state_dict()}, str(path))
    with pytest.raises(Exception):  # what mmengine 0.10.7 hits on torch >= 2.6
        torch.load(path)
    other = torch.nn.Linear(3, 2)
    ckpt = load_checkpoint(other, str(path), map_location='cpu')
    torch.testing.assert_close(other.weight, model.weight)
    assert 'train/loss' in ckpt['message_hub']['log_scalars']


def test_missing_local_checkpoint_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match='can not be found'):
        load_checkpoint(torch.nn.Linear(1, 1), str(tmp_path / 'missing.pth'))
