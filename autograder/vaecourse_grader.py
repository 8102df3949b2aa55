"""nbgrader preprocessors that make the vaecourse autograder hard to break.

``nbgrader_config.py`` (next to this file) puts them into nbgrader's pipelines:

    TagExpectedErrors    generate_assignment: tag the cells of a *release* notebook that are meant to
                         fail while unanswered with nbval's ``raises-exception`` (test cells, answer
                         cells that ``raise NotImplementedError``), so ``pytest --nbval book/`` runs them.
    SanitizeSubmission   autograde: rebuild every cell's nbgrader metadata from the gradebook, so an
                         edited, re-typed or unknown-id cell can neither crash grading nor change points.
    RestoreMissingCells  autograde: OverwriteCells with a safe re-insertion of deleted test cells
                         (nbgrader's own version raises KeyError when the cells around them are gone too).
    ResilientExecute     autograde: a kernel that dies (``os._exit``) or stops answering (an infinite loop
                         that swallows KeyboardInterrupt) fails the cell it was in and the cells after it,
                         instead of failing the whole submission; time per notebook stays bounded.
                         A warning printed (to stderr) by correct code does not zero a test cell;
                         a notebook cannot rebind what the tests use or hide a failed test.
    FeedbackSanitizer    generate_feedback: remove hidden tests from test cells and shorten their error
                         tracebacks to ``Name: message`` (a traceback quotes the lines around the failure).

How submitted files are read (an unreadable file, a notebook under another name) is in
``vaecourse_submissions.py``; what ResilientExecute installs in the kernel to undo a submission's
rebinding of builtins, torch or vaecourse before each test cell is in ``vaecourse_guard.py``.

Every preprocessor derives from ``NbGraderPreprocessor``: plain nbconvert preprocessors are registered
*disabled* by nbgrader's exporters and would silently do nothing.
"""

import hashlib
import os
import secrets

import nbformat
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbgrader import utils
from nbgrader.api import Gradebook
from nbgrader.preprocessors import ClearHiddenTests, Execute, NbGraderPreprocessor, OverwriteCells
from traitlets import Integer, Unicode

__all__ = [
    "TagExpectedErrors",
    "SanitizeSubmission",
    "RestoreMissingCells",
    "ResilientExecute",
    "FeedbackSanitizer",
]

RAISES = "raises-exception"


def _nbgrader(cell):
    md = cell.get("metadata", {}).get("nbgrader")
    return md if isinstance(md, dict) else {}


def _error_output(ename, evalue):
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


class TagExpectedErrors(NbGraderPreprocessor):
    """Add nbval's ``raises-exception`` tag to cells expected to error in a blank release notebook."""

    def preprocess_cell(self, cell, resources, index):
        md = _nbgrader(cell)
        is_test = md.get("grade") and not md.get("solution")
        is_stub = md.get("solution") and "raise NotImplementedError" in cell.source
        if cell.cell_type == "code" and (is_test or is_stub):
            tags = list(cell.metadata.get("tags", []))
            if RAISES not in tags:
                cell.metadata["tags"] = tags + [RAISES]
        return cell, resources


class SanitizeSubmission(NbGraderPreprocessor):
    """Replace the nbgrader metadata of submitted cells by what the gradebook says it must be.

    A cell whose ``grade_id`` the gradebook does not know (or that has no usable id) becomes a
    plain cell; a known cell gets its type, lock, points and flags back. Runs before DeduplicateIds
    and OverwriteCells, which assume well-formed metadata.
    """

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        with Gradebook(info["db_url"]) as gb:
            notebook = gb.find_notebook(info["notebook"], info["assignment"])
            points = {c.name: float(c.max_score) for c in notebook.grade_cells}
            solutions = {c.name for c in notebook.solution_cells}
            self._known = {
                c.name: dict(
                    cell_type=c.cell_type,
                    locked=bool(c.locked),
                    grade=c.name in points,
                    solution=c.name in solutions,
                    points=points.get(c.name),
                )
                for c in notebook.source_cells
            }
        nb.cells = [self._sanitize(cell) for cell in nb.cells]
        return nb, resources

    def _sanitize(self, cell):
        if "nbgrader" not in cell.get("metadata", {}):
            return cell
        grade_id = _nbgrader(cell).get("grade_id")
        known = self._known.get(grade_id) if isinstance(grade_id, str) else None
        if known is None:
            self.log.warning("Removing nbgrader metadata from a cell with unknown id %r", grade_id)
            del cell.metadata["nbgrader"]
            return cell
        md = {
            "grade": known["grade"],
            "grade_id": grade_id,
            "locked": known["locked"],
            "schema_version": 3,
            "solution": known["solution"],
            "task": False,
        }
        if known["grade"]:
            md["points"] = known["points"]
        if cell.cell_type != known["cell_type"]:
            self.log.warning(
                "Cell %s was changed to %s; restoring it as %s", grade_id, cell.cell_type, known["cell_type"]
            )
            make = nbformat.v4.new_code_cell if known["cell_type"] == "code" else nbformat.v4.new_markdown_cell
            new = make(source=cell.get("source", ""), metadata=dict(cell.metadata))
            if "id" in cell:
                new["id"] = cell["id"]
            cell = new
        cell.metadata["nbgrader"] = md
        return cell


