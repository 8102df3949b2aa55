"""VAE and LinearGaussianVAE: shapes, the ELBO gap identity, IWAE against the exact log-likelihood."""

import math

import pytest
import torch
from torch.distributions import MultivariateNormal, Normal, kl_divergence

import vaecourse as vc


@pytest.fixture
def lg():
    """A small exact model (D=6, Z=2) with a deliberately imperfect encoder, and data from it."""
    vc.set_seed(0)
    model = vc.LinearGaussianVAE(6, 2, obs_var=0.5).double().set_optimal_encoder()
    with torch.no_grad():  # perturb the best diagonal encoder: a visible gap, a usable proposal
        model.enc.weight.add_(0.1 * torch.randn_like(model.enc.weight))
        model.enc_logvar.add_(0.5)
    _, x = model.ancestral_sample(64)
    return model, x


def test_log_marginal_matches_numerical_integration():
    vc.set_seed(1)
    model = vc.LinearGaussianVAE(3, 1, obs_var=0.7).double()
    _, x = model.ancestral_sample(4)
    z = torch.linspace(-12, 12, 20001, dtype=torch.float64).reshape(-1, 1, 1)  # (G, 1, Z)
    log_joint = model.log_px_z(x, z) + Normal(0.0, 1.0).log_prob(z).sum(-1)  # (G, B)
    dz = (z[1] - z[0]).item()
    log_px = torch.logsumexp(log_joint, 0) + math.log(dz)
    torch.testing.assert_close(model.log_marginal(x), log_px, rtol=0, atol=1e-6)
    # the posterior mean and variance agree with the grid posterior too
    post = torch.softmax(log_joint, 0)  # (G, B)
    grid_mean = (post * z[:, :, 0]).sum(0)
    grid_var = (post * z[:, :, 0] ** 2).sum(0) - grid_mean**2
    mean, cov = model.posterior(x)
    torch.testing.assert_close(mean[:, 0], grid_mean, rtol=0, atol=1e-6)
    torch.testing.assert_close(cov[0, 0].expand(4), grid_var, rtol=0, atol=1e-6)


def test_elbo_gap_is_exactly_kl_to_posterior(lg):
    model, x = lg
    gap = model.log_marginal(x) - model.exact_elbo(x)
    kl = model.kl_to_posterior(x)
    torch.testing.assert_close(gap, kl, rtol=0, atol=1e-7)
    assert torch.all(kl > 0.01)  # the encoder is not the posterior: the gap is real
    # kl_to_posterior against torch.distributions
    mean, cov = model.posterior(x)
    mu, logvar = model.encode(x)
    q = MultivariateNormal(mu, covariance_matrix=torch.diag_embed(logvar.exp()))
    p = MultivariateNormal(mean, covariance_matrix=cov.expand(len(x), 2, 2))
    torch.testing.assert_close(kl, kl_divergence(q, p), rtol=1e-8, atol=1e-9)


def test_monte_carlo_elbo_is_unbiased_for_exact_elbo(lg):
    model, x = lg
    vc.set_seed(2)
    with torch.no_grad():
        draws = torch.stack([model.elbo(x) for _ in range(4000)])  # (S, B)
    stderr = draws.std(0) / math.sqrt(draws.shape[0])
    z = (draws.mean(0) - model.exact_elbo(x).detach()) / stderr
    assert z.abs().max() < 4.5, z  # 64 examples: |z| > 4.5 has probability < 1e-3 if unbiased
    assert abs(z.mean()) < 4.5 / 8


def test_iwae_k1_equals_single_sample_elbo_on_the_same_sample(lg):
    model, x = lg
    with torch.no_grad():
        mu, logvar = model.encode(x)
        torch.manual_seed(3)
        bound = model.iwae_bound(x, 1)
        torch.manual_seed(3)
        z = vc.reparameterize(mu, logvar, k=1)[0]  # the same draw
        single = model.log_px_z(x, z) + vc.log_standard_normal(z) - vc.log_normal(z, mu, logvar)
    torch.testing.assert_close(bound, single)
    assert vc.iwae_bound(single[None]).equal(single)


