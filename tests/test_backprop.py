"""The written-out backward pass of vaecourse/backprop.py: same gradients and logged sums as autograd,
used by vc.train only where it applies, and training with it matches training with autograd."""

import importlib
import math

import pytest
import torch

import vaecourse as vc
from vaecourse.backprop import FusedAdam, ManualELBO
from vaecourse.losses import _free_bits_above, _free_bits_kl, _gaussian_kl_per_dim

train_mod = importlib.import_module("vaecourse.train")  # the module; vc.train is the function
_used_columns = train_mod._used_columns


def _autograd_reference(model, x, eps, beta, free_bits=0.0, y=None):
    """Gradients of -mean ELBO_beta and the batch sums (loss, recon, KL), by autograd on the same eps."""
    mu, logvar = model.encode(x, y)
    z = mu + torch.exp(0.5 * logvar) * eps
    recon = model.log_px_z(x, z, y)  # (B,)
    kl_d = _gaussian_kl_per_dim(mu, logvar)  # (B, Z)
    kl = kl_d.sum(-1)  # (B,)
    obj = recon - beta * (_free_bits_kl(kl_d, free_bits) if free_bits > 0 else kl)
    grads = torch.autograd.grad(-obj.mean(), list(model.parameters()))
    sums = torch.stack((-obj.sum(), recon.sum(), kl.sum())).detach()
    return grads, sums


def _assert_step_matches_autograd(model, x, beta, free_bits=0.0, y=None):
    """One written-out step on a float64 model: gradients and logged sums equal autograd's."""
    eps = torch.randn(x.shape[0], model.z_dim, dtype=torch.float64)
    grads, sums = _autograd_reference(model, x, eps, beta, free_bits, y)
    manual = ManualELBO.for_model(model, free_bits=free_bits)
    assert manual is not None
    terms = manual.step(x, beta, eps=eps, y=y)
    for (name, p), g in zip(model.named_parameters(), grads):
        torch.testing.assert_close(p.grad, g, rtol=1e-10, atol=1e-12, msg=f"gradient of {name}")
    torch.testing.assert_close(terms, sums, rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize(
    "hidden, decoder_hidden, activation, beta",
    [
        ((400,), None, "relu", 1.0),
        ((64, 32), None, "tanh", 0.3),
        ((48,), (16, 24), "relu", 2.0),
        ((), None, "relu", 1.0),  # linear encoder and decoder
        ((32,), (), "tanh", 0.0),  # beta = 0: the KL carries no gradient
    ],
)
def test_gradients_and_sums_match_autograd(hidden, decoder_hidden, activation, beta):
    torch.manual_seed(0)
    model = vc.VAE(30, 5, hidden=hidden, decoder_hidden=decoder_hidden, activation=activation).double()
    x = torch.rand(17, 30, dtype=torch.float64)
    x[:5] = torch.bernoulli(x[:5])  # binary and grey-level rows
    _assert_step_matches_autograd(model, x, beta)


@pytest.mark.parametrize(
    "hidden, decoder_hidden, activation, beta, obs_var",
    [
        ((200,), None, "relu", 1.0, 1.0),
        ((32,), (), "tanh", 0.5, 0.1),  # linear decoder
        ((16, 8), None, "relu", 4.0, 5.0),
    ],
)
def test_gaussian_decoder_gradients_and_sums_match_autograd(hidden, decoder_hidden, activation, beta, obs_var):
    torch.manual_seed(2)
    model = vc.VAE(
        30,
        5,
        hidden=hidden,
        decoder_hidden=decoder_hidden,
        activation=activation,
        likelihood="gaussian",
        obs_logvar=math.log(obs_var),
    ).double()
    x = torch.randn(17, 30, dtype=torch.float64) * 2  # any real values
    _assert_step_matches_autograd(model, x, beta)


@pytest.mark.parametrize(
    "model_kw, beta",
    [
        ({}, 1.0),
        ({"hidden": (24, 16), "activation": "tanh"}, 0.5),
        ({"likelihood": "gaussian", "obs_logvar": math.log(0.5)}, 2.0),
    ],
)
def test_free_bits_gradients_and_sums_match_autograd(model_kw, beta):
    """Free bits: dimensions whose batch-mean KL is under the floor lose their KL gradient."""
    torch.manual_seed(4)
    model = vc.VAE(30, 6, **{"hidden": (32,), **model_kw}).double()
    with torch.no_grad():  # spread the posteriors so that the dimensions' KLs differ
        model.encoder[-1].bias.mul_(0).add_(torch.linspace(-1.5, 1.5, 12, dtype=torch.float64))
    x = torch.rand(19, 30, dtype=torch.float64)
    kl_d = _gaussian_kl_per_dim(*model.encode(x)).detach()  # (B, Z)
    free_bits = float(kl_d.mean(0).median())  # a floor with dimensions on both sides of it
    above = _free_bits_above(kl_d, free_bits)
    assert 0 < int(above.sum()) < model.z_dim, kl_d.mean(0)
    _assert_step_matches_autograd(model, x, beta, free_bits)


def _labels(n, c, dtype=torch.float64, seed=0):
    """(n, c) one-hot labels with every class present."""
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.one_hot(torch.randperm(n, generator=g) % c, c).to(dtype)


@pytest.mark.parametrize(
    "model_kw, beta, free_bits",
    [
        ({}, 1.0, False),
        ({"hidden": (24, 16), "activation": "tanh"}, 0.5, False),
        ({"decoder_hidden": ()}, 1.0, False),  # a linear decoder reads y directly
        ({"likelihood": "gaussian", "obs_logvar": math.log(0.5)}, 2.0, False),
        ({}, 1.0, True),
    ],
)
def test_conditional_gradients_and_sums_match_autograd(model_kw, beta, free_bits):
    """A conditional VAE: y joins x at the encoder and z at the decoder; the labels get no gradient."""
    torch.manual_seed(5)
    model = vc.VAE(30, 4, **{"hidden": (32,), "cond_dim": 3, **model_kw}).double()
    x, y = torch.rand(18, 30, dtype=torch.float64), _labels(18, 3)
    floor = 0.0
    if free_bits:  # a floor with dimensions on both sides of it
        kl_d = _gaussian_kl_per_dim(*model.encode(x, y)).detach()
        floor = float(kl_d.mean(0).median())
        assert 0 < int(_free_bits_above(kl_d, floor).sum()) < model.z_dim
    _assert_step_matches_autograd(model, x, beta, floor, y=y)
    manual = ManualELBO.for_model(model)
    with pytest.raises(ValueError, match="conditional"):
        manual.step(x, beta)  # labels missing
    with pytest.raises(ValueError, match="conditional"):
        ManualELBO.for_model(vc.VAE(30, 4).double()).step(x, beta, y=y)  # labels for a plain VAE


def test_float32_gradients_agree_with_autograd():
    torch.manual_seed(1)
    model = vc.VAE(784, 20, hidden=(400,))
    x = torch.bernoulli(torch.full((128, 784), 0.2))
    eps = torch.randn(128, 20)
    grads, sums = _autograd_reference(model, x, eps, 1.0)
    ManualELBO.for_model(model).step(x, 1.0, eps=eps)
    for p, g in zip(model.parameters(), grads):
        torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-6)


