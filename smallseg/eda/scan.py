"""One pass over an ``img/<split>`` + ``labels/<split>`` dataset: pairing, integrity, labels, stats.

Every file is read from disk exactly once (bytes -> hash + full decode), on a thread pool.
Nothing is raised for bad files: each one becomes a :class:`Problem` ``(split, file, kind,
detail)`` with ``file`` relative to the data root. Only a data root that is not a directory
raises :class:`DatasetLayoutError`. The result, :class:`DatasetScan`, is meant to be reused by
a pre-training dataset validator (``scan.problems``, ``scan.errors()``, ``scan.splits``).

Problem kinds (see :data:`PROBLEM_KINDS`):

* integrity: ``image_without_mask``, ``mask_without_image``, ``unreadable_image`` (zero-byte,
  truncated, not an image), ``unreadable_mask`` (has bytes but does not decode),
  ``size_mismatch`` (image and mask width/height differ).
* labels: ``empty_mask`` (zero-byte file, 0x0 pixels, or every pixel is ``ignore_index``),
  ``background_only`` (every labelled pixel is 0), ``single_class`` (the mask holds one single
  value and it is a foreground class: no background at all; an all-0 mask is
  ``background_only`` instead), ``out_of_range_values`` (values outside ``0..K-1`` that are not
  ``ignore_index``), ``not_single_channel`` (RGB/RGBA/LA mask, or a palette 'P' PNG),
  ``duplicate_within_split`` / ``duplicate_across_splits`` (identical image bytes; the first
  copy in split order train, val, test then by name is kept, every later copy is reported;
  across splits = leakage), ``near_duplicate_within_split`` / ``near_duplicate_across_splits``
  (the same picture in other bytes, e.g. re-encoded or resized: a 256-bit difference hash
  within :data:`NEAR_DUPLICATE_BITS` bits, reported the same way).

Statistics are computed over *usable* pairs only: pairs with none of the :data:`BLOCKING_KINDS`
(a palette PNG counts, its indices are used, as mmseg's pillow loader does); the ignore and
out-of-range pixel counts cover every complete, decodable pair of one size. The dataset check
before training and testing (:mod:`smallseg.apis.validate`) refuses exactly the other pairs.
"""
from __future__ import annotations

import hashlib
import io
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, NamedTuple, Sequence

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

SPLITS: tuple[str, ...] = ('train', 'val', 'test')

PROBLEM_KINDS: dict[str, str] = {
    'image_without_mask': 'image file has no mask with the same stem',
    'mask_without_image': 'mask file has no image with the same stem',
    'unreadable_image': 'image file is zero bytes, truncated or not an image',
    'unreadable_mask': 'mask file has bytes but cannot be decoded',
    'size_mismatch': 'image and mask width/height differ',
    'empty_mask': 'mask has no labelled pixel (zero-byte file, 0x0, or all ignore_index)',
    'background_only': 'every labelled pixel is background (0)',
    'single_class': 'mask holds one single foreground value, no background',
    'out_of_range_values': 'mask values outside 0..K-1 that are not ignore_index',
    'not_single_channel': 'mask is RGB/RGBA/LA or a palette (P) image, not a 1-channel index PNG',
    'duplicate_within_split': 'identical image bytes appear twice in the same split',
    'duplicate_across_splits': 'identical image bytes in two splits (leakage)',
    'near_duplicate_within_split': 'the same picture (re-encoded, resized) twice in a split',
    'near_duplicate_across_splits': 'the same picture (re-encoded, resized) in two splits '
                                    '(leakage)',
}
INTEGRITY_KINDS: tuple[str, ...] = ('image_without_mask', 'mask_without_image', 'unreadable_image',
                                    'unreadable_mask', 'size_mismatch')
LABEL_KINDS: tuple[str, ...] = tuple(k for k in PROBLEM_KINDS if k not in INTEGRITY_KINDS)
#: Kinds that break or silently corrupt training; the others are warnings worth a look.
ERROR_KINDS: frozenset[str] = frozenset(INTEGRITY_KINDS) | {
    'empty_mask', 'out_of_range_values', 'not_single_channel', 'duplicate_across_splits',
    'near_duplicate_across_splits'}
