"""The Python side of the book's live figures (coursekit/live.py) and the repository-URL settings.

    export round trip      the JSON's float32 weights, run by the page's forward pass (``live.decode``,
                           the same arithmetic as live.js), give the torch decoder's output within 1e-6
    pixels                 the grey levels the page draws, against the torch decoder
    results                precomputed results (the beta / sigma_x^2 view) and ``collapse_results``
    HTML snippet           well-formed, its data and options read back, nothing escapes the <script>
    install cell           book/_static/live/install_cell.py is the cell for the configured repository URL
    launch buttons         a small book built with and without ``repository.url`` (jupyter-book): Binder,
                           Colab, JupyterHub, repository and issues buttons appear only with it
The browser side (the page's canvas against ``live.pixels``) is in tests/test_browser.py.
"""

import copy
import functools
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import yaml

import vaecourse as vc
from coursekit import live

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import booklaunch  # noqa: E402

EXAMPLE_URL = "https://github.com/example-org/vaecourse"
HUB_URL = "https://hub.example.edu"


def _torch_mean(model, z, y=None):
    with torch.no_grad():
        return model.decode_mean(torch.as_tensor(z, dtype=torch.float32), y).double().numpy()


# ---------------------------------------------------------------------------------------------- decoder
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(x_dim=784, z_dim=2, hidden=(400,)),
        dict(x_dim=64, z_dim=3, hidden=(32, 16), activation="tanh"),
        dict(x_dim=64, z_dim=2, hidden=(24,), activation="gelu"),
        dict(x_dim=64, z_dim=2, hidden=(24,), activation="elu", likelihood="gaussian", obs_logvar=0.0),
        dict(x_dim=64, z_dim=2, hidden=(24,), activation="softplus"),
        dict(x_dim=64, z_dim=2, hidden=(24,), activation=functools.partial(nn.LeakyReLU, 0.2)),
        dict(x_dim=64, z_dim=4, hidden=(16,), decoder_hidden=()),
    ],
    ids=["mnist-2d", "tanh-2-layers", "gelu", "elu-gaussian", "softplus", "leaky", "linear-decoder"],
)
def test_export_round_trip_reproduces_the_decoder(tmp_path, kwargs):
    vc.set_seed(1)
    model = vc.VAE(**kwargs)
    for p in model.decoder.parameters():  # trained decoders have larger weights than a fresh one
        p.data.mul_(3)
    path = tmp_path / "dec.json"
    live.export_decoder(model, path)
    text = path.read_text()
    assert "\n" not in text and " " not in text  # compact
    spec = live.load(path)
    z = torch.randn(200, model.z_dim) * 3
    got = live.decode(spec, z.numpy())
    # The same weights in float64 torch: only the page's arithmetic differs (GELU's erf: 1.5e-7).
    exact = copy.deepcopy(model).double()
    with torch.no_grad():
        want = exact.decode_mean(z.double()).numpy()
    err = np.abs(got - want).max()
    assert err <= 1e-6, f"the exported decoder differs from torch (float64) by {err:.3g}"
    # The model as trained (float32 sums): within float32 rounding of a few hundred terms.
    err32 = np.abs(got - _torch_mean(model, z)).max()
    assert err32 <= 1e-5, f"the exported decoder differs from the float32 model by {err32:.3g}"
    # float32 on disk: the weights come back bit for bit
    first = next(layer for layer in spec["layers"] if layer["type"] == "linear")
    w = np.frombuffer(__import__("base64").b64decode(first["weight"]), "<f4").reshape(first["out"], first["in"])
    assert np.array_equal(w, model.decoder[0].weight.detach().numpy())
    assert spec["layers"][-1]["type"] == ("sigmoid" if model.likelihood == "bernoulli" else "identity")


def test_mnist_decoder_file_is_compact(tmp_path):
    model = vc.VAE(784, 2, hidden=(400,))
    path = tmp_path / "d.json"
    live.export_decoder(model, path)
    n = sum(p.numel() for p in model.decoder.parameters())
    assert n == 2 * 400 + 400 + 400 * 784 + 784
    assert path.stat().st_size < 4 * n * 4 / 3 + 2000  # base64 float32, plus a little JSON


