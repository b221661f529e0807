"""Compare the models of results.json: ``python tools/compare.py [--results F] [--out-dir D]``.

Writes ``D/detailed_comparison.json``, ``D/comparison.md`` (models x metrics, best in bold)
and ``D/<model>_best.json`` experiment cards (default ``D`` = ``results/``); prints the table.
Logic: :mod:`smallseg.analysis.compare`.
"""
import argparse
from pathlib import Path

from smallseg.analysis import write_comparison
from smallseg.apis import UserError, cli_entry


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Comparison table of the trained models')
    parser.add_argument('--results', default='results.json', help='results file to read')
    parser.add_argument('--out-dir', default='results', help='where to write (default: results)')
    return parser.parse_args()


@cli_entry
def main() -> None:
    args = parse_args()
    if not Path(args.results).is_file():
        raise UserError(f'{args.results} not found; run tools/test.py (or make run) first')
    paths = write_comparison(args.results, args.out_dir)
    print(paths['comparison_md'].read_text(), end='')
    print('wrote ' + ', '.join(str(p) for p in paths.values()))


if __name__ == '__main__':
    main()
