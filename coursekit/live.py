"""Live figures for the static HTML book: the reader moves a slider on the page, no kernel involved.

A chapter exports what the figure needs to a small JSON file and displays an HTML snippet; the page's
JavaScript (``book/_static/live/live.js``, loaded on every page of the book) finds the snippet, loads
the JSON and draws. Four figures:

    latent_explorer  -- a trained decoder (an MLP: Linear layers, activations, a sigmoid for Bernoulli
                        pixels) exported as float32 weights; the page decodes z, chosen with sliders or
                        by dragging a point on a 2-D pad, and draws the digit.
    results_explorer -- a slider over precomputed results (one entry per trained beta or sigma_x^2):
                        images, KL per latent dimension as bars, the active-unit count and other numbers.
    kl_explorer      -- sliders over the mean and variance of each dimension of a diagonal Gaussian q:
                        the densities of q_j against the prior, KL_j as bars and the total (the spec,
                        a few numbers, is embedded in the page).
    samples_explorer -- a slider over settings (the K of an IWAE bound), each with many repeated
                        estimates of one quantity: their histogram on a fixed axis, reference values
                        as lines (log p(x), the ELBO), and the mean, spread and share above each line.

Holds, besides those four:
    decoder_spec / export_decoder   -- a model's decoder as the JSON the page reads (and its file).
    decode / pixels                 -- the page's forward pass in numpy: what the page draws for z.
    results_spec / export_results   -- precomputed results as JSON (and its file).
    collapse_results                -- those results for a dict of trained models {setting: model}.
    snippet                         -- the HTML of a live figure, for a JSON file or inline data.
    LiveFigure                      -- what the two figures return: shows as that HTML in a notebook.

Pixels: the decoder mean p in [0, 1] is drawn as the grey level ``floor(255 * clip(p, 0, 1) + 0.5)``,
dark ink on white (level 255 is black, as in ``vc.show_images``); the canvas holds ``255 - level``.
The JSON's numbers are little-endian float32 (weights) or uint8 (images), base64-encoded.
File paths: a figure's JSON goes to ``_static/live/data/<name>.json`` under the notebook's folder
(``book/``), which the book build copies to ``_build/html/_static/live/data/``; the snippet's
``data-src`` is resolved against the folder of ``live.js``, so the same snippet works on every page.
Where the environment sets ``VAECOURSE_LIVE_DIR``, the JSON goes there instead: ``make test`` re-runs
the chapters that way, so that a run on another CPU (other weights in the last digits) leaves the
committed files, those of the stored outputs, as they were.
"""

import base64
import html
import json
import math
import numbers
import os
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

import vaecourse as vc

__all__ = [
    "DECODER_FORMAT",
    "KL_FORMAT",
    "RESULTS_FORMAT",
    "SAMPLES_FORMAT",
    "LiveFigure",
    "collapse_results",
    "decode",
    "decoder_spec",
    "export_decoder",
    "export_results",
    "kl_explorer",
    "latent_explorer",
    "load",
    "pixels",
    "results_explorer",
    "result_levels",
    "results_spec",
    "samples_counts",
    "samples_explorer",
    "samples_spec",
    "snippet",
]

# the JSON formats' names, which live.js checks (names of data formats, not of modules)
DECODER_FORMAT = "vaecourse.live.decoder/1"
RESULTS_FORMAT = "vaecourse.live.results/1"
KL_FORMAT = "vaecourse.live.kl/1"
SAMPLES_FORMAT = "vaecourse.live.samples/1"
DATA_DIR = Path("_static") / "live" / "data"  # under the book's folder; the URL is data/<name>.json
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
# How far the exported decoder may differ from the model's own decode_mean (float32 sums in torch,
# float64 sums from the same float32 weights here): far above rounding, far below a wrong export.
_EXPORT_TOLERANCE = 1e-4


# ----------------------------------------------------------------------------- encoding
def _b64(array, dtype):
    return base64.b64encode(np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()).decode()


def _unb64(text, dtype, count, what):
    raw = base64.b64decode(text, validate=True)
    dtype = np.dtype(dtype).newbyteorder("<")
    if len(raw) != count * dtype.itemsize:
        raise ValueError(f"{what}: expected {count} values, the data holds {len(raw) // dtype.itemsize}")
    return np.frombuffer(raw, dtype=dtype).astype(dtype.newbyteorder("="))


