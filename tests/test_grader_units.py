"""Unit tests of the course's nbgrader pieces (autograder/vaecourse_grader.py and
vaecourse_submissions.py) outside a course directory: how ResilientExecute treats a kernel that
fails to start, how the course's config ends each kernel, how SubmissionExporter reads a submission
that is not a notebook, and how a notebook handed in under another name is matched and read
(RenamedNotebooks, match_notebooks)."""

import os
import sys
import time
from pathlib import Path

import exercise_kit as kit
import nbformat
import pytest
from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import CellTimeoutError
from nbgrader.api import Gradebook
from nbgrader.coursedir import CourseDirectory
from traitlets.config import LoggingConfigurable
from traitlets.config.loader import PyFileConfigLoader

AUTOGRADER = Path(__file__).resolve().parents[1] / "autograder"
sys.path.insert(0, str(AUTOGRADER))
from vaecourse_grader import ResilientExecute, _statements  # noqa: E402
from vaecourse_sandbox import SandboxedKernelManager  # noqa: E402
from vaecourse_submissions import GRADED_AS, RenamedNotebooks, SubmissionExporter, match_notebooks  # noqa: E402


class _FlakyKernelManager(AsyncKernelManager):
    """A kernel manager whose first ``failures`` kernel starts die, as when a port is taken."""

    failures = 0
    starts = 0

    async def start_kernel(self, **kwargs):
        type(self).starts += 1
        if type(self).starts <= type(self).failures:
            raise RuntimeError("Kernel died before replying to kernel_info")
        return await super().start_kernel(**kwargs)


def _notebook():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print(6 * 7)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


@pytest.mark.parametrize("failures", [0, 2])
def test_a_kernel_that_fails_to_start_is_started_again(failures):
    _FlakyKernelManager.failures, _FlakyKernelManager.starts = failures, 0
    ex = ResilientExecute(kernel_manager_class=_FlakyKernelManager, startup_attempts=3)
    nb, _ = ex.preprocess(_notebook(), {"metadata": {"path": "."}})
    assert _FlakyKernelManager.starts == failures + 1
    assert nb.cells[0].outputs[0]["text"] == "42\n"


def test_a_kernel_that_never_starts_is_reported():
    _FlakyKernelManager.failures, _FlakyKernelManager.starts = 10, 0
    ex = ResilientExecute(kernel_manager_class=_FlakyKernelManager, startup_attempts=2)
    with pytest.raises(RuntimeError, match="kernel_info"):
        ex.preprocess(_notebook(), {"metadata": {"path": "."}})
    assert _FlakyKernelManager.starts == 2


class _RecordingKernelManager(SandboxedKernelManager):
    """The course's (sandboxed) kernel manager, recording how each kernel was shut down."""

    shutdowns = []

    async def shutdown_kernel(self, now=False, restart=False):
        type(self).shutdowns.append(now)
        return await super().shutdown_kernel(now=now, restart=restart)


def test_the_course_config_kills_each_graded_kernel_at_once(tmp_path):
    """A graceful shutdown waits ~1.3 s for torch to tear itself down in every graded kernel."""
    config = PyFileConfigLoader("nbgrader_config.py", path=str(AUTOGRADER)).load_config()
    assert config.Execute.kernel_manager_class is SandboxedKernelManager  # (the preprocessor re-reads config)
    config.Execute.kernel_manager_class = _RecordingKernelManager
    _RecordingKernelManager.shutdowns = []
    ex = ResilientExecute(config=config)
    nb, _ = ex.preprocess(_notebook(), {"metadata": {"path": str(tmp_path)}})
    assert nb.cells[0].outputs[0]["text"] == "42\n"
    assert _RecordingKernelManager.shutdowns and all(_RecordingKernelManager.shutdowns)


def test_the_jupyter_stack_does_not_build_an_iri_grammar_at_import():
    """jsonschema >= 4.25 imports rfc3987_syntax, which compiles a Lark grammar on import: 2.5 s added
    to every nbgrader command, `jupyter-book build` and pytest start (hence jsonschema 4.24.1)."""
    import jsonschema  # noqa: F401  (imports its format checkers)

    assert "rfc3987_syntax" not in sys.modules


def _read_submission(tmp_path, content, release=True):
    """Write ``content`` as a student's ex.ipynb and read it as `nbgrader autograde` would."""
    course = tmp_path / "course"
    rel = _notebook()
    rel.cells.insert(0, nbformat.v4.new_markdown_cell("# Exercise"))
    if release:
        (course / "release" / "a1").mkdir(parents=True)
        nbformat.write(rel, course / "release" / "a1" / "ex.ipynb")
    sub = tmp_path / "submitted" / "ex.ipynb"
    sub.parent.mkdir()
    sub.write_bytes(content)
    converter = LoggingConfigurable()  # what nbgrader's Autograde gives its exporter: a coursedir
    converter.coursedir = CourseDirectory(root=str(course), release_directory="release")
    info = {"nbgrader": {"assignment": "a1", "notebook": "ex", "student": "s1"}}
    out, _ = SubmissionExporter(parent=converter).from_filename(str(sub), info)
    assert sub.read_bytes() == content, "the submitted file was changed"
    return nbformat.reads(out, as_version=4), rel


