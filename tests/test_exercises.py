"""Static checks of the exercises: source notebooks, released notebooks, grader config, TOC, README.

Fast (no kernel is started). The graded round trips are in test_autograder.py and
test_capstone.py (which between them grade every reference solution); the released notebooks in
book/exercises/ run under nbval.
"""

import ast
import re

import exercise_kit as kit
import nbformat
import pytest
import yaml
from traitlets.config.loader import PyFileConfigLoader

EXPECTED = [
    "ex1_latent_models",
    "ex2_elbo",
    "ex3_gaussian_kl",
    "ex4_reparameterization",
    "ex5_posterior_collapse",
    "ex6_iwae",
    "ex7_capstone",
]


def test_one_assignment_per_chapter():
    assert kit.ASSIGNMENTS == EXPECTED
    assert sorted(p.name for p in kit.RELEASE.iterdir() if p.is_dir()) == EXPECTED


@pytest.mark.parametrize("assignment", EXPECTED)
def test_source_notebook(assignment):
    nb = kit.source_nb(assignment)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    answers = [c for c in nb.cells if kit.is_answer(c) and c.cell_type == "code"]
    tests = [c for c in nb.cells if kit.is_test(c)]
    assert len(answers) >= 3 and len(tests) >= 3, "at least three automatically graded parts"
    ids = [kit.grade_id(c) for c in nb.cells if kit.nbgrader_md(c)]
    assert len(ids) == len(set(ids)), "grade ids are unique"
    for c in nb.cells:
        assert "raises-exception" not in c.metadata.get("tags", []), "tags belong to the release only"
        if c.cell_type == "code":
            assert c.outputs == [] and c.execution_count is None, "source notebooks are stored without outputs"
            ast.parse(re.sub(r"^\s*%.*$", "", c.source, flags=re.M))  # valid Python
        md = kit.nbgrader_md(c)
        if md:
            assert md.get("schema_version") == 3
        if kit.is_answer(c) and c.cell_type == "code":
            assert "### BEGIN SOLUTION" in c.source and "### END SOLUTION" in c.source
        if kit.is_test(c):
            first = c.source.splitlines()[0]
            assert re.match(r'^(""".+"""|# .+)$', first), f"{kit.grade_id(c)}: first line must say what it checks"
            assert md["locked"] and md["points"] > 0
            assert c.source.count("### BEGIN HIDDEN TESTS") == c.source.count("### END HIDDEN TESTS") == 1, (
                f"{kit.grade_id(c)}: every test cell has a hidden part"
            )
            visible = c.source.split("### BEGIN HIDDEN TESTS")[0]
            assert len(visible.strip().splitlines()) >= 2, f"{kit.grade_id(c)}: needs a visible check as well"
        elif md.get("grade") and md.get("solution"):  # answered by hand
            assert c.cell_type == "markdown" and "### BEGIN SOLUTION" in c.source


@pytest.mark.parametrize("assignment", EXPECTED)
def test_hidden_tests_draw_on_the_default_device(assignment):
    """A generator made without a device is a CPU one, and ``torch.randn(..., generator=g)`` then
    fails for a student (or a grading machine) that called ``torch.set_default_device("cuda")``:
    every test cell makes its generators on the default device instead."""
    for c in kit.source_nb(assignment).cells:
        if kit.is_test(c):
            bare = re.findall(r"Generator\(\s*\)", c.source)
            assert not bare, f"{kit.grade_id(c)}: make generators with Generator(_t.empty(0).device)"


@pytest.mark.parametrize("assignment", EXPECTED)
def test_release_notebook(assignment):
    nb, src = kit.release_nb(assignment), kit.source_nb(assignment)
    assert [kit.grade_id(c) for c in nb.cells] == [kit.grade_id(c) for c in src.cells]
    for c in nb.cells:
        assert "BEGIN SOLUTION" not in c.source and "HIDDEN TESTS" not in c.source
        tags = c.metadata.get("tags", [])
        if c.cell_type == "code":
            assert c.outputs == []
            expect_error = kit.is_test(c) or (kit.is_answer(c) and "raise NotImplementedError" in c.source)
            assert ("raises-exception" in tags) == expect_error, f"cell {c.get('id')}: wrong raises-exception tag"
        if kit.is_test(c):
            assert c.metadata.get("editable") is False and c.metadata.get("deletable") is False


def test_worked_examples_are_graded():
    """The three practice problems of the course notes are graded exercises."""
    ex2, ex3 = kit.source_nb("ex2_elbo"), kit.source_nb("ex3_gaussian_kl")
    manual2 = [c for c in ex2.cells if kit.nbgrader_md(c).get("grade") and c.cell_type == "markdown"]
    assert manual2 and "ELBO" in manual2[0].source and r"\log p(x)" in manual2[0].source
    assert "3.125" in kit.cell(ex3, "test_kl_worked_example").source
    assert "kl_by_hand" in kit.cell(ex3, "kl_by_hand").source
    manual3 = kit.cell(ex3, "derivation_squared_error")
    assert manual3.cell_type == "markdown" and "squared" in kit.cell(ex3, "test_squared_error_form").source


