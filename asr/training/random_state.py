"""Every random number generator a training step draws from, captured and restored as plain data.

A resumed run is bitwise the run that was never interrupted only if each source of randomness
continues where it stopped: Python's ``random``, NumPy's global generator, torch's CPU generator
(dropout, weight init), every CUDA device's generator, and the explicit generators the loop owns
(augmentation draws; the DataLoader's, from which each epoch's worker seeds are drawn). The
states are tensors, numbers and lists, so a checkpoint holding them still loads with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

import numpy as np
import torch


def capture(generators: Mapping[str, torch.Generator]) -> dict:
    """The state of the global generators and of ``generators`` (by name), as plain data."""
    version, internal, gauss = random.getstate()
    kind, keys, position, has_gauss, cached = np.random.get_state()
    state = {
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "generators": {name: g.get_state() for name, g in generators.items()},
    }
    return state


def restore(state: Mapping, generators: Mapping[str, torch.Generator]) -> None:
    """Put back what :func:`capture` returned; generators it does not name are left alone."""
    python = state["python"]
    random.setstate((python["version"], tuple(python["internal"]), python["gauss"]))
    numpy = state["numpy"]
    np.random.set_state(
        (
            numpy["kind"],
            numpy["keys"].numpy().astype(np.uint32),
            numpy["position"],
            numpy["has_gauss"],
            numpy["cached"],
        )
    )
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    for name, saved in state.get("generators", {}).items():
        if name in generators:
            generators[name].set_state(saved)
