"""Figures the chapters look at; every function returns the matplotlib ``Figure``.

Holds:
    show_images          -- a grid of images (any (N, D) tensor with D a square number).
    plot_reconstructions -- originals above their reconstructions.
    plot_samples         -- decoder means for z drawn from the prior.
    plot_latent_scatter  -- 2-D posterior means coloured by label.
    plot_traversal       -- decoder means over a grid of a 2-D latent space (or two chosen dims).
    plot_interpolation   -- the decoded straight line between the codes of two images.
    plot_history         -- loss, reconstruction and KL per epoch for one or several runs.

Data may be a tensor or any array-like (a NumPy array, nested lists); it is converted to the model's
device and dtype. A conditional model (``cond_dim > 0``) needs its labels: pass ``y=`` (one-hot).
"""

import math
from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import torch

from . import checks

__all__ = [
    "show_images", "plot_reconstructions", "plot_samples", "plot_latent_scatter", "plot_traversal",
    "plot_interpolation", "plot_history",
]  # fmt: skip

# show_images clips float images to [0, 1] (a Gaussian decoder's means overshoot, by up to about 7 at 3 prior
# standard deviations on MNIST) but rejects values further out than this: 0..255 pixels, or a bug
_FLOAT_SLACK = 10.0


def _latent_pair(model, dims, what):
    """Two different latent dimensions in 0..z_dim-1, or a ValueError naming dims and z_dim."""
    if model.z_dim < 2:
        raise ValueError(
            f"{what} needs two latent dimensions but the model has z_dim={model.z_dim}; "
            "vc.latent_explorer(model, static=True) shows a one-dimensional latent space"
        )
    return checks.latent_dims(dims, model.z_dim, count=2)


def _side(d):
    side = int(round(math.sqrt(d)))
    if side * side != d:
        raise ValueError(f"images must have a square number of pixels, got D = {d}")
    return side


def _tile(images, ncols):
    """(N, D) -> one (rows * s, ncols * s) array with a 1-pixel gap."""
    images = torch.as_tensor(images).detach().float().cpu()
    n, d = images.shape
    s = _side(d)
    nrows = math.ceil(n / ncols)
    canvas = np.zeros((nrows * (s + 1) - 1, ncols * (s + 1) - 1), dtype=np.float32)  # white gutters (gray_r)
    for i, img in enumerate(images.reshape(n, s, s).numpy()):
        r, c = divmod(i, ncols)
        canvas[r * (s + 1) : r * (s + 1) + s, c * (s + 1) : c * (s + 1) + s] = img
    return canvas


def _grey_levels(images):
    """Images as grey levels in [0, 1] (see ``show_images``); floats are returned as they are."""
    if images.dtype == torch.bool:
        return images.float()
    lo, hi = (float(v) for v in torch.aminmax(images.detach()))
    if not (math.isfinite(lo) and math.isfinite(hi)):  # a NaN shows up in both ends
        raise ValueError(f"images contain NaN or infinite values (range [{lo}, {hi}])")
    if not images.is_floating_point():
        if lo < 0 or hi > 255:
            raise ValueError(f"integer images must hold 0..255 grey levels (or 0/1), got values in [{lo:g}, {hi:g}]")
        return images.float() / 255 if hi > 1 else images.float()
    if lo < -_FLOAT_SLACK or hi > 1 + _FLOAT_SLACK:
        raise ValueError(
            f"float images must be grey levels in [0, 1], got values in [{lo:g}, {hi:g}]; "
            "for 0..255 pixels pass images / 255 (or uint8 images)"
        )
    return images


def show_images(images, ncols=10, title=None, ax=None, size=0.6):
    """Show (N, D) images in a grid with ``ncols`` columns (fewer if N is smaller).

    Float images are grey levels in [0, 1], drawn with 0 white and 1 black; values a little outside
    (a Gaussian decoder's means) are clipped, values far outside (below -10 or above 11, e.g. 0..255
    pixels as floats) raise a ValueError. Integer images (uint8) are 0..255 grey levels and are divided
    by 255, unless they hold only 0s and 1s; bool images are binary.
    """
    images = checks.as_tensor("images", images)
    ncols = checks.integer("ncols", ncols)
    if images.dim() != 2 or images.shape[0] == 0:
        raise ValueError(f"images must have shape (N, D) with N >= 1, got {tuple(images.shape)}")
    return _grid(_grey_levels(images), ncols, title, ax, size)