def test_extreme_logits_keep_the_logged_likelihood_finite():
    model = vc.VAE(6, 2, hidden=())
    with torch.no_grad():
        model.decoder[0].bias.copy_(torch.tensor([-200.0, 200.0, -30.0, 30.0, 0.0, 90.0]))
    x = torch.tensor([[1.0, 0.0, 1.0, 0.0, 0.5, 1.0]])
    eps = torch.zeros(1, 2)
    _, sums = _autograd_reference(model, x, eps, 1.0)
    terms = ManualELBO.for_model(model).step(x, 1.0, eps=eps)
    assert torch.isfinite(terms).all()
    torch.testing.assert_close(terms, sums)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


class _MyVAE(vc.VAE):
    pass


@pytest.mark.parametrize(
    "make, kwargs",
    [
        (lambda: vc.VAE(8, 2, hidden=(4,)), {"objective": "iwae", "k": 5}),
        (lambda: vc.VAE(8, 2, hidden=(4,)), {"k": 3}),
        (lambda: vc.VAE(8, 2, hidden=(4,), likelihood="gaussian"), {}),  # a learned variance
        (lambda: vc.VAE(8, 2, hidden=(4,), activation="elu"), {}),
        (lambda: _MyVAE(8, 2, hidden=(4,)), {}),  # a subclass may change encode or log_px_z
        (lambda: vc.LinearGaussianVAE(8, 2), {}),
    ],
)
def test_other_cases_fall_back_to_autograd(make, kwargs):
    assert ManualELBO.for_model(make(), **kwargs) is None


def test_frozen_parameters_fall_back_to_autograd():
    model = vc.VAE(8, 2, hidden=(4,))
    model.encoder.requires_grad_(False)
    assert ManualELBO.for_model(model) is None
    before = [p.detach().clone() for p in model.encoder.parameters()]
    vc.train(model, torch.rand(32, 8), epochs=2, batch_size=8, progress=False)  # on a GPU if there is one
    assert all(torch.equal(a, p.cpu()) for a, p in zip(before, model.encoder.parameters()))


