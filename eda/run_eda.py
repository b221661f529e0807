"""EDA in one command: data quality, statistics, plots and a training strategy.

    python eda/run_eda.py [--data-root data/default] [--out eda_results/] [--config CFG]
                          [--img-suffix .jpg] [--seg-suffix .png] [--strict] [--workers N]

Reads ``<root>/img/<split>/<stem><img-suffix>`` and ``<root>/labels/<split>/<stem><seg-suffix>``
for split in train, val, test (missing splits are fine); class names and palette come from
``metainfo`` of ``--config``. Writes to ``--out``: eda_summary.txt, eda_summary.json,
class_distribution.png, image_sizes.png, objects_per_image.png, object_sizes.png, samples.png
and README.md.

eda_summary.json keys: ``splits.<split>.integrity.{images, masks, images_without_mask,
masks_without_image, complete_pairs, unreadable, size_mismatch, usable_pairs}``,
``splits.<split>.label_errors.<kind>``, ``problems: [{split, file, kind, detail}]`` (file relative
to the data root), ``problem_counts.<kind>``, ``label_errors.<kind>`` (all splits),
``pixel_counts|pixel_share|images_with_class.<split>.<class>`` (share = fraction of labelled
pixels, ignore_index excluded), ``ignore_pixels|out_of_range_pixels.<split>``,
``image_sizes.<split>``, ``objects_per_image|object_sizes.<split>.<class>`` (foreground classes;
count/min/p10/median/mean/p90/max), ``strategy.{num_classes, class_weights, weight_formula,
class_weights_inverse_frequency, img_size (width, height), warnings, notes}``.

Problems are reported, never raised. Exit code: 0; 1 with ``--strict`` when any problem was
found; 2 when the data root or config is bad or no image/mask pair can be read at all.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Sequence

DEFAULT_ROOT = 'data/default'
DEFAULT_CONFIG = 'configs/_base_/datasets/img_labels.py'
REPO = Path(__file__).resolve().parents[1]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--data-root', default=DEFAULT_ROOT,
                   help=f'dataset root (default {DEFAULT_ROOT}, generated if missing)')
    p.add_argument('--out', default='eda_results/', help='output directory (default eda_results/)')
    p.add_argument('--config', default=DEFAULT_CONFIG,
                   help='config whose metainfo (classes, palette) is used')
    p.add_argument('--img-suffix', default='.jpg', help='image file suffix (default .jpg)')
    p.add_argument('--seg-suffix', default='.png', help='mask file suffix (default .png)')
    p.add_argument('--ignore-index', type=int, default=255,
                   help='mask value ignored by the loss (default 255; negative: none)')
    p.add_argument('--strict', action='store_true', help='exit 1 when any problem is found')
    p.add_argument('--workers', type=int, default=min(4, os.cpu_count() or 1),
                   help='reader threads (default min(4, cpu count))')
    return p.parse_args(argv)


def load_metainfo(config: str) -> tuple[tuple[str, ...], list[list[int]] | None]:
    """(classes, palette) from ``metainfo`` of a config (or of its train dataset)."""
    from mmengine import Config

    path = Path(config)
    if not path.is_file() and (REPO / config).is_file():
        path = REPO / config
    if not path.is_file():
        raise ValueError(f'config {config} not found')
    cfg = Config.fromfile(str(path))
    meta = cfg.get('metainfo') or cfg.get('train_dataloader', {}).get('dataset', {}).get('metainfo')
    if not meta or not meta.get('classes'):
        raise ValueError(f'config {config} has no metainfo=dict(classes=...)')
    palette = meta.get('palette')
    return tuple(meta['classes']), [list(c) for c in palette] if palette else None


def ensure_default_dataset(root: Path) -> None:
    """Generate the embedded default dataset at ``root`` (needs smallseg.synthetic)."""
    print(f'{root} does not exist: generating the default dataset')
    from smallseg.synthetic import generate_dataset
    generate_dataset(root, seed=0)


def layout_hint(root: Path, img_suffix: str, seg_suffix: str) -> str:
    return (f'expected {root}/img/<split>/<stem>{img_suffix} and '
            f'{root}/labels/<split>/<stem>{seg_suffix} for split in train, val, test')


def run(args: argparse.Namespace) -> int:
    with warnings.catch_warnings():  # importing smallseg loads mmcv-lite, which warns
        warnings.simplefilter('ignore', UserWarning)
        from smallseg.eda import report
        from smallseg.eda.plots import write_plots
        from smallseg.eda.scan import DatasetLayoutError, scan_dataset
        from smallseg.utils.errors import UserError
        from smallseg.apis.outputs import check_output_dir

    root, out = Path(args.data_root), Path(args.out)
    try:
        check_output_dir(out, '--out', what='output folder')
    except UserError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    if args.data_root == DEFAULT_ROOT and not root.exists():
        try:
            ensure_default_dataset(root)
        except ImportError:
            print(f'error: {root} does not exist and smallseg.synthetic is not available to '
                  'generate it; pass --data-root DIR', file=sys.stderr)
            return 2
    try:
        classes, palette = load_metainfo(args.config)
    except Exception as exc:  # noqa: BLE001 - one clear line, no traceback
        print(f'error: cannot read class names: {exc}', file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    try:
        scan = scan_dataset(root, classes, img_suffix=args.img_suffix, seg_suffix=args.seg_suffix,
                            ignore_index=args.ignore_index if args.ignore_index >= 0 else None,
                            workers=max(1, args.workers), progress=True)
    except DatasetLayoutError as exc:
        print(f'error: {exc}; {layout_hint(root, args.img_suffix, args.seg_suffix)}',
              file=sys.stderr)
        return 2
    if scan.total_files == 0:
        other = sum((st.other_files for st in scan.splits.values()), Counter())
        seen = f' (found only {dict(other)})' if other else ''
        print(f'error: no image/mask files under {root}{seen}; '
              f'{layout_hint(root, args.img_suffix, args.seg_suffix)}', file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    summary = report.build_summary(scan, palette, config=str(args.config))
    summary['scan_seconds'] = round(elapsed, 2)
    report.write_json(summary, out / 'eda_summary.json')
    report.write_text(summary, out / 'eda_summary.txt')
    plots = write_plots(scan, out, palette)
    report.write_readme(summary, out / 'README.md', plots)

    for title, table in report.tables(summary, md=False)[:3]:
        print(f'\n{title}\n{table}')
    for w in summary['strategy']['warnings']:
        print(f'WARNING: {w}')
    print(f'\n{scan.total_files} files scanned in {elapsed:.1f}s; {len(scan.problems)} problem(s);'
          f' report in {out}/ (README.md, eda_summary.txt, eda_summary.json)')
    if scan.usable_pairs == 0:
        print(f'error: no readable image/mask pair under {root}; '
              f'{layout_hint(root, args.img_suffix, args.seg_suffix)}', file=sys.stderr)
        return 2
    if args.strict and scan.problems:
        print(f'--strict: {len(scan.problems)} problem(s) found, see {out}/eda_summary.txt',
              file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == '__main__':
    sys.exit(main())