def test_conditional_decoder_folds_the_label_in():
    vc.set_seed(2)
    model = vc.VAE(64, 2, hidden=(20,), cond_dim=10)
    y = torch.nn.functional.one_hot(torch.tensor(3), 10).float()
    spec = live.decoder_spec(model, y=y)
    z = torch.randn(50, 2)
    assert np.abs(live.decode(spec, z.numpy()) - _torch_mean(model, z, y.expand(50, 10))).max() <= 1e-6
    other = _torch_mean(model, z, torch.nn.functional.one_hot(torch.tensor(4), 10).float().expand(50, 10))
    assert np.abs(live.decode(spec, z.numpy()) - other).max() > 1e-3
    with pytest.raises(ValueError, match="^y: a conditional model"):
        live.decoder_spec(model)
    with pytest.raises(ValueError, match="y must have 10 entries"):
        live.decoder_spec(model, y=torch.ones(3))


def test_pixels_are_the_decoder_mean_in_grey_levels():
    vc.set_seed(3)
    model = vc.VAE(784, 2, hidden=(400,))
    for p in model.decoder.parameters():
        p.data.mul_(4)
    spec = live.decoder_spec(model)
    z = torch.tensor([[0.7, -1.3], [2.5, 2.5]])
    levels = live.pixels(spec, z.numpy())
    assert levels.shape == (2, 28, 28) and levels.dtype == np.uint8
    want = np.clip(_torch_mean(model, z), 0, 1).reshape(2, 28, 28) * 255
    assert np.abs(levels - want).max() <= 0.5 + 1e-4  # rounding only
    assert levels.min() < 50 and levels.max() > 200  # the scaled decoder draws a real image, not a flat grey
    assert live.pixels(spec, z[0].numpy()).shape == (28, 28)
    assert np.array_equal(live.pixels(spec, [0.0, 0.0]), live.pixels(spec, np.zeros((1, 2)))[0])


def test_bad_models_are_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="^model must be a vc.VAE"):
        live.decoder_spec(vc.LinearGaussianVAE(6, 2))
    model = vc.VAE(64, 2, hidden=(8,))
    model.decoder[1] = nn.Hardswish()
    with pytest.raises(ValueError, match=r"model.decoder\[1\] is a Hardswish"):
        live.decoder_spec(model)

    class Shifted(vc.VAE):
        def decode_mean(self, z, y=None):
            return super().decode_mean(z, y) * 0.5

    with pytest.raises(ValueError, match="its decode_mean differs from the exported decoder"):
        live.decoder_spec(Shifted(64, 2, hidden=(8,)))
    with pytest.raises(ValueError, match="image_shape"):
        live.decoder_spec(vc.VAE(60, 2, hidden=(8,)))
    assert live.decoder_spec(vc.VAE(60, 2, hidden=(8,)), image_shape=(6, 10))["image_shape"] == [6, 10]
    spec = live.decoder_spec(vc.VAE(64, 2, hidden=(8,)))
    with pytest.raises(ValueError, match=r"z must have shape \(\.\.\., 2\)"):
        live.decode(spec, np.zeros(3))


# ---------------------------------------------------------------------------------------------- results
def _settings(z=6, n=4, d=64):
    gen = torch.Generator().manual_seed(0)
    return {
        beta: {
            "images": torch.rand(n, d, generator=gen),
            "kl_per_dim": torch.rand(z, generator=gen) * beta,
            "active_units": i + 1,
            "stats": {"KL (nats)": 3.0 * beta, "ELBO (nats)": -90.5},
        }
        for i, beta in enumerate((0.5, 1.0, 4.0))
    }


