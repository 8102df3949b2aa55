"""vaecourse installs anywhere: ``python -m build`` makes an sdist and a wheel, the wheel installs into a
fresh virtual environment and works there, and the chapters' install cell installs it where it is missing.

Offline by design: the fresh environments borrow the dependencies (torch, numpy, ...) already installed
in the test's own environment, through a folder of links to its site-packages that leaves vaecourse
out, and pip runs with ``--no-index`` (PIP_NO_INDEX): nothing is downloaded, and a dependency that the
wheel declares but the environment lacks is an error instead of a download. ``python -m build`` runs
with ``--no-isolation`` for the same reason (setuptools is one of the borrowed packages).
"""

import email
import math
import os
import re
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VERSION = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import booklaunch  # noqa: E402

pytestmark = pytest.mark.slow


def _run(cmd, timeout=300, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """(sdist, wheel) of the working tree: the wheel is built from the sdist, as ``python -m build`` does."""
    out = tmp_path_factory.mktemp("dist")
    pytest.importorskip("build", reason="the `build` package (dev extra) is not installed")
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)])
    sdists, wheels = sorted(out.glob("*.tar.gz")), sorted(out.glob("*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, f"expected one sdist and one wheel, got {sorted(out.iterdir())}"
    return sdists[0], wheels[0]


@pytest.fixture(scope="module")
def borrowed(tmp_path_factory):
    """A folder of links to this environment's installed packages, vaecourse (its editable install) left out."""
    site = Path(sysconfig.get_paths()["purelib"])
    deps = tmp_path_factory.mktemp("deps")
    for entry in site.iterdir():
        name = entry.name.lower()
        if "vaecourse" in name or name.endswith(".pth") or name == "__pycache__":
            continue
        (deps / entry.name).symlink_to(entry)
    return deps


def fresh_venv(where, borrowed):
    """A new virtual environment (no pip of its own, no vaecourse) that sees the borrowed packages."""
    _run([sys.executable, "-m", "venv", "--without-pip", str(where)])
    python = where / "bin" / "python"
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    Path(purelib, "_borrowed.pth").write_text(f"{borrowed}\n")
    return python


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_", "VIRTUAL_ENV"))}
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_BUILD_ISOLATION="0", **extra)
    return env


def _has_vaecourse(python, cwd):
    code = "import importlib.util; print(importlib.util.find_spec('vaecourse') is not None)"
    return _run([str(python), "-c", code], cwd=cwd, env=_env()).stdout.strip() == "True"


# A wheel's one training step, run by the fresh environment's Python (prints the version and the file).
CHECK = """
import math, torch, vaecourse as vc
vc.set_seed(0)
model = vc.VAE(64, 2, hidden=(16,))
before = [p.detach().clone() for p in model.parameters()]
x = torch.rand(32, 64)
history = vc.train(model, x, epochs=1, batch_size=32, progress=False, device="cpu")
changed = sum(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
assert len(history["loss"]) == 1 and math.isfinite(history["loss"][0]), history
assert changed == len(before), f"{changed} of {len(before)} parameter tensors changed after one step"
print(vc.__version__, vc.__file__, history["loss"][0])
"""


def test_wheel_holds_only_the_package(dist):
    _, wheel = dist
    assert wheel.name == f"vaecourse-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta = email.message_from_bytes(zf.read(f"vaecourse-{VERSION}.dist-info/METADATA"))
    tops = {n.split("/", 1)[0] for n in names}
    packages = ("vaecourse", "coursekit")
    assert tops == {*packages, f"vaecourse-{VERSION}.dist-info"}, f"the wheel holds more than the packages: {tops}"
    sources = {p.relative_to(ROOT).as_posix() for pkg in packages for p in (ROOT / pkg).rglob("*.py")}
    missing = sources - set(names)
    assert not missing, f"package modules missing from the wheel: {sorted(missing)}"
    assert "coursekit/live.py" in names and "vaecourse/__init__.py" in names
    assert meta["Name"] == "vaecourse" and meta["Version"] == VERSION
    requires = {
        r.split(";")[0].split(">")[0].split("=")[0].split("<")[0].strip() for r in meta.get_all("Requires-Dist")
    }
    assert {"torch", "numpy", "matplotlib"} <= requires, requires


def test_sdist_holds_what_builds_the_package(dist):
    sdist, _ = dist
    with tarfile.open(sdist) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    for needed in ("pyproject.toml", "README.md", "LICENSE", "PKG-INFO", "vaecourse/__init__.py", "coursekit/live.py"):
        assert needed in names, f"the sdist lacks {needed}"
    stray = sorted(
        n for n in names if n.split("/", 1)[0] in ("tests", "book", "solutions", "autograder", "benchmarks", ".venv")
    )
    assert not stray, f"the sdist holds files the package does not need: {stray[:10]}"


def test_wheel_installs_into_a_fresh_venv_and_trains(dist, borrowed, tmp_path):
    _, wheel = dist
    python = fresh_venv(tmp_path / "venv", borrowed)
    work = tmp_path / "elsewhere"  # not the repository: its vaecourse/ folder must not be what is imported
    work.mkdir()
    assert not _has_vaecourse(python, work), "the fresh environment already sees a vaecourse"
    _run([str(python), "-m", "pip", "install", "--quiet", str(wheel)], cwd=work, env=_env())
    out = _run([str(python), "-c", CHECK], cwd=work, env=_env()).stdout.split()
    version, file = out[0], Path(out[1])
    assert version == VERSION
    assert file.is_relative_to(tmp_path / "venv"), f"imported {file}, not the installed wheel"
    # the second package comes with it: the exercises' test helpers and the students' check
    code = "import coursekit.grading as vg; print(vg.__file__, vg.error(vg.randn(3, seed=0), vg.randn(3, seed=1)))"
    file, err = _run([str(python), "-c", code], cwd=work, env=_env()).stdout.split()
    assert Path(file).is_relative_to(tmp_path / "venv") and 0 < float(err) < math.inf, (file, err)
    usage = _run([str(python), "-m", "coursekit.check", "--help"], cwd=work, env=_env()).stdout
    assert usage.startswith("usage: python -m coursekit.check"), usage


def test_install_cell_installs_a_wheel_where_vaecourse_is_missing(dist, borrowed, tmp_path):
    """The chapters' install cell, as written in book/_static/live/install_cell.py, pointed at the wheel."""
    _, wheel = dist
    cell = booklaunch.CELL_FILE
    python = fresh_venv(tmp_path / "venv", borrowed)
    work = tmp_path / "nb"
    work.mkdir()
    _run([str(python), str(cell)], cwd=work, env=_env(VAECOURSE_PIP_SOURCE=str(wheel)))
    assert _has_vaecourse(python, work)
    _run([str(python), "-c", CHECK], cwd=work, env=_env())
    # Where vaecourse is installed, the cell does nothing (a source that cannot be installed is not used).
    again = _run([str(python), str(cell)], cwd=work, env=_env(VAECOURSE_PIP_SOURCE=str(tmp_path / "missing.whl")))
    assert again.stdout == again.stderr == ""


def test_install_cell_without_a_source_says_what_to_do(borrowed, tmp_path):
    python = fresh_venv(tmp_path / "venv", borrowed)
    cell = tmp_path / "cell.py"
    cell.write_text(booklaunch.install_cell_source(""))
    proc = subprocess.run([str(python), str(cell)], capture_output=True, text=True, cwd=tmp_path, env=_env())
    assert proc.returncode != 0
    assert "ImportError: vaecourse is not installed" in proc.stderr and "VAECOURSE_PIP_SOURCE" in proc.stderr


def test_install_cell_installs_from_the_repository_git_url(borrowed, tmp_path):
    """With repository.url set, the cell installs ``git+<url>@<branch>``: here the local clone's committed HEAD."""
    branch = _run(["git", "-C", str(ROOT), "rev-parse", "--abbrev-ref", "HEAD"]).stdout.strip()
    if branch == "HEAD":
        pytest.skip("detached HEAD: no branch for the git URL")
    python = fresh_venv(tmp_path / "venv", borrowed)
    cell = tmp_path / "cell.py"
    cell.write_text(booklaunch.install_cell_source(ROOT.as_uri(), branch))
    assert f'default = "git+{ROOT.as_uri()}@{branch}"' in cell.read_text()
    _run([str(python), str(cell)], cwd=tmp_path, env=_env(), timeout=600)
    out = _run([str(python), "-c", CHECK], cwd=tmp_path, env=_env()).stdout.split()
    assert out[0] == VERSION and Path(out[1]).is_relative_to(tmp_path / "venv")
