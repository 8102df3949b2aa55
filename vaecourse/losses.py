"""Log densities, the closed-form Gaussian KL, the reparameterization trick and the IWAE bound.

Conventions (stated once for the whole package):
    * A diagonal Gaussian is given by ``(mu, logvar)``: its mean and log-variance, of the same shape.
    * Every density or divergence is summed over the *last* dimension, so a batch of shape (B, Z)
      gives one number per example, shape (B,); with K samples, (K, B, Z) gives (K, B).
      Reduction over the batch is left to the caller.
    * Shape letters: B batch, K samples, D data dimension, Z latent dimension.

Each function checks its arguments' types and shapes (cheap, every call); it does not scan their
values, which is done once where data enters the package (``vc.train``, the models' estimators).

Papers: Kingma & Welling 2014 (ELBO, reparameterization; the KL in their Appendix B);
Burda, Grosse & Salakhutdinov 2016 (the importance-weighted bound); Kingma et al. 2016 (free bits).
"""

import math

import torch
import torch.nn.functional as F

from . import checks

__all__ = [
    "LOG_2PI", "gaussian_kl", "gaussian_kl_per_dim", "free_bits_kl", "reparameterize", "log_normal",
    "log_standard_normal", "bernoulli_log_likelihood", "gaussian_log_likelihood", "iwae_bound",
]  # fmt: skip

LOG_2PI = math.log(2 * math.pi)


