"""The autograder, end to end, on a copy of the course in a temporary directory.

One module-scoped fixture does the expensive part once:

1. copy solutions/ and autograder/ into a temporary course and run ``release.py`` there: this
   regenerates book/exercises/ (compared with the committed one below) and fills the gradebook;
2. a second copy of that course grades in parallel (two CPU cores: two kernels at a time);
3. students ``alice`` (reference answers) and ``bob`` (a typical bug) go through the local
   exchange: release_assignment, fetch_assignment, submit, collect;
4. fake students are dropped into submitted/: for every assignment the reference answers, the blank
   release and a typical bug; for ex3 each way of cheating in ``exercise_kit.CHEATS``; for ex6 a
   file cut off in the upload (no longer a notebook); for ex5 the reference answers saved under
   another name (a browser's "ex5_posterior_collapse (1).ipynb");
5. ``nbgrader autograde "*"``, ``generate_feedback "*"`` and ``export`` run in both courses.

The tests then read scores from the gradebooks, the CSV exports and the feedback files.
"""

import csv
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import exercise_kit as kit
import pytest

pytestmark = pytest.mark.slow

TIMEOUT = 10  # seconds per cell while grading: the infinite loops below cost this much, once each
EXCHANGE_ASSIGNMENT = kit.CHEAT_ASSIGNMENT
ROUND_TRIP = {"alice": None, "bob": kit.WRONG[EXCHANGE_ASSIGNMENT]}  # student -> answer overrides
# which course copy grades what (A also runs the exchange round trip)
CHEATS_A = ["hardcoded", "always-equal", "patched-allclose", "patched-builtins", "infinite-loop"]
CHEATS_B = ["edited-tests", "deleted-tests", "retyped-tests", "swallowed-errors", "stubborn-loop", "os-exit"]
ASSIGNMENTS_A = ["ex1_latent_models", "ex2_elbo", "ex3_gaussian_kl"]
INVERT_ASSIGNMENT = "ex1_latent_models"  # `nbgrader validate --invert` on its blank release
UNREADABLE_ASSIGNMENT = "ex6_iwae"  # course B gets the first half of its release file as a submission
RENAMED_ASSIGNMENT = "ex5_posterior_collapse"  # course B gets its reference answers as RENAMED_FILE
RENAMED_FILE = f"{RENAMED_ASSIGNMENT} (1).ipynb"


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
            subs_b[("ref", a)] = kit.solved(a, release_root=release_root)
            subs_b[("blank", a)] = kit.release_nb(a, release_root)
            subs_b[("wrong", a)] = kit.solved(a, kit.WRONG[a], release_root=release_root)
    for name in CHEATS_B:
        subs_b[(f"cheat-{name}", kit.CHEAT_ASSIGNMENT)] = kit.CHEATS[name](
            kit.release_nb(kit.CHEAT_ASSIGNMENT, release_root)
        )
    digests = {("B",) + key: _digest(_submit(ag_b, *key, nb)) for key, nb in subs_b.items()}
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
    grade_b = _cli("autograde", "*", f"--Execute.timeout={TIMEOUT}", cwd=ag_b, log=tmp / "autograde_B.log")

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
    for name in CHEATS_A:
        subs_a[(f"cheat-{name}", kit.CHEAT_ASSIGNMENT)] = kit.CHEATS[name](
            kit.release_nb(kit.CHEAT_ASSIGNMENT, release_root)
        )
    subs_a[("tests-deleted", kit.CHEAT_ASSIGNMENT)] = kit.solved_tests_deleted(release_root)
    subs_a[("metadata-tampered", kit.CHEAT_ASSIGNMENT)] = kit.solved_metadata_tampered(release_root)
    digests.update({("A",) + key: _digest(_submit(ag_a, *key, nb)) for key, nb in subs_a.items()})
    grade_a = _cli("autograde", "*", f"--Execute.timeout={TIMEOUT}", cwd=ag_a, log=tmp / "autograde_A.log")

    # meanwhile, the student's check: `nbgrader validate` (exit status 0 even on failure: read the output)
    student_dir = tmp / "validate"
    solved_nb = kit.write(kit.solved(EXCHANGE_ASSIGNMENT, release_root=release_root), student_dir / "solved.ipynb")
    blank_nb = kit.write(kit.release_nb(EXCHANGE_ASSIGNMENT, release_root), student_dir / "blank.ipynb")
    # --invert on another assignment's blank release (test_blank_release_scores_zero_and_every_test_fails
    # checks every release's tests fail; this checks the instructor's command says so)
    invert_nb = kit.write(kit.release_nb(INVERT_ASSIGNMENT, release_root), student_dir / "invert" / "blank.ipynb")
    validate = {}
    for name, args in [("solved", [solved_nb]), ("blank", [blank_nb]), ("--invert", ["--invert", invert_nb])]:
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

    _wait(grade_b, tmp / "autograde_B.log", "autograde in course B")
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
    return dict(
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


@pytest.mark.parametrize("assignment", kit.ASSIGNMENTS)
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


def test_feedback_hides_hidden_tests(graded):
    for ag in graded["courses"].values():
        pages = list((ag / "feedback").rglob("*.html"))
        assert pages
        for page in pages:
            html = page.read_text()
            for secret in ("HIDDEN TESTS", "_reaches(", "def _err", "_call_without_library", "_TB ="):
                assert secret not in html, f"{page} shows hidden test code ({secret!r})"


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
    code, out, _ = graded["validate"]["solved"]
    assert code == 0 and "Success! Your notebook passes all the tests." in out, out[-2000:]
    code, out, _ = graded["validate"]["blank"]
    assert code == 0 and "VALIDATION FAILED" in out and "NotImplementedError" in out, out[-2000:]
    code, out, _ = graded["validate"]["--invert"]  # every test cell of the blank release fails
    assert code == 0 and "Success! The notebook does not pass any tests." in out, out[-3000:]
    assert "NOTEBOOK PASSED ON" not in out


def test_validate_is_quick(graded):
    for name in ("solved", "blank"):  # one notebook each, while two autograders share the CPU
        seconds = graded["validate"][name][2]
        assert seconds < 60, f"nbgrader validate ({name}) took {seconds:.0f} s"
