# 30 epochs, validation every epoch, the best checkpoint kept by val mDice (the seed's schedule)
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-4))
param_scheduler = []  # constant learning rate, as in the seed
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=30, val_interval=1)
# under --time-budget: 0 validates every epoch; 0.5 validates the first epoch and then from
# half the fitted run on, its minutes going to more epochs (docs/recipes.md#time-budget)
time_budget_val_from = 0.0
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10, log_metric_by_epoch=True),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # CheckpointHook that writes atomically and removes old files only afterwards
    checkpoint=dict(type='SafeCheckpointHook', by_epoch=True, interval=1, max_keep_ckpts=1,
                    save_best='mDice', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
