"""Compare training recipes on one dataset.

``python tools/compare_recipes.py CONFIG [CONFIG ...] --data-root DIR [--time-budget MIN]``
trains each config into ``<work-dir>/<config name>``, then prints and writes the table
(model x recipe: epochs, training minutes, val mDice, mDice_fg, per-class Dice at the best
val epoch) to ``<out>.md`` and ``<out>.json``. ``--seeds N`` trains each config N times
(``<work-dir>/<config name>_s<seed>``) and tabulates mean, standard deviation and worst;
``--folds K`` cross-validates over train+val, run i on fold i. ``--ensemble`` also scores
the configs' ensemble run by run (same seed and fold) and its gain over the better member.
Logic: :mod:`smallseg.apis.recipes`, :mod:`smallseg.apis.folds`.
"""
import argparse

from smallseg import tracking
from smallseg.apis import cli_entry
from smallseg.apis.cli import add_common_arguments
from smallseg.apis.recipes import compare_recipes, write_recipes

DEFAULT_CONFIGS = ['configs/deeplabv3plus_r50_seed.py', 'configs/deeplabv3plus_r50.py',
                   'configs/unet_r34_seed.py', 'configs/unet_r34.py']


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train recipes and compare them on val')
    parser.add_argument('configs', nargs='*', default=DEFAULT_CONFIGS,
                        help='configs to compare (default: both models, seed and default)')
    add_common_arguments(
        parser, work_dir=dict(default='work_dirs/recipes',
                              help='runs go to WORK_DIR/<config name> (default: '
                                   'work_dirs/recipes)'),
        data_root=dict(required=True, help='dataset root'),
        cfg_options='override settings of every config, as in tools/train.py; the recipe '
                    'column names them', clearml=True)
    parser.add_argument('--time-budget', type=float, metavar='MIN',
                        help='training minutes per config (max_epochs and the LR decay fitted '
                             'to them)')
    parser.add_argument('--epochs', type=int, help='override every config\'s max_epochs')
    parser.add_argument('--seeds', type=int, metavar='N',
                        help='train each config N times (seeds SEED, SEED+1, ...) into '
                             'WORK_DIR/<config name>_s<seed>; the table shows mean, std and '
                             'worst over the runs')
    parser.add_argument('--seed', type=int, metavar='SEED',
                        help='base seed of --seeds and --folds (default: drawn, printed and '
                             'recorded)')
    parser.add_argument('--folds', type=int, metavar='K',
                        help='K-fold cross-validation over train+val (stratified by image '
                             'class, split by SEED): run i trains on the other folds with seed '
                             'SEED+i and validates on fold i; the test split is not used')
    parser.add_argument('--ensemble', action='store_true',
                        help='also score the ensemble of the configs (mean class '
                             'probabilities of their best checkpoints) run by run, on each '
                             "run's val split: a row 'ensemble' and its gain over the better "
                             'member (WORK_DIR/ensemble*)')
    parser.add_argument('--reuse', action='store_true',
                        help='reuse finished runs found in the work dirs instead of training '
                             '(and resume unfinished ones from their last checkpoint)')
    parser.add_argument('--classes', nargs='+', help='class names for the table columns')
    parser.add_argument('--out', default='results/recipes',
                        help='writes OUT.md and OUT.json (default: results/recipes)')
    parser.add_argument('--title', default='', help='a line above the table in OUT.md')
    return parser.parse_args()


@cli_entry
def main() -> None:
    args = parse_args()
    tracking.set_mode(args.clearml)
    rows = compare_recipes(args.configs, args.data_root, args.work_dir,
                           time_budget=args.time_budget, epochs=args.epochs,
                           cfg_options=args.cfg_options, reuse=args.reuse, seeds=args.seeds,
                           seed=args.seed, folds=args.folds, ensemble=args.ensemble)
    paths = write_recipes(rows, args.out, args.classes, args.title)
    print(paths['md'].read_text(), end='')
    print(f"wrote {paths['md']} and {paths['json']}")


if __name__ == '__main__':
    main()
