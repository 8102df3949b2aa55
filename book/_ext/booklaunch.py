"""The repository URL, from one place: ``repository: url:`` (and ``branch:``) in ``_config.yml``.

Loaded by the book build (``sphinx.local_extensions``) and usable as a script. What follows from the URL:
    launch and repository buttons -- with a URL, every notebook page gets Binder, Colab (GitHub only) and,
        where ``launch_buttons.jupyterhub_url`` names a hub, JupyterHub buttons, plus the repository and
        issues buttons; without one, none of them (sphinx-book-theme would fail on launch buttons with no
        repository, and jupyter-book refuses repository buttons without a URL).
    the install cell -- the first (hidden) code cell of each chapter, tagged ``vaecourse-install``, installs
        vaecourse with pip when it is missing (a chapter opened in Colab or Binder) from
        ``git+<url>@<branch>``, or from ``$VAECOURSE_PIP_SOURCE`` (a wheel, a path, another URL) when set.
        Its exact text is ``install_cell_source(url, branch)``; ``book/_static/live/install_cell.py`` holds
        it for the configured URL. The build warns (so ``make book``, which runs with -W, fails) where a
        tagged cell or that file differs from it: after changing the URL, run
        ``python book/_ext/booklaunch.py --write`` and paste the printed cell into any chapter it names.
"""

import json
import sys
from pathlib import Path

INSTALL_TAG = "vaecourse-install"
ROOT = Path(__file__).resolve().parents[2]
CELL_FILE = ROOT / "book" / "_static" / "live" / "install_cell.py"
_PROVIDERS = ("binderhub_url", "jupyterhub_url", "colab_url", "deepnote_url", "jupyterlite_url", "thebe")


def pip_source(url, branch="main"):
    """What pip installs vaecourse from for a repository URL: ``git+<url>@<branch>`` (None without a URL)."""
    url = (url or "").strip().rstrip("/")
    if not url:
        return None
    if url.endswith(".git"):
        url = url[:-4]
    return f"git+{url}@{branch or 'main'}"


def install_cell_source(url, branch="main"):
    """The exact source of the install cell for this repository URL (or for none)."""
    default = pip_source(url, branch)
    return (
        "# Installs the course's package where it is missing (Colab, Binder, a\n"
        "# fresh Python); a no-op where vaecourse is installed. VAECOURSE_PIP_SOURCE\n"
        "# (a wheel, a folder, a URL) overrides where it comes from.\n"
        "import importlib.util\n"
        "\n"
        'if importlib.util.find_spec("vaecourse") is None:\n'
        "    import os\n"
        "    import subprocess\n"
        "    import sys\n"
        "\n"
        f"    default = {'None' if default is None else chr(34) + default + chr(34)}\n"
        '    source = os.environ.get("VAECOURSE_PIP_SOURCE") or default\n'
        "    if not source:\n"
        "        raise ImportError(\n"
        '            "vaecourse is not installed: pip install a clone of the course "\n'
        '            "(pip install .) or its wheel, or set VAECOURSE_PIP_SOURCE"\n'
        "        )\n"
        '    pip = [sys.executable, "-m", "pip", "install", "--quiet", source]\n'
        "    subprocess.check_call(pip)\n"
        "    importlib.invalidate_caches()\n"
    )


def repository(config_path=ROOT / "_config.yml"):
    """``(url, branch)`` from ``repository:`` in a Jupyter Book ``_config.yml`` (url may be '')."""
    import yaml

    repo = (yaml.safe_load(Path(config_path).read_text(encoding="utf-8")) or {}).get("repository") or {}
    return str(repo.get("url") or "").strip(), str(repo.get("branch") or "main").strip()


def _cells(path):
    try:
        nb = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    out = []
    for i, cell in enumerate(nb.get("cells", [])):
        if INSTALL_TAG in cell.get("metadata", {}).get("tags", []):
            src = cell.get("source", "")
            out.append((i, "".join(src) if isinstance(src, list) else src))
    return out


