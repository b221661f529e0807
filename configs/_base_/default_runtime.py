default_scope = 'mmseg'
# registers smallseg's dataset, models, metric, hooks and applies the stack fixes (smallseg.compat)
custom_imports = dict(imports=['smallseg'], allow_failed_imports=False)
env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),  # tools switch to gloo when there is no GPU
)
# SafeClearMLVisBackend: mmengine's ClearML backend on the run's tracker (see clearml below)
vis_backends = [dict(type='LocalVisBackend'), dict(type='SafeClearMLVisBackend')]
# no fixed name: each Runner gets its own visualizer instance (several runs in one process)
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends)
log_processor = dict(by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
# channels-last convolutions (faster with oneDNN and cuDNN); stop at a NaN/inf loss before
# anything is saved from the broken weights; Ctrl-C / SIGTERM save a checkpoint for --resume
custom_hooks = [
    dict(type='ChannelsLastHook'),
    dict(type='NonFiniteLossHook'),
    dict(type='SignalCheckpointHook'),
    dict(type='ClearMLHook'),  # per-epoch curves, test metrics, pictures, model (see clearml)
]
# mixed precision: 'auto' = bf16/fp16 where the hardware runs it natively (CUDA, or a CPU with
# AMX / AVX512-BF16), fp32 elsewhere; tools/train.py --amp forces it on, --no-amp off
amp = 'auto'
# ImageNet weights for the encoder: 'auto' = use the backbone's init_cfg checkpoint when it is
# found offline (local file or torch hub cache), else train from scratch and say so;
# a path = that file; None = from scratch
pretrained = 'auto'
# dataloader workers chosen from the machine (0 on a CPU with <= 4 cores, where worker
# processes would fight the training threads); False = use the dataloaders' num_workers
auto_num_workers = True
# ClearML experiment tracking, one task per run (smallseg.apis.tracking): mode 'auto' = online
# when credentials are configured (clearml-init, or CLEARML_API_HOST/ACCESS_KEY/SECRET_KEY) and
# the server answers, else an offline session in <work_dir>/clearml/ to import later; 'online',
# 'offline', 'off'. The tools' --clearml overrides it, and so does $SMALLSEG_CLEARML.
# task_name None = the config's name. A failing server never stops training.
clearml = dict(mode='auto', project='smallseg', task_name=None, tags=[])
