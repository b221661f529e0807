default_scope = 'mmseg'
# registers smallseg's components and applies the stack fixes (smallseg.compat, docs/stack.md)
custom_imports = dict(imports=['smallseg'], allow_failed_imports=False)
env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),  # the tools switch to gloo when there is no GPU
)
# local logs plus mmengine's ClearML backend on the run's task (docs/tracking.md)
vis_backends = [dict(type='LocalVisBackend'), dict(type='SafeClearMLVisBackend')]
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends)  # one per Runner
log_processor = dict(by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
custom_hooks = [
    dict(type='ChannelsLastHook'),  # channels-last convolutions, faster with oneDNN and cuDNN
    dict(type='NonFiniteLossHook'),  # stop at a NaN/inf loss, keep the last good checkpoint
    dict(type='SignalCheckpointHook'),  # Ctrl-C / SIGTERM save a checkpoint for --resume
    dict(type='ClearMLHook'),  # test metrics, pictures, output model, artefacts
]
amp = 'auto'  # bf16/fp16 where the hardware runs it natively, else fp32; --amp / --no-amp
pretrained = 'auto'  # init_cfg's weights: hub cache, else download, else from scratch
auto_num_workers = True  # 0 dataloader workers on CPUs with <= 4 cores
# ClearML: mode 'auto' (online when a server answers, else offline), 'online', 'offline', 'off'
clearml = dict(mode='auto', project='smallseg', task_name=None, tags=[])
