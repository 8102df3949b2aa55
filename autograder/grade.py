"""Grade every submission of an assignment, N sandboxed kernels at a time, into the one gradebook.

Run from anywhere (``make grade ASSIGNMENT=ex3_gaussian_kl JOBS=2`` does):

    python grade.py ex3_gaussian_kl --jobs 2          # every student in submitted/
    python grade.py "*" --jobs 2                      # every assignment (or name several)
    python grade.py ex3_gaussian_kl --student alice   # one (repeatable)
    python grade.py ex3_gaussian_kl --shard 3/40 --gradebook shard-3.db   # one of 40 machines
    python grade.py ex3_gaussian_kl --merge shard-*.db                    # then, once, on one
    python grade.py ex3_gaussian_kl -- --Execute.timeout=30 --force       # after --: nbgrader options

Each submission is graded by ``nbgrader autograde ASSIGNMENT --student=S`` with this folder's
nbgrader_config.py (the sandbox, the course's preprocessors), so a parallel run gives the scores of
a serial one. SQLite allows one writer at a time and nbgrader fails with "database is locked" when
several autograde runs share a gradebook, so here nobody shares one: each worker process grades
into its own copy of the gradebook (made once, with SQLite's backup API), and after each
submission this process alone copies what autograde wrote for that student (the submission's
timestamp, each notebook's late penalty, each grade's automatic score, each comment's automatic
comment; ``needs_manual_grade`` as nbgrader computes it, from the main gradebook's manual score)
into the main gradebook. Manual scores are never touched. With a server database
(``c.CourseDirectory.db_url = "postgresql://..."``), the same command works unchanged.

Across machines (a Slurm or Kubernetes job array), each task grades one ``--shard K/N`` of the
students (sorted by id) into its own ``--gradebook`` copy, and one final ``--merge`` brings those
in; see INSTRUCTORS.md.

Exit status: 0 if every submission was graded, 1 if some were not (they are named), 2 if nothing
could be graded (unknown assignment, a bad setting, no sandbox).
"""

import argparse
import concurrent.futures
import io
import logging
import multiprocessing
import os
import sqlite3
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)


def load_config():
    from traitlets.config.loader import PyFileConfigLoader

    return PyFileConfigLoader("nbgrader_config.py", path=HERE).load_config()


def sqlite_path(db_url):
    if not db_url.startswith("sqlite:///"):
        return None
    return db_url[len("sqlite:///") :].split("?")[0]


def _not_a_folder(path, layout, problems):
    """Whether ``path`` is a file or a link instead of a folder; if so, say so in ``problems``."""
    if os.path.islink(path) or not os.path.isdir(path):
        problems.append(
            f"{path} is not a folder: nbgrader expects submitted/{layout}/<notebook>.ipynb "
            "(not graded; the file is left as it is)"
        )
        return True
    return False


def find_submissions(submitted, assignment, students=None):
    """``(students, problems)``: who handed in ``assignment`` in ``submitted/``, and one message for
    each entry that is not laid out as nbgrader expects (``submitted/<student>/<assignment>/``)."""
    problems, found, skipped = [], [], set()
    if not os.path.isdir(submitted):
        return [], [f"{submitted} is not a folder: nothing has been collected (run `nbgrader collect`)"]
    for name in sorted(os.listdir(submitted)):
        if students and name not in students:
            continue
        folder = os.path.join(submitted, name)
        target = os.path.join(folder, assignment)
        if _not_a_folder(folder, "<student>/<assignment>", problems):
            skipped.add(name)
        elif not os.path.lexists(target):
            continue
        elif _not_a_folder(target, f"{name}/{assignment}", problems):
            skipped.add(name)
        else:
            found.append(name)
    for name in sorted(set(students or ()) - set(found) - skipped):
        problems.append(f"no submission of {assignment} by {name} in {submitted}")
    return found, problems


def copy_gradebook(src, dest):
    """A consistent copy of an SQLite gradebook (the backup API, not a file copy)."""
    with sqlite3.connect(src) as a, sqlite3.connect(dest) as b:
        a.backup(b)
    a.close()
    b.close()


