"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT [--split val|test] ...``.

Arguments follow mmseg's tools/test.py; prints the per-class table, writes metrics to
``--out`` and merges the model's entry into results.json. Logic: :mod:`smallseg.apis.test`.
"""
import argparse
from pathlib import Path

from mmengine.dist import get_rank

from smallseg import tracking
from smallseg.apis import cli_entry
from smallseg.apis.cli import add_common_arguments
from smallseg.apis.config import add_amp_arguments
from smallseg.apis.outputs import check_outputs
from smallseg.apis.test import (build_test_cfg, class_table, evaluate, output_paths,
                                record_results, write_outputs)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Evaluate a segmentor')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    add_common_arguments(parser, work_dir='the dir to save evaluation logs', launcher=True,
                         clearml=True)
    parser.add_argument('--split', choices=['val', 'test'], default='test',
                        help='which split to evaluate (default: test)')
    parser.add_argument('--out', help='file (.json) or dir for the metrics JSON, the '
                        'per-image CSV and the confusion-matrix PNG')
    parser.add_argument('--show-dir', help='save painted predictions to this dir')
    parser.add_argument('--tta', action='store_true',
                        help='test-time augmentation: the mean of the image and its mirror')
    parser.add_argument('--results', default='results.json',
                        help='results file to update (default: results.json)')
    parser.add_argument('--model-name', help='key in results.json (default: config name)')
    add_amp_arguments(parser)
    return parser.parse_args()


@cli_entry
def main() -> None:
    args = parse_args()
    tracking.set_mode(args.clearml)
    name = args.model_name or Path(args.config).stem
    paths = output_paths(args.out, name, args.split) if args.out else None
    check_outputs(files=[('--out', p) for p in (paths or {}).values()] + [
        ('--results', args.results or None)], dirs=[('--show-dir', args.show_dir)])
    cfg = build_test_cfg(args.config, args.checkpoint, split=args.split,
                         work_dir=args.work_dir, data_root=args.data_root, amp=args.amp,
                         show_dir=args.show_dir, cfg_options=args.cfg_options,
                         launcher=args.launcher, tta=args.tta,
                         csv_path=paths['per_image'] if paths else None)
    metrics = evaluate(cfg)
    if get_rank() != 0:  # every rank gets the collected metrics; one writes them
        return
    print(f'\n{name} {args.split} (fractions; mDice = mean over all classes, dataset-level):')
    print(class_table(metrics))
    print(f"mDice {metrics['mDice']:.4f}  mDice_fg {metrics.get('mDice_fg') or 0:.4f}  "
          f"mDice per image {metrics.get('mDice_per_image') or 0:.4f}  "
          f"mIoU {metrics['mIoU']:.4f}")
    if paths:
        write_outputs(paths, metrics, title=f'{name} — {args.split} confusion matrix')
        print('wrote ' + ', '.join(str(p) for p in paths.values() if p.is_file()))
    if args.results:
        record_results(args.results, name, args.split, metrics, args.config, args.checkpoint)
    # metrics go to the training run's ClearML task (or a new one); close it with the files
    tracking.finish_tracking({f'{args.split}_metrics': paths['metrics'] if paths else None,
                              'results': args.results})


if __name__ == '__main__':
    main()
