"""torchvision's ImageNet ResNet files: where they are published, a verified download, a check.

torchvision names each file ``<arch>-<first hex digits of its sha256>.pth``; a file whose
content does not match its name is corrupt (or not the published file) and is never used.
The project needs no torchvision for this: ``torchvision://resnet50`` in a config resolves to
the URL below, as mmengine's loader would resolve it with torchvision installed.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import re
import tempfile
import urllib.request
from pathlib import Path
from typing import Iterable, Optional

import torch
from tqdm import tqdm

from .config import load_config
from ..utils.errors import UserError

TORCHVISION_PREFIX = 'torchvision://'
# torchvision's IMAGENET1K_V1 weights (what ``torchvision://<arch>`` loads)
TORCHVISION_FILES = {
    'resnet18': 'resnet18-f37072fd.pth',
    'resnet34': 'resnet34-b627a593.pth',
    'resnet50': 'resnet50-0676ba61.pth',
    'resnet101': 'resnet101-63fe2227.pth',
}
DEFAULT_URL = 'https://download.pytorch.org/models'
URL_ENV = 'SMALLSEG_WEIGHTS_URL'  # a mirror holding the same file names
TIMEOUT_S = 10.0  # connecting, and each read: a network that does not answer fails in seconds
# what a failed download raises: no network, refused, timed out, HTTP errors, a bad URL
NETWORK_ERRORS = (OSError, http.client.HTTPException, ValueError)
_HASH_IN_NAME = re.compile(r'-([0-9a-f]{6,})\.pth$')


class WeightsError(UserError):
    """A weights file whose sha256 does not match the hash prefix in its name."""


def hub_checkpoint_dir() -> Path:
    """Where torch hub caches downloads (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / 'checkpoints'


def weights_url(name: str, base_url: Optional[str] = None) -> str:
    """The URL of file ``name``: under ``base_url``, ``$SMALLSEG_WEIGHTS_URL`` or torchvision's."""
    base = base_url or os.environ.get(URL_ENV) or DEFAULT_URL
    return f'{base.rstrip("/")}/{name}'


def torchvision_arch(checkpoint: Optional[str]) -> Optional[str]:
    """``'resnet50'`` for ``'torchvision://resnet50'``, None for anything else."""
    if checkpoint and checkpoint.startswith(TORCHVISION_PREFIX):
        return checkpoint[len(TORCHVISION_PREFIX):]
    return None


def torchvision_file(arch: str) -> str:
    """torchvision's file name for ``arch``; a :class:`UserError` for an unknown one."""
    if arch not in TORCHVISION_FILES:
        raise UserError(f'{TORCHVISION_PREFIX}{arch}: no known ImageNet file (known: '
                        f'{", ".join(TORCHVISION_FILES)}); pass --pretrained FILE')
    return TORCHVISION_FILES[arch]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def check_file(path: Path) -> None:
    """Raise :class:`WeightsError` when ``path``'s sha256 does not start with its name's hash."""
    match = _HASH_IN_NAME.search(path.name)
    if match is None:
        return
    digest = sha256_of(path)
    if not digest.startswith(match.group(1)):
        raise WeightsError(f'{path} is corrupt: its sha256 starts {digest[:8]}, its name says '
                           f'{match.group(1)}; delete it and download it again')


def download(url: str, dest: Path, timeout: float = TIMEOUT_S, progress: bool = True) -> Path:
    """Download ``url`` to ``dest``, checked against the hash in ``dest``'s name.

    The file appears complete or not at all (a temporary file renamed into place).

    Args:
        url: The file to fetch.
        dest: Where to put it; its folder is made.
        timeout: Seconds to wait for the connection and for each read.
        progress: Show a progress bar on stderr.

    Returns:
        ``dest``. Raises one of :data:`NETWORK_ERRORS` when the download fails and
        :class:`WeightsError` when the content does not match the name.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    match = _HASH_IN_NAME.search(dest.name)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f'.{dest.name}.', suffix='.partial')
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, 'wb') as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            size = int(resp.headers.get('Content-Length') or 0) or None
            with tqdm(total=size, unit='B', unit_scale=True, unit_divisor=1024,
                      desc=dest.name, disable=not progress) as bar:
                while chunk := resp.read(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
        if match and not digest.hexdigest().startswith(match.group(1)):
            raise WeightsError(f'{url}: the downloaded file\'s sha256 starts '
                               f'{digest.hexdigest()[:8]}, its name says {match.group(1)}; '
                               f'nothing was saved to {dest}')
        os.replace(tmp, dest)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return dest


def config_archs(configs: Iterable[str | Path]) -> list[str]:
    """The torchvision encoders the configs' backbones name, in order, each once."""
    archs = []
    for config in configs:
        init_cfg = load_config(config).model.backbone.get('init_cfg') or {}
        arch = torchvision_arch(init_cfg.get('checkpoint'))
        if arch is not None and arch not in archs:
            torchvision_file(arch)  # an unknown one fails here, before any download
            archs.append(arch)
    return archs


def fetch(archs: Iterable[str], folder: Path, base_url: Optional[str] = None,
          timeout: float = TIMEOUT_S) -> list[Path]:
    """Put each encoder's verified file into ``folder``; files already there are checked.

    A failed download is a :class:`UserError` naming the URL.
    """
    paths = []
    for arch in archs:
        path = folder / torchvision_file(arch)
        if path.is_file():
            check_file(path)
            print(f'{path}: present, sha256 matches', flush=True)
        else:
            url = weights_url(path.name, base_url)
            print(f'Downloading {url} to {path}', flush=True)
            try:
                download(url, path, timeout)
            except NETWORK_ERRORS as exc:
                raise UserError(f'cannot download {url}: {describe(exc)}') from exc
        paths.append(path)
    return paths


def check_folder(folder: Path, archs: Iterable[str] = ()) -> list[Path]:
    """Check every ``<arch>-<hash>.pth`` in ``folder`` and that ``archs``' files are there.

    Returns the files checked; a missing or corrupt one is a :class:`UserError`.
    """
    if not folder.is_dir():
        raise UserError(f'--check {folder}: not a folder')
    for arch in archs:
        if not (folder / torchvision_file(arch)).is_file():
            raise UserError(f'{folder / torchvision_file(arch)} is missing')
    files = sorted(p for p in folder.glob('*.pth') if _HASH_IN_NAME.search(p.name))
    for path in files:
        check_file(path)
    return files


def describe(exc: BaseException) -> str:
    """A one-line reason for a failed download (``timed out``, ``Connection refused``...)."""
    reason = getattr(exc, 'reason', None) or exc
    text = getattr(reason, 'strerror', None) or str(reason) or type(reason).__name__
    return ' '.join(str(text).split())
