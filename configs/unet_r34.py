# U-Net R34, the default recipe for small imbalanced datasets, from scratch or pretrained:
# cross-entropy with median-frequency class weights of the training masks (as the EDA report
# suggests) + per-class soft Dice; AdamW 1e-3 with a one-epoch warm-up and poly decay; batch 4
# (twice the updates of the seed's 8 for the same images); flips, rotation, brightness/contrast.
# The seed report's recipe: unet_r34_seed.py.
_base_ = [
    './_base_/models/unet_r34.py', './_base_/datasets/img_labels.py',
    './_base_/default_runtime.py', './_base_/schedules/schedule_scratch.py'
]
model = dict(decode_head=dict(loss_decode=[
    dict(type='IgnoreSafeCrossEntropyLoss', class_weight='auto', loss_weight=1.0),
    dict(type='ClassDiceLoss', loss_weight=1.0),
]))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='Resize', scale={{_base_.img_size}}, keep_ratio=False),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomRotate', prob=0.3, degree=20, pad_val=0, seg_pad_val=255),
    dict(type='RandomBrightnessContrast', brightness_limit=0.2, contrast_limit=0.2, prob=0.5),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=4, dataset=dict(pipeline=train_pipeline))
img_size = (128, 128)  # trained and predicted at 128x128, scored at the masks' size
train_cfg = dict(max_epochs=24)
