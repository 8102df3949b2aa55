"""Input checks: the one place where what enters the package is checked, so that a wrong input gets an
error that names it.

Two kinds of check, used in two kinds of place:
    * cheap ones (type, dtype, shape) that never read a tensor's values: the maths functions in
      ``losses.py`` and the models' ``encode``/``decode`` run them on every call;
    * value scans (NaN, infinities, the [0, 1] range of a Bernoulli target) that read the data: run where
      data enters the package (``vc.train``, a model's estimators, the plots), once per call.

Holds:
    tensor, same_shape, broadcast_shape, width -- floating tensors of the right shape (cheap).
    values                                     -- finite entries, optionally in [0, 1] (a scan).
    integer, real, number                      -- Python scalars (a one-element tensor is read out).
    model, model_input, labels                 -- a package model and what its estimators are given.
    as_tensor, plot_data, plot_label, latent_dims -- the plots' looser inputs (array-likes, one label for all).
    train_args                                 -- everything ``vc.train`` is given, checked before it starts.
    objective_terms                            -- what the model's objective returned to ``vc.train``.
"""

import inspect
import math
import numbers
import operator

import torch

# ----------------------------------------------------------------------------- tensors


def tensor(name, value, *, allow_number=False):
    """``value`` as a floating tensor (a Python number too, with ``allow_number``); else a ValueError."""
    if allow_number and isinstance(value, numbers.Real) and not isinstance(value, bool):
        value = torch.tensor(float(value))
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise ValueError(
            f"{name} must have a floating dtype (e.g. torch.float32), got {value.dtype}; use {name}.float()"
        )
    return value


def at_least_1d(name, value):
    if value.dim() == 0:
        raise ValueError(f"{name} must have at least one dimension (sums run over the last one)")


def same_shape(name_a, a, name_b, b):
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")


def broadcast_shape(**named):
    """The shape the named tensors broadcast to (at least 1-D); else a ValueError naming them."""
    shapes = [tuple(t.shape) for t in named.values()]
    ndim = max(len(s) for s in shapes)
    out = []
    for i in range(-ndim, 0):  # numpy's rule, right-aligned: sizes must agree or be 1
        sizes = {s[i] for s in shapes if len(s) >= -i} - {1}
        if len(sizes) > 1:
            desc = ", ".join(f"{n} {s}" for n, s in zip(named, shapes))
            raise ValueError(f"shapes do not broadcast: {desc}")
        out.append(sizes.pop() if sizes else 1)
    if not out:
        raise ValueError(f"{next(iter(named))} must have at least one dimension (sums run over the last one)")
    return torch.Size(out)


def width(name, t, size):
    """That ``t`` is a tensor of shape (..., size): the check of ``encode`` and ``decode``."""
    if not isinstance(t, torch.Tensor) or t.dim() < 1 or t.shape[-1] != size:
        got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
        raise ValueError(f"{name} must be a tensor of shape (..., {size}), got {got}")


def values(name, x, *, unit_interval=False, why="for a Bernoulli likelihood"):
    """A ValueError naming ``name`` if x has NaN/infinite entries or, with ``unit_interval``, entries
    outside [0, 1]. One pass over x (``aminmax``: a NaN shows up at both ends)."""
    if x.numel() == 0:
        return
    lo, hi = (float(v) for v in torch.aminmax(x.detach()))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if unit_interval and (lo < 0 or hi > 1):
        raise ValueError(f"{name} must lie in [0, 1] {why}, got values in [{lo}, {hi}]")


# ----------------------------------------------------------------------------- scalars


def scalar(value):
    """A one-element tensor or NumPy array as its Python number; anything else as it is."""
    size = value.numel() if isinstance(value, torch.Tensor) else getattr(value, "size", None)
    return value.item() if size == 1 and hasattr(value, "item") else value


def integer(name, value, low=1, high=None):
    """int(value) for an integer in [low, high) (bools refused); else a ValueError."""
    value = scalar(value)
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not ok or value < low or (high is not None and value >= high):
        where = f">= {low}" if high is None else f"in [{low}, {high})"
        raise ValueError(f"{name} must be an integer {where}, got {value!r}")
    return int(value)


