"""Latent-variable models with a Gaussian encoder and a N(0, I) prior.

Holds:
    _LatentModel -- the estimators every model shares (``elbo``, ``iwae_bound``, ``log_likelihood``,
                    sampling), built on two pieces a model supplies: ``encode(x) -> (mu, logvar)``
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

from .inputs import InputChecks, _check_width
from .losses import (
    _bernoulli_log_likelihood,
    _check_int,
    _check_k,
    _check_number,
    _free_bits_kl,
    _gaussian_kl_per_dim,
    _iwae_bound,
    _log_normal,
    _log_standard_normal,
    _reparameterize,
    _scalar,
)

__all__ = ["VAE"]

# On a CPU, log_likelihood decodes at most this many output floats at once (4 MiB): with the layers'
# other tensors the pieces stay in cache, which ran 1.3-2x faster than chunk=1000 on 2 AMD cores
# (2^19 to 2^20 did best; 2^21 was slower for chapter 6's digits model), with the same draws.
CPU_PIECE_FLOATS = 2**20

# log_likelihood's estimate must not depend on ``chunk``. It draws its noise in draws of a size fixed
# by the batch alone (about NOISE_DRAW_FLOATS values, never by chunk), then decodes it in pieces: a
# GPU's draws depend on the shape drawn, so the draws themselves must not change with chunk. On a
# CPU, torch's normal sampler fills a tensor in blocks of 16 values and redraws the last 16 of a size
# that is not a multiple of 16, so every draw holds whole blocks (DRAW_BLOCK): then the draws equal
# one draw of their total size, as the earlier piece-sized draws did (the same values, the same
# generator state after).
DRAW_BLOCK = 16
NOISE_DRAW_FLOATS = 2**18

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "gelu": nn.GELU, "softplus": nn.Softplus}


def _noise_pieces(k, piece, mu):
    """``k`` standard normal draws like ``mu`` (B, Z), in consecutive pieces of ``piece`` samples.

    The generator is called in draws whose sizes depend on k, B and Z only (see NOISE_DRAW_FLOATS),
    so the values, and the generator's state after, are the same for every ``piece``.
    """
    b, z_dim = mu.shape
    unit = DRAW_BLOCK // math.gcd(b * z_dim, DRAW_BLOCK)  # samples whose noise fills whole blocks
    draw = max(1, NOISE_DRAW_FLOATS // (b * z_dim * unit)) * unit  # samples per draw
    left, drawn = mu.new_empty(0, b, z_dim), 0  # drawn but not yet handed out; samples drawn so far
    for done in range(0, k, piece):
        n = min(piece, k - done)
        parts = [left]
        while sum(p.shape[0] for p in parts) < n:
            m = min(draw, -(-(k - drawn) // unit) * unit)  # the last draw: what is left, in whole blocks
            parts.append(torch.randn(m, b, z_dim, device=mu.device, dtype=mu.dtype))  # (m, B, Z)
            drawn += m
        eps = parts[0] if len(parts) == 1 else torch.cat(parts)
        yield eps[:n]
        left = eps[n:]


def _mlp(sizes, activation):
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


def _positive_int(name, value):
    return _check_int(name, value, 1)


def _sizes(name, sizes):
    """Hidden layer sizes as a tuple of positive ints; a single int is one layer."""
    if isinstance(sizes, numbers.Integral) and not isinstance(sizes, bool):
        sizes = (sizes,)
    if isinstance(sizes, str) or not hasattr(sizes, "__iter__"):
        raise ValueError(f"{name} must be layer sizes such as (400,) or [400, 200], got {sizes!r}")
    return tuple(_positive_int(name, _scalar(h)) for h in sizes)


class _LatentModel(InputChecks, nn.Module):
    """Estimators shared by every model with a Gaussian q(z|x) and a N(0, I) prior."""

    cond_dim = 0

    def log_joint_terms(self, x, z, y=None):
        """log p(x|z) and log p(z) for z of shape (..., B, Z): each of shape (..., B)."""
        return self.log_px_z(x, z, y), _log_standard_normal(z)

    def _sampled_log_weights(self, x, y, mu, logvar, k, eps=None):
        """Draw z_k ~ q(z|x) (from the noise ``eps``, (K, B, Z), if given) and return
        ``(log_w, log_px_z)``, each (K, B)."""
        z = _reparameterize(mu, logvar, k, eps)  # (K, B, Z)
        log_px_z, log_pz = self.log_joint_terms(x, z, y)
        return log_px_z + log_pz - _log_normal(z, mu, logvar), log_px_z

    def _prior_sample(self, n, y=None):
        """z ~ N(0, I) on the model's device and dtype, shape (n, Z); checks the labels y for them."""
        n = _positive_int("n", n)
        self._check_y(y, (n,))
        p = next(self.parameters())
        return torch.randn(n, self.z_dim, device=p.device, dtype=p.dtype)

    def objective_terms(self, x, y, objective, k, beta, free_bits):
        """The training objective and its logged pieces, each (B,): ``(objective, recon, kl)``.

        ``objective`` is ``"elbo"`` (recon - beta * KL, with free bits if > 0) or ``"iwae"`` (the
        k-sample bound; recon is then averaged over the k samples). Used by ``vc.train``.
        """
        mu, logvar = self.encode(x, y)  # (B, Z) each
        kl_d = _gaussian_kl_per_dim(mu, logvar)  # (B, Z)
        kl = kl_d.sum(-1)
        if objective == "iwae":
            log_w, log_px_z = self._sampled_log_weights(x, y, mu, logvar, k)  # (K, B) each
            return _iwae_bound(log_w), log_px_z.mean(0), kl
        z = _reparameterize(mu, logvar, k if k > 1 else None)  # (B, Z) or (K, B, Z)
        recon = self.log_px_z(x, z, y)
        if k > 1:
            recon = recon.mean(0)
        penalty = _free_bits_kl(kl_d, free_bits) if free_bits > 0 else kl
        return recon - beta * penalty, recon, kl

    def elbo(self, x, beta=1.0, free_bits=0.0, *, y=None, k=1):
        """Per-example ELBO ``E_q[log p(x|z)] - beta * KL(q(z|x) || p(z))``, shape (B,).

        Args:
            x: (B, D) data.
            beta: weight on the KL term (1 is the true ELBO; Higgins et al. 2017 for beta != 1).
            free_bits: per-dimension KL floor in nats (Kingma et al. 2016); 0 disables it.
            y: (B, cond_dim) labels for a conditional model.
            k: number of reparameterized samples averaged in the reconstruction term.
        """
        self._check_input(x, y)
        beta, free_bits = _check_number("beta", beta), _check_number("free_bits", free_bits)
        return self.objective_terms(x, y, "elbo", _check_k(k), beta, free_bits)[0]

    def log_weights(self, x, k, y=None):
        """Log importance weights ``log p(x, z_k) - log q(z_k|x)`` for z_k ~ q(z|x): shape (K, B)."""
        self._check_input(x, y)
        mu, logvar = self.encode(x, y)
        return self._sampled_log_weights(x, y, mu, logvar, _check_k(k))[0]

    def iwae_bound(self, x, k, *, y=None):
        """The K-sample importance-weighted bound of Burda et al. 2016, shape (B,)."""
        return _iwae_bound(self.log_weights(x, k, y))

    @torch.no_grad()
    def log_likelihood(self, x, k=5000, chunk=500, *, y=None, batch_size=100, progress=False):
        """Importance-sampled estimate of log p(x) with ``k`` samples, shape (B,).

        Memory is bounded: at most ``chunk`` samples for at most ``batch_size`` examples are decoded
        at once, and the chunks are merged with a running ``logaddexp``; the result does not depend
        on ``chunk``: with the same seed, every chunk gives the same estimate to float rounding (see
        ``NOISE_DRAW_FLOATS``). On a CPU the chunks are also cut so that a piece's decoder output
        (samples x examples x D) stays within ``CPU_PIECE_FLOATS``, which fits in cache.
        """
        self._check_input(x, y)
        k = _check_k(k)
        chunk = _positive_int("chunk", chunk)
        batch_size = _positive_int("batch_size", batch_size)
        if x.dim() == 1:  # one example: its estimate, shape ()
            return self.log_likelihood(x[None], k, chunk, y=None if y is None else y[None], batch_size=1)[0]
        if x.dim() != 2:
            raise ValueError(f"x must have shape (B, {self.x_dim}) or ({self.x_dim},), got {tuple(x.shape)}")
        y = None if y is None else y.expand(x.shape[0], self.cond_dim)  # (B, C), sliced with x below
        out = [x.new_empty(0)]  # an empty batch gives an empty result
        starts = range(0, x.shape[0], batch_size)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc=f"log p(x), K={k}")
        for start in starts:
            xb = x[start : start + batch_size]
            yb = None if y is None else y[start : start + batch_size]
            mu, logvar = self.encode(xb, yb)  # (B, Z) each, once for all the pieces
            total = torch.full(xb.shape[:1], -math.inf, device=xb.device, dtype=xb.dtype)  # (B,)
            piece = self._samples_at_once(chunk, xb.shape[0], xb.device)  # samples decoded at once
            for eps in _noise_pieces(k, piece, mu):  # (piece, B, Z), the last one shorter
                lw, _ = self._sampled_log_weights(xb, yb, mu, logvar, None, eps)  # (piece, B)
                total = torch.logaddexp(total, torch.logsumexp(lw, 0))
            out.append(total - math.log(k))
        return torch.cat(out)

    def _samples_at_once(self, chunk, examples, device):
        """How many samples ``log_likelihood`` decodes at once for ``examples`` examples: ``chunk``,
        and on a CPU no more than keeps their decoder output within ``CPU_PIECE_FLOATS``."""
        if device.type != "cpu":
            return chunk
        return max(1, min(chunk, CPU_PIECE_FLOATS // (examples * self.x_dim)))

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
        self._check_input(x, y)
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
        self.x_dim = _positive_int("x_dim", x_dim)
        self.z_dim = _positive_int("z_dim", z_dim)
        self.cond_dim = 0 if cond_dim is None else _check_int("cond_dim", _scalar(cond_dim), 0)
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
                self.register_buffer("obs_logvar", torch.tensor(_check_number("obs_logvar", obs_logvar, -math.inf)))
        elif obs_logvar is not None:
            raise ValueError("obs_logvar is the Gaussian decoder's log-variance: use it with likelihood='gaussian'")

    def _cat(self, t, y):
        if not self.cond_dim or y is None:  # a conditional model without y: the check names it
            self._check_y(y, t.shape[:-1])
            return t
        return torch.cat([t, y.to(t.dtype).expand(*t.shape[:-1], y.shape[-1])], -1)

    def encode(self, x, y=None):
        """q(z|x) = N(mu, diag(exp(logvar))): returns ``(mu, logvar)``, each (B, Z)."""
        _check_width("x", x, self.x_dim)
        mu, logvar = self.encoder(self._cat(x, y)).chunk(2, dim=-1)
        return mu, logvar

    def decode(self, z, y=None):
        """Decoder parameters for z of shape (..., Z): logits (Bernoulli) or means (Gaussian), (..., D)."""
        _check_width("z", z, self.z_dim)
        return self.decoder(self._cat(z, y))

    def decode_mean(self, z, y=None):
        """E[x|z] in data space: ``sigmoid(logits)`` or the Gaussian mean, shape (..., D)."""
        out = self.decode(z, y)
        return torch.sigmoid(out) if self.likelihood == "bernoulli" else out

    def log_px_z(self, x, z, y=None):
        """log p(x|z) summed over pixels; z of shape (..., B, Z) gives (..., B)."""
        out = self.decode(z, y)  # (..., B, D)
        if self.likelihood == "bernoulli":
            return _bernoulli_log_likelihood(x, out)
        return _log_normal(x, out, self.obs_logvar)

    def sample_x_given_z(self, z, y=None):
        """Draw x ~ p(x|z): Bernoulli pixels or Gaussian noise around the decoder mean."""
        out = self.decode(z, y)
        if self.likelihood == "bernoulli":
            return torch.bernoulli(torch.sigmoid(out))
        return out + torch.exp(0.5 * self.obs_logvar) * torch.randn_like(out)

    def forward(self, x, y=None):
        """Encode, sample once, decode: returns ``(decoder_output, mu, logvar)``."""
        self._check_input(x, y)
        mu, logvar = self.encode(x, y)
        return self.decode(_reparameterize(mu, logvar), y), mu, logvar
