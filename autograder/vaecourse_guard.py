"""Runs inside the grading kernel: before each test statement, undo what a submission replaced.

``ResilientExecute`` (in ``vaecourse_grader.py``) sends this file's source to the kernel before the
notebook's first cell, in a namespace whose builtins are a private copy, and calls ``install`` with
the SHA-256 of every test statement's source (the grader runs a test cell one top-level statement
at a time). From then on, ahead of each test statement, the guard

* puts back the functions, classes and modules of ``builtins``, ``math``, ``types``, torch,
  ``torch.distributions``, the course's packages ``vaecourse`` and ``coursekit`` (...) that the
  notebook rebound (``builtins.type = ...``, ``torch.allclose = ...``, ``vc.gaussian_kl = ...``),
  the code, defaults and closures of those functions (``f.__code__ = ...``), and the methods of
  ``torch.Tensor`` and of the course's classes;
* puts back the whole namespace of the tests' helper module ``coursekit.grading`` and of ``math``
  (their constants too, names a notebook added removed): every test cell uses them;
* hides, for that statement only, notebook globals named like a builtin (``type``, ``abs``, ``all``,
  ...) and points ``torch``, ``math``, ``np``, ``vc`` at the real modules.

After a test statement that succeeded it checks that all of this still holds its saved value and
that no IPython callback was added or removed: if the code the statement called (or a thread, a
finalizer, a ``gc`` callback) replaced something, the statement fails with ``TestTampered`` naming
it. The after-cell event counts only from the thread that runs cells and once the statement's own
code has left the stack, so a test cannot announce its own end. So a
student function called in a test's visible part cannot disarm its hidden part. After every cell it
removes what the notebook added to how IPython runs cells and reports errors (input and AST
transformers, ``set_custom_exc``, event callbacks, replaced methods of the shell and the kernel).

The guard cannot be taken out from the notebook:

* it runs from an audit hook (``sys.addaudithook``; Python can neither list nor remove one). The
  callbacks IPython calls are ``sys.audit`` bound to the guard's event names, so IPython's lists
  hold nothing of the guard to edit, and everything it keeps lives in ``install``'s closures, which
  look up no global or builtin name;
* before any code runs (each ``exec`` event: a cell's, a module's) the hook checks that IPython
  still calls those callbacks, as it did, and that the last test statement reached the check
  after it; if not, that cell and every later one fail with ``GuardBroken``, and the grader fails
  the test cell during which it happened (``ResilientExecute._probe``);
* it refuses ``sys.settrace``, ``sys.setprofile``, ``sys.addaudithook`` (code run between a test's
  lines or as it starts), ``gc.get_objects``/``get_referrers``/``get_referents`` and
  ``sys._current_frames`` (ways to find its objects), and frame reads while it runs; a frame of its
  code reached later through a traceback has been emptied.

Module state that is not a function, class or module (flags, caches) is left alone, and nothing is
put back in the notebook's own cells, so correct code never sees a difference.

Limits: code in the kernel's process can always reach its memory (``ctypes``), and a thread that
swaps a function in and out again within one test statement, timed to a hidden check, is not seen
by the check at the statement's end.
"""

import functools
import gc
import hashlib
import importlib
import importlib.util
import sys
import types

