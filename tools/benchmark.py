"""Speed benchmark: ``python tools/benchmark.py CONFIG [--data-root DIR] [--out FILE]``.

Times the config's training step (data share, peak memory, FLOPs, TFLOP/s) and inference
against stock mmseg DeepLabV3+ R50-D8 in fp32, prints a table and writes JSON.
"""
import argparse
import json
from pathlib import Path

from smallseg.apis import cli_entry
from smallseg.apis.cli import add_common_arguments
from smallseg.benchmark import format_table, run_benchmark


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Benchmark training and inference speed')
    parser.add_argument('config', help='config file')
    add_common_arguments(parser, data_root=dict(default='data/default', help='dataset root'))
    parser.add_argument('--steps', type=int, default=5, help='timed steps (median)')
    parser.add_argument('--warmup', type=int, default=2, help='untimed warm-up steps')
    parser.add_argument('--batch-size', type=int, help='override the train batch size')
    parser.add_argument('--img-size', type=int, nargs=2, metavar=('W', 'H'),
                        help='train/infer at this size (default: the config\'s, 256 256)')
    parser.add_argument('--amp', choices=['auto', 'on', 'off'], default='auto')
    parser.add_argument('--no-baseline', action='store_true',
                        help='skip the stock mmseg baseline')
    parser.add_argument('--out', default='benchmarks/results.json', help='JSON output')
    return parser.parse_args()


@cli_entry
def main() -> None:
    args = parse_args()
    if args.data_root == 'data/default' and not Path('data/default/img').is_dir():
        from smallseg.synthetic import generate_dataset
        generate_dataset(Path('data/default'))
    result = run_benchmark(args.config, data_root=args.data_root, steps=args.steps,
                           warmup=args.warmup, batch_size=args.batch_size, amp=args.amp,
                           baseline=not args.no_baseline, cfg_options=args.cfg_options,
                           img_size=args.img_size)
    print(format_table(result))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f'written {out}')


if __name__ == '__main__':
    main()
