"""COCO instance/semantic annotations (polygons or RLE) -> the project's index masks.

    python datasets/coco_to_masks.py annotations/instances_train.json --out data/mine/labels/train \
        --images coco/train2017 --img-out data/mine/img/train --map person=1,car=2

Writes one uint8 PNG per image (0 = background, category -> class by --map; without --map the
categories sorted by id become classes 1..K) and prints the class names for the config.
Logic: :func:`smallseg.convert.coco.coco_to_masks`.
"""
from __future__ import annotations

import argparse
import sys

from smallseg.apis import cli_entry


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('ann_file', help='COCO annotation JSON')
    parser.add_argument('--out', required=True, help='folder for the masks (labels/<split>)')
    parser.add_argument('--map', help="category=class list ('person=1,car=2', names or ids) "
                                      'or a JSON file; unlisted categories stay background')
    parser.add_argument('--crowd', choices=['class', 'ignore'], default='class',
                        help='crowd regions: their class (default) or the ignore index')
    parser.add_argument('--ignore-index', type=int, default=255)
    parser.add_argument('--images', help='folder the file_names are relative to')
    parser.add_argument('--img-out', help='copy the images here (img/<split>)')
    return parser.parse_args()


@cli_entry
def main() -> None:
    from smallseg.convert.coco import coco_to_masks
    a = parse_args()
    s = coco_to_masks(a.ann_file, a.out, mapping=a.map, crowd=a.crowd,
                      ignore_index=a.ignore_index, images_dir=a.images, img_out_dir=a.img_out)
    print(f"{s['images']} masks ({s['annotations']} annotations) written to {s['out_dir']}")
    if s['skipped']:
        counts = ', '.join(f'{n} {reason}' for reason, n in s['skipped_counts'].items())
        print(f"warning: {len(s['skipped'])} annotation(s) not painted ({counts}):",
              file=sys.stderr)
    for line in s['skipped'][:5]:
        print(f'warning: skipped {line}', file=sys.stderr)
    if len(s['skipped']) > 5:
        print(f"warning: ... and {len(s['skipped']) - 5} more", file=sys.stderr)
    print(f"classes for the config: metainfo=dict(classes={tuple(s['classes'])}); "
          f"num_classes={len(s['classes'])}")


if __name__ == '__main__':
    main()
