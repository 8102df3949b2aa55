"""vc.train, KL schedules, active units: training works, bad input is refused, GPU runs when present."""

import math

import numpy as np
import pytest
import torch

import vaecourse as vc


@pytest.fixture(scope="module")
def digits():
    return vc.load_digits()


def test_five_epochs_on_digits_lower_the_loss(digits):
    vc.set_seed(0)
    model = vc.VAE(64, 8, hidden=(128,))
    with torch.no_grad():
        before = -model.elbo(digits.x_test).mean().item()
    hist = vc.train(model, digits.x_train, epochs=5, batch_size=64, progress=False, device="cpu")
    assert hist["epoch"] == [1, 2, 3, 4, 5]
    assert hist["loss"][-1] < hist["loss"][0] - 5
    for a, b, c in zip(hist["loss"], hist["recon"], hist["kl"]):
        assert a == pytest.approx(-(b - c), rel=1e-4)  # loss = -(recon - KL) with beta = 1
    with torch.no_grad():
        after = -model.elbo(digits.x_test).mean().item()
    assert after < before - 5  # it generalises, not only the running training loss
    assert not model.training


def test_iwae_objective_and_k_samples(digits):
    vc.set_seed(0)
    model = vc.VAE(64, 4, hidden=(32,))
    hist = vc.train(model, digits.x_train[:256], epochs=2, objective="iwae", k=5, progress=False)
    assert len(hist["loss"]) == 2 and all(math.isfinite(v) for v in hist["loss"])
    hist = vc.train(model, digits.x_train[:256], epochs=1, objective="elbo", k=3, progress=False)
    assert math.isfinite(hist["loss"][0])


def test_schedules_and_free_bits_are_applied(digits):
    vc.set_seed(0)
    model = vc.VAE(64, 4, hidden=(32,))
    n = 256
    steps_per_epoch = math.ceil(n / 64)
    hist = vc.train(
        model,
        digits.x_train[:n],
        epochs=3,
        batch_size=64,
        kl_schedule=vc.LinearSchedule(3 * steps_per_epoch),
        beta=0.5,
        progress=False,
    )
    # the weight at the last step of epoch e is 0.5 * (e * steps - 1) / (3 * steps)
    expected = [0.5 * (e * steps_per_epoch - 1) / (3 * steps_per_epoch) for e in (1, 2, 3)]
    assert hist["beta"] == pytest.approx(expected)
    # free bits: each batch pays at least 0.5 nats per dimension, 4 x 0.5 = 2 nats, and at least the plain KL
    vc.set_seed(0)
    fresh = vc.VAE(64, 4, hidden=(32,))  # an untrained encoder: KL well under 2 nats
    hist = vc.train(fresh, digits.x_train[:n], epochs=1, batch_size=64, free_bits=0.5, progress=False)
    loss, recon, kl = hist["loss"][0], hist["recon"][0], hist["kl"][0]
    assert kl < 1.5 and loss >= -recon + 2.0 - 1e-4


def test_schedules_values():
    lin = vc.LinearSchedule(10)
    assert [lin(s) for s in (0, 5, 10, 50)] == [0.0, 0.5, 1.0, 1.0]
    sig = vc.SigmoidSchedule(midpoint=100, width=10)
    assert sig(100) == pytest.approx(0.5) and sig(0) < 1e-4 and sig(200) > 1 - 1e-4
    cyc = vc.CyclicalSchedule(period=10, ramp=0.5)
    assert [cyc(s) for s in (0, 2, 5, 9, 10, 12)] == pytest.approx([0, 0.4, 1, 1, 0, 0.4])
    with pytest.raises(ValueError, match="warmup"):
        vc.LinearSchedule(0)
    with pytest.raises(ValueError, match="ramp"):
        vc.CyclicalSchedule(10, ramp=0)
    for schedule in (lin, sig, cyc):  # a step is a count: a negative one would give a negative weight
        for bad in (-1, float("nan"), "3", None):
            with pytest.raises(ValueError, match="step must be a finite number >= 0"):
                schedule(bad)
    assert lin(torch.tensor(5)) == 0.5 and cyc(np.int64(12)) == pytest.approx(0.4)


