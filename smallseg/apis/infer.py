"""Inference on new images: index masks (original size) and overlays; logic of tools/infer.py.

Why not :class:`mmseg.apis.MMSegInferencer`: it names saved masks by a counter
(``00000000_pred.png``), and overlays of in-memory images likewise, where this tool writes
``masks/<stem>.png``, ``overlays/<stem>.png`` and ``predictions.csv``; its overlays use
``SegLocalVisualizer``'s colours (cityscapes' when a checkpoint has no palette), not the one
palette of :mod:`smallseg.utils.palette`. Images are decoded here first (16-bit, RGBA,
grayscale: :func:`to_bgr_uint8`), so it would only see arrays; with its outputs unused it
reduces to what this module does: ``init_model``, the config's test pipeline and
``test_step`` in batches, with the checkpoint's 'auto' decisions and flip inside the model.
"""
from __future__ import annotations

import copy
import csv
import logging
import sys
import warnings
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Sequence

import cv2
import numpy as np
import torch
from mmengine.config import Config

from .config import load_config
from ..utils.errors import UserError
from .outputs import check_output_dir, check_output_file
from .test import check_checkpoint, ensemble_members, ensemble_pipeline, settle_auto

IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def list_images(source: str | Path) -> list[Path]:
    """``source`` itself when it is a file, else the image files directly inside the folder."""
    source = Path(source)
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise UserError(f'{source} is neither an image file nor a folder')
    files = sorted(p for p in source.iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
    if not files:
        raise UserError(f'no image files ({", ".join(IMAGE_EXTS)}) in {source}')
    return files


def to_bgr_uint8(img: np.ndarray) -> np.ndarray:
    """Any decoded image as 3-channel 8-bit BGR (the layout mmseg's loaders produce).

    Grayscale -> 3 channels; alpha dropped; 16-bit scaled by 1/257 (full range -> 0..255);
    float images in [0, 1] scaled by 255, others clipped to 0..255.
    """
    if img.dtype == np.uint16:
        img = img.astype(np.float32) / 257.0
    elif img.dtype.kind == 'f':
        img = img * 255.0 if np.nanmax(img) <= 1.0 else img
        img = np.nan_to_num(img)
    elif img.dtype != np.uint8:
        img = img.astype(np.float32)
    img = np.clip(np.rint(img), 0, 255).astype(np.uint8) if img.dtype != np.uint8 else img
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.ndim == 3 and img.shape[2] == 1:
        return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2BGR)
    if img.ndim == 3 and img.shape[2] == 2:  # gray + alpha
        return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2BGR)
    if img.ndim == 3 and img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    if img.ndim == 3 and img.shape[2] == 3:
        return np.ascontiguousarray(img)
    raise ValueError(f'unsupported image shape {img.shape}')


