"""Speed benchmark: ``python tools/benchmark.py CONFIG... [--epochs N] [--compare REV]``.

Times each config's training step by phase (data, preprocessor, forward, backward, optimizer;
FLOPs, TFLOP/s, share of the measured matmul peak) and inference, against stock mmseg
DeepLabV3+ R50-D8 in fp32; trains each config for ``--epochs`` epochs with this tree's
``tools/train.py`` (and, with ``--compare REV``, with REV's, from a git worktree) and splits the
epoch into training, validation and checkpoint saving. Prints Markdown tables, writes JSON.
"""
import argparse
import json
import sys
from pathlib import Path

from smallseg.apis import cli_entry
from smallseg.apis.cli import add_common_arguments
from smallseg.benchmark import format_table, run_benchmark


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Benchmark training and inference speed')
    parser.add_argument('config', nargs='+', help='config file(s)')
    add_common_arguments(parser, data_root=dict(default='data/default', help='dataset root'))
    parser.add_argument('--steps', type=int, default=5,
                        help='timed steps (median); 0 skips the step breakdown')
    parser.add_argument('--warmup', type=int, default=2, help='untimed warm-up steps')
    parser.add_argument('--batch-size', type=int, help='override the train batch size')
    parser.add_argument('--img-size', type=int, nargs=2, metavar=('W', 'H'),
                        help='train/infer at this size (default: the config\'s)')
    parser.add_argument('--amp', choices=['auto', 'on', 'off'], default='auto')
    parser.add_argument('--no-baseline', action='store_true',
                        help='skip the stock mmseg baseline')
    parser.add_argument('--epochs', type=int, default=3,
                        help='train each config this many epochs for the epoch breakdown '
                             '(median of epochs 2..N); 0 skips it')
    parser.add_argument('--compare', metavar='REV',
                        help='also run the epoch breakdown on git revision REV (a worktree) '
                             'and print the epoch-time ratio REV / this tree')
    parser.add_argument('--out', default='benchmarks/results.json', help='JSON output')
    return parser.parse_args()


@cli_entry
def main() -> None:
    args = parse_args()
    if args.data_root == 'data/default' and not Path('data/default/img').is_dir():
        from smallseg.synthetic import generate_dataset
        generate_dataset(Path('data/default'))
    result = run_benchmark(
        args.config, data_root=args.data_root, steps=args.steps, warmup=args.warmup,
        batch_size=args.batch_size, amp=args.amp, baseline=not args.no_baseline,
        cfg_options=args.cfg_options, img_size=args.img_size, epochs=args.epochs,
        compare=args.compare, log=lambda line: print(line, file=sys.stderr, flush=True))
    print(format_table(result))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f'written {out}')


if __name__ == '__main__':
    main()
