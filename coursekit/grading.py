"""What the exercises' test cells share, written once: comparisons, seeds, own-work checks, pointers
into the chapters. Every test cell (visible or hidden) imports it and is left with a one-line
docstring and its asserts::

    import coursekit.grading as vg

    kl = vg.own(gaussian_kl)                     # AssertionError if gaussian_kl delegates
    vg.assert_close(kl(mu, lv), ref, 1e-5, "KL for a (5, 3) batch", see=vg.see(3, "Deriving the formula"))

API (stable; the capstone's tests use it too):

    error(actual, expected, *, rel=True) -> float
        max |actual - expected| / (1 + |expected|) (or max |actual - expected| with ``rel=False``);
        ``inf`` unless ``actual`` is a real torch.Tensor with the shape and dtype of ``expected``.
    assert_close(actual, expected, tol, what, *, rel=True, see="")
        AssertionError unless ``error(...) < tol``; the message names ``what``, says what was expected
        (type, shape, dtype or values) and what came back, then ``see``.
    expect(condition, message, see="")
        ``assert condition, message + see`` as a function (for checks written on one line).
    is_tensor(x) -> bool: ``x`` is a real torch.Tensor (not a subclass, not a look-alike).
    seeded(seed) -> torch.Generator on the default device, seeded; ``randn(*shape, seed=, dtype=, scale=)``.
    own(f, *, library=False, allow=(), see="") -> a callable that calls f
        AssertionError unless ``f`` is a plain function written in the notebook that (with the notebook
        functions it calls) does not use vaecourse or torch.distributions (``library=True`` permits
        them). Calls through the result run with vaecourse's and torch.distributions' functions
        switched off (unless ``library``) and with every vaecourse model among the arguments replaced
        by a copy whose estimators (``elbo``, ``iwae_bound``, ``log_weights``, ``exact_elbo``, ...,
        see ``ESTIMATORS``) raise, except those named in ``allow``: an answer that hands its work to
        the library fails every test of that function, not only an "own work" test.
    by_hand(names, banned, see="")
        The last notebook cells that assigned ``names`` (IPython's input history) use none of
        ``banned`` (directly or through a notebook function): a value worked out by hand.
    see(chapter, section) -> str
        '(see Chapter 3, "Deriving the formula": 03_gaussian_kl.ipynb#deriving-the-formula)'; chapter
        0 is not a chapter; ``section`` is a heading of that chapter (tests/test_exercises.py checks).
    Tampered
        AssertionError raised when torch or torch.Tensor was modified since this module was imported.

Where it lives, and why: in ``coursekit``, installed with ``vaecourse``, so that the visible tests run
wherever a student has the course installed, and the grading sandbox's kernel reaches it (both packages
are mounted read-only there). The threat is the student's own code, which runs in the same kernel before
the hidden tests and can rebind anything importable. The grading guard
(``autograder/vaecourse_guard.py``) imports this module before the submission's first cell and, before
every test cell, puts back its whole namespace (constants included), its functions' code, defaults and
its classes' methods, along with builtins, torch and vaecourse. This module checks on its side that
``torch.Tensor``'s methods are still those it saw at import (``Tampered``), that no torch-function or
dispatch mode is active, and that answers are real tensors (``type(x) is`` the class seen at import, so
a rebound ``torch.Tensor`` fools nothing). It keeps no mutable state (tuples, not lists), so there is
nothing for a submission to edit in place. An answer called through ``own`` cannot rebind the test
cell's names or this module's for what follows in the cell: both are put back after each call, and torch
is checked again.

Limits: code in the same process can always reach what the tests use; the guard and these checks stop
the ways the round trip's cheats (tests/exercise_kit.py, tests/sandbox_attacks.py) try, and the
sandbox keeps hidden tests and other students' files out of reach.
"""

import ast
import copy
import dis
import math
import types

import torch

__all__ = [
    "CHAPTERS",
    "ESTIMATORS",
    "Tampered",
    "assert_close",
    "by_hand",
    "error",
    "expect",
    "is_tensor",
    "own",
    "randn",
    "seeded",
    "see",
]

_INF = math.inf  # a constant of this module (put back with it), not math's attribute, which a notebook can rebind

