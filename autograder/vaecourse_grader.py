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

import ast
import hashlib
import html
import math
import os
import re
import secrets
import time

import nbformat
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbgrader import utils
from nbgrader.api import Gradebook
from nbgrader.preprocessors import ClearHiddenTests, Execute, NbGraderPreprocessor, OverwriteCells
from traitlets import Integer, Unicode
from vaecourse_sandbox import Sandbox, format_size

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


# how the sandbox's limits show in an error (errno 12, 11, 28/27, 24 and their Python/torch forms)
_MEMORY = re.compile(
    r"^\w*MemoryError|can't allocate memory|Unable to allocate|Cannot allocate memory|bad_alloc|\[Errno 12\]"
)
_PROCESSES = re.compile(r"\[Errno 11\]|Resource temporarily unavailable|can't start new thread|BlockingIOError")
_DISK = re.compile(r"\[Errno 28\]|No space left on device|\[Errno 27\]|File too large")
_FILES = re.compile(r"\[Errno 24\]|Too many open files")


def _is_test(cell):
    """An autograded test cell (graded, not an answer): the grader runs it one statement at a time."""
    return cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell)


def _statements(source):
    """A test cell's top-level statements, each with its lines, as the sources the grader runs one
    after another so that the guard restores what the tests use before each of them (a student
    function called in the visible part cannot change what the hidden part sees). Statements that
    share a line stay together; a cell that is not plain Python (a magic, a syntax error) stays whole.
    Every source but the last ends in ``pass``, so only the last expression is shown, as in the cell."""
    try:
        body = ast.parse(source).body
    except Exception:  # SyntaxError, or anything else the parser raises: run as one cell
        return [source]
    starts, end = [], 0
    for node in body:
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        if start > end:
            starts.append(start)
        end = max(end, node.end_lineno)
    if len(starts) < 2:
        return [source]
    lines = source.splitlines(True)
    starts[0] = 1  # comments above the first statement go with it
    bounds = zip(starts, starts[1:] + [len(lines) + 1])
    pieces = ["".join(lines[a - 1 : b - 1]) for a, b in bounds]
    return [p + "pass\n" for p in pieces[:-1]] + pieces[-1:]


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
    * The kernel sends a message that cannot be read (it is the submission's process: a forged or
      cut-off message, a process limit that left ZeroMQ without a thread): that cell gets a
      ``KernelError`` and the rest of the notebook is not run.
    * The kernel fails to start (no cell has run, so the submission is not the cause: say a port
      taken by another process in between): up to ``startup_attempts`` fresh kernels are tried
      before nbgrader's own error handling takes over.
    * Before the first cell, ``vaecourse_guard.py`` is installed in the kernel (not in its history):
      ahead of each test statement it puts back builtins, torch and vaecourse functions the notebook
      replaced, so a submission that rebinds ``type`` or ``torch.allclose`` fools no test, and a test
      statement during which they were replaced fails. Test cells run one top-level statement at a
      time (``_statements``): a student function called in a test's visible part cannot change
      what its hidden part uses.
    * A failed test cannot be hidden: an error reply with no error output gets one, and after each
      test cell a probe that must fail has to report an error (see ``_probe``); if it reports that
      the guard was taken out (``GuardBroken``), the test cell fails too.
    * Limits (``Sandbox`` in ``vaecourse_sandbox.py``): a cell that fails on one of the sandbox's
      limits gets a ``LimitReached`` error naming it ("memory limit 4 GiB reached"); output past
      ``Sandbox.output_limit`` (per cell) or ``Sandbox.notebook_output_limit`` is dropped and
      fails the cell that made it; the time limit is
      ``Execute.timeout`` per cell. The kernel itself runs in the sandbox when
      ``c.Execute.kernel_manager_class`` is ``SandboxedKernelManager`` (the course's config).
    """

    max_timeouts = Integer(2, help="Timed-out cells after which the rest of a notebook is not run.").tag(config=True)
    not_run_message = Unicode("this cell was not run: {reason}").tag(config=True)
    startup_attempts = Integer(3, help="Kernels tried before a notebook's kernel start counts as failed.").tag(
        config=True
    )
    guard_timeout = Integer(
        120, help="Seconds the test guard may take to install (its imports), whatever Execute.timeout is."
    ).tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        self._limits = Sandbox(parent=self)
        self._output_left, self._output_dropped = self._limits.notebook_output_bytes, None
        self._cell_output_left = self._limits.output_bytes
        tests = [c for c in nb.cells if c.cell_type == "code" and utils.is_grade(c)]
        self._pieces = {c.source: _statements(c.source) for c in tests if _is_test(c)}  # split once
        sources = [s for c in tests for s in self._pieces.get(c.source, [c.source])]
        self._tests = sorted({hashlib.sha256(s.encode()).hexdigest() for s in sources})
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
        if not self._guarded and self._tests:  # a notebook without tests needs no guard (nor its imports)
            self._guarded = True
            self._install_guard(index)  # before the first code cell; if it fails, no cell runs
        if self._stopped:
            cell.outputs = [_error_output("NotRun", self.not_run_message.format(reason=self._stopped))]
            return cell, resources
        self._output_dropped, self._cell_output_left = None, self._limits.output_bytes
        try:
            if _is_test(cell):
                self._check_assign_resources(resources)
                cell, resources = self._run_statements(cell, index), self.resources
            else:
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
        except Exception as err:  # a message the grader cannot read (a bad signature, a missing field):
            # the kernel is the submission's, so this is the notebook's failure, not the grader's
            self._stop(
                cell,
                "KernelError",
                f"the kernel sent a message that could not be read ({type(err).__name__}: {str(err)[:200]})",
                "an earlier cell broke the kernel",
            )
        else:
            if any(out.get("ename") == "CellTimeoutError" for out in cell.get("outputs", [])):
                self._timeouts += 1
                if self._timeouts >= self.max_timeouts:
                    self._stopped = f"{self._timeouts} cells ran past the {self.timeout} s limit"
        self._name_limits(cell)
        if utils.is_grade(cell):
            if not self._stopped:
                self._probe(cell, index)
            # nbgrader scores a test cell 0 if it wrote to stderr; a warning from correct code (say a
            # UserWarning from torch) should not cost the points, so stderr is shown as stdout here.
            for out in cell.get("outputs", []):
                if out.get("output_type") == "stream" and out.get("name") == "stderr":
                    out["name"] = "stdout"
        return cell, resources

    def _run_statements(self, cell, index):
        """Run a test cell as its statements (``_statements``), stopping at the first that fails;
        the cell gets their outputs in order and the time limit is for all of them together."""
        pieces = getattr(self, "_pieces", {}).get(cell.source) or [cell.source]
        if len(pieces) == 1:
            return self.execute_cell(cell, index, store_history=True)
        limit, start, outputs = self.timeout, time.monotonic(), []
        try:
            for source in pieces:
                if limit:
                    left = limit - (time.monotonic() - start)
                    if left <= 0:
                        outputs.append(_error_output("CellTimeoutError", ""))
                        break
                    self.timeout = max(1, math.ceil(left))
                piece = nbformat.v4.new_code_cell(source, metadata=cell.metadata)
                self._reply_status = None
                try:
                    piece = self.execute_cell(piece, index, store_history=True)
                finally:
                    outputs += piece.get("outputs", [])
                cell.execution_count = piece.get("execution_count")
                if self._reply_status == "error" or any(o.get("output_type") == "error" for o in outputs):
                    break
        finally:
            self.timeout = limit
            cell.outputs = outputs
            self.nb.cells[index] = cell
        return cell

    def output(self, outs, msg, display_id, cell_index):
        # output is counted as it arrives: a notebook printing in a loop cannot fill the grader's memory
        content = msg.get("content", {})
        size = sum(len(str(v)) for v in content.get("data", {}).values()) + len(str(content.get("text", "")))
        size += sum(len(line) for line in content.get("traceback", []) or [])
        left = min(self._cell_output_left, self._output_left)
        if size > left:
            self._output_dropped = "cell" if size > self._cell_output_left else "notebook"
            self._cell_output_left = 0
            if msg.get("msg_type") != "stream" or left <= 0:
                return None
            msg = dict(msg, content=dict(content, text=str(content.get("text", ""))[:left]))  # its beginning
            size = left
        self._cell_output_left -= size
        self._output_left -= size
        return super().output(outs, msg, display_id, cell_index)

    def _name_limits(self, cell):
        """Give a cell that failed on a limit an error that names it; mark timeouts the same way."""
        outputs = cell.setdefault("outputs", [])
        limits = self._limits
        for out in outputs:
            if out.get("ename") == "CellTimeoutError" and not out.get("evalue"):
                out["evalue"] = f"time limit {self.timeout:g} s per cell reached (Execute.timeout)"
                out["traceback"] = [f"CellTimeoutError: {out['evalue']}"]
        if self._output_dropped == "cell":
            cap = format_size(limits.output_bytes)
            message = f"output limit {cap} per cell reached (Sandbox.output_limit): the rest was dropped"
            outputs.append(_error_output("LimitReached", message))
        elif self._output_dropped == "notebook":
            cap = format_size(limits.notebook_output_bytes)
            message = f"output limit {cap} per notebook reached (Sandbox.notebook_output_limit): the rest was dropped"
            outputs.append(_error_output("LimitReached", message))
        if not limits.enabled:
            return
        said = set()
        for out in list(outputs):
            if out.get("output_type") != "error":
                continue
            text = f"{out.get('ename', '')}: {out.get('evalue', '')}"
            for pattern, message in (
                (_MEMORY, f"memory limit {format_size(limits.memory_bytes)} reached (Sandbox.memory_limit)"),
                (_PROCESSES, f"process limit {limits.process_limit} reached (Sandbox.process_limit)"),
                (_DISK, f"disk limit {format_size(limits.disk_bytes)} reached (Sandbox.disk_limit)"),
                (_FILES, f"open-files limit {limits.open_files_limit} reached (Sandbox.open_files_limit)"),
            ):
                if pattern.search(text) and message not in said:
                    said.add(message)
                    outputs.append(_error_output("LimitReached", message))

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
        errors = [o for o in getattr(probe, "outputs", []) if o.get("output_type") == "error"]
        broken = [o.get("evalue", "") for o in errors if o.get("ename") == "GuardBroken"]
        if broken:  # taken out while this test ran
            reason = "the notebook took the grading guard out"
            if any(o.get("ename") == "GuardBroken" for o in cell.get("outputs", [])):
                self._stopped = reason  # the cell already says so
            else:
                self._stop(cell, "GuardBroken", broken[0], reason)
            return
        if status == "error" or errors:
            return
        self._stop(
            cell,
            "ErrorsHidden",
            "a check that must fail reported no error after this cell: the notebook changed how errors "
            "are reported, so this test and the rest of the notebook count as failed",
            "an earlier cell stopped errors from being reported",
        )

    def _install_guard(self, index):
        """Run vaecourse_guard.py in the kernel, in a namespace of its own, before any submitted code.

        It has its own time limit (``guard_timeout``: its imports can take long on a busy machine). If it
        cannot be installed, the notebook is not graded further: graded without the guard, a submission
        could disarm the hidden tests. The cell says why, so that the instructor can grade it again."""
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "vaecourse_guard.py")) as f:
            source = f.read() + f"\ninstall({set(self._tests)!r})\n"
        setup = (
            f"exec(compile({source!r}, 'vaecourse_guard.py', 'exec'), "
            "{'__builtins__': dict(vars(__import__('builtins'))), '__name__': 'vaecourse_guard'})"
        )
        limit, self.timeout = self.timeout, max(self.timeout or 0, self.guard_timeout)
        try:
            guard, _ = self._run_quietly(setup, index)
            errors = [o for o in guard.get("outputs", []) if o.get("output_type") == "error"]
            failure = f"{errors[0]['ename']}: {errors[0]['evalue']}" if errors else None
        except Exception as err:  # a timeout, a dead kernel
            failure = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        finally:
            self.timeout = limit
        if failure is not None:
            self.log.warning("could not install the test guard (%s): the notebook is not graded further", failure)
            self._stopped = f"the grader could not install its test guard ({failure}); grade this notebook again"

    def _stop(self, cell, ename, evalue, reason):
        self.log.warning("%s in cell: %s; the remaining cells are not run", ename, evalue)
        cell.setdefault("outputs", []).append(_error_output(ename, evalue))
        self._stopped = reason


class FeedbackSanitizer(ClearHiddenTests):
    """In feedback: no hidden test, in a cell's source or in any output, even one a submission printed.

    * Test cells lose their hidden tests; their outputs are reduced to the one-line error (``Name:
      message``; a traceback quotes the lines around the failure), or a note if the message itself
      quotes a hidden test. Their printed output is not shown (it could show the hidden tests'
      inputs, printed by the student's own function).
    * Once a cell with hidden tests has run, a submission could have read them (from IPython's
      history, say) and printed them in any form: the outputs of every later cell are replaced by a
      note. The student has those outputs in their own notebook.
    * Any other output that contains a line of a hidden test (as text, escaped or in HTML) is
      replaced by a note too.

    Cells without nbgrader grade metadata keep their sources (students may type anything into them).
    """

    def preprocess(self, nb, resources):
        self._secrets, self._seen_hidden = self._hidden_lines(nb), False
        return super().preprocess(nb, resources)

    def _hidden_lines(self, nb):
        """Lines of the notebook's hidden tests that appear nowhere in its visible, locked text."""
        hidden, visible = set(), set()
        for cell in nb.cells:
            lines = cell.get("source", "").splitlines()
            if utils.is_grade(cell) and cell.cell_type == "code" and self.begin_test_delimeter in cell.source:
                inside = False
                for line in lines:
                    if self.begin_test_delimeter in line:
                        inside = True
                    elif self.end_test_delimeter in line:
                        inside = False
                    (hidden if inside else visible).add(" ".join(line.split()))
            elif not utils.is_solution(cell):
                visible.update(" ".join(line.split()) for line in lines)
        return {line for line in hidden - visible if len(line) >= 12}

    def _quotes_hidden(self, text):
        """Whether ``text`` contains a hidden test's line: as printed, HTML-escaped or as a repr."""
        if not self._secrets or not text:
            return False
        text = str(text)
        plain = html.unescape(text)
        unescaped = plain.replace("\\n", "\n").replace("\\t", "\t").replace('\\"', '"').replace("\\'", "'")
        forms = [" ".join(form.split()) for form in (text, plain, unescaped)]
        if any(secret in form for secret in self._secrets for form in forms):
            return True
        squeezed = ["".join(form.split()) for form in forms]  # spaces inserted or removed
        return any("".join(secret.split()) in form for secret in self._secrets for form in squeezed)

    def _unshowable(self, message):
        """Why a test cell's error message is not shown in feedback (None: it is shown).

        The message is text the submission's kernel produced while the hidden tests ran, so it may
        carry them in any encoding: only a short, plain, one-line message is shown.
        """
        if self._quotes_hidden(message):
            return "it quotes a hidden test"
        if "\n" in message.strip() or len(message) > MESSAGE_LIMIT:
            return f"longer than one line of {MESSAGE_LIMIT} characters"
        if ENCODED.search(message):
            return "it holds a long encoded string"
        return None

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        outputs = cell.get("outputs", [])
        if utils.is_grade(cell):
            try:
                hidden = self._remove_hidden_test_region(cell)
            except RuntimeError:  # unbalanced markers: show no source at all rather than a hidden test
                cell.source, hidden = "# (test source not shown)", True
            if hidden:
                self._seen_hidden = True
                kept = []
                for out in outputs:
                    if out.get("output_type") != "error":
                        continue
                    ename, evalue = _one_line(out.get("ename", "Error"), 60), str(out.get("evalue", ""))
                    why = self._unshowable(evalue)
                    if why:
                        evalue = f"(message not shown: {why})"
                    out["ename"], out["evalue"] = ename, evalue
                    message = f"{ename}: {evalue}".rstrip(": ")
                    out["traceback"] = [message + "  (a test in this cell failed; details are hidden)"]
                    kept.append(out)
                cell.outputs = kept
                return cell, resources
        if self._seen_hidden and outputs:
            cell.outputs = [_note(AFTER_HIDDEN)]
        elif any(self._quotes_hidden(_output_text(out)) for out in outputs):
            cell.outputs = [_note(QUOTES_HIDDEN)]
        return cell, resources


MESSAGE_LIMIT = 300  # characters of a failed test's message shown in feedback
ENCODED = re.compile(r"[A-Za-z0-9+/=_-]{48,}")  # base64, hex or similar: not how a test's message reads


def _one_line(text, limit):
    text = " ".join(str(text).split())
    return text[:limit] or "Error"


AFTER_HIDDEN = "(Output not shown in feedback: this cell ran after hidden tests. Run your notebook to see it.)\n"
QUOTES_HIDDEN = "(Output not shown in feedback: it quotes a hidden test.)\n"


def _note(text):
    return nbformat.v4.new_output("stream", name="stdout", text=text)


def _output_text(out):
    parts = [out.get("text", ""), out.get("evalue", ""), *(out.get("traceback") or [])]
    parts += [
        v if isinstance(v, str) else "".join(v) for v in (out.get("data") or {}).values() if isinstance(v, (str, list))
    ]
    return "\n".join(p if isinstance(p, str) else "".join(p) for p in parts)