@pytest.mark.parametrize(
    "content, why",
    [
        (b"", "the file is empty"),
        (b" \n", "the file is empty"),
        (b'{"cells": [{"cell_type": "code", "sou', "it is not valid JSON"),
        (b"\x89PNG\r\n\x1a\n\x00\xff", "it is not a text file"),
        (b"[1, 2]", "not in the notebook format"),
        (b"null", "not in the notebook format"),
        (b'{"nbformat": 4, "nbformat_minor": 5, "metadata": {}}', "not in the notebook format"),
        (b'{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [1]}', "not in the notebook format"),
    ],
)
def test_an_unreadable_submission_is_graded_as_the_release_with_a_note(tmp_path, content, why):
    nb, rel = _read_submission(tmp_path, content)
    note = nb.cells[0]
    assert note.cell_type == "markdown" and "could not be read" in note.source and why in note.source
    assert [(c.cell_type, c.source) for c in nb.cells[1:]] == [(c.cell_type, c.source) for c in rel.cells]


def test_without_a_release_the_note_stands_alone(tmp_path):
    nb, _ = _read_submission(tmp_path, b"{", release=False)
    assert len(nb.cells) == 1 and "not valid JSON" in nb.cells[0].source


def test_a_readable_submission_is_read_as_it_is(tmp_path):
    sub = _notebook()
    sub.cells.append(nbformat.v4.new_markdown_cell("my notes"))
    nb, _ = _read_submission(tmp_path, nbformat.writes(sub).encode())
    assert [(c.cell_type, c.source) for c in nb.cells] == [(c.cell_type, c.source) for c in sub.cells]


# ----------------------------------------------------------------------------- renamed notebooks


def _files(folder, ages):
    """Empty notebooks named as in ``ages`` ({name: seconds since last modified}); their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for name, age in ages.items():
        nbformat.write(_notebook(), folder / name)
        os.utime(folder / name, (now - age, now - age))
    return [str(folder / name) for name in sorted(ages)]


@pytest.mark.parametrize(
    "ages, expected, want",
    [
        ({"ex-Copy1.ipynb": 0}, ["ex"], {"ex": "ex-Copy1.ipynb"}),  # Jupyter's "Make a Copy"
        ({"Untitled.ipynb": 0}, ["ex"], {"ex": "Untitled.ipynb"}),  # one name missing: any notebook
        ({"Untitled.ipynb": 0, "ex (1).ipynb": 100}, ["ex"], {"ex": "ex (1).ipynb"}),  # alike first
        ({"ex (1).ipynb": 100, "EX-Copy2.ipynb": 0}, ["ex"], {"ex": "EX-Copy2.ipynb"}),  # then newest
        ({"ex.ipynb": 100, "ex-Copy1.ipynb": 0}, ["ex"], {}),  # the expected file is there: graded
        ({"a-Copy1.ipynb": 0, "Untitled.ipynb": 0}, ["a", "b"], {"a": "a-Copy1.ipynb"}),  # two missing
        ({"b_v2.ipynb": 0, "a_v2.ipynb": 0, "a.ipynb": 0}, ["a", "b"], {"b": "b_v2.ipynb"}),
        ({"notes.ipynb": 0, "draft.ipynb": 10}, ["a", "b"], {}),  # nothing to tell them apart by
    ],
)
def test_match_notebooks(tmp_path, ages, expected, want):
    chosen = match_notebooks(expected, _files(tmp_path / "sub", ages))
    assert {name: Path(path).name for name, path in chosen.items()} == want


def _read_as(path, name="ex"):
    info = {"nbgrader": {"assignment": "a1", "notebook": name, "student": "s1"}}
    converter = LoggingConfigurable()
    converter.coursedir = CourseDirectory(root=str(Path(path).parent))
    out, resources = SubmissionExporter(parent=converter).from_filename(str(path), info)
    return nbformat.reads(out, as_version=4), resources


def test_the_hook_grades_a_renamed_notebook_and_names_the_others(tmp_path):
    """RenamedNotebooks, as nbgrader calls it, then SubmissionExporter on the path it put in place."""
    db = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with Gradebook(db) as gb:
        gb.add_assignment("a1")
        gb.add_notebook("ex", "a1")
    folder = tmp_path / "submitted" / "s1" / "a1"
    notebooks = _files(folder, {"ex (1).ipynb": 0, "scratch.ipynb": 0})
    before = {p: Path(p).read_bytes() for p in notebooks}
    RenamedNotebooks(db)(assignment="*", student="*", notebooks=notebooks)  # in place, as nbgrader's list
    assert notebooks == [str(folder / "ex.ipynb"), str(folder / "scratch.ipynb")]
    nb, resources = _read_as(folder / "ex.ipynb")
    renamed, others = nb.cells[0].source, nb.cells[1].source
    assert "handed in as `ex (1).ipynb` and graded as `ex.ipynb`" in renamed
    assert "`scratch.ipynb`" in others and "Not graded" in others
    assert [c.source for c in nb.cells[2:]] == [c.source for c in _notebook().cells]
    assert resources["metadata"]["name"] == "ex"
    assert sorted(os.listdir(folder)) == ["ex (1).ipynb", "scratch.ipynb"], "a file was added"
    assert all(Path(p).read_bytes() == b for p, b in before.items()), "a submitted file was changed"

    RenamedNotebooks(db)(notebooks=(other := _files(tmp_path / "submitted" / "s1" / "a2", {"x.ipynb": 0})))
    assert other == [str(tmp_path / "submitted" / "s1" / "a2" / "x.ipynb")], "an unknown assignment: left to nbgrader"


def test_a_notebook_with_the_expected_name_is_read_as_it_is_even_if_mapped(tmp_path):
    """A mapping left from an earlier run does not replace a file that is now there."""
    (sub,) = _files(tmp_path / "s1" / "a1", {"ex.ipynb": 0})
    GRADED_AS[os.path.abspath(sub)] = (str(tmp_path / "gone.ipynb"), ())
    nb, _ = _read_as(sub)
    assert [c.source for c in nb.cells] == [c.source for c in _notebook().cells]


def test_a_renamed_file_that_is_no_notebook_gets_both_notes(tmp_path):
    folder = tmp_path / "s1" / "a1"
    folder.mkdir(parents=True)
    (folder / "ex-Copy1.ipynb").write_text('{"cells": [')
    GRADED_AS[os.path.abspath(folder / "ex.ipynb")] = (os.path.abspath(folder / "ex-Copy1.ipynb"), ())
    nb, _ = _read_as(folder / "ex.ipynb")
    assert "handed in as `ex-Copy1.ipynb`" in nb.cells[0].source
    why = nb.cells[1].source
    assert "The file `ex-Copy1.ipynb` that was handed in" in why and "not valid JSON" in why


GUARDED = """
import builtins, hashlib, sys

