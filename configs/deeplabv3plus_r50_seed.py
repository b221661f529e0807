# DeepLabV3+ R50, the seed report's recipe (to compare with deeplabv3plus_r50.py): weighted CE,
# Adam 1e-4 constant, batch 8, 30 epochs, 256x256, horizontal flip p0.5 + rotate 30 deg p0.3
_base_ = [
    './_base_/models/deeplabv3plus_r50.py', './_base_/datasets/img_labels.py',
    './_base_/default_runtime.py', './_base_/schedules/schedule_30e.py'
]
model = dict(decode_head=dict(loss_decode=dict(class_weight=[0.1, 1.0, 1.0])))
optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-4))