def _write(spec, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean = {k: v for k, v in spec.items() if not k.startswith("_")}  # "_arrays": decode's cache
    path.write_text(json.dumps(clean, separators=(",", ":"), allow_nan=False), encoding="utf-8")
    return path


def load(path):
    """A live figure's JSON (decoder or results), read back as a dict."""
    spec = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(spec, dict) or spec.get("format") not in (DECODER_FORMAT, RESULTS_FORMAT):
        raise ValueError(f"{path}: not a live-figure file (format {DECODER_FORMAT!r} or {RESULTS_FORMAT!r})")
    return spec


def _image_shape(x_dim, image_shape):
    if image_shape is None:
        side = math.isqrt(x_dim)
        if side * side != x_dim:
            raise ValueError(f"image_shape: {x_dim} pixels are not a square image; pass image_shape=(height, width)")
        return [side, side]
    if (
        not isinstance(image_shape, (tuple, list))
        or len(image_shape) != 2
        or not all(isinstance(s, numbers.Integral) and s > 0 for s in image_shape)
        or image_shape[0] * image_shape[1] != x_dim
    ):
        raise ValueError(f"image_shape must be (height, width) with height * width = {x_dim}, got {image_shape!r}")
    return [int(image_shape[0]), int(image_shape[1])]


# ----------------------------------------------------------------------------- the decoder
def _activation(module):
    """The JSON entry of one activation module, or None when the page does not implement it."""
    if isinstance(module, nn.ReLU):
        return {"type": "relu"}
    if isinstance(module, nn.LeakyReLU):
        return {"type": "leaky_relu", "slope": float(module.negative_slope)}
    if isinstance(module, nn.ELU):
        return {"type": "elu", "alpha": float(module.alpha)}
    if isinstance(module, nn.Tanh):
        return {"type": "tanh"}
    if isinstance(module, nn.Sigmoid):
        return {"type": "sigmoid"}
    if isinstance(module, nn.Softplus):
        return {"type": "softplus", "beta": float(module.beta), "threshold": float(module.threshold)}
    if isinstance(module, nn.GELU):
        return {"type": "gelu", "approximate": module.approximate}
    if isinstance(module, nn.Identity):
        return {"type": "identity"}
    return None


@torch.no_grad()
def decoder_spec(model, *, y=None, image_shape=None):
    """The decoder of ``model`` (a ``vc.VAE``) as the dict the page reads: z (Z,) -> pixel means (D,).

    ``y``: for a conditional model, the label (cond_dim,) the page decodes with (folded into the first
    layer's bias). The export is checked against ``model.decode_mean`` on random z; a model whose
    ``decode_mean`` is not its ``decoder`` followed by the likelihood's mean is refused.
    """
    decoder = getattr(model, "decoder", None)
    if not isinstance(model, nn.Module) or not isinstance(decoder, nn.Sequential):
        raise ValueError(
            f"model must be a vc.VAE (an MLP decoder: nn.Sequential of Linear layers and activations), "
            f"got {type(model).__name__}"
        )
    z_dim, cond_dim = int(model.z_dim), int(getattr(model, "cond_dim", 0) or 0)
    likelihood = getattr(model, "likelihood", None)
    if likelihood not in ("bernoulli", "gaussian"):
        raise ValueError(f"model.likelihood must be 'bernoulli' or 'gaussian', got {likelihood!r}")
    label = None
    if cond_dim:
        if y is None:
            raise ValueError(f"y: a conditional model (cond_dim={cond_dim}) needs the label to decode with")
        label = torch.as_tensor(y, dtype=torch.float64).detach().cpu().reshape(-1)
        if label.numel() != cond_dim:
            raise ValueError(f"y must have {cond_dim} entries (the model's cond_dim), got {label.numel()}")
    elif y is not None:
        raise ValueError("y is a conditional model's label; this model has cond_dim=0")

    layers, width = [], z_dim + cond_dim
    for i, module in enumerate(decoder):
        if isinstance(module, nn.Linear):
            if module.in_features != width:
                raise ValueError(
                    f"model.decoder[{i}] takes {module.in_features} inputs, the layer before gives {width}"
                )
            weight = module.weight.detach().cpu().double()
            bias = module.bias.detach().cpu().double() if module.bias is not None else torch.zeros(module.out_features)
            if label is not None and not layers:  # the label's columns become part of the bias
                bias = bias + weight[:, z_dim:] @ label
                weight = weight[:, :z_dim]
            layers.append(
                {
                    "type": "linear",
                    "in": int(weight.shape[1]),
                    "out": int(weight.shape[0]),
                    "weight": _b64(weight.numpy(), np.float32),  # (out, in), row-major
                    "bias": _b64(bias.numpy(), np.float32),
                }
            )
            width = module.out_features
        else:
            entry = _activation(module)
            if entry is None:
                raise ValueError(
                    f"model.decoder[{i}] is a {type(module).__name__}, which the page cannot run; supported: "
                    "Linear, ReLU, LeakyReLU, ELU, Tanh, Sigmoid, Softplus, GELU, Identity"
                )
            layers.append(entry)
    if not any(layer["type"] == "linear" for layer in layers):
        raise ValueError("model.decoder has no Linear layer")
    x_dim = int(model.x_dim)
    if width != x_dim:
        raise ValueError(f"model.decoder gives {width} outputs, the model's x_dim is {x_dim}")
    layers.append({"type": "sigmoid" if likelihood == "bernoulli" else "identity"})
    spec = {
        "format": DECODER_FORMAT,
        "z_dim": z_dim,
        "x_dim": x_dim,
        "image_shape": _image_shape(x_dim, image_shape),
        "likelihood": likelihood,
        "layers": layers,
    }
    _check_export(model, spec, label)
    return spec


@torch.no_grad()
def _check_export(model, spec, label):
    param = next(model.parameters())
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(16, spec["z_dim"], generator=gen, dtype=torch.float64) * 2
    yb = None if label is None else label.to(param.dtype).to(param.device).expand(16, -1)
    was_training = model.training
    model.eval()
    try:
        want = model.decode_mean(z.to(param.device, param.dtype), yb).double().cpu().numpy()
    finally:
        model.train(was_training)
    got = decode(spec, z.numpy())
    err = float(np.abs(got - want).max())
    if not err <= _EXPORT_TOLERANCE:
        raise ValueError(
            f"model: its decode_mean differs from the exported decoder by {err:.3g} (a model whose decode "
            "is not its decoder MLP followed by the likelihood's mean cannot be exported)"
        )


def export_decoder(model, path, *, y=None, image_shape=None):
    """Write ``decoder_spec(model, ...)`` to ``path`` (compact JSON, float32 weights) and return the spec."""
    spec = decoder_spec(model, y=y, image_shape=image_shape)
    _write(spec, path)
    return spec


def _layers(spec):
    if not isinstance(spec, Mapping) or spec.get("format") != DECODER_FORMAT:
        raise ValueError(f"spec must be a decoder spec (format {DECODER_FORMAT!r}), e.g. from decoder_spec(model)")
    cache = spec.get("_arrays") if isinstance(spec, dict) else None
    if cache is None:
        cache = []
        for i, layer in enumerate(spec["layers"]):
            if layer["type"] == "linear":
                n_in, n_out = layer["in"], layer["out"]
                w = _unb64(layer["weight"], np.float32, n_in * n_out, f"layer {i} weight").reshape(n_out, n_in)
                b = _unb64(layer["bias"], np.float32, n_out, f"layer {i} bias")
                cache.append(("linear", w.astype(np.float64), b.astype(np.float64)))
            else:
                cache.append((layer["type"], layer, None))
        if isinstance(spec, dict):
            spec["_arrays"] = cache  # decoded once per spec; _write and snippet leave it out
    return cache


def _erf(x):
    # Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), the formula live.js uses for exact GELU.
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return s * (1.0 - poly * np.exp(-a * a))


def _apply(kind, layer, h):
    if kind == "relu":
        return np.maximum(h, 0.0)
    if kind == "leaky_relu":
        return np.where(h >= 0, h, h * layer["slope"])
    if kind == "elu":
        return np.where(h > 0, h, layer["alpha"] * np.expm1(np.minimum(h, 0.0)))
    if kind == "tanh":
        return np.tanh(h)
    if kind == "sigmoid":
        with np.errstate(over="ignore"):
            return 1.0 / (1.0 + np.exp(-h))
    if kind == "softplus":
        beta, threshold = layer["beta"], layer["threshold"]
        with np.errstate(over="ignore"):
            return np.where(h * beta > threshold, h, np.log1p(np.exp(np.minimum(h * beta, threshold))) / beta)
    if kind == "gelu":
        if layer.get("approximate") == "tanh":
            return 0.5 * h * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (h + 0.044715 * h**3)))
        return 0.5 * h * (1.0 + _erf(h / math.sqrt(2.0)))
    if kind == "identity":
        return h
    raise ValueError(f"unknown layer type {kind!r} in the decoder spec")