def test_typical_bugs_and_cheats_target_real_cells():
    for assignment, overrides in kit.WRONG.items():
        ids = {kit.grade_id(c) for c in kit.source_nb(assignment).cells if kit.is_answer(c)}
        assert set(overrides) <= ids
    assert set(kit.WRONG) == set(EXPECTED)
    for name, make in kit.CHEATS.items():
        release = nbformat.writes(kit.release_nb(kit.CHEAT_ASSIGNMENT))
        assert nbformat.writes(make(kit.release_nb(kit.CHEAT_ASSIGNMENT))) != release, name  # each cheat edits it


def test_grader_config():
    """The config loads, and its preprocessors are nbgrader ones (a plain nbconvert one is disabled)."""
    from nbgrader.preprocessors import NbGraderPreprocessor

    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(kit.AUTOGRADER)).load_config()
    assert cfg.CourseDirectory.source_directory == "../solutions"
    assert cfg.CourseDirectory.release_directory == "../book/exercises"
    assert cfg.CourseDirectory.course_id == "vaecourse"
    assert 0 < cfg.Execute.timeout <= 120 and cfg.Execute.interrupt_on_timeout
    assert cfg.OverwriteCells.add_missing_cells is True
    pipelines = (
        cfg.GenerateAssignment.preprocessors,
        cfg.Autograde.sanitize_preprocessors,
        cfg.Autograde.autograde_preprocessors,
        cfg.GenerateFeedback.preprocessors,
    )
    names = {p.__name__ for pipeline in pipelines for p in pipeline}
    assert {
        "TagExpectedErrors",
        "SanitizeSubmission",
        "RestoreMissingCells",
        "ResilientExecute",
        "FeedbackSanitizer",
    } <= names
    for pipeline in pipelines:
        for pp in pipeline:
            if pp.__module__ == "vaecourse_grader":
                assert issubclass(pp, NbGraderPreprocessor), pp


def test_toc_lists_every_exercise():
    toc = yaml.safe_load((kit.REPO / "_toc.yml").read_text())
    part = next(p for p in toc["parts"] if p["caption"] == "Exercises")
    (landing,) = part["chapters"]
    assert landing["file"] == "book/exercises/index"
    assert [s["file"] for s in landing["sections"]] == [f"book/exercises/{a}/{a}" for a in EXPECTED]


def test_index_lists_every_exercise_with_its_points():
    index = (kit.RELEASE / "index.md").read_text()
    for a in EXPECTED:
        row = next(line for line in index.splitlines() if f"({a}/{a}.ipynb)" in line)
        auto, manual = kit.autograded_points(a), kit.manual_points(a)
        assert row.rstrip(" |").endswith(f"{auto} + {manual}" if manual else f"{auto}"), row


def test_readme_documents_both_workflows():
    readme = (kit.REPO / "README.md").read_text()
    section = readme.split("<!-- exercises:start -->")[1].split("<!-- exercises:end -->")[0]
    for command in (
        "nbgrader validate",
        "nbgrader submit",
        "nbgrader fetch_assignment",
        "cd autograder",
        "nbgrader generate_assignment",
        "nbgrader release_assignment",
        "nbgrader collect",
        "nbgrader autograde",
        "nbgrader generate_feedback",
        "nbgrader export",
        "make exercises",
    ):
        assert command in section, command


BY_HAND = {  # answers to ex3 Part B (kl_by_hand) -> whether the hidden test accepts them
    "kl_terms = [0.5 * (4.0 + 0.25 - math.log(0.25) - 1), 0.5 * (4.0 - math.log(4.0) - 1)]\n"
    "kl_by_hand = sum(kl_terms)  # the same as gaussian_kl gives": True,
    "def term(m, v):\n    return 0.5 * (m * m + v - math.log(v) - 1)\n\n"
    "kl_terms, kl_by_hand = [term(2.0, 0.25), term(0.0, 4.0)], term(2.0, 0.25) + term(0.0, 4.0)": True,
    "kl_terms = [2.318, 0.807]  # three decimals\nkl_by_hand = 3.125": True,
    "kl_terms = [2.318, 0.907]\nkl_by_hand = 3.125": False,  # a wrong term
    "kl_by_hand = gaussian_kl(torch.tensor([2.0, 0.0]), torch.log(torch.tensor([0.25, 4.0]))).item()\n"
    "kl_terms = [kl_by_hand - 0.8068528194400546, 0.8068528194400546]": False,
    "def h(m, v):\n    return gaussian_kl(torch.tensor([m]), torch.tensor([v]).log()).item()\n\n"
    "kl_terms = [h(2.0, 0.25), h(0.0, 4.0)]\nkl_by_hand = sum(kl_terms)": False,
    "exec('kl_terms = [2.3181471805599454, 0.8068528194400546]')\nexec('kl_by_hand = 3.125')": False,
}


