"""Backpropagation written out for the common training case, so that ``vc.train`` spends its time
in matrix products instead of autograd bookkeeping.

The case: a ``vc.VAE`` whose encoder and decoder are MLPs (ReLU or tanh), with a Bernoulli decoder
or a Gaussian one of fixed variance s2 (``obs_logvar`` given), with or without labels y (a
conditional VAE: the encoder reads (x, y), the decoder (z, y)), trained on the single-sample ELBO
with a KL weight beta (fixed or annealed), with or without free bits. With
decoder outputs l (logits, or the Gaussian mean), z = mu + sigma * eps (sigma = exp(logvar / 2))
and the summed batch loss

    L = sum_b [ -log p(x_b|z_b) + beta * KL_b ],   KL_b = 1/2 sum_j (mu^2 + e^logvar - 1 - logvar),

the gradients have short closed forms:

    dL/dl       = sigmoid(l) - x   (Bernoulli),   (l - x) / s2   (Gaussian)    (B, D)
    dL/dmu      = dL/dz + beta * mu                                    (B, Z)
    dL/dlogvar  = dL/dz * eps * sigma / 2 + beta * (e^logvar - 1) / 2  (B, Z)
    linear layer a_out = a_in W^T + b:  dW = g^T a_in,  db = sum_b g,  g_in = g W
    ReLU: g * (a_out > 0);  tanh: g * (1 - a_out^2)

With free bits lambda (Kingma et al. 2016; ``losses._free_bits_kl``) a latent dimension j whose
batch-mean KL is under lambda counts as the constant lambda in every example: its KL term drops
out of dL/dmu and dL/dlogvar (beta becomes beta * [mean_b KL_bj >= lambda] per dimension).

``vc.train`` minimizes the batch *mean* L / B; the 1/B rides along as the ``alpha`` of the
weight-gradient matmuls, so no (B, D) tensor is ever rescaled.

Input columns that are zero in every training example (MNIST's blank border: 123 of 784 pixels in
the 4,000 training images of MNIST-5k) add nothing to the first layer's output, and their weights
get a gradient of exactly 0, which Adam (no weight decay) turns into an update of exactly 0.
``use_inputs`` therefore trains a copy of the first weight matrix restricted to the other columns:
its forward and weight-gradient products shrink by that fraction, with the same result, and
``write_back`` puts it into the model.

Every other case (IWAE, k > 1, a learned Gaussian variance, other activations, frozen parameters,
subclasses) goes through autograd. ``tests/test_backprop.py`` checks these gradients against
autograd's on the same noise.
"""

import math
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .losses import LOG_2PI, _free_bits_above, _gaussian_kl_per_dim

__all__ = ["ManualELBO", "FusedAdam"]

# Adam moments of parameters whose gradient is (nearly) always zero -- weights of pixels that are
# blank in almost every image -- decay by beta1 = 0.9 a step and turn subnormal after ~800 steps.
# x86 CPUs process subnormal floats 10-100x slower, which made a whole training step ~30% slower.
# Below this floor a moment moves no parameter by more than lr * 1e-30 / eps = 1e-25, so zeroing it
# every FLUSH_EVERY steps (before 0.9^64 ~ 1e-3 of decay can reach the subnormal range) is exact for
# all practical purposes and costs ~10 us a step.
FLUSH_BELOW, FLUSH_EVERY = 1e-30, 64

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


class _Layer(NamedTuple):
    """One linear layer's tensors, looked up once (``nn.Module`` attribute access costs ~1 us)."""

    weight: torch.Tensor  # (out, in)
    weight_t: torch.Tensor  # (in, out) view; parameters are updated in place, so it stays valid
    bias: torch.Tensor  # (out,)
    weight_grad: torch.Tensor
    bias_grad: torch.Tensor
    act: str | None  # "relu", "tanh" or None: the activation that follows this layer


def _prepare(pairs):
    return [
        _Layer(
            lin.weight,
            lin.weight.t(),
            lin.bias,
            lin.weight.grad,
            lin.bias.grad,
            None if act is None else ("relu" if type(act) is nn.ReLU else "tanh"),
        )
        for lin, act in pairs
    ]


def _activation_backward(g, a_out, act):
    # the kernels autograd itself uses: one pass each, no mask tensor
    if act == "relu":
        return torch.ops.aten.threshold_backward(g, a_out, 0)
    return torch.ops.aten.tanh_backward(g, a_out)


def _forward(layers, a):
    """Run an MLP, keeping each linear layer's input (the previous activation's output)."""
    inputs = []
    for layer in layers:
        inputs.append(a)
        a = torch.addmm(layer.bias, a, layer.weight_t)
        if layer.act == "relu":
            a = a.relu_()
        elif layer.act == "tanh":
            a = a.tanh_()
    return a, inputs


