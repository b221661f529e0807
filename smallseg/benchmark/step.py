"""Where a training step's time goes, in process, against stock mmseg DeepLabV3+.

Each run builds the model, optimiser wrapper and train dataloader from the config exactly as
mmengine's Runner does and times the phases of ``BaseModel.train_step`` separately, in its
order: data loading, the data preprocessor, the forward pass with the loss
(``_run_forward(mode='loss')`` and ``parse_losses``), ``optim_wrapper.backward`` and the
optimizer step with ``zero_grad`` (gradient clipping included). It counts the step's FLOPs
with ``torch.utils.flop_counter`` and times inference with ``test_step``.
"""
from __future__ import annotations

import copy
import resource
import statistics
import time
from pathlib import Path
from typing import Optional

import mmseg
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmseg.registry import MODELS
from torch.utils.flop_counter import FlopCounterMode

from ..apis.class_weights import resolve_class_weights
from ..apis.config import (configure_amp, configure_workers, load_config, set_data_root,
                          set_img_size)
from ..apis.object_prior import resolve_object_prior

STOCK_MODEL = Path(mmseg.__file__).parent / '.mim/configs/_base_/models/deeplabv3plus_r50-d8.py'


def stock_baseline_cfg(our_cfg: Config) -> Config:
    """mmseg's own ``deeplabv3plus_r50-d8`` (stride 8, aux head, fp32) with mmseg's usual
    training pipeline, on our dataset and batch size. SyncBN -> BN (one CPU process) and no
    download of ``open-mmlab://resnet50_v1c``; everything else is mmseg's."""
    stock = Config.fromfile(str(STOCK_MODEL))
    cfg = copy.deepcopy(our_cfg)
    model = stock.model
    model.pretrained = None
    for part in (model.backbone, model.decode_head, model.auxiliary_head):
        part.norm_cfg = dict(type='BN', requires_grad=True)
    num_classes = our_cfg.model.decode_head.num_classes
    model.decode_head.num_classes = model.auxiliary_head.num_classes = num_classes
    model.data_preprocessor.size = our_cfg.model.data_preprocessor.get('size')
    cfg.model = model
    size = tuple(our_cfg.get('img_size') or (256, 256))
    cfg.train_dataloader.dataset.pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations'),
        dict(type='RandomResize', scale=size, ratio_range=(0.5, 2.0), keep_ratio=True),
        dict(type='RandomCrop', crop_size=size[::-1], cat_max_ratio=0.75),  # (h, w)
        dict(type='RandomFlip', prob=0.5),
        dict(type='PhotoMetricDistortion'),
        dict(type='PackSegInputs'),
    ]
    cfg.train_dataloader.num_workers = 2
    cfg.train_dataloader.persistent_workers = True
    cfg.optim_wrapper = dict(type='OptimWrapper',
                             optimizer=dict(type='SGD', lr=0.01, momentum=0.9,
                                            weight_decay=0.0005))
    cfg.custom_hooks = []
    cfg.auto_num_workers = False
    return cfg


def matmul_tflops(dtype: torch.dtype, n: Optional[int] = None, seconds: float = 1.0,
                  repeats: int = 3) -> float:
    """Measured square-matmul throughput of this machine in TFLOP/s: the best of ``repeats``
    windows of ``seconds``, so a moment of contention does not set the peak. Size: 2048 on a
    CPU (1024 for bf16, which AVX2-only CPUs emulate very slowly), 8192 on a GPU. oneDNN's
    convolutions can run somewhat faster than this matmul on a CPU (docs/performance.md)."""
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    if n is None:
        n = 8192 if device == 'cuda' else (1024 if dtype == torch.bfloat16 else 2048)
    a = torch.randn(n, n, dtype=dtype, device=device)
    b = torch.randn(n, n, dtype=dtype, device=device)
    a @ b
    best = 0.0
    for _ in range(repeats):
        if device == 'cuda':
            torch.cuda.synchronize()
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            a @ b
            count += 1
        if device == 'cuda':
            torch.cuda.synchronize()
        best = max(best, 2 * n ** 3 * count / (time.perf_counter() - start) / 1e12)
    return best



PHASES = ('data', 'preprocess', 'forward', 'backward', 'optimizer')


def _peak_mb() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def phased_train_step(model, optim_wrapper, data) -> dict[str, float]:
    """One ``model.train_step(data, optim_wrapper)``, as mmengine does it, with its phases timed
    (seconds): preprocess, forward (loss included), backward, optimizer (step, zero_grad)."""
    t0 = time.perf_counter()
    with optim_wrapper.optim_context(model):
        data = model.data_preprocessor(data, True)
        _sync()
        t1 = time.perf_counter()
        losses = model._run_forward(data, mode='loss')
    parsed, _ = model.parse_losses(losses)
    _sync()
    t2 = time.perf_counter()
    optim_wrapper.backward(optim_wrapper.scale_loss(parsed))  # update_params, split up
    _sync()
    t3 = time.perf_counter()
    if optim_wrapper.should_update():
        optim_wrapper.step()
        optim_wrapper.zero_grad()
    _sync()
    t4 = time.perf_counter()
    return dict(preprocess=t1 - t0, forward=t2 - t1, backward=t3 - t2, optimizer=t4 - t3)


