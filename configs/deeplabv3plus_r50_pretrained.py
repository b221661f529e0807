# DeepLabV3+ R50 fine-tuned from torchvision's ImageNet weights (docs/pretrained.md): the
# recipe of deeplabv3plus_r50.py with the encoder at a tenth of the LR, 256x256, fewer epochs.
_base_ = ['./deeplabv3plus_r50.py']
pretrained = 'required'  # an error, not a run from scratch, when the weights are missing
img_size = (256, 256)  # nearer the ImageNet scale (224): every pipeline and the preprocessor
crop_size = (img_size[1], img_size[0])  # (h, w), the preprocessor's order
# flip, rotate and brightness/contrast at img_size (the scale augmentation of the scratch recipe
# is not measured with ImageNet weights)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='Resize', scale=img_size, keep_ratio=False),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomRotate', prob=0.3, degree=20, pad_val=0, seg_pad_val=255),
    dict(type='RandomBrightnessContrast', brightness_limit=0.2, contrast_limit=0.2, prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_size, keep_ratio=False),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
model = dict(data_preprocessor=dict(size=crop_size))
# the encoder at LR x0.1 keeps its ImageNet features; the new decoder learns at the full LR
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1)}))
train_cfg = dict(max_epochs=10)  # a pretrained encoder needs fewer epochs than one from scratch
