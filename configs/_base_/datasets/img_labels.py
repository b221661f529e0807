# img/{train,val,test}/<stem>.jpg + labels/{train,val,test}/<stem>.png index masks (0 = background)
# --data-root DIR or --cfg-options data_root=DIR points it elsewhere (docs/datasets.md)
dataset_type = 'ImgLabelsSegDataset'
data_root = 'data/default'
img_size = (256, 256)  # (w, h), as Resize reads it
crop_size = (img_size[1], img_size[0])  # (h, w), as RandomCrop and the preprocessor read it
metainfo = dict(
    classes=('background', 'round', 'angular'),
    palette=[[0, 0, 0], [230, 25, 75], [60, 180, 75]])

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='Resize', scale=img_size, keep_ratio=False),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    # padded label pixels are 255 = ignored
    dict(type='RandomRotate', prob=0.3, degree=30, pad_val=0, seg_pad_val=255),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_size, keep_ratio=False),
    # annotations loaded after Resize: metrics at the masks' own size
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    # no short last batch: batch norm cannot train on one image (DeepLabV3+'s pooled ASPP branch)
    drop_last=True,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        data_prefix=dict(img_path='img/train', seg_map_path='labels/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        data_prefix=dict(img_path='img/val', seg_map_path='labels/val'),
        pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        data_prefix=dict(img_path='img/test', seg_map_path='labels/test'),
        pipeline=test_pipeline))

# mDice (background included; the best checkpoint is kept by it), mDice_fg, per-class Dice/IoU
val_evaluator = dict(type='DiceMetric')
test_evaluator = dict(type='DiceMetric')