def _backward(layers, inputs, g, alpha, input_grad):
    """Write alpha * dL/dW and alpha * dL/db into ``.grad``; return dL/d(input) if ``input_grad``."""
    for i in reversed(range(len(layers))):
        layer, a_in = layers[i], inputs[i]
        layer.weight_grad.addmm_(g.t(), a_in, beta=0, alpha=alpha)  # (out, in)
        torch.sum(g, 0, out=layer.bias_grad).mul_(alpha)  # (out,)
        if i == 0 and not input_grad:
            return None
        g = g.mm(layer.weight)  # (B, in)
        if i > 0:
            g = _activation_backward(g, a_in, layers[i - 1].act)
    return g


class ManualELBO:
    """One training step's forward and backward for the case above; gradients land in ``p.grad``."""

    def __init__(self, model, free_bits=0.0):
        self.z_dim, self.cond_dim = model.z_dim, model.cond_dim
        self.free_bits = float(free_bits)  # lambda, nats per latent dimension; 0: plain KL
        for p in model.parameters():
            if p.grad is None or p.grad.shape != p.shape:
                p.grad = torch.zeros_like(p)
        self.enc, self.dec = _prepare(_layers(model.encoder)), _prepare(_layers(model.decoder))
        self.gaussian = model.likelihood == "gaussian"
        if self.gaussian:  # fixed observation variance s2: log p(x|z) = -(|x - l|^2 / s2 + D log(2 pi s2)) / 2
            obs_logvar = float(model.obs_logvar)
            self.inv_var = math.exp(-obs_logvar)  # 1 / s2
            self.log_norm = model.x_dim * (LOG_2PI + obs_logvar)  # D log(2 pi s2)
        self.params = list(model.parameters())  # the tensors an optimizer should update
        self.inputs = None  # (k,) the input columns the encoder reads; None: all of them
        self._first_weight = model.encoder[0].weight  # (H, D), the model's own

    def use_inputs(self, inputs):
        """Read only the input columns ``inputs`` (all others must be zero in every example trained on).

        The first encoder layer then uses a (H, k) copy of its weight, which ``self.params`` lists in
        place of the model's; call ``write_back`` to copy it (and its gradient) into the model.
        """
        if self.inputs is not None:
            raise RuntimeError("use_inputs can be called once per ManualELBO")
        inputs = torch.as_tensor(inputs, dtype=torch.long, device=self._first_weight.device)
        first = self.enc[0]
        w = first.weight.detach().index_select(1, inputs)  # (H, k), contiguous
        w.grad = torch.zeros_like(w)
        self.enc[0] = first._replace(weight=w, weight_t=w.t(), weight_grad=w.grad)
        self.params = [w if p is self._first_weight else p for p in self.params]
        self.inputs = inputs

    @torch.no_grad()
    def write_back(self):
        """Copy the restricted first-layer weight and gradient into the model (a no-op without one)."""
        if self.inputs is None:
            return
        full, w = self._first_weight, self.enc[0].weight
        full.index_copy_(1, self.inputs, w)
        full.grad.zero_().index_copy_(1, self.inputs, w.grad)

    @classmethod
    def for_model(cls, model, objective="elbo", k=1, free_bits=0.0):
        """A ``ManualELBO`` for ``model`` if the written-out gradients apply, else ``None``."""
        from .models import VAE

        if type(model) is not VAE or objective != "elbo" or k != 1:
            return None
        if model.likelihood == "gaussian" and isinstance(model.obs_logvar, nn.Parameter):
            return None  # a learned variance: autograd
        if not all(p.requires_grad for p in model.parameters()):
            return None
        if _layers(model.encoder) is None or _layers(model.decoder) is None:
            return None
        return cls(model, free_bits)

    @torch.no_grad()
    def step(self, x, beta=1.0, eps=None, x_in=None, y=None):
        """Gradients of the batch-mean loss ``-mean_b ELBO_beta(x_b)`` (with free bits if set) into ``.grad``.

        Args:
            x: (B, D) batch; beta: KL weight; eps: (B, Z) noise (drawn from N(0, I) if None).
            x_in: (B, k) the columns ``self.inputs`` of the encoder's input (x, y), if the caller
                has them already.
            y: (B, C) labels of a conditional model (required then, else None).
        Returns:
            (3,) tensor: the batch sums of the loss, of log p(x|z) and of KL(q||p), as the
            autograd path of ``vc.train`` logs them.
        """
        b, z_dim = x.shape[0], self.z_dim
        if (y is None) != (not self.cond_dim):
            raise ValueError(f"y must be given exactly when the model is conditional (cond_dim={self.cond_dim})")
        if x_in is None:
            x_in = x if y is None else torch.cat((x, y), 1)  # (B, D + C)
            x_in = x_in if self.inputs is None else x_in.index_select(1, self.inputs)  # (B, k)
        e, enc_in = _forward(self.enc, x_in)  # (B, 2Z)
        mu, logvar = e[:, :z_dim], e[:, z_dim:]
        std = torch.exp(0.5 * logvar)
        if eps is None:
            eps = torch.randn_like(std)
        z = torch.addcmul(mu, std, eps)  # (B, Z)
        logits, dec_in = _forward(self.dec, z if y is None else torch.cat((z, y), 1))  # (B, D)

        if self.gaussian:
            g = logits.sub_(x)  # l - x, in place: the decoder's output is not needed again
            recon = -0.5 * (torch.dot(g.reshape(-1), g.reshape(-1)) * self.inv_var + b * self.log_norm)
            g.mul_(self.inv_var)  # dL/dl = (l - x) / s2, (B, D)
        else:
            # sum_b log p(x_b|z_b) = sum x * l - softplus(l): a dot product and one elementwise pass
            recon = torch.dot(x.reshape(-1), logits.reshape(-1)) - F.softplus(logits).sum()
            g = torch.sigmoid(logits).sub_(x)  # dL/dlogits, (B, D)
        em1 = torch.expm1(logvar)  # e^logvar - 1, for the KL and dKL/dlogvar
        kl_d = _gaussian_kl_per_dim(mu, logvar, em1)  # (B, Z)
        kl = kl_d.sum()
        penalty = kl  # the KL term of the loss, summed over the batch

        gz = _backward(self.dec, dec_in, g, 1.0 / b, input_grad=True)[:, :z_dim]  # (B, Z): not y's columns
        ge = torch.empty_like(e)  # dL/d(mu, logvar), (B, 2Z); the logvar half reuses gz in place
        if self.free_bits > 0:  # dimensions under the floor: the constant lambda, no gradient
            above = _free_bits_above(kl_d, self.free_bits)  # (Z,)
            penalty = torch.where(above, kl_d.sum(0), b * self.free_bits).sum()
            weight = above.to(e.dtype).mul_(beta)  # (Z,) beta or 0: the KL's weight per dimension
            torch.addcmul(gz, mu, weight, out=ge[:, :z_dim])
            ge[:, z_dim:] = gz.mul_(eps).mul_(std).mul_(0.5).addcmul_(em1, weight, value=0.5)
        else:
            torch.add(gz, mu, alpha=beta, out=ge[:, :z_dim])
            ge[:, z_dim:] = gz.mul_(eps).mul_(std).mul_(0.5).add_(em1, alpha=0.5 * beta)
        _backward(self.enc, enc_in, ge, 1.0 / b, input_grad=False)
        return torch.stack((penalty * beta - recon, recon, kl))