import torch
from IPython.core.interactiveshell import InteractiveShell

import vaecourse as vc

shell = InteractiveShell.instance()
run = lambda source: shell.run_cell(source, store_history=True)


def install(*tests):
    ns = {"__builtins__": dict(vars(builtins)), "__name__": "vaecourse_guard"}
    exec(compile(open(GUARD).read(), "vaecourse_guard.py", "exec"), ns)
    ns["install"]({hashlib.sha256(t.encode()).hexdigest() for t in tests})
"""


def _guarded(script):
    """Run ``script`` after GUARDED in a fresh Python process: the audit hook the guard adds cannot be
    removed, so it is never installed in this one."""
    import subprocess

    source = f"GUARD = {str(AUTOGRADER / 'vaecourse_guard.py')!r}\n" + GUARDED + script + "\nprint('DONE')\n"
    done = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.endswith("DONE\n"), done.stdout[-3000:] + done.stderr[-3000:]


def test_guard_puts_back_what_a_submission_replaced_before_each_test_cell():
    """vaecourse_guard.py, as ResilientExecute installs it: a rebound builtin, torch function or
    vaecourse function and a notebook global named like a builtin are undone for a test cell only."""
    _guarded(
        r"""
test = "seen = abs(-2), all([0]), len('ab'), torch.allclose(torch.zeros(1), torch.ones(1)), vc.gaussian_kl.__name__"
install(test)
real = builtins.abs, torch.allclose, vc.gaussian_kl
cheat = (
    "import builtins, types, torch, vaecourse as vc\n"
    "builtins.abs = lambda x: 0\ntorch.allclose = lambda *a, **k: True\nvc.gaussian_kl = lambda *a: 0\n"
    "all = lambda x: True\nmy_torch = torch\ntorch = types.SimpleNamespace(allclose=lambda *a: True)\n"
    "__builtins__ = dict(vars(builtins), len=lambda x: 0)\n"
    "wrap = lambda lines: ['try:\\n', *['    ' + line for line in lines], '\\nexcept BaseException: pass\\n']\n"
    "get_ipython().input_transformers_post.append(wrap)\n"
    "get_ipython().set_custom_exc((BaseException,), lambda *args, **kwargs: None)"
)
assert run(cheat).success
assert shell.input_transformers_post == [] and shell.custom_exceptions == ()  # gone after that cell
assert run("assert False").error_in_exec.__class__ is AssertionError
run("before = (abs(-2), all([0]), len('ab'))")
assert shell.user_ns["before"] == (0, True, 0)  # a notebook cell: the submission's own names
assert run(test).success
assert shell.user_ns["seen"] == (2, False, 2, False, "gaussian_kl")  # the test cell: the real ones
assert (builtins.abs, torch.allclose, vc.gaussian_kl) == real
run("after = all([0]), torch")  # the notebook's globals are back
assert shell.user_ns["after"][0] is True and shell.user_ns["after"][1] is not torch
"""
    )


def test_guard_fails_a_test_statement_during_which_something_was_replaced():
    """The answer a test calls rebinds a test helper, or adds an IPython callback that would undo
    that before the guard looks: the statement fails with TestTampered; the next is restored."""
    _guarded(
        r"""