def decode(spec, z):
    """The page's forward pass in numpy (float64 sums of the float32 weights): z (..., Z) -> means (..., D)."""
    arrays = _layers(spec)
    h = np.asarray(z, dtype=np.float64)
    if h.ndim == 0 or h.shape[-1] != spec["z_dim"]:
        raise ValueError(f"z must have shape (..., {spec['z_dim']}), got {h.shape}")
    for kind, a, b in arrays:
        h = h @ a.T + b if kind == "linear" else _apply(kind, a, h)
    return h


def _levels(p):
    """Grey levels 0..255 of values in [0, 1] (clipped), rounded half up as JavaScript's Math.round."""
    return np.floor(np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def pixels(spec, z):
    """The grey levels the page draws for ``z``: (H, W) uint8 for z (Z,), (N, H, W) for z (N, Z).

    Level 255 is full ink (drawn black); the page's canvas holds ``255 - level`` in each colour channel.
    """
    levels = _levels(decode(spec, z))
    return levels.reshape(*levels.shape[:-1], *spec["image_shape"])


# ----------------------------------------------------------------------------- precomputed results
def _vector(name, value):
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().double().numpy()
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} has entries that are not finite")
    return arr


def results_spec(settings, *, label="value", image_shape=None, ncols=None, bar_label="KL per dimension (nats)",
                 threshold=None):  # fmt: skip
    """Precomputed results as the dict the page's results slider reads.

    Args:
        settings: ``{setting: entry}`` in slider order, e.g. ``{0.5: {...}, 1.0: {...}}``; each entry has
            ``images`` ((N, D) values in [0, 1], or (N, H, W)), ``kl_per_dim`` (Z,) and ``active_units``
            (int), and optionally ``stats`` ({name: number}, shown as text) and ``caption`` (str).
        label: the setting's name on the slider (``"beta"``, ``"sigma_x^2"``).
        image_shape: (H, W); default: square images.
        ncols: images per row on the page (default: all in one row, up to 10).
        bar_label: the bar chart's title; threshold: a value drawn as a line across the bars (or None).
    """
    if not isinstance(settings, Mapping) or not settings:
        raise ValueError("settings must be a non-empty dict {setting: {'images', 'kl_per_dim', 'active_units'}}")
    if not isinstance(label, str) or not label:
        raise ValueError(f"label must be a non-empty string such as 'beta', got {label!r}")
    out, shape, n_images = [], None, None
    for key, entry in settings.items():
        where = f"settings[{key!r}]"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where} must be a dict with images, kl_per_dim and active_units")
        missing = [k for k in ("images", "kl_per_dim", "active_units") if k not in entry]
        if missing:
            raise ValueError(f"{where} lacks {', '.join(missing)}")
        images = entry["images"]
        if isinstance(images, torch.Tensor):
            images = images.detach().cpu().double().numpy()
        images = np.asarray(images, dtype=np.float64)
        if images.ndim == 3:
            images = images.reshape(images.shape[0], -1)
        if images.ndim != 2 or images.shape[0] == 0:
            raise ValueError(f"{where}['images'] must have shape (N, D) or (N, H, W), got {images.shape}")
        if not np.isfinite(images).all():
            raise ValueError(f"{where}['images'] has entries that are not finite")
        if shape is None:
            shape = _image_shape(images.shape[1], image_shape)
            n_images = images.shape[0]
        elif images.shape != (n_images, shape[0] * shape[1]):
            raise ValueError(f"{where}['images'] has shape {images.shape}; the first setting's is ({n_images}, "
                             f"{shape[0] * shape[1]}): every setting shows the same number of images")  # fmt: skip
        kl = _vector(f"{where}['kl_per_dim']", entry["kl_per_dim"])
        au = entry["active_units"]
        if isinstance(au, torch.Tensor):
            au = au.item()
        if isinstance(au, bool) or not isinstance(au, numbers.Integral) or not 0 <= au <= kl.size:
            raise ValueError(f"{where}['active_units'] must be an int in 0..{kl.size}, got {au!r}")
        stats = entry.get("stats", {}) or {}
        if not isinstance(stats, Mapping) or not all(
            isinstance(v, numbers.Real) and math.isfinite(float(v)) for v in stats.values()
        ):
            raise ValueError(f"{where}['stats'] must be a dict of finite numbers, got {stats!r}")
        value = float(key) if isinstance(key, numbers.Real) and not isinstance(key, bool) else None
        out.append(
            {
                "value": value,
                "label": f"{label} = {key:g}" if value is not None else f"{label} = {key}",
                "caption": str(entry.get("caption", "")),
                "images": _b64(_levels(images), np.uint8),
                "kl_per_dim": [float(f"{v:.6g}") for v in kl],
                "active_units": int(au),
                "stats": {str(k): float(f"{float(v):.6g}") for k, v in stats.items()},
            }
        )
    zs = {len(s["kl_per_dim"]) for s in out}
    if len(zs) != 1:
        raise ValueError(f"every setting's kl_per_dim must have the same length, got lengths {sorted(zs)}")
    if ncols is None:
        ncols = min(n_images, 10)
    if isinstance(ncols, bool) or not isinstance(ncols, numbers.Integral) or ncols < 1:
        raise ValueError(f"ncols must be a positive int, got {ncols!r}")
    if threshold is not None and not (isinstance(threshold, numbers.Real) and math.isfinite(threshold)):
        raise ValueError(f"threshold must be a number or None, got {threshold!r}")
    return {
        "format": RESULTS_FORMAT,
        "label": label,
        "image_shape": shape,
        "n_images": int(n_images),
        "ncols": int(ncols),
        "bar_label": str(bar_label),
        "threshold": None if threshold is None else float(threshold),
        "settings": out,
    }


