"""The autograder, end to end, on a copy of the course in a temporary directory.

One module-scoped fixture does the expensive part once:

1. copy solutions/ and autograder/ into a temporary course and run ``release.py`` there: this
   regenerates book/exercises/ (compared with the committed one below) and fills the gradebook;
2. a second copy of that course grades in parallel (two CPU cores: two kernels at a time);
3. students ``alice`` (reference answers) and ``bob`` (a typical bug) go through the local
   exchange: release_assignment, fetch_assignment, submit, collect;
4. fake students are dropped into submitted/: for every assignment the reference answers (but the
   capstone's, graded in test_capstone.py with three other models), the blank release, a typical
   bug and answers that delegate to the library (``exercise_kit.DELEGATED``);
   for ex3 each way of cheating in ``exercise_kit.CHEATS`` and each attack on the grading machine
   in ``sandbox_attacks.ATTACKS`` (listeners on the host's TCP and UDP ports record what reaches
   them); for ex6 a file cut off in the upload (no longer a notebook); for ex5 the reference answers
   saved under another name (a browser's "ex5_posterior_collapse (1).ipynb"); in B two entries
   that are not folders;
5. course A is graded serially by plain ``nbgrader autograde "*"``, course B by ``grade.py "*"
   --jobs 2`` (two sandboxes at once, one gradebook); B also grades copies of A's ex3 reference,
   blank and buggy answers, to compare a parallel with a serial run; then ``generate_feedback
   "*"`` and ``export`` (nbgrader's CSV and the LMS plugin's) in both courses, and autograde in A
   once without bwrap and once with a nonsense limit (both must stop and change nothing).

The tests then read scores from the gradebooks, the CSV exports and the feedback files.
"""

import csv
import hashlib
import html
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import exercise_kit as kit
import pytest
import sandbox_attacks as attacks

pytestmark = pytest.mark.slow

TIMEOUT = 10  # seconds per cell while grading: the infinite loops below cost this much, once each
EXCHANGE_ASSIGNMENT = kit.CHEAT_ASSIGNMENT
ROUND_TRIP = {"alice": None, "bob": kit.WRONG[EXCHANGE_ASSIGNMENT]}  # student -> answer overrides
# which course copy grades what (A also runs the exchange round trip)
CHEATS_A = ["hardcoded", "always-equal", "patched-allclose", "patched-builtins", "infinite-loop", "sabotaged-tests"]
CHEATS_A += ["patching-thread"]
CHEATS_B = ["edited-tests", "deleted-tests", "retyped-tests", "swallowed-errors", "stubborn-loop", "os-exit"]
CHEATS_B += ["unhooked", "math-inf"]
ASSIGNMENTS_A = ["ex1_latent_models", "ex2_elbo", "ex3_gaussian_kl"]
INVERT_ASSIGNMENT = "ex1_latent_models"  # `nbgrader validate --invert` on its blank release
UNREADABLE_ASSIGNMENT = "ex6_iwae"  # course B gets the first half of its release file as a submission
RENAMED_ASSIGNMENT = "ex5_posterior_collapse"  # course B gets its reference answers as RENAMED_FILE
RENAMED_FILE = f"{RENAMED_ASSIGNMENT} (1).ipynb"
# attacks on the grading machine (sandbox_attacks.py), by course; the vandals are graded first
ATTACKS_A = ["reader", "copier", "writer", "vandal", "printer"]  # graded one at a time
ATTACKS_B = [
    "api-writer",
    "wrecker",
    "encoder",
    "tcp",
    "udp-lan",
    "memory-hog",
    "process-hog",
    "disk-hog",
    "output-hog",
]
FIRST = {"vandal": "a-vandal", "wrecker": "a-wrecker"}  # sorted before "alice"
PARALLEL_TWINS = {"par-ref": "alice", "par-blank": "blank", "par-wrong": "bob"}  # B's ex3 -> A's
NOT_FOLDERS = ["notafolder", "carol/ex4_reparameterization"]  # files where B expects folders


def attacker(name):
    return FIRST.get(name, f"attack-{name}")