import coursekit.grading as vg
tests = ["x = sneaky()", "y = vg.error(torch.ones(1), torch.zeros(1))", "z = sneakier()"]
install(*tests)
real = vg.error
assert run(
    "import torch, coursekit.grading as vg\n"
    "def sneaky():\n    vg.error = lambda *a, **k: 0.0\n    return 1\n"
    "def sneakier():\n    get_ipython().events.callbacks['post_run_cell'].insert(0, lambda result: None)\n"
).success
failed = run(tests[0]).error_in_exec
assert type(failed).__name__ == "TestTampered" and "coursekit.grading.error" in str(failed), failed
assert run(tests[1]).success and shell.user_ns["y"] == 1.0 and vg.error is real
failed = run(tests[2]).error_in_exec
assert type(failed).__name__ == "TestTampered" and "callbacks" in str(failed), failed
assert run("w = 1").success  # the notebook's callback is gone again: cells run as before
"""
    )


def test_guard_is_not_fooled_by_a_test_that_claims_to_have_ended():
    """The answer a test calls raises the guard's own after-cell event (with the real result), or
    registers a post_execute callback that undoes its change before the guard looks: both fail."""
    _guarded(
        r"""
import coursekit.grading as vg
tests = ["x = forger()", "y = sly()"]
install(*tests)
assert run(
    "import sys, coursekit.grading as vg\n"
    "def forger():\n"
    "    sys.audit('vaecourse.guard.post_run_cell', get_ipython().displayhook.exec_result)\n"
    "    vg.error = lambda *a, **k: 0.0\n"
    "    return 1\n"
    "def sly():\n"
    "    real = vg.error\n"
    "    vg.error = lambda *a, **k: 0.0\n"
    "    get_ipython().events.register('post_execute', lambda: setattr(vg, 'error', real))\n"
    "    return 1\n"
).success
for test, why in zip(tests, ("coursekit.grading.error", "event callbacks")):
    failed = run(test).error_in_exec
    assert type(failed).__name__ == "TestTampered" and why in str(failed), (test, failed)
assert run("w = 1").success
"""
    )


TAKE_OUT = {  # ways to take the guard out of how IPython runs cells
    "callbacks cleared": "for callbacks in get_ipython().events.callbacks.values():\n    callbacks.clear()",
    "pre_run_cell emptied": "get_ipython().events.callbacks['pre_run_cell'][:] = []",
    "events replaced": "e = get_ipython().events\nget_ipython().events = type(e)(get_ipython(), list(e.callbacks))",
    "callback re-bound": (
        "p = get_ipython().events.callbacks['pre_run_cell'][-1]\np.__setstate__((print, ('x',), {}, None))"
    ),
    "trigger replaced": (
        "from IPython.core.events import EventManager\nEventManager.trigger = lambda self, *a, **k: None"
    ),
    "cells renamed, post_run_cell emptied": (
        "class Names(type(get_ipython().compile)):\n"
        "    def get_code_name(self, raw_code, code, number):\n"
        "        return '<elsewhere>'\n"
        "get_ipython().compile = Names()\n"
        "get_ipython().events.callbacks['post_run_cell'].clear()"
    ),
}


def test_a_notebook_that_takes_the_guard_out_runs_no_further_cell():
    """Whatever takes the guard out of how IPython runs cells, the next cell, test or not, fails
    with GuardBroken (checked by the audit hook before any code runs). One process, forked for each
    way (a broken guard stays broken), so that torch is imported once."""
    _guarded(
        f"""
import os
for name, attack in {TAKE_OUT!r}.items():
    child = os.fork()
    if child == 0:
        code = 1
        try:
            install("x = 1")
            assert run(attack).success, name
            failed = [run(source).error_in_exec for source in ("x = 1", "y = 2")]
            code = 0 if all(type(f).__name__ == "GuardBroken" for f in failed) else 1
            if code:
                print(name, failed, flush=True)
        finally:
            os._exit(code)
    assert os.waitpid(child, 0)[1] == 0, name
"""
    )


def test_a_test_statement_that_skips_the_guard_after_it_stops_the_notebook():
    """The answer a test calls swaps IPython's post-cell callbacks for one that only puts them back:
    the guard's check after that statement never runs, so the next cell fails with GuardBroken."""
    _guarded(
        r"""
install("v = sneakiest()")
assert run(
    "def sneakiest():\n"
    "    callbacks = get_ipython().events.callbacks['post_run_cell']\n"
    "    ours = callbacks[:]\n"
    "    def put_back(result):\n"
    "        callbacks[:] = ours\n"
    "    callbacks[:] = [put_back]\n"
).success
assert run("v = sneakiest()").success  # its own check was skipped ...
failed = run("w = 1").error_in_exec  # ... and the guard sees that before the next cell runs
assert type(failed).__name__ == "GuardBroken" and "not called after a test" in str(failed), failed
"""
    )


