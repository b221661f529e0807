# A U-Net with a narrow ResNet-18 encoder (16..128 channels) at 64x64 for fast tests: the real
# runtime, schedule, dataset and hooks of configs/unet_r34.py, ~16x less compute per pixel
_base_ = ['../../configs/unet_r34.py']
model = dict(
    data_preprocessor=dict(size=(64, 64)),
    backbone=dict(depth=18, stem_channels=16, base_channels=16, init_cfg=None),
    decode_head=dict(in_channels=[16, 16, 32, 64, 128], decoder_channels=(32, 16, 16, 8, 8)))
pretrained = None
img_size = (64, 64)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='Resize', scale=img_size, keep_ratio=False),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomRotate', prob=0.5, degree=45, pad_val=0, seg_pad_val=255),
    dict(type='RandomBrightnessContrast', brightness_limit=0.2, contrast_limit=0.2, prob=0.3),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_size, keep_ratio=False),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=4, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=8, dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(batch_size=8, dataset=dict(pipeline=test_pipeline))
default_hooks = dict(logger=dict(interval=1))
