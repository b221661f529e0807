"""Where a run's code came from: the git checkout it runs in and the installed packages."""
from __future__ import annotations

import re
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[2]  # the checkout this smallseg package belongs to


def git(*args: str, repo: Path = REPO) -> str:
    """The output of ``git -C repo *args``; '' when git, the checkout or the answer is missing."""
    try:
        return subprocess.run(['git', '-C', str(repo), *args], capture_output=True, text=True,
                              timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ''


def code_version(repo: Path = REPO) -> dict[str, Optional[str | bool]]:
    """Remote (without user or token), branch and commit of ``repo``, and whether tracked files
    differ from the commit (None when there is no commit)."""
    commit = git('rev-parse', 'HEAD', repo=repo)
    changes = git('status', '--porcelain', '--untracked-files=no', repo=repo) if commit else None
    return dict(remote=re.sub(r'//[^/@]*@', '//', git('remote', 'get-url', 'origin', repo=repo)),
                branch=git('rev-parse', '--abbrev-ref', 'HEAD', repo=repo), commit=commit,
                dirty=None if changes is None else bool(changes))


def installed_packages() -> list[str]:
    """``name==version`` of every installed distribution, sorted (what ``pip freeze`` lists)."""
    return sorted({f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions()
                   if d.metadata['Name']}, key=str.lower)