def test_iwae_increases_with_k_and_approaches_log_marginal(lg):
    model, x = lg
    exact = model.log_marginal(x).detach()
    vc.set_seed(4)
    with torch.no_grad():
        means = [torch.stack([model.iwae_bound(x, k) for _ in range(40)]).mean() for k in (1, 5, 50, 500)]
        ll = model.log_likelihood(x, k=5000, chunk=700)
    gaps = [exact.mean() - m for m in means]
    assert all(a > b for a, b in zip(gaps, gaps[1:])), gaps  # tighter with K on average
    assert gaps[0] > 0.05  # the ELBO is not already tight: this test can fail
    assert gaps[-1] > -0.01  # a lower bound on average
    # K = 5000 lands within 0.05 nats of the truth on average (single points can be worse: the
    # perturbed proposal has heavy weights for a few x)
    assert abs((ll - exact).mean()) < 0.05 and (ll - exact).abs().median() < 0.05


def test_log_likelihood_does_not_depend_on_chunk_size(lg):
    model, x = lg
    model.set_optimal_encoder()  # a good proposal: the estimate's Monte Carlo error is small
    vc.set_seed(5)
    a = model.log_likelihood(x, k=3000, chunk=3000)
    b = model.log_likelihood(x, k=3000, chunk=7, batch_size=5)
    torch.testing.assert_close(a, b, rtol=0, atol=0.03)
    assert a.shape == (64,)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_log_likelihood_in_chunks_agrees_with_the_exact_value_to_monte_carlo_error(lg, device):
    """Chunks of 1, 7 and all K samples are the same estimator: each estimate is within Monte Carlo
    error of the exact log p(x) (and so of each other), and no more than ``chunk`` samples are decoded at once."""
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    model, x = lg
    model.set_optimal_encoder()
    with torch.no_grad():
        model.enc_logvar += 0.5  # a proposal wider than the best one: a visible gap for K = 1
    model, x = model.to(device), x[:39].to(device)
    exact = model.log_marginal(x)
    decoded = []  # samples per log_px_z call
    original = model.log_px_z
    model.log_px_z = lambda xb, z, y=None: decoded.append(z.shape[0]) or original(xb, z, y)
    vc.set_seed(5)
    single = model.log_weights(x, 2000)  # (K, B): the spread of one log-weight, for the tolerance
    w = torch.exp(single - single.max(0).values)
    rel_sd = (w.std(0) / w.mean(0)).max().item()  # of one weight, relative to the mean weight
    k = 300
    tol = 6 * rel_sd / math.sqrt(k) + 0.01  # log of a mean of k weights: sd ~ rel_sd / sqrt(k)
    for chunk in (1, 7, k):
        decoded.clear()
        vc.set_seed(chunk)
        est = model.log_likelihood(x, k=k, chunk=chunk, batch_size=5)
        assert max(decoded) == chunk and sum(decoded) == k * 8  # 8 batches of at most 5 examples
        assert (est - exact).abs().max().item() < tol
        assert (est - exact).mean().item() < 0.02  # on average an estimate of log p(x), slightly low
    assert (model.elbo(x, k=1) - exact).mean().item() < -0.05  # the ELBO is visibly looser


def test_vae_shapes_and_bounds():
    vc.set_seed(0)
    model = vc.VAE(64, 3, hidden=(32, 16))
    x = torch.rand(10, 64)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (10, 3)
    assert model.decode(torch.zeros(7, 10, 3)).shape == (7, 10, 64)
    assert model.elbo(x).shape == model.iwae_bound(x, 4).shape == (10,)
    assert model.log_weights(x, 6).shape == (6, 10)
    assert model.sample(5).shape == (5, 64) and model.sample(5).min() >= 0
    z, xs = model.ancestral_sample(4)
    assert z.shape == (4, 3) and set(xs.unique().tolist()) <= {0.0, 1.0}
    assert model.reconstruct(x).shape == (10, 64)
    with torch.no_grad():
        elbo = torch.stack([model.elbo(x) for _ in range(200)]).mean(0)
        iw = torch.stack([model.iwae_bound(x, 50) for _ in range(20)]).mean(0)
        ll = model.log_likelihood(x, k=2000, chunk=500)
    assert torch.all(iw > elbo) and torch.all((ll - iw).abs() < 1.0)


