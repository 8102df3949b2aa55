"""Regenerate the student notebooks in ../book/exercises/ from the sources in ../solutions/.

Run from this folder (``make exercises`` does):

    python release.py                    # every assignment in ../solutions
    python release.py ex3_gaussian_kl    # just one
    python release.py --keep-gradebook   # also record the assignments in ./gradebook.db

This is ``nbgrader generate_assignment ASSIGNMENT --force`` for each assignment, with this folder's
nbgrader_config.py (which adds nbval's ``raises-exception`` tag to the cells meant to fail while
unanswered). By default the gradebook it needs is a throw-away one, so regenerating the book never
touches an instructor's grades; release folders with no source any more are removed.
"""

import argparse
import logging
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "..", "solutions")
RELEASE = os.path.join(HERE, "..", "book", "exercises")


def assignments():
    return sorted(a for a in os.listdir(SOURCE) if os.path.isfile(os.path.join(SOURCE, a, a + ".ipynb")))


def run_nbgrader(args):
    """Run one nbgrader command in this process (no interpreter start-up per assignment)."""
    from jupyter_core.application import NoStart
    from nbgrader.apps import NbGraderApp

    app = NbGraderApp.instance()
    try:
        app.initialize(args)
        app.start()
        return 0
    except NoStart:  # how jupyter applications end after running a subcommand
        return 0
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 1
    finally:
        app.reset()
        NbGraderApp.clear_instance()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignment", nargs="*", help="assignment names (default: all in ../solutions)")
    parser.add_argument(
        "--keep-gradebook",
        action="store_true",
        help="record the assignments in this course's gradebook instead of a throw-away one",
    )
    opts = parser.parse_args(argv)
    os.chdir(HERE)  # nbgrader reads nbgrader_config.py from the working directory
    bindir = os.path.dirname(sys.executable)  # nbgrader runs `alembic` when it creates a gradebook
    os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    logging.basicConfig(level=logging.WARNING)

    names = opts.assignment or assignments()
    unknown = sorted(set(names) - set(assignments()))
    if unknown:
        parser.error(f"no source notebook for {', '.join(unknown)} in {os.path.normpath(SOURCE)}")
    with tempfile.TemporaryDirectory() as tmp:
        extra = [] if opts.keep_gradebook else [f"--CourseDirectory.db_url=sqlite:///{tmp}/gradebook.db"]
        for name in names:
            code = run_nbgrader(["generate_assignment", name, "--force", "--log-level=WARN", *extra])
            if code:
                print(f"nbgrader generate_assignment {name} failed (exit {code})", file=sys.stderr)
                return code
            print(f"released {name} -> {os.path.normpath(os.path.join(RELEASE, name))}")
    if not opts.assignment:
        for stale in sorted(set(os.listdir(RELEASE)) - set(names)):
            path = os.path.join(RELEASE, stale)
            if os.path.isdir(path):
                shutil.rmtree(path)
                print(f"removed {os.path.normpath(path)} (no source notebook)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
