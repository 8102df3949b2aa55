"""Backpropagation written out for the common training case, so that ``vc.train`` spends its time
in matrix products instead of autograd bookkeeping.

The case: a ``vc.VAE`` whose encoder and decoder are MLPs (ReLU or tanh), with a Bernoulli decoder
and no labels, trained on the single-sample ELBO with a KL weight beta (fixed or annealed). With
logits l, z = mu + sigma * eps (sigma = exp(logvar / 2)) and the summed batch loss

    L = sum_b [ BCE(l_b, x_b) + beta * KL_b ],   KL_b = 1/2 sum_j (mu^2 + e^logvar - 1 - logvar),

the gradients have short closed forms:

    dL/dl       = sigmoid(l) - x                                       (B, D)
    dL/dmu      = dL/dz + beta * mu                                    (B, Z)
    dL/dlogvar  = dL/dz * eps * sigma / 2 + beta * (e^logvar - 1) / 2  (B, Z)
    linear layer a_out = a_in W^T + b:  dW = g^T a_in,  db = sum_b g,  g_in = g W
    ReLU: g * (a_out > 0);  tanh: g * (1 - a_out^2)

``vc.train`` minimizes the batch *mean* L / B; the 1/B rides along as the ``alpha`` of the
weight-gradient matmuls, so no (B, D) tensor is ever rescaled. Every other case (IWAE, k > 1, free
bits, Gaussian decoders, labels, other activations, frozen parameters) goes through autograd.
``tests/test_backprop.py`` checks these gradients against autograd's on the same noise.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.adam import adam

from .losses import _gaussian_kl_per_dim

__all__ = ["ManualELBO", "FusedAdam"]

_ACTIVATIONS = (nn.ReLU, nn.Tanh)


def _layers(seq):
    """[(linear, activation or None), ...] for Linear, act, Linear, ..., Linear; None if not that shape."""
    mods = list(seq)
    linears, acts = mods[0::2], mods[1::2]
    if not linears or len(acts) != len(linears) - 1:
        return None
    if any(type(m) is not nn.Linear or m.bias is None for m in linears):
        return None
    if any(type(a) not in _ACTIVATIONS for a in acts):
        return None
    return list(zip(linears, [*acts, None]))


def _activate_(a, act):
    return a.relu_() if type(act) is nn.ReLU else a.tanh_()


def _activation_backward(g, a_out, act):
    # the kernels autograd itself uses: one pass each, no mask tensor
    if type(act) is nn.ReLU:
        return torch.ops.aten.threshold_backward(g, a_out, 0)
    return torch.ops.aten.tanh_backward(g, a_out)


def _forward(layers, a):
    """Run an MLP, keeping each linear layer's input (the previous activation's output)."""
    inputs = []
    for lin, act in layers:
        inputs.append(a)
        a = torch.addmm(lin.bias, a, lin.weight.t())
        if act is not None:
            a = _activate_(a, act)
    return a, inputs


def _backward(layers, inputs, g, alpha, input_grad):
    """Write alpha * dL/dW and alpha * dL/db into ``.grad``; return dL/d(input) if ``input_grad``."""
    for i in reversed(range(len(layers))):
        lin, _ = layers[i]
        a_in = inputs[i]
        lin.weight.grad.addmm_(g.t(), a_in, beta=0, alpha=alpha)  # (out, in)
        torch.sum(g, 0, out=lin.bias.grad).mul_(alpha)  # (out,)
        if i == 0 and not input_grad:
            return None
        g = g.mm(lin.weight)  # (B, in)
        if i > 0:
            g = _activation_backward(g, a_in, layers[i - 1][1])
    return g


class ManualELBO:
    """One training step's forward and backward for the case above; gradients land in ``p.grad``."""

    def __init__(self, model):
        self.enc, self.dec = _layers(model.encoder), _layers(model.decoder)
        self.z_dim = model.z_dim
        for p in model.parameters():
            if p.grad is None or p.grad.shape != p.shape:
                p.grad = torch.zeros_like(p)

    @classmethod
    def for_model(cls, model, objective="elbo", k=1, free_bits=0.0):
        """A ``ManualELBO`` for ``model`` if the written-out gradients apply, else ``None``."""
        from .models import VAE

        if type(model) is not VAE or objective != "elbo" or k != 1 or free_bits > 0:
            return None
        if model.likelihood != "bernoulli" or model.cond_dim:
            return None
        if not all(p.requires_grad for p in model.parameters()):
            return None
        if _layers(model.encoder) is None or _layers(model.decoder) is None:
            return None
        return cls(model)

    @torch.no_grad()
    def step(self, x, beta=1.0, eps=None):
        """Gradients of the batch-mean loss ``-mean_b ELBO_beta(x_b)`` into ``.grad``.

        Args:
            x: (B, D) batch; beta: KL weight; eps: (B, Z) noise (drawn from N(0, I) if None).
        Returns:
            (3,) tensor: the batch sums of the loss, of log p(x|z) and of KL(q||p), as the
            autograd path of ``vc.train`` logs them.
        """
        b, z_dim = x.shape[0], self.z_dim
        e, enc_in = _forward(self.enc, x)  # (B, 2Z)
        mu, logvar = e[:, :z_dim], e[:, z_dim:]
        std = torch.exp(0.5 * logvar)
        if eps is None:
            eps = torch.randn_like(std)
        z = torch.addcmul(mu, std, eps)  # (B, Z)
        logits, dec_in = _forward(self.dec, z)  # (B, D)

        # sum_b log p(x_b|z_b) = sum x * l - softplus(l): a dot product and one elementwise pass
        recon = torch.dot(x.reshape(-1), logits.reshape(-1)) - F.softplus(logits).sum()
        kl = _gaussian_kl_per_dim(mu, logvar).sum()
        em1 = torch.expm1(logvar)  # for dKL/dlogvar

        g = torch.sigmoid(logits).sub_(x)  # dL/dlogits, (B, D)
        gz = _backward(self.dec, dec_in, g, 1.0 / b, input_grad=True)  # (B, Z)
        ge = torch.empty_like(e)  # dL/d(mu, logvar), (B, 2Z)
        torch.add(gz, mu, alpha=beta, out=ge[:, :z_dim])
        ge[:, z_dim:] = gz.mul_(eps).mul_(std).mul_(0.5).add_(em1, alpha=0.5 * beta)
        _backward(self.enc, enc_in, ge, 1.0 / b, input_grad=False)
        return torch.stack((kl * beta - recon, recon, kl))