def merge_submission(source_url, target_url, assignment, student):
    """Copy what ``nbgrader autograde`` wrote for one submission from one gradebook into another."""
    from nbgrader.api import Gradebook

    with Gradebook(source_url) as src:
        sub = src.find_submission(assignment, student)
        timestamp = sub.timestamp
        notebooks = {}
        for nb in sub.notebooks:
            grades = {g.name: g.auto_score for g in nb.grades}
            comments = {c.name: c.auto_comment for c in nb.comments}
            notebooks[nb.name] = (nb.late_submission_penalty, grades, comments)
    with Gradebook(target_url) as gb:
        gb.update_or_create_student(student)
        kwargs = {"timestamp": timestamp} if timestamp is not None else {}
        target = gb.update_or_create_submission(assignment, student, **kwargs)
        for nb in target.notebooks:
            if nb.name not in notebooks:
                continue
            penalty, grades, comments = notebooks[nb.name]
            nb.late_submission_penalty = penalty
            for grade in nb.grades:
                if grade.name in grades:
                    grade.auto_score = grades[grade.name]
                    # nbgrader's own rule (SaveAutoGrades), with this gradebook's manual score
                    grade.needs_manual_grade = grade.manual_score is not None or grade.auto_score is None
            for comment in nb.comments:
                if comment.name in comments:
                    comment.auto_comment = comments[comment.name]
        gb.db.commit()


# ---------------------------------------------------------------- the worker processes

_WORKER = {}


def _start_worker(main_db, scratch_dir):
    """Each worker grades into its own copy of the gradebook (made from the main one)."""
    os.chdir(HERE)
    bindir = os.path.dirname(sys.executable)  # nbgrader runs `alembic`
    os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    if main_db:
        own = os.path.join(scratch_dir, f"gradebook-{os.getpid()}.db")
        copy_gradebook(main_db, own)
        _WORKER["db_url"] = "sqlite:///" + own
    else:
        _WORKER["db_url"] = None  # a server database: autograde writes to it directly


def _grade_one(assignment, student, nbgrader_args):
    """Run ``nbgrader autograde`` for one student in this process.

    Returns ``(student, exit code, log, seconds, the gradebook it wrote to)``."""
    from jupyter_core.application import NoStart
    from nbgrader.apps import NbGraderApp

    t0 = time.perf_counter()
    args = ["autograde", assignment, f"--student={student}", *nbgrader_args]
    if _WORKER.get("db_url"):
        args.append(f"--CourseDirectory.db_url={_WORKER['db_url']}")
    log = io.StringIO()
    app = NbGraderApp.instance()
    code = 0
    try:
        app.initialize(args)
        app.init_logging(logging.StreamHandler, [log], color=False, subapps=True)
        app.start()
    except NoStart:
        pass
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except Exception as err:  # nbgrader's own errors are caught by it; this is a last resort
        code, _ = 1, log.write(f"{type(err).__name__}: {err}\n")
    finally:
        app.reset()
        NbGraderApp.clear_instance()
    return student, code, log.getvalue(), time.perf_counter() - t0, _WORKER.get("db_url")


