"""The main job: generate the default dataset, train DeepLabV3+ and U-Net, test, results.json.

``python tools/run_all.py`` (what ``make run`` calls). Finished runs are skipped and
interrupted ones resumed, so running it again continues where it stopped; a run trained with
other settings (recipe, epochs, data root, seed, time budget) is kept aside as
``work_dirs/<config>.previous_<time>`` and trained anew. ``results/`` and
``supplementary/viz/`` are written beside ``--results``.
"""
import argparse

from smallseg import tracking
from smallseg.apis import cli_entry
from smallseg.apis.cli import add_common_arguments
from smallseg.apis.config import add_amp_arguments
from smallseg.apis.pipeline import DEFAULT_MODELS, run_main_job


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train and test both models end to end')
    parser.add_argument('--configs', nargs='+', default=list(DEFAULT_MODELS),
                        help='model configs to train and test')
    add_common_arguments(
        parser, work_dir=dict(default='work_dirs', help='parent of the per-model work dirs'),
        data_root=dict(default='data/default',
                       help='dataset root; the default dataset is generated there if missing'),
        cfg_options=False, clearml=True)
    parser.add_argument('--results', default='results.json', help='results file to write')
    parser.add_argument('--epochs', type=int, help='override max_epochs (e.g. a quick run)')
    parser.add_argument('--time-budget', type=float, metavar='MIN',
                        help='training minutes per model: max_epochs and the LR decay are fitted '
                             'to them (e.g. 9 for a main job of about 20 minutes on 2 cores)')
    parser.add_argument('--seed', type=int, help='random seed of both trainings (default: a new '
                        'one per run, recorded in results.json)')
    parser.add_argument('--deterministic', action='store_true',
                        help='deterministic algorithms: identical runs for the same --seed '
                             '(default seed 0), somewhat slower on GPUs')
    add_amp_arguments(parser)
    parser.add_argument('--no-analysis', dest='analyse', action='store_false',
                        help='skip error-analysis pictures, curves and comparison tables')
    parser.add_argument('--no-pretrained', dest='pretrained', action='store_const', const=None,
                        default='config', help='train the encoders from scratch')
    return parser.parse_args()


@cli_entry
def main() -> None:
    args = parse_args()
    tracking.set_mode(args.clearml)
    run_main_job(args.configs, data_root=args.data_root, work_root=args.work_dir,
                 results=args.results, epochs=args.epochs, amp=args.amp,
                 pretrained=args.pretrained, analyse=args.analyse, seed=args.seed,
                 deterministic=args.deterministic, time_budget=args.time_budget)


if __name__ == '__main__':
    main()
