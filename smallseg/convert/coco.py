"""COCO annotations <-> the project's index masks (pycocotools).

* :func:`coco_to_masks`: a COCO instance or semantic (stuff-style) annotation file, with
  polygons, uncompressed RLE (``counts`` list) or compressed RLE (``counts`` string), to one
  single-channel uint8 PNG per image: 0 = background, category -> class index by a mapping.
  Where annotations overlap, the smaller one is painted last (stays visible). Crowd regions
  become a class (default) or the ignore index.
* :func:`masks_to_coco`: index masks back to COCO: one annotation per connected component
  (``mode='instance'``) or per class and image (``mode='semantic'``), as compressed RLE
  (exact: masks -> COCO -> masks gives identical masks) or polygons (outlines traced by
  OpenCV: holes and one-pixel details can change, so not exact).
"""
from __future__ import annotations

import contextlib
import io
import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

import cv2
import numpy as np

from smallseg.utils.errors import UserError

PathLike = Union[str, Path]


def load_coco(ann_file: PathLike):
    """pycocotools' ``COCO`` for ``ann_file`` (its progress prints silenced); one-line errors."""
    from pycocotools.coco import COCO
    path = Path(ann_file)
    if not path.is_file():
        raise UserError(f'annotation file {path} not found')
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f'{path} is not a JSON file ({exc})') from exc
    if not isinstance(data, dict) or 'images' not in data:
        raise UserError(f'{path} is not a COCO annotation file (no "images" list)')
    data.setdefault('annotations', [])
    data.setdefault('categories', [])
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def parse_mapping(spec: Union[None, str, Mapping]) -> Optional[dict[str, int]]:
    """``'person=1,car=2'`` / ``'1:1,3:2'`` / a JSON file / a dict -> ``{name or id: class}``."""
    if spec is None or isinstance(spec, Mapping):
        return None if spec is None else {str(k): int(v) for k, v in spec.items()}
    if Path(spec).suffix == '.json' and Path(spec).is_file():
        return parse_mapping(json.loads(Path(spec).read_text()))
    out = {}
    for item in filter(None, (s.strip() for s in str(spec).split(','))):
        sep = '=' if '=' in item else ':'
        key, _, value = item.rpartition(sep)
        if not key or not value.strip().lstrip('-').isdigit():
            raise UserError(f'--map: cannot read {item!r}; write category=class, e.g. '
                            "'person=1,car=2' (names or category ids)")
        out[key.strip()] = int(value)
    return out


def category_map(coco, mapping: Optional[Mapping[str, int]] = None
                 ) -> tuple[dict[int, int], list[str]]:
    """``{category id: class index}`` and the class names (index 0 = 'background').

    Without ``mapping`` the categories, sorted by id, become classes 1..K. A mapping names
    categories by name or id; categories it leaves out are not painted (background).
    """
    cats = sorted(coco.loadCats(coco.getCatIds()), key=lambda c: c['id'])
    if mapping is None:
        cat_to_class = {c['id']: i + 1 for i, c in enumerate(cats)}
    else:
        by_name = {c['name']: c['id'] for c in cats}
        ids = {str(c['id']): c['id'] for c in cats}
        cat_to_class = {}
        for key, cls in mapping.items():
            cat = by_name.get(key, ids.get(str(key)))
            if cat is None:
                raise UserError(f'--map: no category {key!r} in the annotation file (it has: '
                                + ', '.join(f"{c['id']}={c['name']}" for c in cats[:20]) + ')')
            if not 0 <= cls <= 254:
                raise UserError(f'--map: class {cls} for {key!r} must be 0..254')
            cat_to_class[cat] = cls
    k = max(cat_to_class.values(), default=0) + 1
    names: list[list[str]] = [[] for _ in range(k)]
    for c in cats:
        if c['id'] in cat_to_class:
            names[cat_to_class[c['id']]].append(c['name'])
    classes = ['background'] + ['+'.join(n) or f'class_{i}' for i, n in enumerate(names) if i]
    if names[0]:
        classes[0] = '+'.join(['background'] + names[0])
    return cat_to_class, classes


def _ann_mask(coco, ann: dict, height: int, width: int) -> np.ndarray:
    from pycocotools import mask as mask_utils
    segm = ann.get('segmentation')
    if not segm:
        return np.zeros((height, width), np.uint8)
    if isinstance(segm, list):  # polygons
        polys = [p for p in segm if len(p) >= 6]
        if not polys:
            return np.zeros((height, width), np.uint8)
        rle = mask_utils.merge(mask_utils.frPyObjects(polys, height, width))
    elif isinstance(segm.get('counts'), list):  # uncompressed RLE
        rle = mask_utils.frPyObjects(segm, height, width)
    else:  # compressed RLE
        rle = dict(segm)
        if isinstance(rle['counts'], str):
            rle['counts'] = rle['counts'].encode('ascii')
    m = mask_utils.decode(rle)
    if m.shape != (height, width):
        raise ValueError(f'RLE size {m.shape} differs from the image size {(height, width)}')
    return m