def test_results_round_trip(tmp_path):
    settings = _settings()
    spec = live.export_results(settings, tmp_path / "r.json", label="beta", threshold=0.01)
    back = live.load(tmp_path / "r.json")
    assert back == spec
    assert [s["label"] for s in back["settings"]] == ["beta = 0.5", "beta = 1", "beta = 4"]
    for i, entry in enumerate(settings.values()):
        levels = live.result_levels(back, i)
        assert levels.shape == (4, 8, 8)
        assert np.abs(levels - entry["images"].numpy().reshape(4, 8, 8) * 255).max() <= 0.5 + 1e-4
        assert np.allclose(back["settings"][i]["kl_per_dim"], entry["kl_per_dim"].numpy(), rtol=1e-5)
        assert back["settings"][i]["active_units"] == entry["active_units"]


def test_results_errors_name_the_argument():
    good = _settings()
    with pytest.raises(ValueError, match="settings must be a non-empty dict"):
        live.results_spec({})
    bad = copy.deepcopy(good)
    del bad[1.0]["kl_per_dim"]
    with pytest.raises(ValueError, match=r"settings\[1\.0\] lacks kl_per_dim"):
        live.results_spec(bad)
    bad = copy.deepcopy(good)
    bad[4.0]["images"] = torch.rand(3, 64)
    with pytest.raises(ValueError, match=r"settings\[4\.0\]\['images'\] has shape \(3, 64\)"):
        live.results_spec(bad)
    bad = copy.deepcopy(good)
    bad[0.5]["active_units"] = 7
    with pytest.raises(ValueError, match=r"active_units'\] must be an int in 0..6"):
        live.results_spec(bad)
    bad = copy.deepcopy(good)
    bad[0.5]["kl_per_dim"][0] = float("nan")
    with pytest.raises(ValueError, match="not finite"):
        live.results_spec(bad)


def test_collapse_results_measure_each_model():
    vc.set_seed(0)
    x = vc.load_digits().x_train[:300]
    models = {}
    for beta in (0.5, 8.0):
        m = vc.VAE(64, 4, hidden=(32,))
        vc.train(m, x, epochs=3, batch_size=100, beta=beta, progress=False, device="cpu")
        models[beta] = m
    res = live.collapse_results(models, x, x[:5], n_samples=3)
    for beta, m in models.items():
        r = res[beta]
        assert r["images"].shape == (8, 64)
        assert torch.allclose(r["images"][:5], m.reconstruct(x[:5]).clamp(0, 1))
        assert r["active_units"] == vc.active_units(m, x)
        with torch.no_grad():
            mu, logvar = m.encode(x)
            kl = vc.gaussian_kl_per_dim(mu, logvar).mean(0)
        assert torch.allclose(r["kl_per_dim"], kl.sort(descending=True).values)
        assert r["stats"]["KL (nats)"] == pytest.approx(float(kl.sum()), rel=1e-5)
    assert res[0.5]["stats"]["KL (nats)"] > res[8.0]["stats"]["KL (nats)"]  # a heavier KL price buys less KL
    live.results_spec(res, label="beta")  # accepted as it is


# ---------------------------------------------------------------------------------------------- HTML
class _Tree(HTMLParser):
    """Checks nesting and collects the elements and the text of <script> elements."""

    VOID = {"input", "br", "img", "meta", "link", "hr"}

    def __init__(self):
        super().__init__()
        self.stack, self.elements, self.scripts, self.errors = [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)
        if tag == "script":
            self.scripts.append("")

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        if self.stack and self.stack[-1] == "script":
            self.scripts[-1] += data


def _parse(text):
    tree = _Tree()
    tree.feed(text)
    tree.close()
    assert not tree.errors and not tree.stack, (tree.errors, tree.stack)
    return tree


def test_latent_snippet_is_well_formed(tmp_path):
    model = vc.VAE(784, 2, hidden=(400,))
    fig = live.latent_explorer(model, "ch04-latent", out_dir=tmp_path, extent=2.5, step=0.05)
    assert fig.path == tmp_path / "ch04-latent.json" and live.load(fig.path)["z_dim"] == 2
    tree = _parse(fig._repr_html_())
    tag, attrs = tree.elements[0]
    assert tag == "div" and attrs["data-vc-live"] == "latent" and "vc-live" in attrs["class"].split()
    assert attrs["data-src"] == "data/ch04-latent.json" and attrs["role"] == "figure" and attrs["aria-label"]
    assert json.loads(attrs["data-options"]) == {"dims": [0, 1], "pad": [0, 1], "extent": 2.5, "step": 0.05}
    assert any("vc-live-fallback" in a.get("class", "") for _, a in tree.elements)
    assert "Latent explorer" in repr(fig) and "ch04-latent.json" in repr(fig)


