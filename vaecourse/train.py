"""Training and diagnostics: the one training loop of the course, KL-annealing schedules, active units.

Holds:
    train              -- fit a model by the ELBO (beta, annealing, free bits) or the IWAE bound, with Adam.
    LinearSchedule, SigmoidSchedule, CyclicalSchedule -- KL weights in [0, 1] as functions of the step
                          (Bowman et al. 2016; Fu et al. 2019 for the cyclical one).
    latent_activity, active_units -- Var_x(E_q[z_j | x]) and the count above a threshold (Burda et al. 2016).
"""

import math
import time

import torch

from . import checks
from .device import get_device

__all__ = [
    "train",
    "LinearSchedule",
    "SigmoidSchedule",
    "CyclicalSchedule",
    "latent_activity",
    "active_units",
]


def _step(step):
    """A schedule's argument: the optimizer step, a finite number >= 0 (``train`` passes 0, 1, 2, ...)."""
    return checks.number("step", step)


class LinearSchedule:
    """KL weight rising linearly from ``start`` to 1 over ``warmup`` steps, then 1."""

    def __init__(self, warmup, start=0.0):
        self.warmup = checks.integer("warmup", warmup)
        self.start = checks.real("start", start, "in [0, 1]", lambda v: 0 <= v <= 1)

    def __call__(self, step):
        step = _step(step)
        return min(1.0, self.start + (1.0 - self.start) * step / self.warmup)

    def __repr__(self):
        return f"LinearSchedule(warmup={self.warmup})"


class SigmoidSchedule:
    """KL weight ``sigmoid((step - midpoint) / width)``: near 0 early, 1/2 at ``midpoint``, near 1 late."""

    def __init__(self, midpoint, width):
        self.midpoint = checks.real("midpoint", midpoint)
        self.width = checks.real("width", width, "> 0", lambda v: v > 0)

    def __call__(self, step):
        t = (_step(step) - self.midpoint) / self.width
        return math.exp(t) if t < -700 else 1.0 / (1.0 + math.exp(-t))  # e^-t overflows past 709; then e^t is exact

    def __repr__(self):
        return f"SigmoidSchedule(midpoint={self.midpoint:g}, width={self.width:g})"


class CyclicalSchedule:
    """Repeated linear ramps (Fu et al. 2019): each ``period`` steps, rise from 0 to 1 over the
    first ``ramp`` fraction of the period, then hold at 1."""

    def __init__(self, period, ramp=0.5):
        self.period = checks.integer("period", period)
        self.ramp = checks.real("ramp", ramp, "in (0, 1]", lambda v: 0 < v <= 1)

    def __call__(self, step):
        phase = (_step(step) % self.period) / self.period
        return min(1.0, phase / self.ramp)

    def __repr__(self):
        return f"CyclicalSchedule(period={self.period}, ramp={self.ramp:g})"