def coco_to_masks(ann_file: PathLike, out_dir: PathLike,
                  mapping: Union[None, str, Mapping] = None, crowd: str = 'class',
                  ignore_index: int = 255, images_dir: Optional[PathLike] = None,
                  img_out_dir: Optional[PathLike] = None) -> dict[str, Any]:
    """Write ``out_dir/<image stem>.png`` for every image of ``ann_file``; see the module doc.

    Args:
        mapping: category -> class (see :func:`parse_mapping` / :func:`category_map`).
        crowd: 'class' (crowd regions get their category's class) or 'ignore'
            (``ignore_index``, left out of the loss and the metrics).
        images_dir / img_out_dir: copy the annotated images from ``images_dir`` (their
            ``file_name``) to ``img_out_dir``, e.g. ``img/train`` beside ``labels/train``.

    Returns:
        A summary: ``classes``, ``images``, ``annotations`` (painted), ``skipped`` (one line
        per annotation that was not painted: malformed, a shape that covers no pixel such as
        a degenerate polygon, an ``image_id`` or ``category_id`` the file does not list),
        ``skipped_counts`` (``{reason: count}``), ``pixels`` per class, ``out_dir``.
        Categories a ``mapping`` leaves out are not painted and not counted as skipped.
    """
    if crowd not in ('class', 'ignore'):
        raise UserError(f"crowd must be 'class' or 'ignore', got {crowd!r}")
    coco = load_coco(ann_file)
    cat_to_class, classes = category_map(coco, parse_mapping(mapping))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if img_out_dir is not None and images_dir is None:
        raise UserError('--img-out needs --images (the folder the file_names are relative to)')
    stems: dict[str, int] = {}
    pixels: Counter = Counter()
    skipped: list[str] = []
    skipped_counts: Counter = Counter()

    def skip(reason: str, line: str) -> None:
        skipped_counts[reason] += 1
        skipped.append(line)

    known_cats = set(coco.cats)
    for ann in coco.dataset['annotations']:
        if ann.get('image_id') not in coco.imgs:
            skip('unknown image_id', f"annotation {ann.get('id')}: image_id "
                                     f"{ann.get('image_id')!r} is not in the images list")
    n_anns = 0
    for img_id in sorted(coco.imgs):
        info = coco.imgs[img_id]
        h, w = int(info['height']), int(info['width'])
        stem = Path(info['file_name']).stem
        if stem in stems:
            raise UserError(f"images {stems[stem]} and {img_id} both have the file stem {stem!r}; "
                            'masks are named by stem')
        stems[stem] = img_id
        mask = np.zeros((h, w), np.uint8)
        painted = []
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=[img_id], iscrowd=None)):
            value = cat_to_class.get(ann.get('category_id'))
            if ann.get('category_id') not in known_cats:
                skip('unknown category_id', f"annotation {ann.get('id')} of "
                                            f"{info['file_name']}: category_id "
                                            f"{ann.get('category_id')!r} is not in the "
                                            'categories list')
                continue
            if value is None:  # left out by the mapping
                continue
            if ann.get('iscrowd') and crowd == 'ignore':
                value = ignore_index
            try:
                m = _ann_mask(coco, ann, h, w) > 0
            except Exception as exc:  # noqa: BLE001 - a malformed annotation is reported
                skip('malformed', f"annotation {ann.get('id')} of {info['file_name']}: {exc}")
                continue
            if not m.any():
                skip('covers no pixel', f"annotation {ann.get('id')} of {info['file_name']}: "
                                        'its shape covers no pixel (a polygon of fewer than 3 '
                                        'points or no area, or an empty segmentation)')
                continue
            painted.append((-int(m.sum()), ann.get('id', 0), m, value))
        for _, _, m, value in sorted(painted, key=lambda t: t[:2]):  # largest first
            mask[m] = value
            n_anns += 1
        values, counts = np.unique(mask, return_counts=True)
        pixels.update(dict(zip(values.tolist(), counts.tolist())))
        if not cv2.imwrite(str(out / f'{stem}.png'), mask):
            raise UserError(f'cannot write {out / (stem + ".png")}')
        if images_dir is not None and img_out_dir is not None:
            src = Path(images_dir) / info['file_name']
            if not src.is_file():
                raise UserError(f'image {src} (file_name of image {img_id}) not found')
            dst = Path(img_out_dir) / Path(info['file_name']).name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    return dict(classes=classes, images=len(stems), annotations=n_anns, skipped=skipped,
                skipped_counts=dict(skipped_counts),
                pixels={int(k): int(v) for k, v in sorted(pixels.items())}, out_dir=str(out))