class RestoreMissingCells(OverwriteCells):
    """OverwriteCells whose re-insertion of deleted grade cells cannot fail.

    A missing cell goes right after the nearest earlier cell of the source notebook still present
    in the submission (or before the nearest later one, or at the end).
    """

    def preprocess(self, nb, resources):
        # DeduplicateIds leaves `nbgrader: {}` on the extra copies of a duplicated cell: make them plain
        for cell in nb.cells:
            if "nbgrader" in cell.get("metadata", {}) and not _nbgrader(cell).get("grade_id"):
                del cell.metadata["nbgrader"]
        return super().preprocess(nb, resources)

    def add_missing_task_cells(self, nb, resources):
        return nb, resources  # the course has no task cells (nbgrader's version trips on odd metadata)

    def add_missing_grade_cells(self, nb, resources):
        source_nb = self.gradebook.find_notebook(self.notebook_id, self.assignment_id)
        order = [c.name for c in source_nb.source_cells]
        source = {c.name: c for c in source_nb.source_cells}
        solution_ids = {c.name for c in source_nb.solution_cells}
        for grade_cell in source_nb.grade_cells:
            present = [_nbgrader(c).get("grade_id") for c in nb.cells]
            if grade_cell.name in present or grade_cell.name not in source:
                continue
            self.log.warning("Missing grade cell %s: adding it back", grade_cell.name)
            new = self.missing_cell_transform(
                source[grade_cell.name], grade_cell.max_score, is_solution=grade_cell.name in solution_ids
            )
            if nb.get("nbformat_minor", 0) >= 5:
                new["id"] = f"restored-{grade_cell.name}"[:64]
            at = order.index(grade_cell.name) if grade_cell.name in order else len(order)
            before = [present.index(n) + 1 for n in reversed(order[:at]) if n in present]
            after = [present.index(n) for n in order[at + 1 :] if n in present]
            nb.cells.insert(before[0] if before else after[0] if after else len(nb.cells), new)
        return nb, resources


