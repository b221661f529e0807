"""DiceMetric on hand-built predictions, checked against hand values and plain numpy."""
import csv
import math

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.structures import PixelData
from mmseg.evaluation import IoUMetric
from mmseg.structures import SegDataSample

import smallseg  # noqa: F401  (registers DiceMetric)
from smallseg.evaluation import DiceMetric, confusion_matrix, metrics_to_fractions

torch.set_num_threads(1)
CLASSES = ('background', 'round', 'angular')
IGN = 255


def _sample(name: str, gt: np.ndarray, pred: np.ndarray) -> SegDataSample:
    s = SegDataSample(metainfo=dict(img_path=f'/data/img/test/{name}.jpg'))
    s.gt_sem_seg = PixelData(data=torch.from_numpy(gt[None].astype(np.int64)))
    s.pred_sem_seg = PixelData(data=torch.from_numpy(pred[None].astype(np.int64)))
    return s


def _cases() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name -> (truth, prediction), 4x4 masks with Dice values worked out by hand."""
    perfect = np.array([[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]])
    # class 2 object of 4 px, prediction all background: Dice(2) = 0, Dice(0) = 2*12/(12+16)
    missed_gt = np.zeros((4, 4), int)
    missed_gt[:2, :2] = 2
    missed_pred = np.zeros((4, 4), int)
    # class 1: 4 true px, 2 predicted inside + 1 predicted outside; one ignored pixel
    partial_gt = np.zeros((4, 4), int)
    partial_gt[2:, 2:] = 1
    partial_gt[0, 3] = IGN
    partial_pred = np.zeros((4, 4), int)
    partial_pred[3, 2:] = 1
    partial_pred[0, 0] = 1
    partial_pred[0, 3] = 2  # on the ignored pixel: not counted
    return {'perfect': (perfect, perfect.copy()), 'missed': (missed_gt, missed_pred),
            'partial': (partial_gt, partial_pred)}


def _numpy_dice(gt: np.ndarray, pred: np.ndarray, c: int) -> tuple[int, int, int]:
    valid = gt != IGN
    t, p = (gt == c) & valid, (pred == c) & valid
    return int((t & p).sum()), int(p.sum()), int(t.sum())


def _numpy_reference(cases: dict) -> dict:
    """Independent computation: per-image Dice with the empty-class rule + dataset sums."""
    inter = np.zeros(3)
    pred_px = np.zeros(3)
    true_px = np.zeros(3)
    per_image = {}
    for name, (gt, pred) in cases.items():
        dice = []
        for c in range(3):
            i, p, t = _numpy_dice(gt, pred, c)
            inter[c] += i
            pred_px[c] += p
            true_px[c] += t
            dice.append(math.nan if p + t == 0 else 2 * i / (p + t))
        per_image[name] = dice
    dataset = 2 * inter / (pred_px + true_px)
    iou = inter / (pred_px + true_px - inter)
    return dict(per_image=per_image, dice=dataset, iou=iou)


def _run(cases: dict, as_dicts: bool = True, **kwargs) -> tuple[DiceMetric, dict]:
    metric = DiceMetric(**kwargs)
    metric.dataset_meta = dict(classes=CLASSES)
    samples = [_sample(n, gt, pred) for n, (gt, pred) in cases.items()]
    # mmengine's Evaluator passes dicts (data_sample.to_dict()); objects work as well
    metric.process({}, [s.to_dict() for s in samples] if as_dicts else samples)
    return metric, metric.evaluate(len(samples))


def test_known_values_per_image_and_dataset(tmp_path):
    cases = _cases()
    csv_path = tmp_path / 'rows.csv'
    _, m = _run(cases, csv_path=str(csv_path))
    ref = _numpy_reference(cases)
    # hand values: perfect = 1 (class 2 absent from both: skipped), missed: bg 24/28, class 2 = 0,
    # partial: bg = 2*10/(11+12), class 1 = 2*2/(4+3), class 2 skipped (only predicted on the
    # ignored pixel)
    np.testing.assert_allclose(ref['per_image']['perfect'], [1, 1, math.nan])
    np.testing.assert_allclose(ref['per_image']['missed'], [24 / 28, math.nan, 0])
    np.testing.assert_allclose(ref['per_image']['partial'], [20 / 23, 4 / 7, math.nan])
    per_image_mdice = np.mean([np.nanmean(v) for v in ref['per_image'].values()])
    assert m['mDice_per_image'] == pytest.approx(100 * per_image_mdice, abs=0.01)
    fg = [np.nanmean(v[1:]) for v in ref['per_image'].values()]
    assert m['mDice_fg_per_image'] == pytest.approx(100 * np.mean(fg), abs=0.01)  # (1+0+4/7)/3
    assert m['mDice'] == pytest.approx(100 * ref['dice'].mean(), abs=0.01)
    # image class: perfect right (1), missed wrong (none predicted), partial right (1; its
    # class-2 pixel is the ignored one)
    assert m['img_class_acc'] == pytest.approx(100 * 2 / 3, abs=0.01)
    assert m['mDice_fg'] == pytest.approx(100 * ref['dice'][1:].mean(), abs=0.01)
    assert m['mIoU'] == pytest.approx(100 * ref['iou'].mean(), abs=0.01)
    for c, name in enumerate(CLASSES):
        assert m[f'Dice.{name}'] == pytest.approx(100 * ref['dice'][c], abs=0.01)
        assert m[f'IoU.{name}'] == pytest.approx(100 * ref['iou'][c], abs=0.01)
    # confusion matrix: rows truth, columns prediction, ignored pixel left out
    cm = np.array(m['confusion_matrix'])
    assert cm.shape == (3, 3) and cm.sum() == 16 * 3 - 1
    expected = sum(np.array([[((gt == t) & (pred == p)).sum() for p in range(3)]
                             for t in range(3)]) for gt, pred in cases.values())
    np.testing.assert_array_equal(cm, expected)
    # the per-image CSV: fractions, empty where a class is skipped
    rows = {r['image']: r for r in csv.DictReader(csv_path.open())}
    assert set(rows) == {'perfect.jpg', 'missed.jpg', 'partial.jpg'}
    assert rows['perfect.jpg']['Dice.angular'] == '' and rows['perfect.jpg']['mDice'] == '1.0000'
    assert rows['missed.jpg']['Dice.angular'] == '0.0000'
    assert (rows['missed.jpg']['true_px.angular'], rows['missed.jpg']['pred_px.angular']) == (
        '4', '0')
    assert float(rows['partial.jpg']['Dice.round']) == pytest.approx(4 / 7, abs=1e-4)


def test_matches_mmseg_iou_metric_and_objects_accepted():
    cases = _cases()
    _, ours = _run(cases, as_dicts=False)
    ref = IoUMetric(iou_metrics=['mIoU', 'mDice'])
    ref.dataset_meta = dict(classes=CLASSES)
    ref.process({}, [_sample(n, gt, p).to_dict() for n, (gt, p) in cases.items()])
    theirs = ref.evaluate(len(cases))
    for key in ('mDice', 'mIoU', 'aAcc', 'mAcc'):
        assert ours[key] == pytest.approx(theirs[key], abs=0.01), key


def test_perfect_and_all_background_predictions():
    gt = np.zeros((8, 8), int)
    gt[2:6, 2:6] = 1
    gt[0, :] = 2
    _, perfect = _run({'a': (gt, gt.copy())})
    assert perfect['mDice'] == perfect['mDice_fg'] == perfect['mDice_per_image'] == 100.0
    _, bg = _run({'a': (gt, np.zeros_like(gt))})
    assert bg['Dice.round'] == bg['Dice.angular'] == bg['mDice_fg'] == 0.0
    assert bg['Dice.background'] == pytest.approx(100 * 2 * 40 / (40 + 64), abs=0.01)
    assert bg['mDice'] == pytest.approx(bg['Dice.background'] / 3, abs=0.01)


def test_class_absent_from_whole_split_is_skipped():
    gt = np.zeros((4, 4), int)
    gt[:2] = 1
    _, m = _run({'a': (gt, gt.copy())})
    assert math.isnan(m['Dice.angular'])  # no pixel of class 2 anywhere: not 0, not 1
    assert m['mDice'] == 100.0 and m['mDice_fg'] == 100.0
    frac = metrics_to_fractions(m)
    assert frac['Dice.angular'] is None and frac['mDice'] == 1.0
    assert frac['confusion_matrix'] == m['confusion_matrix']


def test_confusion_matrix_helper_and_output_dir(tmp_path):
    gt = torch.tensor([[0, 1, 255], [2, 2, 1]])
    pred = torch.tensor([[0, 2, 1], [2, 0, 1]])
    np.testing.assert_array_equal(confusion_matrix(pred, gt, 3),
                                  [[1, 0, 0], [0, 1, 1], [1, 0, 1]])
    _run({'img1': (gt.numpy(), pred.numpy())}, output_dir=str(tmp_path / 'preds'))
    assert (tmp_path / 'preds' / 'img1.png').is_file()
    assert (tmp_path / 'preds' / 'per_image.csv').is_file()


def test_dataset_config_uses_dice_metric():
    cfg = Config.fromfile('configs/_base_/datasets/img_labels.py')
    assert cfg.val_evaluator.type == 'DiceMetric' and cfg.test_evaluator.type == 'DiceMetric'


def test_image_class_is_the_most_predicted_foreground_class():
    gt = np.zeros((6, 6), int)
    gt[1:5, 1:5] = 1  # a class-1 object of 16 px
    mostly_wrong = gt.copy()
    mostly_wrong[1:5, 1:4] = 2  # 12 px taken for class 2, 4 left as class 1
    mostly_right = gt.copy()
    mostly_right[1, 1:4] = 2  # 3 px wrong, 13 right
    empty = np.zeros((6, 6), int)
    _, m = _run({'wrong': (gt, mostly_wrong), 'right': (gt, mostly_right),
                 'no_truth': (empty, mostly_wrong)})  # no foreground in the truth: not counted
    assert m['img_class_acc'] == 50.0
    assert metrics_to_fractions(m)['img_class_acc'] == 0.5
    _, none = _run({'bg': (empty, empty.copy())})
    assert math.isnan(none['img_class_acc'])


def test_image_classes_with_background_only():
    from smallseg.evaluation.dice_metric import image_classes
    true_cls, pred_cls = image_classes(np.array([[[5]], [[3]]]))  # one class: no foreground
    assert true_cls.tolist() == pred_cls.tolist() == [0, 0]