class Listener:
    """TCP and UDP listeners on every address of the host: what a sandboxed kernel must never reach."""

    def __init__(self):
        self.received = []
        self.tcp = socket.socket()
        self.tcp.bind(("0.0.0.0", 0))
        self.tcp.listen(16)
        self.tcp.settimeout(0.5)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("0.0.0.0", 0))
        self.udp.settimeout(0.5)
        self.ports = self.tcp.getsockname()[1], self.udp.getsockname()[1]
        self._stop = False
        self.threads = [threading.Thread(target=f, daemon=True) for f in (self._accept, self._datagrams)]
        for t in self.threads:
            t.start()

    def _accept(self):
        while not self._stop:
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                continue
            conn.settimeout(2)
            try:
                self.received.append(("tcp", conn.recv(1 << 20)))
            except OSError:
                self.received.append(("tcp", b"<connected>"))
            conn.close()

    def _datagrams(self):
        while not self._stop:
            try:
                self.received.append(("udp", self.udp.recv(1 << 16)))
            except OSError:
                continue

    def close(self):
        self._stop = True
        for t in self.threads:
            t.join(5)
        self.tcp.close()
        self.udp.close()


def host_address():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("10.254.254.254", 1))  # sends nothing: picks the interface a packet would leave by
        return s.getsockname()[0]
    except OSError:
        return "127.0.0.1"
    finally:
        s.close()


def _cli(*args, cwd, log):
    """Start `nbgrader ARGS` as a separate process (the command a user types), logging to `log`."""
    kit.venv_on_path()
    out = open(log, "w")
    return subprocess.Popen(
        [sys.executable, "-m", "nbgrader", *map(str, args)],
        cwd=cwd,
        stdout=out,
        stderr=subprocess.STDOUT,
        env=dict(os.environ),
    )


def _wait(proc, log, what):
    code = proc.wait(timeout=600)
    assert code == 0, f"{what} exited with {code}:\n" + Path(log).read_text()[-3000:]


def _ok(result, what):
    code, log = result
    assert code == 0, f"nbgrader {what} failed ({code}):\n{log[-3000:]}"
    return log


def _submit(course, student, assignment, nb):
    return kit.write(nb, course / "submitted" / student / assignment / f"{assignment}.ipynb")


