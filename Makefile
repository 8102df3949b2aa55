# The two commands the README promises on a fresh machine:
#   make book   create .venv, install the pinned stack, build the HTML book, print where it is
#   make test   same install, then every test (package, exercises/autograder, book via nbval, browser)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install book test test-fast exercises bench clean

install: $(STAMP)

# pip byte-compiles every installed file on one core (about half of the install's time);
# compileall does the same on all cores. The .pyc files matter: with PYTHONDONTWRITEBYTECODE set
# (as on the development machine) nothing else writes them, and every kernel's `import torch` would then
# compile torch again (5-7 s instead of 2 s). Files that do not compile are skipped, as pip does
# (torch ships one in Python 3.12 syntax, so compileall always exits 1); the serial second pass,
# about 2 s when all is compiled, catches whatever a failed parallel pass left.
$(STAMP): pyproject.toml requirements/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-compile -c requirements/constraints.txt torch==2.13.0
	$(BIN)/python -m pip install --quiet --no-compile -c requirements/constraints.txt -e ".[dev]"
	$(BIN)/python -m compileall -qq -j 0 $(VENV)/lib || $(BIN)/python -m compileall -qq $(VENV)/lib || true
	touch $(STAMP)

book: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/jupyter-book build . -W -n --keep-going
	@echo "The book is at $(CURDIR)/_build/html/index.html (serve it: $(BIN)/python -m http.server -d _build/html 8000)"

# nbval options live here so that `make test`, CI and developers run the book checks the same way.
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with book/sanitize.cfg

# solutions/ is not run under nbval here: the autograder round trip (tests/test_autograder.py)
# grades every reference solution, hidden tests included, and requires full marks.
test: $(STAMP)
	$(MAKE) --no-print-directory book
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/pytest $(NBVAL) tests book

# Only the unit tests of the package (seconds).
test-fast: $(STAMP)
	$(BIN)/pytest tests/test_losses.py tests/test_models.py tests/test_train.py tests/test_data.py

# Regenerate the student notebooks in book/exercises/ from solutions/ (nbgrader generate_assignment).
exercises: $(STAMP)
	cd autograder && PATH="$(CURDIR)/$(BIN):$$PATH" ../$(BIN)/python release.py

bench: $(STAMP)
	$(BIN)/python -m vaecourse.bench

clean:
	rm -rf _build autograder/submitted autograder/autograded autograder/feedback autograder/gradebook.db