@pytest.mark.parametrize(
    "data,kwargs,match",
    [
        (torch.full((10, 64), float("nan")), {}, "data contains NaN or infinite"),
        (torch.tensor([[float("inf")] + [0.0] * 63]), {}, "data contains NaN or infinite"),
        (torch.full((10, 64), 2.0), {}, r"data must lie in \[0, 1\]"),
        (torch.rand(10, 63), {}, r"data must have shape \(N, 64\)"),
        (torch.ones(10, 64, dtype=torch.int64), {}, "data must have a floating dtype"),
        (torch.rand(10, 64), {"k": 0}, "k must be an integer >= 1"),
        (torch.rand(10, 64), {"epochs": 0}, "epochs must be an integer >= 1"),
        (torch.rand(10, 64), {"batch_size": 0}, "batch_size must be an integer >= 1"),
        (torch.rand(10, 64), {"objective": "elbo2"}, "objective must be"),
        (torch.rand(10, 64), {"beta": -1.0}, "beta must be a finite number"),
        (torch.rand(10, 64), {"lr": float("nan")}, "lr must be a finite number > 0"),
        (torch.rand(10, 64), {"lr": 0.0}, "lr must be a finite number > 0"),
        (torch.rand(10, 64), {"objective": "iwae", "free_bits": 1.0}, "apply to objective='elbo' only"),
        (torch.rand(10, 64), {"kl_schedule": 3}, "kl_schedule must be a callable"),
    ],
)
def test_train_refuses_bad_input(data, kwargs, match):
    model = vc.VAE(64, 2, hidden=(8,))
    kwargs.setdefault("epochs", 1)
    with pytest.raises(ValueError, match=match):
        vc.train(model, data, progress=False, **kwargs)


def test_conditional_training_needs_labels(digits):
    model = vc.VAE(64, 2, hidden=(16,), cond_dim=10)
    y = torch.nn.functional.one_hot(digits.y_train[:128], 10)
    hist = vc.train(model, (digits.x_train[:128], y), epochs=1, progress=False)
    assert math.isfinite(hist["loss"][0])
    with pytest.raises(ValueError, match="conditional model needs data"):
        vc.train(model, digits.x_train[:128], epochs=1, progress=False)


@pytest.mark.parametrize("options", [{}, {"objective": "iwae", "k": 3}])
def test_a_float64_model_trains_in_float64(digits, options):
    """The data follow the model's dtype: a float64 model trains in float64, with no dtype clash."""
    vc.set_seed(0)
    model = vc.VAE(64, 4, hidden=(32,)).double()
    hist = vc.train(model, digits.x_train[:256], epochs=3, batch_size=64, progress=False, device="cpu", **options)
    assert all(p.dtype == torch.float64 for p in model.parameters())
    assert hist["loss"][-1] < hist["loss"][0]


def test_active_units_counts_dimensions_that_carry_information():
    vc.set_seed(0)
    model = vc.VAE(10, 4, hidden=())  # encoder is one linear layer: mu = W x + b
    with torch.no_grad():
        w = model.encoder[0].weight  # (2Z, D)
        w.zero_()
        w[0, 0] = 1.0  # mu_1 follows pixel 0
        w[2, 1] = 0.05  # mu_3 varies a little (variance 0.05^2 * Var(x) < 0.01)
    x = torch.rand(500, 10)
    act = vc.latent_activity(model, x)
    assert act.shape == (4,)
    torch.testing.assert_close(act[0], x[:, 0].var(), rtol=1e-5, atol=1e-7)
    assert act[1] == 0 and act[3] == 0
    assert vc.active_units(model, x) == 1
    assert vc.active_units(model, x, threshold=1e-5) == 2


