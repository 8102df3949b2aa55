# The two commands the README promises on a fresh machine:
#   make book   create .venv, install the pinned stack, build the HTML book, print where it is
#   make test   same install, then every test (package, exercises/autograder, book via nbval, browser)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install book pdf test test-fast exercises grade bench clean

install: $(STAMP)

# One pip call installs the whole pinned stack (one resolution), without byte-compiling it: pip
# compiles every installed file on one core (about half of its time), 14,700 files of which the
# course imports about a quarter. Instead each module's .pyc is written when it is first imported,
# by the import check below (torch and the package), the book build and the first tests, also where
# the environment sets PYTHONDONTWRITEBYTECODE (as the development machine does), hence the
# `unexport`: without .pyc files every kernel's `import torch` would compile torch again (5-7 s
# instead of 2 s). Compiling the whole venv up front (compileall on both cores) cost 38-45 s of
# `make book`.
unexport PYTHONDONTWRITEBYTECODE
$(STAMP): pyproject.toml requirements/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-compile -c requirements/constraints.txt torch==2.13.0 -e ".[dev]"
	$(BIN)/python -c "import torch, vaecourse; print('installed: torch', torch.__version__, '- vaecourse', vaecourse.__version__)"
	touch $(STAMP)

book: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/jupyter-book build . -W -n --keep-going
	@echo "The book is at $(CURDIR)/_build/html/index.html (serve it: $(BIN)/python -m http.server -d _build/html 8000)"

# The book as one PDF (_build/latex/vaecourse.pdf), typeset by LaTeX: needs TeX Live (Debian:
# apt-get install texlive-xetex texlive-latex-extra texlive-fonts-recommended latexmk fonts-freefont-otf).
pdf: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/jupyter-book build . --builder pdflatex
	@echo "The PDF is at $(CURDIR)/_build/latex/vaecourse.pdf"

# nbval options live here so that `make test`, CI and developers run the book checks the same way.
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with book/sanitize.cfg
# nbval runs of the chapters write their live-figure JSON to a scratch folder (coursekit/live.py), so that
# a test run leaves book/_static/live/data as committed, with the stored outputs
NBVAL_RUN = VAECOURSE_LIVE_DIR="$(CURDIR)/_build/test-live-data" $(PYTEST) $(NBVAL)

# solutions/ is not run under nbval here: the autograder round trip (tests/test_autograder.py, and
# tests/test_capstone.py for the capstone) grades every reference solution, hidden tests included,
# and requires full marks.
#
# `make test` runs every test in tests/ and every notebook in book/ as nine lanes, two at a time
# (`make -j2`), each started when a slot frees up, longest first so that the last ones to start are
# short: the package's unit tests, the autograder round trip (two graders in parallel, one process
# each), chapters 5 and 4 (the ones that train at length), the browser checks (after building the
# book, as `make book` does), the capstone's graded submissions (grade.py, two at a time), the light
# chapters, chapter 6 and the exercise notebooks. Every lane computes on one thread: the chapters
# fix it in their set-up cell, the unit tests and graders get OMP_NUM_THREADS=1. A training step on
# two OpenMP threads next to another busy process waits at every barrier (chapters 4-6 as two such
# lanes took 7:43, as two one-thread lanes 2:00), while a second thread for an idle process gains
# little (chapter 5: 104 s alone on two threads, 118 s on one beside another lane).
# Each lane's output is printed when it ends; `make test` fails if any lane fails (or collects nothing).
HEAVY   := book/04_reparameterization.ipynb book/05_posterior_collapse.ipynb book/06_iwae.ipynb
LANES   := test-lane-package test-lane-autograder test-lane-ch5 test-lane-ch4 test-lane-browser \
           test-lane-capstone test-lane-chapters test-lane-ch6 test-lane-exercises
.PHONY: $(LANES)
PYTEST  := PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/pytest -p no:cacheprovider

test: $(STAMP)
	@$(MAKE) --no-print-directory -k -j2 --output-sync=target $(LANES)

test-lane-ch4 test-lane-ch5 test-lane-ch6: test-lane-ch%: $(STAMP)
	@echo "== lane: chapter $*"
	$(NBVAL_RUN) $(or $(filter book/0$*_%,$(HEAVY)),$(error test-lane-ch$*: no chapter 0$*_* in HEAVY))

test-lane-chapters: $(STAMP)
	@echo "== lane: chapters"
	$(NBVAL_RUN) book --ignore=book/exercises $(addprefix --ignore=,$(HEAVY))

test-lane-autograder: $(STAMP)
	@echo "== lane: autograder"
	OMP_NUM_THREADS=1 $(PYTEST) tests/test_autograder.py

test-lane-capstone: $(STAMP)
	@echo "== lane: capstone"
	OMP_NUM_THREADS=1 $(PYTEST) tests/test_capstone.py

test-lane-package: $(STAMP)
	@echo "== lane: package"
	OMP_NUM_THREADS=1 $(PYTEST) tests --ignore=tests/test_browser.py --ignore=tests/test_autograder.py \
	  --ignore=tests/test_capstone.py

test-lane-browser: $(STAMP)
	@echo "== lane: browser (builds the book first, as \`make book\` does)"
	$(MAKE) --no-print-directory book
	$(PYTEST) tests/test_browser.py

test-lane-exercises: $(STAMP)
	@echo "== lane: exercises"
	$(NBVAL_RUN) book/exercises

# Only the unit tests of the package (seconds).
test-fast: $(STAMP)
	$(BIN)/pytest tests/test_losses.py tests/test_models.py tests/test_train.py tests/test_data.py

# Regenerate the student notebooks in book/exercises/ from solutions/ (nbgrader generate_assignment).
exercises: $(STAMP)
	cd autograder && PATH="$(CURDIR)/$(BIN):$$PATH" ../$(BIN)/python release.py

# Grade every collected submission of ASSIGNMENT ("*": every assignment), JOBS sandboxed kernels at
# once, into the one gradebook (autograder/grade.py; INSTRUCTORS.md).
ASSIGNMENT ?= *
JOBS ?= 2
grade: $(STAMP)
	cd autograder && PATH="$(CURDIR)/$(BIN):$$PATH" ../$(BIN)/python grade.py "$(ASSIGNMENT)" --jobs $(JOBS)

# A student's check of one exercise notebook: run it in a fresh kernel, print the points of its visible
# tests per part, exit non-zero if one fails (coursekit/check.py; `nbgrader validate` exits 0 either way).
check: $(STAMP)
	@test -n "$(NB)" || { echo "usage: make check NB=path/to/exercise.ipynb"; exit 2; }
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m coursekit.check "$(NB)"

bench: $(STAMP)
	$(BIN)/python -m benchmarks.bench

clean:
	rm -rf _build autograder/submitted autograder/autograded autograder/feedback autograder/gradebook.db
