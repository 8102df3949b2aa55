"""Unit tests of the course's nbgrader preprocessors (autograder/vaecourse_grader.py) that need no
gradebook: how ResilientExecute treats a kernel that fails to start."""

import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.manager import AsyncKernelManager

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "autograder"))
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