def test_train_asks_get_device_and_an_explicit_device_wins(monkeypatch, digits):
    """Without device=, train goes through vc.get_device (and so reads VAECOURSE_DEVICE); device= wins."""
    model = vc.VAE(64, 2, hidden=(8,))
    monkeypatch.setenv("VAECOURSE_DEVICE", "no-such-device")
    with pytest.raises(ValueError, match="VAECOURSE_DEVICE: 'no-such-device' is not a device name"):
        vc.train(model, digits.x_train[:64], epochs=1, progress=False)
    vc.train(model, digits.x_train[:64], epochs=1, progress=False, device="cpu")
    assert next(model.parameters()).device.type == "cpu"
    with pytest.raises(ValueError, match="^device: 'tpu' is not a device name"):  # the argument is named
        vc.train(model, digits.x_train[:64], epochs=1, progress=False, device="tpu")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_training_and_evaluation_on_gpu(digits):
    vc.set_seed(0)
    model = vc.VAE(64, 8, hidden=(128,))
    hist = vc.train(model, digits.x_train, epochs=5, device="cuda", progress=False)
    assert next(model.parameters()).is_cuda
    assert hist["loss"][-1] < hist["loss"][0]
    x = digits.x_test[:50].cuda()
    ll = model.log_likelihood(x, k=500, chunk=100)
    assert ll.is_cuda and ll.shape == (50,) and torch.isfinite(ll).all()
    assert torch.all(model.iwae_bound(x, 50) <= ll + 1.0)


# ----------------------------------------------------------------------------- input checks


def test_train_names_a_wrong_model_or_optimizer():
    x = torch.rand(10, 12)
    with pytest.raises(TypeError, match="model must be a vc.VAE or vc.LinearGaussianVAE .*got Linear"):
        vc.train(torch.nn.Linear(12, 12), x, epochs=1, progress=False)
    for opt in ("adam", torch.optim.Adam):  # a name, the class instead of an instance
        with pytest.raises(TypeError, match="optimizer must be a torch.optim.Optimizer"):
            vc.train(vc.VAE(12, 2, hidden=(8,)), x, epochs=1, optimizer=opt, progress=False)
    model, other = vc.VAE(12, 2, hidden=(8,)), vc.VAE(12, 2, hidden=(8,))
    with pytest.raises(ValueError, match="optimizer holds none of this model's parameters"):  # trained nothing
        vc.train(model, x, epochs=1, optimizer=torch.optim.SGD(other.parameters(), lr=0.1), progress=False)
    own = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="lr is the learning rate of the Adam that train makes"):  # else ignored
        vc.train(model, x, epochs=1, optimizer=own, lr=0.5, progress=False)
    frozen = vc.VAE(12, 2, hidden=(8,)).requires_grad_(False)
    with pytest.raises(ValueError, match="model has nothing to train: every parameter has requires_grad=False"):
        vc.train(frozen, x, epochs=1, progress=False)
    encoder_only = torch.optim.SGD(model.encoder.parameters(), lr=0.1)  # some of them: allowed (decoder frozen)
    before = [p.clone() for p in model.decoder.parameters()]
    vc.train(model, x, epochs=1, optimizer=encoder_only, progress=False)
    assert all(p.equal(b) for p, b in zip(model.decoder.parameters(), before))


