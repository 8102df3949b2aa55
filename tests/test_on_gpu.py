"""The book and the exercises on a CUDA GPU (skipped without one; CI has none).

nbval compares the chapters' stored outputs, which a GPU does not reproduce digit for digit, so on
a GPU every chapter is instead run top to bottom and must raise nothing: the hidden checks inside
the chapters (cells tagged ``remove-cell``) then hold on the GPU's own results. The reference
solutions run with their hidden tests, also after ``torch.set_default_device("cuda")`` (a student
on a GPU machine may set it; every test must still pass).
"""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(p.name for p in (REPO / "book").glob("*.ipynb"))
SOLUTIONS = sorted((REPO / "solutions").glob("*/*.ipynb"))

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

# Runs a notebook's code cells in order in one IPython shell (display, widgets and magics work as in
# a kernel); exits 1 at the first cell that raises, unless the cell is tagged raises-exception.
RUNNER = """
import json, os, sys
import matplotlib
matplotlib.use("Agg")
from IPython.core.interactiveshell import InteractiveShell

path, prelude = sys.argv[1], sys.argv[2]
os.chdir(os.path.dirname(os.path.abspath(path)))
shell = InteractiveShell.instance()
shell.run_cell(prelude)
for i, cell in enumerate(json.load(open(path))["cells"]):
    if cell["cell_type"] != "code":
        continue
    result = shell.run_cell("".join(cell["source"]))
    if not result.success and "raises-exception" not in cell.get("metadata", {}).get("tags", []):
        print(f"cell {i} raised {result.error_in_exec or result.error_before_exec!r}", file=sys.stderr)
        sys.exit(1)
"""


def _run(path, prelude=""):
    run = subprocess.run(
        [sys.executable, "-c", RUNNER, str(path), prelude], capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, (run.stdout[-4000:], run.stderr[-2000:])


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_runs_on_the_gpu(chapter):
    _run(REPO / "book" / chapter)


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_solution_passes_its_tests_on_the_gpu(solution):
    _run(solution)


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_solution_passes_with_cuda_as_the_default_device(solution):
    _run(solution, prelude="import torch; torch.set_default_device('cuda')")