@pytest.mark.parametrize(
    "options, model_kw",
    [
        ({}, {}),
        ({"beta": 0.5, "kl_schedule": vc.LinearSchedule(20)}, {}),
        ({}, {"likelihood": "gaussian", "obs_logvar": 0.0}),
        ({"beta": 2.0}, {"likelihood": "gaussian", "obs_logvar": math.log(0.1)}),
        ({"free_bits": 0.25}, {}),
        ({"free_bits": 0.5, "beta": 2.0}, {"likelihood": "gaussian", "obs_logvar": 0.0}),
        ({}, {"cond_dim": 10}),
        ({"beta": 0.5, "dynamic_binarization": True}, {"cond_dim": 10}),
    ],
)
def test_training_matches_the_autograd_path(monkeypatch, options, model_kw):
    """Same seed, same draws: the written-out backward and autograd train to the same losses."""
    digits = vc.load_digits()
    x = digits.x_train[:512]
    data = (x, torch.nn.functional.one_hot(digits.y_train[:512], 10).float()) if model_kw.get("cond_dim") else x
    assert ManualELBO.for_model(vc.VAE(64, 4, hidden=(64,), **model_kw)) is not None

    def run():
        vc.set_seed(3)
        model = vc.VAE(64, 4, hidden=(64,), **model_kw)
        hist = vc.train(model, data, epochs=3, batch_size=64, progress=False, device="cpu", **options)
        return hist, model

    fast, fast_model = run()
    with monkeypatch.context() as m:
        m.setattr(ManualELBO, "for_model", classmethod(lambda cls, *a, **k: None))
        slow, slow_model = run()
    for key in ("loss", "recon", "kl", "beta"):
        assert fast[key] == pytest.approx(slow[key], rel=1e-4), key
    for a, b in zip(fast_model.parameters(), slow_model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)


def _twin_adams(steps, grad_fn, lr=1e-3, seed=0):
    """torch.optim.Adam(fused=True) and FusedAdam on two copies of one model, fed the same gradients
    ``grad_fn(t, p)`` for ``steps`` steps; returns (reference model, its optimizer, ours, ours')."""
    torch.manual_seed(seed)
    ref_model, our_model = vc.VAE(12, 3, hidden=(8,)), vc.VAE(12, 3, hidden=(8,))
    our_model.load_state_dict(ref_model.state_dict())
    for p in our_model.parameters():
        p.grad = torch.zeros_like(p)
    ref, ours = torch.optim.Adam(ref_model.parameters(), lr=lr, fused=True), FusedAdam(our_model.parameters(), lr=lr)
    for t in range(steps):
        for pa, pb in zip(ref_model.parameters(), our_model.parameters()):
            pa.grad = grad_fn(t, pa)
            pb.grad.copy_(pa.grad)
        ref.step()
        ours.step()
    return ref_model, ref, our_model, ours


def test_fused_adam_is_torch_adam():
    """FusedAdam takes exactly the steps of torch.optim.Adam(fused=True) on the same gradients."""
    ref_model, _, our_model, _ = _twin_adams(5, lambda t, p: torch.randn_like(p), lr=3e-3)
    for pa, pb in zip(ref_model.parameters(), our_model.parameters()):
        assert torch.equal(pa, pb)
    torch.manual_seed(0)  # the initial weights again
    start = vc.VAE(12, 3, hidden=(8,))
    assert all((p - p0).abs().max() > 1e-3 for p, p0 in zip(our_model.parameters(), start.parameters()))  # moved
    with pytest.raises(ValueError, match="grad"):
        FusedAdam(vc.VAE(4, 2).parameters())


def _subnormal_count(tensors):
    return sum(int(((t != 0) & (t.abs() < torch.finfo(t.dtype).tiny)).sum()) for t in tensors)


def _adam_after_a_long_silence(steps=900):
    """FusedAdam on a gradient that is nonzero once and then zero for the given number of steps,
    as for the weights of a pixel that is blank in all but one image."""
    torch.manual_seed(0)
    model = vc.VAE(6, 2, hidden=(4,))
    params = list(model.parameters())
    for p in params:
        p.grad = torch.randn_like(p) * 1e-2
    opt = FusedAdam(params)
    opt.step()
    for p in params:
        p.grad.zero_()
    for _ in range(steps):
        opt.step()
    return opt


