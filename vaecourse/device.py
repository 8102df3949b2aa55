"""Device selection and seeding: the one place vaecourse decides where tensors live.

Holds:
    get_device  -- VAECOURSE_DEVICE env var, else CUDA, else Apple MPS, else CPU.
    set_seed    -- seed Python, NumPy and torch (CUDA included) in one call.

Every chapter, exercise and script calls ``vc.get_device()`` instead of writing
``"cuda"`` by hand, so the same notebook runs on a laptop CPU and on a GPU.
"""

import os
import random

import numpy as np
import torch

__all__ = ["get_device", "set_seed"]

_ENV = "VAECOURSE_DEVICE"


def get_device(prefer=None, *, name="prefer"):
    """Return the ``torch.device`` to compute on.

    Args:
        prefer: optional device string (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``) or
            ``torch.device``. When given it wins over everything else.
        name: what an error calls ``prefer`` (``vc.train`` passes ``"device"``, its argument).

    Order of preference otherwise: the ``VAECOURSE_DEVICE`` environment variable, then CUDA,
    then MPS, then the CPU. Asking for an accelerator that is not present raises ``ValueError``.
    """
    choice = prefer if prefer is not None else os.environ.get(_ENV, "").strip() or None
    source = name if prefer is not None else _ENV  # where the choice came from, for the errors
    if choice is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(choice)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"{source}: {choice!r} is not a device name ({err})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{source}: asked for {choice!r} but CUDA is not available")
    if device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"{source}: asked for {choice!r} but MPS is not available")
    return device


def set_seed(seed):
    """Seed Python's ``random``, NumPy and torch (all CUDA devices too) with ``seed``."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an int, got {type(seed).__name__}")
    seed = int(seed)
    if not -(2**63) <= seed < 2**64:  # what torch.manual_seed takes
        raise ValueError(f"seed must be an int in [-2**63, 2**64), got {seed}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    return seed
