"""How ``nbgrader autograde`` reads what students hand in, for the vaecourse course.

``nbgrader_config.py`` (next to this file) plugs both pieces into ``nbgrader autograde``:

    SubmissionExporter   the exporter autograde reads submissions with: a file that is not a readable
                         notebook (empty, cut off in an upload, not JSON, not UTF-8) is graded as the
                         blank release with a first cell saying why, so it gets a score and feedback.
    RenamedNotebooks     autograde's pre-convert hook: a notebook handed in under another name
                         (Jupyter's ``ex3_gaussian_kl-Copy1.ipynb``, a browser's ``... (1).ipynb``) is
                         graded as the assignment's notebook, with a first cell saying so.

Neither changes, moves or adds a file in ``submitted/``. SubmissionExporter also stops autograde
before the first submission if the sandbox (``vaecourse_sandbox.py``) cannot start.
"""

import os

import nbformat
from nbconvert.exporters import NotebookExporter
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.converters.base import NbGraderException
from traitlets.log import get_logger
from vaecourse_sandbox import preflight

__all__ = ["SubmissionExporter", "RenamedNotebooks", "match_notebooks"]

# what RenamedNotebooks decided, for SubmissionExporter (both run in the one `nbgrader autograde`
# process): the path nbgrader grades -> (the file to read there, or None for the file itself,
# the other notebooks of that submission that are not graded)
GRADED_AS = {}


def _stem(path):
    return os.path.splitext(os.path.basename(path))[0]


def match_notebooks(expected, paths):
    """Which submitted file to grade as each of the assignment's notebooks.

    ``expected``: the assignment's notebook names (no ``.ipynb``); ``paths``: the ``.ipynb`` files of
    one submission. Returns ``{name: path}`` for the names with no file of their own. An unknown
    file whose name starts with the missing name (``X-Copy1``, ``X (1)``, ``x_final``; any case) is
    preferred, the most recently modified first; if only one name is missing, any unknown file will
    do. Each file is used at most once; a name with nothing to match is left out.
    """
    present = {_stem(p) for p in paths}
    unknown = sorted((p for p in paths if _stem(p) not in expected), key=lambda p: (-os.path.getmtime(p), p))
    missing = [n for n in expected if n not in present]
    chosen = {}
    for name in missing:
        alike = [p for p in unknown if _stem(p).lower().startswith(name.lower())]
        pick = alike or (unknown if len(missing) == 1 else [])
        if pick:
            chosen[name] = pick[0]
            unknown.remove(pick[0])
    return chosen


class RenamedNotebooks:
    """``c.Autograde.pre_convert_hook``: grade a notebook handed in under another name.

    nbgrader grades only the files named like the assignment's notebooks in the gradebook. A
    student whose only file is ``ex3_gaussian_kl-Copy1.ipynb`` stops with "No notebooks found, did
    you forget to run 'nbgrader generate_assignment'?": no score, no feedback and a failing exit
    status for the whole run. nbgrader calls this hook with the list of the submission's notebooks
    just before it filters them; the hook puts the expected path in place of the file chosen by
    ``match_notebooks`` (the list is nbgrader's own), and ``SubmissionExporter`` reads that file
    there. Notebooks that stay unmatched are named in a note in the feedback.
    """

    def __init__(self, db_url, course_id=""):
        self.db_url, self.course_id = db_url, course_id

    def __call__(self, assignment=None, student=None, notebooks=None, **kw):
        if not notebooks:
            return
        folder = os.path.dirname(os.path.abspath(notebooks[0]))  # submitted/<student>/<assignment>
        assignment_id = os.path.basename(folder)
        with Gradebook(self.db_url, self.course_id) as gb:
            try:
                expected = [n.name for n in gb.find_assignment(assignment_id).notebooks]
            except MissingEntry:  # nbgrader reports an unknown assignment itself
                return
        for name, path in match_notebooks(expected, notebooks).items():
            target = os.path.join(folder, f"{name}.ipynb")
            log = get_logger()  # nbgrader then warns "No submitted file" for the name: this is why
            log.warning("No %s: grading %s in its place", target, os.path.basename(path))
            notebooks[notebooks.index(path)] = target
            GRADED_AS[target] = (os.path.abspath(path), ())
        stems = {_stem(p): p for p in notebooks}
        extra = tuple(sorted(os.path.basename(p) for s, p in stems.items() if s not in expected))
        graded = [os.path.abspath(stems[n]) for n in expected if n in stems]
        if extra and graded:  # named in a note at the top of the first graded notebook
            GRADED_AS[graded[0]] = (GRADED_AS.get(graded[0], (None,))[0], extra)


RENAMED = """**This notebook was handed in as `{source}` and graded as `{name}`,** the name the
assignment gave it. Keep the name of the notebook you fetched when you submit."""