@torch.no_grad()
def _flush_tiny_moments_(exp_avgs, exp_avg_sqs, floor=FLUSH_BELOW):
    """Zero Adam moments below ``floor`` in magnitude, in place, so none of them turns subnormal."""
    for m in exp_avgs:
        m.masked_fill_(m.abs() < floor, 0.0)
    for v in exp_avg_sqs:
        torch.threshold_(v, floor, 0.0)  # v >= 0: one pass


class FusedAdam:
    """Adam (Kingma & Ba 2015, torch's defaults) with the fused kernel, for gradients that stay in
    the same ``.grad`` tensors from step to step, as ``ManualELBO`` leaves them.

    It calls ``torch._fused_adam_``, the kernel behind ``torch.optim.Adam(fused=True)``, directly,
    on state allocated once and one step counter shared by all parameters: the same update, without
    the per-step regrouping by device and dtype and the per-parameter counter increments of
    ``Optimizer.step`` (about 5% and 4% of a training step on a 2-core CPU). Every
    ``FLUSH_EVERY`` steps it zeroes moments below ``FLUSH_BELOW`` (see ``_flush_tiny_moments_``).
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.params = list(params)
        if not self.params:
            raise ValueError("FusedAdam got no parameters")
        if any(p.grad is None for p in self.params):
            raise ValueError("FusedAdam needs every parameter's .grad allocated (ManualELBO does that)")
        p0 = self.params[0]
        if any(p.device != p0.device or p.dtype != p0.dtype for p in self.params):
            raise ValueError("FusedAdam needs all parameters on one device with one dtype")
        self.lr, self.betas, self.eps = float(lr), tuple(betas), float(eps)
        self.exp_avgs = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sqs = [torch.zeros_like(p) for p in self.params]
        self.step_count = torch.zeros((), dtype=torch.float32, device=p0.device)  # Adam's t, for the kernel
        self.n_steps = 0  # the same t on the host: reading step_count would sync a GPU every step

    def step(self):
        """One Adam step on the current ``.grad``: ``update`` then ``tick``."""
        self.update()
        self.tick()

    @torch.no_grad()
    def update(self):
        """The step's device work only (two kernels; no host state), so it can be graph-captured."""
        self.step_count += 1
        beta1, beta2 = self.betas
        torch._fused_adam_(
            self.params,
            [p.grad for p in self.params],
            self.exp_avgs,
            self.exp_avg_sqs,
            [],  # max_exp_avg_sqs: amsgrad is off
            [self.step_count] * len(self.params),  # the kernel reads t per parameter
            amsgrad=False,
            lr=self.lr,
            beta1=beta1,
            beta2=beta2,
            weight_decay=0.0,
            eps=self.eps,
            maximize=False,
            grad_scale=None,
            found_inf=None,
        )

    @torch.no_grad()
    def tick(self):
        """The step's host bookkeeping: count it, and every ``FLUSH_EVERY`` steps flush tiny moments."""
        self.n_steps += 1
        if self.n_steps % FLUSH_EVERY == 0:
            _flush_tiny_moments_(self.exp_avgs, self.exp_avg_sqs)
