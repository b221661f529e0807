"""Segment new images: ``python tools/infer.py CONFIG CHECKPOINT (IMAGE | FOLDER) --out DIR``.

Writes ``DIR/masks/<stem>.png`` (uint8 class indices at the image's own size),
``DIR/overlays/<stem>.png`` and ``DIR/predictions.csv``. Any size, grayscale, RGBA and 16-bit
images are accepted; unreadable files are skipped with a warning. More ``CONFIG CHECKPOINT``
pairs before the source segment with the ensemble of all: ``tools/infer.py A.py a.pth B.py
b.pth SOURCE --out DIR`` (mean class probabilities at the image size, then the one-object
prior). Logic: :mod:`smallseg.apis.infer`.
"""
import argparse

from smallseg.apis import cli_entry
from smallseg.apis.cli import add_common_arguments
from smallseg.apis.infer import run_inference
from smallseg.apis.test import pair_up


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Segment images with a trained checkpoint, or an ensemble of several',
        epilog='ensemble: tools/infer.py A.py a.pth B.py b.pth [...] SOURCE --out DIR '
               "averages the members' class probabilities at the image size, then applies "
               "the first member's one-object prior")
    parser.add_argument('config', help='the config the checkpoint was trained with')
    parser.add_argument('checkpoint', help='checkpoint file (.pth)')
    parser.add_argument('more', nargs='*', metavar='CONFIG CHECKPOINT',
                        help='further config/checkpoint pairs: segment with the ensemble')
    parser.add_argument('source', help='an image file or a folder of images')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--batch-size', type=int, default=4, help='images per forward pass')
    parser.add_argument('--device', help="e.g. 'cpu' or 'cuda:0' (default: cuda if present)")
    parser.add_argument('--no-overlays', dest='overlays', action='store_false',
                        help='write the index masks only')
    parser.add_argument('--no-progress', dest='progress', action='store_false',
                        help='no progress bar')
    parser.add_argument('--weights', nargs='+', type=float, metavar='W',
                        help='ensemble: one weight per member (default: equal)')
    add_common_arguments(parser, data_root='ignored (accepted for symmetry with the other '
                                           'tools)')
    return parser.parse_intermixed_args()


@cli_entry
def main() -> None:
    args = parse_args()
    pairs = pair_up([args.config, args.checkpoint, *args.more])
    summary = run_inference(args.config, args.checkpoint, args.source, args.out,
                            more=pairs[1:], weights=args.weights,
                            batch_size=args.batch_size, device=args.device,
                            cfg_options=args.cfg_options, overlays=args.overlays,
                            progress=args.progress)
    skipped = f", {len(summary['skipped'])} unreadable skipped" if summary['skipped'] else ''
    print(f"{summary['written']} of {summary['images']} images segmented{skipped}: "
          f"masks in {summary['out_dir']}/masks")


if __name__ == '__main__':
    main()