def _digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("course")
    times = {}
    listener = Listener()
    address = host_address()
    a_root, b_root = tmp / "A", tmp / "B"
    ag_a = kit.make_course(a_root)

    # 1. release.py in the copy: book/exercises and a gradebook with every assignment
    with kit.timer(times, "release.py (6 assignments)"):
        rel = subprocess.run(
            [sys.executable, "release.py", "--keep-gradebook"],
            cwd=ag_a,
            capture_output=True,
            text=True,
            timeout=300,
            env=dict(os.environ),
        )
    assert rel.returncode == 0, rel.stdout + rel.stderr
    release_root = a_root / "book" / "exercises"

    # 2. course B: a copy of A before any submission; it starts grading at once
    shutil.copytree(a_root, b_root)
    ag_b = b_root / "autograder"
    subs_b = {}
    for a in kit.ASSIGNMENTS:
        if a not in ASSIGNMENTS_A:
            if a != kit.CAPSTONE:  # its reference answers are graded, and their numbers read, in test_capstone.py
                subs_b[("ref", a)] = kit.solved(a, release_root=release_root)
            subs_b[("blank", a)] = kit.release_nb(a, release_root)
            subs_b[("wrong", a)] = kit.solved(a, kit.WRONG[a], release_root=release_root)
            if a in kit.DELEGATED:
                subs_b[("delegated", a)] = kit.solved(a, kit.DELEGATED[a], release_root=release_root)
    for name in CHEATS_B:
        subs_b[(f"cheat-{name}", kit.CHEAT_ASSIGNMENT)] = kit.CHEATS[name](
            kit.release_nb(kit.CHEAT_ASSIGNMENT, release_root)
        )

    def attack(name, root):
        ctx = dict(root=str(root), me=attacker(name), tcp=listener.ports[0], udp=listener.ports[1], host=address)
        return attacks.ATTACKS[name](kit.release_nb(kit.CHEAT_ASSIGNMENT, release_root), ctx)

    for name in ATTACKS_B:
        subs_b[(attacker(name), kit.CHEAT_ASSIGNMENT)] = attack(name, b_root)
    twins = {"par-ref": None, "par-blank": "blank", "par-wrong": kit.WRONG[EXCHANGE_ASSIGNMENT]}
    for student, answers in twins.items():
        nb = kit.release_nb(EXCHANGE_ASSIGNMENT, release_root) if answers == "blank" else None
        nb = nb or kit.solved(EXCHANGE_ASSIGNMENT, answers, release_root=release_root)
        subs_b[(student, EXCHANGE_ASSIGNMENT)] = nb
    digests = {("B",) + key: _digest(_submit(ag_b, *key, nb)) for key, nb in subs_b.items()}
    for entry in NOT_FOLDERS:
        (ag_b / "submitted" / entry).parent.mkdir(parents=True, exist_ok=True)
        (ag_b / "submitted" / entry).write_text("a file where a folder belongs")
    cut = ag_b / "submitted" / "unreadable" / UNREADABLE_ASSIGNMENT / f"{UNREADABLE_ASSIGNMENT}.ipynb"
    cut.parent.mkdir(parents=True)
    text = (release_root / UNREADABLE_ASSIGNMENT / f"{UNREADABLE_ASSIGNMENT}.ipynb").read_text()
    cut.write_text(text[: len(text) // 2])  # invalid JSON, as an interrupted upload leaves it
    digests[("B", "unreadable", UNREADABLE_ASSIGNMENT)] = _digest(cut)
    renamed = kit.write(
        kit.solved(RENAMED_ASSIGNMENT, release_root=release_root),
        ag_b / "submitted" / "renamed" / RENAMED_ASSIGNMENT / RENAMED_FILE,
    )
    digests[("B", "renamed", RENAMED_ASSIGNMENT)] = _digest(renamed)
    t_grade = time.perf_counter()
    grade_b = subprocess.Popen(  # parallel: two sandboxes at once, one gradebook
        [sys.executable, "grade.py", "*", "--jobs", "2", "--", f"--Execute.timeout={TIMEOUT}"],
        cwd=ag_b,
        stdout=open(tmp / "autograde_B.log", "w"),
        stderr=subprocess.STDOUT,
        env=dict(os.environ),
    )

    # 3. the exchange round trip in course A (in-process nbgrader: same code, no start-up cost)
    with kit.timer(times, "exchange: release, 2 x fetch, 2 x submit, collect"):
        _ok(kit.nbgrader("release_assignment", EXCHANGE_ASSIGNMENT, cwd=ag_a), "release_assignment")
        exchange = ["--course=vaecourse", f"--Exchange.root={ag_a / 'exchange'}"]
        for student, overrides in ROUND_TRIP.items():
            home = tmp / "home" / student
            home.mkdir(parents=True)
            _ok(kit.nbgrader("fetch_assignment", EXCHANGE_ASSIGNMENT, *exchange, cwd=home), "fetch_assignment")
            fetched = home / EXCHANGE_ASSIGNMENT / f"{EXCHANGE_ASSIGNMENT}.ipynb"
            assert fetched.is_file(), f"fetch_assignment did not create {fetched}"
            nb = kit.read(fetched)  # the student types the answers into the fetched notebook
            answers = kit.solved(EXCHANGE_ASSIGNMENT, overrides, release_root=release_root)
            for c in nb.cells:
                if kit.is_answer(c):
                    c.source = kit.cell(answers, kit.grade_id(c)).source
            kit.write(nb, fetched)
            _ok(kit.nbgrader("submit", EXCHANGE_ASSIGNMENT, f"--student={student}", *exchange, cwd=home), "submit")
        _ok(kit.nbgrader("collect", EXCHANGE_ASSIGNMENT, cwd=ag_a), "collect")
    for student in ROUND_TRIP:
        collected = ag_a / "submitted" / student / EXCHANGE_ASSIGNMENT / f"{EXCHANGE_ASSIGNMENT}.ipynb"
        assert collected.is_file(), f"collect did not bring in {student}'s submission"
        digests[("A", student, EXCHANGE_ASSIGNMENT)] = _digest(collected)

    # 4. the rest of course A's fake students, then grade A
    subs_a = {}
    for a in ASSIGNMENTS_A:
        subs_a[("blank", a)] = kit.release_nb(a, release_root)
        if a != EXCHANGE_ASSIGNMENT:  # alice and bob are ex3's reference and wrong answers
            subs_a[("ref", a)] = kit.solved(a, release_root=release_root)
            subs_a[("wrong", a)] = kit.solved(a, kit.WRONG[a], release_root=release_root)
        subs_a[("delegated", a)] = kit.solved(a, kit.DELEGATED[a], release_root=release_root)
    for name in CHEATS_A:
        subs_a[(f"cheat-{name}", kit.CHEAT_ASSIGNMENT)] = kit.CHEATS[name](
            kit.release_nb(kit.CHEAT_ASSIGNMENT, release_root)
        )
    for name in ATTACKS_A:
        subs_a[(attacker(name), kit.CHEAT_ASSIGNMENT)] = attack(name, a_root)
    subs_a[("tests-deleted", kit.CHEAT_ASSIGNMENT)] = kit.solved_tests_deleted(release_root)
    subs_a[("metadata-tampered", kit.CHEAT_ASSIGNMENT)] = kit.solved_metadata_tampered(release_root)
    digests.update({("A",) + key: _digest(_submit(ag_a, *key, nb)) for key, nb in subs_a.items()})
    grade_a = _cli("autograde", "*", f"--Execute.timeout={TIMEOUT}", cwd=ag_a, log=tmp / "autograde_A.log")

    # meanwhile, the student's check: `nbgrader validate` (exit status 0 even on failure: read the output)
    student_dir = tmp / "validate"
    blank_nb = kit.write(kit.release_nb(EXCHANGE_ASSIGNMENT, release_root), student_dir / "blank.ipynb")
    # --invert on another assignment's blank release (test_blank_release_scores_zero_and_every_test_fails
    # checks every release's tests fail; this checks the instructor's command says so)
    invert_nb = kit.write(kit.release_nb(INVERT_ASSIGNMENT, release_root), student_dir / "invert" / "blank.ipynb")
    validate = {}
    # (the reference answers' "Success!" and validate's time: test_grader_units.py, the capstone's
    # in test_capstone.py)
    for name, args in [("blank", [blank_nb]), ("--invert", ["--invert", invert_nb])]:
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "nbgrader", "validate", *map(str, args)],
            cwd=student_dir,
            capture_output=True,
            text=True,
            timeout=300,
            env=dict(os.environ),
        )
        validate[name] = (proc.returncode, proc.stdout + proc.stderr, time.perf_counter() - t0)

    code_b = grade_b.wait(timeout=600)
    log_b = (tmp / "autograde_B.log").read_text()
    # exit 1: every submission graded, but the entries that are not folders are reported
    n_b = len(subs_b) + 2  # + the unreadable and the renamed one
    assert code_b == 1 and f"graded {n_b} of {n_b} submissions" in log_b, log_b[-3000:]
    times["autograde, course B done after"] = time.perf_counter() - t_grade
    _wait(grade_a, tmp / "autograde_A.log", "autograde in course A")
    times["autograde, both courses in parallel"] = time.perf_counter() - t_grade
    n_subs = len(subs_a) + len(subs_b) + len(ROUND_TRIP) + 2  # + the unreadable and the renamed one

    # 5. feedback and grades
    with kit.timer(times, "generate_feedback, both courses"):
        fb = [
            _cli("generate_feedback", "*", cwd=ag, log=tmp / f"feedback_{k}.log")
            for k, ag in (("A", ag_a), ("B", ag_b))
        ]
        for k, proc in zip("AB", fb):
            _wait(proc, tmp / f"feedback_{k}.log", f"generate_feedback in course {k}")
    for ag in (ag_a, ag_b):
        _ok(kit.nbgrader("export", f"--to={ag / 'grades.csv'}", cwd=ag), "export")
    lms = ["export", "--exporter=vaecourse_export.LMSExportPlugin"]
    _ok(kit.nbgrader(*lms, f"--to={ag_a / 'canvas.csv'}", cwd=ag_a), "export (Canvas)")
    _ok(kit.nbgrader(*lms, "--LMSExportPlugin.lms=moodle", f"--to={ag_a / 'moodle.csv'}", cwd=ag_a), "export (Moodle)")
    listener.close()

    # autograde that must stop before it touches anything: no bwrap, a nonsense limit
    alice_graded = ag_a / "autograded" / "alice" / EXCHANGE_ASSIGNMENT / f"{EXCHANGE_ASSIGNMENT}.ipynb"
    before = (_digest(alice_graded), _digest(ag_a / "gradebook.db"))
    refused = {
        name: kit.nbgrader("autograde", EXCHANGE_ASSIGNMENT, "--force", option, cwd=ag_a)
        for name, option in (
            ("no bwrap", "--Sandbox.bwrap=/nonexistent/bwrap"),
            ("nonsense", "--Sandbox.memory_limit=lots"),
        )
    }
    refused_changed = before != (_digest(alice_graded), _digest(ag_a / "gradebook.db"))

    scores = {}
    from nbgrader.api import Gradebook

    for course, ag in (("A", ag_a), ("B", ag_b)):
        with Gradebook(f"sqlite:///{ag / 'gradebook.db'}") as gb:
            for key in [k for k in digests if k[0] == course]:
                _, student, a = key
                sub = gb.find_submission(a, student)
                cells = {g.name: (g.score, g.max_score) for nb in sub.notebooks for g in nb.grades}
                scores[(student, a)] = dict(score=sub.score, max=sub.max_score, cells=cells, course=course)
    rows = []
    for ag in (ag_a, ag_b):
        with open(ag / "grades.csv", newline="") as f:
            rows += [dict(r, course=ag.parent.name) for r in csv.DictReader(f)]

    times["per submission (autograde wall / submissions)"] = times["autograde, both courses in parallel"] / n_subs
    report = ["", "autograder timings:"] + [f"  {k}: {v:.1f} s" for k, v in times.items()]
    report += [f"  nbgrader validate {k}: {v[2]:.1f} s" for k, v in validate.items()]
    report += ["scores (autograded part; manual answers are graded by hand):"]
    report += [f"  {s:24s} {a:24s} {v['score']:4.1f} / {v['max']:4.1f}" for (s, a), v in sorted(scores.items())]
    print("\n".join(report))
    grades = {}  # (course, student) -> ex3's {cell: (score, needs_manual_grade)}, {cell: auto_comment}
    for course, ag in (("A", ag_a), ("B", ag_b)):
        with Gradebook(f"sqlite:///{ag / 'gradebook.db'}") as gb:
            for sub in gb.find_assignment(EXCHANGE_ASSIGNMENT).submissions:
                cells = {
                    g.name: (g.score, g.manual_score, g.needs_manual_grade) for n in sub.notebooks for g in n.grades
                }
                comments = {c.name: c.auto_comment for n in sub.notebooks for c in n.comments}
                grades[(course, sub.student.id)] = (cells, comments)
    return dict(
        grades=grades,
        received=listener.received,
        log_b=log_b,
        refused=refused,
        refused_changed=refused_changed,
        courses={"A": ag_a, "B": ag_b},
        release_root=release_root,
        scores=scores,
        rows=rows,
        digests=digests,
        validate=validate,
        times=times,
        n=n_subs,
    )


