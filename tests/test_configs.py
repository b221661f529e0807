"""The config files are the truth: plain mmengine (``Config.fromfile`` + ``Runner.from_cfg``)
builds the pipelines and sizes the tools run, and an unresolved 'auto' fails by name."""
from __future__ import annotations

from pathlib import Path

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from smallseg.apis.train import build_train_cfg, train
from smallseg.utils.config import LOADER_KEYS, head_losses
from smallseg.utils.errors import UserError

from conftest import tiny_options

# every model config and the size its file writes into its pipelines and preprocessor
SIZES = {
    'configs/deeplabv3plus_r50.py': (128, 128),
    'configs/deeplabv3plus_r50_classhead.py': (128, 128),
    'configs/deeplabv3plus_r50_pretrained.py': (256, 256),
    'configs/deeplabv3plus_r50_seed.py': (256, 256),
    'configs/unet_r34.py': (128, 128),
    'configs/unet_r34_pretrained.py': (256, 256),
    'configs/unet_r34_seed.py': (256, 256),
}


def test_every_model_config_is_listed() -> None:
    assert sorted(SIZES) == sorted(str(p) for p in Path('configs').glob('*.py'))


def sizes(cfg: Config) -> dict[str, set]:
    """Every Resize / RandomResize scale and RandomCrop size of the three dataloaders, and the
    preprocessor's size, as (w, h) (RandomCrop and the preprocessor are written (h, w))."""
    out = {key: {tuple(t['crop_size'][::-1] if t['type'] == 'RandomCrop' else t['scale'])
                 for t in cfg[key].dataset.pipeline
                 if t['type'] in ('Resize', 'RandomResize', 'RandomCrop')}
           for key in LOADER_KEYS}
    out['preprocessor'] = {tuple(cfg.model.data_preprocessor.size[::-1])}
    return out


def resolved(cfg: Config) -> Config:
    """``cfg`` with its 'auto' values set as a training run could set them."""
    for loss in head_losses(cfg.model):
        if isinstance(loss.get('class_weight'), str):
            loss.class_weight = [0.5, 1.0, 1.0]
    for key in ('one_class', 'largest_object'):
        if cfg.model.test_cfg.get(key) == 'auto':
            cfg.model.test_cfg[key] = True
    return cfg


@pytest.mark.parametrize('config', sorted(SIZES))
def test_plain_mmengine_builds_what_tools_train_runs(config: str, tiny_data: Path,
                                                     tmp_path: Path) -> None:
    plain = Config.fromfile(config)
    expected = SIZES[config]
    assert tuple(plain.img_size) == expected
    assert sizes(plain) == {key: {expected} for key in (*LOADER_KEYS, 'preprocessor')}
    tools, _ = build_train_cfg(config, work_dir=str(tmp_path / 'tools'),
                               data_root=str(tiny_data), pretrained=None)
    for key in LOADER_KEYS:  # the same pipelines, augmentation included
        assert plain[key].dataset.pipeline == tools[key].dataset.pipeline, key
    assert plain.model.data_preprocessor == tools.model.data_preprocessor
    plain.work_dir = str(tmp_path / 'plain')
    runner = Runner.from_cfg(resolved(plain))
    assert tuple(runner.model.data_preprocessor.size) == expected


@pytest.mark.parametrize('config, setting', [
    ('configs/unet_r34.py', "class_weight='auto_sqrt'"),
    ('configs/deeplabv3plus_r50.py', "model.test_cfg.one_class='auto'"),
])
def test_plain_mmengine_stops_at_an_unresolved_auto(config: str, setting: str,
                                                    tmp_path: Path) -> None:
    cfg = Config.fromfile(config)
    cfg.work_dir = str(tmp_path)
    with pytest.raises(UserError, match=f'{setting}.*tools/train.py') as error:
        Runner.from_cfg(cfg)
    assert 'or set' in str(error.value)


def test_a_bare_img_size_that_sizes_nothing_is_an_error(tmp_path: Path) -> None:
    config = tmp_path / 'bigger.py'
    config.write_text(f"_base_ = ['{Path('configs/unet_r34.py').resolve()}']\n"
                      'img_size = (512, 512)\n')
    from smallseg.apis.config import load_config
    with pytest.raises(UserError, match=r'img_size \(w, h\) is \(512, 512\) but '
                                        r'train_dataloader Resize is \(128, 128\)'):
        load_config(config)
    # the tools' convenience option sizes them all
    cfg = load_config(config, {'img_size': (512, 512)})
    assert sizes(cfg) == {key: {(512, 512)} for key in (*LOADER_KEYS, 'preprocessor')}


