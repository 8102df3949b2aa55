"""An exactly solvable VAE, so that every bound can be checked against the truth.

Holds:
    LinearGaussianVAE -- p(z) = N(0, I), p(x|z) = N(W z + b, s^2 I), q(z|x) = N(A x + c, diag(v)).
                         log p(x), p(z|x), KL(q || p(z|x)) and the ELBO itself are closed forms.

Used in Chapter 2 (the gap is exactly KL(q || p(z|x))) and Chapter 6 (IWAE approaches
log p(x) as K grows), and by the tests. Shapes: B batch, D data dimension, Z latent dimension.
"""

import math
import numbers

import torch
import torch.nn as nn

from . import checks
from .losses import gaussian_kl_per_dim, log_normal
from .models import _LatentModel

__all__ = ["LinearGaussianVAE"]


class LinearGaussianVAE(_LatentModel):
    """An exactly solvable VAE: p(z) = N(0, I), p(x|z) = N(W z + b, s^2 I), q(z|x) = N(A x + c, diag(v)).

    The marginal p(x) = N(b, W W^T + s^2 I) and the posterior p(z|x) are Gaussian in closed form, so
    ``log_marginal``, ``posterior`` and ``kl_to_posterior`` are exact and the identity
    log p(x) = ELBO + KL(q(z|x) || p(z|x)) can be checked to float precision (Chapter 2).
    The encoder is diagonal, the true posterior is not: the gap is real, and IWAE closes it.

    Args:
        x_dim, z_dim: D and Z.
        obs_var: the observation variance s^2 (> 0).
        W: optional (D, Z) loading matrix; random N(0, 1) entries otherwise.
        b: optional (D,) offset; zeros otherwise.
    """

    def __init__(self, x_dim, z_dim, obs_var=1.0, W=None, b=None):
        super().__init__()
        self.x_dim = checks.integer("x_dim", x_dim)
        self.z_dim = checks.integer("z_dim", z_dim)
        if isinstance(obs_var, bool) or not isinstance(obs_var, numbers.Real) or not obs_var > 0 or obs_var == math.inf:
            raise ValueError(f"obs_var must be a positive, finite variance, got {obs_var!r}")
        W = torch.randn(self.x_dim, self.z_dim) if W is None else torch.as_tensor(W, dtype=torch.float32)
        b = torch.zeros(self.x_dim) if b is None else torch.as_tensor(b, dtype=torch.float32)
        if W.shape != (self.x_dim, self.z_dim):
            raise ValueError(f"W must have shape ({self.x_dim}, {self.z_dim}), got {tuple(W.shape)}")
        if b.shape != (self.x_dim,):
            raise ValueError(f"b must have shape ({self.x_dim},), got {tuple(b.shape)}")
        checks.values("W", W)
        checks.values("b", b)
        self.W = nn.Parameter(W.clone())
        self.b = nn.Parameter(b.clone())
        self.obs_logvar = nn.Parameter(torch.tensor(math.log(obs_var)))
        self.enc = nn.Linear(self.x_dim, self.z_dim)  # mean of q(z|x)
        self.enc_logvar = nn.Parameter(torch.zeros(self.z_dim))  # q's variances do not depend on x

    def encode(self, x, y=None):
        checks.width("x", x, self.x_dim)
        mu = self.enc(x)  # (B, Z)
        return mu, self.enc_logvar.expand_as(mu)

    def decode(self, z, y=None):
        checks.width("z", z, self.z_dim)
        return z @ self.W.T + self.b  # (..., D)

    decode_mean = decode

    def log_px_z(self, x, z, y=None):
        return log_normal(x, self.decode(z), self.obs_logvar)

    def sample_x_given_z(self, z, y=None):
        mean = self.decode(z)
        return mean + torch.exp(0.5 * self.obs_logvar) * torch.randn_like(mean)

    def _posterior_precision(self):
        s2 = torch.exp(self.obs_logvar)
        return torch.eye(self.z_dim, dtype=self.W.dtype, device=self.W.device) + self.W.T @ self.W / s2

    def marginal(self):
        """The exact marginal p(x) as a ``torch.distributions.MultivariateNormal``."""
        cov = self.W @ self.W.T + torch.exp(self.obs_logvar) * torch.eye(self.x_dim, device=self.W.device)
        return torch.distributions.MultivariateNormal(self.b, covariance_matrix=cov)

    def log_marginal(self, x):
        """Exact log p(x), shape (B,)."""
        checks.model_input(self, x)
        if x.numel() == 0:  # torch.distributions cannot take an empty batch
            return x.new_zeros(x.shape[:-1])
        return self.marginal().log_prob(x)

    def _posterior(self, x):
        checks.model_input(self, x)
        prec = self._posterior_precision()  # (Z, Z)
        cov = torch.linalg.inv(prec)
        mean = (x - self.b) @ self.W @ cov / torch.exp(self.obs_logvar)  # (B, Z)
        return mean, cov, prec

    def posterior(self, x):
        """Exact p(z|x) = N(mean, cov): returns ``(mean (B, Z), cov (Z, Z))``; cov does not depend on x."""
        return self._posterior(x)[:2]

    def kl_to_posterior(self, x):
        """Exact KL(q(z|x) || p(z|x)) between the diagonal encoder and the full posterior, shape (B,)."""
        m, cov, prec = self._posterior(x)
        mu, logvar = self.encode(x)
        d = mu - m  # (B, Z)
        trace = (torch.diagonal(prec) * torch.exp(logvar)).sum(-1)
        maha = ((d @ prec) * d).sum(-1)
        return 0.5 * (trace + maha - self.z_dim + torch.logdet(cov) - logvar.sum(-1))

    def exact_elbo(self, x):
        """The ELBO with its expectation done in closed form (no sampling), shape (B,)."""
        checks.model_input(self, x)
        mu, logvar = self.encode(x)
        s2 = torch.exp(self.obs_logvar)
        # E_q ||x - W z - b||^2 = ||x - W mu - b||^2 + sum_j v_j ||W[:, j]||^2
        sq = (x - self.decode(mu)).pow(2).sum(-1) + (torch.exp(logvar) * self.W.pow(2).sum(0)).sum(-1)
        recon = -0.5 * (self.x_dim * (math.log(2 * math.pi) + self.obs_logvar) + sq / s2)
        return recon - gaussian_kl_per_dim(mu, logvar).sum(-1)

    @torch.no_grad()
    def set_optimal_encoder(self):
        """Set q(z|x) to the best diagonal Gaussian: the exact posterior mean and variances
        1 / diag(precision), which minimise KL(q || p(z|x)) among diagonal q."""
        prec = self._posterior_precision()
        gain = self.W @ torch.linalg.inv(prec) / torch.exp(self.obs_logvar)  # (D, Z): mean = (x - b) @ gain
        self.enc.weight.copy_(gain.T)
        self.enc.bias.copy_(-self.b @ gain)
        self.enc_logvar.copy_(-torch.log(torch.diagonal(prec)))
        return self
