# U-Net R34, the default recipe for small imbalanced datasets (from scratch or pretrained).
# Evidence for each setting: docs/recipes.md. The seed report's recipe: unet_r34_seed.py.
_base_ = [
    './_base_/models/unet_r34.py', './_base_/datasets/img_labels_small.py',
    './_base_/default_runtime.py', './_base_/schedules/schedule_scratch.py'
]
model = dict(
    # one object of one class per image where the training masks show it ('auto')
    type='ObjectPriorEncoderDecoder',
    data_preprocessor=dict(size={{_base_.crop_size}}),  # the dataset base's 128x128 (h, w)
    test_cfg=dict(mode='whole', one_class='auto', largest_object='auto'),
    # cross-entropy weighted by the square roots of the median-frequency weights + soft Dice
    decode_head=dict(loss_decode=[
        dict(type='IgnoreSafeCrossEntropyLoss', class_weight='auto_sqrt', loss_weight=1.0),
        dict(type='ClassDiceLoss', loss_weight=1.0),
    ]))
custom_hooks = [
    dict(type='ChannelsLastHook'), dict(type='NonFiniteLossHook'),
    dict(type='SignalCheckpointHook'), dict(type='ClearMLHook'),
    # class weights start at their square ('auto') and ease to 'auto_sqrt' by half the run
    dict(type='ClassWeightAnnealHook', start_power=2.0, end=0.5),
]
optim_wrapper = dict(optimizer=dict(weight_decay=0.05))  # AdamW's usual weight decay
# 48 epochs: at 24 the image-class decision (which class the object is) often stays at chance.
# 200 images on 2 CPU cores: about 12 minutes with AMX (bf16), about 40 on AVX2 only (fp32)
train_cfg = dict(max_epochs=48)
