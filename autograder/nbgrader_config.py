# nbgrader configuration of the vaecourse course directory. Run every nbgrader command from this
# folder (nbgrader reads nbgrader_config.py from the working directory), e.g.
#     cd autograder && nbgrader generate_assignment ex3_gaussian_kl --force
#
# Layout (relative to this folder):
#     ../solutions/<assignment>/<assignment>.ipynb       source notebooks, solutions and hidden tests
#     ../book/exercises/<assignment>/<assignment>.ipynb  student versions (committed, shown in the book)
#     submitted/ autograded/ feedback/ gradebook.db      created at grading time (git-ignored)
#     exchange/                                          default local exchange (git-ignored)
# Any of these can be overridden on the command line, e.g. --Exchange.root=/srv/nbgrader/exchange.
import os
import sys

from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    ClearHiddenTests,
    ClearMarkScheme,
    ClearOutput,
    ClearSolutions,
    ComputeChecksums,
    DeduplicateIds,
    GetGrades,
    IgnorePattern,
    IncludeHeaderFooter,
    InstantiateTests,
    LimitOutput,
    LockCells,
    OverwriteKernelspec,
    SaveAutoGrades,
    SaveCells,
)

HERE = os.path.dirname(os.path.abspath(__file__))  # traitlets defines __file__ while running this file
if HERE not in sys.path:
    sys.path.insert(0, HERE)
from vaecourse_grader import (  # noqa: E402
    FeedbackSanitizer,
    ResilientExecute,
    RestoreMissingCells,
    SanitizeSubmission,
    TagExpectedErrors,
)
from vaecourse_sandbox import SandboxedKernelManager  # noqa: E402
from vaecourse_submissions import RenamedNotebooks, SubmissionExporter  # noqa: E402

c = get_config()  # noqa: F821 (provided by traitlets)

# ---------------------------------------------------------------- course directory
c.CourseDirectory.root = HERE
c.CourseDirectory.course_id = "vaecourse"
c.CourseDirectory.source_directory = "../solutions"
c.CourseDirectory.release_directory = "../book/exercises"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(HERE, "gradebook.db")
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".nbgrader.log"]

c.Exchange.root = os.path.join(HERE, "exchange")  # a shared path on a real server
c.Exchange.path_includes_course = False

# ---------------------------------------------------------------- generate_assignment
# nbgrader's default pipeline, then nbval's raises-exception tag on cells meant to fail unanswered.
c.GenerateAssignment.preprocessors = [
    IncludeHeaderFooter,
    InstantiateTests,
    LockCells,
    ClearSolutions,
    ClearOutput,
    CheckCellMetadata,
    ComputeChecksums,
    SaveCells,
    ClearHiddenTests,
    ClearMarkScheme,
    ComputeChecksums,
    CheckCellMetadata,
    TagExpectedErrors,
]
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# ---------------------------------------------------------------- the sandbox
# Every kernel nbgrader starts from this folder (autograde, validate) runs in a bubblewrap sandbox
# (vaecourse_sandbox.py): read-only Python environment and vaecourse package, a private /tmp and
# $HOME with a copy of the submission, no network, no course files. autograde refuses to start if
# bwrap is missing or cannot start. Limits (a cell that hits one fails, with a message naming it):
c.Execute.kernel_manager_class = SandboxedKernelManager
c.Sandbox.memory_limit = "4GiB"  # address space of each process
c.Sandbox.process_limit = 64  # processes and threads at once
c.Sandbox.disk_limit = "1GiB"  # the private /tmp (with $HOME and the working copy), /dev/shm, any one file
c.Sandbox.output_limit = "2MiB"  # the output of one cell
c.Sandbox.notebook_output_limit = "20MiB"  # the output of all of a notebook's cells
# More read-only paths for the kernel (a shared test-helper module, a data set), e.g.
#     c.Sandbox.read_only_paths = ["/srv/course/testhelpers"]
# Opting out (trusted notebooks only; any submission can then read the solutions and rewrite grades):
#     c.Sandbox.i_understand_submissions_run_unsandboxed = True

# ---------------------------------------------------------------- autograde
# Bounded: a cell gets Execute.timeout seconds (the per-cell time limit); after
# ResilientExecute.max_timeouts timed-out cells, or a dead kernel, the rest of that notebook is not
# run (and scores 0) and grading moves on.
c.Execute.timeout = 60
c.Execute.interrupt_on_timeout = True
c.Execute.startup_timeout = 120
# A graded notebook's kernel is killed when its last cell has run: a graceful shutdown waits for
# torch to tear itself down (1.3 s a kernel when idle, ~2 s under load: a quarter of grading time).
c.Execute.shutdown_kernel = "immediate"
# Two graders on one machine can race for the same free TCP port, and a kernel then dies at start-up:
# ResilientExecute starts another kernel (startup_attempts) instead of dropping the submission.
c.ResilientExecute.startup_attempts = 3
c.ResilientExecute.max_timeouts = 2
# the test guard's install (before the first cell) has its own limit; without the guard, no grade
c.ResilientExecute.guard_timeout = 120
# A file that is not a readable notebook is graded as the blank release, with a cell saying why.
c.Autograde.exporter_class = SubmissionExporter
# A notebook handed in under another name (ex3_gaussian_kl-Copy1.ipynb) is graded as the assignment's,
# with a note in its feedback; plain nbgrader stops that student's grading ("No notebooks found").
c.Autograde.pre_convert_hook = RenamedNotebooks(c.CourseDirectory.db_url, c.CourseDirectory.course_id)
c.OverwriteCells.add_missing_cells = True  # a deleted test cell is put back, then fails or passes
c.Autograde.sanitize_preprocessors = [
    ClearOutput,
    SanitizeSubmission,
    DeduplicateIds,
    OverwriteKernelspec,
    RestoreMissingCells,
    CheckCellMetadata,
]
c.Autograde.autograde_preprocessors = [
    ResilientExecute,
    IgnorePattern,
    ClearMetadataPreprocessor,
    LimitOutput,
    SaveAutoGrades,
    AssignLatePenalties,
    CheckCellMetadata,
]

# ---------------------------------------------------------------- feedback
# Students see which test cells failed and the assertion message, never the hidden tests.
c.GenerateFeedback.preprocessors = [GetGrades, FeedbackSanitizer, CSSHTMLHeaderPreprocessor]
