"""Runs inside the grading kernel: before each test statement, undo what a submission replaced.

``ResilientExecute`` (in ``vaecourse_grader.py``) sends this file's source to the kernel before the
notebook's first cell, in a namespace whose builtins are a private copy, and calls ``install`` with
the SHA-256 of every test statement's source (the grader runs a test cell one top-level statement
at a time). From then on IPython calls ``before`` ahead of each cell; for a test statement it

* puts back the functions, classes and modules of ``builtins``, ``math``, ``types``, torch,
  ``torch.distributions``, vaecourse (...) that the notebook rebound (``builtins.type = ...``,
  ``torch.allclose = ...``, ``vc.gaussian_kl = ...``), the code, defaults and closures of those
  functions (``f.__code__ = ...``), and the methods of ``torch.Tensor`` and of vaecourse's classes;
* puts back the whole namespace of the tests' helper module ``vaecourse.grading`` (its constants
  too, names a notebook added removed): every test cell uses it;
* hides, for that statement only, notebook globals named like a builtin (``type``, ``abs``, ``all``,
  ...) and points ``torch``, ``math``, ``np``, ``vc`` at the real modules.

After a test statement that succeeded, ``after`` checks that all of this still holds its saved value;
if the code the statement called (or a thread, a finalizer, a ``gc`` callback) replaced something,
the statement fails with ``TestTampered`` naming it. So a student function called in a test's
visible part cannot disarm its hidden part: that call's statement fails, and the next is restored.
From ``install`` on, an audit hook refuses ``sys.settrace``, ``sys.setprofile`` and
``sys.addaudithook``, which could run the notebook's code between a test's lines or as it starts.

After every cell it also removes what the notebook added to how IPython runs cells and reports errors
(input and AST transformers, ``set_custom_exc``, event callbacks, replaced shell methods). The grader
checks from outside too: an error reply without an error output becomes one, and after each test cell
a check that must fail has to report an error (``ResilientExecute._probe``).

Module state that is not a function, class or module (flags, caches) is left alone, and nothing is
put back in the notebook's own cells, so correct code never sees a difference.
"""

import gc
import hashlib
import importlib
import sys
import types

from IPython import get_ipython

MODULES = (
    "builtins",
    "math",
    "types",
    "random",
    "ast",
    "functools",
    "operator",
    "numpy",
    "torch",
    "torch.nn.functional",
    "torch.autograd",
    "torch.distributions",
    "torch.distributions.kl",
    "torch.distributions.normal",
    "vaecourse",
    "vaecourse.grading",
)
# modules whose whole namespace is put back (constants too): the tests' helpers keep no state
WHOLE = ("vaecourse.grading",)
# notebook globals the tests rely on: a builtin's name is hidden, a module alias is set to the module
SHADOWED = tuple(
    "type isinstance issubclass abs all any float int bool complex len getattr hasattr callable zip range "
    "enumerate tuple list set frozenset dict str repr sorted min max sum round iter next print object super id "
    "vars map filter hash format exec eval compile __import__ BaseException Exception AssertionError TypeError "
    "ValueError RuntimeError NameError KeyError IndexError AttributeError StopIteration ZeroDivisionError".split()
)
ALIASES = {"torch": "torch", "math": "math", "np": "numpy", "vc": "vaecourse", "random": "random"}
ALIASES["__builtins__"] = "builtins"  # a notebook may swap in a dict of fake builtins
_ABSENT = object()


def _from_notebook(obj):
    """A function, lambda, bound method or object whose code was written in the notebook."""
    try:
        return getattr(obj, "__module__", None) == "__main__"
    except Exception:  # an object that fails even to say where it comes from
        return True