# number -> (notebook, title): where a failed test points the student
CHAPTERS = (
    (1, "01_latent_variable_models", "Latent-variable models"),
    (2, "02_elbo", "The evidence lower bound"),
    (3, "03_gaussian_kl", "The Gaussian KL in closed form"),
    (4, "04_reparameterization", "The reparameterization trick"),
    (5, "05_posterior_collapse", "Posterior collapse"),
    (6, "06_iwae", "Importance-weighted autoencoders"),
)
# a package model's methods that compute what an exercise asks for (refused inside `own` calls)
ESTIMATORS = (
    "elbo",
    "log_weights",
    "_log_weights",
    "iwae_bound",
    "log_likelihood",
    "exact_elbo",
    "kl_to_posterior",
    "log_marginal",
    "posterior",
    "_posterior",
    "_posterior_precision",
    "marginal",
    "set_optimal_encoder",
)
BANNED_MODULES = ("vaecourse", "coursekit", "torch.distributions")
BANNED_WORDS = ("distributions", "kl_divergence")

_ABSENT = object()
_Tensor = torch.Tensor  # the real class, as seen before any submission ran
_FunctionType, _CodeType, _ModuleType = types.FunctionType, types.CodeType, types.ModuleType
_METHODS = tuple(
    (name, getattr(_Tensor, name))
    for name in ("__sub__", "__add__", "__mul__", "__truediv__", "__eq__", "__lt__", "__le__", "__gt__")
    + ("__ge__", "__bool__", "__float__", "abs", "max", "item", "double", "detach", "clone", "numel", "sum")
    + ("shape", "dtype", "tolist", "flatten", "argmax", "isfinite", "all", "to")
)
_TORCH = tuple((name, getattr(torch, name)) for name in ("allclose", "isclose", "tensor", "as_tensor", "zeros"))


class Tampered(AssertionError):
    """torch or torch.Tensor was modified after this module was imported."""


def _untampered():
    changed = [n for n, v in _METHODS if getattr(_Tensor, n, None) is not v]
    changed += [f"torch.{n}" for n, v in _TORCH if getattr(torch, n, None) is not v]
    if changed:
        raise Tampered(f"torch has been modified ({', '.join(changed)}): the tests cannot trust it")
    try:  # no torch-function mode other than torch.set_default_device's, no dispatch mode
        from torch.overrides import _get_current_function_mode_stack
        from torch.utils._python_dispatch import _get_current_dispatch_mode_stack

        modes = _get_current_function_mode_stack()
        dispatch = _get_current_dispatch_mode_stack()
    except ImportError:  # another torch: nothing to look at
        return
    if dispatch or any(type(m).__module__ != "torch.utils._device" for m in modes):
        raise Tampered("a torch function or dispatch mode is active: the tests cannot trust torch")


def error(actual, expected, *, rel=True):
    """max |actual - expected| / (1 + |expected|) (or absolute, ``rel=False``); inf unless ``actual``
    is a real torch.Tensor with the shape and dtype of ``expected``."""
    _untampered()
    if type(actual) is not _Tensor or actual.shape != expected.shape or actual.dtype != expected.dtype:
        return _INF
    if actual.numel() == 0:
        return 0.0
    ref = expected.detach().double()
    diff = (actual.detach().double() - ref).abs()
    worst = (diff / (ref.abs() + 1) if rel else diff).max().item()
    return _INF if worst != worst else worst  # NaN counts as wrong


def _show(t):
    values = t.detach().double().flatten()[:4].tolist()
    text = ", ".join(f"{v:.6g}" for v in values)
    return f"[{text}{', ...' if t.numel() > 4 else ''}]" if t.dim() else text


def _mismatch(actual, expected, err, tol, rel):
    """Expected versus got, in words: the first thing that differs."""
    shape, dtype = tuple(expected.shape), str(expected.dtype).replace("torch.", "")
    if type(actual) is not _Tensor:
        return f"expected a torch.Tensor of shape {shape} ({dtype}), got {type(actual).__name__}"
    if actual.shape != expected.shape:
        return f"expected shape {shape}, got {tuple(actual.shape)}"
    if actual.dtype != expected.dtype:
        return f"expected dtype {dtype}, got {str(actual.dtype).replace('torch.', '')}"
    if not bool(actual.detach().isfinite().all()):
        return f"expected finite values {_show(expected)}, got {_show(actual)}"
    diff = (actual.detach().double() - expected.detach().double()).abs()
    if rel:
        diff = diff / (expected.detach().double().abs() + 1)
    at = int(diff.flatten().argmax())
    want, got = expected.detach().double().flatten()[at].item(), actual.detach().double().flatten()[at].item()
    where = f" at flat index {at}" if expected.numel() > 1 else ""
    kind = "relative error" if rel else "error"
    return f"expected {want:.6g}{where}, got {got:.6g} ({kind} {err:.2g}, tolerance {tol:g})"


def assert_close(actual, expected, tol, what, *, rel=True, see=""):
    """AssertionError unless ``error(actual, expected, rel=rel) < tol``, with a message that teaches."""
    err = error(actual, expected, rel=rel)
    if not err < tol:
        raise AssertionError(f"{what}: {_mismatch(actual, expected, err, tol, rel)} {see}".rstrip())


