"""Generate the embedded default dataset ("round" vs "angular" objects) in the seed layout.

    .venv/bin/python datasets/make_default_dataset.py                 # -> data/default
    .venv/bin/python datasets/make_default_dataset.py --out /tmp/d --seed 1 --force

Deterministic (same arguments -> byte-identical files) and idempotent (does nothing when
``<out>/dataset_info.json`` matches the arguments and every file is there). The design of the
data is documented in :mod:`smallseg.synthetic`.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', type=Path, default=Path('data/default'),
                        help='dataset root to write (default: data/default)')
    parser.add_argument('--seed', type=int, default=0, help='base random seed (default: 0)')
    parser.add_argument('--num-train', type=int, default=200, help='train images (default: 200)')
    parser.add_argument('--num-val', type=int, default=120, help='val images (default: 120)')
    parser.add_argument('--num-test', type=int, default=120, help='test images (default: 120)')
    parser.add_argument('--size', type=int, default=256, help='image side in pixels (default: 256)')
    parser.add_argument('--workers', type=int, default=None,
                        help='worker threads (default: all CPUs)')
    parser.add_argument('--force', action='store_true',
                        help='regenerate even if the dataset is already complete')
    parser.add_argument('--quiet', action='store_true', help='no progress output')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from smallseg.synthetic import generate_dataset  # imports mmseg (slow): after --help

    generate_dataset(
        args.out, seed=args.seed,
        counts={'train': args.num_train, 'val': args.num_val, 'test': args.num_test},
        size=args.size, progress=not args.quiet, force=args.force, workers=args.workers)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