def _auto_max(assignment):
    return kit.autograded_points(assignment)


def _test_ids(assignment):
    """The grade ids of the assignment's test cells."""
    return {kit.grade_id(c) for c in kit.source_nb(assignment).cells if kit.is_test(c)}


# ----------------------------------------------------------------------------- the release


def test_release_in_sync(graded):
    """book/exercises is what release.py makes from solutions/ (cell sources, metadata, files)."""
    fresh, committed = graded["release_root"], kit.RELEASE
    assert sorted(p.name for p in fresh.iterdir() if p.is_dir()) == kit.ASSIGNMENTS
    for a in kit.ASSIGNMENTS:
        assert sorted(os.listdir(fresh / a)) == sorted(os.listdir(committed / a)), f"{a}: files differ"
        new, old = kit.release_nb(a, fresh), kit.release_nb(a)

        def key(nb):
            return [(c.cell_type, c.get("id"), c.source, c.metadata) for c in nb.cells]

        assert key(new) == key(old), f"book/exercises/{a} is stale: run `make exercises`"
        assert new.metadata.get("kernelspec") == old.metadata.get("kernelspec")


# ----------------------------------------------------------------------------- scores


@pytest.mark.parametrize("assignment", [a for a in kit.ASSIGNMENTS if a != kit.CAPSTONE])
def test_reference_solution_scores_full_marks(graded, assignment):
    student = "alice" if assignment == EXCHANGE_ASSIGNMENT else "ref"
    s = graded["scores"][(student, assignment)]
    assert s["score"] == _auto_max(assignment) > 0, s["cells"]
    assert s["max"] == _auto_max(assignment) + kit.manual_points(assignment)


