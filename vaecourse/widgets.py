"""Interactive views (ipywidgets) for running notebooks.

Holds:
    latent_explorer -- one slider per latent dimension; the decoded image updates as you move them.
    value_explorer  -- a slider over precomputed results (e.g. one trained model per beta).

In the static HTML book widgets cannot run; each function therefore also draws a static figure
when ``static=True`` and says how to run the live version.
"""

from collections.abc import Mapping

import matplotlib.pyplot as plt
import torch

from . import checks
from .plots import _grid

__all__ = ["latent_explorer", "value_explorer"]

STATIC_NOTE = (
    "Static view: open this page as a notebook (download button at the top, or "
    "`jupyter lab book/`) to move the sliders live."
)


def _show(fig):
    """Display a figure inside a widget Output and free it (no duplicate inline copy)."""
    from IPython.display import display

    display(fig)
    plt.close(fig)


@torch.no_grad()
def latent_explorer(model, dims=None, extent=3.0, step=0.1, static=False, *, y=None):
    """Sliders over z (up to 8 dimensions, the rest held at 0); the decoder mean is redrawn live.

    Args:
        model: a trained VAE.
        dims: which latent dimensions get sliders (default: the first ``min(Z, 8)``), each in 0..Z-1.
        extent: slider range in prior standard deviations.
        static: instead of widgets, return a figure decoding each chosen dimension at -extent..extent.
        y: a conditional model's one-hot label, shape (cond_dim,), used for every decoded image.
    """
    checks.model(model)
    extent = checks.real("extent", extent, "> 0", lambda v: v > 0)
    step = checks.real("step", step, f"in (0, {2 * extent:g}]", lambda v: 0 < v <= 2 * extent)
    like = checks.like(model)  # the model's device and dtype
    y = checks.plot_label(model, y)
    dims = list(range(min(model.z_dim, 8))) if dims is None else list(checks.latent_dims(dims, model.z_dim))
    if static:
        n = 7
        vals = torch.linspace(-extent, extent, n, **like)
        z = torch.zeros(len(dims) * n, model.z_dim, **like)
        for row, d in enumerate(dims):
            z[row * n : (row + 1) * n, d] = vals
        title = f"Each row moves one latent dimension from -{extent:g} to {extent:g}"
        return _grid(model.decode_mean(z, y).cpu(), n, title)
    import ipywidgets as W

    sliders = [
        W.FloatSlider(value=0.0, min=-extent, max=extent, step=step, description=f"z{d + 1}", continuous_update=True)
        for d in dims
    ]
    out = W.Output()

    @torch.no_grad()
    def redraw(_=None):
        z = torch.zeros(1, model.z_dim, **like)
        for s, d in zip(sliders, dims):
            z[0, d] = s.value
        with out:
            out.clear_output(wait=True)
            _show(_grid(model.decode_mean(z, y).cpu(), 1, size=2.5))

    for s in sliders:
        s.observe(redraw, names="value")
    redraw()
    return W.HBox([W.VBox(sliders), out])


def value_explorer(results, draw, description="value", static=False):
    """A slider over the keys of ``results``; ``draw(key, result)`` returns a figure for one key.

    ``results`` is a dict ``{value: result}`` (e.g. ``{beta: model}``). With ``static=True`` it returns
    the figure for every key, side by side, instead of a widget.
    """
    if not isinstance(results, Mapping):
        raise TypeError(f"results must be a dict {{value: result}}, e.g. {{beta: model}}, got {type(results).__name__}")
    if not callable(draw):
        raise TypeError(f"draw must be a function draw(key, result) returning a figure, got {type(draw).__name__}")
    keys = list(results)
    if not keys:
        raise ValueError("results is empty")
    if static:
        return [draw(k, results[k]) for k in keys]
    import ipywidgets as W

    slider = W.SelectionSlider(options=keys, value=keys[0], description=description)
    out = W.Output()

    def redraw(_=None):
        with out:
            out.clear_output(wait=True)
            _show(draw(slider.value, results[slider.value]))

    slider.observe(redraw, names="value")
    redraw()
    return W.VBox([slider, out])
