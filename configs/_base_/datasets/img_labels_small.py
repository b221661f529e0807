# The default recipes' data: 128x128 (more epochs per minute on a CPU), batch 4, mild augmentation
_base_ = ['./img_labels.py']
img_size = (128, 128)  # the tools size every pipeline and the preprocessor with it
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='Resize', scale=img_size, keep_ratio=False),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomRotate', prob=0.3, degree=20, pad_val=0, seg_pad_val=255),
    dict(type='RandomBrightnessContrast', brightness_limit=0.2, contrast_limit=0.2, prob=0.5),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=4, dataset=dict(pipeline=train_pipeline))
