"""Closed forms in vaecourse.losses against torch.distributions, on random and extreme inputs."""

import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

import vaecourse as vc

torch.set_default_dtype(torch.float32)


def rand_gaussian(*shape, lo=-20.0, hi=20.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(*shape, generator=g, dtype=torch.float64) * 3
    logvar = torch.empty(*shape, dtype=torch.float64).uniform_(lo, hi, generator=g)
    return mu, logvar


# ----------------------------------------------------------------------------- gaussian_kl


def test_kl_worked_example_is_3_125():
    mu = torch.tensor([2.0, 0.0])
    logvar = torch.log(torch.tensor([0.25, 4.0]))
    assert vc.gaussian_kl(mu, logvar).item() == pytest.approx(3.125, abs=1e-6)


@pytest.mark.parametrize("shape", [(7,), (5, 3), (4, 6, 2)])
@pytest.mark.parametrize("lo,hi", [(-3.0, 3.0), (-20.0, 20.0)])
def test_kl_matches_torch_distributions(shape, lo, hi):
    mu, logvar = rand_gaussian(*shape, lo=lo, hi=hi)
    ref = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).sum(-1)
    got = vc.gaussian_kl(mu, logvar)
    assert got.shape == mu.shape[:-1]
    torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-10)


def test_kl_float32_extremes_and_zero():
    mu, logvar = rand_gaussian(64, 8)
    ref = vc.gaussian_kl(mu, logvar)  # float64
    got = vc.gaussian_kl(mu.float(), logvar.float())
    torch.testing.assert_close(got.double(), ref, rtol=1e-5, atol=1e-4)
    assert torch.all(vc.gaussian_kl(torch.zeros(3, 4), torch.zeros(3, 4)) == 0)
    # near logvar = 0 the expm1 form keeps relative accuracy where exp(l) - l - 1 cancels
    tiny = torch.full((1,), 1e-4)
    assert vc.gaussian_kl(torch.zeros(1), tiny).item() == pytest.approx(0.5 * (math.expm1(1e-4) - 1e-4), rel=1e-4)


def test_kl_per_dim_sums_to_kl_and_is_nonnegative():
    mu, logvar = rand_gaussian(10, 5)
    per = vc.gaussian_kl_per_dim(mu, logvar)
    assert per.shape == (10, 5) and torch.all(per >= 0)
    torch.testing.assert_close(per.sum(-1), vc.gaussian_kl(mu, logvar))


