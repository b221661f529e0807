"""Train a segmentor: ``python tools/train.py CONFIG [--data-root DIR] [--work-dir DIR] ...``.

Arguments follow mmseg's tools/train.py; the logic is in :mod:`smallseg.apis.train`.
"""
import argparse

from smallseg import tracking
from smallseg.apis import cli_entry
from smallseg.apis.cli import add_common_arguments
from smallseg.apis.config import add_amp_arguments
from smallseg.apis.train import build_train_cfg, train


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a segmentor')
    parser.add_argument('config', help='train config file path')
    add_common_arguments(parser, work_dir='the dir to save logs and models', launcher=True,
                         clearml=True)
    parser.add_argument('--resume', action='store_true',
                        help='resume from the latest checkpoint in the work dir')
    add_amp_arguments(parser)
    pre = parser.add_mutually_exclusive_group()
    pre.add_argument('--pretrained', default='config', metavar='FILE',
                     help='ImageNet weights for the encoder (a local .pth)')
    pre.add_argument('--no-pretrained', dest='pretrained', action='store_const', const=None,
                     help='train the encoder from scratch')
    parser.add_argument('--epochs', type=int, help='override train_cfg.max_epochs')
    parser.add_argument('--time-budget', type=float, metavar='MIN',
                        help='fit the run to MIN minutes: max_epochs and the LR decay are set '
                             'from the first epochs\' time')
    parser.add_argument('--seed', type=int, help='random seed (python, numpy, torch, sampler)')
    parser.add_argument('--deterministic', action='store_true',
                        help='deterministic algorithms: identical runs for the same --seed '
                             '(default seed 0), somewhat slower on GPUs')
    parser.add_argument('--skip-invalid', action='store_true',
                        help='leave out the image/mask pairs the dataset check finds unusable '
                             '(default: stop and list them)')
    parser.add_argument('--no-validate', dest='validate', action='store_false',
                        help='do not check the dataset before training')
    return parser.parse_args()


@cli_entry
def main() -> None:
    args = parse_args()
    tracking.set_mode(args.clearml)
    cfg, info = build_train_cfg(
        args.config, work_dir=args.work_dir, data_root=args.data_root, resume=args.resume,
        amp=args.amp, pretrained=args.pretrained, epochs=args.epochs,
        cfg_options=args.cfg_options, launcher=args.launcher, seed=args.seed,
        deterministic=args.deterministic, validate=args.validate,
        skip_invalid=args.skip_invalid, time_budget=args.time_budget)
    train(cfg, info)


if __name__ == '__main__':
    main()
