# DeepLabV3+ R50 (output stride 16), the default recipe for small imbalanced datasets, from
# scratch or pretrained: the loss, schedule, batch size and augmentation of unet_r34.py.
# The seed report's recipe: deeplabv3plus_r50_seed.py.
_base_ = [
    './_base_/models/deeplabv3plus_r50.py', './_base_/datasets/img_labels.py',
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
train_cfg = dict(max_epochs=16)