def test_beta_and_free_bits_change_only_the_kl_weighting():
    vc.set_seed(0)
    model = vc.VAE(16, 4, hidden=(8,))
    x = torch.rand(5, 16)
    torch.manual_seed(0)
    e1 = model.elbo(x)
    torch.manual_seed(0)
    e0 = model.elbo(x, beta=0.0)
    mu, logvar = model.encode(x)
    torch.testing.assert_close(e0 - e1, vc.gaussian_kl(mu, logvar))
    torch.manual_seed(0)
    big_floor = model.elbo(x, free_bits=100.0)  # every dimension under the floor: KL = 4 * 100
    torch.testing.assert_close(e0 - big_floor, torch.full((5,), 400.0))


def test_gaussian_decoder_and_conditional_vae():
    vc.set_seed(0)
    g = vc.VAE(8, 2, hidden=(16,), likelihood="gaussian", obs_logvar=math.log(0.1))
    x = torch.randn(4, 8)
    assert g.elbo(x).shape == (4,) and not g.obs_logvar.requires_grad
    learned = vc.VAE(8, 2, likelihood="gaussian")
    assert learned.obs_logvar.requires_grad
    c = vc.VAE(16, 2, hidden=(8,), cond_dim=3)
    y = torch.eye(3)[[0, 2]]
    xb = torch.rand(2, 16)
    assert c.elbo(xb, y=y).shape == (2,) and c.iwae_bound(xb, 5, y=y).shape == (2,)
    assert c.sample(2, y=y).shape == (2, 16)
    with pytest.raises(ValueError, match="conditional model: pass y"):
        c.elbo(xb)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"x_dim": 0, "z_dim": 2}, "x_dim must be an integer >= 1"),
        ({"x_dim": 4, "z_dim": 2.5}, "z_dim must be an integer"),
        ({"x_dim": 4, "z_dim": 2, "likelihood": "poisson"}, "likelihood must be"),
        ({"x_dim": 4, "z_dim": 2, "activation": "swish"}, "activation must be one of"),
    ],
)
def test_vae_constructor_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        vc.VAE(**kwargs)