class ResilientExecute(Execute):
    """Execute that survives a dead or unresponsive kernel and bounds the time a notebook can take.

    * The kernel dies in a cell (``os._exit``, a segfault): that cell gets a ``DeadKernelError``
      output and every later code cell a ``NotRun`` error, so the submission is still scored.
    * A cell runs past ``timeout``: nbgrader interrupts it and records ``CellTimeoutError``. If the
      interrupt does not bring the kernel back (the code swallows KeyboardInterrupt), or after
      ``max_timeouts`` timed-out cells, the remaining cells are not run.
    * The kernel fails to start (no cell has run, so the submission is not the cause: say a port
      taken by another process in between): up to ``startup_attempts`` fresh kernels are tried
      before nbgrader's own error handling takes over.
    * Before the first cell, ``vaecourse_guard.py`` is installed in the kernel (not in its history):
      ahead of each test cell it puts back builtins, torch and vaecourse functions the notebook
      replaced, so a submission that rebinds ``type`` or ``torch.allclose`` fools no test.
    * A failed test cannot be hidden: an error reply with no error output gets one, and after each
      test cell a probe that must fail has to report an error (see ``_probe``).
    """

    max_timeouts = Integer(2, help="Timed-out cells after which the rest of a notebook is not run.").tag(config=True)
    not_run_message = Unicode("this cell was not run: {reason}").tag(config=True)
    startup_attempts = Integer(3, help="Kernels tried before a notebook's kernel start counts as failed.").tag(
        config=True
    )

    def preprocess(self, nb, resources=None, km=None):
        tests = [c for c in nb.cells if c.cell_type == "code" and utils.is_grade(c)]
        self._tests = sorted(hashlib.sha256(c.source.encode()).hexdigest() for c in tests)
        for attempt in range(1, self.startup_attempts + 1):
            self._stopped, self._timeouts, self._started, self._guarded = None, 0, False, False
            try:
                return super().preprocess(nb, resources, km=km)
            except RuntimeError as err:  # jupyter_client: "Kernel died before replying to kernel_info"
                if self._started or km is not None or attempt == self.startup_attempts:
                    raise
                self.log.warning(
                    "the kernel did not start (%s); starting another (attempt %d of %d)",
                    err,
                    attempt + 1,
                    self.startup_attempts,
                )

    def preprocess_cell(self, cell, resources, index):
        self._started = True  # the kernel is up: failures from here on are the notebook's
        if cell.cell_type != "code" or not cell.source.strip():
            return cell, resources
        if self._stopped:
            cell.outputs = [_error_output("NotRun", self.not_run_message.format(reason=self._stopped))]
            return cell, resources
        if not self._guarded and self._tests:  # a notebook without tests needs no guard (nor its imports)
            self._guarded = True
            self._install_guard(index)
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self._stop(
                cell, "DeadKernelError", "the kernel died while running this cell", "the kernel died in an earlier cell"
            )
        except CellTimeoutError:
            self._stop(
                cell,
                "CellTimeoutError",
                f"no reply within {self.timeout} s and the kernel could not be interrupted",
                "an earlier cell never stopped",
            )
        else:
            if any(out.get("ename") == "CellTimeoutError" for out in cell.get("outputs", [])):
                self._timeouts += 1
                if self._timeouts >= self.max_timeouts:
                    self._stopped = f"{self._timeouts} cells ran past the {self.timeout} s limit"
        if utils.is_grade(cell):
            if not self._stopped:
                self._probe(cell, index)
            # nbgrader scores a test cell 0 if it wrote to stderr; a warning from correct code (say a
            # UserWarning from torch) should not cost the points, so stderr is shown as stdout here.
            for out in cell.get("outputs", []):
                if out.get("output_type") == "stream" and out.get("name") == "stderr":
                    out["name"] = "stdout"
        return cell, resources

    async def _check_raise_for_error(self, cell, cell_index, exec_reply):
        # nbgrader fails a test cell only on an error *output*; a notebook that hides them (IPython's
        # set_custom_exc, a replaced showtraceback) still gets an "error" reply: make it an output
        content = (exec_reply or {}).get("content", {})
        self._reply_status = content.get("status")
        shown = any(o.get("output_type") == "error" for o in cell.get("outputs", []))
        if self._reply_status == "error" and not shown:
            error = _error_output(content.get("ename", "Error"), content.get("evalue", ""))
            cell.setdefault("outputs", []).append(error)
        await super()._check_raise_for_error(cell, cell_index, exec_reply)

    def _run_quietly(self, source, index):
        """Run code in the kernel outside its history; the cell (with its outputs) and the reply status."""
        extra = nbformat.v4.new_code_cell(source)
        self._reply_status, current = None, self.nb.cells[index]
        try:
            self.execute_cell(extra, index, store_history=False)
        finally:
            self.nb.cells[index] = current  # nbclient stores the executed cell at `index`
        return extra, self._reply_status

    def _probe(self, cell, index):
        """After a test cell, a check that must fail: if no error comes back, the notebook has changed
        how errors are reported (a cell wrapped in try/except by an input transformer, say), and this
        test cell and the rest of the notebook count as failed."""
        token = secrets.token_hex(8)  # the probe carries the test's code, never run: a cheat
        body = "".join("    " + line for line in cell.source.splitlines(True))  # keyed on it sees it too
        source = f'"""Check {token}."""\nif False:\n{body}\n    pass\nassert False, "{token}"'
        try:
            probe, status = self._run_quietly(source, index)
        except (DeadKernelError, CellTimeoutError):
            probe, status = None, None
        if status == "error" or any(o.get("output_type") == "error" for o in getattr(probe, "outputs", [])):
            return
        self._stop(
            cell,
            "ErrorsHidden",
            "a check that must fail reported no error after this cell: the notebook changed how errors "
            "are reported, so this test and the rest of the notebook count as failed",
            "an earlier cell stopped errors from being reported",
        )

    def _install_guard(self, index):
        """Run vaecourse_guard.py in the kernel, in a namespace of its own, before any submitted code."""
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "vaecourse_guard.py")) as f:
            source = f.read() + f"\ninstall({set(self._tests)!r})\n"
        setup = (
            f"exec(compile({source!r}, 'vaecourse_guard.py', 'exec'), "
            "{'__builtins__': dict(vars(__import__('builtins'))), '__name__': 'vaecourse_guard'})"
        )
        try:
            guard, _ = self._run_quietly(setup, index)
        except Exception as err:  # grading goes on without the guard; the tests' own checks remain
            self.log.warning("could not install the test guard: %s", err)
            return
        errors = [o for o in guard.get("outputs", []) if o.get("output_type") == "error"]
        if errors:
            self.log.warning("could not install the test guard: %s: %s", errors[0]["ename"], errors[0]["evalue"])

    def _stop(self, cell, ename, evalue, reason):
        self.log.warning("%s in cell: %s; the remaining cells are not run", ename, evalue)
        cell.setdefault("outputs", []).append(_error_output(ename, evalue))
        self._stopped = reason


class FeedbackSanitizer(ClearHiddenTests):
    """In feedback: drop hidden tests from test cells and reduce their tracebacks to one line.

    Cells without nbgrader grade metadata are left alone (students may type anything into them).
    """

    def preprocess_cell(self, cell, resources, index):
        if not utils.is_grade(cell) or cell.cell_type != "code":
            return cell, resources
        try:
            hidden = self._remove_hidden_test_region(cell)
        except RuntimeError:  # unbalanced markers: show no source at all rather than a hidden test
            cell.source, hidden = "# (test source not shown)", True
        if hidden:
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    message = f"{out.get('ename', 'Error')}: {out.get('evalue', '')}".rstrip(": ")
                    out["traceback"] = [message + "  (a test in this cell failed; details are hidden)"]
        return cell, resources
