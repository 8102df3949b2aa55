"""Training and diagnostics: one fast loop for every chapter, KL-annealing schedules, active units.

Holds:
    train              -- fit a model by the ELBO (beta, annealing, free bits) or the IWAE bound.
    LinearSchedule, SigmoidSchedule, CyclicalSchedule -- KL weights in [0, 1] as functions of the step
                          (Bowman et al. 2016; Fu et al. 2019 for the cyclical one).
    latent_activity, active_units -- Cov_x(E_q[z_j]) and the count above a threshold (Burda et al. 2016).

Why the loop is fast (see ``python -m vaecourse.bench`` and the README's Performance section):
the data live on the device as one tensor and each batch is one ``index_select`` of a shuffled
index (no DataLoader, no per-sample collation, no host-to-device copy); running sums stay on the
device and are read once per epoch (no ``.item()`` per step); Adam is the fused kernel. For the
common case (MLP VAE, conditional or not, Bernoulli or fixed-variance Gaussian decoder,
single-sample ELBO, free bits or not) the backward pass is written out in ``backprop.py`` (skipping
inputs that are zero in every example, such as MNIST's blank border), so a step is little more
than its matrix products, and on a GPU that step is captured once as a CUDA graph and replayed
(``steps.py``); every other case uses autograd, with the decoder in logits
(``binary_cross_entropy_with_logits``, no separate sigmoid).
"""

import math
import time

import torch

from .backprop import FLUSH_EVERY, FusedAdam, ManualELBO, _flush_tiny_moments_
from .device import get_device
from .inputs import _check_model
from .losses import _check_int, _check_k, _check_number, _check_real, _check_values, _tensor
from .steps import Steps, cuda_graph

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
    return _check_number("step", step)


class LinearSchedule:
    """KL weight rising linearly from ``start`` to 1 over ``warmup`` steps, then 1."""

    def __init__(self, warmup, start=0.0):
        self.warmup = _check_int("warmup", warmup)
        self.start = _check_real("start", start, "in [0, 1]", lambda v: 0 <= v <= 1)

    def __call__(self, step):
        step = _step(step)
        return min(1.0, self.start + (1.0 - self.start) * step / self.warmup)

    def __repr__(self):
        return f"LinearSchedule(warmup={self.warmup})"


class SigmoidSchedule:
    """KL weight ``sigmoid((step - midpoint) / width)``: near 0 early, 1/2 at ``midpoint``, near 1 late."""

    def __init__(self, midpoint, width):
        self.midpoint = _check_real("midpoint", midpoint)
        self.width = _check_real("width", width, "> 0", lambda v: v > 0)

    def __call__(self, step):
        t = (_step(step) - self.midpoint) / self.width
        return math.exp(t) if t < -700 else 1.0 / (1.0 + math.exp(-t))  # e^-t overflows past 709; then e^t is exact

    def __repr__(self):
        return f"SigmoidSchedule(midpoint={self.midpoint:g}, width={self.width:g})"


class CyclicalSchedule:
    """Repeated linear ramps (Fu et al. 2019): each ``period`` steps, rise from 0 to 1 over the
    first ``ramp`` fraction of the period, then hold at 1."""

    def __init__(self, period, ramp=0.5):
        self.period = _check_int("period", period)
        self.ramp = _check_real("ramp", ramp, "in (0, 1]", lambda v: 0 < v <= 1)

    def __call__(self, step):
        phase = (_step(step) % self.period) / self.period
        return min(1.0, phase / self.ramp)

    def __repr__(self):
        return f"CyclicalSchedule(period={self.period}, ramp={self.ramp:g})"


def _split_data(data):
    if isinstance(data, (tuple, list)):
        if len(data) != 2:
            raise ValueError("data must be a tensor x or a pair (x, y)")
        return data[0], data[1]
    return data, None