def test_model_input_errors():
    model = vc.VAE(8, 2, hidden=(4,))
    with pytest.raises(ValueError, match=r"x must have shape \(B, 8\)"):
        model.elbo(torch.rand(3, 7))
    with pytest.raises(ValueError, match="floating dtype"):
        model.elbo(torch.ones(3, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        model.iwae_bound(torch.rand(3, 8), 0)
    with pytest.raises(ValueError, match="chunk must be an integer >= 1"):
        model.log_likelihood(torch.rand(3, 8), k=10, chunk=0)
    with pytest.raises(ValueError, match="obs_var must be a positive"):
        vc.LinearGaussianVAE(3, 1, obs_var=-1.0)
    with pytest.raises(ValueError, match="obs_var must be a positive"):
        vc.LinearGaussianVAE(3, 1, obs_var=float("nan"))
    with pytest.raises(ValueError, match=r"W must have shape \(3, 1\)"):
        vc.LinearGaussianVAE(3, 1, W=torch.zeros(3, 2))
    for z, got in ((torch.rand(5, 3), r"\(5, 3\)"), (torch.tensor(1.0), r"\(\)"), ([0.0, 1.0], "list")):
        for call in (model.decode, model.decode_mean, model.sample_x_given_z):  # was: mat1 and mat2 shapes ...
            with pytest.raises(ValueError, match=r"z must be a tensor of shape \(\.\.\., 2\), got " + got):
                call(z)
    assert model.decode(torch.zeros(4, 3, 2)).shape == (4, 3, 8)
    linear = vc.LinearGaussianVAE(8, 2)
    for m in (model, linear):  # encode: was torch's "mat1 and mat2 shapes cannot be multiplied"
        for x, got in ((torch.rand(5, 7), r"\(5, 7\)"), (torch.tensor(1.0), r"\(\)"), ([0.0] * 8, "list")):
            with pytest.raises(ValueError, match=r"x must be a tensor of shape \(\.\.\., 8\), got " + got):
                m.encode(x)
        with pytest.raises(ValueError, match=r"z must be a tensor of shape \(\.\.\., 2\), got \(5, 3\)"):
            m.decode(torch.rand(5, 3))
        assert m.encode(torch.rand(4, 8))[0].shape == (4, 2)


@pytest.mark.parametrize(
    "call",
    [
        lambda m, x: m.elbo(x),
        lambda m, x: m.iwae_bound(x, 5),
        lambda m, x: m.log_likelihood(x, k=10),
        lambda m, x: m.reconstruct(x),
        lambda m, x: vc.latent_activity(m, x),
    ],
)
def test_nan_and_out_of_range_data_are_named_not_propagated(call):
    model = vc.VAE(8, 2, hidden=(4,))
    x = torch.rand(3, 8)
    x[1, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite"):
        call(model, x)
    x[1, 2] = float("inf")
    with pytest.raises(ValueError, match="NaN or infinite"):
        call(model, x)
    x[1, 2] = 1.5  # a Bernoulli decoder models values in [0, 1]; a Gaussian one takes any real value
    with pytest.raises(ValueError, match=r"\[0, 1\] for a Bernoulli decoder"):
        call(model, x)
    assert torch.isfinite(call(vc.VAE(8, 2, hidden=(4,), likelihood="gaussian"), x)).all()
    assert torch.isfinite(call(vc.LinearGaussianVAE(8, 2), x * 3 - 5)).all()


def test_log_likelihood_of_an_empty_batch_and_of_one_example():
    vc.set_seed(0)
    model = vc.VAE(12, 3, hidden=(8,))
    x = torch.rand(4, 12)
    empty = model.log_likelihood(x[:0], k=10)
    assert empty.shape == (0,) and empty.dtype == x.dtype
    vc.set_seed(1)
    single = model.log_likelihood(x[2], k=50, chunk=7)
    vc.set_seed(1)
    batch_of_one = model.log_likelihood(x[2:3], k=50, chunk=7)
    assert single.shape == () and torch.isfinite(single)
    torch.testing.assert_close(single, batch_of_one[0], rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match=r"shape \(B, 12\) or \(12,\)"):
        model.log_likelihood(torch.rand(2, 3, 12), k=5)


def test_estimators_name_a_dtype_mismatch_and_labels_that_do_not_fit():
    vc.set_seed(0)
    model = vc.VAE(12, 3, hidden=(8,))
    x64 = torch.rand(4, 12, dtype=torch.float64)
    for call in (lambda: model.elbo(x64), lambda: model.iwae_bound(x64, 3), lambda: model.log_likelihood(x64, 3)):
        with pytest.raises(ValueError, match=r"x is torch.float64 but the model's parameters are torch.float32"):
            call()
    lg = vc.LinearGaussianVAE(12, 3)  # the exact model's closed forms too
    for call in (lambda: lg.exact_elbo(x64), lambda: lg.posterior(x64), lambda: lg.kl_to_posterior(x64)):
        with pytest.raises(ValueError, match=r"x is torch.float64 but the model's parameters are torch.float32"):
            call()
    assert model.double().elbo(x64).shape == (4,)  # the fix the message suggests works
    with pytest.raises(ValueError, match="not conditional"):
        model.elbo(x64, y=torch.ones(4, 2, dtype=torch.float64))
    cvae = vc.VAE(12, 3, hidden=(8,), cond_dim=5)
    x = torch.rand(4, 12)
    for bad in (torch.ones(3, 5), torch.ones(4, 6), [0, 1, 2, 3]):
        with pytest.raises(ValueError, match=r"y must be a tensor of shape \(4, 5\)"):
            cvae.iwae_bound(x, 2, y=bad)
    label = torch.eye(5)[1]  # one label for every example
    vc.set_seed(2)
    shared = cvae.log_likelihood(x, k=20, y=label, batch_size=3)
    vc.set_seed(2)
    spelled_out = cvae.log_likelihood(x, k=20, y=label.expand(4, 5), batch_size=3)
    torch.testing.assert_close(shared, spelled_out, rtol=0, atol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_estimators_name_a_device_mismatch():
    model = vc.VAE(12, 3, hidden=(8,)).cuda()
    with pytest.raises(ValueError, match=r"x is on cpu but the model is on cuda:0"):
        model.elbo(torch.rand(4, 12))


def _cvae():
    vc.set_seed(0)
    return vc.VAE(12, 3, hidden=(8,), cond_dim=4)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda c: c.elbo(torch.rand(4, 12), y=torch.tensor([0, 1, 2, 3])), "integer y must hold one-hot rows"),
        (lambda c: c.elbo(torch.rand(4, 12), y=torch.tensor([0, 1, 2, 3])[:, None]), "one_hot\\(labels, 4\\)"),
        (lambda c: c.elbo(torch.rand(4, 12), y=torch.full((4, 4), float("nan"))), "y contains NaN"),
        (lambda c: c.sample(3), r"conditional model: pass y \(one-hot labels of shape \(3, 4\)\)"),
        (lambda c: c.ancestral_sample(3), "conditional model: pass y"),
        (lambda c: c.encode(torch.rand(4, 12)), "conditional model: pass y"),
        (lambda c: c(torch.rand(4, 12)), "conditional model: pass y"),
        (lambda c: c.sample(3, y=torch.eye(4)), r"y must be a tensor of shape \(3, 4\)"),
        (lambda c: c.sample(3, y=[1.0, 0.0, 0.0, 0.0]), "got list"),
        (lambda c: c.sample(2, y=torch.eye(4)[:2].double()), None),  # float64 labels are fine
        (lambda c: vc.VAE(12, 3).sample(2, y=torch.zeros(2, 3)), "not conditional"),
        (lambda c: vc.VAE(12, 3).encode(torch.rand(2, 12), torch.zeros(2, 3)), "not conditional"),
    ],
)
def test_labels_are_checked_wherever_a_model_reads_them(call, message):
    if message is None:
        assert call(_cvae()).shape == (2, 12)
    else:
        with pytest.raises(ValueError, match=message):
            call(_cvae())
    assert _cvae().sample(3, y=torch.eye(4)[1]).shape == (3, 12)  # one label for all still works


@pytest.mark.parametrize(
    "x, message",
    [
        (torch.rand(4, 12).double(), "x is torch.float64 but the model's parameters are torch.float32"),
        (torch.ones(4, 12, dtype=torch.long), "floating dtype"),
        (torch.tensor(0.5), r"shape \(B, 12\)"),
        (torch.rand(4, 11), r"shape \(B, 12\), got \(4, 11\)"),
        ([[0.5] * 12], "must be a torch.Tensor, got list"),
        (torch.full((4, 12), float("nan")), "NaN"),
        (torch.full((4, 12), 2.0), r"\[0, 1\]"),
    ],
)
def test_calling_the_model_checks_x_like_the_estimators_do(x, message):
    model = vc.VAE(12, 3, hidden=(8,))
    with pytest.raises(ValueError, match=message):
        model(x)
    out, mu, logvar = model(torch.rand(4, 12))
    assert out.shape == (4, 12) and mu.shape == logvar.shape == (4, 3)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(beta=-1.0), "beta must be a finite number >= 0"),
        (dict(beta=float("nan")), "beta must be a finite number"),
        (dict(beta=None), "beta must be"),
        (dict(free_bits=True), "free_bits must be"),
        (dict(free_bits=-0.5), "free_bits must be"),
    ],
)
def test_elbo_checks_beta_and_free_bits_as_train_does(kwargs, message):
    with pytest.raises(ValueError, match=message):
        vc.VAE(12, 3, hidden=(8,)).elbo(torch.rand(5, 12), **kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(cond_dim=-1), "cond_dim must be an integer >= 0"),
        (dict(cond_dim=2.5), "cond_dim must be an integer"),
        (dict(cond_dim=True), "cond_dim must be an integer"),
        (dict(hidden="8"), "hidden must be layer sizes such as"),
        (dict(decoder_hidden=(8, 0)), "decoder_hidden must be an integer >= 1"),
        (dict(activation=torch.nn.ReLU()), "nn.Module class"),
        (dict(activation="swish"), "activation must be one of"),
        (dict(obs_logvar=-2.0), "use it with likelihood='gaussian'"),
        (dict(likelihood="gaussian", obs_logvar=float("nan")), "obs_logvar must be a finite number, got nan"),
        (dict(likelihood="gaussian", obs_logvar=torch.zeros(12)), "obs_logvar must be a finite number"),
    ],
)
def test_vae_constructor_names_a_bad_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        vc.VAE(12, 3, **kwargs)