def stale(url, branch, notebooks=(), cell_file=CELL_FILE):
    """Places that do not hold ``install_cell_source(url, branch)``: the cell file and tagged notebook cells."""
    want = install_cell_source(url, branch)
    found = []
    if cell_file is not None and (not cell_file.is_file() or cell_file.read_text(encoding="utf-8") != want):
        found.append(str(cell_file.relative_to(ROOT)) if cell_file.is_relative_to(ROOT) else str(cell_file))
    for path in notebooks:
        for index, src in _cells(path):
            if src.rstrip("\n") != want.rstrip("\n"):
                found.append(
                    f"{Path(path).relative_to(ROOT) if Path(path).is_relative_to(ROOT) else path} cell {index}"
                )
    return found


# ---------------------------------------------------------------------------------------------- Sphinx
def _from_config_yml(app, opts):
    """Fill the theme's repository and launch options from the book's _config.yml where they are missing.

    jupyter-book maps ``repository:`` and ``launch_buttons:`` into ``html_theme_options``, but a
    ``sphinx.config.html_theme_options`` in _config.yml (this book sets ``navbar_persistent``) replaces
    that mapping whole; this puts them back, so that ``repository:`` stays the one place.
    """
    import yaml

    path = Path(app.confdir or app.srcdir) / "_config.yml"
    if not path.is_file():
        path = Path(app.srcdir) / "_config.yml"
    if not path.is_file():
        return
    cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    repo = cfg.get("repository") or {}
    for theme_key, yml_key in (
        ("repository_url", "url"),
        ("repository_branch", "branch"),
        ("path_to_docs", "path_to_book"),
    ):
        if yml_key in repo:
            opts.setdefault(theme_key, repo[yml_key])
    if "launch_buttons" in cfg:
        opts.setdefault("launch_buttons", cfg["launch_buttons"])


def _buttons(app, config):
    opts = config.html_theme_options
    _from_config_yml(app, opts)
    url = str(opts.get("repository_url") or "").strip()
    launch = dict(opts.get("launch_buttons") or {})
    if not url:
        for key in _PROVIDERS:  # no repository: no launch buttons (the theme cannot link them)
            launch.pop(key, None)
        opts["use_repository_button"] = opts["use_issues_button"] = False
    else:
        opts.setdefault("use_repository_button", True)
        opts.setdefault("use_issues_button", True)
        if launch.get("colab_url") and "github.com" not in url.lower():
            from sphinx.util import logging

            logging.getLogger(__name__).info(f"booklaunch: no Colab button (Colab opens GitHub repositories; {url})")
            launch.pop("colab_url")
    opts["launch_buttons"] = launch


def _check_install_cells(app, env, docnames):
    from sphinx.util import logging

    url = str(app.config.html_theme_options.get("repository_url") or "")
    branch = str(app.config.html_theme_options.get("repository_branch") or "main")
    notebooks = [Path(env.doc2path(d)) for d in docnames]
    notebooks = [p for p in notebooks if p.suffix == ".ipynb"]
    cell_file = CELL_FILE if Path(app.srcdir).resolve() == ROOT else None  # another book: not this repository's
    for where in stale(url, branch, notebooks, cell_file):
        logging.getLogger(__name__).warning(
            f"booklaunch: {where} is not the install cell for repository url {url!r}: "
            "run `python book/_ext/booklaunch.py --write` (and paste its cell there)"
        )


def setup(app):
    app.connect("config-inited", _buttons, priority=900)
    app.connect("env-before-read-docs", _check_install_cells)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


def main(argv):
    url, branch = repository()
    text = install_cell_source(url, branch)
    if "--write" in argv:
        CELL_FILE.parent.mkdir(parents=True, exist_ok=True)
        CELL_FILE.write_text(text, encoding="utf-8")
    notebooks = sorted((ROOT / "book").glob("*.ipynb"))
    bad = stale(url, branch, notebooks)
    if "--write" in argv or not bad:
        print(text, end="")
    for where in bad:
        print(f"differs from the install cell for {url or 'no repository url'}: {where}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
