# DeepLabV3+ R50 (output stride 16), the default recipe for small imbalanced datasets, from
# scratch or pretrained: the loss, schedule and data settings of unet_r34.py.
# The seed report's recipe: deeplabv3plus_r50_seed.py.
_base_ = [
    './_base_/models/deeplabv3plus_r50.py', './_base_/datasets/img_labels_small.py',
    './_base_/default_runtime.py', './_base_/schedules/schedule_scratch.py'
]
model = dict(decode_head=dict(loss_decode=[
    dict(type='IgnoreSafeCrossEntropyLoss', class_weight='auto', loss_weight=1.0),
    dict(type='ClassDiceLoss', loss_weight=1.0),
]))
train_cfg = dict(max_epochs=16)  # about 20 minutes for 200 images on 2 CPU cores
