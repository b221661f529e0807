"""Download the ImageNet encoders that configs name, for a machine without internet.

``python tools/fetch_weights.py [CONFIG ...] [--out-dir DIR]`` on a machine with internet puts
torchvision's files (sha256-checked) into DIR (default: the torch hub cache) and prints how to
copy them; ``python tools/fetch_weights.py [CONFIG ...] --check DIR`` on the offline machine
checks them there. Logic: :mod:`smallseg.apis.weights`.
"""
import argparse
from pathlib import Path

from smallseg.apis import cli_entry
from smallseg.apis.weights import (URL_ENV, check_folder, config_archs, fetch,
                                   hub_checkpoint_dir)

DEFAULT_CONFIGS = ['configs/deeplabv3plus_r50.py', 'configs/unet_r34.py']


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Download or check ImageNet encoder weights')
    parser.add_argument('configs', nargs='*', default=DEFAULT_CONFIGS,
                        help='configs whose encoders to fetch (default: both default models)')
    parser.add_argument('--out-dir', type=Path,
                        help='folder to download into (default: the torch hub cache)')
    parser.add_argument('--check', type=Path, metavar='DIR',
                        help='check the files in DIR (hashes, and the configs\' files present) '
                             'instead of downloading')
    parser.add_argument('--base-url', help=f'download from this mirror (default: ${URL_ENV} '
                                           'or torchvision\'s server)')
    return parser.parse_args()


@cli_entry
def main() -> None:
    args = parse_args()
    archs = config_archs(args.configs)
    if args.check is not None:
        for path in check_folder(args.check, archs):
            print(f'{path}: sha256 matches')
        return
    folder = args.out_dir or hub_checkpoint_dir()
    paths = fetch(archs, folder, base_url=args.base_url)
    print('\nCopy these files into the offline machine\'s torch hub cache, '
          '$TORCH_HOME/hub/checkpoints (default ~/.cache/torch/hub/checkpoints):')
    print(''.join(f'  {path}\n' for path in paths), end='')
    print(f'check them there with: python tools/fetch_weights.py {" ".join(args.configs)} '
          '--check ~/.cache/torch/hub/checkpoints\n'
          'and train as usual (pretrained=\'auto\' finds them), or pass --pretrained FILE.')


if __name__ == '__main__':
    main()
