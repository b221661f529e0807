# U-Net R34, the seed report's recipe: weighted CE, AdamW 2e-4 constant, batch 8, 256x256
_base_ = [
    './_base_/models/unet_r34.py', './_base_/datasets/img_labels.py',
    './_base_/default_runtime.py', './_base_/schedules/schedule_30e.py'
]
model = dict(decode_head=dict(loss_decode=dict(class_weight=[0.1, 1.2, 1.2])))
optim_wrapper = dict(optimizer=dict(_delete_=True, type='AdamW', lr=2e-4, weight_decay=1e-4))
# the seed's stronger augmentation
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='Resize', scale={{_base_.img_size}}, keep_ratio=False),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomFlip', prob=0.3, direction='vertical'),
    dict(type='RandomRotate', prob=0.5, degree=45, pad_val=0, seg_pad_val=255),
    dict(type='RandomBrightnessContrast', brightness_limit=0.2, contrast_limit=0.2, prob=0.3),
    dict(type='RandomGaussianNoise', var_limit=(10.0, 50.0), prob=0.2),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
