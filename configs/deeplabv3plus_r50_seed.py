# DeepLabV3+ R50, the seed report's recipe: weighted CE, Adam 1e-4 constant, batch 8, 256x256
_base_ = [
    './_base_/models/deeplabv3plus_r50.py', './_base_/datasets/img_labels.py',
    './_base_/default_runtime.py', './_base_/schedules/schedule_30e.py'
]
model = dict(decode_head=dict(loss_decode=dict(class_weight=[0.1, 1.0, 1.0])))
optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-4))