def export_results(settings, path, **options):
    """Write ``results_spec(settings, **options)`` to ``path`` and return the spec."""
    spec = results_spec(settings, **options)
    _write(spec, path)
    return spec


def result_levels(spec, index):
    """The grey levels (N, H, W) uint8 of the images the page shows for setting number ``index``."""
    h, w = spec["image_shape"]
    return _unb64(spec["settings"][index]["images"], np.uint8, spec["n_images"] * h * w, "images").reshape(-1, h, w)


@torch.no_grad()
def collapse_results(models, x, shown, *, n_samples=0, threshold=0.01, sort_dims=True, seed=0):
    """The collapse view's results for ``{setting: trained model}``: one entry per model for ``results_spec``.

    Per model: reconstructions of ``shown`` ((N, D), decoder mean at the posterior mean), then
    ``n_samples`` prior samples (seeded with ``seed``); the mean KL per dimension over ``x``
    (sorted, largest first, with ``sort_dims``); the active units ``Var_x(E_q[z_j]) > threshold``
    over ``x`` (Burda et al. 2016); and stats: total KL (nats), ELBO (nats, seeded) and active units.
    """
    if not isinstance(models, Mapping) or not models:
        raise ValueError("models must be a non-empty dict {setting: trained model}, e.g. {beta: model}")
    out = {}
    for key, model in models.items():
        was_training = model.training
        model.eval()
        try:
            param = next(model.parameters())
            xs = x.to(param.device, param.dtype)
            mu, logvar = model.encode(xs)
            kl_d = vc.gaussian_kl_per_dim(mu, logvar).mean(0).cpu()  # (Z,)
            if sort_dims:
                kl_d = kl_d.sort(descending=True).values
            images = [model.reconstruct(shown.to(param.device, param.dtype))]
            if n_samples:
                vc.set_seed(seed)
                images.append(model.sample(n_samples))
            vc.set_seed(seed)
            elbo = model.elbo(xs).mean().item()
            au = vc.active_units(model, xs, threshold)
        finally:
            model.train(was_training)
        out[key] = {
            "images": torch.cat(images).clamp(0, 1).cpu(),
            "kl_per_dim": kl_d,
            "active_units": au,
            "stats": {"KL (nats)": float(kl_d.sum()), "ELBO (nats)": elbo, "active units": au},
        }
    return out