def _shell_resetter(shell):
    """What undoes a notebook's changes to how IPython runs cells and reports errors: input and AST
    transformers (a cell wrapped in try/except), set_custom_exc, event callbacks, and shell methods
    replaced on the instance or its classes. Called after every cell, so nothing a notebook adds
    there reaches a later cell."""
    tm = shell.input_transformer_manager
    lists = [(tm, "cleanup_transforms"), (tm, "line_transforms"), (tm, "token_transformers")]
    lists += [(shell, "input_transformers_post"), (shell, "ast_transformers")]
    saved_lists = [(owner, attr, list(getattr(owner, attr))) for owner, attr in lists]
    custom = shell.custom_exceptions, shell.CustomTB
    functions = types.FunctionType
    classes = [(c, {k: v for k, v in vars(c).items() if isinstance(v, functions)}) for c in type(shell).mro()]

    def reset():
        for owner, attr, saved in saved_lists:
            current = getattr(owner, attr)
            extra = [x for x in current if x not in saved and not _from_notebook(x)]  # IPython's own, added later
            setattr(owner, attr, saved + extra)
        if (shell.custom_exceptions, shell.CustomTB) != custom:
            shell.custom_exceptions, shell.CustomTB = custom
        for cls, functions in classes:
            for k, v in functions.items():
                if vars(cls).get(k, _ABSENT) is not v:
                    setattr(cls, k, v)
            for k in [k for k, v in vars(cls).items() if k not in functions and _from_notebook(v)]:
                delattr(cls, k)
        for k in [k for k, v in vars(shell).items() if _from_notebook(v)]:
            delattr(shell, k)
        for callbacks in shell.events.callbacks.values():
            callbacks[:] = [f for f in callbacks if not _from_notebook(f)]

    return reset


def _kept(value):
    """What is put back: functions, classes and modules, not mutable module state."""
    return callable(value) or isinstance(value, types.ModuleType)


def _insides(f):
    """What a function object carries that a notebook could change in place."""
    cells = []
    for cell in f.__closure__ or ():
        try:
            cells.append((cell, cell.cell_contents))
        except ValueError:  # an empty cell
            pass
    return f.__code__, f.__defaults__, f.__kwdefaults__, tuple(cells)


def _same_insides(f, inside):
    """Whether f still carries what ``_insides`` saved (compared by identity, as it is put back)."""
    code, defaults, kwdefaults, cells = inside
    now = f.__code__, f.__defaults__, f.__kwdefaults__
    return all(a is b for a, b in zip(now, (code, defaults, kwdefaults))) and all(
        _contents(cell) is value for cell, value in cells
    )


def _contents(cell):
    try:
        return cell.cell_contents
    except ValueError:
        return _ABSENT


class TestTampered(Exception):
    """What a test statement fails with when something it relies on was replaced while it ran."""


BLOCKED = ("sys.addaudithook", "sys.settrace", "sys.setprofile")


def _audit(event, args):
    if event in BLOCKED or event.startswith("sys.monitoring"):
        raise RuntimeError(f"{event} is not available while a notebook is graded")