@pytest.mark.parametrize('config', ['configs/deeplabv3plus_r50.py', 'configs/unet_r34.py'])
def test_a_non_square_img_size_trains_h_by_w(config: str, tiny_data: Path,
                                            tmp_path: Path) -> None:
    """img_size is (w, h) as Resize reads it; RandomCrop and the preprocessor read (h, w), so
    img_size (96, 64) trains on batches 64 high and 96 wide, scale augmentation included."""
    from smallseg.apis.config import load_config
    cfg = load_config(config, {'img_size': (96, 64), 'data_root': str(tiny_data)})
    assert sizes(cfg) == {key: {(96, 64)} for key in (*LOADER_KEYS, 'preprocessor')}
    assert tuple(cfg.crop_size) == (64, 96)
    cfg.work_dir = str(tmp_path)
    cfg.train_dataloader.update(num_workers=0, persistent_workers=False)
    runner = Runner.from_cfg(resolved(cfg))
    batch = next(iter(runner.train_dataloader))
    data = runner.model.data_preprocessor(batch, training=True)
    assert tuple(data['inputs'].shape[-2:]) == (64, 96)
    assert {tuple(s.gt_sem_seg.data.shape[-2:]) for s in data['data_samples']} == {(64, 96)}


def test_a_last_batch_of_one_is_dropped(tiny_data: Path, tmp_path: Path) -> None:
    """16 training images in batches of 5 leave one over: batch norm cannot train on one image
    (DeepLabV3+'s pooled ASPP branch stops the run), so the train dataloader drops it."""
    cfg, info = build_train_cfg('configs/deeplabv3plus_r50.py', work_dir=str(tmp_path),
                                data_root=str(tiny_data), amp='off', pretrained=None, epochs=1,
                                cfg_options={**tiny_options(batch_size=5),
                                             'val_dataloader.dataset.indices': 2})
    assert cfg.train_dataloader.drop_last is True
    info = train(cfg, info)
    assert info['epochs'] == 1 and Path(info['best_checkpoint']).is_file()
    assert 'Epoch(train) [1][3/3]' in ''.join(p.read_text() for p in tmp_path.rglob('*.log'))


def test_a_train_split_smaller_than_a_batch_is_an_error(tiny_data: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r'the train split has 16 usable image/mask pairs, '
                                        r'fewer than train_dataloader.batch_size 32 .*'
                                        r'train_dataloader.batch_size=16'):
        build_train_cfg('configs/unet_r34.py', work_dir=str(tmp_path), data_root=str(tiny_data),
                        cfg_options={'train_dataloader.batch_size': 32})


@pytest.mark.parametrize('config', sorted(SIZES))
def test_every_config_drops_a_short_train_batch(config: str) -> None:
    assert Config.fromfile(config).train_dataloader.drop_last is True


def test_a_crop_written_w_h_is_an_error(tmp_path: Path) -> None:
    """A RandomCrop written in Resize's (w, h) order for a non-square img_size fails by name."""
    from smallseg.apis.config import load_config
    config = tmp_path / 'wide.py'
    config.write_text(f"_base_ = ['{Path('configs/deeplabv3plus_r50.py').resolve()}']\n"
                      'img_size = (96, 64)\n'
                      'crop_size = (64, 96)\n'
                      "train_pipeline = [dict(type='LoadImageFromFile'),\n"
                      "    dict(type='LoadAnnotations'),\n"
                      "    dict(type='Resize', scale=img_size, keep_ratio=False),\n"
                      "    dict(type='RandomCrop', crop_size=img_size),\n"
                      "    dict(type='PackSegInputs')]\n"
                      "test_pipeline = [dict(type='LoadImageFromFile'),\n"
                      "    dict(type='Resize', scale=img_size, keep_ratio=False),\n"
                      "    dict(type='LoadAnnotations'), dict(type='PackSegInputs')]\n"
                      'train_dataloader = dict(dataset=dict(pipeline=train_pipeline))\n'
                      'val_dataloader = dict(dataset=dict(pipeline=test_pipeline))\n'
                      'test_dataloader = dict(dataset=dict(pipeline=test_pipeline))\n'
                      'model = dict(data_preprocessor=dict(size=crop_size))\n')
    with pytest.raises(UserError, match=r'img_size \(w, h\) is \(96, 64\) but train_dataloader '
                                        r'RandomCrop crop_size \(h, w\) is \(96, 64\), '
                                        r'not \(64, 96\)'):
        load_config(config)


def test_option_keys_follow_the_installed_runner_and_dataloader() -> None:
    import inspect

    from smallseg.apis.cfg_check import runner_keys
    from smallseg.apis.config import load_config
    assert set(inspect.signature(Runner.__init__).parameters) - {'self', 'cfg'} <= runner_keys()
    config = 'configs/unet_r34.py'
    # keys the Runner reads from its cfg, and torch DataLoader arguments, are accepted
    cfg = load_config(config, {'model_wrapper_cfg': dict(type='MMDistributedDataParallel'),
                               'train_dataloader.pin_memory': True})
    assert cfg.model_wrapper_cfg.type == 'MMDistributedDataParallel'
    for key in ('experiment_nam', 'train_dataloader.batch_sise'):
        with pytest.raises(UserError, match=key.split('.')[-1]):
            load_config(config, {key: 1})
