"""Check an exercise notebook before you submit it: run it in a fresh kernel and report its visible tests.

    python -m coursekit.check ex3_gaussian_kl.ipynb      (or, in the repository: make check NB=...)

Runs every cell from the top, as "Restart & Run All" does, in a new kernel in the notebook's folder,
without changing the file. Then prints, part by part, the points of the test cells that passed and,
for each failed one, its description and the first line of its error (which says what was expected and
where the chapter covers it). Exit status: 0 when every visible test passed, 1 when one failed, 2 when
the notebook could not be read or run.

What it does not do: hidden tests run only when the notebook is graded, so a notebook that passes here
can still lose points; answers written in Markdown are graded by hand. ``nbgrader validate`` runs the
same cells but exits 0 either way and prints no points.

Needs what Jupyter brings (nbformat, nbclient, ipykernel); nothing of the course's grading set-up.
"""

import argparse
import re
import sys
from pathlib import Path


def _nbgrader(cell):
    md = cell.get("metadata", {}).get("nbgrader")
    return md if isinstance(md, dict) else {}


def _is_test(cell):
    md = _nbgrader(cell)
    return cell.get("cell_type") == "code" and bool(md.get("grade")) and not md.get("solution")


def _is_manual(cell):
    md = _nbgrader(cell)
    return bool(md.get("grade")) and bool(md.get("solution"))


def _description(cell):
    """A test cell's one-line docstring (or its first line)."""
    first = (cell.get("source") or "").strip().splitlines()[:1]
    return first[0].strip().strip('"').strip() if first else "(empty test cell)"


def _error(cell):
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            if out.get("ename") == "NotImplementedError":
                return "NotImplementedError: an answer cell this test uses is not filled in yet"
            message = f"{out.get('ename', 'Error')}: {out.get('evalue', '')}".strip()
            return message.splitlines()[0] if message else "error"
    return None


def parts(nb):
    """[(part title, [cells])]: the graded cells under each "## Part ..." heading (or the title)."""
    out, title = [], "(before the first part)"
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            heading = re.match(r"^#{1,3}\s+(.*)", cell.source.strip())
            if heading and (heading.group(1).lower().startswith("part") or not out):
                title = heading.group(1).strip()
        if _is_test(cell) or _is_manual(cell):
            if not out or out[-1][0] != title:
                out.append((title, []))
            out[-1][1].append(cell)
    return out


def run(path, timeout=300, kernel_name=None):
    """The notebook at ``path`` executed in a fresh kernel (errors kept as outputs)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(str(path), as_version=4)
    name = kernel_name or nb.metadata.get("kernelspec", {}).get("name", "python3")
    client = NotebookClient(
        nb, timeout=timeout, allow_errors=True, kernel_name=name, resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()
    return nb


def report(nb, out=sys.stdout):
    """Print points per part; return (visible points earned, visible points possible, failed tests)."""
    earned = possible = manual = 0
    failed = []
    for title, cells in parts(nb):
        got = total = 0
        lines = []
        for cell in cells:
            points = float(_nbgrader(cell).get("points", 0) or 0)
            if _is_manual(cell):
                manual += points
                lines.append(f"    graded by hand ({points:g} points): {_nbgrader(cell).get('grade_id', '')}")
                continue
            total += points
            error = _error(cell)
            if error is None:
                got += points
            else:
                failed.append(_description(cell))
                lines.append(f"    FAILED  {_description(cell)}\n            {error}")
        if total:
            print(f"{title}: {got:g} / {total:g}", file=out)
        elif lines:
            print(f"{title}:", file=out)
        for line in lines:
            print(line, file=out)
        earned, possible = earned + got, possible + total
    print(f"\nVisible tests: {earned:g} / {possible:g} points", end="", file=out)
    print(f" (+ {manual:g} graded by hand)" if manual else "", file=out)
    if failed:
        print(f"{len(failed)} visible test(s) failed: fix them, then run this check again.", file=out)
    else:
        print("Every visible test passed. Hidden tests run when the notebook is graded.", file=out)
    return earned, possible, failed


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m coursekit.check", description=__doc__.splitlines()[0])
    parser.add_argument("notebook", help="the exercise notebook (.ipynb) to check")
    parser.add_argument("--timeout", type=int, default=300, help="seconds a cell may run (default 300)")
    args = parser.parse_args(argv)
    path = Path(args.notebook)
    if not path.is_file():
        print(f"error: notebook: {path} is not a file", file=sys.stderr)
        return 2
    try:
        import nbformat

        nb = nbformat.read(str(path), as_version=4)
    except ImportError as err:
        print(f"error: {err.name} is missing: install Jupyter (pip install notebook)", file=sys.stderr)
        return 2
    except Exception as err:  # not JSON, not a notebook
        print(f"error: notebook: {path} is not a readable notebook ({type(err).__name__}: {err})", file=sys.stderr)
        return 2
    if not any(_is_test(c) for c in nb.cells):
        print(f"error: notebook: {path} has no test cells (is it an exercise notebook?)", file=sys.stderr)
        return 2
    print(f"Running {path} in a fresh kernel ...", flush=True)
    try:
        nb = run(path.resolve(), timeout=args.timeout)
    except Exception as err:  # the kernel did not start, or a cell ran past the time limit
        print(f"error: could not run {path}: {type(err).__name__}: {str(err).splitlines()[0]}", file=sys.stderr)
        return 2
    _, _, failed = report(nb)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
