"""Latent-variable models with a Gaussian encoder and a N(0, I) prior.

Holds:
    _LatentModel -- the estimators every model shares (``elbo``, ``iwae_bound``, ``log_likelihood``,
                    sampling), built on what a model supplies: ``encode(x) -> (mu, logvar)``
                    and ``log_px_z(x, z)``. The exact linear-Gaussian model lives in ``exact.py``.
    VAE          -- Gaussian encoder q(z|x), Bernoulli or Gaussian MLP decoder p(x|z), prior N(0, I);
                    optional conditioning on a label (a conditional VAE).

Shapes: B batch, K importance samples, D data dimension, Z latent dimension.
Papers: Kingma & Welling 2014; Burda et al. 2016 (IWAE, log-likelihood with K = 5000);
Kingma et al. 2016 (free bits); Sohn et al. 2015 (conditional VAE); Higgins et al. 2017 (beta).
"""

import math
import numbers

import torch
import torch.nn as nn

from . import checks
from .losses import (
    bernoulli_log_likelihood,
    free_bits_kl,
    gaussian_kl_per_dim,
    iwae_bound,
    log_normal,
    log_standard_normal,
    reparameterize,
)

__all__ = ["VAE"]

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "gelu": nn.GELU, "softplus": nn.Softplus}


def _mlp(sizes, activation):
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


def _sizes(name, sizes):
    """Hidden layer sizes as a tuple of positive ints; a single int is one layer."""
    if isinstance(sizes, numbers.Integral) and not isinstance(sizes, bool):
        sizes = (sizes,)
    if isinstance(sizes, str) or not hasattr(sizes, "__iter__"):
        raise ValueError(f"{name} must be layer sizes such as (400,) or [400, 200], got {sizes!r}")
    return tuple(checks.integer(name, h) for h in sizes)


