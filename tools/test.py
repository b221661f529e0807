"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT [--split val|test] ...``.

Arguments follow mmseg's tools/test.py; prints the per-class table, writes metrics to
``--out`` and merges the model's entry into results.json. More ``CONFIG CHECKPOINT`` pairs
evaluate the ensemble of all (mean class probabilities at the mask size, then the one-object
prior; results.json ``ensembles[--model-name]``, default ``ensemble``).
Logic: :mod:`smallseg.apis.test`.
"""
import argparse
from pathlib import Path

from mmengine.dist import get_rank

from smallseg import tracking
from smallseg.apis import UserError, cli_entry
from smallseg.apis.cli import add_common_arguments
from smallseg.apis.config import add_amp_arguments
from smallseg.apis.outputs import check_outputs
from smallseg.apis.test import (build_ensemble_test_cfg, build_test_cfg, class_table, evaluate,
                                output_paths, pair_up, record_ensemble_results,
                                record_results, write_outputs)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Evaluate a segmentor, or the ensemble of several',
        epilog='ensemble: tools/test.py A.py a.pth B.py b.pth [C.py c.pth ...] averages the '
               "members' class probabilities at the mask size, then applies the first "
               "member's one-object prior; results.json gets ensembles[--model-name]")
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('more', nargs='*', metavar='CONFIG CHECKPOINT',
                        help='further config/checkpoint pairs: evaluate the ensemble of all')
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
    parser.add_argument('--model-name', help='key in results.json (default: the config '
                        "name; 'ensemble' for several pairs)")
    parser.add_argument('--weights', nargs='+', type=float, metavar='W',
                        help="ensemble: one weight per member (default: equal)")
    add_amp_arguments(parser)
    return parser.parse_intermixed_args()


@cli_entry
def main() -> None:
    args = parse_args()
    tracking.set_mode(args.clearml)
    pairs = pair_up([args.config, args.checkpoint, *args.more])
    ensemble = len(pairs) > 1
    if args.weights and len(args.weights) != len(pairs):
        raise UserError(f'--weights: {len(args.weights)} given for {len(pairs)} models')
    name = args.model_name or ('ensemble' if ensemble else Path(args.config).stem)
    paths = output_paths(args.out, name, args.split) if args.out else None
    check_outputs(files=[('--out', p) for p in (paths or {}).values()] + [
        ('--results', args.results or None)], dirs=[('--show-dir', args.show_dir)])
    common = dict(split=args.split, work_dir=args.work_dir, data_root=args.data_root,
                  amp=args.amp, show_dir=args.show_dir, cfg_options=args.cfg_options,
                  launcher=args.launcher, tta=args.tta,
                  csv_path=paths['per_image'] if paths else None)
    if ensemble:
        cfg = build_ensemble_test_cfg(pairs, weights=args.weights, **common)
    else:
        cfg = build_test_cfg(args.config, args.checkpoint, **common)
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
    if args.results and ensemble:
        record_ensemble_results(args.results, name, args.split, metrics, pairs, args.weights)
    elif args.results:
        record_results(args.results, name, args.split, metrics, args.config, args.checkpoint)
    # metrics go to the training run's ClearML task (or a new one); close it with the files
    tracking.finish_tracking({f'{args.split}_metrics': paths['metrics'] if paths else None,
                              'results': args.results})


if __name__ == '__main__':
    main()