#: Kinds that make an image/mask pair unusable for training and for scoring: the one rule of
#: EDA's usable pairs and of the dataset check (a palette PNG's not_single_channel excepted).
BLOCKING_KINDS: tuple[str, ...] = (
    'image_without_mask', 'mask_without_image', 'unreadable_image', 'unreadable_mask',
    'size_mismatch', 'not_single_channel', 'out_of_range_values', 'empty_mask')
#: Hash side: a (HASH_SIZE + 1) x HASH_SIZE grey thumbnail gives HASH_SIZE**2 bits.
HASH_SIZE = 16
#: Images whose difference hashes differ in at most this many of the 256 bits are near
#: duplicates (re-encoding or resizing flips up to ~30 bits, distinct images ~85 or more).
NEAR_DUPLICATE_BITS = 32
#: A grey thumbnail with a standard deviation under this (grey levels) is flat: not hashed.
FLAT_STD = 2.0


class DatasetLayoutError(ValueError):
    """The data root cannot be scanned at all (missing, not a directory)."""


class Problem(NamedTuple):
    """One bad file: ``file`` is relative to the data root (posix), ``kind`` in PROBLEM_KINDS."""
    split: str
    file: str
    kind: str
    detail: str


@dataclass
class ImageInfo:
    """What one read of an image file gives."""
    size: tuple[int, int] | None = None  # (width, height)
    mode: str = ''
    digest: str = ''
    error: str = ''
    dhash: np.ndarray | None = None  # HASH_SIZE**2 bits (bool) of the difference hash


@dataclass
class MaskInfo:
    """What one read of a mask file gives; ``counts`` is None when the mask is not usable."""
    size: tuple[int, int] | None = None
    mode: str = ''
    problems: list[tuple[str, str]] = field(default_factory=list)  # (kind, detail)
    counts: np.ndarray | None = None       # pixels per class, shape (K,)
    ignore_pixels: int = 0
    out_of_range_pixels: int = 0
    objects: list[list[int]] | None = None  # per class: areas of its connected components
    palette: bool = False                   # a 'P' PNG: flagged, but its indices load


@dataclass
class PairRecord:
    """A usable image/mask pair (paths relative to the root) and the classes it contains."""
    stem: str
    image: str
    mask: str
    size: tuple[int, int]
    classes: tuple[int, ...]