def gaussian_kl_per_dim(mu, logvar):
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) for each latent dimension separately.

    Args:
        mu: (..., Z) means.
        logvar: (..., Z) log-variances, same shape as ``mu``.
    Returns:
        (..., Z) tensor ``0.5 * (mu^2 + sigma^2 - 1 - log sigma^2)``.
    """
    checks.same_shape("mu", checks.tensor("mu", mu), "logvar", checks.tensor("logvar", logvar))
    # sigma^2 - 1 is expm1(logvar): exact where sigma^2 is close to 1, so a KL near 0 never comes out negative
    return 0.5 * (mu.pow(2) + torch.expm1(logvar) - logvar)


def gaussian_kl(mu, logvar):
    """Closed-form KL(N(mu, diag(exp(logvar))) || N(0, I)), summed over the last dimension.

    Derived in Chapter 3: ``0.5 * sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2)``.
    Example: mu = (2, 0), sigma^2 = (0.25, 4) gives exactly 3.125.

    Args:
        mu: (..., Z) means.
        logvar: (..., Z) log-variances, same shape as ``mu``.
    Returns:
        (...,) tensor, one KL per example.
    """
    checks.same_shape("mu", checks.tensor("mu", mu), "logvar", checks.tensor("logvar", logvar))
    checks.at_least_1d("mu", mu)
    # Kingma & Welling 2014, Appendix B; expm1(logvar) = sigma^2 - 1 without cancellation near sigma^2 = 1
    return 0.5 * (mu.pow(2) + torch.expm1(logvar) - logvar).sum(-1)


def free_bits_kl(kl_per_dim, free_bits):
    """The free-bits KL of Kingma et al. 2016: a floor of ``free_bits`` nats per latent dimension.

    The floor applies to each dimension's KL *averaged over the batch*; dimensions under it
    contribute the constant ``free_bits`` (and no gradient), the others their own KL.

    Args:
        kl_per_dim: (B, Z) per-example, per-dimension KL (see ``gaussian_kl_per_dim``), or (Z,) for one example.
        free_bits: the floor lambda >= 0, in nats per dimension.
    Returns:
        (B,) tensor whose batch mean is ``sum_j max(free_bits, mean_b KL[b, j])``.
    """
    checks.at_least_1d("kl_per_dim", checks.tensor("kl_per_dim", kl_per_dim))
    free_bits = checks.number("free_bits", free_bits)
    # Kingma et al. 2016, eq. (15): sum_j max(lambda, E_batch[KL_j]). A dimension whose batch mean reaches
    # lambda keeps each example's KL_j; the others count the constant lambda for every example.
    above = kl_per_dim.reshape(-1, kl_per_dim.shape[-1]).mean(0) >= free_bits  # (Z,): one example is a batch of 1
    return torch.where(above, kl_per_dim, torch.full_like(kl_per_dim, free_bits)).sum(-1)


def reparameterize(mu, logvar, k=None, *, eps=None):
    """Draw z ~ N(mu, diag(exp(logvar))) as ``mu + exp(logvar / 2) * eps`` with eps ~ N(0, I).

    The noise is an input, so gradients flow to ``mu`` and ``logvar`` (Chapter 4).

    Args:
        mu: (..., Z) means.
        logvar: (..., Z) log-variances, same shape as ``mu``.
        k: optional number of samples per example; the result then has shape ``(k, *mu.shape)``.
        eps: optional standard-normal noise to use instead of fresh draws (the shape of the result).
    Returns:
        ``mu.shape`` or ``(k, *mu.shape)`` samples.
    """
    checks.same_shape("mu", checks.tensor("mu", mu), "logvar", checks.tensor("logvar", logvar))
    shape = mu.shape if k is None else torch.Size((checks.integer("k", k), *mu.shape))
    if eps is None:
        eps = torch.randn(shape, dtype=mu.dtype, device=mu.device)
    elif checks.tensor("eps", eps).shape != shape:
        raise ValueError(f"eps must have shape {tuple(shape)}, got {tuple(eps.shape)}")
    std = torch.exp(0.5 * logvar)
    return mu + std * eps


def log_normal(x, mu, logvar):
    """log N(x; mu, diag(exp(logvar))), summed over the last dimension.

    ``x``, ``mu`` and ``logvar`` broadcast against each other, so ``x`` of shape (K, B, Z) can be
    scored under ``mu``/``logvar`` of shape (B, Z); ``mu`` and ``logvar`` may be numbers.
    Returns the broadcast shape without its last dimension.
    """
    x = checks.tensor("x", x)
    mu = checks.tensor("mu", mu, allow_number=True)
    logvar = checks.tensor("logvar", logvar, allow_number=True)
    checks.broadcast_shape(x=x, mu=mu, logvar=logvar)
    # -1/2 sum_j [log 2pi + log sigma_j^2 + ((x_j - mu_j) / sigma_j)^2]
    standardized = (x - mu) * torch.exp(-0.5 * logvar)
    return -0.5 * (LOG_2PI + logvar + standardized.pow(2)).sum(-1)


def log_standard_normal(x):
    """log N(x; 0, I), summed over the last dimension: ``-0.5 * sum_j (log 2pi + x_j^2)``."""
    checks.at_least_1d("x", checks.tensor("x", x))
    return -0.5 * (LOG_2PI + x.pow(2)).sum(-1)


def bernoulli_log_likelihood(x, logits):
    """log Bernoulli(x; sigmoid(logits)), summed over the last dimension.

    Works from logits (never probabilities), so it stays finite for saturated decoders. For binary x
    it is a log-probability; for grey levels in (0, 1) it is a score, not a normalized density
    (the continuous Bernoulli of Loaiza-Ganem & Cunningham 2019 adds the missing constant), so the
    "nats" and ELBOs it gives on grey levels bound no log-likelihood (Chapter 1): binarize first
    where likelihoods are compared.

    Args:
        x: (..., D) targets in [0, 1]; broadcasts against ``logits`` (e.g. (B, D) vs (K, B, D)).
        logits: (..., D) decoder outputs before the sigmoid.
    Returns:
        broadcast shape without the last dimension, e.g. (B,) or (K, B).
    """
    checks.broadcast_shape(x=checks.tensor("x", x), logits=checks.tensor("logits", logits))
    x, logits = torch.broadcast_tensors(x, logits)
    # x log sigmoid(l) + (1 - x) log sigmoid(-l) = x l - log(1 + e^l): minus torch's binary cross-entropy
    # with logits, which computes it in one fused pass without overflow
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


def gaussian_log_likelihood(x, mean, logvar):
    """log N(x; mean, diag(exp(logvar))) for a Gaussian decoder, summed over the last dimension.

    ``logvar`` may be a number (a fixed observation variance). With a fixed variance this is
    ``-||x - mean||^2 / (2 sigma^2)`` plus a constant: squared error in disguise (Chapter 3).
    """
    return log_normal(x, checks.tensor("mean", mean), logvar)


def iwae_bound(log_w):
    """The importance-weighted bound ``log (1/K) sum_k w_k`` from log-weights, over dimension 0.

    With K = 1 it is the single-sample ELBO (Chapter 6).

    Args:
        log_w: (K, B) log importance weights ``log p(x, z_k) - log q(z_k | x)``.
    Returns:
        (B,) tensor (shape ``log_w.shape[1:]``).
    """
    checks.at_least_1d("log_w", checks.tensor("log_w", log_w))
    if log_w.shape[0] < 1:
        raise ValueError("log_w needs at least one sample along dimension 0 (K >= 1)")
    # logsumexp subtracts the largest log-weight first, so weights like e^-10000 do not underflow to 0
    return torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])
