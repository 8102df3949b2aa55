"""The built HTML book, read as a reader reads it: headless Chromium (Selenium) over a local HTTP server.

Every page listed in ``_toc.yml`` is loaded once from ``_build/html`` (served on 127.0.0.1); per page:
    test_page_loads_cleanly        no SEVERE console errors
    test_page_needs_no_network     nothing fetched from other hosts (MathJax is vendored: works offline)
    test_page_fits_laptop_width    no sideways page scroll at 1280 px (code wider than the column: a warning)
    test_links_and_images_resolve  internal links, ``#anchors`` and images exist; images load
    test_figures_and_widgets_show  every figure stored in the notebook is shown; live figures are drawn; a
                                   page whose notebook has an ipywidgets explorer carries a live figure
                                   (coursekit.live) or a static view with the "Static view" note
    test_figures_have_alt_text     every output image's alt text says what it shows (not its file path)
    test_equations_render          MathJax typeset every equation, with no TeX error (skips, saying so,
                                   where MathJax could not be loaded)
Without a browser:
    test_no_solutions_in_build     no solution, hidden test or mark scheme from ``solutions/`` in ``_build/``
    test_exercise_pages_are_student_versions   ("YOUR CODE HERE"), and each is a page of the book
Screenshots of the intro, one chapter and one exercise go to ``artifacts/screenshots/`` (git-ignored).

Needs Debian's ``chromium`` and ``chromium-driver`` (``/usr/bin/chromium``, ``/usr/bin/chromedriver``);
without them the browser tests skip and say why. If ``_build/html`` is missing or older than a page's
source, the book is built first. Run alone: ``.venv/bin/pytest -m browser tests/test_browser.py``.
"""

import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from functools import partial
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"
HTML = BUILD / "html"
SHOTS = ROOT / "artifacts" / "screenshots"
SOURCE_SUFFIXES = (".ipynb", ".md", ".rst")
BROWSER_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
)
# (begin, end) markers of text that nbgrader removes from the student version.
SECRET_MARKERS = (
    ("BEGIN SOLUTION", "END SOLUTION"),
    ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS"),
    ("BEGIN MARK SCHEME", "END MARK SCHEME"),
)
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_CALL = re.compile(r"\b(latent_explorer|value_explorer)\s*\(")
# What a reader should never see in an output: the repr of a figure, artist or widget instead of the thing.
RAW_REPR = re.compile(
    r"<Figure size \d|<matplotlib\.|\b(?:HBox|VBox|FloatSlider|IntSlider|SelectionSlider|"
    r"Output)\((?:children|value|layout|outputs|options)="
)