@dataclass
class SplitStats:
    """Integrity counts and label statistics of one split."""
    num_classes: int
    images: int = 0
    masks: int = 0
    images_without_mask: int = 0
    masks_without_image: int = 0
    complete_pairs: int = 0
    unreadable: int = 0
    size_mismatch: int = 0
    usable_pairs: int = 0
    other_files: Counter = field(default_factory=Counter)  # suffix -> files not matching
    image_sizes: list[tuple[int, int]] = field(default_factory=list)  # every readable image
    pixel_counts: np.ndarray = None  # type: ignore[assignment]
    images_with_class: np.ndarray = None  # type: ignore[assignment]
    ignore_pixels: int = 0
    out_of_range_pixels: int = 0
    objects_per_image: list[list[int]] = None  # type: ignore[assignment]  # [class][pair]
    object_sizes: list[list[int]] = None  # type: ignore[assignment]  # [class][object]
    records: list[PairRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        k = self.num_classes
        self.pixel_counts = np.zeros(k, np.int64)
        self.images_with_class = np.zeros(k, np.int64)
        self.objects_per_image = [[] for _ in range(k)]
        self.object_sizes = [[] for _ in range(k)]

    def integrity(self) -> dict[str, int]:
        """The integrity table row of this split."""
        return {k: int(getattr(self, k)) for k in (
            'images', 'masks', 'images_without_mask', 'masks_without_image', 'complete_pairs',
            'unreadable', 'size_mismatch', 'usable_pairs')}


@dataclass
class DatasetScan:
    """Result of :func:`scan_dataset`."""
    root: Path
    classes: tuple[str, ...]
    ignore_index: int | None
    img_suffix: str
    seg_suffix: str
    splits: dict[str, SplitStats]
    missing_splits: list[str]
    problems: list[Problem]

    def problem_counts(self, split: str | None = None) -> Counter:
        """Problems per kind, over all splits or one."""
        return Counter(p.kind for p in self.problems if split in (None, p.split))

    def errors(self) -> list[Problem]:
        """Problems whose kind is in :data:`ERROR_KINDS` (what a validator should refuse)."""
        return [p for p in self.problems if p.kind in ERROR_KINDS]

    @property
    def usable_pairs(self) -> int:
        return sum(s.usable_pairs for s in self.splits.values())

    @property
    def total_files(self) -> int:
        return sum(s.images + s.masks for s in self.splits.values())


def _decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()  # full decode: catches truncated files, not just a bad header
    return img


def _decode_error(exc: Exception) -> str:
    if isinstance(exc, UnidentifiedImageError):
        return 'not a recognised image format'
    return f'cannot decode ({type(exc).__name__}: {exc})'


def read_image(path: Path) -> ImageInfo:
    """Read an image once: hash its bytes and decode it fully."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return ImageInfo(error=f'cannot read file ({exc.strerror})')
    if not data:
        return ImageInfo(error='zero-byte file')
    info = ImageInfo(digest=hashlib.blake2b(data, digest_size=16).hexdigest())
    try:
        img = _decode(data)
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a finding
        info.error = _decode_error(exc)
        return info
    info.size, info.mode = img.size, img.mode
    info.dhash = difference_hash(img)
    return info


def difference_hash(img: Image.Image, size: int = HASH_SIZE) -> np.ndarray | None:
    """``size**2`` bits: is each pixel of a grey ``(size + 1) x size`` thumbnail brighter than
    its right neighbour. None for an image too small to hash or without structure (a flat
    thumbnail: all its bits would be 0, like every other flat image's)."""
    if img.width < 2 or img.height < 2:
        return None
    grey = img.convert('L') if img.mode != 'L' else img
    thumb = np.asarray(grey.resize((size + 1, size), Image.Resampling.BOX), np.int16)
    if thumb.std() < FLAT_STD:
        return None
    return (thumb[:, 1:] > thumb[:, :-1]).ravel()


def near_duplicates(hashes: Sequence[np.ndarray], max_bits: int = NEAR_DUPLICATE_BITS,
                    chunk: int = 1024) -> dict[int, tuple[int, int]]:
    """``{later index: (earlier index, distance)}`` for hashes within ``max_bits`` of an
    earlier one (the nearest earlier one)."""
    if len(hashes) < 2:
        return {}
    bits = np.stack(hashes).astype(np.float32)
    found: dict[int, tuple[int, int]] = {}
    for start in range(0, len(bits), chunk):
        rows = bits[start:start + chunk]
        cols = bits[:start + len(rows)]
        dist = rows @ (1 - cols).T + (1 - rows) @ cols.T  # Hamming distances
        later = np.arange(start, start + len(rows))[:, None]
        dist[np.arange(len(cols))[None, :] >= later] = np.inf  # earlier images only
        best = dist.argmin(1)
        for r, i in enumerate(best):
            if dist[r, i] <= max_bits:
                found[start + r] = (int(i), int(dist[r, i]))
    return found


def read_mask(path: Path, num_classes: int, ignore_index: int | None = 255) -> MaskInfo:
    """Read a mask once: format checks, per-class pixel counts and connected components."""
    info = MaskInfo()
    try:
        data = path.read_bytes()
    except OSError as exc:
        info.problems.append(('unreadable_mask', f'cannot read file ({exc.strerror})'))
        return info
    if not data:
        info.problems.append(('empty_mask', 'zero-byte file'))
        return info
    try:
        img = _decode(data)
    except Exception as exc:  # noqa: BLE001
        info.problems.append(('unreadable_mask', _decode_error(exc)))
        return info
    info.size, info.mode = img.size, img.mode
    if img.width == 0 or img.height == 0:
        info.problems.append(('empty_mask', f'{img.width}x{img.height} pixels'))
        return info
    arr = np.asarray(img)
    if arr.ndim == 3:
        info.problems.append(('not_single_channel', f'{arr.shape[2]}-channel mask (PIL mode '
                                                    f'{img.mode!r}); expected 1-channel indices'))
        return info
    if img.mode == 'P':
        info.palette = True
        info.problems.append(('not_single_channel', "palette PNG (PIL mode 'P'); its indices "
                                                    "were used, save as mode 'L' to be safe"))
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    elif arr.dtype.kind not in 'ui':
        info.problems.append(('unreadable_mask', f'non-integer mask (PIL mode {img.mode!r})'))
        return info
    values, counts = np.unique(arr, return_counts=True) if arr.dtype != np.uint8 else \
        _bincount_values(arr)
    hist = dict(zip(values.tolist(), counts.tolist()))
    info.counts = np.array([hist.get(c, 0) for c in range(num_classes)], np.int64)
    info.ignore_pixels = hist.get(ignore_index, 0) if ignore_index is not None else 0
    bad = {v: n for v, n in hist.items() if not 0 <= v < num_classes and v != ignore_index}
    info.out_of_range_pixels = sum(bad.values())
    labelled = [v for v in hist if v != ignore_index]
    if bad:
        shown = ', '.join(f'{v} ({n} px)' for v, n in sorted(bad.items())[:8])
        info.problems.append(('out_of_range_values', f'values {shown} outside 0..{num_classes - 1}'
                                                     f' (ignore_index={ignore_index})'))
    if not labelled:
        info.problems.append(('empty_mask', f'every pixel is ignore_index {ignore_index}'))
    elif labelled == [0]:
        info.problems.append(('background_only', 'all labelled pixels are 0'))
    elif len(labelled) == 1:
        info.problems.append(('single_class', f'every labelled pixel is {labelled[0]}'))
    info.objects = [[] for _ in range(num_classes)]
    for c in range(1, num_classes):
        if info.counts[c]:
            n, _, stats, _ = cv2.connectedComponentsWithStats(
                (arr == c).astype(np.uint8), connectivity=8)
            info.objects[c] = stats[1:n, cv2.CC_STAT_AREA].tolist()
    return info


def _bincount_values(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    counts = np.bincount(arr.ravel(), minlength=256)
    values = np.flatnonzero(counts)
    return values, counts[values]


def _list(directory: Path, suffix: str, other: Counter) -> dict[str, Path]:
    """``stem -> path`` of the files in ``directory`` ending with ``suffix``."""
    found: dict[str, Path] = {}
    if directory.is_dir():
        for p in sorted(directory.iterdir()):
            if not p.is_file():
                continue
            if p.name.endswith(suffix) and len(p.name) > len(suffix):
                found[p.name[:-len(suffix)]] = p
            else:
                other[p.suffix.lower() or p.name] += 1
    return found


def scan_dataset(root: str | Path, classes: Sequence[str], splits: Iterable[str] = SPLITS,
                 img_suffix: str = '.jpg', seg_suffix: str = '.png',
                 ignore_index: int | None = 255, workers: int | None = None,
                 progress: bool = True,
                 folders: Mapping[str, tuple[str, str]] | None = None) -> DatasetScan:
    """Scan ``root/img/<split>`` and ``root/labels/<split>``; see the module docstring.

    ``folders`` maps a split to its ``(image folder, mask folder)`` relative to ``root`` when
    they are not ``img/<split>`` and ``labels/<split>`` (a config's ``data_prefix``).
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetLayoutError(f'data root {root} does not exist or is not a directory')
    k = len(classes)
    workers = workers or min(4, os.cpu_count() or 1)
    listing: dict[str, tuple[dict[str, Path], dict[str, Path]]] = {}
    stats: dict[str, SplitStats] = {}
    missing: list[str] = []
    folders = dict(folders or {})
    for split in splits:
        img_rel, seg_rel = folders.setdefault(split, (f'img/{split}', f'labels/{split}'))
        img_dir, seg_dir = root / img_rel, root / seg_rel
        if not img_dir.is_dir() and not seg_dir.is_dir():
            missing.append(split)
            continue
        stats[split] = SplitStats(k)
        listing[split] = (_list(img_dir, img_suffix, stats[split].other_files),
                          _list(seg_dir, seg_suffix, stats[split].other_files))

    jobs = [(s, 'img', stem, p) for s, (imgs, _) in listing.items() for stem, p in imgs.items()]
    jobs += [(s, 'seg', stem, p) for s, (_, segs) in listing.items() for stem, p in segs.items()]

    def work(job: tuple[str, str, str, Path]) -> ImageInfo | MaskInfo:
        return read_image(job[3]) if job[1] == 'img' else read_mask(job[3], k, ignore_index)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = pool.map(work, jobs)
        if progress and jobs:
            from tqdm import tqdm
            results = tqdm(results, total=len(jobs), desc=f'scanning {root}', unit='file')
        read = {(s, kind, stem): r for (s, kind, stem, _), r in zip(jobs, results)}

    problems: list[Problem] = []
    rel = lambda p: p.relative_to(root).as_posix()  # noqa: E731
    for split, (imgs, segs) in listing.items():
        st = stats[split]
        st.images, st.masks = len(imgs), len(segs)
        for stem in sorted(set(imgs) | set(segs)):
            img = read.get((split, 'img', stem))
            seg = read.get((split, 'seg', stem))
            if img is not None:
                if img.error:
                    st.unreadable += 1
                    problems.append(Problem(split, rel(imgs[stem]), 'unreadable_image', img.error))
                else:
                    st.image_sizes.append(img.size)
                if seg is None:
                    st.images_without_mask += 1
                    problems.append(Problem(split, rel(imgs[stem]), 'image_without_mask',
                                            f'no {folders[split][1]}/{stem}{seg_suffix}'))
            if seg is not None:
                if seg.size is None:
                    st.unreadable += 1
                problems += [Problem(split, rel(segs[stem]), kd, dt) for kd, dt in seg.problems]
                if img is None:
                    st.masks_without_image += 1
                    problems.append(Problem(split, rel(segs[stem]), 'mask_without_image',
                                            f'no {folders[split][0]}/{stem}{img_suffix}'))
            if img is None or seg is None:
                continue
            st.complete_pairs += 1
            if img.size and seg.size and img.size != seg.size:
                st.size_mismatch += 1
                problems.append(Problem(split, rel(segs[stem]), 'size_mismatch',
                                        f'image {img.size[0]}x{img.size[1]}, '
                                        f'mask {seg.size[0]}x{seg.size[1]}'))
                continue
            if img.error or seg.counts is None:
                continue
            st.ignore_pixels += seg.ignore_pixels  # of every decodable pair, usable or not
            st.out_of_range_pixels += seg.out_of_range_pixels
            if any(kind in BLOCKING_KINDS and not (kind == 'not_single_channel' and seg.palette)
                   for kind, _ in seg.problems):
                continue  # the dataset check refuses it: no statistics from it either
            st.usable_pairs += 1
            st.pixel_counts += seg.counts
            st.images_with_class += seg.counts > 0
            for c in range(1, k):
                st.objects_per_image[c].append(len(seg.objects[c]))
                st.object_sizes[c] += seg.objects[c]
            st.records.append(PairRecord(stem, rel(imgs[stem]), rel(segs[stem]), img.size,
                                         tuple(np.flatnonzero(seg.counts).tolist())))

    # duplicates: identical image bytes; keep the first copy in split order, then by name
    first: dict[str, tuple[str, str]] = {}
    for split, (imgs, _) in listing.items():
        for stem, path in imgs.items():
            img = read[(split, 'img', stem)]
            if not img.digest:
                continue
            if img.digest not in first:
                first[img.digest] = (split, rel(path))
                continue
            orig_split, orig = first[img.digest]
            kind = 'duplicate_within_split' if orig_split == split else 'duplicate_across_splits'
            problems.append(Problem(split, rel(path), kind, f'same bytes as {orig}'))

    problems += _near_duplicate_problems(listing, read, rel)
    order = {s: i for i, s in enumerate(listing)}
    problems.sort(key=lambda p: (order[p.split], p.file, p.kind))
    return DatasetScan(root, tuple(classes), ignore_index, img_suffix, seg_suffix, stats,
                       missing, problems)


def _near_duplicate_problems(listing: Mapping[str, tuple[dict[str, Path], dict[str, Path]]],
                             read: Mapping[tuple[str, str, str], ImageInfo],
                             rel) -> list[Problem]:
    """Images that look like an earlier one (split order, then name) without the same bytes."""
    items = [(split, path, read[(split, 'img', stem)]) for split, (imgs, _) in listing.items()
             for stem, path in imgs.items() if read[(split, 'img', stem)].dhash is not None]
    problems = []
    for j, (i, dist) in near_duplicates([info.dhash for _, _, info in items]).items():
        (split, path, info), (orig_split, orig, orig_info) = items[j], items[i]
        if info.digest == orig_info.digest:  # byte duplicates are reported already
            continue
        kind = ('near_duplicate_within_split' if orig_split == split
                else 'near_duplicate_across_splits')
        problems.append(Problem(split, rel(path), kind, f'looks like {rel(orig)} (difference '
                                                        f'hash {dist}/{HASH_SIZE ** 2} bits)'))
    return problems
