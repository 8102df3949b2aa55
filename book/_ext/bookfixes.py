"""Small fixes to the HTML the Jupyter Book 1 stack writes (loaded via `sphinx.local_extensions`).

Holds:
    dedupe_scripts -- drop repeated <script> tags. sphinx-thebe 0.3 registers its inline
        `const THEBE_JS_URL = ...` script through `app.add_js_file(None, body=...)`; Sphinx 7.4 stores
        it once as filename None and once as '' and so writes it twice, and the second copy is a
        "SyntaxError: Identifier 'THEBE_JS_URL' has already been declared" on every page.
    rewrite_bibliography -- write the page holding {bibliography} on every build. It lists what the
        other pages cite, but sphinxcontrib-bibtex only rewrites it when that page itself changes: after
        a chapter cites a new paper, an incremental build left the citation links pointing at entries
        (#idN) missing from the stale bibliography page.
The browser test (tests/test_browser.py) fails on console errors and broken anchors; these keep pages clean.
"""


def _key(js):
    attrs = getattr(js, "attributes", {}) or {}
    return (getattr(js, "filename", js) or "", tuple(sorted((k, str(v)) for k, v in attrs.items())))


def dedupe_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen, unique = set(), []
    for js in scripts:
        key = _key(js)
        if key not in seen:
            seen.add(key)
            unique.append(js)
    scripts[:] = unique


def rewrite_bibliography(app, env):
    try:
        domain = env.get_domain("cite")
    except Exception:  # sphinxcontrib-bibtex not loaded
        return []
    return sorted({key.docname for key in getattr(domain, "bibliographies", {})})


def setup(app):
    app.connect("html-page-context", dedupe_scripts)
    app.connect("env-updated", rewrite_bibliography)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