from IPython import get_ipython
from IPython.core.interactiveshell import ExecutionInfo, ExecutionResult

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
    "coursekit.grading",
)
COURSE = ("vaecourse", "coursekit")  # the course's packages: every loaded module of theirs is guarded
# modules whose whole namespace is put back (constants too: a notebook's `math.inf = 0.0` would make
# every "inf means wrong" check pass): the tests' helpers and math keep no state
WHOLE = ("coursekit.grading", "math")
# notebook globals the tests rely on: a builtin's name is hidden, a module alias is set to the module
SHADOWED = tuple(
    "type isinstance issubclass abs all any float int bool complex len getattr hasattr callable zip range "
    "enumerate tuple list set frozenset dict str repr sorted min max sum round iter next print object super id "
    "vars map filter hash format exec eval compile __import__ BaseException Exception AssertionError TypeError "
    "ValueError RuntimeError NameError KeyError IndexError AttributeError StopIteration ZeroDivisionError".split()
)
ALIASES = {"torch": "torch", "math": "math", "np": "numpy", "vc": "vaecourse", "random": "random"}
ALIASES["__builtins__"] = "builtins"  # a notebook may swap in a dict of fake builtins
PRE, POST = "vaecourse.guard.pre_run_cell", "vaecourse.guard.post_run_cell"  # audit events the hooks raise
# refused from install on: ways to run code between a test's lines or as it starts, and ways to reach
# the guard's own objects (its hook, its snapshot) from the notebook
REFUSED = frozenset(
    "sys.addaudithook sys.settrace sys.setprofile sys._current_frames gc.get_objects gc.get_referrers "
    "gc.get_referents".split()
)
FRAMES = frozenset(("tb_frame", "gi_frame", "cr_frame", "ag_frame"))  # audited reads of a frame


class TestTampered(Exception):
    """What a test statement fails with when something it relies on was replaced while it ran."""


class GuardBroken(Exception):
    """What every cell fails with once the notebook has taken the guard out of how cells run."""