def _check_data(model, x, y, dynamic_binarization=False):
    x = _tensor("data", x, finite=False)
    if x.dim() != 2 or x.shape[1] != model.x_dim:
        raise ValueError(f"data must have shape (N, {model.x_dim}), got {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError("data is empty")
    bernoulli = getattr(model, "likelihood", None) == "bernoulli"
    why = "for a Bernoulli decoder" if bernoulli else "for dynamic_binarization (it draws Bernoulli(x))"
    _check_values("data", x, unit_interval=bernoulli or dynamic_binarization, why=why)
    if y is not None and not model.cond_dim:
        raise ValueError("this model is not conditional (cond_dim=0): pass data=x, not a pair (x, y)")
    if model.cond_dim:
        if y is None:
            raise ValueError("a conditional model needs data=(x, y) with y of shape (N, cond_dim)")
        y = torch.as_tensor(y)
        if y.shape != (x.shape[0], model.cond_dim):
            raise ValueError(f"y must have shape ({x.shape[0]}, {model.cond_dim}), got {tuple(y.shape)}")
        y = y.float()
    return x, y


def _used_columns(x, multiple=16):
    """Indices of the columns of x with a nonzero entry, padded with all-zero ones to a multiple of
    ``multiple`` (rows of 16 floats = 64 bytes keep the products' inner loops aligned: a 661-column
    weight-gradient product ran as slowly as the full 784 one, a 672-column one 20% faster).
    None when that would be all columns, or when every column is zero."""
    used = x.ne(0).any(0)  # (D,)
    k = int(used.sum())
    pad = -k % multiple
    if k == 0 or k + pad >= x.shape[1]:
        return None
    if pad:
        used[(~used).nonzero().squeeze(1)[:pad]] = True  # a few all-zero columns ride along
    return used.nonzero().squeeze(1)  # (k + pad,)


def _capture_for(device, kl_schedule):
    """How the written-out step is captured on ``device``: a CUDA graph on a GPU when the KL weight
    is constant (a schedule changes it every step), else None (eager; a CPU gains nothing)."""
    return cuda_graph if device.type == "cuda" and kl_schedule is None else None


def _schedule_weight(kl_schedule, step):
    """kl_schedule(step), checked: a finite Python float >= 0 (a one-element tensor or array is read out)."""
    return _check_number(f"kl_schedule's weight at step {step}", kl_schedule(step))


def train(
    model,
    data,
    *,
    epochs,
    batch_size=128,
    lr=1e-3,
    objective="elbo",
    k=1,
    beta=1.0,
    kl_schedule=None,
    free_bits=0.0,
    device=None,
    progress=True,
    dynamic_binarization=False,
    optimizer=None,
):
    """Fit ``model`` to ``data`` with Adam and return the per-epoch history.

    Args:
        model: a ``vc.VAE`` or ``vc.LinearGaussianVAE`` (moved to ``device``).
        data: (N, D) float tensor, or a pair ``(x, y)`` for a conditional VAE.
        epochs: passes over the data.
        batch_size, lr: minibatch size and Adam learning rate.
        objective: ``"elbo"`` (``k`` samples averaged in the reconstruction term) or ``"iwae"``
            (the ``k``-sample importance-weighted bound).
        beta: KL weight; with ``kl_schedule`` (step -> a weight >= 0, usually in [0, 1]) the weight at step t is
            ``beta * kl_schedule(t)``.
        free_bits: per-dimension KL floor in nats (Kingma et al. 2016), ELBO objective only.
        device: where to train; ``None`` asks ``vc.get_device()``.
        progress: show a tqdm bar over epochs.
        dynamic_binarization: resample each batch as Bernoulli(x) (grey levels as probabilities).
        optimizer: an optimizer over ``model.parameters()`` to use instead of a new Adam.
    Returns:
        dict of per-epoch lists: ``loss`` (mean negative objective), ``recon`` (mean log p(x|z)),
        ``kl`` (mean KL(q||p)), ``beta`` (KL weight at the epoch's end), ``seconds``, ``samples_per_s``.
    """
    _check_model(model)
    steps_like = all(callable(getattr(optimizer, f, None)) for f in ("step", "zero_grad"))
    if optimizer is not None and (isinstance(optimizer, type) or not steps_like):  # not the class itself
        raise TypeError(f"optimizer must be a torch.optim.Optimizer over model.parameters(), got {optimizer!r:.80}")
    held = {id(p) for g in getattr(optimizer, "param_groups", ()) for p in g["params"]}  # a torch optimizer's
    if held and not any(id(p) in held for p in model.parameters()):  # e.g. made before the model was rebuilt
        raise ValueError("optimizer holds none of this model's parameters: make it with model.parameters()")
    x, y = _split_data(data)
    x, y = _check_data(model, x, y, dynamic_binarization)
    epochs = _check_int("epochs", epochs)
    batch_size = _check_int("batch_size", batch_size)
    if objective not in ("elbo", "iwae"):
        raise ValueError(f"objective must be 'elbo' or 'iwae', got {objective!r}")
    k = _check_k(k)
    lr = _check_number("lr", lr)
    beta = _check_number("beta", beta)
    free_bits = _check_number("free_bits", free_bits)
    if objective == "iwae" and (free_bits or beta != 1.0 or kl_schedule is not None):
        raise ValueError("beta, kl_schedule and free_bits apply to objective='elbo' only")
    if kl_schedule is not None and not callable(kl_schedule):
        raise ValueError("kl_schedule must be a callable step -> weight, e.g. vc.LinearSchedule(1000)")

    device = get_device(device)
    model.to(device)
    model.train()
    dtype = next(model.parameters()).dtype  # float32 normally; a model made .double() trains in float64
    x = x.to(device, dtype).contiguous()  # (N, D), resident on the device
    y = None if y is None else y.to(device, dtype)
    n = x.shape[0]
    manual = ManualELBO.for_model(model, objective, k, free_bits)  # None: autograd does the backward
    torch_adam = None  # our own torch.optim.Adam, whose moments we keep out of the subnormal range
    x_in = None  # (N, k) the encoder's input columns that are not zero everywhere, when it reads only those
    if optimizer is None:
        fused = device.type in ("cpu", "cuda")
        if manual is not None and fused:
            enc_data = x if y is None else torch.cat((x, y), 1)  # (N, D + C): what the encoder reads
            used = _used_columns(enc_data)
            if used is not None:  # exact: weights of all-zero inputs get zero gradient, so never move
                manual.use_inputs(used)
            if not dynamic_binarization and (used is not None or y is not None):  # else drawn, then gathered
                x_in = enc_data if used is None else enc_data.index_select(1, used)
            optimizer = FusedAdam(manual.params, lr=lr)
        else:
            optimizer = torch_adam = torch.optim.Adam(model.parameters(), lr=lr, fused=fused)
    steps = None  # the written-out step on fixed buffers (steps.py), when autograd is not needed
    if manual is not None:
        capture = _capture_for(device, kl_schedule)
        steps = Steps(
            manual,
            optimizer,
            x,
            x_in,
            y=y,
            batch_size=batch_size,
            dynamic_binarization=dynamic_binarization,
            capture=capture,
        )

    history = {"epoch": [], "loss": [], "recon": [], "kl": [], "beta": [], "seconds": [], "samples_per_s": []}
    epoch_iter = range(1, epochs + 1)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        epoch_iter = bar = tqdm(epoch_iter, desc=f"training ({objective}, k={k})", unit="epoch")
    step = 0
    try:
        for epoch in epoch_iter:
            t0 = time.perf_counter()
            # (loss, recon, kl) summed over the epoch's examples, on the device, read once
            sums = torch.zeros(3, device=device) if steps is None else steps.sums.zero_()
            beta_t = beta
            for idx in torch.randperm(n, device=device).split(batch_size):  # a shuffled epoch's batches
                if kl_schedule is not None:
                    beta_t = beta * _schedule_weight(kl_schedule, step)
                if steps is not None:
                    steps(idx, beta_t)  # gather, forward, backward, Adam, add into sums
                else:
                    xb = x.index_select(0, idx)  # (B, D), gathered into a fresh cache-hot block
                    yb = None if y is None else y.index_select(0, idx)
                    if dynamic_binarization:
                        xb = torch.bernoulli(xb)
                    obj, recon, kl = model.objective_terms(xb, yb, objective, k, beta_t, free_bits)  # (B,) each
                    optimizer.zero_grad(set_to_none=True)
                    (-obj.mean()).backward()
                    optimizer.step()
                    sums += torch.stack((-obj.sum(), recon.sum(), kl.sum())).detach()
                step += 1
                if torch_adam is not None and step % FLUSH_EVERY == 0:  # FusedAdam does this itself
                    states = list(torch_adam.state.values())
                    _flush_tiny_moments_([s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states])
            loss_e, recon_e, kl_e = (sums / n).tolist()  # the one host sync per epoch
            seconds = time.perf_counter() - t0
            for key, val in zip(history, (epoch, loss_e, recon_e, kl_e, beta_t, seconds, n / seconds)):
                history[key].append(val)
            if bar is not None:
                bar.set_postfix(loss=f"{loss_e:.2f}", kl=f"{kl_e:.2f}")
            if not math.isfinite(loss_e):
                raise FloatingPointError(f"loss became {loss_e} at epoch {epoch}; try a smaller lr")
    finally:
        if manual is not None:
            manual.write_back()  # the restricted first layer, if any, into the model
    model.eval()
    return history


@torch.no_grad()
def latent_activity(model, x, *, y=None, batch_size=1000):
    """Per-dimension activity ``Cov_x(E_q[z_j | x])`` over the examples in ``x``, shape (Z,).

    ``x`` is (N, D) in the model's dtype, N >= 2, on any device (each batch is moved to the model's);
    ``y`` (N, C), or (C,) for every example."""
    _check_model(model)
    model._check_x(x)
    if x.dim() != 2:
        raise ValueError(f"x must have shape (N, {model.x_dim}), got {tuple(x.shape)}")
    if x.shape[0] < 2:  # a variance over examples: undefined for none or one
        raise ValueError(f"x needs at least two examples to measure latent activity, got {x.shape[0]}")
    batch_size = _check_int("batch_size", batch_size)
    dev = next(model.parameters()).device
    y = y.to(dev) if isinstance(y, torch.Tensor) else y  # labels are small: moved at once
    model._check_y(y, x.shape[:-1])
    xs = x.split(batch_size)  # (B, D) each
    ys = [None] * len(xs) if y is None else y.expand(x.shape[0], model.cond_dim).split(batch_size)  # (C,): for all
    was_training = model.training
    model.eval()
    means = []
    try:
        for xb, yb in zip(xs, ys):
            xb = xb.to(dev)
            model._check_input(xb, yb)  # the model's dtype
            means.append(model.encode(xb, yb)[0])  # (B, Z)
    finally:
        model.train(was_training)
    return torch.cat(means).var(0, unbiased=True)  # (N, Z) -> (Z,)


def active_units(model, x, threshold=0.01, *, y=None):
    """Number of latent dimensions whose activity ``Cov_x(E_q[z_j])`` exceeds ``threshold``
    (Burda et al. 2016, section 5.2; they use 10^-2)."""
    threshold = _check_number("threshold", threshold)
    return int((latent_activity(model, x, y=y) > threshold).sum())
