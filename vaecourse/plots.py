"""Figures the chapters look at; every function returns the matplotlib ``Figure``.

Holds:
    show_images          -- a grid of images (any (N, D) tensor with D a square number).
    plot_reconstructions -- originals above their reconstructions.
    plot_samples         -- decoder means for z drawn from the prior.
    plot_latent_scatter  -- 2-D posterior means coloured by label.
    plot_traversal       -- decoder means over a grid of a 2-D latent space (or two chosen dims).
    plot_interpolation   -- the decoded straight line between the codes of two images.
    plot_history         -- loss, reconstruction and KL per epoch for one or several runs.
"""

import math

import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = [
    "show_images",
    "plot_reconstructions",
    "plot_samples",
    "plot_latent_scatter",
    "plot_traversal",
    "plot_interpolation",
    "plot_history",
]


def _like(model):
    """The model's device and dtype, for the tensors a plot feeds it (data of any float dtype is shown)."""
    p = next(model.parameters())
    return {"device": p.device, "dtype": p.dtype}


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


def show_images(images, ncols=10, title=None, ax=None, size=0.6):
    """Show (N, D) images in a grid with ``ncols`` columns."""
    images = torch.as_tensor(images)
    if images.dim() != 2 or images.shape[0] == 0:
        raise ValueError(f"images must have shape (N, D) with N >= 1, got {tuple(images.shape)}")
    ncols = max(1, min(ncols, images.shape[0]))
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
    """Show ``n`` images of ``x`` and their reconstructions (decoder mean at the posterior mean)."""
    x = x[:n].to(**_like(model))
    recon = model.reconstruct(x, y=None if y is None else y[:n].to(x.device))
    return show_images(torch.cat([x.cpu(), recon.cpu()]), ncols=x.shape[0], title=title)


def plot_samples(model, n=40, ncols=10, *, y=None, title="Samples: decoder means for z ~ N(0, I)"):
    """Show ``n`` decoder means for latents drawn from the prior."""
    return show_images(model.sample(n, y=y).cpu(), ncols=ncols, title=title)


@torch.no_grad()
def plot_latent_scatter(model, x, labels, *, dims=(0, 1), title="Posterior means coloured by digit", ax=None):
    """Scatter the posterior means E_q[z|x] in two latent dimensions, coloured by label."""
    mu, _ = model.encode(x.to(**_like(model)))
    mu = mu.cpu().numpy()
    labels = torch.as_tensor(labels).cpu().numpy()
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
    model, *, n=12, extent=2.5, dims=(0, 1), base=None, title="Decoder means over a grid of latent values"
):
    """Decode an ``n`` x ``n`` grid in latent dimensions ``dims`` (others held at ``base``, default 0).

    With a 2-D latent space this is the whole learned manifold; ``extent`` is in prior standard
    deviations.
    """
    like = _like(model)
    z = torch.zeros(n * n, model.z_dim, **like) if base is None else base.to(**like).repeat(n * n, 1)
    grid = torch.linspace(-extent, extent, n, **like)
    z[:, dims[0]] = grid.repeat(n)
    z[:, dims[1]] = grid.flip(0).repeat_interleave(n)
    fig = show_images(model.decode_mean(z).cpu(), ncols=n, title=title, size=0.45)
    return fig


@torch.no_grad()
def plot_interpolation(model, x_a, x_b, steps=10, title="Decoding the line between two codes"):
    """Decode ``(1 - t) mu(x_a) + t mu(x_b)`` for ``steps`` values of t in [0, 1]."""
    like = _like(model)
    mu_a, _ = model.encode(x_a.reshape(1, -1).to(**like))
    mu_b, _ = model.encode(x_b.reshape(1, -1).to(**like))
    t = torch.linspace(0, 1, steps, **like).unsqueeze(1)  # (steps, 1)
    z = (1 - t) * mu_a + t * mu_b  # (steps, Z)
    return show_images(model.decode_mean(z).cpu(), ncols=steps, title=title)


def plot_history(histories, keys=("loss", "recon", "kl"), title=None):
    """Plot per-epoch curves from ``vc.train`` histories (one dict, or {name: dict} for several runs)."""
    if isinstance(histories, dict) and "loss" in histories:
        histories = {"": histories}
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
