# DeepLabV3+ R50, the default recipe for small imbalanced datasets (from scratch or pretrained).
# Output stride 16, as the model base: at 128x128 the ASPP head sees 8x8 maps (4x4 at stride 32).
# Scale augmentation (0.8-1.25x, then a 128x128 crop or padding): more varied views of 200 images.
# Evidence for each setting: docs/recipes.md. The seed report's recipe: deeplabv3plus_r50_seed.py.
_base_ = [
    './_base_/models/deeplabv3plus_r50.py', './_base_/datasets/img_labels_small_scale.py',
    './_base_/default_runtime.py', './_base_/schedules/schedule_scratch.py'
]
model = dict(
    # one object of one class per image where the training masks show it ('auto')
    type='ObjectPriorEncoderDecoder',
    data_preprocessor=dict(size={{_base_.crop_size}}),  # the dataset base's 128x128 (h, w)
    # flip=True: predict from the mean of the image's and its mirror's probabilities
    test_cfg=dict(mode='whole', one_class='auto', largest_object='auto', flip=True),
    # unweighted cross-entropy + per-class soft Dice
    decode_head=dict(loss_decode=[
        dict(type='IgnoreSafeCrossEntropyLoss', class_weight=None, loss_weight=1.0),
        dict(type='ClassDiceLoss', loss_weight=1.0),
    ]))
# 200 images on 2 CPU cores: about 7 minutes with AMX (bf16), over 20 on AVX2 only (fp32)
train_cfg = dict(max_epochs=20)