# ----------------------------------------------------------------------------- HTML
class LiveFigure:
    """A live figure's HTML: displayed as that HTML by Jupyter and the book, with a text alternative."""

    def __init__(self, html_text, text, path=None):
        self.html, self.text, self.path = html_text, text, path

    def _repr_html_(self):
        return self.html

    def __repr__(self):
        return self.text


def snippet(kind, *, src=None, data=None, options=None, label="", note=None):
    """The HTML of one live figure: a ``<div class="vc-live">`` that ``live.js`` turns into the figure.

    Args:
        kind: ``"latent"``, ``"results"``, ``"kl"`` or ``"samples"``: which figure (and which spec it reads).
        src: URL of the JSON, resolved against the folder of ``live.js`` (``data/<name>.json``), or
        data: the spec itself, embedded in the page (no separate file: also works from ``file://``).
        options: figure options (``latent``: dims, pad, extent, step) as a JSON object.
        label: what the figure shows, read by screen readers.
        note: what the div says until the script runs (a notebook's output, a page without ``live.js``);
            by default that the notebook's interactive version is in the next cell.
    """
    if kind not in ("latent", "results", "kl", "samples"):
        raise ValueError(f"kind must be 'latent', 'results', 'kl' or 'samples', got {kind!r}")
    if (src is None) == (data is None):
        raise ValueError("give exactly one of src (URL of the JSON file) and data (the spec, embedded)")
    attrs = {"class": f"vc-live vc-live-{kind}", "data-vc-live": kind, "role": "figure"}
    if label:
        attrs["aria-label"] = label
    if src is not None:
        if not isinstance(src, str) or not src or any(c in src for c in "\"'<> "):
            raise ValueError(f"src must be a URL such as 'data/ch04-latent.json', got {src!r}")
        attrs["data-src"] = src
    if options:
        attrs["data-options"] = json.dumps(options, separators=(",", ":"), allow_nan=False)
    head = "<div " + " ".join(f'{k}="{html.escape(str(v), quote=True)}"' for k, v in attrs.items()) + ">"
    if note is None:
        note = (
            "in the HTML book this area holds controls that redraw the figure in the page. Here it is not "
            "running; the interactive notebook version is in the next cell."
        )
    note = f'<p class="vc-live-fallback">Live figure: {html.escape(note)}</p>'
    body = ""
    if data is not None:
        clean = {k: v for k, v in data.items() if not k.startswith("_")}
        text = json.dumps(clean, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
        body = f'<script type="application/json" class="vc-live-data">{text}</script>'
    return f"{head}{note}{body}</div>"


def _output(name, out_dir):
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"name must be letters, digits, '-' or '_' (it names the JSON file), got {name!r}")
    if out_dir is None and os.environ.get("VAECOURSE_LIVE_DIR"):  # set by `make test`: the tree stays as it was
        out_dir = os.environ["VAECOURSE_LIVE_DIR"]
    if out_dir is None:
        if not (Path.cwd() / "_static").is_dir():
            raise ValueError(
                f"out_dir: no _static/ folder in {Path.cwd()} (run the notebook from the book's folder, "
                "pass out_dir=<book>/_static/live/data, or use inline=True)"
            )
        out_dir = Path.cwd() / DATA_DIR
    return Path(out_dir) / f"{name}.json"