def test_the_guard_cannot_be_reached_from_the_notebook():
    """No trace, profile or audit hook can be added and no object found through gc; a frame of the
    guard's code, reached from an error it raised, is empty; nothing in install's closures looks up a
    global or builtin name (so editing the guard's namespace changes nothing)."""
    import dis
    import types

    code = compile((AUTOGRADER / "vaecourse_guard.py").read_text(), "vaecourse_guard.py", "exec")
    (install,) = [c for c in code.co_consts if type(c) is types.CodeType and c.co_name == "install"]
    todo, lookups = [c for c in install.co_consts if type(c) is types.CodeType], []
    while todo:
        inner = todo.pop()
        todo += [c for c in inner.co_consts if type(c) is types.CodeType]
        names = [i for i in dis.get_instructions(inner) if "GLOBAL" in i.opname or i.opname == "LOAD_NAME"]
        lookups += [(inner.co_name, i.argval) for i in names]
    assert lookups == [], lookups
    _guarded(
        r"""
install("x = 1")
attack = (
    "import gc, sys\n"
    "refused = []\n"
    "for f in (lambda: sys.settrace(None), lambda: sys.setprofile(None), lambda: sys.addaudithook(print),\n"
    "          gc.get_objects, lambda: gc.get_referrers(sys), lambda: gc.get_referents(sys), sys._current_frames):\n"
    "    try:\n"
    "        f()\n"
    "    except RuntimeError as err:\n"
    "        refused.append(err)\n"
    "tb = refused[0].__traceback__\n"
    "while tb.tb_next:\n"
    "    tb = tb.tb_next\n"
    "leaked = tb.tb_frame.f_code.co_name, dict(tb.tb_frame.f_locals)\n"
    "seen = []\n"
    "sys.addaudithook(lambda event, args: seen.append(event))\n"
    "open('/dev/null').close()\n"
)
assert run(attack).success
assert len(shell.user_ns["refused"]) == 6, shell.user_ns["refused"]  # addaudithook: refused silently
assert shell.user_ns["leaked"] == ("hook", {}), shell.user_ns["leaked"]
assert shell.user_ns["seen"] == []  # the notebook's audit hook was never added
assert run("x = 1").success  # grading goes on
"""
    )


def _graded(source, gid):
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "points": 1, "grade_id": gid}
    return cell


@pytest.mark.parametrize(
    "source, pieces",
    [
        (
            "# first\nimport math\n\nx = 1; y = 2\n@staticmethod\ndef f():\n    return (\n        x)\nf()\n",
            ["# first\nimport math\n\n", "x = 1; y = 2\n", "@staticmethod\ndef f():\n    return (\n        x)\n"]
            + ["f()\n"],
        ),
        ("x = 1\nif x:\n    y = 2\nelse:\n    y = 3\n# end", ["x = 1\n", "if x:\n    y = 2\nelse:\n    y = 3\n# end"]),
        ("assert x, (\n    'why')", ["assert x, (\n    'why')"]),  # one statement: the cell as it is
        ("%time x = 1\ny = 2", ["%time x = 1\ny = 2"]),  # a magic: not plain Python, kept whole
        ("x = 1\ny = (", ["x = 1\ny = ("]),  # a syntax error: the kernel reports it
    ],
    ids=["comments, same line, decorator, multi-line", "compound statement", "one statement", "magic", "syntax error"],
)
def test_a_test_cell_is_split_into_its_top_level_statements(source, pieces):
    got = _statements(source)
    assert [p[: -len("pass\n")] for p in got[:-1]] + got[-1:] == pieces
    assert all(p.endswith("pass\n") for p in got[:-1])  # only the last piece can show a value
    assert "".join(pieces) == source


class _GuardTimesOut(ResilientExecute):
    """A grader whose kernel takes too long to install the test guard (a machine under load)."""

    limits = []

    def _run_quietly(self, source, index):
        if "'vaecourse_guard.py'" in source:
            type(self).limits.append(self.timeout)
            raise CellTimeoutError("Timeout waiting for IOPub output")
        return super()._run_quietly(source, index)


def test_the_guard_has_its_own_time_limit_and_a_notebook_it_cannot_guard_is_not_graded():
    nb = _notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1"), _graded("assert x == 1", "t1")]
    _GuardTimesOut.limits = []
    nb, _ = _GuardTimesOut(timeout=2, guard_timeout=90).preprocess(nb, {"metadata": {"path": "."}})
    assert _GuardTimesOut.limits == [90]  # not the cells' 2 s
    for c in nb.cells:  # nothing ran unguarded: each cell says why, and the test fails
        assert [o["ename"] for o in c.outputs] == ["NotRun"], c.outputs
        assert "could not install its test guard (CellTimeoutError" in c.outputs[0]["evalue"]
        assert "grade this notebook again" in c.outputs[0]["evalue"]