@pytest.mark.parametrize("assignment", kit.ASSIGNMENTS)
def test_blank_release_scores_zero_and_every_test_fails(graded, assignment):
    s = graded["scores"][("blank", assignment)]
    assert s["score"] == 0
    tests = _test_ids(assignment)
    assert tests <= set(s["cells"]), "every test cell is graded"
    assert all(s["cells"][t][0] == 0 for t in tests), "a test cell passed on the blank notebook"


@pytest.mark.parametrize("assignment", kit.ASSIGNMENTS)
def test_typical_bug_scores_partially(graded, assignment):
    student = "bob" if assignment == EXCHANGE_ASSIGNMENT else "wrong"
    s = graded["scores"][(student, assignment)]
    assert 0 < s["score"] < _auto_max(assignment), s["cells"]


@pytest.mark.parametrize("assignment", sorted(kit.DELEGATED))
def test_delegation_scores_at_most_half(graded, assignment):
    """Answers that call vaecourse, torch.distributions or the model's estimators for the function asked
    for lose that function's points in every test of it, not only in an "own work" test."""
    s = graded["scores"][("delegated", assignment)]
    assert s["score"] <= 0.5 * _auto_max(assignment), s["cells"]
    for gid in kit.DELEGATED[assignment]:
        tests = [t for t in _test_ids(assignment) if t in s["cells"] and _tests_function(assignment, t, gid)]
        assert tests and all(s["cells"][t][0] == 0 for t in tests), (gid, s["cells"])