def test_fused_adam_keeps_its_moments_out_of_the_subnormal_range(monkeypatch):
    """Without the flush, 0.9^900 decay leaves subnormal moments (slow on x86); with it, none."""
    assert _subnormal_count(_adam_after_a_long_silence().exp_avgs) == 0
    monkeypatch.setattr("vaecourse.backprop.FLUSH_EVERY", 10**9)  # the flush switched off
    assert _subnormal_count(_adam_after_a_long_silence().exp_avgs) > 0


def test_flushing_tiny_moments_leaves_the_steps_unchanged():
    """Half the entries fall silent after 5 steps; over 800 steps their first moments decay below
    1e-30 and FusedAdam zeroes them, yet the parameters stay bit-for-bit torch.optim.Adam's."""
    torch.manual_seed(1)
    silent = {}

    def grad(t, p):
        mask = silent.setdefault(id(p), torch.rand_like(p) < 0.5)
        return torch.randn_like(p) * (1.0 if t < 5 else mask)

    ref_model, ref, our_model, ours = _twin_adams(800, grad)
    for pa, pb in zip(ref_model.parameters(), our_model.parameters()):
        assert torch.equal(pa, pb)
    ref_m = [ref.state[p]["exp_avg"] for p in ref_model.parameters()]
    tiny = sum(int(((m != 0) & (m.abs() < 1e-30)).sum()) for m in ref_m)
    flushed = sum(int(((m != 0) & (o == 0)).sum()) for m, o in zip(ref_m, ours.exp_avgs))
    assert tiny > 0 and flushed >= tiny  # the flush did happen


def test_fused_adam_rejects_mixed_parameters():
    with pytest.raises(ValueError, match="no parameters"):
        FusedAdam([])
    p, q = torch.zeros(3, requires_grad=True), torch.zeros(3, dtype=torch.float64, requires_grad=True)
    p.grad, q.grad = torch.zeros_like(p), torch.zeros_like(q)
    with pytest.raises(ValueError, match="one dtype"):
        FusedAdam([p, q])