def test_inline_snippet_cannot_break_out_of_its_script():
    settings = _settings()
    settings[1.0]["caption"] = "</script><script>alert(1)</script> & <b>"
    fig = live.results_explorer(settings, "x", label="beta", inline=True)
    tree = _parse(fig.html)
    assert fig.path is None
    assert [t for t, _ in tree.elements].count("script") == 1
    (_, attrs), data = next(e for e in tree.elements if e[0] == "script"), tree.scripts[0]
    assert attrs == {"type": "application/json", "class": "vc-live-data"}
    spec = json.loads(data)
    assert spec["settings"][1]["caption"] == settings[1.0]["caption"]
    assert spec == live.results_spec(_settings() | {1.0: settings[1.0]}, label="beta")


def test_figure_arguments_are_checked(tmp_path, monkeypatch):
    monkeypatch.delenv("VAECOURSE_LIVE_DIR", raising=False)
    model = vc.VAE(64, 3, hidden=(8,))
    with pytest.raises(ValueError, match="^name must be"):
        live.latent_explorer(model, "../evil", out_dir=tmp_path)
    with pytest.raises(ValueError, match="^pad must be two different entries of dims"):
        live.latent_explorer(model, "a", out_dir=tmp_path, dims=[0, 1], pad=(0, 2))
    with pytest.raises(ValueError, match="^dims must be latent dimensions in 0..2"):
        live.latent_explorer(model, "a", out_dir=tmp_path, dims=[3])
    with pytest.raises(ValueError, match="^extent must be > 0"):
        live.latent_explorer(model, "a", out_dir=tmp_path, extent=0)
    with pytest.raises(ValueError, match="^src must be a URL"):
        live.snippet("latent", src='x" onload="alert(1)')
    with pytest.raises(ValueError, match="exactly one of src"):
        live.snippet("results")
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        with pytest.raises(ValueError, match="^out_dir: no _static/ folder"):
            live.latent_explorer(model, "a")
        (tmp_path / "_static").mkdir()
        assert live.latent_explorer(model, "a").path == tmp_path / "_static" / "live" / "data" / "a.json"
    finally:
        os.chdir(cwd)


def test_the_environment_can_send_the_json_elsewhere(tmp_path, monkeypatch):
    """VAECOURSE_LIVE_DIR (set by `make test` for the chapters) redirects the default folder, not an out_dir."""
    model = vc.VAE(64, 2, hidden=(8,))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "_static").mkdir()
    monkeypatch.setenv("VAECOURSE_LIVE_DIR", str(tmp_path / "scratch"))
    fig = live.latent_explorer(model, "a")
    assert fig.path == tmp_path / "scratch" / "a.json" and fig.path.is_file()
    assert not (tmp_path / "_static" / "live").exists() and 'data-src="data/a.json"' in fig.html
    assert live.latent_explorer(model, "b", out_dir=tmp_path / "x").path == tmp_path / "x" / "b.json"


def test_kl_snippet_embeds_its_start_and_names_the_kl():
    fig = live.kl_explorer(torch.tensor([2.0, 0.0]), torch.tensor([0.25, 4.0]))
    tree = _parse(fig._repr_html_())
    tag, attrs = tree.elements[0]
    assert tag == "div" and attrs["data-vc-live"] == "kl" and attrs["role"] == "figure" and attrs["aria-label"]
    spec = json.loads(tree.scripts[0])
    assert spec == {"format": live.KL_FORMAT, "mu": [2.0, 0.0], "var": [0.25, 4.0], "extent": 3.0,
                    "var_min": 0.05, "var_max": 5.0, "step": 0.05}  # fmt: skip
    assert fig.path is None and "KL = 3.125 nats (2.318, 0.807)" in repr(fig)
    fallback = next(a for t, a in tree.elements if "vc-live-fallback" in a.get("class", ""))
    assert fallback and "next cell" not in fig.html  # no notebook widget to point to


