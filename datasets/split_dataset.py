"""Split one folder of images + index masks into img/{train,val,test} and labels/{...}.

    python datasets/split_dataset.py --images all/images --masks all/masks --out data/mine \
        --ratios 0.7 0.15 0.15 --seed 0

Stratified by class presence (each mask's set of foreground classes), seeded and reproducible;
writes out/split.json with the stems of each split. Logic: :mod:`smallseg.convert.split`.
"""
from __future__ import annotations

import argparse

from smallseg.apis import cli_entry


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--images', required=True, help='folder of images')
    parser.add_argument('--masks', required=True, help='folder of index masks (same stems)')
    parser.add_argument('--out', required=True, help='dataset root to create')
    parser.add_argument('--ratios', type=float, nargs=3, default=(0.7, 0.15, 0.15),
                        metavar=('TRAIN', 'VAL', 'TEST'))
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--seg-suffix', default='.png')
    parser.add_argument('--ignore-index', type=int, default=255)
    parser.add_argument('--mode', choices=['copy', 'hardlink', 'symlink'], default='copy')
    parser.add_argument('--skip-unpaired', action='store_true',
                        help='leave out images without masks and masks without images')
    return parser.parse_args()


@cli_entry
def main() -> None:
    from smallseg.convert.split import split_dataset
    a = parse_args()
    s = split_dataset(a.images, a.masks, a.out, ratios=a.ratios, seed=a.seed,
                      seg_suffix=a.seg_suffix, ignore_index=a.ignore_index, mode=a.mode,
                      skip_unpaired=a.skip_unpaired)
    counts = ', '.join(f'{k} {v}' for k, v in s['counts'].items())
    print(f"split into {counts} in {s['out_dir']} (seed {a.seed}; strata per split in "
          f"{s['out_dir']}/split.json)")
    if set(s['img_suffixes']) != {'.jpg'}:
        print(f"note: images are {', '.join(s['img_suffixes'])}: set "
              "train_dataloader.dataset.img_suffix (and val/test) in the config")


if __name__ == '__main__':
    main()