def test_a_test_cell_run_statement_by_statement_reads_as_one_cell():
    """Outputs in order, the last expression shown, nothing after the first failure, one time limit
    for the whole cell (each statement is within it, their sum is not)."""
    nb = _notebook()
    shown = "print('one')\nx = 2\nx * 10\nx * 21"
    failing = "print('two')\nassert x == 3, 'x is 2'\nprint('never')"
    # each statement within the 3 s limit, together past it. The last sleep starts with under a second
    # of the cell's time left (a 1 s limit of its own) and lasts 2 s, so that the interrupt lands
    # inside it: one that lands in the guard's own work, after a statement, stops the notebook.
    slow = "import time\nfor _ in range(2):\n    time.sleep(0.6)\ntime.sleep(1)\ntime.sleep(2)\nprint('late')"
    nb.cells = [_graded(shown, "t1"), _graded(failing, "t2"), _graded(slow, "t3"), _graded("print('next')", "t4")]
    nb, _ = ResilientExecute(timeout=3).preprocess(nb, {"metadata": {"path": "."}})
    what = lambda o: o.get("text") or o.get("data", {}).get("text/plain") or o.get("ename")  # noqa: E731
    out = [[(o["output_type"], what(o)) for o in c.outputs] for c in nb.cells]
    assert out[0] == [("stream", "one\n"), ("execute_result", "42")]
    assert out[1] == [("stream", "two\n"), ("error", "AssertionError")]
    assert out[2][-1] == ("error", "CellTimeoutError") and ("stream", "late\n") not in out[2]
    assert out[3] == [("stream", "next\n")]
    assert [c.source for c in nb.cells] == [shown, failing, slow, "print('next')"]
    assert nb.cells[0].execution_count < nb.cells[1].execution_count


WRAP = (  # wraps in try/except only the cells that call gaussian_kl (the tests), after removing the grader's hooks
    "for callbacks in get_ipython().events.callbacks.values():\n"
    "    callbacks.clear()\n"
    "def wrap(lines):\n"
    "    if not any('gaussian_kl' in line for line in lines):\n"
    "        return lines\n"
    "    return ['try:\\n', *['    ' + line for line in lines], '\\nexcept BaseException: pass\\n']\n"
    "get_ipython().input_transformers_post.append(wrap)"
)
SWALLOW = "get_ipython().set_custom_exc((BaseException,), lambda *args, **kwargs: None)"


@pytest.mark.parametrize(
    "first, want",
    [
        (SWALLOW, ["AssertionError", "AssertionError"]),  # errors not shown: taken from the kernel's reply
        (WRAP, ["GuardBroken", "NotRun"]),  # the guard's callbacks cleared: no cell runs from then on
    ],
    ids=["set_custom_exc", "transformer wrapping the tests in try, grader hooks cleared"],
)
def test_a_notebook_cannot_hide_a_failing_test(first, want):
    nb = _notebook()
    t1, t2 = '"""t1"""\nassert gaussian_kl is None', "assert 0  # gaussian_kl"
    nb.cells = [nbformat.v4.new_code_cell(first + "\ngaussian_kl = 1"), _graded(t1, "t1"), _graded(t2, "t2")]
    nb, _ = ResilientExecute().preprocess(nb, {"metadata": {"path": "."}})
    got = [[o["ename"] for o in c.outputs if o["output_type"] == "error"] for c in nb.cells[1:]]
    assert [e[-1] if e else None for e in got] == want, got
    assert [c.source for c in nb.cells[1:]] == [t1, t2]  # the probes left no trace


def test_guard_puts_back_the_test_helpers_whole():
    """coursekit.grading as the guard restores it before a test cell: its functions' code and defaults,
    its constants, and no name a notebook added."""
    _guarded(
        r"""
import coursekit.grading as vg
test = "import math, coursekit.grading as vg\n"
test += "seen = vg.error(vg.torch.ones(1), vg.torch.zeros(1)), vg.BANNED_MODULES, math.inf"
install(test)
real = vg.error.__code__, vg.BANNED_MODULES, vg.assert_close.__defaults__
cheat = (
    "import coursekit.grading as vg\n"
    "vg.error.__code__ = (lambda actual, expected, *, rel=True: 0.0).__code__\n"
    "vg.BANNED_MODULES = ()\nvg.assert_close.__defaults__ = (1e9,)\nvg.planted = 1\n"
    "import math\nmath.inf = 0.0"
)
assert run(cheat).success
assert vg.error(vg.torch.ones(1), vg.torch.zeros(1)) == 0.0  # the notebook's own cells see the change
assert run(test).success
assert shell.user_ns["seen"] == (1.0, ("vaecourse", "coursekit", "torch.distributions"), float("inf"))  # the real ones
assert (vg.error.__code__, vg.BANNED_MODULES, vg.assert_close.__defaults__) == real
assert not hasattr(vg, "planted")
"""
    )


