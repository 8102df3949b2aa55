"""Log densities, the closed-form Gaussian KL, the reparameterization trick and the IWAE bound.

Conventions (stated once for the whole package):
    * A diagonal Gaussian is given by ``(mu, logvar)``: mean and log-variance, same shape.
    * Every density or divergence is summed over the *last* dimension, so a batch of shape
      ``(B, Z)`` gives one number per example, shape ``(B,)``; with K importance samples,
      ``(K, B, Z)`` gives ``(K, B)``. Reduction over the batch is left to the caller.
    * Shape letters: B batch, K samples, D data dimension, Z latent dimension.

Papers: Kingma & Welling 2014 (ELBO, reparameterization, the KL in their Appendix B);
Burda, Grosse & Salakhutdinov 2016 (the importance-weighted bound);
Kingma et al. 2016 (free bits).

Public functions validate their arguments (a ``ValueError`` naming the argument); the models
call the unchecked ``_``-prefixed kernels so the training loop never waits on a check.
"""

import math
import numbers

import torch
import torch.nn.functional as F

__all__ = [
    "LOG_2PI", "gaussian_kl", "gaussian_kl_per_dim", "free_bits_kl", "reparameterize", "log_normal",
    "log_standard_normal", "bernoulli_log_likelihood", "gaussian_log_likelihood", "iwae_bound",
]  # fmt: skip

LOG_2PI = math.log(2 * math.pi)


# ----------------------------------------------------------------------------- argument checks


def _tensor(name, value, *, allow_number=False, finite=True):
    """Return ``value`` as a floating tensor, or raise ValueError naming ``name``."""
    if allow_number and isinstance(value, numbers.Real) and not isinstance(value, bool):
        value = torch.tensor(float(value))
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise ValueError(
            f"{name} must have a floating dtype (e.g. torch.float32), got {value.dtype}; convert with {name}.float()"
        )
    if finite and not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return value


def _check_values(name, x, *, unit_interval=False, why="for a Bernoulli likelihood"):
    """Raise ValueError naming ``name`` if x has NaN/infinite entries or, with ``unit_interval``,
    entries outside [0, 1]. One pass over x (``aminmax``; a NaN shows up in both ends)."""
    if x.numel() == 0:
        return
    lo, hi = (float(v) for v in torch.aminmax(x.detach()))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if unit_interval and (lo < 0 or hi > 1):
        raise ValueError(f"{name} must lie in [0, 1] {why}, got values in [{lo}, {hi}]")


def _at_least_1d(name, value):
    if value.dim() == 0:
        raise ValueError(f"{name} must have at least one dimension (sums run over the last one)")


def _same_shape(name_a, a, name_b, b):
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")


def _broadcastable(*named):
    try:
        return torch.broadcast_shapes(*(t.shape for _, t in named))
    except RuntimeError:
        desc = ", ".join(f"{n} {tuple(t.shape)}" for n, t in named)
        raise ValueError(f"shapes do not broadcast: {desc}") from None


def _scalar(value):
    """A one-element tensor or NumPy array as its Python number; anything else as it is."""
    size = value.numel() if isinstance(value, torch.Tensor) else getattr(value, "size", None)  # NumPy: .size
    return value.item() if size == 1 and hasattr(value, "item") else value


def _check_int(name, value, low=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_k(k):
    return _check_int("k", k)


def _check_real(name, value, where="", within=lambda v: True):
    """float(value) for a finite real number (not a bool; see ``_scalar``) ``where`` ``within`` says."""
    value = _scalar(value)
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not within(value):
        raise ValueError(f"{name} must be a finite number{' ' + where if where else ''}, got {value!r}")
    return float(value)


def _check_number(name, value, low=0.0):
    return _check_real(name, value, "" if low == -math.inf else f">= {low:g}", lambda v: v >= low)


# ----------------------------------------------------------------------------- kernels (unchecked)


def _gaussian_kl_per_dim(mu, logvar, expm1_logvar=None):
    # KL(N(mu, e^logvar) || N(0, 1)) per dimension; expm1 keeps accuracy when logvar ~ 0
    # (a caller that already has expm1(logvar), as the written-out backward does, passes it in)
    em1 = torch.expm1(logvar) if expm1_logvar is None else expm1_logvar
    return 0.5 * (mu.pow(2) + em1 - logvar)


_TINY_LOGVAR = -80.0  # e^-logvar overflows float32 below logvar = -88.7


def _log_normal(x, mu, logvar):
    # (x - mu)^2 e^-logvar, with e^-logvar split as e^-c * f^2 (c = max(logvar, -80)) so that neither
    # overflows: f = e^(-(logvar - c)/2) is exactly 1 unless the variance is tiny (f capped: x == mu gives 0)
    c = logvar.clamp(min=_TINY_LOGVAR)
    f = torch.exp(-0.5 * (logvar - c)).clamp(max=torch.finfo(logvar.dtype).max)
    return -0.5 * (LOG_2PI + logvar + ((x - mu) * f).pow(2) * torch.exp(-c)).sum(-1)


def _log_standard_normal(x):
    return -0.5 * (LOG_2PI + x.pow(2)).sum(-1)


def _bernoulli_log_likelihood(x, logits):
    # log p(x) = x log sigmoid(l) + (1 - x) log sigmoid(-l), computed from logits without overflow
    return -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)


