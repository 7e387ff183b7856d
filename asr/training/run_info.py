"""``run.json``: what produced a run — its resolved config, las-asr's version and git commit,
and the environment (Python, torch, CUDA, devices, threads, processes) — so that a result can
be traced back and repeated months later."""

from __future__ import annotations

import json
import platform
import subprocess
from pathlib import Path

import torch

import asr
from asr import __version__


def git_commit(folder: Path | None = None) -> str | None:
    """The commit checked out where las-asr's code lies (with ``-dirty`` if it has uncommitted
    changes); None where it is not a git checkout or git is missing."""
    folder = folder or Path(asr.__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if commit.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    dirty = status.returncode == 0 and status.stdout.strip() != ""
    return commit.stdout.strip() + ("-dirty" if dirty else "")


def environment(device: torch.device, world_size: int = 1) -> dict:
    """The software and hardware a run trains on."""
    cuda = torch.cuda.is_available()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda if cuda else None,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "device": str(device),
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if cuda
        else [],
        "threads": torch.get_num_threads(),
        "processes": world_size,
    }


def write_run_info(path: Path, config: dict, device: torch.device, world_size: int = 1) -> dict:
    """Write ``run.json`` (``path``) and return what it holds."""
    info = {
        "las_asr_version": __version__,
        "git_commit": git_commit(),
        "config": config,
        "environment": environment(device, world_size),
    }
    path.write_text(json.dumps(info, indent=2, default=str))
    return info