# ----------------------------------------------------------------------------- coursekit.grading


def _kl(mu, logvar):
    return 0.5 * (mu * mu + logvar.exp() - logvar - 1).sum(-1)


def test_own_passes_own_work_and_fails_every_kind_of_delegation():
    import functools
    import sys

    import torch

    import coursekit.grading as vg
    import vaecourse as vc

    mu, lv = torch.randn(3, 2, dtype=torch.float64), torch.randn(3, 2, dtype=torch.float64)
    vg.assert_close(vg.own(_kl)(mu, lv), vc.gaussian_kl(mu, lv), 1e-12, "own KL")
    delegating = {  # the module is named, or reached at run time, or a model's estimator is used
        "named": lambda mu, logvar: vc.gaussian_kl(mu, logvar),
        "torch.distributions": lambda mu, logvar: torch.distributions.kl_divergence(mu, logvar),
    }
    for f in delegating.values():
        with pytest.raises(AssertionError, match="must be your own code"):
            vg.own(f, see=vg.see(3, "Deriving the formula"))
    hidden = eval("lambda mu, logvar: sys.modules['vaecou' + 'rse'].gaussian_kl(mu, logvar)", {"sys": sys})
    with pytest.raises(vg.Delegated, match="vaecourse.gaussian_kl is not available"):
        vg.own(hidden)(mu, lv)
    assert vc.gaussian_kl(mu, lv).shape == (3,)  # switched back on after the call
    model = vc.LinearGaussianVAE(x_dim=3, z_dim=2, obs_var=0.5).double()
    x = torch.randn(4, 3, dtype=torch.float64)
    with pytest.raises(AssertionError, match="calls the model's elbo method"):
        vg.own(lambda model, x: model.elbo(x))  # read as an attribute: refused before any call
    with pytest.raises(AssertionError, match="calls the model's exact_elbo method"):
        vg.own(lambda model, x: vc.LinearGaussianVAE.exact_elbo(model, x), library=True)
    with pytest.raises(vg.Delegated, match="model.elbo"):
        vg.own(lambda model, x: getattr(model, "el" + "bo")(x))(model, x)  # a name built at run time
    with pytest.raises(vg.Delegated, match="model.exact_elbo"):
        vg.own(lambda model, x: getattr(model.double(), "exact_" + "elbo")(x))(model, x)  # via a copy
    assert vg.own(lambda model, x: model.log_marginal(x), library=True, allow=("log_marginal",))(model, x).shape == (4,)
    assert vg.own(lambda m, x: m.log_px_z(x, m.encode(x)[0]))(model, x).shape == (4,)
    with pytest.raises(AssertionError, match="gaussian_kl uses checks .vaecourse.checks."):
        vg.own(vc.gaussian_kl)  # the package's own function, handed in as the answer
    with pytest.raises(AssertionError, match="a partial, not a function written in the notebook"):
        vg.own(functools.partial(_kl))


def test_guard_puts_back_the_helper_module_a_test_imports():
    """``import coursekit.grading as vg`` in a test cell reads sys.modules and the package's attribute:
    a notebook that replaces either with a look-alike module gets the real one back for the test."""
    _guarded(
        r"""
import coursekit, coursekit.grading as vg
test = "import coursekit.grading as vg\nseen = vg.error(vg.torch.ones(1), vg.torch.zeros(1)), vg.__name__"
install(test)
for cheat in (
    "import sys, types\nfake = types.ModuleType('coursekit.grading')\nfake.error = lambda *a, **k: 0.0\n"
    "fake.torch = sys.modules['torch']\nsys.modules['coursekit.grading'] = fake",
    "import coursekit, sys, types\nfake = types.ModuleType('fake')\nfake.error = lambda *a, **k: 0.0\n"
    "fake.torch = sys.modules['torch']\ncoursekit.grading = fake",
):
    assert run(cheat).success
    assert run(test).success
    assert shell.user_ns["seen"] == (1.0, "coursekit.grading"), (cheat, shell.user_ns["seen"])
    assert __import__("sys").modules["coursekit.grading"] is vg and coursekit.grading is vg
"""
    )


def test_own_puts_back_what_an_answer_rebinds_during_a_call():
    import torch

    import coursekit.grading as vg

    def rebinding(mu, logvar):
        globals()["_kl"] = None  # the test cell's names
        vars(__import__("sys").modules["coursekit." + "grading"])["error"] = lambda *a, **k: 0.0
        return mu.sum(-1)

    real = _kl
    vg.own(rebinding)(torch.ones(2), torch.zeros(2))
    assert _kl is real and vg.error.__name__ == "error"

    def tampering(mu, logvar):
        torch.Tensor.__sub__ = lambda a, b: a
        return mu.sum(-1)

    sub = torch.Tensor.__sub__
    try:
        with pytest.raises(vg.Tampered, match="__sub__"):
            vg.own(tampering)(torch.ones(2), torch.zeros(2))
    finally:
        torch.Tensor.__sub__ = sub