def _reparameterize(mu, logvar, k=None, eps=None):
    std = torch.exp(0.5 * logvar)
    if eps is None:
        shape = mu.shape if k is None else (k, *mu.shape)
        eps = torch.randn(shape, dtype=mu.dtype, device=mu.device)
    return mu + std * eps


def _iwae_bound(log_w):
    return torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])


def _free_bits_kl(kl_per_dim, free_bits):
    # Kingma et al. 2016, eq. (15): sum_j max(lambda, E_batch[KL_j]). Per example we keep KL_j in
    # the dimensions whose batch mean is above the floor and a constant lambda (no gradient) in
    # the others, so that the batch mean of the result is exactly the free-bits objective.
    above = _free_bits_above(kl_per_dim, free_bits)  # (Z,)
    floor = torch.full_like(kl_per_dim, float(free_bits))
    return torch.where(above, kl_per_dim, floor).sum(-1)


def _free_bits_above(kl_per_dim, free_bits):
    """(Z,) bool: the dimensions whose batch-mean KL reaches the floor (the ones that get gradient)."""
    return kl_per_dim.reshape(-1, kl_per_dim.shape[-1]).mean(0) >= free_bits


# ----------------------------------------------------------------------------- public API


def gaussian_kl_per_dim(mu, logvar):
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) for each latent dimension separately.

    Args:
        mu: (..., Z) posterior means.
        logvar: (..., Z) posterior log-variances, same shape as ``mu``.
    Returns:
        (..., Z) tensor ``0.5 * (mu^2 + exp(logvar) - logvar - 1)``.
    """
    mu = _tensor("mu", mu)
    logvar = _tensor("logvar", logvar)
    _same_shape("mu", mu, "logvar", logvar)
    return _gaussian_kl_per_dim(mu, logvar)


def gaussian_kl(mu, logvar):
    """Closed-form KL(N(mu, diag(exp(logvar))) || N(0, I)), summed over the last dimension.

    Derived in {ref}`ch-kl`: ``0.5 * sum_j (mu_j^2 + sigma_j^2 - log sigma_j^2 - 1)``.
    Example: mu = (2, 0), sigma^2 = (0.25, 4) gives exactly 3.125.

    Args:
        mu: (..., Z) means.
        logvar: (..., Z) log-variances, same shape as ``mu``.
    Returns:
        (...,) tensor, one KL per example (shape ``mu.shape[:-1]``).
    """
    mu = _tensor("mu", mu)
    _at_least_1d("mu", mu)
    return gaussian_kl_per_dim(mu, logvar).sum(-1)


def free_bits_kl(kl_per_dim, free_bits):
    """The free-bits KL of Kingma et al. 2016: a floor of ``free_bits`` nats per latent dimension.

    The floor applies to each dimension's KL *averaged over the batch*; dimensions under it
    contribute the constant ``free_bits`` (and no gradient), the others their own KL.

    Args:
        kl_per_dim: (B, Z) per-example, per-dimension KL (see ``gaussian_kl_per_dim``).
        free_bits: the floor lambda >= 0, in nats per dimension.
    Returns:
        (B,) tensor whose batch mean is ``sum_j max(free_bits, mean_b KL[b, j])``.
    """
    kl_per_dim = _tensor("kl_per_dim", kl_per_dim)
    if kl_per_dim.dim() < 2:
        raise ValueError(f"kl_per_dim must have shape (B, Z), got {tuple(kl_per_dim.shape)}")
    return _free_bits_kl(kl_per_dim, _check_number("free_bits", free_bits))


def reparameterize(mu, logvar, k=None, *, eps=None):
    """Draw z ~ N(mu, diag(exp(logvar))) as ``mu + exp(logvar / 2) * eps`` with eps ~ N(0, I).

    The noise is an input, so gradients flow to ``mu`` and ``logvar`` ({ref}`ch-reparam`).

    Args:
        mu: (..., Z) means.
        logvar: (..., Z) log-variances, same shape as ``mu``.
        k: optional number of samples per example; the result then has shape ``(k, *mu.shape)``.
        eps: optional standard-normal noise to use instead of fresh draws (shape of the result).
    Returns:
        ``mu.shape`` or ``(k, *mu.shape)`` samples.
    """
    mu = _tensor("mu", mu)
    logvar = _tensor("logvar", logvar)
    _same_shape("mu", mu, "logvar", logvar)
    if k is not None:
        k = _check_k(k)
    if eps is not None:
        eps = _tensor("eps", eps)
        want = mu.shape if k is None else torch.Size((k, *mu.shape))
        if eps.shape != want:
            raise ValueError(f"eps must have shape {tuple(want)}, got {tuple(eps.shape)}")
    return _reparameterize(mu, logvar, k, eps)


def log_normal(x, mu, logvar):
    """log N(x; mu, diag(exp(logvar))), summed over the last dimension.

    ``x``, ``mu`` and ``logvar`` broadcast against each other, so ``x`` of shape (K, B, Z) can be
    scored under ``mu``/``logvar`` of shape (B, Z). Returns the broadcast shape without its last dim.
    """
    x = _tensor("x", x)
    mu = _tensor("mu", mu, allow_number=True)
    logvar = _tensor("logvar", logvar, allow_number=True)
    shape = _broadcastable(("x", x), ("mu", mu), ("logvar", logvar))
    if len(shape) == 0:
        raise ValueError("x must have at least one dimension (sums run over the last one)")
    return _log_normal(x, mu, logvar)


def log_standard_normal(x):
    """log N(x; 0, I), summed over the last dimension: ``-0.5 * sum(log 2pi + x^2)``."""
    x = _tensor("x", x)
    _at_least_1d("x", x)
    return _log_standard_normal(x)


def bernoulli_log_likelihood(x, logits):
    """log Bernoulli(x; sigmoid(logits)), summed over the last dimension.

    Works from logits (never probabilities) so it stays finite for saturated decoders; ``x`` may
    hold grey levels in [0, 1] (the continuous relaxation used with non-binarized MNIST).

    Args:
        x: (..., D) targets in [0, 1]; broadcasts against ``logits`` (e.g. (B, D) vs (K, B, D)).
        logits: (..., D) decoder outputs before the sigmoid.
    Returns:
        broadcast shape without the last dimension, e.g. (B,) or (K, B).
    """
    x = _tensor("x", x, finite=False)
    _check_values("x", x, unit_interval=True)
    logits = _tensor("logits", logits, finite=False)
    if bool(torch.isnan(logits).any()):
        raise ValueError("logits contains NaN values")
    shape = _broadcastable(("x", x), ("logits", logits))
    if len(shape) == 0:
        raise ValueError("x must have at least one dimension (sums run over the last one)")
    if tuple(shape) != tuple(logits.shape):
        logits = logits.expand(shape)
    saturated = torch.isinf(logits)
    if bool(saturated.any()):  # a logit of +-inf: log p is 0 where x agrees with it, -inf elsewhere
        safe = logits.masked_fill(saturated, 0)
        per_pixel = -F.binary_cross_entropy_with_logits(safe, x.expand(shape), reduction="none")
        limit = torch.where(x == (logits > 0).to(x.dtype), 0.0, -math.inf)
        return torch.where(saturated, limit, per_pixel).sum(-1)
    return _bernoulli_log_likelihood(x, logits)


def gaussian_log_likelihood(x, mean, logvar):
    """log N(x; mean, diag(exp(logvar))) for a Gaussian decoder, summed over the last dimension.

    ``logvar`` may be a float (a fixed observation variance). With a fixed variance this is
    ``-||x - mean||^2 / (2 sigma^2)`` plus a constant: squared error in disguise ({ref}`ch-kl`).
    """
    x = _tensor("x", x)
    mean = _tensor("mean", mean)
    logvar = _tensor("logvar", logvar, allow_number=True)
    shape = _broadcastable(("x", x), ("mean", mean), ("logvar", logvar))
    if len(shape) == 0:
        raise ValueError("x must have at least one dimension (sums run over the last one)")
    return _log_normal(x, mean, logvar.to(mean))


def iwae_bound(log_w):
    """The importance-weighted bound ``log (1/K) sum_k w_k`` from log-weights, over dimension 0.

    Computed with ``logsumexp`` so log-weights near -1e4 and K = 5000 do not underflow.
    With K = 1 it is the single-sample ELBO ({ref}`ch-iwae`).

    Args:
        log_w: (K, B) log importance weights ``log p(x, z_k) - log q(z_k | x)``.
    Returns:
        (B,) tensor (shape ``log_w.shape[1:]``).
    """
    log_w = _tensor("log_w", log_w, finite=False)
    _at_least_1d("log_w", log_w)
    if bool(torch.isnan(log_w).any() | torch.isposinf(log_w).any()):
        raise ValueError("log_w contains NaN or +inf values")
    if log_w.shape[0] < 1:
        raise ValueError("log_w needs at least one sample along dimension 0 (K >= 1)")
    return _iwae_bound(log_w)
