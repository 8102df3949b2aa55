"""The book as a PDF (``make pdf``: Jupyter Book's LaTeX builder), built where TeX Live is installed.

Jupyter Book's other PDF route (``--builder pdfhtml``) prints the HTML with a browser that playwright
downloads at run time, which an offline machine cannot do; the LaTeX route typesets the maths itself
and needs nothing from the network. Without ``xelatex``, ``latexmk`` or the FreeSerif font (which Sphinx's
xelatex set-up asks for) the test skips and says so.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def test_the_book_builds_as_one_pdf_with_every_chapter(tmp_path):
    if not (shutil.which("xelatex") and shutil.which("latexmk")):
        pytest.skip("TeX Live is not installed (Debian: apt-get install texlive-xetex texlive-latex-extra latexmk)")
    fc_list = shutil.which("fc-list")
    fonts = subprocess.run([fc_list, ":family=FreeSerif"], capture_output=True, text=True) if fc_list else None
    if fonts is None or "FreeSerif" not in fonts.stdout:  # the font Sphinx's xelatex set-up asks for
        pytest.skip("the FreeSerif font is not installed (Debian: apt-get install fonts-freefont-otf)")
    jb = Path(sys.executable).parent / "jupyter-book"
    out = tmp_path / "build"
    env = dict(os.environ, PATH=f"{jb.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run(
        [str(jb), "build", str(ROOT), "--builder", "pdflatex", "--path-output", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    pdf = out / "_build" / "latex" / "vaecourse.pdf"
    assert pdf.is_file() and pdf.stat().st_size > 500_000, f"no PDF, or an almost empty one, at {pdf}"
    tex = (out / "_build" / "latex" / "vaecourse.tex").read_text()
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    for part in toc["parts"]:
        for chapter in part["chapters"]:
            assert f"{chapter['file']}::doc" in tex, f"{chapter['file']} is not in the PDF"
            for section in chapter.get("sections", []):
                assert f"{section['file']}::doc" in tex, f"{section['file']} is not in the PDF"
    assert tex.count("includegraphics") >= 10, "the PDF has (almost) no figures"