def expect(condition, message, see=""):
    """``assert condition`` with ``message`` and a pointer into the chapters."""
    if not condition:
        raise AssertionError(f"{message} {see}".rstrip())


def is_tensor(x):
    """``x`` is a real torch.Tensor (the class seen at import, whatever ``torch.Tensor`` is bound to now)."""
    return type(x) is _Tensor


def seeded(seed):
    """A torch.Generator on the default device (torch.set_default_device), seeded with ``seed``."""
    return torch.Generator(torch.empty(0).device).manual_seed(seed)


def randn(*shape, seed, dtype=torch.float64, scale=1.0):
    """``scale`` times standard normal draws of ``shape`` from ``seeded(seed)``."""
    return scale * torch.randn(shape, generator=seeded(seed), dtype=dtype)


def see(chapter, section):
    """Where the chapters cover what a test checks: '(see Chapter 3, "Deriving the formula": ...)'."""
    for number, notebook, _title in CHAPTERS:
        if number == chapter:
            anchor = "-".join("".join(ch for ch in section.lower() if ch.isalnum() or ch in " -").split())
            return f'(see Chapter {number}, "{section}": {notebook}.ipynb#{anchor})'
    raise ValueError(f"chapter must be one of 1-{len(CHAPTERS)}, got {chapter!r}")


# ----------------------------------------------------------------------------- own work


def _global_names(code):
    """The global and attribute names a code object uses, its nested functions' and lambdas' included."""
    names, codes = set(), [code]
    while codes:
        co = codes.pop()
        names |= set(co.co_names)
        codes += [k for k in co.co_consts if type(k) is _CodeType]
    return names


def _library_use(f, banned=BANNED_MODULES, words=BANNED_WORDS):
    """What in f (or the notebook functions it calls) reaches a banned module: a description, or ''."""
    if type(f) is not _FunctionType:
        return f"a {type(f).__name__}, not a function written in the notebook"
    seen, todo = set(), [f]
    while todo:
        g = todo.pop()
        if id(g) in seen:
            continue
        seen.add(id(g))
        names = _global_names(g.__code__)
        hits = sorted(names & set(words))
        if hits:
            return f"{g.__name__} uses {hits[0]}"
        objs = [(n, g.__globals__.get(n)) for n in sorted(names)]
        objs += [("a closure variable", c.cell_contents) for c in (g.__closure__ or ()) if _filled(c)]
        objs += [("a default argument", v) for v in (g.__defaults__ or ())]
        objs += [("a default argument", v) for v in (g.__kwdefaults__ or {}).values()]
        for label, o in objs:
            mod = o.__name__ if type(o) is _ModuleType else getattr(o, "__module__", None)
            if type(mod) is str and mod.startswith(banned):
                return f"{g.__name__} uses {label} ({mod})"
            if type(o) is _FunctionType and o.__module__ == "__main__":
                todo.append(o)
    return ""


def _estimator_use(f, refused):
    """A refused model estimator that f (or a notebook function it calls) reads as an attribute
    (``model.elbo``, ``vc.VAE.iwae_bound``): its name, or ''."""
    seen, todo = set(), [f]
    while todo:
        g = todo.pop()
        if type(g) is not _FunctionType or id(g) in seen:
            continue
        seen.add(id(g))
        codes = [g.__code__]
        while codes:
            co = codes.pop()
            codes += [k for k in co.co_consts if type(k) is _CodeType]
            for ins in dis.get_instructions(co):
                if ins.opname in ("LOAD_ATTR", "LOAD_METHOD") and ins.argval in refused:
                    return ins.argval
                if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
                    o = g.__globals__.get(ins.argval)
                    if type(o) is _FunctionType and o.__module__ == "__main__":
                        todo.append(o)
    return ""


def _filled(cell):
    try:
        return cell.cell_contents is not None
    except ValueError:  # an empty cell
        return False


class Delegated(RuntimeError):
    """Raised by the library inside an ``own`` call: the answer handed its work to vaecourse."""


def _refuse(what):
    def refused(*args, **kwargs):
        raise Delegated(f"{what} is not available in this exercise: write it yourself")

    return refused


def _on(model, name):
    def method(self, *args, **kwargs):
        return getattr(model, name)(*args, **kwargs)

    return method


def _restricted(model, allow):
    """A shallow copy of a package model whose estimators raise (those in ``allow`` excepted)."""
    cls = type(model)
    methods = {n: _refuse(f"model.{n}") for n in ESTIMATORS if n not in allow and hasattr(cls, n)}
    methods.update({n: _on(model, n) for n in allow})  # an allowed estimator runs on the model itself
    clone = copy.copy(model)
    clone.__class__ = type(cls.__name__, (cls,), methods)
    return clone


