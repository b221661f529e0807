"""Index masks -> a COCO annotation file (RLE by default: converting back is exact).

    python datasets/masks_to_coco.py data/mine/labels/val --classes background,benign,malignant \
        --out val_coco.json [--mode semantic] [--encoding polygon]

Logic: :func:`smallseg.convert.coco.masks_to_coco`.
"""
from __future__ import annotations

import argparse

from smallseg.apis import cli_entry


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('mask_dir', help='folder of single-channel index masks')
    parser.add_argument('--out', required=True, help='COCO JSON to write')
    parser.add_argument('--classes', help='comma-separated class names, background first '
                                          "(default: the config's, see --config)")
    parser.add_argument('--config', default='configs/unet_r34.py',
                        help='config whose metainfo.classes to use without --classes')
    parser.add_argument('--mode', choices=['instance', 'semantic'], default='instance',
                        help='one annotation per connected component (default) or per class')
    parser.add_argument('--encoding', choices=['rle', 'polygon'], default='rle',
                        help='rle (exact, default) or polygon (outlines; holes are lost)')
    parser.add_argument('--img-suffix', default='.jpg', help='file_name suffix of the images')
    parser.add_argument('--seg-suffix', default='.png')
    parser.add_argument('--ignore-index', type=int, default=255)
    return parser.parse_args()


@cli_entry
def main() -> None:
    from smallseg.convert.coco import masks_to_coco
    a = parse_args()
    if a.classes:
        classes = [c.strip() for c in a.classes.split(',') if c.strip()]
    else:
        from smallseg.apis.cfg_check import config_classes
        from smallseg.apis.config import load_config
        classes = list(config_classes(load_config(a.config)) or [])
    coco = masks_to_coco(a.mask_dir, classes, a.out, img_suffix=a.img_suffix,
                         seg_suffix=a.seg_suffix, mode=a.mode, encoding=a.encoding,
                         ignore_index=a.ignore_index)
    print(f"{len(coco['images'])} images, {len(coco['annotations'])} annotations, "
          f"{len(coco['categories'])} categories written to {a.out}")


if __name__ == '__main__':
    main()