def test_messages_say_what_was_expected_and_where_to_read():
    import torch

    import coursekit.grading as vg

    want = torch.tensor([1.0, 2.0], dtype=torch.float64)
    where = vg.see(3, "Common mistakes")
    assert where == '(see Chapter 3, "Common mistakes": 03_gaussian_kl.ipynb#common-mistakes)'
    cases = [
        ([1.0, 2.0], "expected a torch.Tensor of shape (2,) (float64), got list"),
        (torch.ones(3, dtype=torch.float64), "expected shape (2,), got (3,)"),
        (want.float(), "expected dtype float64, got float32"),
        (torch.tensor([1.0, float("nan")], dtype=torch.float64), "expected finite values [1, 2], got [1, nan]"),
        (torch.tensor([1.0, 2.5], dtype=torch.float64), "expected 2 at flat index 1, got 2.5 (relative error 0.17"),
    ]
    for got, message in cases:
        with pytest.raises(AssertionError) as err:
            vg.assert_close(got, want, 1e-6, "the KL", see=where)
        assert str(err.value).startswith("the KL: " + message) and str(err.value).endswith(where), err.value
    vg.assert_close(want.clone(), want, 1e-12, "same")
    assert vg.error(want, want) == 0.0 and vg.error(want.float(), want) == float("inf")
    with pytest.raises(ValueError, match="chapter must be one of 1-6"):
        vg.see(9, "Anything")
    assert vg.randn(2, 3, seed=4).equal(vg.randn(2, 3, seed=4)) and vg.randn(2, seed=4).dtype == torch.float64


# ----------------------------------------------------------------------------- the student's check


def test_student_check_passes_a_solved_notebook_and_fails_a_blank_one(tmp_path):
    """``python -m coursekit.check`` (what `make check NB=...` runs), as a student runs it: exit 0 and
    full visible points for the reference answers, 1 and the failed tests for the blank release and a
    typical bug (with the message that says what was expected), 2 for a file that is no notebook."""
    import subprocess
    import sys

    kit.venv_on_path()
    a = "ex3_gaussian_kl"
    cases = {
        "solved": kit.solved(a),
        "blank": kit.release_nb(a),
        "wrong": kit.solved(a, kit.WRONG[a]),
    }
    results = {}
    for name, nb in cases.items():
        path = kit.write(nb, tmp_path / name / f"{a}.ipynb")
        before = path.read_bytes()
        proc = subprocess.run(
            [sys.executable, "-m", "coursekit.check", str(path)], capture_output=True, text=True, timeout=300
        )
        results[name] = proc.returncode, proc.stdout
        assert path.read_bytes() == before, "the check changed the notebook"
    code, out = results["solved"]
    assert code == 0 and "Part A: the KL divergence to the prior (5 points): 5 / 5" in out, out
    assert "Visible tests: 10 / 10 points (+ 4 graded by hand)" in out
    code, out = results["blank"]
    assert code == 1 and "Visible tests: 0 / 10 points" in out and "8 visible test(s) failed" in out, out
    assert "an answer cell this test uses is not filled in yet" in out
    code, out = results["wrong"]
    assert code == 1 and "Part A: the KL divergence to the prior (5 points): 3 / 5" in out, out
    assert 'expected 3.125, got 6.250000 (see Chapter 3, "Common mistakes"' in out
    (tmp_path / "broken.ipynb").write_text("{not json")
    proc = subprocess.run(
        [sys.executable, "-m", "coursekit.check", str(tmp_path / "broken.ipynb")], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "is not a readable notebook" in proc.stderr


@pytest.mark.parametrize(
    "assignment",
    [a for a in kit.ASSIGNMENTS if a != kit.CAPSTONE],  # the capstone: < 60 s, test_capstone.py
)
def test_validate_of_a_student_notebook_takes_under_15_seconds(tmp_path, monkeypatch, assignment):
    """`nbgrader validate` of the reference answers (what a student runs before submitting): it passes,
    in under 15 s (a kernel start, torch's import and the visible tests). nbgrader runs in this process,
    as its command line would, less the command's own start-up (about 3 s, paid by the command-line
    runs of validate in tests/test_autograder.py)."""
    import io
    import time

    from nbgrader.validator import Validator

    out = io.StringIO()
    monkeypatch.setattr(Validator, "stream", out)  # where validate writes its report (sys.stdout)
    path = kit.write(kit.solved(assignment), tmp_path / f"{assignment}.ipynb")
    t0 = time.perf_counter()
    code, log = kit.nbgrader("validate", path.name, cwd=tmp_path)
    seconds = time.perf_counter() - t0
    report = out.getvalue()
    assert code == 0 and "Success! Your notebook passes all the tests." in report, report[-2000:] + log[-2000:]
    assert seconds < 15, f"nbgrader validate took {seconds:.1f} s"