def test_sigmoid_schedule_far_before_its_midpoint_is_zero_not_an_overflow():
    assert vc.SigmoidSchedule(1e4, 10)(0) == 0.0  # the textbook formula would call math.exp(1000), an OverflowError
    assert 0 <= vc.SigmoidSchedule(2000, 2)(0) < 1e-300
    assert vc.SigmoidSchedule(0, 1)(1e6) == 1.0
    sig = vc.SigmoidSchedule(midpoint=100, width=3)
    for step in (0, 50, 99, 100, 101, 400):  # bitwise the textbook formula wherever it does not overflow
        assert sig(step) == 1.0 / (1.0 + math.exp(-(step - 100) / 3))
    assert vc.SigmoidSchedule(2000, 3)(100) == 1.0 / (1.0 + math.exp(1900 / 3))  # e^633: no overflow yet
    model, x = vc.VAE(12, 3, hidden=(8,)), torch.rand(20, 12)
    hist = vc.train(model, x, epochs=1, kl_schedule=vc.SigmoidSchedule(2000, 2), progress=False, device="cpu")
    assert 0 <= hist["beta"][0] < 1e-300 and math.isfinite(hist["loss"][0])


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: vc.LinearSchedule(10, start=2), r"start must be a finite number in \[0, 1\], got 2"),
        (lambda: vc.LinearSchedule(10, start=-0.5), r"start must be a finite number in \[0, 1\]"),
        (lambda: vc.LinearSchedule(10, start=float("nan")), "start must be a finite number"),
        (lambda: vc.LinearSchedule(10, start="0"), "start must be a finite number"),
        (lambda: vc.SigmoidSchedule(float("nan"), 1), "midpoint must be a finite number, got nan"),
        (lambda: vc.SigmoidSchedule(float("inf"), 1), "midpoint must be a finite number"),
        (lambda: vc.SigmoidSchedule(0, "a"), "width must be a finite number > 0, got 'a'"),
        (lambda: vc.SigmoidSchedule(0, True), "width must be a finite number > 0, got True"),
        (lambda: vc.SigmoidSchedule(0, 0), "width must be a finite number > 0"),
        (lambda: vc.SigmoidSchedule(0, float("inf")), "width must be a finite number > 0"),
        (lambda: vc.CyclicalSchedule(10, "a"), r"ramp must be a finite number in \(0, 1\], got 'a'"),
        (lambda: vc.CyclicalSchedule(10, True), r"ramp must be a finite number in \(0, 1\], got True"),
        (lambda: vc.CyclicalSchedule(10, 1.5), r"ramp must be a finite number in \(0, 1\]"),
        (lambda: vc.CyclicalSchedule(10, float("nan")), r"ramp must be a finite number in \(0, 1\]"),
        (lambda: vc.CyclicalSchedule(True), "period must be an integer >= 1"),
    ],
)
def test_schedules_refuse_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_valid_schedules_keep_their_values_and_reprs():
    lin = vc.LinearSchedule(10, start=0.5)
    assert [lin(s) for s in (0, 5, 10, 100)] == [0.5, 0.75, 1.0, 1.0]
    assert [vc.LinearSchedule(4, start=1)(s) for s in (0, 9)] == [1.0, 1.0]
    assert repr(lin) == "LinearSchedule(warmup=10)"
    assert repr(vc.SigmoidSchedule(100, 10)) == "SigmoidSchedule(midpoint=100, width=10)"
    assert repr(vc.SigmoidSchedule(-2.5, 0.5)) == "SigmoidSchedule(midpoint=-2.5, width=0.5)"
    assert repr(vc.CyclicalSchedule(10, 1)) == "CyclicalSchedule(period=10, ramp=1)"
    assert vc.CyclicalSchedule(10, ramp=1)(5) == 0.5


@pytest.fixture
def small():
    vc.set_seed(0)
    return vc.VAE(12, 3, hidden=(8,)), torch.rand(20, 12)