@pytest.mark.parametrize("answer", BY_HAND)
def test_worked_example_by_hand_is_checked(answer):
    """The hidden test of ex3 Part B reads the answer cell from IPython's history: a value that comes
    from gaussian_kl or tensors loses the point; plain arithmetic (rounded to 3 decimals) keeps it."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.reset()
    for c in kit.source_nb("ex3_gaussian_kl").cells:
        if c.cell_type != "code" or kit.is_test(c) and kit.grade_id(c) != "test_kl_by_hand":
            continue
        source = answer if kit.grade_id(c) == "kl_by_hand" else kit.strip_markers(c.source)
        result = shell.run_cell(source, store_history=True)
        if kit.grade_id(c) == "test_kl_by_hand":
            assert result.success is BY_HAND[answer], result.error_in_exec
            break
        assert result.success, (kit.grade_id(c), result.error_in_exec)
    else:
        raise AssertionError("no test_kl_by_hand cell")


# ----------------------------------------------------------------------------- the test cells


def _headings(chapter):
    """The section titles of chapter `chapter` (book/0N_*.ipynb), as written after the #s."""
    import coursekit.grading as vg

    notebook = next(nb for number, nb, _ in vg.CHAPTERS if number == chapter)
    nb = nbformat.read(str(kit.REPO / "book" / f"{notebook}.ipynb"), as_version=4)
    lines = [line for c in nb.cells if c.cell_type == "markdown" for line in c.source.splitlines()]
    return {line.lstrip("#").strip() for line in lines if re.match(r"^#{1,4} ", line)}


@pytest.mark.parametrize("assignment", EXPECTED)
def test_test_cells_share_one_helper_module(assignment):
    """No pasted copy of a grading helper (torch internals, an own-work block): every test cell imports
    coursekit.grading (one module, importable where vaecourse is installed and in the sandbox)."""
    for c in kit.source_nb(assignment).cells:
        if kit.is_test(c):
            assert "coursekit.grading" in c.source, f"{kit.grade_id(c)}: does not use coursekit.grading"
            for copy in ("_VariableFunctions", "TensorBase", "def _err", "def _reaches", "def _call_without_library"):
                assert copy not in c.source, f"{kit.grade_id(c)}: a pasted copy of a helper ({copy})"


@pytest.mark.parametrize("assignment", EXPECTED)
def test_every_pointer_names_a_section_of_its_chapter(assignment):
    """Each ``see(chapter, section)`` in a test cell names a heading that the chapter has, so that a
    failed test's message sends the student somewhere real."""
    pointers = []
    for c in kit.source_nb(assignment).cells:
        if kit.is_test(c):
            pointers += [(kit.grade_id(c), int(n), s) for n, s in re.findall(r'see\((\d), "([^"]+)"\)', c.source)]
    assert pointers, "no test points into the chapters"
    for gid, chapter, section in pointers:
        assert section in _headings(chapter), f"{gid}: Chapter {chapter} has no section {section!r}"


@pytest.mark.parametrize("assignment", EXPECTED[:6])
def test_every_failed_assert_points_into_the_chapter(assignment):
    """Every assert of a test cell has a message that ends with the cell's pointer (``_see``), and every
    helper call that can fail is given it."""
    for c in kit.source_nb(assignment).cells:
        if not kit.is_test(c):
            continue
        tree = ast.parse(c.source)
        for node in ast.walk(tree):
            if isinstance(node, ast.Assert):
                names = {n.id for n in ast.walk(node.msg) if isinstance(n, ast.Name)} if node.msg else set()
                assert "_see" in names, f"{kit.grade_id(c)}: line {node.lineno} fails without a pointer"
            if isinstance(node, ast.Call) and ast.unparse(node.func) in ("_vg.own", "_vg.assert_close", "_vg.by_hand"):
                assert "see" in {k.arg for k in node.keywords}, f"{kit.grade_id(c)}: line {node.lineno}"


def test_delegation_submissions_target_real_cells():
    assert set(EXPECTED[:6]) <= set(kit.DELEGATED)
    for assignment, overrides in kit.DELEGATED.items():
        ids = {kit.grade_id(c) for c in kit.source_nb(assignment).cells if kit.is_answer(c)}
        assert overrides and set(overrides) <= ids, assignment