class _LatentModel(nn.Module):
    """Estimators shared by every model with a Gaussian q(z|x) and a N(0, I) prior.

    A model supplies ``encode(x, y) -> (mu, logvar)``, ``decode``, ``decode_mean``, ``log_px_z(x, z, y)``
    and ``sample_x_given_z``; everything here is written in terms of those, so a model that overrides
    one of them (on its class or on the instance) is estimated and trained with its own version.
    """

    cond_dim = 0

    def elbo(self, x, beta=1.0, free_bits=0.0, *, y=None, k=1, return_terms=False):
        """Per-example ELBO ``E_q[log p(x|z)] - beta * KL(q(z|x) || p(z))``, shape (B,).

        Args:
            x: (B, D) data.
            beta: weight on the KL term (1 is the true ELBO; Higgins et al. 2017 for beta != 1).
            free_bits: per-dimension KL floor in nats (Kingma et al. 2016); 0 disables it.
            y: (B, cond_dim) labels for a conditional model.
            k: number of reparameterized samples averaged in the reconstruction term.
            return_terms: also return the two terms, ``(elbo, recon, kl)``, each (B,), where ``recon``
                is the k-sample estimate of E_q[log p(x|z)] and ``kl`` the plain KL (before beta or free bits).
        """
        checks.model_input(self, x, y)
        beta, free_bits, k = checks.number("beta", beta), checks.number("free_bits", free_bits), checks.integer("k", k)
        mu, logvar = self.encode(x, y)  # (B, Z) each
        if k == 1:
            recon = self.log_px_z(x, reparameterize(mu, logvar), y)  # (B,)
        else:
            recon = self.log_px_z(x, reparameterize(mu, logvar, k), y).mean(0)  # (K, B) -> (B,)
        kl_per_dim = gaussian_kl_per_dim(mu, logvar)  # (B, Z)
        kl = kl_per_dim.sum(-1)  # (B,)
        elbo = recon - beta * (free_bits_kl(kl_per_dim, free_bits) if free_bits > 0 else kl)
        return (elbo, recon, kl) if return_terms else elbo

    def log_weights(self, x, k, y=None):
        """Log importance weights ``log p(x|z_k) + log p(z_k) - log q(z_k|x)`` for z_k ~ q(z|x): (K, B)."""
        checks.model_input(self, x, y)
        mu, logvar = self.encode(x, y)
        return self._log_weights(x, y, mu, logvar, checks.integer("k", k))[0]

    def _log_weights(self, x, y, mu, logvar, k):
        """``(log_w, log_px_z)``, each (K, B), for k draws from q(z|x) = N(mu, diag(exp(logvar)))."""
        z = reparameterize(mu, logvar, k)  # (K, B, Z)
        log_px_z = self.log_px_z(x, z, y)  # (K, B)
        return log_px_z + log_standard_normal(z) - log_normal(z, mu, logvar), log_px_z

    def iwae_bound(self, x, k, *, y=None, return_terms=False):
        """The K-sample importance-weighted bound of Burda et al. 2016, shape (B,).

        ``return_terms`` also returns ``recon`` (log p(x|z) averaged over the k samples) and ``kl``, each (B,).
        """
        checks.model_input(self, x, y)
        mu, logvar = self.encode(x, y)  # (B, Z) each
        log_w, log_px_z = self._log_weights(x, y, mu, logvar, checks.integer("k", k))  # (K, B) each
        bound = iwae_bound(log_w)
        if not return_terms:
            return bound
        return bound, log_px_z.mean(0), gaussian_kl_per_dim(mu, logvar).sum(-1)

    @torch.no_grad()
    def log_likelihood(self, x, k=5000, chunk=100, *, y=None, batch_size=100, progress=False):
        """Importance-sampled estimate of log p(x) with ``k`` samples from q(z|x), shape (B,).

        The IWAE bound at K = k (Burda et al. 2016 use k = 5000). Memory is bounded: ``batch_size``
        examples and ``chunk`` samples are decoded at once, and the chunks are merged with a running
        ``logaddexp``, which gives the same estimator as one pass over all k samples.
        """
        checks.model_input(self, x, y)
        k, chunk = checks.integer("k", k), checks.integer("chunk", chunk)
        batch_size = checks.integer("batch_size", batch_size)
        if x.dim() == 1:  # one example: its estimate, shape ()
            return self.log_likelihood(x[None], k, chunk, y=None if y is None else y[None], batch_size=1)[0]
        if x.dim() != 2:
            raise ValueError(f"x must have shape (B, {self.x_dim}) or ({self.x_dim},), got {tuple(x.shape)}")
        y = None if y is None else y.expand(x.shape[0], self.cond_dim)  # (B, C)
        starts = range(0, x.shape[0], batch_size)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc=f"log p(x), K={k}")
        out = [x.new_empty(0)]  # an empty batch gives an empty result
        for start in starts:
            xb = x[start : start + batch_size]  # (B, D)
            yb = None if y is None else y[start : start + batch_size]
            mu, logvar = self.encode(xb, yb)  # (B, Z) each
            total = torch.full(xb.shape[:1], -math.inf, device=xb.device, dtype=xb.dtype)  # log sum_k w_k, (B,)
            for done in range(0, k, chunk):
                log_w, _ = self._log_weights(xb, yb, mu, logvar, min(chunk, k - done))  # (chunk, B)
                total = torch.logaddexp(total, torch.logsumexp(log_w, 0))
            out.append(total - math.log(k))
        return torch.cat(out)

    def _prior_sample(self, n, y=None):
        """z ~ N(0, I) on the model's device and dtype, shape (n, Z), checking the labels y for them."""
        n = checks.integer("n", n)
        checks.labels(self, y, (n,))
        p = next(self.parameters())
        return torch.randn(n, self.z_dim, device=p.device, dtype=p.dtype)

    @torch.no_grad()
    def sample(self, n, *, y=None):
        """Draw ``n`` latents from the prior and return the decoder means, shape (n, D)."""
        return self.decode_mean(self._prior_sample(n, y), y)

    @torch.no_grad()
    def ancestral_sample(self, n, *, y=None):
        """The generative story: z ~ p(z), then x ~ p(x|z). Returns ``(z, x)``, shapes (n, Z), (n, D)."""
        z = self._prior_sample(n, y)
        return z, self.sample_x_given_z(z, y)

    @torch.no_grad()
    def reconstruct(self, x, *, y=None):
        """Decoder mean at the posterior mean: a deterministic reconstruction, shape (B, D)."""
        checks.model_input(self, x, y)
        mu, _ = self.encode(x, y)
        return self.decode_mean(mu, y)


