"""Colour (RGB) masks -> single-channel index masks, one palette colour per class.

    python datasets/rgb_to_masks.py colour_masks/ --out data/mine/labels/train \
        --palette "0,0,0;230,25,75;60,180,75"   # or #000000,#e6194b,... / a JSON / a config

Class i is the i-th colour. Colours not in the palette stop the conversion (listed with their
pixel counts) unless --unknown nearest (JPEG / anti-aliased edges) or --unknown ignore (255).
Logic: :func:`smallseg.convert.palette.convert_rgb_folder`.
"""
from __future__ import annotations

import argparse

from smallseg.apis import cli_entry


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='folder of colour masks')
    parser.add_argument('--out', required=True, help='folder for the index masks')
    parser.add_argument('--palette', default='configs/unet_r34.py',
                        help="colours, a JSON file or a config's metainfo.palette "
                             '(default: configs/unet_r34.py)')
    parser.add_argument('--unknown', choices=['error', 'nearest', 'ignore'], default='error')
    parser.add_argument('--ignore-index', type=int, default=255)
    return parser.parse_args()


@cli_entry
def main() -> None:
    from smallseg.convert.palette import convert_rgb_folder, parse_palette
    a = parse_args()
    s = convert_rgb_folder(a.src, a.out, parse_palette(a.palette), unknown=a.unknown,
                           ignore_index=a.ignore_index)
    extra = (f" ({s['unknown_colours']} unknown colours, {s['unknown_pixels']} px, "
             f'handled as {a.unknown})' if s['unknown_colours'] else '')
    print(f"{s['files']} index masks written to {s['out_dir']}{extra}")


if __name__ == '__main__':
    main()