def real(name, value, where="", within=lambda v: True):
    """float(value) for a finite real number (not a bool) that ``within`` accepts; ``where`` says which."""
    value = scalar(value)
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not within(value):
        raise ValueError(f"{name} must be a finite number{' ' + where if where else ''}, got {value!r}")
    return float(value)


def number(name, value, low=0.0):
    """A finite number >= ``low`` (0 by default)."""
    return real(name, value, "" if low == -math.inf else f">= {low:g}", lambda v: v >= low)


# ----------------------------------------------------------------------------- models and their inputs


def model(m):
    """A TypeError naming what was passed if ``m`` is not one of the package's models (or a subclass)."""
    from .models import _LatentModel

    if not isinstance(m, _LatentModel):
        raise TypeError(f"model must be a vc.VAE or vc.LinearGaussianVAE (or a subclass), got {type(m).__name__}")


def _bernoulli(m):
    return getattr(m, "likelihood", None) == "bernoulli"


def labels(m, y, lead):
    """y for a conditional model: labels broadcasting to (*lead, cond_dim); None for an unconditional one."""
    if not m.cond_dim:
        if y is not None:
            raise ValueError("this model is not conditional (cond_dim=0): leave y out")
        return
    want = (*lead, m.cond_dim)
    if y is None:
        raise ValueError(f"this is a conditional model: pass y (one-hot labels of shape {want})")
    one_hot = f"for class indices use torch.nn.functional.one_hot(labels, {m.cond_dim})"
    if not _broadcasts_to(y, want):
        shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        hint = f"; {one_hot}" if isinstance(y, torch.Tensor) and not y.is_floating_point() else ""
        raise ValueError(f"y must be a tensor of shape {want} (or ({m.cond_dim},) for all), got {shape}{hint}")
    p = next(m.parameters(), None)
    if p is not None and y.device != p.device:
        raise ValueError(f"y is on {y.device} but the model is on {p.device}; move y with y.to({str(p.device)!r})")
    if y.is_floating_point():
        values("y", y)
    elif y.dtype != torch.bool and not bool(((y == 0) | (y == 1)).all()):
        raise ValueError(f"integer y must hold one-hot rows of 0s and 1s; {one_hot}")


def _broadcasts_to(t, shape):
    if not isinstance(t, torch.Tensor) or t.dim() > len(shape) or t.shape[-1:] != shape[-1:]:
        return False
    try:
        return torch.broadcast_shapes(t.shape, shape) == shape
    except RuntimeError:
        return False


def model_input(m, x, y=None):
    """What a model's estimators (``elbo``, ``iwae_bound``, ``log_likelihood``, ...) are given: x of shape
    (..., D), floating, finite (in [0, 1] for a Bernoulli decoder), on the model's device and dtype; y."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"x must have a floating dtype, got {x.dtype}; convert with x.float()")
    if x.dim() < 1 or x.shape[-1] != m.x_dim:
        raise ValueError(f"x must have shape (B, {m.x_dim}), got {tuple(x.shape)}")
    values("x", x, unit_interval=_bernoulli(m), why="for a Bernoulli decoder")
    labels(m, y, x.shape[:-1])
    p = next(m.parameters(), None)
    if p is not None and x.device != p.device:
        raise ValueError(f"x is on {x.device} but the model is on {p.device}; move x with x.to({str(p.device)!r})")
    if p is not None and x.dtype != p.dtype:
        raise ValueError(
            f"x is {x.dtype} but the model's parameters are {p.dtype}; "
            f"convert x with x.to({p.dtype}) (or the model with model.to({x.dtype}))"
        )


# ----------------------------------------------------------------------------- the plots' inputs


def like(m):
    """The model's device and dtype, for the tensors a plot feeds it."""
    p = next(m.parameters())
    return {"device": p.device, "dtype": p.dtype}