def _shown(path):
    """``path`` as the text alternative names it: relative to the current folder where it is under it."""
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return Path(path).as_posix()


def _number(name, value, positive=True):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return float(value)


def _figure(kind, spec, name, label, *, inline, out_dir, src, options=None, note=None):
    """The LiveFigure for ``spec``: embedded in the page (``inline``) or written to ``<out_dir>/<name>.json``
    and loaded from ``src`` (default ``data/<name>.json``); its text is ``label`` and where the data went."""
    if inline:
        path = None
        html_text = snippet(kind, data=spec, options=options, label=label, note=note)
    else:
        path = _output(name, out_dir)
        _write(spec, path)
        html_text = snippet(kind, src=src or f"data/{path.name}", options=options, label=label, note=note)
    where = f"; data in {_shown(path)}" if path else ""
    return LiveFigure(html_text, f"{label}. Live in the HTML book{where}.", path)


def _reals(name, values):
    """``values`` (a tensor, an array or a list of real numbers) as a flat list of floats."""
    bad = ValueError(f"{name} must be real numbers (a tensor, an array or a list), got {values!r:.80}")
    if isinstance(values, torch.Tensor):
        if values.dtype == torch.bool or values.is_complex():
            raise bad
        return values.detach().cpu().double().reshape(-1).tolist()
    try:
        a = np.asarray(values)
    except (TypeError, ValueError):
        raise bad from None
    if a.dtype.kind not in "iuf":  # strings, None, booleans, ragged lists
        raise bad
    return a.astype(np.float64).reshape(-1).tolist()