class VAE(_LatentModel):
    """A VAE with MLP encoder and decoder (Kingma & Welling 2014).

    Args:
        x_dim: data dimension D (784 for MNIST, 64 for 8x8 digits).
        z_dim: latent dimension Z.
        hidden: encoder hidden sizes; the decoder mirrors them unless ``decoder_hidden`` is given.
        likelihood: ``"bernoulli"`` (decoder outputs logits) or ``"gaussian"`` (decoder outputs means).
        activation: ``"relu"``, ``"tanh"``, ``"elu"``, ``"gelu"``, ``"softplus"`` or an ``nn.Module`` class.
        decoder_hidden: decoder hidden sizes; ``()`` gives a linear (deliberately weak) decoder.
        obs_logvar: Gaussian likelihood only: a fixed observation log-variance, or ``None`` to learn one.
        cond_dim: size of a label vector y fed to encoder and decoder (0: unconditional).
    """

    def __init__(
        self,
        x_dim,
        z_dim,
        hidden=(400,),
        likelihood="bernoulli",
        activation="relu",
        decoder_hidden=None,
        obs_logvar=None,
        cond_dim=0,
    ):
        super().__init__()
        self.x_dim = checks.integer("x_dim", x_dim)
        self.z_dim = checks.integer("z_dim", z_dim)
        self.cond_dim = 0 if cond_dim is None else checks.integer("cond_dim", cond_dim, 0)
        if likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(f"likelihood must be 'bernoulli' or 'gaussian', got {likelihood!r}")
        self.likelihood = likelihood
        if isinstance(activation, str) and activation in _ACTIVATIONS:
            activation = _ACTIVATIONS[activation]
        if isinstance(activation, (str, nn.Module)) or not callable(activation):  # called once per layer
            raise ValueError(
                f"activation must be one of {sorted(_ACTIVATIONS)}, an nn.Module class or a function returning "
                f"a module (e.g. functools.partial(nn.LeakyReLU, 0.2)), got {activation!r}"
            )
        hidden = _sizes("hidden", hidden)
        decoder_hidden = tuple(reversed(hidden)) if decoder_hidden is None else _sizes("decoder_hidden", decoder_hidden)
        c = self.cond_dim
        self.encoder = _mlp((self.x_dim + c, *hidden, 2 * self.z_dim), activation)
        self.decoder = _mlp((self.z_dim + c, *decoder_hidden, self.x_dim), activation)
        if likelihood == "gaussian":
            if obs_logvar is None:
                self.obs_logvar = nn.Parameter(torch.zeros(()))
            else:
                self.register_buffer("obs_logvar", torch.tensor(checks.number("obs_logvar", obs_logvar, -math.inf)))
        elif obs_logvar is not None:
            raise ValueError("obs_logvar is the Gaussian decoder's log-variance: use it with likelihood='gaussian'")

    def _cat(self, t, y):
        if not self.cond_dim or y is None:  # a conditional model without y: the check names it
            checks.labels(self, y, t.shape[:-1])
            return t
        return torch.cat([t, y.to(t.dtype).expand(*t.shape[:-1], y.shape[-1])], -1)

    def encode(self, x, y=None):
        """q(z|x) = N(mu, diag(exp(logvar))): returns ``(mu, logvar)``, each (B, Z)."""
        checks.width("x", x, self.x_dim)
        mu, logvar = self.encoder(self._cat(x, y)).chunk(2, dim=-1)
        return mu, logvar

    def decode(self, z, y=None):
        """Decoder parameters for z of shape (..., Z): logits (Bernoulli) or means (Gaussian), (..., D)."""
        checks.width("z", z, self.z_dim)
        return self.decoder(self._cat(z, y))

    def decode_mean(self, z, y=None):
        """E[x|z] in data space: ``sigmoid(logits)`` or the Gaussian mean, shape (..., D)."""
        out = self.decode(z, y)
        return torch.sigmoid(out) if self.likelihood == "bernoulli" else out

    def log_px_z(self, x, z, y=None):
        """log p(x|z) summed over pixels; z of shape (..., B, Z) gives (..., B)."""
        out = self.decode(z, y)  # (..., B, D)
        if self.likelihood == "bernoulli":
            return bernoulli_log_likelihood(x, out)
        return log_normal(x, out, self.obs_logvar)

    def sample_x_given_z(self, z, y=None):
        """Draw x ~ p(x|z): Bernoulli pixels or Gaussian noise around the decoder mean."""
        out = self.decode(z, y)
        if self.likelihood == "bernoulli":
            return torch.bernoulli(torch.sigmoid(out))
        return out + torch.exp(0.5 * self.obs_logvar) * torch.randn_like(out)

    def forward(self, x, y=None):
        """Encode, sample once, decode: returns ``(decoder_output, mu, logvar)``."""
        checks.model_input(self, x, y)
        mu, logvar = self.encode(x, y)
        return self.decode(reparameterize(mu, logvar), y), mu, logvar