def read_image(path: str | Path) -> np.ndarray:
    """Decode ``path`` to 8-bit BGR; ``ValueError`` with the reason when it cannot be read."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise ValueError(exc.strerror or type(exc).__name__) from exc
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None or img.size == 0:
        raise ValueError('not a decodable image' if data.size else 'empty file')
    return to_bgr_uint8(img)


def resolve_device(device: Optional[str] = None) -> str:
    """``device`` checked against this machine (None: the first GPU if present, else 'cpu')."""
    if device is None:
        return 'cuda:0' if torch.cuda.is_available() else 'cpu'
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise UserError(f"--device {device!r} is not a device name; use 'cpu' or 'cuda:0'") from exc
    if dev.type == 'cuda':
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UserError(f'--device {device}: this machine has no CUDA GPU (or this PyTorch '
                            'is built without CUDA); use --device cpu or leave --device out')
        if dev.index is not None and dev.index >= count:
            raise UserError(f'--device {device}: this machine has {count} GPU'
                            f'{"s" if count > 1 else ""} (cuda:0..cuda:{count - 1})')
    elif dev.type != 'cpu':
        raise UserError(f"--device {device}: only 'cpu' and 'cuda[:N]' are supported")
    return str(dev)


def load_model(config: str | Path | Config, checkpoint: str | Path,
               device: Optional[str] = None, cfg_options: Optional[dict] = None
               ) -> torch.nn.Module:
    """Build the model of ``config`` with the weights of ``checkpoint`` (checked first)."""
    from mmseg.apis import init_model
    cfg = config if isinstance(config, Config) else load_config(config, cfg_options)
    cfg = copy.deepcopy(cfg)
    settle_auto(cfg, check_checkpoint(checkpoint, cfg))
    # the dataloader's test pipeline (what evaluation uses), without annotations
    cfg.test_pipeline = [t for t in cfg.test_dataloader.dataset.pipeline
                         if t.get('type') != 'LoadAnnotations']
    device = resolve_device(device)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = init_model(cfg, str(checkpoint), device=device)
    meta = getattr(model, 'dataset_meta', None) or {}
    num_classes = model.decode_head.num_classes
    if len(meta.get('classes', ())) != num_classes:  # checkpoint without usable class names
        meta = dict(cfg.get('metainfo') or {})
        meta.setdefault('classes', tuple(f'class_{i}' for i in range(num_classes)))
        model.dataset_meta = meta
    return model


def load_ensemble(pairs: Sequence[tuple[str | Path, str | Path]],
                  device: Optional[str] = None, cfg_options: Optional[dict] = None,
                  weights: Optional[Sequence[float]] = None) -> torch.nn.Module:
    """An :class:`smallseg.models.EnsembleSegmentor` of the ``(config, checkpoint)`` pairs,
    each member loaded as :func:`load_model` loads one model; checked as
    :func:`.test.ensemble_members` checks them (same classes). Its test pipeline is the first
    member's (without Resize when the members' differ: each resizes to its own size)."""
    from smallseg.models import EnsembleSegmentor
    specs, cfgs = ensemble_members([(str(c), str(k)) for c, k in pairs], cfg_options)
    for spec, cfg in zip(specs, cfgs):
        spec['model'] = load_model(cfg, spec['checkpoint'], device=device)
    first = specs[0]['model']
    model = EnsembleSegmentor(members=specs, weights=weights)
    model.cfg = copy.deepcopy(first.cfg)
    model.cfg.test_pipeline = ensemble_pipeline(first.cfg.test_pipeline, cfgs)
    model.dataset_meta = first.dataset_meta
    return model.to(resolve_device(device)).eval()


def _drop_mixed_shape_notice(record: logging.LogRecord) -> bool:
    """mmseg logs a warning for batches of different original sizes, which we handle."""
    return 'Image shapes are different in the batch' not in record.getMessage()


@torch.no_grad()
def predict(model: torch.nn.Module, images: Sequence[np.ndarray], batch_size: int = 4
            ) -> Iterator[np.ndarray]:
    """Yield one uint8 index mask per BGR image, at the image's own size, ``batch_size`` at once."""
    from mmengine.logging import MMLogger
    from mmseg.apis import inference_model
    logger = MMLogger.get_current_instance()
    for start in range(0, len(images), max(1, batch_size)):
        chunk = list(images[start:start + max(1, batch_size)])
        logger.addFilter(_drop_mixed_shape_notice)
        try:
            results = inference_model(model, chunk)
        finally:
            logger.removeFilter(_drop_mixed_shape_notice)
        for img, result in zip(chunk, results):
            mask = result.pred_sem_seg.data[0].cpu().numpy().astype(np.uint8)
            if mask.shape != img.shape[:2]:  # safety net; mmseg restores ori_shape itself
                mask = cv2.resize(mask, img.shape[1::-1], interpolation=cv2.INTER_NEAREST)
            yield mask


def _readable(paths: Iterable[Path], warn: Callable[[Path, str], None]
              ) -> Iterator[tuple[Path, np.ndarray]]:
    """Decoded images; an unreadable one is skipped with ``warn(path, reason)``.

    Warnings about files before the first readable one are held back, so a run where
    nothing is readable ends in a single error line.
    """
    held: list[tuple[Path, str]] = []
    found = False
    for path in paths:
        try:
            img = read_image(path)
        except ValueError as exc:
            if found:
                warn(path, str(exc))
            else:
                held.append((path, str(exc)))
            continue
        if not found:
            found = True
            for item in held:
                warn(*item)
        yield path, img
    if not found:
        path, reason = held[0]
        if len(held) == 1:
            raise UserError(f'cannot read image {path} ({reason})')
        raise UserError(f'none of the {len(held)} images could be read ({path}: {reason})')