def _rle(binary: np.ndarray) -> dict:
    from pycocotools import mask as mask_utils
    rle = mask_utils.encode(np.asfortranarray(binary.astype(np.uint8)))
    rle['counts'] = rle['counts'].decode('ascii')
    return rle


def _polygons(binary: np.ndarray) -> list[list[float]]:
    contours, _ = cv2.findContours(binary.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_NONE)
    polys = []
    for c in contours:
        c = c.reshape(-1, 2).astype(float)
        if len(c) < 3:  # a 1-2 pixel sliver: a tiny box around it
            x0, y0 = c.min(0)
            x1, y1 = c.max(0) + 1
            c = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float)
        polys.append(c.ravel().round(2).tolist())
    return polys


def read_mask(path: Path) -> np.ndarray:
    from PIL import Image
    try:
        with Image.open(path) as img:
            arr = np.asarray(img)
    except Exception as exc:  # noqa: BLE001
        raise UserError(f'cannot read mask {path} ({type(exc).__name__})') from exc
    if arr.ndim != 2:
        raise UserError(f'mask {path} has {arr.shape[2]} channels; index masks have one '
                        '(convert colour masks with datasets/rgb_to_masks.py)')
    return arr


def masks_to_coco(mask_dir: PathLike, classes: Sequence[str], out_file: Optional[PathLike] = None,
                  img_suffix: str = '.jpg', seg_suffix: str = '.png', mode: str = 'instance',
                  encoding: str = 'rle', ignore_index: Optional[int] = 255) -> dict:
    """COCO dict (written to ``out_file`` when given) for the index masks in ``mask_dir``.

    ``classes[0]`` is the background (no category); class ``c`` becomes category id ``c``.
    Pixels equal to ``ignore_index`` are left out; any other value outside the classes is an
    error. Image ids follow the sorted file names; ``file_name`` is ``<stem><img_suffix>``.
    """
    if mode not in ('instance', 'semantic'):
        raise UserError(f"mode must be 'instance' or 'semantic', got {mode!r}")
    if encoding not in ('rle', 'polygon'):
        raise UserError(f"encoding must be 'rle' or 'polygon', got {encoding!r}")
    from pycocotools import mask as mask_utils
    folder = Path(mask_dir)
    files = sorted(p for p in folder.glob(f'*{seg_suffix}') if p.is_file()) \
        if folder.is_dir() else []
    if not files:
        raise UserError(f'no *{seg_suffix} masks in {folder}')
    k = len(classes)
    coco: dict[str, Any] = dict(
        info=dict(description=f'converted from index masks in {folder}'),
        images=[], annotations=[],
        categories=[dict(id=c, name=str(classes[c]), supercategory='object')
                    for c in range(1, k)])
    ann_id = 1
    for img_id, path in enumerate(files, start=1):
        mask = read_mask(path)
        h, w = mask.shape
        stem = path.name[:-len(seg_suffix)]
        coco['images'].append(dict(id=img_id, file_name=f'{stem}{img_suffix}', height=h, width=w))
        values = set(np.unique(mask).tolist()) - {0}
        bad = sorted(v for v in values if v >= k and v != ignore_index)
        if bad:
            raise UserError(f'mask {path} has values {bad[:8]} outside the {k} classes '
                            f'0..{k - 1} (ignore_index={ignore_index})')
        for c in sorted(v for v in values if v < k):
            binary = (mask == c).astype(np.uint8)
            if mode == 'semantic':
                parts = [binary]
            else:
                n, labels = cv2.connectedComponents(binary, connectivity=8)
                parts = [(labels == i).astype(np.uint8) for i in range(1, n)]
            for part in parts:
                rle = _rle(part)
                area = int(part.sum())
                bbox = [float(v) for v in mask_utils.toBbox(
                    dict(rle, counts=rle['counts'].encode('ascii')))]
                segm = rle if encoding == 'rle' else _polygons(part)
                coco['annotations'].append(dict(
                    id=ann_id, image_id=img_id, category_id=int(c), segmentation=segm,
                    area=area, bbox=bbox, iscrowd=0))
                ann_id += 1
    if out_file is not None:
        out = Path(out_file)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(coco))
    return coco