def _infer_img_s(model, cfg: Config, batch: int, infer_batches: int) -> Optional[float]:
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    model.eval()
    val_cfg = copy.deepcopy(cfg.val_dataloader)
    val_cfg.batch_size = batch
    val_loader = Runner.build_dataloader(val_cfg, seed=0)
    autocast = cfg.get('val_cfg', {}).get('fp16', False)
    images, infer_time = 0, 0.0
    with torch.no_grad(), torch.autocast(device, enabled=autocast,
                                         dtype=torch.bfloat16 if device == 'cpu' else None):
        for i, data in enumerate(val_loader):
            if i > infer_batches:
                break
            t0 = time.perf_counter()
            model.test_step(data)
            _sync()
            if i > 0:  # first batch is warm-up
                infer_time += time.perf_counter() - t0
                images += len(data['inputs'])
    return round(images / infer_time, 2) if infer_time else None


def bench_config(cfg: Config, steps: int = 5, warmup: int = 2, channels_last: bool = False,
                 infer_batches: int = 3) -> dict:
    """Median train-step time, its phase shares, FLOPs and inference images/s for ``cfg``."""
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    model = MODELS.build(cfg.model).to(device)
    model.init_weights()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    batch = cfg.train_dataloader.batch_size
    it = iter(loader)

    def next_batch():
        nonlocal it
        try:
            return next(it)
        except StopIteration:
            it = iter(loader)
            return next(it)

    timed = []
    for i in range(warmup + max(steps, 1)):
        t0 = time.perf_counter()
        data = next_batch()
        phases = dict(data=time.perf_counter() - t0, **phased_train_step(model, optim, data))
        if i >= warmup:
            timed.append(phases)
    with FlopCounterMode(display=False) as counter:
        model.train_step(next_batch(), optim)
    flops = counter.get_total_flops()
    totals = [sum(p.values()) for p in timed]
    step = statistics.median(totals)
    # shares of the summed timed steps: they add up to 1
    shares = {k: round(sum(p[k] for p in timed) / sum(totals), 4) for k in PHASES}
    phase_s = {k: round(statistics.median(p[k] for p in timed), 4) for k in PHASES}
    fwd_bwd = statistics.median(p['forward'] + p['backward'] for p in timed)
    return dict(
        step_s=round(step, 3),
        train_img_s=round(batch / step, 2),
        data_share=shares['data'],
        step_shares=shares,
        phase_s=phase_s,
        peak_mem_mb=round(_peak_mb(), 1),
        tflop_per_step=significant(flops / 1e12),
        achieved_tflops=significant(flops / 1e12 / step),
        fwd_bwd_tflops=significant(flops / 1e12 / fwd_bwd),
        infer_img_s=_infer_img_s(model, cfg, batch, infer_batches),
        batch_size=batch,
        step_times=[round(t, 3) for t in totals])


def significant(value: float, digits: int = 4) -> float:
    """``value`` to ``digits`` significant digits: a tiny model's TFLOP/s and share of the
    peak stay above 0 where a fixed number of decimals would round them away."""
    return float(f'{value:.{digits}g}')


def prepare_config(config: str, data_root: Optional[str] = None,
                   batch_size: Optional[int] = None, amp: str = 'auto',
                   cfg_options: Optional[dict] = None,
                   img_size: Optional[tuple[int, int]] = None) -> tuple[Config, str, bool]:
    """``config`` as training builds it (data root, size, 'auto' class weights and prior,
    precision, workers); returns it, the precision and whether it trains channels-last."""
    cfg = load_config(config, cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    set_data_root(cfg, data_root)
    set_img_size(cfg, img_size)
    resolve_class_weights(cfg)  # 'auto' values from the training masks, as training does
    resolve_object_prior(cfg)
    if batch_size:
        cfg.train_dataloader.batch_size = batch_size
    precision = configure_amp(cfg, amp)
    configure_workers(cfg)
    channels_last = any(h.get('type') == 'ChannelsLastHook' and h.get('enabled', True)
                        for h in cfg.get('custom_hooks', []))
    return cfg, precision, channels_last


def bench_steps(configs: list[str], data_root: Optional[str] = None, steps: int = 5,
                warmup: int = 2, batch_size: Optional[int] = None, amp: str = 'auto',
                baseline: bool = True, cfg_options: Optional[dict] = None,
                img_size: Optional[tuple[int, int]] = None) -> dict:
    """Step breakdown of each config (and, if asked, of the stock baseline on the first
    config's data and batch) with the matmul peak in the precision in use."""
    runs = {}
    for i, config in enumerate(configs):
        cfg, precision, channels_last = prepare_config(config, data_root, batch_size, amp,
                                                       cfg_options, img_size)
        if baseline and i == 0:
            base_cfg = stock_baseline_cfg(cfg)  # fp32: its own SGD OptimWrapper
            for key in ('val_cfg', 'test_cfg'):
                if base_cfg.get(key) is not None:
                    base_cfg[key].fp16 = False
        cfg.model.backbone.init_cfg = None
        runs[Path(config).stem] = dict(bench_config(cfg, steps, warmup, channels_last),
                                       precision=precision, channels_last=channels_last)
    if baseline:
        runs['stock_mmseg_deeplabv3plus_r50-d8'] = dict(
            bench_config(base_cfg, steps, warmup, False), precision='fp32', channels_last=False)
    peak = dict(fp32=round(matmul_tflops(torch.float32), 3))
    if any(str(r['precision']).endswith('bfloat16') for r in runs.values()):
        peak['bf16'] = round(matmul_tflops(torch.bfloat16), 3)
    for r in runs.values():
        key = 'bf16' if str(r['precision']).endswith('bfloat16') else 'fp32'
        r['peak_used'] = key
        r['share_of_matmul_peak'] = (significant(r['achieved_tflops'] / peak[key], 3)
                                     if peak[key] else None)
        r['fwd_bwd_share_of_matmul_peak'] = (significant(r['fwd_bwd_tflops'] / peak[key], 3)
                                             if peak[key] else None)
    return dict(matmul_peak_tflops=peak, runs=runs)
