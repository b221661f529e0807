# The small data base with scale augmentation: each training image is resized to 0.8-1.25x of
# img_size, then cropped to img_size (larger) or padded by the preprocessor (smaller, label 255)
_base_ = ['./img_labels_small.py']
img_size = (128, 128)  # (w, h), as Resize reads it
crop_size = (img_size[1], img_size[0])  # (h, w), as RandomCrop and the preprocessor read it
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=img_size, ratio_range=(0.8, 1.25), keep_ratio=False),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomRotate', prob=0.3, degree=20, pad_val=0, seg_pad_val=255),
    dict(type='RandomBrightnessContrast', brightness_limit=0.2, contrast_limit=0.2, prob=0.5),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