# ---------------------------------------------------------------------------------------------- the TOC
def toc_docnames():
    """Docnames (paths without suffix, relative to the repo root) of every page in _toc.yml, in order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    names = []

    def add(name):
        name = str(name)
        for suffix in SOURCE_SUFFIXES:
            name = name.removesuffix(suffix)
        if name not in names:
            names.append(name)

    def walk(node):
        if isinstance(node, list):
            for child in node:
                walk(child)
        elif isinstance(node, dict):
            if "root" in node:
                add(node["root"])
            if "file" in node:
                add(node["file"])
            if "glob" in node:
                for path in sorted(ROOT.glob(node["glob"])):
                    if path.suffix in SOURCE_SUFFIXES:
                        add(path.relative_to(ROOT).with_suffix("").as_posix())
            for key in ("parts", "chapters", "sections", "subtrees", "entries"):
                walk(node.get(key))

    walk(toc)
    return names


def source_of(docname):
    for suffix in SOURCE_SUFFIXES:
        path = ROOT / (docname + suffix)
        if path.is_file():
            return path
    return None


def read_notebook(path):
    return json.loads(path.read_text(encoding="utf-8")) if path and path.suffix == ".ipynb" else None


def cell_text(cell):
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def tags(cell):
    return set(cell.get("metadata", {}).get("tags", []))


PAGES = toc_docnames()
EXERCISE_PAGES = [d for d in PAGES if d.startswith("book/exercises/") and (ROOT / (d + ".ipynb")).is_file()]


# ---------------------------------------------------------------------------------------------- fixtures
def _jupyter_book():
    exe = Path(sys.executable).parent / "jupyter-book"
    return str(exe) if exe.is_file() else shutil.which("jupyter-book")


@pytest.fixture(scope="session")
def built_book():
    """_build/html, built here if it is missing or older than one of its pages' sources."""
    stale = [
        d
        for d in PAGES
        if source_of(d)
        and (
            not (HTML / (d + ".html")).is_file()
            or source_of(d).stat().st_mtime > (HTML / (d + ".html")).stat().st_mtime
        )
    ]
    if (HTML / "index.html").is_file() and not stale:
        return HTML
    jb = _jupyter_book()
    if jb is None:
        pytest.fail("_build/html is missing or stale and jupyter-book is not installed: run `make book` first")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run(
        [jb, "build", str(ROOT), "-W", "-n", "--keep-going"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    log = proc.stdout + proc.stderr
    problems = "\n".join(line for line in log.splitlines() if "WARNING" in line or "ERROR" in line) or log[-3000:]
    if not (HTML / "index.html").is_file():
        pytest.fail(f"`jupyter-book build . -W -n --keep-going` wrote no book (rc={proc.returncode}):\n{problems}")
    if proc.returncode != 0:  # `make book` fails on these; the pages were still written, so check them
        warnings.warn(f"the book build reported problems (pages checked anyway):\n{problems}", stacklevel=1)
    return HTML


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def server(built_book):
    """Base URL of an HTTP server on 127.0.0.1 (free port) serving _build/html."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(built_book)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def _find(paths, names):
    for p in paths:
        if Path(p).is_file() and os.access(p, os.X_OK):
            return str(p)
    for n in names:
        if shutil.which(n):
            return shutil.which(n)
    return None


@pytest.fixture(scope="session")
def driver():
    """Headless Debian Chromium through chromedriver; skips (with the reason) when either is missing."""
    chromium = _find(["/usr/bin/chromium"], ["chromium", "chromium-browser"])
    chromedriver = _find(["/usr/bin/chromedriver"], ["chromedriver"])
    if not chromium or not chromedriver:
        pytest.skip(
            "headless Chromium not installed (Debian: apt-get install chromium chromium-driver); "
            "the built book was not checked in a browser"
        )
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="vaecourse-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in BROWSER_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        drv = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    except Exception as exc:  # a broken install should say so, not pass silently
        shutil.rmtree(profile, ignore_errors=True)
        pytest.fail(f"could not start headless Chromium ({chromium}, {chromedriver}): {exc}")
    drv.set_page_load_timeout(60)
    drv.set_script_timeout(60)
    yield drv
    drv.quit()
    shutil.rmtree(profile, ignore_errors=True)


# Waits for images (lazy ones made eager), web fonts and MathJax's first typeset, then calls back.
WAIT_JS = """
const done = arguments[arguments.length - 1];
document.querySelectorAll('img[loading="lazy"]').forEach(i => { i.loading = 'eager'; });
const waits = Array.from(document.images).filter(i => !i.complete).map(i => new Promise(r => {
  i.addEventListener('load', r, {once: true}); i.addEventListener('error', r, {once: true}); }));
if (window.MathJax && MathJax.startup && MathJax.startup.promise) waits.push(MathJax.startup.promise);
if (document.fonts) waits.push(document.fonts.ready);
Promise.all(waits).then(() => done(null), e => done(String(e)));
"""

COLLECT_JS = """
function texErrors() {  // TeX errors and (noundefined's red) undefined macros, from MathJax's internal trees
  const out = Array.from(document.querySelectorAll('mjx-merror')).map(e => e.getAttribute('data-mjx-error'));
  if (!(window.MathJax && MathJax.startup && MathJax.startup.document)) return out;
  out.length = 0;
  for (const item of MathJax.startup.document.math) {
    const bad = [];
    item.root.walkTree(node => {
      if (node.isKind('merror')) bad.push(node.attributes.get('data-mjx-error') || 'TeX error');
      else if (node.isKind('mtext') && node.attributes.get('mathcolor') === 'red')
        bad.push('undefined control sequence ' + node.childNodes.map(c => c.text || '').join(''));
    });
    if (bad.length) out.push(item.math.trim().slice(0, 80) + '  ->  ' + bad.join('; '));
  }
  return out;
}
const article = document.querySelector('article') || document.querySelector('main') || document.body;
const widgetViews = Array.from(article.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]'));
const mathNodes = Array.from(document.querySelectorAll('span.math, div.math'));
const resources = new Set(performance.getEntriesByType('resource').map(e => e.name));
document.querySelectorAll('script[src], link[rel~="stylesheet"][href], link[rel~="preload"][href], iframe[src]')
  .forEach(e => resources.add(e.src || e.href));
return {
  url: location.href,
  title: document.title,
  links: Array.from(document.querySelectorAll('a[href]')).map(a => ({href: a.href,
           text: (a.textContent || a.getAttribute('aria-label') || '').trim().slice(0, 60)})),
  images: Array.from(document.images).map(i => ({src: i.currentSrc || i.src, width: i.naturalWidth,
           output: !!i.closest('.cell_output, .output'), article: article.contains(i),
           alt: i.getAttribute('alt')})),
  liveFigures: Array.from(article.querySelectorAll('.vc-live')).map(e => ({
           kind: e.getAttribute('data-vc-live'), graphics: e.querySelectorAll('canvas, svg').length,
           label: e.getAttribute('aria-label') || ''})),
  resources: Array.from(resources),
  mathjax: !!(window.MathJax && window.MathJax.startup && window.MathJax.version),
  math: mathNodes.length,
  mathUnrendered: mathNodes.filter(e => !e.querySelector('mjx-container'))
                    .map(e => e.textContent.trim().slice(0, 80)),
  mjx: document.querySelectorAll('mjx-container').length,
  mathErrors: texErrors(),
  text: article.textContent.replace(/\\s+/g, ' '),
  outputs: Array.from(article.querySelectorAll('.cell_output')).map(e => e.textContent),
  wideCode: Array.from(article.querySelectorAll('div.highlight pre, .cell_output pre'))
              .filter(e => e.scrollWidth > e.clientWidth + 1)
              .map(e => e.textContent.split('\\n').reduce((a, b) => (b.length > a.length ? b : a), '').trim()),
  widgetViews: widgetViews.length,
  widgetsUnrendered: widgetViews.filter(e => !e.parentElement.querySelector('.jupyter-widgets')).length,
  scrollWidth: document.documentElement.scrollWidth,
  clientWidth: document.documentElement.clientWidth,
};
"""


def _load(drv, url):
    drv.get_log("browser")  # drop what earlier pages logged
    drv.get(url)
    deadline = time.time() + 30
    while drv.execute_script("return document.readyState") != "complete" and time.time() < deadline:
        time.sleep(0.05)
    err = drv.execute_async_script(WAIT_JS)
    return err


@pytest.fixture(scope="session")
def page(driver, server):
    """page(docname) -> what the browser saw on that page (each page is loaded once per session)."""
    seen = {}

    def get(docname):
        if docname not in seen:
            url = server + docname + ".html"
            t0 = time.time()
            wait_error = _load(driver, url)
            data = driver.execute_script(COLLECT_JS)
            data["console"] = driver.get_log("browser")
            data["wait_error"] = wait_error
            data["seconds"] = time.time() - t0
            data["base"] = server
            seen[docname] = data
        return seen[docname]

    return get


# ---------------------------------------------------------------------------------------------- helpers
class _Ids(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids = set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key == "id" or (tag == "a" and key == "name"):
                self.ids.add(value)


_ID_CACHE = {}


def ids_in(path):
    if path not in _ID_CACHE:
        parser = _Ids()
        parser.feed(path.read_text(encoding="utf-8", errors="replace"))
        _ID_CACHE[path] = parser.ids
    return _ID_CACHE[path]


def local_file(url, base):
    """The file under _build/html that a same-origin URL names, or None for another origin."""
    u, b = urlsplit(url), urlsplit(base)
    if u.scheme not in ("http", "https") or u.netloc != b.netloc:
        return None
    path = unquote(u.path).lstrip("/")
    target = HTML / path
    return target / "index.html" if (not path or path.endswith("/")) else target


def is_external(url, base):
    u = urlsplit(url)
    return u.scheme in ("http", "https", "ws", "wss") and u.netloc != urlsplit(base).netloc


# Widget models that only display (tqdm's progress bar is an HBox of HTML + FloatProgress): these render
# from the saved widget state as they are. Anything else (sliders, buttons, ...) needs a kernel to work.
DISPLAY_ONLY_MODEL = re.compile(
    r"(Box|HBox|VBox|GridBox|HTML|HTMLMath|Label|FloatProgress|IntProgress|Output|Image|Layout|\w*Style)Model"
)


def _interactive(model_id, state):
    model = state.get(model_id)
    if model is None:
        return False
    if not DISPLAY_ONLY_MODEL.fullmatch(model.get("model_name", "")):
        return True
    children = model.get("state", {}).get("children", [])
    return any(_interactive(str(c).removeprefix("IPY_MODEL_"), state) for c in children)


def notebook_facts(docname):
    """What a page's source notebook promises the reader.

    images: image outputs shown (not in remove-cell/remove-output cells) that myst-nb renders as images;
    widget_views: widget outputs shown; interactive: the notebook calls vc.latent_explorer/value_explorer,
    or shows a widget that needs a kernel (so the page must carry a static view and the note).
    """
    facts = {"images": 0, "widget_views": 0, "interactive": False}
    nb = read_notebook(source_of(docname))
    if nb is None:
        return facts
    state = nb.get("metadata", {}).get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    state = state.get("state", {})
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        hidden = bool(tags(cell) & {"remove-cell", "remove-output"})
        if WIDGET_CALL.search(cell_text(cell)):
            facts["interactive"] = True
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if hidden:
                continue
            if WIDGET_MIME in data:
                facts["widget_views"] += 1
                model_id = (data[WIDGET_MIME] or {}).get("model_id", "")
                facts["interactive"] |= _interactive(model_id, state) or model_id not in state
            # myst-nb shows the richest type it knows; these outrank an image in the same output
            outranked = data.keys() & {WIDGET_MIME, "application/javascript", "text/html"}
            if not outranked and any(k.startswith("image/") for k in data):
                facts["images"] += 1
    return facts


# ---------------------------------------------------------------------------------------------- per page
def test_toc_lists_pages():
    assert PAGES and PAGES[0], "_toc.yml lists no pages"
    missing = [d for d in PAGES if source_of(d) is None]
    assert not missing, f"_toc.yml lists pages with no source file: {missing}"


def test_index_redirects_to_root(driver, server):
    driver.get(server + "index.html")
    deadline = time.time() + 10
    while not driver.current_url.endswith(PAGES[0] + ".html") and time.time() < deadline:
        time.sleep(0.1)
    assert driver.current_url.endswith(PAGES[0] + ".html"), (
        f"index.html should lead to the root page {PAGES[0]}.html, got {driver.current_url}"
    )


def unreachable_host_error(message, base):
    """True for Chrome's log of a failed request to another host (no network here, or a CDN down)."""
    m = re.match(r"(\S+) - Failed to load resource: net::ERR_", message)
    return bool(m) and is_external(m.group(1), base)


@pytest.mark.parametrize("docname", PAGES)
def test_page_loads_cleanly(page, docname):
    """No console errors (other hosts being unreachable is test_page_needs_no_network's business)."""
    p = page(docname)
    assert p["wait_error"] is None, f"{docname}: waiting for images/MathJax failed: {p['wait_error']}"
    errors = [
        e["message"]
        for e in p["console"]
        if e.get("level") == "SEVERE" and not unreachable_host_error(e["message"], p["base"])
    ]
    assert not errors, f"{docname}: console errors:\n  " + "\n  ".join(errors)
    assert "404" not in p["title"], f"{docname}: page title {p['title']!r}"


@pytest.mark.parametrize("docname", PAGES)
def test_page_needs_no_network(page, docname):
    """Everything a page loads comes from the book itself, so it renders offline (MathJax is vendored)."""
    p = page(docname)
    external = sorted({r for r in p["resources"] if is_external(r, p["base"])})
    assert not external, (
        f"{docname}: loads resources from other hosts (the book must render offline; "
        f"vendor them under book/_static/):\n  " + "\n  ".join(external)
    )


@pytest.mark.parametrize("docname", PAGES)
def test_page_fits_laptop_width(page, docname):
    """The page itself never scrolls sideways at 1280 px; wide code scrolls inside its block (warned)."""
    p = page(docname)
    assert p["scrollWidth"] <= p["clientWidth"] + 1, (
        f"{docname}: the page scrolls sideways at 1280 px ({p['scrollWidth']} > {p['clientWidth']}): "
        "some code, output or equation is too wide and does not scroll inside its own box"
    )
    if p["wideCode"]:  # allowed (the block scrolls), but a reader must scroll to see the end of the line
        longest = max(p["wideCode"], key=len)
        warnings.warn(
            f"{docname}: {len(p['wideCode'])} code/output block(s) are wider than the text column at 1280 px "
            f"and scroll sideways; longest line ({len(longest)} chars): {longest[:120]!r}",
            stacklevel=1,
        )


@pytest.mark.parametrize("docname", PAGES)
def test_links_and_images_resolve(page, docname):
    p = page(docname)
    broken = []
    for link in p["links"]:
        target = local_file(link["href"], p["base"])
        if target is None:
            continue
        fragment = unquote(urlsplit(link["href"]).fragment)
        if not target.is_file():
            broken.append(f"link {link['text']!r} -> {link['href']} (no {target.relative_to(HTML)})")
        elif fragment and target.suffix == ".html" and fragment not in ids_in(target):
            broken.append(f"link {link['text']!r} -> {link['href']} (no id {fragment!r} on that page)")
    for img in p["images"]:
        target = local_file(img["src"], p["base"])
        if target is not None and not target.is_file():
            broken.append(f"image {img['src']} (no {target.relative_to(HTML)})")
        elif img["width"] == 0:
            broken.append(f"image {img['src']} did not load (naturalWidth 0)")
    assert not broken, f"{docname}: broken links or images:\n  " + "\n  ".join(broken)


@pytest.mark.parametrize("docname", PAGES)
def test_figures_and_widgets_show(page, docname):
    """Every stored figure and widget output is on the page; interactive widgets degrade to a static view."""
    p = page(docname)
    facts = notebook_facts(docname)
    shown = [i for i in p["images"] if i["output"] and i["width"] > 0]
    assert len(shown) >= facts["images"], (
        f"{docname}: the notebook stores {facts['images']} figure(s) but the page shows "
        f"{len(shown)} loaded image(s) in its outputs"
    )
    if re.fullmatch(r"book/\d\d_.*", docname):
        assert shown, f"{docname}: a chapter page with no figure"
    assert p["widgetsUnrendered"] == 0 and p["widgetViews"] >= facts["widget_views"], (
        f"{docname}: {facts['widget_views']} widget output(s) stored, {p['widgetViews']} on the page, "
        f"{p['widgetsUnrendered']} not rendered (is the widget state saved in the notebook?)"
    )
    drawn = [f for f in p["liveFigures"] if f["graphics"] > 0]
    assert len(drawn) == len(p["liveFigures"]), f"{docname}: live figures that live.js did not draw: {p['liveFigures']}"
    if facts["interactive"]:
        # an ipywidgets view needs a kernel: the page must carry a live (in-page) figure in its place, or at
        # least a static picture and the note that says how to run it
        assert drawn or ("Static view" in p["text"] and shown), (
            f"{docname}: the notebook has an interactive widget but the page has no live figure (coursekit.live) "
            "and no static view with the 'Static view' note (vaecourse.widgets.STATIC_NOTE)"
        )
    raw = sorted({m.group(0) for out in p["outputs"] for m in RAW_REPR.finditer(out)})
    assert not raw, (
        f"{docname}: outputs show raw object reprs instead of the figure/widget: {raw} "
        "(end plotting cells with plt.show(); use static=True views in the book)"
    )


IMAGE_PATH = re.compile(r"(^|[/\\])[\w.-]+\.(png|jpe?g|svg|gif|webp)$", re.I)


def alt_problem(alt, src):
    """Why an image's alt text does not describe it (None when it does)."""
    text = (alt or "").strip()
    if not text:
        return "no alt text"
    name = unquote(urlsplit(src).path).rsplit("/", 1)[-1]
    if IMAGE_PATH.search(text) or text == name or re.fullmatch(r"[0-9a-f]{16,}(\.\w+)?", text):
        return f"the alt text is a file name ({text!r})"
    if len(text.split()) < 4:
        return f"the alt text is too short to say what the figure shows ({text!r})"
    return None


def test_alt_problem_catches_paths():
    assert alt_problem("../_images/3f2a9c0d1b2e4f5a6b7c8d9e0f1a2b3c.png", "http://h/_images/x.png")
    assert alt_problem("", "http://h/x.png") and alt_problem("figure", "http://h/x.png")
    assert alt_problem("_images/a_b.svg", "http://h/_images/a_b.svg")
    assert alt_problem("Reconstructions of ten test digits, top row the inputs", "http://h/x.png") is None


@pytest.mark.parametrize("docname", PAGES)
def test_figures_have_alt_text(page, docname):
    """Every figure in a page's outputs has alt text that says what it shows, not its file path."""
    p = page(docname)
    bad = [f"{i['src'].rsplit('/', 1)[-1]}: {alt_problem(i['alt'], i['src'])}" for i in p["images"]
           if i["output"] and alt_problem(i["alt"], i["src"])]  # fmt: skip
    assert not bad, (
        f"{docname}: figures without a text alternative (set the cell's metadata "
        '{"mystnb": {"image": {"alt": "..."}}}):\n  ' + "\n  ".join(bad)
    )
    unlabeled = [f["kind"] for f in p["liveFigures"] if len(f["label"].split()) < 4]
    assert not unlabeled, f"{docname}: live figures without an aria-label: {unlabeled}"


@pytest.mark.parametrize("docname", PAGES)
def test_equations_render(page, docname):
    p = page(docname)
    if p["math"] == 0:
        return  # no maths on this page
    if not p["mathjax"]:
        pytest.skip(
            f"{docname}: MathJax did not load (mathjax_path unreachable?), so {p['math']} equations were not checked"
        )
    assert not p["mathUnrendered"], (
        f"{docname}: {len(p['mathUnrendered'])} of {p['math']} equations were not "
        f"typeset, e.g. {p['mathUnrendered'][:3]}"
    )
    assert p["mjx"] >= p["math"], f"{docname}: {p['math']} equations but only {p['mjx']} mjx-container"
    assert not p["mathErrors"], f"{docname}: TeX errors shown to readers: {p['mathErrors'][:5]}"


def test_mathjax_is_bundled(built_book):
    """The book's MathJax is the vendored copy, so equations render without a network."""
    pages = [HTML / (d + ".html") for d in PAGES if (HTML / (d + ".html")).is_file()]
    scripts = {
        m
        for f in pages
        for m in re.findall(r'<script[^>]+src="([^"]*mathjax[^"]*)"', f.read_text(encoding="utf-8"), flags=re.I)
    }
    if not scripts:
        pytest.skip("no page has maths yet, so no page loads MathJax")
    remote = sorted(s for s in scripts if re.match(r"(https?:)?//", s))
    assert not remote, f"MathJax is loaded from the network: {remote}; point mathjax_path at the vendored copy"
    assert (HTML / "_static" / "mathjax" / "tex-mml-chtml.js").is_file()
    assert (HTML / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").is_dir()


# ---------------------------------------------------------------------------------------------- exercises
def test_exercise_pages_are_student_versions(built_book):
    student = sorted((ROOT / "book" / "exercises").glob("*/*.ipynb"))
    student = [p for p in student if ".ipynb_checkpoints" not in p.parts]
    assert student, "book/exercises/ holds no student notebooks (generate them with `make exercises`)"
    not_in_toc = [
        p.relative_to(ROOT).as_posix() for p in student if p.relative_to(ROOT).with_suffix("").as_posix() not in PAGES
    ]
    assert not not_in_toc, f"student notebooks that are not pages of the book (add them to _toc.yml): {not_in_toc}"
    for docname in EXERCISE_PAGES:
        text = html.unescape(re.sub(r"<[^>]+>", "", (HTML / (docname + ".html")).read_text(encoding="utf-8")))
        assert "YOUR CODE HERE" in text, f"{docname}: no 'YOUR CODE HERE' on the exercise page"


def _secret_and_public_lines(notebooks):
    """Lines nbgrader hides from students (solutions, hidden tests, mark schemes) and the lines it keeps."""
    secret, public = [], set()
    for path in notebooks:
        for cell in read_notebook(path).get("cells", []):
            text = cell_text(cell)
            meta = cell.get("metadata", {}).get("nbgrader", {})
            has_region = any(begin in text for begin, _ in SECRET_MARKERS)
            whole = bool(meta.get("solution")) and not has_region  # nbgrader replaces the whole cell
            inside = False
            for line in text.splitlines():
                if any(begin in line for begin, _ in SECRET_MARKERS):
                    inside = True
                elif any(end in line for _, end in SECRET_MARKERS):
                    inside = False
                elif inside or whole:
                    secret.append(line.strip())
                else:
                    public.add(line.strip())
    return secret, public


def _distinctive(line, public):
    """A line long and specific enough that finding it in the book means the solution leaked.

    ``public`` is all published text joined by newlines: a hidden line that is part of a visible one
    (a hidden assert repeating the start of a visible assert, say) proves nothing when found.
    """
    if len(line) < 16 or line in public or not re.search(r"[A-Za-z]", line):
        return False
    if line.lstrip("#").strip().upper() in ("YOUR CODE HERE", "YOUR ANSWER HERE"):
        return False
    return line not in ("raise NotImplementedError()", "raise NotImplementedError")


def _texts(path, raw):
    """Ways a line can appear in one built file: the bytes, an HTML page's text, a notebook's strings."""
    yield raw
    text = raw.decode("utf-8", errors="ignore")
    if path.suffix in (".html", ".htm", ".xml"):
        yield html.unescape(re.sub(r"<[^>]+>", "", text)).encode()
    elif path.suffix in (".ipynb", ".json"):
        try:
            yield json.dumps(json.loads(text), ensure_ascii=False).encode().replace(b"\\n", b"\n")
        except ValueError:
            pass


def test_no_solutions_in_build(built_book):
    notebooks = sorted(p for p in (ROOT / "solutions").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    assert notebooks, "solutions/ holds no nbgrader source notebooks: the course must have its exercises"
    secret, public = _secret_and_public_lines(notebooks)
    # Public text of the book (chapters, package) may legitimately share a line with a solution.
    for path in list((ROOT / "book").rglob("*.ipynb")) + list((ROOT / "book").rglob("*.md")):
        if "exercises" not in path.relative_to(ROOT / "book").parts and ".ipynb_checkpoints" not in path.parts:
            public.update(line.strip() for line in path.read_text(encoding="utf-8").splitlines())
            if path.suffix == ".ipynb":
                for cell in read_notebook(path).get("cells", []):
                    public.update(line.strip() for line in cell_text(cell).splitlines())
    for path in [*(ROOT / "vaecourse").rglob("*.py"), *(ROOT / "coursekit").rglob("*.py")]:
        public.update(line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    public_text = "\n".join(public)
    lines = sorted({s for s in secret if _distinctive(s, public_text)})
    assert secret, "no solution regions found in solutions/ (### BEGIN SOLUTION ... ### END SOLUTION)"
    leaks = {}
    for path in sorted(p for p in BUILD.rglob("*") if p.is_file()):
        raw = path.read_bytes()
        for text in _texts(path, raw):
            for begin, _ in SECRET_MARKERS:
                if begin.encode() in text:
                    leaks.setdefault(path.relative_to(BUILD).as_posix(), set()).add(begin)
            for line in lines:
                if line.encode() in text:
                    leaks.setdefault(path.relative_to(BUILD).as_posix(), set()).add(line)
    assert not leaks, "solution text found in _build/:\n" + "\n".join(
        f"  {f}: {sorted(found)[:5]}" for f, found in sorted(leaks.items())
    )


# ---------------------------------------------------------------------------------------------- screenshots
def _chapter_to_show(page):
    chapters = [d for d in PAGES if re.fullmatch(r"book/\d\d_.*", d)] or PAGES[1:] or PAGES
    # The chapter with the most figures and equations shows the most layout.
    return max(chapters, key=lambda d: (len(page(d)["images"]) + page(d)["math"], -chapters.index(d)))


def test_screenshots(page, driver, server):
    """Screenshots for people to look at: the intro, one chapter (top, figure, equation, code, narrow), an exercise."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    chapter = _chapter_to_show(page)
    written, current = [], [None]

    def shot(name, docname, scroll_to=None, width=1280):
        if current[0] != (docname, width):
            driver.set_window_size(width, 900)
            _load(driver, server + docname + ".html")
            current[0] = (docname, width)
        driver.execute_script(
            "const e = arguments[0] && document.querySelector(arguments[0]);"
            "if (e) e.scrollIntoView({block: 'center'}); else window.scrollTo(0, 0);",
            scroll_to,
        )
        time.sleep(0.2)
        path = SHOTS / f"{name}.png"
        driver.save_screenshot(str(path))
        written.append(path)

    try:
        shot("intro", PAGES[0])
        slug = chapter.rsplit("/", 1)[-1]
        shot(f"{slug}-top", chapter)
        shot(f"{slug}-figure", chapter, ".cell_output img")
        shot(f"{slug}-equation", chapter, "div.math")
        shot(f"{slug}-code", chapter, "div.cell div.highlight")
        shot(f"{slug}-narrow", chapter, width=420)
        if EXERCISE_PAGES:
            shot("exercise", EXERCISE_PAGES[0], "div.cell div.highlight")
    finally:
        driver.set_window_size(1280, 900)
    assert all(p.is_file() and p.stat().st_size > 1000 for p in written)


# ---------------------------------------------------------------------------------------------- live figures
# The book's live figures (coursekit/live.py + book/_static/live/live.js) on a page of their own: a latent
# explorer for a random vc.VAE(784, 2, hidden=(400,)) (its decoder weights scaled by 3, for an image with
# contrast) loading its JSON file, a results slider with its data embedded, the KL and samples explorers. The page
# sits one folder below _static/, as chapter pages do, so data-src must resolve against the script.
# The test moves each control and compares the canvas with coursekit.live.pixels for the z the page shows.
LIVE_DIR = ROOT / "book" / "_static" / "live"

LIVE_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>live figures</title>
<link rel="icon" href="data:,"><link rel="stylesheet" href="../_static/live/live.css">
<script defer src="../_static/live/live.js"></script></head>
<body><main><h1>Live figures</h1>
<section id="latent">{latent}</section>
<section id="results">{results}</section>
<section id="kl">{kl}</section>
<section id="samples">{samples}</section>
</main></body></html>
"""

READ_CANVASES_JS = """
return Array.from(document.querySelectorAll(arguments[0])).map(c => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, out = [];
  for (let i = 0; i < d.length; i += 4) out.push(255 - d[i]);  // ink level, as coursekit.live.pixels
  return out;
});
"""


@pytest.fixture(scope="module")
def live_site(tmp_path_factory):
    """(base URL, decoder spec, results spec) of a local site holding the two live figures."""
    import torch

    import vaecourse as vc
    from coursekit import live

    site = tmp_path_factory.mktemp("live-site")
    shutil.copytree(LIVE_DIR, site / "_static" / "live")
    vc.set_seed(0)
    model = vc.VAE(784, 2, hidden=(400,))
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.mul_(3)
    latent = live.latent_explorer(model, "latent", out_dir=site / "_static" / "live" / "data", step=0.1)
    gen = torch.Generator().manual_seed(1)
    settings = {
        beta: {
            "images": torch.rand(6, 784, generator=gen) ** (1 + i),
            "kl_per_dim": (torch.rand(8, generator=gen) * 4 / (1 + i)).sort(descending=True).values,
            "active_units": 8 - 3 * i,
            "stats": {"KL (nats)": 20.0 / (1 + i), "ELBO (nats)": -100.0 - i},
        }
        for i, beta in enumerate((0.5, 1.0, 4.0))
    }
    results = live.results_explorer(settings, "results", label="beta", inline=True, threshold=0.01)
    (site / "book").mkdir()
    kl = live.kl_explorer([2.0, 0.0], [0.25, 4.0])
    draws = {k: torch.randn(300, generator=gen, dtype=torch.float64) / k**0.5 - 1 / k for k in (1, 10, 100)}
    lines = {"truth": 0.0, "start": -1.0}
    samples = live.samples_explorer(draws, "samples", label="K", x_label="an estimate", lines=lines, inline=True)
    page = LIVE_PAGE.format(latent=latent.html, results=results.html, kl=kl.html, samples=samples.html)
    (site / "book" / "live.html").write_text(page)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(site)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    spec = live.load(latent.path)
    result_spec = live.results_spec(settings, label="beta", threshold=0.01)
    yield f"http://127.0.0.1:{httpd.server_address[1]}/book/live.html", spec, result_spec
    httpd.shutdown()
    httpd.server_close()


def _open_live(driver, url):
    driver.set_window_size(1280, 900)
    _load(driver, url)
    deadline = time.time() + 20
    while time.time() < deadline:
        states = driver.execute_script(
            "return Array.from(document.querySelectorAll('div.vc-live')).map(e => e.getAttribute('data-ready'))"
        )
        if states and all(s in ("true", "error") for s in states):
            break
        time.sleep(0.05)
    text = driver.execute_script("return document.body.innerText")
    assert states == ["true"] * 4, f"live figures did not start: {states}\n{text[:2000]}"
    return driver.get_log("browser")


def _shot(driver, name, selector):
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.execute_script("document.querySelector(arguments[0]).scrollIntoView({block: 'center'})", selector)
    path = SHOTS / f"{name}.png"
    driver.find_element("css selector", selector).screenshot(str(path))
    assert path.stat().st_size > 1000
    return path


def _latent_state(driver):
    return driver.execute_script(
        "const v = document.querySelector('#latent .vc-live').vcLive;"
        "return {z: v.z, desc: v.desc.textContent, label: v.canvas.getAttribute('aria-label'),"
        "        sliders: Array.from(document.querySelectorAll('#latent input[type=range]')).map(i => i.value)};"
    )


def _assert_draws(driver, spec, what):
    import numpy as np

    from coursekit import live

    state = _latent_state(driver)
    drawn = np.array(driver.execute_script(READ_CANVASES_JS, "#latent canvas.vc-live-digit")[0]).reshape(28, 28)
    want = live.pixels(spec, state["z"]).astype(int)
    worst = int(np.abs(drawn - want).max())
    assert worst <= 1, f"{what}: the page draws z = {state['z']} up to {worst} grey levels off the decoder"
    return drawn, state


def test_live_latent_explorer_draws_the_decoder(driver, live_site):
    """Slider (value + 'input' event), slider keys, pad keys and a pad drag each redraw the model's digit."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    url, spec, _ = live_site
    console = _open_live(driver, url)
    severe = [e["message"] for e in console if e.get("level") == "SEVERE"]
    assert not severe, f"console errors on the live-figure page: {severe}"
    before, state = _assert_draws(driver, spec, "at load")
    assert state["z"] == [0, 0] and "z1 = 0.00, z2 = 0.00" in state["desc"] and state["label"] == state["desc"]
    _shot(driver, "live-latent-before", "#latent .vc-live")

    # 1. a slider set by script, with the 'input' event a user's move fires
    driver.execute_script(
        "const s = document.querySelectorAll('#latent input[type=range]')[0];"
        "s.value = '1.5'; s.dispatchEvent(new Event('input', {bubbles: true}));"
    )
    moved, state = _assert_draws(driver, spec, "after setting z1")
    assert state["z"] == [1.5, 0] and "z1 = 1.50" in state["desc"]
    assert (moved != before).sum() > 20, "moving z1 to 1.5 barely changed the drawn image"

    # 2. the second slider, by keyboard: five steps right
    slider = driver.find_elements("css selector", "#latent input[type=range]")[1]
    slider.click()  # focus (a click on the thumb at the middle: z2 stays 0)
    driver.execute_script("arguments[0].value = '0'; arguments[0].dispatchEvent(new Event('input'))", slider)
    slider.send_keys(*[Keys.ARROW_RIGHT] * 5)
    keyed, state = _assert_draws(driver, spec, "after ArrowRight x5 on z2")
    assert state["z"][0] == 1.5 and abs(state["z"][1] - 0.5) < 1e-9, state["z"]
    assert (keyed != moved).any()

    # 3. the pad, by keyboard: up twice, left once (steps of 0.1); its sliders follow
    pad = driver.find_element("css selector", "#latent .vc-live-pad")
    assert pad.get_attribute("tabindex") == "0" and "arrow keys" in pad.get_attribute("aria-label")
    driver.execute_script("arguments[0].focus()", pad)
    ActionChains(driver).send_keys(Keys.ARROW_UP, Keys.ARROW_UP, Keys.ARROW_LEFT).perform()
    _, state = _assert_draws(driver, spec, "after pad keys")
    assert abs(state["z"][0] - 1.4) < 1e-9 and abs(state["z"][1] - 0.7) < 1e-9, state["z"]
    assert [float(v) for v in state["sliders"]] == pytest.approx(state["z"])
    assert "z1 = 1.40, z2 = 0.70" in pad.get_attribute("aria-valuetext")

    # 4. the pad, by pointer: drag the point to the lower left quarter
    size = pad.size
    ActionChains(driver).move_to_element_with_offset(pad, 0, 0).click_and_hold().move_by_offset(
        -size["width"] // 4, size["height"] // 4
    ).release().perform()
    dragged, state = _assert_draws(driver, spec, "after a drag on the pad")
    assert state["z"][0] == pytest.approx(-1.5, abs=0.11) and state["z"][1] == pytest.approx(-1.5, abs=0.11)
    assert (dragged != keyed).sum() > 20
    _shot(driver, "live-latent-after", "#latent .vc-live")
    severe = [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    assert not severe, f"console errors while moving the controls: {severe}"


def test_live_results_slider_shows_each_setting(driver, live_site):
    import numpy as np

    from coursekit import live

    url, _, spec = live_site
    _open_live(driver, url)

    def shown():
        return driver.execute_script(
            "const v = document.querySelector('#results .vc-live').vcLive;"
            "return {index: v.index, desc: v.desc.textContent, output: v.output.textContent,"
            "  bars: v.bars.map(b => parseFloat(b.getAttribute('height'))), h: v.h, max: v.klMax,"
            "  valuetext: v.input.getAttribute('aria-valuetext'), gridLabel: v.grid.getAttribute('aria-label')};"
        )

    def check(index):
        s = shown()
        assert s["index"] == index
        setting = spec["settings"][index]
        drawn = np.array(driver.execute_script(READ_CANVASES_JS, "#results canvas.vc-live-thumb"))
        want = live.result_levels(spec, index).reshape(len(drawn), -1).astype(int)
        assert np.abs(drawn - want).max() == 0, f"setting {index}: thumbnails differ from the exported images"
        heights = np.array(s["bars"]) / s["h"] * s["max"]
        assert np.allclose(heights, setting["kl_per_dim"], atol=s["max"] / s["h"] * 0.01 + 1e-6)
        assert s["output"] == setting["label"] == s["valuetext"]
        assert f"{setting['active_units']} of 8 latent dimensions active" in s["desc"]
        assert setting["label"] in s["gridLabel"]
        return drawn

    first = check(0)
    _shot(driver, "live-results-before", "#results .vc-live")
    driver.execute_script(
        "const s = document.querySelector('#results input[type=range]');"
        "s.value = '2'; s.dispatchEvent(new Event('input', {bubbles: true}));"
    )
    last = check(2)
    assert (first != last).any()
    from selenium.webdriver.common.keys import Keys

    driver.find_element("css selector", "#results input[type=range]").send_keys(Keys.ARROW_LEFT)
    check(1)
    _shot(driver, "live-results-after", "#results .vc-live")
    assert not [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def test_live_figure_runs_in_a_built_book_page(driver, tmp_path):
    """The snippet as a notebook output, through myst-nb and Sphinx: live.js (from html_js_files) starts it."""
    from test_live_figures import build_small_book

    import vaecourse as vc
    from coursekit import live

    vc.set_seed(0)
    model = vc.VAE(64, 2, hidden=(16,))
    fig = live.latent_explorer(model, "small", out_dir=tmp_path / "book" / "_static" / "live" / "data")
    html_dir = build_small_book(tmp_path, "", [fig])
    assert (html_dir / "_static" / "live" / "data" / "small.json").is_file()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(html_dir)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        _load(driver, f"http://127.0.0.1:{httpd.server_address[1]}/book/live.html")
        deadline = time.time() + 20
        while driver.execute_script("return document.querySelector('div.vc-live').getAttribute('data-ready')") is None:
            assert time.time() < deadline, "the live figure did not start in the built page"
            time.sleep(0.05)
        assert (
            driver.execute_script("return document.querySelector('div.vc-live').getAttribute('data-ready')") == "true"
        )
        z = driver.execute_script("return document.querySelector('div.vc-live').vcLive.z")
        drawn = driver.execute_script(READ_CANVASES_JS, "canvas.vc-live-digit")[0]
        import numpy as np

        assert np.abs(np.array(drawn) - live.pixels(live.load(fig.path), z).reshape(-1)).max() <= 1
        assert not driver.find_elements("css selector", ".vc-live-fallback")  # the "not running" note is gone
        severe = [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
        assert not severe, f"console errors on the built page: {severe}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_live_kl_explorer_computes_the_gaussian_kl(driver, live_site):
    """Each slider (set by script, or by keyboard) redraws the densities and gives vc.gaussian_kl's numbers."""
    import numpy as np
    import torch
    from selenium.webdriver.common.keys import Keys

    import vaecourse as vc

    url, _, _ = live_site
    _open_live(driver, url)

    def shown():
        s = driver.execute_script(
            "const v = document.querySelector('#kl .vc-live').vcLive;"
            "const d = v.canvas.getContext('2d').getImageData(0, 0, v.canvas.width, v.canvas.height).data;"
            "return {mu: v.mu, var: v.var, kl: v.kl, total: v.total, desc: v.desc.textContent,"
            "  bars: v.bars.map(b => parseFloat(b.getAttribute('height'))), h: v.h, max: v.klMax,"
            "  label: v.canvas.getAttribute('aria-label'), ink: Array.from(d).filter((x, i) => i % 4 == 0)};"
        )
        mu, var = torch.tensor(s["mu"], dtype=torch.float64), torch.tensor(s["var"], dtype=torch.float64)
        want = vc.gaussian_kl_per_dim(mu, var.log())
        assert np.allclose(s["kl"], want.numpy(), rtol=1e-12, atol=1e-12), (s["kl"], want)
        assert f"KL(q || p) = {want.sum().item():.3f} nats" in s["desc"] and s["desc"] in s["label"]
        assert np.allclose(np.array(s["bars"]) / s["h"] * s["max"], want.numpy(), atol=s["max"] / s["h"])
        return s, np.array(s["ink"])

    start, ink0 = shown()
    assert start["mu"] == [2, 0] and start["var"] == [0.25, 4] and "3.125 nats" in start["desc"]
    assert (ink0 < 250).sum() > 200, "the density canvas is (almost) blank"
    _shot(driver, "live-kl-before", "#kl .vc-live")
    driver.execute_script(
        "const s = document.querySelectorAll('#kl input[type=range]')[0];"
        "s.value = '-1'; s.dispatchEvent(new Event('input', {bubbles: true}));"
    )
    moved, ink1 = shown()
    assert moved["mu"] == [-1, 0] and (ink1 != ink0).sum() > 50, "moving mu_1 did not redraw the densities"
    var1 = driver.find_elements("css selector", "#kl input[type=range]")[1]  # sigma^2 of dimension 1
    driver.execute_script("arguments[0].focus()", var1)
    var1.send_keys(*[Keys.ARROW_RIGHT] * 15)  # 0.25 -> 1.00 in steps of 0.05
    keyed, _ = shown()
    assert abs(keyed["var"][0] - 1.0) < 1e-9 and abs(keyed["kl"][0] - 0.5) < 1e-9, keyed
    _shot(driver, "live-kl-after", "#kl .vc-live")
    assert not [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def test_live_samples_explorer_draws_each_settings_histogram(driver, live_site):
    """The slider (by script and keyboard) shows each setting's histogram, mean, spread and share above each line."""
    import numpy as np
    from selenium.webdriver.common.keys import Keys

    from coursekit import live

    url, _, _ = live_site
    _open_live(driver, url)
    root = "document.querySelector('#samples .vc-live')"
    spec = json.loads(driver.execute_script(f"return {root}.querySelector('script.vc-live-data').textContent"))

    def check(index):
        s = driver.execute_script(
            f"const v = {root}.vcLive;"
            "return {index: v.index, mean: v.mean, sd: v.sd, above: v.above, desc: v.desc.textContent, h: v.h,"
            "  bars: v.bars.map(b => parseFloat(b.getAttribute('height'))), max: v.countMax,"
            "  valuetext: v.input.getAttribute('aria-valuetext')};"
        )
        values = np.array(spec["settings"][index]["values"])
        assert s["index"] == index and s["valuetext"] == spec["settings"][index]["label"]
        counts = live.samples_counts(spec, index)
        assert counts.sum() == len(values) == 300
        assert np.allclose(np.array(s["bars"]) / s["h"] * s["max"], counts, atol=0.01), "bars are not the histogram"
        assert abs(s["mean"] - values.mean()) < 1e-9 and abs(s["sd"] - values.std(ddof=1)) < 1e-9
        assert s["above"] == [float((values > line["value"]).mean()) for line in spec["lines"]]
        assert f"mean {values.mean():.2f}, standard deviation {values.std(ddof=1):.2f}" in s["desc"]
        return counts

    first = check(0)
    _shot(driver, "live-samples-before", "#samples .vc-live")
    driver.execute_script(
        f"const s = {root}.querySelector('input[type=range]');"
        "s.value = '2'; s.dispatchEvent(new Event('input', {bubbles: true}));"
    )
    last = check(2)
    assert (first != last).any() and last.max() > first.max(), "K = 100 should be the narrower, taller histogram"
    driver.find_element("css selector", "#samples input[type=range]").send_keys(Keys.ARROW_LEFT)
    check(1)
    _shot(driver, "live-samples-after", "#samples .vc-live")
    assert not [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