def _grid(images, ncols, title=None, ax=None, size=0.6):
    """``show_images`` without its checks, for decoder means (drawn clipped to [0, 1], however far out)."""
    ncols = min(ncols, images.shape[0])
    nrows = math.ceil(images.shape[0] / ncols)
    if ax is None:
        fig, ax = plt.subplots(figsize=(size * ncols + 0.2, size * nrows + (0.4 if title else 0.1)))
    else:
        fig = ax.figure
    ax.imshow(_tile(images, ncols), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return fig


def plot_reconstructions(model, x, n=10, *, y=None, title="Top: data. Bottom: reconstructions"):
    """Show the first ``n`` images of ``x`` (all of them if x has fewer) and their reconstructions
    (decoder mean at the posterior mean). A conditional model needs ``y``: (cond_dim,) or one row per image."""
    checks.model(model)
    n = checks.integer("n", n)
    x = checks.as_tensor("x", x)
    x = checks.plot_data(model, "x", x[:n] if x.dim() == 2 else x)  # only the images shown are moved and checked
    y = checks.plot_label(model, y[:n] if y is not None and np.ndim(y) == 2 else y, x.shape[0])
    recon = model.reconstruct(x, y=y)
    return _grid(torch.cat([x.cpu(), recon.cpu()]), x.shape[0], title)


def plot_samples(model, n=40, ncols=10, *, y=None, title="Samples: decoder means for z ~ N(0, I)"):
    """Show ``n`` decoder means for latents drawn from the prior (a conditional model: ``y`` of shape
    (cond_dim,) for all, or (n, cond_dim))."""
    checks.model(model)
    n, ncols = checks.integer("n", n), checks.integer("ncols", ncols)
    return _grid(model.sample(n, y=checks.plot_label(model, y, n)).cpu(), ncols, title)


@torch.no_grad()
def plot_latent_scatter(model, x, labels, *, y=None, dims=(0, 1), title="Posterior means coloured by digit", ax=None):
    """Scatter the posterior means E_q[z|x] in two latent dimensions, coloured by label.

    ``labels`` colour the points (integers 0-9, one per example); a conditional model also needs ``y``,
    its one-hot input: (cond_dim,) for all examples or one row per example.
    """
    checks.model(model)
    dims = _latent_pair(model, dims, "plot_latent_scatter")
    x = checks.plot_data(model, "x", x)
    mu, _ = model.encode(x, checks.plot_label(model, y, x.shape[0]))
    mu = mu.cpu().numpy()
    labels = checks.as_tensor("labels", labels).cpu().numpy()
    labels = labels.reshape(-1) if labels.size == x.shape[0] else labels  # (N,) or (N, 1)
    if labels.shape != (x.shape[0],):
        raise ValueError(f"labels must have one entry per example, shape ({x.shape[0]},), got {labels.shape}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.2, 4.4))
    else:
        fig = ax.figure
    sc = ax.scatter(mu[:, dims[0]], mu[:, dims[1]], c=labels, cmap="tab10", s=6, alpha=0.8, vmin=-0.5, vmax=9.5)
    fig.colorbar(sc, ax=ax, ticks=range(10), label="label")
    ax.set_xlabel(f"$z_{dims[0] + 1}$")
    ax.set_ylabel(f"$z_{dims[1] + 1}$")
    ax.set_title(title)
    return fig


@torch.no_grad()
def plot_traversal(
    model, *, n=12, extent=2.5, dims=(0, 1), base=None, y=None, title="Decoder means over a grid of latent values"
):
    """Decode an ``n`` x ``n`` grid in latent dimensions ``dims`` (others held at ``base``, default 0).

    With a 2-D latent space this is the whole learned manifold; ``extent`` is in prior standard
    deviations. A conditional model decodes every image with the one label ``y``, shape (cond_dim,).
    """
    checks.model(model)
    n, extent = checks.integer("n", n), checks.real("extent", extent, "> 0", lambda v: v > 0)
    dims = _latent_pair(model, dims, "plot_traversal")
    y = checks.plot_label(model, y)
    like = checks.like(model)
    if base is None:
        z = torch.zeros(n * n, model.z_dim, **like)
    else:
        base = checks.as_tensor("base", base, **like)
        if base.shape not in ((model.z_dim,), (1, model.z_dim)):
            raise ValueError(f"base must be one latent code, shape ({model.z_dim},), got {tuple(base.shape)}")
        z = base.repeat(n * n, 1)
    grid = torch.linspace(-extent, extent, n, **like)
    z[:, dims[0]] = grid.repeat(n)
    z[:, dims[1]] = grid.flip(0).repeat_interleave(n)
    return _grid(model.decode_mean(z, y).cpu(), n, title, size=0.45)


@torch.no_grad()
def plot_interpolation(model, x_a, x_b, steps=10, *, y=None, title="Decoding the line between two codes"):
    """Decode ``(1 - t) mu(x_a) + t mu(x_b)`` for ``steps`` (>= 2) values of t from 0 to 1, both ends included.

    ``x_a`` and ``x_b`` are single examples, shape (D,) or (1, D). A conditional model encodes both and
    decodes the line with the one label ``y``, shape (cond_dim,).
    """
    checks.model(model)
    steps = checks.integer("steps", steps, low=2)  # t = 0 and t = 1 at least
    x_a, x_b = checks.plot_data(model, "x_a", x_a, one=True), checks.plot_data(model, "x_b", x_b, one=True)
    y = checks.plot_label(model, y)
    mu_a, _ = model.encode(x_a, y)
    mu_b, _ = model.encode(x_b, y)
    t = torch.linspace(0, 1, steps, **checks.like(model)).unsqueeze(1)  # (steps, 1)
    z = (1 - t) * mu_a + t * mu_b  # (steps, Z)
    return _grid(model.decode_mean(z, y).cpu(), steps, title)


def _histories(histories, keys):
    """``{name: history}`` from one history or a dict of them; every history has 'epoch' and ``keys``."""
    if not isinstance(histories, Mapping):
        raise TypeError(
            "histories must be one history dict from vc.train, or a dict {name: history} for several runs "
            f"(e.g. {{'run 1': h1, 'run 2': h2}}), got {type(histories).__name__}"
        )
    if "loss" in histories or "epoch" in histories:
        histories = {"": histories}
    if not histories:
        raise ValueError("histories is empty")
    for name, h in histories.items():
        what = f"histories[{name!r}]" if name else "the history"
        if not isinstance(h, Mapping) or "epoch" not in h:
            raise ValueError(f"{what} must be a history dict from vc.train (with an 'epoch' entry), got {h!r:.80}")
        missing = [k for k in keys if k not in h]
        if missing:
            raise ValueError(f"{what} has no {missing[0]!r} entry; keys must be among {list(h)}")
    return histories


def plot_history(histories, keys=("loss", "recon", "kl"), title=None):
    """Plot per-epoch curves from ``vc.train`` histories (one dict, or {name: dict} for several runs).

    ``keys``: the entries to plot, one panel each (a single key may be given as a string).
    """
    keys = (keys,) if isinstance(keys, str) else tuple(keys)
    if not keys:
        raise ValueError("keys must name at least one history entry, e.g. keys=('loss',)")
    histories = _histories(histories, keys)
    labels = {
        "loss": "loss (negative objective)",
        "recon": "E_q log p(x|z)",
        "kl": "KL(q || p(z))",
        "beta": "KL weight",
    }
    fig, axes = plt.subplots(1, len(keys), figsize=(3.4 * len(keys), 2.8), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for name, h in histories.items():
            ax.plot(h["epoch"], h[key], label=name or None)
        ax.set_xlabel("epoch")
        ax.set_title(labels.get(key, key))
        ax.grid(alpha=0.3)
    if any(histories):
        axes[0][-1].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