def _library_targets():
    """The package's functions (and torch.distributions' KL and Gaussians) that an ``own`` call switches
    off. The models' modules are left alone: their methods (``encode``, ``log_px_z``) keep working."""
    import sys

    import torch.distributions as dists

    targets = []
    for name in ("vaecourse", "vaecourse.losses", "vaecourse.train"):
        module = sys.modules.get(name)
        for k, v in list(vars(module).items()) if module is not None else ():
            if type(v) is _FunctionType or type(v).__name__ == "builtin_function_or_method":
                targets.append((module, k))
    for module in (dists, dists.kl, dists.normal, dists.multivariate_normal, dists.independent):
        for k in ("kl_divergence", "Normal", "Independent", "MultivariateNormal"):
            if k in vars(module):
                targets.append((module, k))
    return tuple(targets)


class _Own:
    """Calls the student's function with the library switched off and package models restricted."""

    def __init__(self, f, library, allow):
        self.f, self.library, self.allow = f, library, tuple(allow)
        self.__name__ = getattr(f, "__name__", "the answer")

    def __call__(self, *args, **kwargs):
        from vaecourse.models import _LatentModel

        args = tuple(_restricted(a, self.allow) if isinstance(a, _LatentModel) else a for a in args)
        kwargs = {k: _restricted(v, self.allow) if isinstance(v, _LatentModel) else v for k, v in kwargs.items()}
        saved = ()
        if not self.library:
            saved = tuple((m, k, vars(m)[k]) for m, k in _library_targets())
            for m, k, _ in saved:
                setattr(m, k, _refuse(f"{getattr(m, '__name__', '?')}.{k}"))
        import sys

        caller = sys._getframe(1).f_globals  # the test cell's namespace: the answer may not rebind it
        before = tuple(caller.items())
        try:
            return self.f(*args, **kwargs)
        finally:
            for m, k, v in reversed(saved):
                setattr(m, k, v)
            for k, v in before:
                if caller.get(k, _ABSENT) is not v:
                    caller[k] = v
            here = globals()
            for k, v in _SELF:
                if here.get(k, _ABSENT) is not v:
                    here[k] = v
            _untampered()


def own(f, *, library=False, allow=(), see=""):
    """``f`` checked to be the student's own work; calls through the result cannot reach the library."""
    name = getattr(f, "__name__", None) if type(f) is _FunctionType else None
    if library:
        used = "" if type(f) is _FunctionType else f"a {type(f).__name__}, not a function written in the notebook"
    else:
        used = _library_use(f)
    estimator = "" if used else _estimator_use(f, tuple(n for n in ESTIMATORS if n not in allow))
    if estimator:
        shown = name or "the answer"
        raise AssertionError(
            f"{shown} must compute this itself: it calls the model's {estimator} method, which is "
            f"off limits in this exercise {see}".rstrip()
        )
    if used:
        shown = name or "the answer"
        raise AssertionError(
            f"{shown} must be your own code, with tensor operations: {used}, which hands the work to "
            f"the library (vaecourse and torch.distributions are off limits here) {see}".rstrip()
        )
    return _Own(f, library, allow)


def by_hand(names, banned, see=""):
    """The last cells that assigned each of ``names`` (IPython's input history) use none of ``banned``,
    directly or through a notebook function they call. Outside IPython there is no history: no check."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        shell = None
    history = list(shell.user_ns.get("_ih", [])) if shell is not None else []
    if not any("by_hand(" in source for source in history):  # history is not kept (not IPython)
        return
    ns, last = shell.user_ns, {}
    for source in history:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if type(node) is ast.Name and type(node.ctx) is ast.Store and node.id in names:
                last[node.id] = tree
    missing = [n for n in names if n not in last]
    expect(not missing, f"set {', '.join(missing)} with plain assignments (name = ...)", see)
    used = set()
    for tree in last.values():
        for node in ast.walk(tree):
            if type(node) is ast.Name:
                used |= {node.id} | _code_names(ns.get(node.id), set())
            elif type(node) is ast.Attribute:
                used.add(node.attr)
    bad = sorted(used & set(banned))
    expect(not bad, f"work {', '.join(names)} out by hand: they must not come from {', '.join(bad)}", see)


def _code_names(f, seen):
    """Global names used by a notebook function and the notebook functions it calls."""
    if type(f) is not _FunctionType or f.__module__ != "__main__" or id(f) in seen:
        return set()
    seen.add(id(f))
    names = _global_names(f.__code__)
    for n in list(names):
        names |= _code_names(f.__globals__.get(n), seen)
    return names


_SELF = tuple(globals().items())  # this module as imported: put back after every call of an answer
