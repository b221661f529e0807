"""One palette for every picture: the dataset's colours, generated ones after them, and one
colour for ignored pixels in analysis, inference, conversion and EDA pictures alike."""
from __future__ import annotations

import numpy as np

from smallseg.analysis.overlay import overlay
from smallseg.convert import index_to_rgb
from smallseg.eda.plots import overlay as eda_overlay
from smallseg.utils.palette import IGNORE_COLOR, colorize, make_palette

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