def install(test_hashes):
    """Snapshot what the tests rely on, then register the IPython hooks that restore it."""
    sha256, modules, shell = hashlib.sha256, sys.modules, get_ipython()
    mods = {}
    for name in MODULES:
        try:
            mods[name] = importlib.import_module(name)
        except Exception:  # a course without numpy (say): nothing to guard there
            pass
    mods.update({n: m for n, m in list(modules.items()) if n.startswith("vaecourse.") and m is not None})
    saved = {n: (m, {k: v for k, v in vars(m).items() if n in WHOLE or _kept(v)}) for n, m in mods.items()}
    whole = [(m, set(saved[n][1])) for n, m in mods.items() if n in WHOLE]
    # a function is put back whole: its code, defaults and closure, not only the name that holds it
    functions = {id(v): v for _, entries in saved.values() for v in entries.values() if type(v) is types.FunctionType}
    insides = [(f, _insides(f)) for f in functions.values()]
    classes = [mods["torch"].Tensor] if "torch" in mods else []
    for n, m in mods.items():
        if n.split(".")[0] == "vaecourse":
            classes += [v for v in vars(m).values() if isinstance(v, type) and v.__module__.startswith("vaecourse")]
    saved_classes = [(c, dict(vars(c))) for c in dict.fromkeys(classes)]
    aliases = {a: mods[m] for a, m in ALIASES.items() if m in mods}
    stash, reset_shell, testing = {}, _shell_resetter(shell), []
    gc_callbacks = list(gc.callbacks)
    # IPython sets these builtins while a cell runs and takes them away after it
    trapped = {f"builtins.{k}" for k in getattr(shell.builtin_trap, "auto_builtins", {})}
    # a hook added later could undo the restoring as each test starts (on its "exec" event), a trace
    # or profile function could do it between a test's lines: neither can be set from here on
    sys.addaudithook(_audit)

    def changed():
        """What the tests rely on that no longer holds its saved value (empty when untouched)."""
        names = []
        for name, (module, entries) in saved.items():
            if modules.get(name) is not module:
                names.append(f"sys.modules[{name!r}]")
            current = vars(module)
            names += [f"{name}.{k}" for k, v in entries.items() if current.get(k, _ABSENT) is not v]
        for f, inside in insides:
            if not _same_insides(f, inside):
                names.append(f"{f.__module__}.{f.__qualname__} (its code, defaults or closure)")
        for cls, entries in saved_classes:
            current, where = vars(cls), f"{cls.__module__}.{cls.__qualname__}"
            names += [f"{where}.{k}" for k, v in entries.items() if current.get(k, _ABSENT) is not v]
        ns = shell.user_ns
        names += [f"the global {k}" for k in SHADOWED if k in ns]
        names += [f"the global {k}" for k, module in aliases.items() if ns.get(k, module) is not module]
        return sorted(set(names) - trapped)

    def before(info):
        testing[:] = []
        if sha256((info.raw_cell or "").encode()).hexdigest() not in test_hashes:
            return
        testing.append(True)
        reset_shell()
        gc.callbacks[:] = [c for c in gc.callbacks if c in gc_callbacks]
        for name, (module, entries) in saved.items():
            modules[name] = module
            current = vars(module)
            for k, v in entries.items():
                if current.get(k, _ABSENT) is not v:
                    current[k] = v
        for module, names in whole:
            for k in [k for k in vars(module) if k not in names]:
                delattr(module, k)
        for f, (code, defaults, kwdefaults, cells) in insides:
            if f.__code__ is not code:
                f.__code__ = code
            if f.__defaults__ is not defaults:
                f.__defaults__ = defaults
            if f.__kwdefaults__ is not kwdefaults:
                f.__kwdefaults__ = kwdefaults
            for cell, value in cells:
                if cell.cell_contents is not value:
                    cell.cell_contents = value
        for cls, entries in saved_classes:
            for k in [k for k in vars(cls) if k not in entries]:
                try:
                    delattr(cls, k)
                except (AttributeError, TypeError):
                    pass
            for k, v in entries.items():
                if vars(cls).get(k, _ABSENT) is not v:
                    try:
                        setattr(cls, k, v)
                    except (AttributeError, TypeError):
                        pass
        ns = shell.user_ns
        for k in SHADOWED:
            if k in ns:
                stash[k] = ns.pop(k)
        for k, module in aliases.items():
            if ns.get(k, module) is not module:
                stash[k] = ns[k]
                ns[k] = module

    def after(result):
        if testing and result is not None and result.success:
            names = changed()
            if names:  # replaced while the test ran (a thread, a finalizer, the code the test called)
                shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
                result.error_in_exec = TestTampered(f"the notebook replaced {shown} while this test ran")
        testing[:] = []
        reset_shell()
        ns = shell.user_ns
        while stash:
            k, v = stash.popitem()
            ns[k] = v

    shell.events.register("pre_run_cell", before)
    shell.events.register("post_run_cell", after)