def _out_names(paths: Sequence[Path]) -> dict[Path, str]:
    """``<stem>.png`` per input; the full file name when two inputs share a stem."""
    stems = [p.stem for p in paths]
    return {p: (p.stem if stems.count(p.stem) == 1 else p.name.replace('.', '_')) + '.png'
            for p in paths}


def run_inference(config: str | Path, checkpoint: str | Path, source: str | Path,
                  out_dir: str | Path, batch_size: int = 4, device: Optional[str] = None,
                  cfg_options: Optional[dict] = None, overlays: bool = True,
                  progress: bool = True,
                  more: Sequence[tuple[str | Path, str | Path]] = (),
                  weights: Optional[Sequence[float]] = None) -> dict:
    """Segment every image of ``source``; write masks, overlays and ``predictions.csv``.

    ``more``: further ``(config, checkpoint)`` pairs; the images are then segmented by the
    ensemble of all (:func:`load_ensemble`, ``weights`` one per member).

    ``out_dir/masks/<stem>.png``: uint8 index masks at the original size;
    ``out_dir/overlays/<stem>.png``: the image with the class colours blended in;
    ``out_dir/predictions.csv``: size and predicted pixels per class of every image.
    Returns a summary (counts, skipped files, output folder).
    """
    from tqdm import tqdm

    from smallseg.analysis.overlay import overlay
    from smallseg.utils.palette import make_palette
    if batch_size < 1:
        raise UserError(f'--batch-size must be >= 1, got {batch_size}')
    paths = list_images(source)
    out = check_output_dir(out_dir, '--out', what='output folder')
    for sub in ('masks', 'overlays') if overlays else ('masks',):
        check_output_dir(out / sub, '--out', what='output folder')
    check_output_file(out / 'predictions.csv', '--out')
    resolve_device(device)
    if more:
        if weights and len(weights) != len(more) + 1:
            raise UserError(f'--weights: {len(weights)} given for {len(more) + 1} models')
        model = load_ensemble([(config, checkpoint), *more], device=device,
                              cfg_options=cfg_options, weights=weights)
    else:
        model = load_model(load_config(config, cfg_options), checkpoint, device=device)
    classes = list(model.dataset_meta['classes'])
    palette = make_palette(len(classes), model.dataset_meta.get('palette'))
    names = _out_names(paths)
    bar: Optional[tqdm] = None  # opened at the first readable image
    skipped: list[str] = []

    def warn(path: Path, reason: str) -> None:
        skipped.append(str(path))
        tqdm.write(f'warning: cannot read {path} ({reason}); skipped', file=sys.stderr)

    rows = []
    batch: list[tuple[Path, np.ndarray]] = []

    def flush() -> None:
        masks = predict(model, [img for _, img in batch], batch_size=len(batch))
        for (path, img), mask in zip(batch, masks):
            cv2.imwrite(str(out / 'masks' / names[path]), mask)
            if overlays:
                rgb = overlay(img[:, :, ::-1], mask, palette)
                cv2.imwrite(str(out / 'overlays' / names[path]), rgb[:, :, ::-1])
            counts = np.bincount(mask.ravel(), minlength=len(classes))[:len(classes)]
            rows.append([path.name, names[path], img.shape[1], img.shape[0]] + counts.tolist())
        bar.update(len(batch))
        batch.clear()

    try:
        for path, img in _readable(paths, warn):
            if bar is None:
                bar = tqdm(total=len(paths), desc='infer', unit='img', file=sys.stderr,
                           disable=not progress)
            batch.append((path, img))
            if len(batch) == batch_size:
                flush()
        if batch:
            flush()
    finally:
        if bar is not None:
            bar.update(len(paths) - bar.n)
            bar.close()
    with (out / 'predictions.csv').open('w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['image', 'mask', 'width', 'height'] + [f'px.{c}' for c in classes])
        writer.writerows(rows)
    return dict(images=len(paths), written=len(rows), skipped=skipped, out_dir=str(out),
                classes=classes)