def grade(pairs, jobs, nbgrader_args, db_url, target_url, say=print):
    """Grade each ``(assignment, student)`` with ``jobs`` workers; ``{(assignment, student): (code, log, seconds)}``."""
    main_db = sqlite_path(db_url)
    results = {}
    with tempfile.TemporaryDirectory(prefix="vaecourse-grade-") as scratch:
        ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no state shared with this one
        with concurrent.futures.ProcessPoolExecutor(
            max_workers=jobs, mp_context=ctx, initializer=_start_worker, initargs=(main_db, scratch)
        ) as pool:
            futures = {pool.submit(_grade_one, a, s, nbgrader_args): a for a, s in pairs}
            for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
                assignment = futures[future]
                student, code, log, seconds, own = future.result()
                if code == 0 and own:  # this process is the only one that writes to target_url
                    merge_submission(own, target_url, assignment, student)
                results[(assignment, student)] = (code, log, seconds)
                status = "graded" if code == 0 else f"FAILED (exit {code})"
                say(f"[{done}/{len(pairs)}] {assignment} / {student}: {status} in {seconds:.1f} s", flush=True)
    return results


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignment", nargs="+", help='assignments to grade, e.g. ex3_gaussian_kl, or "*" for all')
    parser.add_argument("--jobs", "-j", type=int, default=1, help="submissions graded at once (default 1)")
    parser.add_argument("--student", action="append", help="grade only this student (repeatable)")
    parser.add_argument("--shard", help="K/N: grade only the K-th of N equal slices of the students (K from 1)")
    parser.add_argument("--gradebook", help="write the grades into this SQLite file (a copy of the course's)")
    parser.add_argument("--merge", nargs="+", metavar="DB", help="merge these shard gradebooks, grade nothing")
    opts = parser.parse_args(argv)
    if opts.jobs < 1:
        parser.error(f"--jobs must be at least 1, not {opts.jobs}")
    os.chdir(HERE)
    bindir = os.path.dirname(sys.executable)
    os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    config = load_config()
    cd = config.CourseDirectory
    db_url = next((a.split("=", 1)[1] for a in extra if a.startswith("--CourseDirectory.db_url=")), cd.db_url)
    root = cd.get("root", HERE)
    submitted = os.path.join(root, cd.get("submitted_directory", "submitted"))

    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url) as gb:
        known = sorted(a.name for a in gb.assignments)
    names = known if opts.assignment == ["*"] else opts.assignment
    unknown = [a for a in names if a not in known]
    if unknown:
        print(f"error: no assignment {', '.join(unknown)} in {db_url}: run `nbgrader generate_assignment` first")
        return 2

    if opts.merge:
        for shard in opts.merge:
            shard_url = "sqlite:///" + os.path.abspath(shard)
            n = 0
            for assignment in names:
                with Gradebook(shard_url) as gb:
                    try:
                        graded = [s.student.id for s in gb.find_assignment(assignment).submissions]
                    except MissingEntry:
                        graded = []
                for student in graded:
                    merge_submission(shard_url, db_url, assignment, student)
                n += len(graded)
            print(f"merged {n} submissions from {shard}")
        return 0

    pairs, problems = [], []
    for assignment in names:
        students, trouble = find_submissions(submitted, assignment, opts.student)
        if opts.shard:
            try:
                k, n = (int(x) for x in opts.shard.split("/"))
                assert 1 <= k <= n
            except (ValueError, AssertionError):
                parser.error(f"--shard must be K/N with 1 <= K <= N, not {opts.shard!r}")
            students = students[k - 1 :: n]
        pairs += [(assignment, s) for s in students]
        problems += [p for p in trouble if p not in problems]
    for problem in problems:
        print(f"error: {problem}")

    from vaecourse_sandbox import preflight

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    problem = preflight(config, logging.getLogger("grade"))
    if problem:
        print(f"error: {problem}")
        return 2

    target_url = db_url
    if opts.gradebook:
        target = os.path.abspath(opts.gradebook)
        if not os.path.exists(target):
            copy_gradebook(sqlite_path(db_url), target)
        target_url = "sqlite:///" + target
    t0 = time.perf_counter()
    results = grade(pairs, opts.jobs, extra, db_url, target_url)
    wall = time.perf_counter() - t0
    failed = sorted(key for key, (code, _, _) in results.items() if code)
    for key in failed:
        print(f"--- nbgrader autograde log for {' / '.join(key)}:\n{results[key][1][-3000:]}")
    rate = len(results) / wall * 60 if wall else 0.0
    print(
        f"graded {len(results) - len(failed)} of {len(results)} submissions in {wall:.1f} s "
        f"({rate:.1f} per minute, {opts.jobs} at a time)"
    )
    if failed:
        print(f"not graded: {', '.join(' / '.join(k) for k in failed)}")
    return 1 if failed or problems else 0


if __name__ == "__main__":
    sys.exit(main())
