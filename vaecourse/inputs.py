"""Input checks shared by the models, so that a wrong input gets a message that names it.

Holds:
    InputChecks -- a mixin for models with ``x_dim``, ``cond_dim`` and parameters: ``_check_x``
                   (x's type, dtype, shape and values), ``_check_y`` (a conditional model's labels)
                   and ``_check_input`` (both, plus x on the model's device and in its dtype).
    _check_model -- that a function given a model got one of this package's (a vc.VAE, a subclass...).
"""

import torch

from .losses import _check_values


def _broadcasts_to(t, shape):
    """Whether ``t`` is a tensor that broadcasts to ``shape`` without changing it."""
    if not isinstance(t, torch.Tensor) or t.dim() > len(shape) or t.shape[-1:] != shape[-1:]:
        return False
    try:
        return torch.broadcast_shapes(t.shape, shape) == shape
    except RuntimeError:
        return False


def _check_model(model):
    """A TypeError that names what was passed if ``model`` is not one of the package's models."""
    if not (isinstance(model, InputChecks) and isinstance(model, torch.nn.Module)):
        raise TypeError(f"model must be a vc.VAE or vc.LinearGaussianVAE (or a subclass), got {type(model).__name__}")


def _check_width(name, t, width):
    """That ``t`` is a tensor of shape (..., width): the cheap check of encode and decode (no value scan)."""
    if not isinstance(t, torch.Tensor) or t.dim() < 1 or t.shape[-1] != width:
        got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
        raise ValueError(f"{name} must be a tensor of shape (..., {width}), got {got}")


class InputChecks:
    """The checks every estimator runs on its inputs before any computation."""

    def _check_x(self, x):
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise ValueError(f"x must have a floating dtype, got {x.dtype}; convert with x.float()")
        if x.dim() < 1 or x.shape[-1] != self.x_dim:
            raise ValueError(f"x must have shape (B, {self.x_dim}), got {tuple(x.shape)}")
        bernoulli = getattr(self, "likelihood", None) == "bernoulli"
        _check_values("x", x, unit_interval=bernoulli, why="for a Bernoulli decoder")

    def _check_y(self, y, lead):
        """y for a conditional model: float labels broadcasting to (*lead, cond_dim); None otherwise."""
        if not self.cond_dim:
            if y is not None:
                raise ValueError("this model is not conditional (cond_dim=0): leave y out")
            return
        want = (*lead, self.cond_dim)
        if y is None:
            raise ValueError(f"this is a conditional model: pass y (one-hot labels of shape {want})")
        one_hot = f"for class indices use torch.nn.functional.one_hot(labels, {self.cond_dim})"
        if not _broadcasts_to(y, want):
            shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            hint = f"; {one_hot}" if isinstance(y, torch.Tensor) and not y.is_floating_point() else ""
            raise ValueError(f"y must be a tensor of shape {want} (or ({self.cond_dim},) for all), got {shape}{hint}")
        p = next(self.parameters(), None)
        if p is not None and y.device != p.device:
            raise ValueError(f"y is on {y.device} but the model is on {p.device}; move y with y.to({str(p.device)!r})")
        if y.is_floating_point():
            _check_values("y", y)
        elif y.dtype != torch.bool and not bool(((y == 0) | (y == 1)).all()):  # integer labels: one-hot 0/1
            raise ValueError(f"integer y must hold one-hot rows of 0s and 1s; {one_hot}")

    def _check_input(self, x, y=None):
        """``_check_x``, plus what the encoder needs: y, and x on the model's device and dtype."""
        self._check_x(x)
        self._check_y(y, x.shape[:-1])
        p = next(self.parameters(), None)
        if p is not None and x.device != p.device:
            raise ValueError(f"x is on {x.device} but the model is on {p.device}; move x with x.to({str(p.device)!r})")
        if p is not None and x.dtype != p.dtype:
            raise ValueError(
                f"x is {x.dtype} but the model's parameters are {p.dtype}; "
                f"convert x with x.to({p.dtype}) (or the model with model.to({x.dtype}))"
            )