class FusedAdam:
    """Adam (Kingma & Ba 2015, torch's defaults) with the fused kernel, for gradients that stay in
    the same ``.grad`` tensors from step to step, as ``ManualELBO`` leaves them.

    It calls ``torch.optim.adam.adam``, the functional form behind ``torch.optim.Adam(fused=True)``,
    on state it allocates once: the same update, without the per-step regrouping of parameters and
    state that ``Optimizer.step`` does (about 5% of a training step on a 2-core CPU).
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.params = list(params)
        if any(p.grad is None for p in self.params):
            raise ValueError("FusedAdam needs every parameter's .grad allocated (ManualELBO does that)")
        self.lr, self.betas, self.eps = float(lr), betas, float(eps)
        self.exp_avgs = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sqs = [torch.zeros_like(p) for p in self.params]
        self.steps = [torch.zeros((), dtype=torch.float32, device=p.device) for p in self.params]

    @torch.no_grad()
    def step(self):
        beta1, beta2 = self.betas
        adam(
            self.params,
            [p.grad for p in self.params],
            self.exp_avgs,
            self.exp_avg_sqs,
            [],
            self.steps,
            fused=True,
            amsgrad=False,
            beta1=beta1,
            beta2=beta2,
            lr=self.lr,
            weight_decay=0.0,
            eps=self.eps,
            maximize=False,
        )
