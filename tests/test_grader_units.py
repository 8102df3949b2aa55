"""Unit tests of the course's nbgrader pieces (autograder/vaecourse_grader.py) that need no
gradebook: how ResilientExecute treats a kernel that fails to start, how the course's config ends
each kernel, and how SubmissionExporter reads a submission that is not a notebook."""

import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.manager import AsyncKernelManager
from nbgrader.coursedir import CourseDirectory
from traitlets.config import LoggingConfigurable
from traitlets.config.loader import PyFileConfigLoader

AUTOGRADER = Path(__file__).resolve().parents[1] / "autograder"
sys.path.insert(0, str(AUTOGRADER))
from vaecourse_grader import ResilientExecute, SubmissionExporter  # noqa: E402


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


class _RecordingKernelManager(AsyncKernelManager):
    """A kernel manager that records how each kernel was shut down."""

    shutdowns = []

    async def shutdown_kernel(self, now=False, restart=False):
        type(self).shutdowns.append(now)
        return await super().shutdown_kernel(now=now, restart=restart)


def test_the_course_config_kills_each_graded_kernel_at_once():
    """A graceful shutdown waits ~1.3 s for torch to tear itself down in every graded kernel."""
    config = PyFileConfigLoader("nbgrader_config.py", path=str(AUTOGRADER)).load_config()
    _RecordingKernelManager.shutdowns = []
    ex = ResilientExecute(config=config, kernel_manager_class=_RecordingKernelManager)
    nb, _ = ex.preprocess(_notebook(), {"metadata": {"path": "."}})
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