def _tests_function(assignment, test_id, name):
    """Whether a test cell tests the answer ``name``: it calls it through ``vg.own`` (a function), or it
    is named after it (a value such as ``kl_by_hand``)."""
    import re

    source = kit.cell(kit.source_nb(assignment), test_id).source
    return re.search(rf"_vg\.own\(\s*{name}\b", source) is not None or test_id == f"test_{name}"


@pytest.mark.parametrize("cheat", CHEATS_A + CHEATS_B)
def test_cheating_scores_at_most_half(graded, cheat):
    s = graded["scores"][(f"cheat-{cheat}", kit.CHEAT_ASSIGNMENT)]
    assert s["score"] <= 0.5 * _auto_max(kit.CHEAT_ASSIGNMENT), s["cells"]


@pytest.mark.parametrize("student", ["tests-deleted", "metadata-tampered"])
def test_mangled_notebook_with_correct_answers_scores_full_marks(graded, student):
    """Deleted tests come back after the right answers; edited metadata changes no points; a warning
    printed by correct code costs nothing."""
    s = graded["scores"][(student, kit.CHEAT_ASSIGNMENT)]
    assert s["score"] == _auto_max(kit.CHEAT_ASSIGNMENT), s["cells"]
    assert s["max"] == _auto_max(kit.CHEAT_ASSIGNMENT) + kit.manual_points(kit.CHEAT_ASSIGNMENT)


def test_unreadable_file_scores_zero_with_feedback_that_says_why(graded):
    """A submission that is not a notebook is graded as the blank release (autograde still exits 0,
    which the fixture checks); the student's feedback explains, and the file is kept (test below)."""
    s = graded["scores"][("unreadable", UNREADABLE_ASSIGNMENT)]
    assert s["score"] == 0
    assert s["max"] == _auto_max(UNREADABLE_ASSIGNMENT) + kit.manual_points(UNREADABLE_ASSIGNMENT)
    assert _test_ids(UNREADABLE_ASSIGNMENT) <= set(s["cells"]), "every test cell is graded"
    fb = graded["courses"]["B"] / "feedback" / "unreadable" / UNREADABLE_ASSIGNMENT / f"{UNREADABLE_ASSIGNMENT}.html"
    page = fb.read_text()
    assert "This submission could not be read" in page and "not valid JSON" in page


def test_a_notebook_under_another_name_is_graded_with_a_note(graded):
    """Plain nbgrader stops with "No notebooks found" (exit 1, no score, no feedback); here the
    reference answers saved as "ex5_posterior_collapse (1).ipynb" score full marks, the feedback says
    which file was graded, and no file is added to submitted/."""
    s = graded["scores"][("renamed", RENAMED_ASSIGNMENT)]
    assert s["score"] == _auto_max(RENAMED_ASSIGNMENT) > 0, s["cells"]
    course = graded["courses"]["B"]
    assert os.listdir(course / "submitted" / "renamed" / RENAMED_ASSIGNMENT) == [RENAMED_FILE]
    page = (course / "feedback" / "renamed" / RENAMED_ASSIGNMENT / f"{RENAMED_ASSIGNMENT}.html").read_text()
    assert "This notebook was handed in as" in page and RENAMED_FILE in page


def test_nothing_is_lost(graded):
    """Every submission keeps its file, has a row in the export and a feedback page."""
    rows = {(r["course"], r["student_id"], r["assignment"]): r for r in graded["rows"]}
    for (course, student, a), digest in graded["digests"].items():
        ag = graded["courses"][course]
        path = ag / "submitted" / student / a / (RENAMED_FILE if student == "renamed" else f"{a}.ipynb")
        assert path.is_file(), f"{path} is gone"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, f"{student}'s submission was changed"
        assert (ag / "autograded" / student / a / f"{a}.ipynb").is_file(), f"no autograded notebook for {student}"
        assert (ag / "feedback" / student / a / f"{a}.html").is_file(), f"no feedback for {student} / {a}"
        row = rows.get((course, student, a))
        assert row is not None, f"no row in the export for {student} / {a}"
        assert float(row["raw_score"]) == graded["scores"][(student, a)]["score"]


def _hidden_lines(assignment):
    """The lines of the assignment's hidden tests that appear nowhere in its visible cells."""
    hidden, visible = set(), set()
    for c in kit.source_nb(assignment).cells:
        inside = False
        for line in c.source.splitlines():
            if "BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "END HIDDEN TESTS" in line:
                inside = False
            elif not kit.is_answer(c):
                (hidden if inside else visible).add(line.strip())
    return {line for line in hidden - visible if len(line) >= 20}