def install(test_hashes):
    """Snapshot what the tests rely on, then register the hooks that restore and check it.

    Everything the guard keeps lives in this function's closures, reached only from an audit hook
    (which Python cannot list or remove): the callbacks IPython calls are ``sys.audit`` bound to an
    event name, so there is no guard object in IPython's lists to edit. The closures look up no
    global or builtin name (``tests/test_grader_units.py`` checks), so editing this module's
    namespace changes nothing. Frames of the guard's code are emptied before anyone can read them.
    """
    # bound here, so that the closures below look up no global or builtin name
    from _thread import get_ident
    from builtins import (  # noqa: UP029
        AttributeError,
        BaseException,
        Exception,
        RuntimeError,
        TypeError,
        ValueError,
        all,
        any,
        callable,
        delattr,
        dict,
        getattr,
        id,
        isinstance,
        len,
        list,
        object,
        set,
        setattr,
        sorted,
        str,
        tuple,
        type,
        vars,
        zip,
    )

    sha256, modules, shell, audit = hashlib.sha256, sys.modules, get_ipython(), sys.audit
    FunctionType, ModuleType, CodeType = types.FunctionType, types.ModuleType, types.CodeType
    partial = functools.partial
    Info, Result, Tampered, Broken = ExecutionInfo, ExecutionResult, TestTampered, GuardBroken
    refused, frames, pre_event, post_event = REFUSED, FRAMES, PRE, POST
    shadowed, whole_names, absent, gc_callbacks_now = SHADOWED, WHOLE, object(), gc.callbacks
    course = COURSE
    test_hashes = frozenset(test_hashes)

    def kept(value):
        """What is put back: functions, classes and modules, not mutable module state."""
        return callable(value) or isinstance(value, ModuleType)

    def contents(cell):
        try:
            return cell.cell_contents
        except ValueError:  # an empty cell
            return absent

    def insides(f):
        """What a function object carries that a notebook could change in place."""
        cells = tuple((cell, v) for cell in f.__closure__ or () for v in (contents(cell),) if v is not absent)
        return f.__code__, f.__defaults__, f.__kwdefaults__, cells

    def same_insides(f, inside):
        """Whether f still carries what ``insides`` saved (compared by identity, as it is put back)."""
        code, defaults, kwdefaults, cells = inside
        now = f.__code__, f.__defaults__, f.__kwdefaults__
        return all(a is b for a, b in zip(now, (code, defaults, kwdefaults))) and all(
            contents(cell) is value for cell, value in cells
        )

    def from_notebook(obj):
        """A function, lambda, bound method or object whose code was written in the notebook."""
        try:
            return getattr(obj, "__module__", None) == "__main__"
        except BaseException:  # an object that fails even to say where it comes from
            return True

    def among(x, items):
        return any(x is y for y in items)

    def from_ipython(f):
        """A callback of IPython, ipykernel or matplotlib's inline backend (by where its code lives)."""
        code = getattr(getattr(f, "__func__", f), "__code__", None)
        return type(code) is CodeType and type(code.co_filename) is str and code.co_filename.startswith(trusted)

    def inside_a_cell():
        """Whether the code of the running test statement is on this thread's stack: then an event
        that claims the statement has ended was raised by the statement itself."""
        state["reading"] = get_ident()
        try:
            frame, codes = getframe(0), state["codes"]
            while frame is not None:
                if among(frame.f_code, codes):
                    return True
                frame = frame.f_back
            return False
        finally:
            state["reading"] = None

    mods = {}
    for name in MODULES:
        try:
            mods[name] = importlib.import_module(name)
        except Exception:  # a course without numpy (say): nothing to guard there
            pass
    mods.update({n: m for n, m in list(modules.items()) if n.split(".")[0] in course and m is not None})
    saved = {n: (m, {k: v for k, v in vars(m).items() if n in whole_names or kept(v)}) for n, m in mods.items()}
    whole = [(m, set(saved[n][1])) for n, m in mods.items() if n in whole_names]
    # a function is put back whole: its code, defaults and closure, not only the name that holds it
    functions = {id(v): v for _, entries in saved.values() for v in entries.values() if type(v) is FunctionType}
    function_insides = [(f, insides(f)) for f in functions.values()]
    classes = [mods["torch"].Tensor] if "torch" in mods else []
    for n, m in mods.items():
        if n.split(".")[0] in course:
            classes += [v for v in vars(m).values() if isinstance(v, type) and v.__module__.split(".")[0] in course]
    saved_classes = [(c, dict(vars(c))) for c in dict.fromkeys(classes)]
    aliases = {a: mods[m] for a, m in ALIASES.items() if m in mods}
    gc_callbacks = list(gc_callbacks_now)
    # IPython sets these builtins while a cell runs and takes them away after it
    trapped = {f"builtins.{k}" for k in getattr(shell.builtin_trap, "auto_builtins", {})}

    # how IPython runs cells and reports errors, as it is now: undone after every cell
    tm = shell.input_transformer_manager
    lists = [(tm, "cleanup_transforms"), (tm, "line_transforms"), (tm, "token_transformers")]
    lists += [(shell, "input_transformers_post"), (shell, "ast_transformers")]
    saved_lists = [(owner, attr, list(getattr(owner, attr))) for owner, attr in lists]
    custom = shell.custom_exceptions, shell.CustomTB
    kernel = getattr(shell, "kernel", None)
    owners = [shell] + ([kernel] if kernel is not None else [])
    owner_attributes = [(o, dict(vars(o))) for o in owners]
    owner_classes = [c for o in owners for c in type(o).mro()]
    methods = [(c, {k: v for k, v in vars(c).items() if isinstance(v, FunctionType)}) for c in owner_classes]

    # the callbacks IPython calls, and where they are: checked before every cell runs
    events = shell.events
    callbacks = events.callbacks
    trigger = vars(type(events)).get("trigger")
    pre, post = partial(audit, pre_event), partial(audit, post_event)
    pre_list, post_list = callbacks["pre_run_cell"], callbacks["post_run_cell"]
    own_codes = set()
    state = {"busy": False, "broken": None, "reading": None, "stash": {}, "lists": None, "codes": []}
    main_thread, getframe = get_ident(), sys._getframe
    # where IPython's own callbacks come from (one may register while a test runs: matplotlib's)
    find_spec = importlib.util.find_spec
    specs = [find_spec(n) for n in ("IPython", "ipykernel", "matplotlib_inline")]
    trusted = tuple(spec.origin.rsplit("/", 1)[0] + "/" for spec in specs if spec is not None and spec.origin)

    def reset_shell():
        """Undo a notebook's changes to how IPython runs cells and reports errors: input and AST
        transformers (a cell wrapped in try/except), set_custom_exc, event callbacks, and methods of
        the shell and the kernel replaced on the instance or its classes."""
        for owner, attr, before_list in saved_lists:
            current = getattr(owner, attr)
            extra = [x for x in current if not among(x, before_list) and not from_notebook(x)]  # IPython's own
            setattr(owner, attr, before_list + extra)
        if not (shell.custom_exceptions is custom[0] and shell.CustomTB is custom[1]):
            shell.custom_exceptions, shell.CustomTB = custom
        for cls, functions in methods:
            for k, v in functions.items():
                if vars(cls).get(k, absent) is not v:
                    setattr(cls, k, v)
            for k in [k for k, v in vars(cls).items() if k not in functions and from_notebook(v)]:
                delattr(cls, k)
        for owner, attributes in owner_attributes:
            for k in [k for k, v in vars(owner).items() if from_notebook(v)]:
                if k in attributes:  # the shell's own compiler (say), replaced: put back
                    setattr(owner, k, attributes[k])
                else:
                    delattr(owner, k)
        for event_callbacks in callbacks.values():
            event_callbacks[:] = [f for f in event_callbacks if not from_notebook(f)]

    def registered():
        """Whether IPython still calls the guard before and after each cell, as it did."""
        ok = shell.events is events and events.callbacks is callbacks and "trigger" not in vars(events)
        ok = ok and vars(type(events)).get("trigger") is trigger and type(events).__mro__[1:] == (object,)
        ok = ok and callbacks.get("pre_run_cell") is pre_list and callbacks.get("post_run_cell") is post_list
        ok = ok and among(pre, pre_list) and among(post, post_list)
        return ok and all(
            p.func is audit and type(p.args) is tuple and len(p.args) == 1 and p.args[0] is e and not p.keywords
            for p, e in ((pre, pre_event), (post, post_event))
        )

    def changed():
        """What the tests rely on that no longer holds its saved value (empty when untouched)."""
        names = []
        for name, (module, entries) in saved.items():
            if modules.get(name) is not module:
                names.append(f"sys.modules[{name!r}]")
            current = vars(module)
            names += [f"{name}.{k}" for k, v in entries.items() if current.get(k, absent) is not v]
        for f, inside in function_insides:
            if not same_insides(f, inside):
                names.append(f"{f.__module__}.{f.__qualname__} (its code, defaults or closure)")
        for cls, entries in saved_classes:
            current, where = vars(cls), f"{cls.__module__}.{cls.__qualname__}"
            names += [f"{where}.{k}" for k, v in entries.items() if current.get(k, absent) is not v]
        ns = shell.user_ns
        names += [f"the global {k}" for k in shadowed if k in ns]
        names += [f"the global {k}" for k, module in aliases.items() if ns.get(k, module) is not module]
        if state["lists"] is not None:  # compared by identity: a look-alike callback is a change
            for now, then in state["lists"]:
                removed = [f for f in then if not among(f, now)]
                added = [f for f in now if not among(f, then) and not from_ipython(f)]
                if removed or added:
                    names.append("IPython's event callbacks")
                    break
        return sorted(set(names) - trapped)

    def is_test(info):
        raw = info.raw_cell
        return type(raw) is str and sha256(raw.encode()).hexdigest() in test_hashes

    def before(info):
        """Ahead of a test statement: put back what the tests rely on, hide the notebook's look-alikes."""
        if state["lists"] is not None:  # the last test statement never reached ``after``
            state["broken"] = "the grading guard was not called after a test"
        state["lists"] = None
        if not is_test(info):
            return
        reset_shell()
        gc_callbacks_now[:] = [c for c in gc_callbacks_now if among(c, gc_callbacks)]
        for name, (module, entries) in saved.items():
            modules[name] = module
            current = vars(module)
            for k, v in entries.items():
                if current.get(k, absent) is not v:
                    current[k] = v
        for module, names in whole:
            for k in [k for k in vars(module) if k not in names]:
                delattr(module, k)
        for f, (code, defaults, kwdefaults, cells) in function_insides:
            if f.__code__ is not code:
                f.__code__ = code
            if f.__defaults__ is not defaults:
                f.__defaults__ = defaults
            if f.__kwdefaults__ is not kwdefaults:
                f.__kwdefaults__ = kwdefaults
            for cell, value in cells:
                if contents(cell) is not value:
                    cell.cell_contents = value
        for cls, entries in saved_classes:
            for k in [k for k in vars(cls) if k not in entries]:
                try:
                    delattr(cls, k)
                except (AttributeError, TypeError):
                    pass
            for k, v in entries.items():
                if vars(cls).get(k, absent) is not v:
                    try:
                        setattr(cls, k, v)
                    except (AttributeError, TypeError):
                        pass
        ns, stash = shell.user_ns, state["stash"]
        for k in shadowed:
            if k in ns:
                stash[k] = ns.pop(k)
        for k, module in aliases.items():
            if ns.get(k, module) is not module:
                stash[k] = ns[k]
                ns[k] = module
        state["lists"] = [(x, list(x)) for x in callbacks.values()]
        state["codes"] = []

    def after(result):
        """After any cell: a test statement during which something was replaced fails; the notebook's
        changes to IPython are undone and its hidden globals come back."""
        if state["lists"] is not None and result.success:
            names = changed()
            if names:  # replaced while the test ran (the code it called, a thread, a finalizer)
                shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
                result.error_in_exec = Tampered(f"the notebook replaced {shown} while this test ran")
        state["lists"] = None
        reset_shell()
        ns, stash = shell.user_ns, state["stash"]
        while stash:
            k, v = stash.popitem()
            ns[k] = v

    def hook(event, args):
        """The audit hook: runs the guard on its own events, refuses the events in REFUSED, and lets
        no cell run once the guard has been taken out."""
        if state["reading"] == get_ident():  # the guard reading a frame, below
            return
        if event == "object.__getattr__":
            if args[1] in frames:
                if state["busy"]:
                    raise RuntimeError("frames cannot be read while the grading guard runs")
                if args[1] == "tb_frame":
                    state["reading"] = get_ident()
                    try:
                        frame = args[0].tb_frame
                        if frame.f_code in own_codes:
                            frame.clear()  # the guard's frames are empty by the time anyone reads them
                    finally:
                        state["reading"] = None
            return
        if event in refused or (event == "sys._getframe" and state["busy"]):
            raise RuntimeError(f"{event} is not available while a notebook is graded")
        if event == "exec":  # a cell's code (or any other) is about to run
            if state["lists"] is not None and type(args[0]) is CodeType:
                state["codes"].append(args[0])
            if state["broken"] is None and not registered():
                state["broken"] = "the notebook took the grading guard out of how cells run"
            if state["broken"] is not None:
                raise Broken(state["broken"] + ": this cell and the rest of the notebook are not run")
            return
        if event not in (pre_event, post_event) or state["busy"] or len(args) != 1 or get_ident() != main_thread:
            return
        if event == post_event and state["lists"] is not None and inside_a_cell():
            return  # raised by the test statement itself, not by IPython after it: the real one follows
        target, kind = args[0], (Info if event == pre_event else Result)
        if type(target) is not kind or (kind is Result and type(target.info) is not Info):
            return
        state["busy"] = True
        try:
            if event == pre_event:
                before(target)
            else:
                after(target)
        except BaseException as err:  # the guard could not do its work: no cell runs from here on
            err.__traceback__ = None
            state["broken"] = f"the grading guard failed ({type(err).__name__})"
        finally:
            state["busy"] = False

    todo = [install.__code__]
    while todo:
        code = todo.pop()
        own_codes.add(code)
        todo += [c for c in code.co_consts if type(c) is CodeType]
    own_codes.update(f.__code__ for f in (reset_shell, hook))
    sys.addaudithook(hook)
    shell.events.register("pre_run_cell", pre)
    shell.events.register("post_run_cell", post)