def test_autograd_path_flushes_its_own_adam_only(monkeypatch):
    """vc.train flushes the torch.optim.Adam it creates every FLUSH_EVERY steps, never a user's."""
    calls = []
    real = train_mod._flush_tiny_moments_
    monkeypatch.setattr(train_mod, "_flush_tiny_moments_", lambda m, v: calls.append((len(m), len(v))) or real(m, v))
    x = vc.load_digits().x_train[:640]
    model = vc.VAE(64, 2, hidden=(16,))
    vc.train(model, x, epochs=14, batch_size=64, objective="iwae", k=2, progress=False, device="cpu")
    n_params = len(list(model.parameters()))
    assert calls == [(n_params, n_params)] * (140 // train_mod.FLUSH_EVERY)
    calls.clear()
    opt = torch.optim.Adam(model.parameters())
    vc.train(model, x, epochs=14, batch_size=64, objective="iwae", k=2, progress=False, optimizer=opt, device="cpu")
    assert calls == []


# --- input columns that are zero in every example (MNIST's blank border) ---------------------------


def _data_with_blank_columns(n=24, d=64, blank=24, dtype=torch.float64, seed=0):
    """(n, d) data in [0, 1] whose columns in ``dead`` are zero in every row; returns (x, dead)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, d, generator=g, dtype=dtype)
    x[x < 0.3] = 0.0  # scattered zeros in the used columns too
    dead = torch.randperm(d, generator=g)[:blank].sort().values
    x[:, dead] = 0.0
    return x, dead


def test_used_columns_pads_to_aligned_rows_and_declines_when_nothing_is_gained():
    x, dead = _data_with_blank_columns()  # 40 used columns of 64
    used = _used_columns(x)
    assert used.numel() == 48 and torch.equal(used, used.sort().values)  # 40 padded to 3 x 16
    assert set(range(64)) - set(dead.tolist()) <= set(used.tolist())  # every used column is kept
    assert x[:, used].count_nonzero() == x.count_nonzero()
    assert _used_columns(torch.rand(8, 64)) is None  # nothing to drop
    x2 = torch.rand(8, 60)
    x2[:, :10] = 0
    assert _used_columns(x2) is None  # 50 used columns pad to 64 >= 60: nothing to drop
    assert _used_columns(torch.zeros(8, 64)) is None  # no column used: nothing to train on
    assert _used_columns(x, multiple=1).numel() == 40


@pytest.mark.parametrize("beta", [1.0, 0.25])
def test_restricted_inputs_give_autograds_gradients(beta):
    """With ``use_inputs``, the step trains a copy of the first layer's used columns; written back,
    its gradient is autograd's, whose blank columns are exactly zero."""
    torch.manual_seed(0)
    model = vc.VAE(64, 4, hidden=(32,)).double()
    x, dead = _data_with_blank_columns()
    eps = torch.randn(x.shape[0], 4, dtype=torch.float64)
    grads, sums = _autograd_reference(model, x, eps, beta)
    assert grads[0][:, dead].abs().max() == 0  # the premise: blank inputs get no gradient
    w_before = model.encoder[0].weight.detach().clone()
    manual = ManualELBO.for_model(model)
    used = _used_columns(x)
    manual.use_inputs(used)
    assert manual.params[0].shape == (32, used.numel())
    assert all(q is p for q, p in zip(manual.params[1:], list(model.parameters())[1:]))
    terms = manual.step(x, beta, eps=eps)
    torch.testing.assert_close(terms, sums, rtol=1e-10, atol=1e-9)
    torch.testing.assert_close(manual.params[0].grad, grads[0][:, used], rtol=1e-10, atol=1e-12)
    with torch.no_grad():
        manual.params[0].sub_(1.0)  # stands in for an optimizer step on the copy
    assert torch.equal(model.encoder[0].weight, w_before)  # the model is untouched until write_back
    manual.write_back()
    for (name, p), g in zip(model.named_parameters(), grads):
        torch.testing.assert_close(p.grad, g, rtol=1e-10, atol=1e-12, msg=f"gradient of {name}")
    w = model.encoder[0].weight
    assert torch.equal(w[:, used], w_before[:, used] - 1.0)
    unused = torch.ones(64, dtype=torch.bool)
    unused[used] = False
    assert torch.equal(w[:, unused], w_before[:, unused])
    with pytest.raises(RuntimeError, match="once"):
        manual.use_inputs(used)


def _train_mnist(monkeypatch=None, restrict=True, cond=False, **kwargs):
    mnist = vc.load_mnist()
    x = mnist.x_train[:512]
    vc.set_seed(5)
    model = vc.VAE(784, 8, hidden=(64,), cond_dim=10 if cond else 0)
    start = model.encoder[0].weight.detach().clone()
    if not restrict:
        monkeypatch.setattr(train_mod, "_used_columns", lambda x: None)
    data = (x, torch.nn.functional.one_hot(mnist.y_train[:512], 10).float()) if cond else x
    hist = vc.train(model, data, epochs=3, batch_size=64, progress=False, device="cpu", **kwargs)
    return x, start, model, hist


@pytest.mark.parametrize("cond", [False, True])
def test_training_on_used_columns_only_matches_training_on_all(monkeypatch, cond):
    """vc.train drops the inputs that are zero in every image: the same training (to rounding), and
    the weights of those inputs end exactly where they started, as plain Adam leaves them. A
    conditional model's label columns come after the pixels, and all of them are used."""
    x, start, fast, fast_hist = _train_mnist(cond=cond)
    _, _, full, full_hist = _train_mnist(monkeypatch, restrict=False, cond=cond)
    blank = ~x.ne(0).any(0)
    assert blank.sum() > 100  # MNIST's border
    if cond:
        blank = torch.cat((blank, torch.zeros(10, dtype=torch.bool)))
    for model in (fast, full):
        assert torch.equal(model.encoder[0].weight[:, blank], start[:, blank])
        assert (model.encoder[0].weight[:, ~blank] != start[:, ~blank]).float().mean() > 0.5  # trained
    for key in ("loss", "recon", "kl"):
        assert fast_hist[key] == pytest.approx(full_hist[key], rel=1e-4), key
    for a, b in zip(fast.parameters(), full.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)


def test_dynamic_binarization_with_used_columns():
    x, start, model, hist = _train_mnist(dynamic_binarization=True)
    blank = ~x.ne(0).any(0)
    assert torch.equal(model.encoder[0].weight[:, blank], start[:, blank])
    assert hist["loss"][-1] < hist["loss"][0]


def test_an_interrupted_training_still_writes_the_first_layer_back():
    """The first layer trains as a copy; a run stopped mid-epoch (Ctrl-C) must not lose its steps."""

    def stop_at_step_5(step):
        if step == 5:
            raise KeyboardInterrupt
        return 1.0

    x = vc.load_mnist().x_train[:512]
    vc.set_seed(5)
    model = vc.VAE(784, 8, hidden=(64,))
    start = model.encoder[0].weight.detach().clone()
    with pytest.raises(KeyboardInterrupt):
        vc.train(model, x, epochs=3, batch_size=64, kl_schedule=stop_at_step_5, progress=False, device="cpu")
    used = x.ne(0).any(0)
    assert (model.encoder[0].weight[:, used] - start[:, used]).abs().max() > 1e-4  # 5 steps kept