@pytest.mark.parametrize(
    "x,kwargs,match",
    [
        (lambda x: x[0], {}, r"x must have shape \(N, 12\), got \(12,\)"),
        (lambda x: x.reshape(2, 10, 12), {}, r"x must have shape \(N, 12\), got \(2, 10, 12\)"),
        (lambda x: x[:0], {}, "at least two examples to measure latent activity, got 0"),
        (lambda x: x[:1], {}, "at least two examples to measure latent activity, got 1"),
        (lambda x: x.double(), {}, "x is torch.float64 but the model's parameters are torch.float32"),
        (lambda x: x, {"batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
        (lambda x: x, {"batch_size": -1}, "batch_size must be an integer >= 1, got -1"),
        (lambda x: x, {"batch_size": 2.5}, "batch_size must be an integer >= 1, got 2.5"),
        (lambda x: x, {"batch_size": True}, "batch_size must be an integer >= 1, got True"),
        (lambda x: x, {"y": torch.zeros(20, 3)}, r"this model is not conditional \(cond_dim=0\): leave y out"),
    ],
)
def test_latent_activity_refuses_bad_input(small, x, kwargs, match):
    model, data = small
    with pytest.raises(ValueError, match=match):
        vc.latent_activity(model, x(data), **kwargs)
    if "batch_size" not in kwargs:
        with pytest.raises(ValueError, match=match):
            vc.active_units(model, x(data), **kwargs)


def test_latent_activity_batches_and_conditional_labels(small):
    model, x = small
    act = vc.latent_activity(model, x)
    assert act.shape == (3,)
    torch.testing.assert_close(vc.latent_activity(model, x, batch_size=7), act)
    cond = vc.VAE(12, 3, hidden=(8,), cond_dim=4)
    label = torch.tensor([0.0, 1.0, 0.0, 0.0])  # one label for every example, not a batch of labels
    act = vc.latent_activity(cond, x, y=label, batch_size=7)
    assert act.shape == (3,)
    torch.testing.assert_close(act, vc.latent_activity(cond, x, y=label.expand(20, 4)))
    assert vc.active_units(cond, x, 0.0, y=label) == 3
    with pytest.raises(ValueError, match=r"y must be a tensor of shape \(20, 4\)"):
        vc.latent_activity(cond, x, y=torch.zeros(20, 5))
    with pytest.raises(ValueError, match="this is a conditional model: pass y"):
        vc.latent_activity(cond, x)


@pytest.mark.parametrize(
    "model,kwargs",
    [
        (lambda: vc.VAE(12, 3, hidden=(8,)), {}),
        (lambda: vc.VAE(12, 3, hidden=(8,)), {"k": 2}),
        (lambda: vc.VAE(12, 3, hidden=(8,)), {"objective": "iwae", "k": 2}),
        (lambda: vc.VAE(12, 3, hidden=(8,), activation="elu"), {}),
        (lambda: vc.VAE(12, 3, hidden=(8,), likelihood="gaussian"), {}),
        (lambda: vc.LinearGaussianVAE(12, 3), {}),
    ],
)
def test_train_refuses_labels_for_an_unconditional_model(model, kwargs):
    x = torch.rand(20, 12)
    with pytest.raises(ValueError, match=r"this model is not conditional \(cond_dim=0\)"):
        vc.train(model(), (x, torch.zeros(20, 3)), epochs=1, progress=False, device="cpu", **kwargs)


def test_dynamic_binarization_needs_data_in_the_unit_interval():
    model = vc.VAE(12, 3, hidden=(8,), likelihood="gaussian")
    x = torch.rand(20, 12)
    with pytest.raises(ValueError, match=r"data must lie in \[0, 1\] for dynamic_binarization"):
        vc.train(model, 3 * x - 1, epochs=1, dynamic_binarization=True, progress=False, device="cpu")
    vc.train(model, 3 * x - 1, epochs=1, progress=False, device="cpu")  # fine without it
    hist = vc.train(model, x, epochs=1, dynamic_binarization=True, progress=False, device="cpu")
    assert math.isfinite(hist["loss"][0])


@pytest.mark.parametrize(
    "schedule,step,shown",
    [
        (lambda s: -1.0, 0, "-1.0"),
        (lambda s: None, 0, "None"),
        (lambda s: float("nan"), 0, "nan"),
        (lambda s: "0.5", 0, "'0.5'"),
        (lambda s: 1.0 if s < 3 else -0.5, 3, "-0.5"),  # checked at every step, not only the first
    ],
)
def test_train_refuses_a_kl_schedule_weight_that_is_not_a_number_ge_0(schedule, step, shown):
    model, x = vc.VAE(12, 3, hidden=(8,)), torch.rand(20, 12)
    match = rf"kl_schedule's weight at step {step} must be a finite number >= 0, got {shown}"
    with pytest.raises(ValueError, match=match):
        vc.train(model, x, epochs=2, batch_size=5, kl_schedule=schedule, progress=False, device="cpu")


@pytest.mark.parametrize(
    "weight, logged",
    [(torch.tensor(0.25), 0.25), (np.array(0.5), 0.5), (np.float32(0.75), 0.75), (1.5, 1.5), (1.0 + 1e-9, 1.0 + 1e-9)],
)
def test_a_kl_schedule_may_return_tensors_numpy_numbers_and_weights_above_1(weight, logged):
    """A schedule may ramp beta beyond 1 (beta * weight), or land a rounding error above 1."""
    model, x = vc.VAE(12, 3, hidden=(8,)), torch.rand(20, 12)
    hist = vc.train(model, x, epochs=1, kl_schedule=lambda s: weight, progress=False, device="cpu")
    assert hist["beta"] == [pytest.approx(logged)]


def test_latent_activity_moves_data_to_the_models_device(monkeypatch):
    """A model on another device than its data (a GPU model, CPU data) gets the data moved."""
    vc.set_seed(0)
    model = vc.VAE(12, 3, hidden=(8,))
    x = torch.rand(20, 12)
    moved = []
    to = torch.Tensor.to

    def spy(self, *args, **kwargs):
        moved.append(args[0] if args else kwargs.get("device"))
        return to(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", spy)
    act = vc.latent_activity(model, x)
    assert torch.device("cpu") in moved and act.shape == (3,)


# ----------------------------------------------------------------------------- the loop is the model's


def test_train_is_the_loop_it_describes():
    """Three epochs of vc.train equal the loop written out by hand: a shuffled batch, -model.elbo(xb).mean(),
    autograd, Adam (the same random draws, so the same weights to float rounding)."""
    x = torch.rand(64, 12)
    vc.set_seed(0)
    ours = vc.VAE(12, 3, hidden=(8,))
    by_hand = vc.VAE(12, 3, hidden=(8,))
    by_hand.load_state_dict(ours.state_dict())
    vc.set_seed(1)
    vc.train(ours, x, epochs=3, batch_size=16, progress=False, device="cpu")
    vc.set_seed(1)
    opt = torch.optim.Adam(by_hand.parameters(), lr=1e-3)
    for _ in range(3):
        for idx in torch.randperm(64).split(16):
            loss = -by_hand.elbo(x[idx]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    for (name, a), b in zip(ours.named_parameters(), by_hand.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
        assert not torch.equal(a, vc.VAE(12, 3, hidden=(8,)).state_dict()[name])  # and it did train


@pytest.mark.parametrize("objective,k", [("elbo", 1), ("elbo", 3), ("iwae", 4)])
def test_instance_overrides_of_encode_and_log_px_z_are_what_train_calls(objective, k):
    model, x = vc.VAE(12, 3, hidden=(8,)), torch.rand(40, 12)
    calls = {"encode": 0, "log_px_z": 0}
    encode = model.encode

    def my_encode(x, y=None):
        calls["encode"] += 1
        return encode(x, y)

    def my_log_px_z(x, z, y=None):  # a student's version: the Bernoulli term, written out
        calls["log_px_z"] += 1
        logits = model.decode(z, y)
        return (x * torch.nn.functional.logsigmoid(logits) + (1 - x) * torch.nn.functional.logsigmoid(-logits)).sum(-1)

    model.encode, model.log_px_z = my_encode, my_log_px_z
    hist = vc.train(model, x, epochs=2, batch_size=10, objective=objective, k=k, progress=False, device="cpu")
    assert calls == {"encode": 8, "log_px_z": 8}  # once per step: 2 epochs of 4 batches
    assert math.isfinite(hist["loss"][-1])


def test_a_subclass_objective_is_what_train_minimises():
    """A model whose elbo is changed (here: its reconstruction term doubled) trains on that objective."""

    class Doubled(vc.VAE):
        def elbo(self, x, beta=1.0, free_bits=0.0, *, y=None, k=1, return_terms=False):
            bound, recon, kl = super().elbo(x, beta, free_bits, y=y, k=k, return_terms=True)
            bound = bound + recon
            return (bound, recon, kl) if return_terms else bound

    vc.set_seed(0)
    hist = vc.train(Doubled(12, 3, hidden=(8,)), torch.rand(40, 12), epochs=2, progress=False, device="cpu")
    for loss, recon, kl in zip(hist["loss"], hist["recon"], hist["kl"]):
        assert loss == pytest.approx(-(2 * recon - kl), rel=1e-5)


def _plain_elbo(self, x):  # a student's override with its own, shorter signature
    mu, logvar = self.encode(x)
    return self.log_px_z(x, vc.reparameterize(mu, logvar)) - vc.gaussian_kl(mu, logvar)


@pytest.mark.parametrize(
    "objective,override,match",
    [
        ("elbo", _plain_elbo, r"vc.train calls model.elbo\(xb, beta, free_bits, y=yb, k=k, return_terms=True\), "),
        (
            "elbo",
            lambda self, x, *a, **kw: torch.zeros(len(x)),
            r"must return \(bound, recon, kl\), .*tensor of shape \(10,\)",
        ),
        ("iwae", lambda self, x, k: None, r"vc.train calls model.iwae_bound\(xb, k, y=yb, return_terms=True\)"),
        (
            "iwae",
            lambda self, x, k, **kw: (x.sum(-1),) * 2,
            r"three tensors of shape \(10,\), got a tuple \(\(10,\), \(10,\)\)",
        ),
    ],
)
def test_an_objective_override_that_breaks_the_contract_is_named(objective, override, match):
    """An elbo / iwae_bound override that cannot take train's call, or returns other than the three (B,)
    terms, gets a TypeError that shows the call (not an unpacking error from inside the loop)."""
    model, x = vc.VAE(12, 3, hidden=(8,)), torch.rand(40, 12)
    setattr(model, "elbo" if objective == "elbo" else "iwae_bound", override.__get__(model))
    with pytest.raises(TypeError, match=match):
        vc.train(model, x, epochs=1, batch_size=10, objective=objective, k=2, progress=False, device="cpu")


def test_an_objective_override_that_passes_the_arguments_on_trains():
    calls = []

    class Passing(vc.VAE):
        def elbo(self, x, *args, **kwargs):
            calls.append(kwargs)
            return super().elbo(x, *args, **kwargs)

    hist = vc.train(Passing(12, 3, hidden=(8,)), torch.rand(40, 12), epochs=1, batch_size=10, progress=False)
    assert len(calls) == 4 and calls[0] == {"y": None, "k": 1, "return_terms": True}
    assert math.isfinite(hist["loss"][0])


def test_a_kl_schedule_sees_the_weights_move_at_every_step():
    model, x = vc.VAE(12, 3, hidden=(8,)), torch.rand(40, 12)
    seen = []

    def schedule(step):
        seen.append(model.encoder[0].weight.detach().clone())
        return 1.0

    vc.train(model, x, epochs=2, batch_size=10, kl_schedule=schedule, progress=False, device="cpu")
    assert len(seen) == 8
    for before, after in zip(seen, seen[1:]):
        assert not torch.equal(before, after)  # the live parameters, updated by the previous step
    assert not torch.equal(model.encoder[0].weight, seen[-1])  # and the last step moved them again
