"""Training/inference speed of a config against stock mmseg DeepLabV3+, on real data.

Used by ``tools/benchmark.py``. Each run builds the model, optimiser wrapper and train
dataloader from the config exactly as mmengine's Runner does, then times real
``model.train_step`` calls (data loading timed separately), inference with ``test_step``,
and counts the step's FLOPs with ``torch.utils.flop_counter``.
"""
from __future__ import annotations

import copy
import platform
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

from .apis.class_weights import resolve_class_weights
from .apis.config import (configure_amp, configure_workers, load_config, set_data_root,
                          set_img_size)
from .apis.object_prior import resolve_object_prior

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
        dict(type='RandomCrop', crop_size=size, cat_max_ratio=0.75),
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


def _peak_mb() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_config(cfg: Config, steps: int = 5, warmup: int = 2, channels_last: bool = False,
                 infer_batches: int = 3) -> dict:
    """Median train-step time, data share, FLOPs and inference images/s for ``cfg``."""
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

    step_times, data_times = [], []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        data = next_batch()
        t1 = time.perf_counter()
        model.train_step(data, optim)
        if device == 'cuda':
            torch.cuda.synchronize()
        t2 = time.perf_counter()
        if i >= warmup:
            step_times.append(t2 - t0)
            data_times.append(t1 - t0)
    with FlopCounterMode(display=False) as counter:
        model.train_step(next_batch(), optim)
    flops = counter.get_total_flops()
    step = statistics.median(step_times)

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
            if device == 'cuda':
                torch.cuda.synchronize()
            if i > 0:  # first batch is warm-up
                infer_time += time.perf_counter() - t0
                images += len(data['inputs'])
    return dict(
        step_s=round(step, 3),
        train_img_s=round(batch / step, 2),
        data_share=round(statistics.median(data_times) / step, 3),
        peak_mem_mb=round(_peak_mb(), 1),
        tflop_per_step=round(flops / 1e12, 3),
        achieved_tflops=round(flops / 1e12 / step, 3),
        infer_img_s=round(images / infer_time, 2) if infer_time else None,
        batch_size=batch,
        step_times=[round(t, 3) for t in step_times])


def run_benchmark(config: str, data_root: Optional[str] = None, steps: int = 5,
                  warmup: int = 2, batch_size: Optional[int] = None,
                  amp: str = 'auto', baseline: bool = True,
                  cfg_options: Optional[dict] = None,
                  img_size: Optional[tuple[int, int]] = None) -> dict:
    """Benchmark ``config`` with its defaults and, if asked, the stock-mmseg baseline."""
    cfg = load_config(config, cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    set_data_root(cfg, data_root)
    set_img_size(cfg, img_size)
    resolve_class_weights(cfg)  # 'auto' values from the training masks, as training does
    resolve_object_prior(cfg)
    if batch_size:
        cfg.train_dataloader.batch_size = batch_size
    base_cfg = stock_baseline_cfg(cfg) if baseline else None
    cfg.model.backbone.init_cfg = None
    precision = configure_amp(cfg, amp)
    configure_workers(cfg)
    channels_last = any(h.get('type') == 'ChannelsLastHook' and h.get('enabled', True)
                        for h in cfg.get('custom_hooks', []))
    runs = {Path(config).stem: dict(bench_config(cfg, steps, warmup, channels_last),
                                    precision=precision, channels_last=channels_last)}
    if base_cfg is not None:
        runs['stock_mmseg_deeplabv3plus_r50-d8'] = dict(
            bench_config(base_cfg, steps, warmup, False), precision='fp32',
            channels_last=False)
    peak = dict(fp32=round(matmul_tflops(torch.float32), 3))
    if precision.endswith('bfloat16'):
        peak['bf16'] = round(matmul_tflops(torch.bfloat16), 3)
    key = 'bf16' if 'bf16' in peak else 'fp32'
    for r in runs.values():
        r['share_of_matmul_peak'] = (round(r['achieved_tflops'] / peak[key], 3)
                                     if peak[key] else None)
    return dict(config=config, machine=dict(
        processor=platform.processor() or platform.machine(),
        device=torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu',
        threads=torch.get_num_threads(), torch=torch.__version__),
        matmul_peak_tflops=peak, peak_used=key, runs=runs,
        date=time.strftime('%Y-%m-%d %H:%M'))


def format_table(result: dict) -> str:
    """The benchmark as a Markdown table."""
    head = ('| run | precision | step s | train img/s | data share | peak MB | TFLOP/step '
            '| TFLOP/s | % of matmul peak | infer img/s |\n' + '|---' * 10 + '|')
    rows = [head]
    for name, r in result['runs'].items():
        share = r.get('share_of_matmul_peak')
        rows.append(
            f"| {name} | {r['precision']}{' +CL' if r['channels_last'] else ''} | {r['step_s']} "
            f"| {r['train_img_s']} | {r['data_share']:.1%} | {r['peak_mem_mb']:.0f} "
            f"| {r['tflop_per_step']} | {r['achieved_tflops']} "
            f"| {'-' if share is None else f'{share:.0%}'} | {r['infer_img_s']} |")
    runs = list(result['runs'].values())
    if len(runs) == 2:
        rows.append(f"\nspeed-up of the training step over stock mmseg: "
                    f"{runs[1]['step_s'] / runs[0]['step_s']:.2f}x")
    rows.append(f"matmul peak ({result['peak_used']}): "
                f"{result['matmul_peak_tflops'][result['peak_used']]} TFLOP/s; machine: "
                f"{result['machine']}")
    return '\n'.join(rows)
