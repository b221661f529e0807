# DeepLabV3+ R50 with an image-level class head: the default recipe, plus a head on the encoder's
# last stage trained jointly; one_class takes the head's class instead of the probability vote.
# Seeded comparison with the vote: docs/recipes.md.
_base_ = ['./deeplabv3plus_r50.py']
model = dict(
    auxiliary_head=dict(type='ImageClassHead', in_channels=2048, num_classes=3, loss_weight=0.4),
    test_cfg=dict(class_from='head'))