NOT_GRADED = """**Not graded:** {files}, handed in with this notebook, {verb} not part of the assignment
(only `{name}` is graded). If your work was in {it}, ask your instructor whether you may resubmit."""

UNREADABLE = """**This submission could not be read, so it was graded as the blank assignment.**

The file `{name}` that was handed in is not a notebook that Jupyter can open: {why}. It is kept
exactly as it was submitted. Open it in Jupyter (or a text editor) to see what went wrong, save
your work as a notebook again, and ask your instructor whether you may resubmit."""


def _why(err, text):
    """A reader's explanation of why ``text`` (the file's contents, or None if undecodable) is no notebook."""
    if text is None:
        return "it is not a text file (not UTF-8)"
    if not text.strip():
        return "the file is empty"
    if isinstance(err, nbformat.reader.NotJSONError):
        return "it is not valid JSON (perhaps it was cut off while saving or uploading)"
    return "it is JSON, but not in the notebook format"


class SubmissionExporter(NotebookExporter):
    """The exporter ``nbgrader autograde`` reads submissions with (``c.Autograde.exporter_class``).

    nbgrader stops a student's grading with a traceback when the submitted file is not a notebook:
    no score beyond the gradebook's default, no autograded copy, no feedback, and a failing exit
    status for the whole run. Here such a file is replaced, for grading only, by the assignment's
    release notebook (or an empty one) with a first cell that says why; its tests then fail as a
    blank submission's do. The file in ``submitted/`` is never touched.

    Being made once per ``nbgrader autograde`` run, before any submission is read, it also checks
    that the sandbox's settings are valid and that it starts (``vaecourse_sandbox.preflight``): if
    not, autograde stops there with the reason and the fix, and nothing is graded.
    """

    _notes = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        problem = preflight(self.config, self.log)
        if problem:
            self.log.error(problem)
            raise NbGraderException(problem)

    def from_filename(self, filename, resources=None, **kw):
        source, extra = GRADED_AS.get(os.path.abspath(filename), (None, ()))
        read = source if source and not os.path.exists(filename) else filename
        name, notes = os.path.basename(filename), []
        if read != filename:
            notes.append(RENAMED.format(source=os.path.basename(read), name=name))
        if extra:
            files, many = ", ".join(f"`{f}`" for f in extra), len(extra) > 1
            verb, it = ("are", "one of them") if many else ("is", "it")
            notes.append(NOT_GRADED.format(files=files, verb=verb, name=name, it=it))
        self._notes = notes
        try:
            output, resources = super().from_filename(read, resources, **kw)
        finally:
            self._notes = ()
        resources["metadata"]["name"] = os.path.splitext(name)[0]
        return output, resources

    def from_file(self, file_stream, resources=None, **kw):
        info = dict((resources or {}).get("nbgrader", {}))
        read = (resources or {}).get("metadata", {}).get("name")  # the file read, if renamed
        info["file"] = f"{read or info.get('notebook', 'notebook')}.ipynb"
        try:
            text = file_stream.read()
        except UnicodeDecodeError as err:
            nb = self._stand_in(info, err, None)
        else:
            try:
                nb = nbformat.reads(text, as_version=4)
                cells = nb.get("cells")
                if not isinstance(cells, list) or not all(isinstance(c, dict) and "cell_type" in c for c in cells):
                    raise ValueError("no list of cells")
            except Exception as err:  # not JSON; JSON but not a notebook (a list, no cells, ...)
                nb = self._stand_in(info, err, text)
        for note in reversed(self._notes):
            nb.cells.insert(0, nbformat.v4.new_markdown_cell(note))
        return self.from_notebook_node(nb, resources=resources, **kw)

    def _stand_in(self, info, err, text):
        name = info["file"]
        reason = f"{type(err).__name__}: {err}"
        self.log.warning(
            "%s of student %s could not be read (%s): graded as the blank release",
            name,
            info.get("student", "?"),
            reason if len(reason) <= 200 else reason[:197] + "...",
        )
        nb = self._release(info) or nbformat.v4.new_notebook()
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(UNREADABLE.format(name=name, why=_why(err, text))))
        return nb

    def _release(self, info):
        """The release version of the notebook, or None if there is none to read."""
        coursedir = getattr(self.parent, "coursedir", None)
        if coursedir is None or not info.get("assignment") or not info.get("notebook"):
            return None
        folder = coursedir.format_path(coursedir.release_directory, ".", info["assignment"])
        try:
            return nbformat.read(os.path.join(folder, f"{info['notebook']}.ipynb"), as_version=4)
        except Exception:  # no release here (a course that keeps it elsewhere): an empty notebook
            return None
