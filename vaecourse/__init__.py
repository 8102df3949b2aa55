"""vaecourse: the PyTorch code behind the Variational Autoencoders course.

    import vaecourse as vc

One convention throughout: a diagonal Gaussian is ``(mu, logvar)``; per-example results have shape
(B,) (or (K, B) with K samples) and reduction is left to the caller; sums run over the last dimension.
Inputs are checked where they enter (``checks.py``), with errors that name the argument.
Plotting and widget helpers import matplotlib/ipywidgets lazily, on first use. The book's live
figures, the exercises' test helpers and the students' check are in a package of their own,
``coursekit``, installed alongside.
"""

from .data import Split, binarize, load_digits, load_mnist
from .device import get_device, set_seed
from .exact import LinearGaussianVAE
from .losses import (
    LOG_2PI,
    bernoulli_log_likelihood,
    free_bits_kl,
    gaussian_kl,
    gaussian_kl_per_dim,
    gaussian_log_likelihood,
    iwae_bound,
    log_normal,
    log_standard_normal,
    reparameterize,
)
from .models import VAE
from .train import CyclicalSchedule, LinearSchedule, SigmoidSchedule, active_units, latent_activity, train

__version__ = "0.1.0"

_LAZY = {
    "show_images": "plots",
    "plot_reconstructions": "plots",
    "plot_samples": "plots",
    "plot_latent_scatter": "plots",
    "plot_traversal": "plots",
    "plot_interpolation": "plots",
    "plot_history": "plots",
    "latent_explorer": "widgets",
    "value_explorer": "widgets",
}

__all__ = [
    # device.py
    "get_device",
    "set_seed",
    # losses.py
    "LOG_2PI",
    "gaussian_kl",
    "gaussian_kl_per_dim",
    "free_bits_kl",
    "reparameterize",
    "log_normal",
    "log_standard_normal",
    "bernoulli_log_likelihood",
    "gaussian_log_likelihood",
    "iwae_bound",
    # models.py
    "VAE",
    "LinearGaussianVAE",
    # train.py
    "train",
    "LinearSchedule",
    "SigmoidSchedule",
    "CyclicalSchedule",
    "latent_activity",
    "active_units",
    # data.py
    "Split",
    "load_digits",
    "load_mnist",
    "binarize",
    # plots.py and widgets.py (imported on first use)
    *_LAZY,
]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'vaecourse' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
