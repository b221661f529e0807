# A U-Net with a narrow ResNet-18 encoder (16..128 channels) for fast tests: the real runtime,
# schedule, dataset and hooks of configs/unet_r34.py, ~16x less compute and checkpoint size
_base_ = ['../../configs/unet_r34.py']
model = dict(
    data_preprocessor=dict(size=(64, 64)),
    backbone=dict(depth=18, stem_channels=16, base_channels=16, init_cfg=None),
    decode_head=dict(in_channels=[16, 16, 32, 64, 128], decoder_channels=(32, 16, 16, 8, 8)))
pretrained = None
img_size = (64, 64)
train_dataloader = dict(batch_size=4)
val_dataloader = dict(batch_size=8)
test_dataloader = dict(batch_size=8)
default_hooks = dict(logger=dict(interval=1))