@pytest.mark.parametrize(
    "kwargs, says",
    [
        (dict(mu=[float("nan")], var=[1.0]), "^mu must be a finite number"),
        (dict(mu=[0.0], var=[-1.0]), "^var must be > 0"),
        (dict(mu=[0.0, 1.0], var=[1.0]), "^mu and var must hold the same number"),
        (dict(mu=[0.0] * 5, var=[1.0] * 5), "^mu and var must hold the same number"),
        (dict(mu=[4.0], var=[1.0]), r"^mu must lie in \[-3, 3\]"),
        (dict(mu=[0.0], var=[1.0], var_range=(2.0, 1.0)), "^var_range must be"),
        (dict(mu=[0.0], var=[1.0], var_range=(1.0,)), "^var_range must be"),
        (dict(mu="abc", var=[1.0]), "^mu must be real numbers"),
        (dict(mu=None, var=[1.0]), "^mu must be real numbers"),
        (dict(mu=[True], var=[1.0]), "^mu must be real numbers"),
        (dict(mu=[0.0], var=[1.0], extent="x"), "^extent must be a finite number"),
        (dict(mu=[0.0], var=[1.0], step=0), "^step must be > 0"),
    ],
)
def test_kl_explorer_arguments_are_checked(kwargs, says):
    with pytest.raises(ValueError, match=says):
        live.kl_explorer(**kwargs)


def test_samples_spec_bins_every_value_on_one_axis(tmp_path):
    gen = torch.Generator().manual_seed(0)
    draws = {k: torch.randn(500, generator=gen, dtype=torch.float64) / k for k in (1, 4, 16)}
    spec = live.samples_spec(draws, label="K", x_label="estimate", lines={"log p(x)": 0.25}, bins=30)
    assert spec["format"] == live.SAMPLES_FORMAT and [s["label"] for s in spec["settings"]] == [
        "K = 1",
        "K = 4",
        "K = 16",
    ]
    edges = np.array(spec["edges"])
    assert len(edges) == 31 and edges[0] < draws[1].min() and edges[-1] > draws[1].max()
    for i, values in enumerate(draws.values()):
        assert np.array_equal(spec["settings"][i]["values"], values.numpy().round(4))
        assert np.array_equal(live.samples_counts(spec, i), np.histogram(values.numpy().round(4), bins=edges)[0])
        assert live.samples_counts(spec, i).sum() == 500
    fig = live.samples_explorer(spec, "s", label="K", x_label="estimate", inline=True)
    tree = _parse(fig.html)
    assert tree.elements[0][1]["data-vc-live"] == "samples" and json.loads(tree.scripts[0]) == spec
    assert "3 settings (K = 1, K = 4, K = 16)" in repr(fig) and "log p(x) (0.25)" in repr(fig)
    kwargs = dict(label="K", x_label="estimate", lines={"log p(x)": 0.25}, bins=30)
    fig = live.samples_explorer(draws, "ch06", **kwargs, out_dir=tmp_path)  # a file, as the chapter writes
    assert fig.path == tmp_path / "ch06.json" and json.loads(fig.path.read_text()) == spec
    assert _parse(fig.html).elements[0][1]["data-src"] == "data/ch06.json" and "ch06.json" in repr(fig)


