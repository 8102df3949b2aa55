"""Unit tests of the course's nbgrader preprocessors (autograder/vaecourse_grader.py) that need no
gradebook: how ResilientExecute treats a kernel that fails to start, and how the course's config
ends each kernel."""

import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.manager import AsyncKernelManager
from traitlets.config.loader import PyFileConfigLoader

AUTOGRADER = Path(__file__).resolve().parents[1] / "autograder"
sys.path.insert(0, str(AUTOGRADER))
from vaecourse_grader import ResilientExecute  # noqa: E402


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