def as_tensor(name, value, **to):
    """``value`` (a tensor or array-like) as a tensor, moved ``to`` a device and dtype if given."""
    if not isinstance(value, torch.Tensor):
        try:
            value = torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"{name} must be a tensor or an array of numbers, got {type(value).__name__}") from None
    return value.to(**to)


def plot_data(m, name, x, *, one=False):
    """x as the model's input on its device and dtype: (N, D), or with ``one`` a single example as (1, D)."""
    x = as_tensor(name, x, **like(m))
    d = m.x_dim
    if one:
        if x.numel() != d:
            raise ValueError(f"{name} must be one example of {d} values, e.g. shape ({d},), got {tuple(x.shape)}")
        x = x.reshape(1, d)
    elif x.dim() != 2 or x.shape[1] != d or x.shape[0] == 0:
        raise ValueError(f"{name} must have shape (N, {d}) with N >= 1, got {tuple(x.shape)}")
    values(name, x, unit_interval=_bernoulli(m), why="for a Bernoulli decoder")
    return x


def plot_label(m, y, n=None):
    """A conditional model's label for a plot: one (cond_dim,) label for every image or, with ``n``, one
    row per image; None for an unconditional model."""
    c = m.cond_dim
    if not c:
        if y is not None:
            raise ValueError("this model is not conditional (cond_dim=0): leave y out")
        return None
    want = f"({c},)" + ("" if n is None else f" or ({n}, {c})")
    if y is None:
        raise ValueError(f"this is a conditional model (cond_dim={c}): pass y=..., one-hot labels of shape {want}")
    y = as_tensor("y", y, **like(m))
    if y.shape not in ((c,), (1, c), *(() if n is None else ((n, c),))):
        raise ValueError(f"y must have shape {want}, got {tuple(y.shape)}")
    return y


def latent_dims(dims, z, name="dims", count=None):
    """``dims`` as a tuple of different latent dimensions in 0..z-1 (negative ones count from the end);
    with ``count``, exactly that many."""
    try:
        out = tuple(operator.index(d) for d in dims)  # ints, NumPy ints, integer 0-d tensors
    except TypeError:
        out = None
    if out is None or any(isinstance(d, bool) for d in dims) or not all(-z <= d < z for d in out):
        raise ValueError(
            f"{name} must hold latent dimensions in 0..{z - 1} (z_dim={z}) or -1..-{z} from the end, got {dims!r}"
        )
    out = tuple(d % z for d in out)
    if not out or len(set(out)) != len(out) or (count is not None and len(out) != count):
        many = "" if count is None else f"{count} "
        raise ValueError(f"{name} must be {many}different latent dimensions in 0..{z - 1} (z_dim={z}), got {dims!r}")
    return out


# ----------------------------------------------------------------------------- vc.train


