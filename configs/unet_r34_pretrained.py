# U-Net R34 fine-tuned from torchvision's ImageNet weights (docs/pretrained.md): the recipe of
# unet_r34.py with the encoder at a tenth of the LR, 256x256, fewer epochs.
_base_ = ['./unet_r34.py']
pretrained = 'required'  # an error, not a run from scratch, when the weights are missing
img_size = (256, 256)  # nearer the ImageNet scale (224); sizes every pipeline and the preprocessor
# the encoder at LR x0.1 keeps its ImageNet features; the new decoder learns at the full LR
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1)}))
train_cfg = dict(max_epochs=10)  # a pretrained encoder needs fewer epochs than one from scratch
