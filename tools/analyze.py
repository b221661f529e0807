"""Pictures and curves of a trained + tested model.

``python tools/analyze.py CONFIG [CHECKPOINT] [--data-root DIR] [--out DIR] [--work-dir DIR]``

* error analysis on the test split: ``best.png``, ``worst.png``, ``correct_1..3.png``,
  ``error_1..3.png``, ``confusion_matrix.png``, ``per_image.csv``, ``summary.json``/``.txt``
  in ``--out`` (default ``supplementary/viz/<config name>``);
* training curves from the run's logs: ``<work dir>/training_curves.png``.

CHECKPOINT defaults to the newest ``best_*.pth`` of the work dir (``work_dirs/<config
name>``, or the CHECKPOINT's folder). Logic: :mod:`smallseg.analysis`.
"""
import argparse
from pathlib import Path

from smallseg.analysis import plot_training_curves, run_error_analysis
from smallseg.apis import UserError, cli_entry
from smallseg.apis.cli import add_common_arguments
from smallseg.apis.config import default_work_dir


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Error-analysis pictures and training curves')
    parser.add_argument('config', help='the config the model was trained with')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint (default: best_*.pth of '
                        'the work dir)')
    add_common_arguments(parser, work_dir='training work dir (default: the checkpoint\'s '
                                          'folder, else work_dirs/<config name>)')
    parser.add_argument('--out', help='pictures folder (default: supplementary/viz/<name>)')
    parser.add_argument('--split', choices=['val', 'test'], default='test')
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--device', help="'cpu' or 'cuda:0' (default: cuda if present)")
    parser.add_argument('--no-curves', dest='curves', action='store_false',
                        help='skip the training curves')
    return parser.parse_args()


@cli_entry
def main() -> None:
    args = parse_args()
    name = Path(args.config).stem
    work_dir = Path(args.work_dir or (Path(args.checkpoint).parent if args.checkpoint
                                      else default_work_dir(args.config)))
    checkpoint = args.checkpoint
    if checkpoint is None:
        found = sorted(work_dir.glob('best_*.pth'), key=lambda p: p.stat().st_mtime)
        if not found:
            raise UserError(f'no best_*.pth in {work_dir}; pass CHECKPOINT or --work-dir')
        checkpoint = found[-1]
    out = Path(args.out or Path('supplementary') / 'viz' / name)
    summary = run_error_analysis(args.config, checkpoint, out, data_root=args.data_root,
                                 split=args.split, batch_size=args.batch_size,
                                 device=args.device, cfg_options=args.cfg_options)
    print((out / 'summary.txt').read_text(), end='')
    print(f"pictures: {', '.join(summary['pictures'])} in {out}")
    if args.curves:
        try:
            print(f'training curves: {plot_training_curves(work_dir, title=name)}')
        except FileNotFoundError as exc:
            print(f'warning: no training curves ({exc})')


if __name__ == '__main__':
    main()