def latent_explorer(model, name, *, dims=None, pad=(0, 1), extent=3.0, step=0.1, y=None, inline=False,
                    out_dir=None, src=None, image_shape=None):  # fmt: skip
    """The latent explorer as a live figure: sliders over z and a 2-D pad, the decoded digit redrawn.

    Args:
        model: a trained ``vc.VAE`` (its decoder is exported: about 1.3 MB of JSON per 300k weights).
        name: the figure's name: its JSON is ``<out_dir>/<name>.json``.
        dims: the latent dimensions that get sliders (default: the first ``min(Z, 8)``); the rest stay 0.
        pad: two of those dimensions moved by dragging a point on a square pad (None: no pad).
        extent, step: the sliders' range (-extent..extent) and step, in prior standard deviations.
        y: a conditional model's label (cond_dim,).
        inline: embed the weights in the page instead of writing a file.
        out_dir: where the JSON goes (default ``_static/live/data`` under the current folder, ``book/``);
        src: its URL relative to ``live.js`` (default ``data/<name>.json``).
    """
    extent, step = _number("extent", extent), _number("step", step)
    if step > 2 * extent:
        raise ValueError(f"step must be at most 2 * extent = {2 * extent:g}, got {step:g}")
    z_dim = int(model.z_dim)
    dims = list(range(min(z_dim, 8))) if dims is None else list(dims)
    if not dims or any(isinstance(d, bool) or not isinstance(d, numbers.Integral) or not 0 <= d < z_dim for d in dims):
        raise ValueError(f"dims must be latent dimensions in 0..{z_dim - 1}, got {dims!r}")
    if len(set(dims)) != len(dims):
        raise ValueError(f"dims has repeats: {dims!r}")
    if pad is not None:
        pad = list(pad)
        if len(pad) != 2 or pad[0] == pad[1] or any(p not in dims for p in pad):
            raise ValueError(f"pad must be two different entries of dims {dims}, or None; got {pad!r}")
    spec = decoder_spec(model, y=y, image_shape=image_shape)
    options = {"dims": [int(d) for d in dims], "pad": pad, "extent": extent, "step": step}
    label = (
        f"Latent explorer: the decoder of a VAE with {z_dim} latent dimensions, drawn for the z chosen with "
        f"{len(dims)} slider(s)"
        + (f" or by dragging a point on a pad over z{pad[0] + 1} and z{pad[1] + 1}" if pad else "")
    )
    return _figure("latent", spec, name, label, inline=inline, out_dir=out_dir, src=src, options=options)


def results_explorer(settings, name, *, label="value", inline=False, out_dir=None, src=None, **options):
    """A slider over precomputed results as a live figure (see ``results_spec`` for ``settings``).

    ``settings`` is ``{setting: entry}`` (e.g. from ``collapse_results``) or a spec from ``results_spec``;
    ``options`` go to ``results_spec`` (image_shape, ncols, bar_label, threshold).
    """
    if isinstance(settings, Mapping) and settings.get("format") == RESULTS_FORMAT:
        spec = settings
    else:
        spec = results_spec(settings, label=label, **options)
    n, lab = len(spec["settings"]), spec["label"]
    text = (
        f"Results explorer: a slider over {n} trained settings of {lab} "
        f"({', '.join(s['label'] for s in spec['settings'])}); for each, {spec['n_images']} images, "
        "the KL per latent dimension as bars and the active units"
    )
    return _figure("results", spec, name, text, inline=inline, out_dir=out_dir, src=src)


def kl_explorer(mu, var, *, extent=3.0, var_range=(0.05, 5.0), step=0.05):
    """KL(N(mu, diag var) || N(0, I)) as a live figure: a mean and a variance slider per dimension.

    The page draws the density of each q_j against the prior and KL_j = (mu_j^2 + var_j - 1 - log var_j) / 2
    as bars, with the total; ``mu`` and ``var`` (1 to 4 dimensions, variances, not log-variances) are
    where the sliders start. The spec is a few numbers, embedded in the page.
    """
    mu = [_number("mu", m, positive=False) for m in _reals("mu", mu)]
    var = [_number("var", v) for v in _reals("var", var)]
    if not 1 <= len(mu) <= 4 or len(var) != len(mu):
        raise ValueError(f"mu and var must hold the same number (1 to 4) of dimensions, got {len(mu)} and {len(var)}")
    extent, step = _number("extent", extent), _number("step", step)
    bounds = _reals("var_range", var_range)
    if len(bounds) != 2 or not 0 < bounds[0] < bounds[1] < math.inf:
        raise ValueError(f"var_range must be (low, high) with 0 < low < high, got {var_range!r}")
    lo, hi = bounds
    if any(abs(m) > extent for m in mu) or any(not lo <= v <= hi for v in var):
        raise ValueError(f"mu must lie in [-{extent:g}, {extent:g}] and var in [{lo:g}, {hi:g}], got {mu} and {var}")
    spec = {"format": KL_FORMAT, "mu": mu, "var": var, "extent": extent, "var_min": lo, "var_max": hi, "step": step}
    kl = vc.gaussian_kl_per_dim(torch.tensor(mu, dtype=torch.float64), torch.tensor(var, dtype=torch.float64).log())
    kl = kl.tolist()  # what the page computes as (mu_j^2 + var_j - 1 - log var_j) / 2
    label = (
        f"KL explorer: a mean and a variance slider for each of the {len(mu)} dimensions of q = N(mu, diag sigma^2); "
        "the densities of q_j against the prior N(0, 1), KL_j as bars and the total"
    )
    start = ", ".join(f"{v:.3f}" for v in kl)
    text = f"{label}. At mu = {tuple(mu)}, sigma^2 = {tuple(var)}: KL = {sum(kl):.3f} nats ({start})."
    note = "in the HTML book this area holds sliders that redraw the figure in the page; here it is not running."
    return LiveFigure(snippet("kl", data=spec, label=label, note=note), text + " Live in the HTML book.")