def train_args(m, data, optimizer, dynamic_binarization, **options):
    """Check everything ``vc.train`` is given before its first step. Returns ``(x, y, options)``:
    the data (x (N, D), y (N, C) or None) and the options, converted."""
    model(m)
    if not any(p.requires_grad for p in m.parameters()):
        raise ValueError("model has nothing to train: every parameter has requires_grad=False")
    if optimizer is not None:
        steps = all(callable(getattr(optimizer, f, None)) for f in ("step", "zero_grad"))
        if isinstance(optimizer, type) or not steps:
            raise TypeError(f"optimizer must be a torch.optim.Optimizer over model.parameters(), got {optimizer!r:.80}")
        held = {id(p) for g in getattr(optimizer, "param_groups", ()) for p in g["params"]}
        if held and not any(id(p) in held for p in m.parameters()):
            raise ValueError("optimizer holds none of this model's parameters: make it with model.parameters()")
    if isinstance(data, (tuple, list)) and len(data) != 2:
        raise ValueError("data must be a tensor x or a pair (x, y)")
    x, y = data if isinstance(data, (tuple, list)) else (data, None)
    x = tensor("data", x)
    if x.dim() != 2 or x.shape[1] != m.x_dim or x.shape[0] == 0:
        raise ValueError(f"data must have shape (N, {m.x_dim}) with N >= 1, got {tuple(x.shape)}")
    unit = _bernoulli(m) or dynamic_binarization
    why = "for a Bernoulli decoder" if _bernoulli(m) else "for dynamic_binarization (it draws Bernoulli(x))"
    values("data", x, unit_interval=unit, why=why)
    if y is not None and not m.cond_dim:
        raise ValueError("this model is not conditional (cond_dim=0): pass data=x, not a pair (x, y)")
    if m.cond_dim:
        if y is None:
            raise ValueError("a conditional model needs data=(x, y) with y of shape (N, cond_dim)")
        y = torch.as_tensor(y)
        if y.shape != (x.shape[0], m.cond_dim):
            raise ValueError(f"y must have shape ({x.shape[0]}, {m.cond_dim}), got {tuple(y.shape)}")
        values("y", y.float())

    o = dict(options)
    o["epochs"], o["batch_size"], o["k"] = (integer(n, o[n]) for n in ("epochs", "batch_size", "k"))
    o["beta"], o["free_bits"] = number("beta", o["beta"]), number("free_bits", o["free_bits"])
    if optimizer is not None and o["lr"] is not None:  # it would be ignored: the optimizer has its own
        raise ValueError("lr is the learning rate of the Adam that train makes: with optimizer=, set it there")
    o["lr"] = 1e-3 if o["lr"] is None else real("lr", o["lr"], "> 0", lambda v: v > 0)
    if o["objective"] not in ("elbo", "iwae"):
        raise ValueError(f"objective must be 'elbo' or 'iwae', got {o['objective']!r}")
    if o["kl_schedule"] is not None and not callable(o["kl_schedule"]):
        raise ValueError("kl_schedule must be a callable step -> weight, e.g. vc.LinearSchedule(1000)")
    if o["objective"] == "iwae" and (o["free_bits"] or o["beta"] != 1.0 or o["kl_schedule"] is not None):
        raise ValueError("beta, kl_schedule and free_bits apply to objective='elbo' only")
    _objective_call(m, o["objective"])
    return x, y, o


# how vc.train calls the objective, which a model may override (on its class or on the instance):
# objective -> (method, the call as written in train, arguments of that shape)
_CALLS = {
    "elbo": ("elbo", "model.elbo(xb, beta, free_bits, y=yb, k=k, return_terms=True)", (None, 1.0, 0.0), {"k": 1}),
    "iwae": ("iwae_bound", "model.iwae_bound(xb, k, y=yb, return_terms=True)", (None, 1), {}),
}


def _objective_call(m, objective):
    """A TypeError, before the first step, if the model's objective cannot take the call ``vc.train`` makes."""
    method, call, args, kwargs = _CALLS[objective]
    try:
        signature = inspect.signature(getattr(m, method))
    except (TypeError, ValueError):  # a callable without a signature: its first call will tell
        return
    try:
        signature.bind(*args, y=None, return_terms=True, **kwargs)
    except TypeError as err:
        raise TypeError(
            f"vc.train calls {call}, and this model's version does not accept that ({err}): "
            "give the override the package's arguments (they may be passed on with *args, **kwargs)"
        ) from None


def objective_terms(objective, out, b):
    """``(bound, recon, kl)``, each of shape (b,), as the model's objective must return them to ``vc.train``."""
    if isinstance(out, tuple) and len(out) == 3 and all(isinstance(t, torch.Tensor) and t.shape == (b,) for t in out):
        return out
    if isinstance(out, torch.Tensor):
        got = f"a tensor of shape {tuple(out.shape)}"
    elif isinstance(out, tuple):
        got = "(" + ", ".join(str(tuple(t.shape)) if isinstance(t, torch.Tensor) else type(t).__name__ for t in out)
        got = f"a tuple {got})"
    else:
        got = type(out).__name__
    raise TypeError(f"{_CALLS[objective][1]} must return (bound, recon, kl), three tensors of shape ({b},), got {got}")