@pytest.mark.parametrize(
    "settings, kwargs, says",
    [
        ({}, {}, "^settings must be a non-empty"),
        ({1: [0.0]}, {}, r"^settings\[1\] must hold at least 2 finite values"),
        ({1: [0.0, float("inf")]}, {}, r"^settings\[1\] must hold at least 2 finite values"),
        ({1: [0.0, 1.0]}, {"bins": 1}, "^bins must be a whole number"),
        ({1: [0.0, 1.0]}, {"lines": {"x": float("nan")}}, r"^lines\['x'\] must be a finite number"),
        ({1: [0.0, 1.0]}, {"lines": [1.0, 2.0]}, "^lines must be a"),
        ({1: "abc"}, {}, r"^settings\[1\] must be real numbers"),
    ],
)
def test_samples_spec_arguments_are_checked(settings, kwargs, says):
    with pytest.raises(ValueError, match=says):
        live.samples_spec(settings, label="K", x_label="x", **kwargs)


# ---------------------------------------------------------------------------------------------- the URL
def test_install_cell_file_matches_the_configured_repository():
    url, branch = booklaunch.repository()
    assert booklaunch.CELL_FILE.read_text() == booklaunch.install_cell_source(url, branch), (
        "book/_static/live/install_cell.py is not the cell for _config.yml's repository url: "
        "run `python book/_ext/booklaunch.py --write`"
    )
    compile(booklaunch.CELL_FILE.read_text(), "install_cell.py", "exec")


def _chapters():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    return [ROOT / f"{f}.ipynb" for f in files if (ROOT / f"{f}.ipynb").is_file() and "/exercises/" not in f]


@pytest.mark.parametrize("path", _chapters(), ids=lambda p: p.stem)
def test_every_chapter_that_imports_vaecourse_opens_with_the_install_cell(path):
    cells = json.loads(path.read_text())["cells"]
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    if not any(re.search(r"^\s*(import|from) vaecourse", src, re.M) for src in code):
        pytest.skip(f"{path.name} does not import vaecourse")
    first = next(c for c in cells if c["cell_type"] == "code")
    assert booklaunch.INSTALL_TAG in first["metadata"].get("tags", []), (
        f"{path.name}: the first code cell is not the install cell (tag {booklaunch.INSTALL_TAG!r}): a reader "
        "who opens the chapter in Colab would meet ModuleNotFoundError"
    )
    source, cell = "".join(first["source"]).rstrip("\n"), booklaunch.CELL_FILE.read_text().rstrip("\n")
    assert "remove-cell" in first["metadata"]["tags"] and source == cell, f"{path.name}: the install cell is stale"


def test_vaecourse_stands_without_coursekit():
    """The package a student reads imports nothing of the course's machinery (live figures, grading)."""
    code = "import sys, vaecourse; print(sorted(m for m in sys.modules if m.split('.')[0] == 'coursekit'))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", (proc.stdout, proc.stderr[-2000:])
    assert not hasattr(vc, "live")


def test_install_cell_follows_the_url(tmp_path):
    assert booklaunch.pip_source("") is None
    assert booklaunch.pip_source(EXAMPLE_URL + ".git", "dev") == f"git+{EXAMPLE_URL}@dev"
    cell = booklaunch.install_cell_source(EXAMPLE_URL + "/", "main")
    assert f'default = "git+{EXAMPLE_URL}@main"' in cell and "default = None" in booklaunch.install_cell_source("")
    nb = tmp_path / "ch.ipynb"
    cells = [{"cell_type": "code", "metadata": {"tags": ["remove-cell", booklaunch.INSTALL_TAG]}, "source": cell}]
    nb.write_text(json.dumps({"cells": cells}))
    assert booklaunch.stale(EXAMPLE_URL, "main", [nb], cell_file=None) == []
    assert booklaunch.stale("https://github.com/other/vaecourse", "main", [nb], cell_file=None) == [f"{nb} cell 0"]


def _jupyter_book():
    exe = Path(sys.executable).parent / "jupyter-book"
    return str(exe) if exe.is_file() else shutil.which("jupyter-book")