def train(model, data, *, epochs, batch_size=128, lr=None, objective="elbo", k=1, beta=1.0, kl_schedule=None,
          free_bits=0.0, device=None, progress=True, dynamic_binarization=False, optimizer=None):  # fmt: skip
    """Fit ``model`` to ``data`` by minimising ``-model.elbo(xb).mean()`` (or ``-model.iwae_bound(xb, k).mean()``)
    with Adam, and return the per-epoch history.

    Each step gathers a shuffled minibatch xb of the data (which stays on the device as one tensor), calls
    the model's own ``elbo`` (or ``iwae_bound``) with ``return_terms=True``, backpropagates with autograd and
    takes an optimizer step. The running sums that the history reports stay on the device and are read
    once per epoch (``model.elbo`` still reads each batch's smallest and largest value, its input check).

    Args:
        model: a ``vc.VAE`` or ``vc.LinearGaussianVAE`` (or a subclass; moved to ``device``). An override of
            ``elbo`` or ``iwae_bound`` takes the package's arguments and returns ``(bound, recon, kl)``.
        data: (N, D) float tensor, or a pair ``(x, y)`` for a conditional VAE.
        epochs: passes over the data.
        batch_size: minibatch size.
        lr: learning rate of the Adam that ``train`` makes (default 1e-3); not with ``optimizer``.
        objective: ``"elbo"`` (``k`` samples averaged in the reconstruction term) or ``"iwae"``
            (the ``k``-sample importance-weighted bound).
        beta: KL weight; with ``kl_schedule`` (step -> weight >= 0) the weight at step t is ``beta * kl_schedule(t)``.
        free_bits: per-dimension KL floor in nats (Kingma et al. 2016), ELBO objective only.
        device: where to train; ``None`` asks ``vc.get_device()``.
        progress: show a tqdm bar over epochs.
        dynamic_binarization: resample each batch as Bernoulli(x) (grey levels as probabilities).
        optimizer: an optimizer over ``model.parameters()`` to use instead of a new ``Adam(lr=lr)``.
    Returns:
        dict of per-epoch lists: ``loss`` (mean negative objective), ``recon`` (mean E_q log p(x|z)),
        ``kl`` (mean KL(q||p)), ``beta`` (KL weight at the epoch's last step), ``seconds``, ``samples_per_s``.
    """
    x, y, opt = checks.train_args(
        model, data, optimizer, dynamic_binarization, epochs=epochs, batch_size=batch_size, lr=lr,
        objective=objective, k=k, beta=beta, kl_schedule=kl_schedule, free_bits=free_bits,
    )  # fmt: skip
    device = get_device(device, name="device")
    model.to(device).train()
    dtype = next(model.parameters()).dtype  # float32, or float64 for a model made .double()
    x = x.to(device, dtype)  # (N, D): the whole data set, resident on the device
    y = None if y is None else y.to(device, dtype)  # (N, C)
    if optimizer is None:  # the fused kernel updates all parameters in one call, where torch has one
        optimizer = torch.optim.Adam(model.parameters(), lr=opt["lr"], fused=device.type in ("cpu", "cuda"))
    n, schedule, step, weight = x.shape[0], opt["kl_schedule"], 0, opt["beta"]
    history = {key: [] for key in ("epoch", "loss", "recon", "kl", "beta", "seconds", "samples_per_s")}
    epoch_iter = range(1, opt["epochs"] + 1)
    if progress:
        from tqdm.auto import tqdm

        epoch_iter = tqdm(epoch_iter, desc=f"training ({opt['objective']}, k={opt['k']})", unit="epoch")
    for epoch in epoch_iter:
        t0 = time.perf_counter()
        sums = torch.zeros(3, device=device, dtype=dtype)  # loss, recon, kl summed over the epoch
        for idx in torch.randperm(n, device=device).split(opt["batch_size"]):  # the epoch's shuffled batches
            xb = x.index_select(0, idx)  # (B, D), one gather
            yb = None if y is None else y.index_select(0, idx)  # (B, C)
            if dynamic_binarization:
                xb = torch.bernoulli(xb)
            if schedule is not None:  # the KL weight of this step
                weight = opt["beta"] * checks.number(f"kl_schedule's weight at step {step}", schedule(step))
            if opt["objective"] == "elbo":
                out = model.elbo(xb, weight, opt["free_bits"], y=yb, k=opt["k"], return_terms=True)
            else:
                out = model.iwae_bound(xb, opt["k"], y=yb, return_terms=True)
            bound, recon, kl = checks.objective_terms(opt["objective"], out, xb.shape[0])  # each (B,)
            loss = -bound.mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            sums += torch.stack((-bound.sum(), recon.sum(), kl.sum())).detach()
            step += 1
        loss_e, recon_e, kl_e = (sums / n).tolist()  # the sums' one read per epoch
        seconds = time.perf_counter() - t0
        for key, val in zip(history, (epoch, loss_e, recon_e, kl_e, weight, seconds, n / seconds)):
            history[key].append(val)
        if progress:
            epoch_iter.set_postfix(loss=f"{loss_e:.2f}", kl=f"{kl_e:.2f}")
        if not math.isfinite(loss_e):
            raise FloatingPointError(f"loss became {loss_e} at epoch {epoch}; try a smaller lr")
    model.eval()
    return history


@torch.no_grad()
def latent_activity(model, x, *, y=None, batch_size=1000):
    """Per-dimension activity ``Var_x(E_q[z_j | x])`` over the examples in ``x``, shape (Z,).

    (The diagonal of Burda et al.'s Cov_x.) ``x`` is (N, D) in the model's dtype, N >= 2, on any device
    (each batch is moved to the model's); ``y`` (N, C), or (C,) for every example.
    """
    checks.model(model)
    checks.tensor("x", x)
    if x.dim() != 2 or x.shape[1] != model.x_dim:
        raise ValueError(f"x must have shape (N, {model.x_dim}), got {tuple(x.shape)}")
    if x.shape[0] < 2:  # a variance over examples: undefined for none or one
        raise ValueError(f"x needs at least two examples to measure latent activity, got {x.shape[0]}")
    batch_size = checks.integer("batch_size", batch_size)
    device = next(model.parameters()).device
    y = y.to(device) if isinstance(y, torch.Tensor) else y  # labels are small: moved at once
    checks.labels(model, y, x.shape[:-1])
    xs = x.split(batch_size)  # (B, D) each
    ys = [None] * len(xs) if y is None else y.expand(x.shape[0], model.cond_dim).split(batch_size)
    was_training = model.training
    model.eval()
    try:
        means = []
        for xb, yb in zip(xs, ys):
            xb = xb.to(device)
            checks.model_input(model, xb, yb)
            means.append(model.encode(xb, yb)[0])  # (B, Z)
    finally:
        model.train(was_training)
    return torch.cat(means).var(0, unbiased=True)  # (N, Z) -> (Z,)


def active_units(model, x, threshold=0.01, *, y=None):
    """Number of latent dimensions whose activity ``Var_x(E_q[z_j | x])`` exceeds ``threshold``
    (Burda et al. 2016, section 5.2; they use 10^-2)."""
    threshold = checks.number("threshold", threshold)
    return int((latent_activity(model, x, y=y) > threshold).sum())