def test_feedback_hides_hidden_tests(graded):
    """No feedback page shows a hidden test, not even the printer's and encoder's, which read them
    from IPython's history (as their autograded notebooks, for the instructor, show) and printed them."""
    lines = _hidden_lines(kit.CHEAT_ASSIGNMENT)
    assert len(lines) > 50
    for ag in graded["courses"].values():
        pages = list((ag / "feedback").rglob("*.html"))
        assert pages
        for page in pages:
            text = page.read_text()
            for secret in ("HIDDEN TESTS", "_vg.own(", "_vg.error(", "_vg.assert_close(", "LEAK:"):
                assert secret not in text, f"{page} shows hidden test code ({secret!r})"
            flat = " ".join(html.unescape(text).split())
            shown = [line for line in lines if " ".join(line.split()) in flat]
            assert not shown, f"{page} shows hidden test lines: {shown[:3]}"
    for name, course in (("printer", "A"), ("encoder", "B")):
        out = _autograded_text(graded, course, attacker(name))
        read = int(out.split(f"ATTACK-RAN {name}: ")[1].split(" ")[0])
        assert read > 5000, f"the {name} read no hidden tests, so the check above proves little"


def _autograded_text(graded, course, student, assignment=kit.CHEAT_ASSIGNMENT):
    nb = kit.read(graded["courses"][course] / "autograded" / student / assignment / f"{assignment}.ipynb")
    parts = []
    for c in nb.cells:
        for o in c.get("outputs", []):
            parts += [o.get("text", ""), f"{o.get('ename', '')}: {o.get('evalue', '')}"]
    return "\n".join(parts)


# ----------------------------------------------------------------------------- the sandbox


@pytest.mark.parametrize("name", ATTACKS_A + ATTACKS_B)
def test_every_attack_ran_inside_the_sandbox(graded, name):
    course = "A" if name in ATTACKS_A else "B"
    assert f"ATTACK-RAN {name}" in _autograded_text(graded, course, attacker(name))


@pytest.mark.parametrize("name", ["reader", "copier", "writer", "api-writer", "vandal", "wrecker"])
def test_an_attack_on_solutions_classmates_or_gradebook_scores_no_more_than_the_blank_release(graded, name):
    course = "A" if name in ATTACKS_A else "B"
    s = graded["scores"][(attacker(name), kit.CHEAT_ASSIGNMENT)]
    assert s["score"] <= graded["scores"][("blank", kit.CHEAT_ASSIGNMENT)]["score"] == 0, s["cells"]
    cells, _ = graded["grades"][(course, attacker(name))]
    assert all(manual is None for _, manual, _ in cells.values()), cells
    found = _autograded_text(graded, course, attacker(name)).split(f"ATTACK-RAN {name}:")[1].split("\n")[0]
    assert found.strip() in ("[]", "0 files"), f"the {name} found {found} inside the sandbox"


def test_the_vandals_left_every_other_submission_and_the_gradebook_as_they_were(graded):
    """The vandal (course A) and the wrecker (B) were graded first; every file is still there
    (test_nothing_is_lost checks every submission's digest) and the others' scores are as expected."""
    for ag in graded["courses"].values():
        assert (ag / "gradebook.db").stat().st_size > 100_000
    assert graded["scores"][("alice", EXCHANGE_ASSIGNMENT)]["score"] == _auto_max(EXCHANGE_ASSIGNMENT)
    assert graded["scores"][("par-ref", EXCHANGE_ASSIGNMENT)]["score"] == _auto_max(EXCHANGE_ASSIGNMENT)


def test_nothing_reaches_the_hosts_network(graded):
    """The tcp attack (127.0.0.1) and the udp-lan one (UDP on 127.0.0.1, TCP to the host's own
    address) ran and sent what they could: the listeners on the host received nothing."""
    assert graded["received"] == []
    assert "tcp failed" in _autograded_text(graded, "B", attacker("tcp"))
    out = _autograded_text(graded, "B", attacker("udp-lan"))
    assert "lan failed" in out


@pytest.mark.parametrize("name", sorted(attacks.HOGS))
def test_a_hog_hits_its_limit_and_the_rest_is_graded(graded, name):
    course = "A" if name in ATTACKS_A else "B"
    out = _autograded_text(graded, course, attacker(name))
    assert f"LimitReached: {attacks.HOGS[name]}" in out, out[-2000:]
    # the hog's cell defined a correct gaussian_kl before it hit the limit: its tests are graded
    s = graded["scores"][(attacker(name), kit.CHEAT_ASSIGNMENT)]
    assert s["cells"]["test_kl_worked_example"][0] == 1, s["cells"]