def build_small_book(where, url, live_figures=()):
    """A one-notebook book with this repository's _config.yml (``repository.url`` = ``url``), built with -W.

    ``live_figures``: LiveFigure objects shown as the notebook's outputs; their JSON files (in the
    default place, ``_static/live/data`` under the book's folder) are copied with the page.
    Returns the HTML folder.
    """
    jb = _jupyter_book()
    if jb is None:
        pytest.skip("jupyter-book is not installed")
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    cfg["repository"]["url"] = url
    cfg["launch_buttons"]["jupyterhub_url"] = HUB_URL if url else ""
    sphinx = cfg["sphinx"]["config"]
    sphinx["html_static_path"] = [str(ROOT / "book" / "_static"), str(where / "book" / "_static")]
    sphinx["html_favicon"] = str(ROOT / sphinx["html_favicon"])
    cfg["sphinx"]["local_extensions"] = {k: str(ROOT / v) for k, v in cfg["sphinx"]["local_extensions"].items()}
    cfg["bibtex_bibfiles"] = [str(ROOT / f) for f in cfg["bibtex_bibfiles"]]
    (where / "book" / "_static").mkdir(parents=True, exist_ok=True)
    (where / "_config.yml").write_text(yaml.safe_dump(cfg))
    (where / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: book/live\n")
    (where / "intro.md").write_text("# A small book\n\nOne notebook page follows.\n")
    install = booklaunch.install_cell_source(url, cfg["repository"].get("branch", "main"))
    outputs = [
        {"output_type": "display_data", "metadata": {}, "data": {"text/html": f.html, "text/plain": repr(f)}}
        for f in live_figures
    ]
    cells = [
        {"cell_type": "code", "metadata": {"tags": ["remove-cell", booklaunch.INSTALL_TAG]}, "source": install,
         "outputs": [], "execution_count": 1},
        {"cell_type": "markdown", "metadata": {}, "source": "# Live figures\n\nThe figures below run in the page."},
        {"cell_type": "code", "metadata": {}, "source": "show_the_live_figures()", "outputs": outputs,
         "execution_count": 2},
    ]  # fmt: skip
    nb = {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
          "language": "python"}}, "nbformat": 4, "nbformat_minor": 5}  # fmt: skip
    (where / "book" / "live.ipynb").write_text(json.dumps(nb))
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run(
        [jb, "build", str(where), "-W", "-n", "--keep-going"], cwd=where, env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    log = proc.stdout + proc.stderr
    problems = [line for line in log.splitlines() if "WARNING" in line or "ERROR" in line]
    assert proc.returncode == 0 and not problems, "the small book's build failed:\n" + "\n".join(
        problems or [log[-3000:]]
    )
    return where / "_build" / "html"


LAUNCH = {
    "Binder": "https://mybinder.org/v2/gh/example-org/vaecourse/main?urlpath=lab/tree/book/live.ipynb",
    "Colab": "https://colab.research.google.com/github/example-org/vaecourse/blob/main/book/live.ipynb",
    "JupyterHub": f"{HUB_URL}/hub/user-redirect/git-pull?repo={EXAMPLE_URL.replace(':', '%3A')}"
    "&urlpath=lab/tree/vaecourse/book/live.ipynb&branch=main",
}  # fmt: skip


def _links(page):
    return [m.replace("&amp;", "&") for m in re.findall(r'<a[^>]+href="([^"]+)"', page)]


@pytest.mark.slow
@pytest.mark.parametrize("url", [EXAMPLE_URL, ""], ids=["url-set", "url-unset"])
def test_launch_buttons_follow_the_repository_url(tmp_path, url):
    html_dir = build_small_book(tmp_path, url)
    page = (html_dir / "book" / "live.html").read_text()
    links = _links(page)
    if url:
        for name, href in LAUNCH.items():
            assert href in links, f"no {name} launch button linking {href}; launch links: " + str(
                [h for h in links if "mybinder" in h or "colab" in h or "hub" in h]
            )
        assert EXAMPLE_URL in links, "no repository button"
        assert any(h.startswith(EXAMPLE_URL + "/issues/new") for h in links), "no issues button"
    else:
        launch = [h for h in links if re.search(r"mybinder|colab|/hub/|github\.com", h)]
        assert not launch, f"buttons without a repository URL: {launch}"
        assert "btn-launch" not in page and "Launch on" not in page