def samples_spec(settings, *, label, x_label, lines=None, bins=40):
    """The JSON of a samples explorer.

    Args:
        settings: ``{setting: values}``, in slider order; ``values`` is a 1-D tensor or array of repeated
            estimates (at least 2, finite), e.g. ``{K: 400 draws of the K-sample IWAE bound}``.
        label: what the slider moves (``"K"``); x_label: the histogram's axis (``"estimate (nats)"``).
        lines: ``{name: value}`` drawn as vertical lines (``{"log p(x)": -11.4}``); the page reports the
            share of estimates above each.
        bins: histogram bins over the range of every setting's values (one axis for all).
    The spec holds the values to 4 decimals and the bin edges; ``samples_counts`` gives the counts drawn.
    """
    if not isinstance(settings, Mapping) or not settings:
        raise ValueError("settings must be a non-empty {setting: values} mapping")
    if isinstance(bins, bool) or not isinstance(bins, numbers.Integral) or not 2 <= bins <= 200:
        raise ValueError(f"bins must be a whole number from 2 to 200, got {bins!r}")
    entries, every = [], []
    for key, values in settings.items():
        v = np.array(_reals(f"settings[{key!r}]", values)).round(4)
        if v.size < 2 or not np.isfinite(v).all():
            raise ValueError(f"settings[{key!r}] must hold at least 2 finite values")
        entries.append({"label": f"{label} = {key}", "values": v.tolist()})
        every.append(v)
    if lines is not None and not isinstance(lines, Mapping):
        raise ValueError(f"lines must be a {{name: value}} mapping, got {lines!r:.80}")
    lines = {str(k): _number(f"lines[{k!r}]", v, positive=False) for k, v in (lines or {}).items()}
    allv = np.concatenate(every + [np.array(list(lines.values()))])
    lo, hi = float(allv.min()), float(allv.max())
    pad = 0.02 * (hi - lo) if hi > lo else 1.0
    edges = np.linspace(lo - pad, hi + pad, int(bins) + 1)
    return {
        "format": SAMPLES_FORMAT,
        "label": str(label),
        "x_label": str(x_label),
        "settings": entries,
        "lines": [{"label": k, "value": v} for k, v in lines.items()],
        "edges": [float(e) for e in edges],
    }


def samples_counts(spec, index):
    """The histogram counts the page draws for setting ``index`` (right-open bins, the last one closed)."""
    counts, _ = np.histogram(np.asarray(spec["settings"][index]["values"]), bins=np.asarray(spec["edges"]))
    return counts


def samples_explorer(settings, name, *, label, x_label, lines=None, bins=40, inline=False, out_dir=None, src=None):
    """A slider over settings of repeated estimates, as a live figure (see ``samples_spec``).

    ``settings`` is ``{setting: values}`` or a spec from ``samples_spec``. The spec goes to
    ``<out_dir>/<name>.json`` (as for ``results_explorer``), or into the page with ``inline=True``.
    """
    if isinstance(settings, Mapping) and settings.get("format") == SAMPLES_FORMAT:
        spec = settings  # a spec made by samples_spec
    else:
        spec = samples_spec(settings, label=label, x_label=x_label, lines=lines, bins=bins)
    names = ", ".join(s["label"] for s in spec["settings"])
    refs = " and ".join(f"{line['label']} ({line['value']:.2f})" for line in spec["lines"])
    text = (
        f"Samples explorer: a slider over {len(spec['settings'])} settings ({names}); for each, the histogram of "
        f"{len(spec['settings'][0]['values'])} repeated estimates of {spec['x_label']}"
        + (f", with lines at {refs}" if refs else "")
    )
    note = "in the HTML book this area holds a slider that redraws the histogram in the page; here it is not running."
    return _figure("samples", spec, name, text, inline=inline, out_dir=out_dir, src=src, note=note)
