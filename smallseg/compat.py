"""Make mmseg 1.2.2 + mmengine 0.10.7 + mmcv-lite 2.1 work with current torch.

Narrow fixes, applied once on ``import smallseg``:

1. ``mmcv.ops`` shim. mmseg imports a few names from ``mmcv.ops`` at module level
   (``point_sample``, ``sigmoid_focal_loss``) even for models that never use them, and
   mmcv-lite has no compiled ops, so ``import mmseg.models`` fails. When the compiled
   extension ``mmcv._ext`` is importable (full mmcv built from source) the shim steps
   aside. Otherwise a stand-in ``mmcv.ops`` module is registered: ``point_sample`` is the
   pure-PyTorch function mmcv itself uses, every other op raises a clear ImportError /
   RuntimeError naming the op, so models that need compiled ops fail loudly, never silently.
2. ``torch.load`` in mmengine. torch >= 2.6 defaults to ``weights_only=True`` and refuses
   mmengine's own checkpoints (``HistoryBuffer`` in the message hub), so load and resume
   fail. We re-register mmengine's local-file checkpoint loader with ``weights_only=False``
   (the file is one the user named, as in mmengine >= 0.10.8).
3. CPU-only distributed runs. mmengine's pytorch launcher calls ``torch.cuda.set_device``
   even for the gloo backend; without CUDA the process group is initialised without it.
"""
from __future__ import annotations

import importlib.util
import os
import os.path as osp
import sys
import types
import warnings
from typing import Any

import torch
import torch.nn.functional as F

_APPLIED = False


def has_compiled_mmcv_ops() -> bool:
    """True when mmcv was built with its C++/CUDA extension."""
    try:
        return importlib.util.find_spec('mmcv._ext') is not None
    except (ImportError, ValueError):
        return False


def point_sample(input: torch.Tensor, points: torch.Tensor, align_corners: bool = False,
                 **kwargs: Any) -> torch.Tensor:
    """Pure-PyTorch ``mmcv.ops.point_sample`` (bilinear sampling at [0, 1] coordinates)."""
    add_dim = False
    if points.dim() == 3:
        add_dim = True
        points = points.unsqueeze(2)
    output = F.grid_sample(input, 2.0 * points - 1.0, align_corners=align_corners, **kwargs)
    if add_dim:
        output = output.squeeze(3)
    return output


def _missing_op(name: str):
    def op(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(
            f'mmcv.ops.{name} needs mmcv built with compiled ops; this environment has '
            'mmcv-lite. Build mmcv 2.1.0 from source (docs/stack.md) to use models that need it.')
    op.__name__ = name
    return op


def _install_mmcv_ops_shim() -> None:
    if 'mmcv.ops' in sys.modules or has_compiled_mmcv_ops():
        return
    module = types.ModuleType('mmcv.ops')
    module.__doc__ = 'smallseg stand-in for mmcv.ops (mmcv-lite, no compiled ops).'
    module.point_sample = point_sample
    module.sigmoid_focal_loss = _missing_op('sigmoid_focal_loss')

    def __getattr__(name: str) -> Any:
        # mmseg guards optional ops with `except ModuleNotFoundError`, so raise exactly that
        if name.startswith('__'):
            raise AttributeError(name)
        raise ModuleNotFoundError(
            f'mmcv.ops.{name} needs mmcv built with compiled ops (this is mmcv-lite)',
            name=f'mmcv.ops.{name}')

    module.__getattr__ = __getattr__
    sys.modules['mmcv.ops'] = module
    # mmcv.cnn warns on import that this op is missing; expected with mmcv-lite
    warnings.filterwarnings('ignore', message='Fail to import ``MultiScaleDeformableAttention``')
    import mmcv
    mmcv.ops = module


def _load_local_checkpoint(filename: str, map_location: Any = None) -> Any:
    """mmengine's local loader with ``weights_only=False`` for torch >= 2.6."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return torch.load(filename, map_location=map_location, weights_only=False)


def _install_checkpoint_loader() -> None:
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(prefixes='', loader=_load_local_checkpoint, force=True)


def _install_cpu_dist_init() -> None:
    """mmengine's pytorch launcher calls ``torch.cuda.set_device`` unconditionally, which fails
    on a CPU-only torch: without CUDA, initialise the process group (gloo) without it."""
    from mmengine.dist import utils as dist_utils
    original = dist_utils._init_dist_pytorch
    if getattr(original, '_smallseg_cpu', False):
        return

    def _init_dist_pytorch(backend, init_backend='torch', **kwargs) -> None:
        if torch.cuda.is_available() or init_backend != 'torch':
            return original(backend, init_backend=init_backend, **kwargs)
        import torch.distributed as torch_dist
        torch_dist.init_process_group(backend=backend, rank=int(os.environ['RANK']),
                                      world_size=int(os.environ['WORLD_SIZE']), **kwargs)

    _init_dist_pytorch._smallseg_cpu = True
    dist_utils._init_dist_pytorch = _init_dist_pytorch


def apply() -> None:
    """Apply the fixes (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    _install_mmcv_ops_shim()
    _install_checkpoint_loader()
    _install_cpu_dist_init()
    _APPLIED = True
