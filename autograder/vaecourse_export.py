"""``nbgrader export`` to a CSV file that Canvas or Moodle imports into its gradebook.

    cd autograder
    nbgrader export --exporter=vaecourse_export.LMSExportPlugin --to=canvas.csv
    nbgrader export --exporter=vaecourse_export.LMSExportPlugin --LMSExportPlugin.lms=moodle --to=moodle.csv

One row per student, one column per assignment (the score after the late penalty; a student with
no submission gets 0, as in nbgrader's own export). INSTRUCTORS.md shows both layouts and the
import steps.

Canvas (Grades > Import): the columns of Canvas's own gradebook export, ``Student`` ("Last,
First"), ``ID`` (the Canvas user id: nbgrader's ``lms_user_id``, set with ``nbgrader db student
add ... --lms-user-id``), ``SIS User ID``, ``SIS Login ID`` (nbgrader's student id), ``Section``,
then one column per assignment, headed ``name (Canvas assignment id)`` when
``c.LMSExportPlugin.canvas_assignment_ids`` gives the id (otherwise Canvas offers to create a new
assignment), and a second row ``Points Possible``.

Moodle (Grades > Import > CSV file): ``Username`` (nbgrader's student id), ``Email address``,
``First name``, ``Last name``, then one column per assignment; at import, identify users by
mapping ``Username`` to ``username`` (or ``Email address`` to ``useremail``) and each assignment
column to its grade item.
"""

import csv

from nbgrader.api import MissingEntry
from nbgrader.plugins import ExportPlugin
from traitlets import Dict, Enum, Unicode

__all__ = ["LMSExportPlugin", "rows"]


def _score(gradebook, assignment, student):
    try:
        sub = gradebook.find_submission(assignment.name, student.id)
    except MissingEntry:
        return 0.0
    return max(0.0, float(sub.score) - float(sub.late_submission_penalty or 0.0))


def _number(x):
    return f"{x:g}"


def rows(gradebook, lms="canvas", assignments=(), students=(), canvas_ids=None, section=""):
    """The CSV rows (header first) for ``lms``: "canvas" or "moodle"."""
    chosen = [a for a in gradebook.assignments if not assignments or a.name in assignments]
    people = sorted(
        (s for s in gradebook.students if not students or s.id in students),
        key=lambda s: ((s.last_name or "").lower(), (s.first_name or "").lower(), s.id),
    )
    canvas_ids = canvas_ids or {}
    if lms == "canvas":
        titles = [f"{a.name} ({canvas_ids[a.name]})" if a.name in canvas_ids else a.name for a in chosen]
        out = [["Student", "ID", "SIS User ID", "SIS Login ID", "Section", *titles]]
        out.append(["Points Possible", "", "", "", "", *(_number(a.max_score) for a in chosen)])
        for s in people:
            name = ", ".join(p for p in (s.last_name, s.first_name) if p) or s.id
            scores = [_number(_score(gradebook, a, s)) for a in chosen]
            out.append([name, s.lms_user_id or "", "", s.id, section, *scores])
        return out
    out = [["Username", "Email address", "First name", "Last name", *(a.name for a in chosen)]]
    for s in people:
        scores = [_number(_score(gradebook, a, s)) for a in chosen]
        out.append([s.id, s.email or "", s.first_name or "", s.last_name or "", *scores])
    return out


class LMSExportPlugin(ExportPlugin):
    """Grades as a CSV file for the gradebook import of Canvas or Moodle (see the module docstring)."""

    lms = Enum(["canvas", "moodle"], "canvas", help="Which LMS's import layout to write.").tag(config=True)
    canvas_assignment_ids = Dict(
        {}, help="Canvas assignment id of each nbgrader assignment, e.g. {'ex3_gaussian_kl': 1234}."
    ).tag(config=True)
    section = Unicode("", help="Canvas 'Section' column (Canvas ignores it on import).").tag(config=True)

    def export(self, gradebook):
        dest = self.to or f"grades-{self.lms}.csv"
        table = rows(
            gradebook,
            self.lms,
            [str(a) for a in self.assignment],
            [str(s) for s in self.student],
            self.canvas_assignment_ids,
            self.section,
        )
        self.log.info(
            "Exporting grades for %s to %s (%d students)", self.lms, dest, len(table) - 1 - (self.lms == "canvas")
        )
        with open(dest, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(table)