def test_a_parallel_run_gives_the_scores_of_a_serial_one(graded):
    """Course B (grade.py --jobs 2) and course A (plain nbgrader autograde, one at a time) graded
    the same three ex3 notebooks: every grade, flag and automatic comment is the same."""
    for b_student, a_student in PARALLEL_TWINS.items():
        assert graded["grades"][("B", b_student)] == graded["grades"][("A", a_student)], b_student
    assert {graded["scores"][(s, EXCHANGE_ASSIGNMENT)]["score"] for s in ("par-blank",)} == {0}


def test_grade_names_the_submissions_that_are_not_folders_and_keeps_them(graded):
    ag = graded["courses"]["B"]
    for entry in NOT_FOLDERS:
        path = ag / "submitted" / entry
        assert f"error: {path} is not a folder" in graded["log_b"], graded["log_b"][-2000:]
        assert path.read_text() == "a file where a folder belongs"


@pytest.mark.parametrize(
    "name, says", [("no bwrap", "apt-get install bubblewrap"), ("nonsense", "Sandbox.memory_limit")]
)
def test_autograde_without_a_working_sandbox_stops_and_changes_nothing(graded, name, says):
    code, log = graded["refused"][name]
    assert code != 0 and says in log, log[-2000:]
    assert "i_understand_submissions_run_unsandboxed" in log or name == "nonsense"
    assert not graded["refused_changed"], "autograde changed a file before it stopped"


def test_lms_exports(graded):
    ag = graded["courses"]["A"]
    with open(ag / "canvas.csv", newline="") as f:
        canvas = list(csv.reader(f))
    with open(ag / "moodle.csv", newline="") as f:
        moodle = list(csv.reader(f))
    assert canvas[0][:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert canvas[1][0] == "Points Possible" and moodle[0][:4] == [
        "Username",
        "Email address",
        "First name",
        "Last name",
    ]
    col = canvas[0].index(EXCHANGE_ASSIGNMENT)
    alice = next(r for r in canvas if r[3] == "alice")
    assert float(alice[col]) == graded["scores"][("alice", EXCHANGE_ASSIGNMENT)]["score"]
    students = {r["student_id"] for r in graded["rows"] if r["course"] == "A"}
    assert {r[3] for r in canvas[2:]} == students == {r[0] for r in moodle[1:]}


def test_feedback_explains_crashes_and_timeouts(graded):
    fb = graded["courses"]["B"] / "feedback"
    exit_page = (fb / "cheat-os-exit" / kit.CHEAT_ASSIGNMENT / f"{kit.CHEAT_ASSIGNMENT}.html").read_text()
    assert "DeadKernelError" in exit_page and "NotRun" in exit_page
    stubborn = (fb / "cheat-stubborn-loop" / kit.CHEAT_ASSIGNMENT / f"{kit.CHEAT_ASSIGNMENT}.html").read_text()
    assert "CellTimeoutError" in stubborn
    loop = (
        graded["courses"]["A"]
        / "feedback"
        / "cheat-infinite-loop"
        / kit.CHEAT_ASSIGNMENT
        / f"{kit.CHEAT_ASSIGNMENT}.html"
    ).read_text()
    assert "CellTimeoutError" in loop


def test_feedback_names_the_failed_check(graded):
    """bob's feedback says which test failed, with its message, but not its hidden code."""
    page = (
        graded["courses"]["A"] / "feedback" / "bob" / EXCHANGE_ASSIGNMENT / f"{EXCHANGE_ASSIGNMENT}.html"
    ).read_text()
    assert "gaussian_kl reproduces the worked example" in page
    assert "expected 3.125" in page


# ----------------------------------------------------------------------------- the student's check


def test_validate_reports_success_and_failure(graded):
    code, out, _ = graded["validate"]["blank"]
    assert code == 0 and "VALIDATION FAILED" in out and "NotImplementedError" in out, out[-2000:]
    code, out, _ = graded["validate"]["--invert"]  # every test cell of the blank release fails
    assert code == 0 and "Success! The notebook does not pass any tests." in out, out[-3000:]
    assert "NOTEBOOK PASSED ON" not in out


def test_validate_is_quick(graded):
    for name in ("blank", "--invert"):  # one notebook each, while two autograders share the CPU
        seconds = graded["validate"][name][2]
        assert seconds < 60, f"nbgrader validate ({name}) took {seconds:.0f} s"