def test_kl_gradients_are_finite_and_correct():
    mu = torch.tensor([0.5, -1.0], dtype=torch.float64, requires_grad=True)
    logvar = torch.tensor([0.3, -2.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(vc.gaussian_kl, (mu, logvar))
    vc.gaussian_kl(mu, logvar).backward()
    torch.testing.assert_close(mu.grad, mu.detach())  # d/dmu = mu
    torch.testing.assert_close(logvar.grad, 0.5 * torch.expm1(logvar.detach()))  # d/dlogvar = (e^l - 1)/2


@pytest.mark.parametrize(
    "mu,logvar,match",
    [
        (torch.zeros(3), torch.zeros(4), "mu and logvar must have the same shape"),
        (torch.zeros(2, 3), torch.zeros(3, 2), "same shape"),
        (torch.zeros(3, dtype=torch.int64), torch.zeros(3), "mu must have a floating dtype"),
        ([0.0, 1.0], torch.zeros(2), "mu must be a torch.Tensor"),
        (torch.tensor(1.0), torch.tensor(0.0), "at least one dimension"),
    ],
)
def test_kl_bad_input_names_the_argument(mu, logvar, match):
    with pytest.raises(ValueError, match=match):
        vc.gaussian_kl(mu, logvar)


# ----------------------------------------------------------------------------- reparameterize


def test_reparameterize_shapes_and_distribution():
    torch.manual_seed(0)
    mu = torch.tensor([[1.0, -2.0, 0.0]])
    logvar = torch.log(torch.tensor([[0.25, 4.0, 1.0]]))
    assert vc.reparameterize(mu, logvar).shape == (1, 3)
    z = vc.reparameterize(mu, logvar, k=200_000)
    assert z.shape == (200_000, 1, 3)
    torch.testing.assert_close(z.mean(0), mu, atol=0.02, rtol=0)
    torch.testing.assert_close(z.var(0), logvar.exp(), atol=0.04, rtol=0.02)


def test_reparameterize_gradients_flow_to_mu_and_logvar():
    mu = torch.tensor([0.3, -1.2], requires_grad=True)
    logvar = torch.tensor([0.5, -0.7], requires_grad=True)
    eps = torch.tensor([1.5, -0.4])
    z = vc.reparameterize(mu, logvar, eps=eps)
    z.sum().backward()
    torch.testing.assert_close(mu.grad, torch.ones(2))  # dz/dmu = 1
    torch.testing.assert_close(logvar.grad, 0.5 * torch.exp(0.5 * logvar.detach()) * eps)  # dz/dlogvar
    torch.testing.assert_close(z.detach(), mu.detach() + torch.exp(0.5 * logvar.detach()) * eps)


@pytest.mark.parametrize("k", [0, -1, 2.5, True, "3"])
def test_reparameterize_rejects_bad_k(k):
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        vc.reparameterize(torch.zeros(2), torch.zeros(2), k=k)


def test_reparameterize_rejects_mismatch_and_bad_eps():
    with pytest.raises(ValueError, match="mu and logvar"):
        vc.reparameterize(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="eps must have shape"):
        vc.reparameterize(torch.zeros(2), torch.zeros(2), k=3, eps=torch.zeros(2))


# ----------------------------------------------------------------------------- log densities


def test_log_normal_and_standard_normal_match_torch():
    mu, logvar = rand_gaussian(6, 4, lo=-20, hi=20)
    x = torch.randn(6, 4, dtype=torch.float64) * 5
    ref = Normal(mu, torch.exp(0.5 * logvar)).log_prob(x).sum(-1)
    torch.testing.assert_close(vc.log_normal(x, mu, logvar), ref, rtol=1e-10, atol=1e-8)
    ref0 = Normal(0.0, 1.0).log_prob(x).sum(-1)
    torch.testing.assert_close(vc.log_standard_normal(x), ref0)


@pytest.mark.parametrize("logvar", [-170.0, -120.0, -100.0, -88.0, -80.5, -80.0, -79.5, 0.0, 60.0])
def test_log_normal_stays_finite_for_tiny_variances_in_float32(logvar):
    # e^-logvar overflows float32 below logvar = -88.7; x == mu must still score log N(mu; mu, var)
    mu = torch.tensor([[0.5, 0.0, 0.0]])  # (a nonzero mu plus a tiny std would round back to mu)
    lv = torch.full_like(mu, logvar, requires_grad=True)
    std = math.exp(0.5 * logvar)
    x = mu + torch.tensor([[0.0, 1.0, -2.0]]) * std  # 0, 1 and 2 standard deviations away
    got = vc.log_normal(x, mu, lv)
    ref = Normal(mu.double(), torch.full_like(mu, std, dtype=torch.float64)).log_prob(x.double()).sum(-1)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got.double(), ref, rtol=1e-5, atol=1e-3)
    got.sum().backward()
    assert torch.isfinite(lv.grad).all()
    # d/dlogvar of -(logvar + d^2 e^-logvar) / 2 is -(1 - d^2 e^-logvar) / 2 = 0, 0 and 1.5 here
    torch.testing.assert_close(lv.grad, torch.tensor([[-0.5, 0.0, 1.5]]), rtol=1e-4, atol=1e-4)


def test_log_normal_broadcasts_samples_against_parameters():
    mu, logvar = rand_gaussian(3, 2, lo=-2, hi=2)
    z = torch.randn(5, 3, 2, dtype=torch.float64)  # (K, B, Z)
    got = vc.log_normal(z, mu, logvar)
    assert got.shape == (5, 3)
    torch.testing.assert_close(got[4], vc.log_normal(z[4], mu, logvar))
    with pytest.raises(ValueError, match="do not broadcast"):
        vc.log_normal(torch.zeros(5, 3), torch.zeros(4), torch.zeros(4))


@pytest.mark.parametrize("scale", [1.0, 30.0, 200.0])
def test_bernoulli_log_likelihood_matches_torch_and_stays_finite(scale):
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(8, 50, generator=g) * scale
    x = torch.bernoulli(torch.full((8, 50), 0.5), generator=g)
    got = vc.bernoulli_log_likelihood(x, logits)
    assert torch.isfinite(got).all() and got.shape == (8,)
    ref = Bernoulli(logits=logits.double()).log_prob(x.double()).sum(-1)
    torch.testing.assert_close(got.double(), ref, rtol=1e-5, atol=1e-3)


def test_bernoulli_grey_levels_and_broadcasting():
    x = torch.rand(4, 10)
    logits = torch.randn(3, 4, 10)  # (K, B, D)
    got = vc.bernoulli_log_likelihood(x, logits)
    assert got.shape == (3, 4)
    p = torch.sigmoid(logits)
    ref = (x * torch.log(p) + (1 - x) * torch.log1p(-p)).sum(-1)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(
    "bad,match",
    [
        (torch.tensor([[0.5, 1.2]]), r"x must lie in \[0, 1\] for a Bernoulli decoder"),
        (torch.tensor([[-0.1, 0.5]]), r"x must lie in \[0, 1\] for a Bernoulli decoder"),
        (torch.tensor([[float("nan"), 0.5]]), "x contains NaN or infinite"),
    ],
)
def test_data_values_are_checked_where_they_enter_a_model(bad, match):
    """The maths functions check types and shapes only; the values are scanned where data enters."""
    model = vc.VAE(2, 1, hidden=(3,))
    for enter in (model.elbo, lambda x: model.iwae_bound(x, 2), model.log_likelihood, model.reconstruct):
        with pytest.raises(ValueError, match=match):
            enter(bad)
    with pytest.raises(ValueError, match=match.replace("x ", "data ")):
        vc.train(model, bad, epochs=1, progress=False)


def test_gaussian_log_likelihood_is_scaled_squared_error():
    x, mean = torch.randn(5, 7, dtype=torch.float64), torch.randn(5, 7, dtype=torch.float64)
    s2 = 0.3
    got = vc.gaussian_log_likelihood(x, mean, math.log(s2))
    const = -0.5 * 7 * math.log(2 * math.pi * s2)
    torch.testing.assert_close(got, const - ((x - mean) ** 2).sum(-1) / (2 * s2))
    ref = Normal(mean, math.sqrt(s2)).log_prob(x).sum(-1)
    torch.testing.assert_close(got, ref)


# ----------------------------------------------------------------------------- iwae_bound


def test_iwae_bound_k1_is_the_log_weight_and_matches_naive():
    log_w = torch.randn(1, 6, dtype=torch.float64)
    torch.testing.assert_close(vc.iwae_bound(log_w), log_w[0])
    log_w = torch.randn(7, 6, dtype=torch.float64)
    naive = torch.log(torch.exp(log_w).mean(0))
    torch.testing.assert_close(vc.iwae_bound(log_w), naive)


def test_iwae_bound_is_stable_for_very_negative_log_weights():
    g = torch.Generator().manual_seed(0)
    log_w = -1e4 + torch.randn(5000, 3, generator=g)  # float32, K = 5000
    got = vc.iwae_bound(log_w)
    assert torch.isfinite(got).all()
    ref = torch.logsumexp(log_w.double(), 0) - math.log(5000)
    torch.testing.assert_close(got.double(), ref, rtol=0, atol=2e-2)
    assert torch.all(got >= log_w.mean(0) - 1e-3)  # Jensen: log mean exp >= mean log
    assert torch.all(got <= log_w.max(0).values)


def test_iwae_bound_allows_minus_inf_weights():
    log_w = torch.tensor([[0.0, -math.inf], [math.log(3.0), -math.inf]])
    got = vc.iwae_bound(log_w)
    assert got[0].item() == pytest.approx(math.log(2.0)) and got[1].item() == -math.inf
    with pytest.raises(ValueError, match="log_w must have a floating dtype"):
        vc.iwae_bound(torch.zeros(3, 2, dtype=torch.int32))


# ----------------------------------------------------------------------------- free bits


def test_free_bits_floor_applies_to_batch_mean_per_dimension():
    kl = torch.tensor([[0.1, 2.0, 0.0], [0.3, 4.0, 0.2]], requires_grad=True)  # means 0.2, 3.0, 0.1
    got = vc.free_bits_kl(kl, 0.5)
    assert got.shape == (2,)
    # batch mean = sum_j max(0.5, mean_j) = 0.5 + 3.0 + 0.5
    assert got.mean().item() == pytest.approx(4.0)
    got.sum().backward()
    torch.testing.assert_close(kl.grad, torch.tensor([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]]))
    torch.testing.assert_close(vc.free_bits_kl(kl, 0.0), kl.sum(-1))
    with pytest.raises(ValueError, match="free_bits must be a finite number >= 0"):
        vc.free_bits_kl(kl, -1.0)
    one = torch.tensor([0.05, 0.3, 1.0])  # one example, (Z,): its own KL is the batch mean
    assert vc.free_bits_kl(one, 0.1).item() == pytest.approx(0.1 + 0.3 + 1.0)
    with pytest.raises(ValueError, match="kl_per_dim must have at least one dimension"):
        vc.free_bits_kl(torch.tensor(0.2), 0.1)


def test_free_bits_elbo_of_one_example_is_that_of_a_batch_of_one():
    model, x = vc.VAE(6, 3, hidden=(8,)), torch.rand(6)
    vc.set_seed(0)
    one = model.elbo(x, 1.0, 2.0)  # every dimension under the 2-nat floor: recon - 3 * 2
    vc.set_seed(0)
    batch = model.elbo(x[None], 1.0, 2.0)
    assert one.shape == () and batch.shape == (1,)
    torch.testing.assert_close(one, batch[0])
    vc.set_seed(0)
    _, recon, _ = model.elbo(x, return_terms=True)
    assert (vc.gaussian_kl_per_dim(*model.encode(x)) < 2.0).all()  # a fresh encoder: under the floor
    torch.testing.assert_close(one, recon - 6.0)


@pytest.mark.parametrize("bad", [math.inf, -1.0, math.nan, True])
def test_free_bits_kl_rejects_a_floor_that_is_not_a_finite_number(bad):
    with pytest.raises(ValueError, match="free_bits must be a finite number >= 0"):
        vc.free_bits_kl(torch.ones(3, 2), bad)