def test_integer_and_bool_one_hot_labels_work_as_float_ones():
    c, x = _cvae(), torch.rand(6, 12)
    y = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 3, 1, 0]), 4)  # int64, as one_hot returns
    vc.set_seed(1)
    want = c.elbo(x, y=y.float())
    for labels in (y, y.bool()):
        vc.set_seed(1)
        torch.testing.assert_close(c.elbo(x, y=labels), want)
    assert c.sample(6, y=y).shape == (6, 12)


def test_vae_constructor_takes_what_it_took_before():
    """Factories for activations, any sequence of sizes, numpy and tensor numbers, cond_dim=None."""
    import functools

    import numpy as np

    leaky = vc.VAE(12, 3, hidden=np.array([8]), activation=functools.partial(torch.nn.LeakyReLU, 0.2))
    assert isinstance(leaky.encoder[1], torch.nn.LeakyReLU) and leaky.encoder[1].negative_slope == 0.2
    assert vc.VAE(12, 3, hidden=range(8, 9), activation=lambda: torch.nn.ELU()).encoder[0].out_features == 8
    assert vc.VAE(12, 3, hidden=np.int64(8), cond_dim=torch.tensor(2)).cond_dim == 2
    assert vc.VAE(12, 3, cond_dim=None).cond_dim == 0
    gauss = vc.VAE(12, 3, likelihood="gaussian", obs_logvar=torch.tensor(-1.0))
    assert float(gauss.obs_logvar) == -1.0
    model, x = vc.VAE(12, 3, hidden=(8,)), torch.rand(5, 12)
    vc.set_seed(2)
    want = model.elbo(x, beta=0.5, free_bits=0.1)
    vc.set_seed(2)
    torch.testing.assert_close(model.elbo(x, beta=torch.tensor(0.5), free_bits=np.float32(0.1)), want)


def test_vae_takes_one_int_as_one_hidden_layer():
    model = vc.VAE(12, 3, hidden=8, decoder_hidden=5, activation=torch.nn.Tanh)
    assert [m.out_features for m in model.encoder if isinstance(m, torch.nn.Linear)] == [8, 6]
    assert [m.out_features for m in model.decoder if isinstance(m, torch.nn.Linear)] == [5, 12]
    assert isinstance(model.encoder[1], torch.nn.Tanh)


def test_exact_model_checks_its_parameters_and_takes_an_empty_batch():
    for kwargs in (dict(obs_var=True), dict(obs_var=float("inf")), dict(W=torch.full((5, 2), float("nan")))):
        with pytest.raises(ValueError):
            vc.LinearGaussianVAE(5, 2, **kwargs)
    model = vc.LinearGaussianVAE(5, 2)
    assert model.log_marginal(torch.randn(0, 5)).shape == (0,)
    assert model.log_marginal(torch.randn(5)).shape == ()
