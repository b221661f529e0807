"""One palette for every picture: the dataset's colours, generated ones after them, and one
colour for ignored pixels in analysis, inference, conversion and EDA pictures alike."""
from __future__ import annotations

import cv2
import numpy as np

from smallseg.analysis.overlay import overlay
from smallseg.convert import index_to_rgb
from smallseg.eda.plots import overlay as eda_overlay
from smallseg.utils.palette import (IGNORE_COLOR, colorize, decode_png, encode_png, make_palette,
                                    side_by_side)

DATASET = [[0, 0, 0], [230, 25, 75]]


def test_palette_keeps_the_datasets_colours_and_adds_distinct_ones() -> None:
    palette = make_palette(4, DATASET)
    assert palette.shape == (4, 3) and palette.dtype == np.uint8
    assert palette[:2].tolist() == DATASET
    assert len({tuple(c) for c in palette.tolist()}) == 4
    assert np.array_equal(make_palette(4, DATASET), palette)  # the same colours every time


def test_every_picture_paints_ignored_pixels_in_one_colour() -> None:
    mask = np.array([[0, 1], [255, 7]], np.uint8)
    palette = make_palette(2, DATASET)
    ignored = [IGNORE_COLOR, IGNORE_COLOR]
    assert [tuple(c) for c in colorize(mask, palette)[1]] == ignored
    assert [tuple(c) for c in index_to_rgb(mask, DATASET)[1]] == ignored
    black = np.zeros((2, 2, 3), np.uint8)
    # analysis overlays leave ignored pixels as the image is; classes get their colour
    assert tuple(overlay(black, mask, palette, alpha=1.0)[1, 0]) == (0, 0, 0)
    assert overlay(black, mask, palette, alpha=1.0)[0, 1].tolist() == DATASET[1]
    # the EDA overlay half-tints ignored pixels with the same colour
    half = tuple(int(v) for v in (0.5 * np.array(IGNORE_COLOR)).astype(np.uint8))
    assert tuple(eda_overlay(black, mask, palette, ignore_index=255)[1, 0]) == half


def test_side_by_side_picture_and_png_round_trip(tmp_path) -> None:
    image = np.zeros((300, 150, 3), np.uint8)
    image[:, :, 2] = 200  # red in BGR
    cv2.imwrite(str(tmp_path / 'a.png'), image)
    truth, pred = np.zeros((300, 150), np.uint8), np.full((300, 150), 1, np.uint8)
    picture = side_by_side(str(tmp_path / 'a.png'), truth, pred, make_palette(2, DATASET))
    assert picture.shape == (256, 3 * 128 + 2 * 4, 3)  # scaled to 256 high, two 4-px gaps
    assert picture[0, 0].tolist() == [200, 0, 0]  # RGB
    assert picture[0, -1].tolist() == DATASET[1] and picture[0, 132].tolist() == DATASET[0]
    assert np.array_equal(decode_png(encode_png(picture)), picture)  # lossless
