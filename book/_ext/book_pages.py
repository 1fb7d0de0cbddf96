"""The book's own Sphinx extension (``sphinx.local_extensions`` in _config.yml).

MathJax offline: the files of MathJax 3.2.2 come from the PyPI package ``sphinx-mathjax-offline``
(pinned in requirements.txt) and are copied into ``_build/html/_static/mathjax/`` with the book's
other static files. The package is not loaded as an extension, because its ``setup`` overwrites
``mathjax_path``: here ``mathjax_path`` in _config.yml decides which MathJax the pages load.

One copy of each script: sphinx-thebe 0.3.1 registers its inline configuration script (file name
None) after the HTML builder was initialised; Sphinx 7.4 then adds it a second time from the
registry as file name '', so the two copies do not compare equal and every page carried both; the
second failed in the browser ("Identifier 'THEBE_JS_URL' has already been declared"). Each page
keeps one copy of every script and style sheet, in the original order.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from sphinx.errors import ExtensionError

MATHJAX_PACKAGE = "sphinx-mathjax-offline"


def mathjax_static_dir() -> Path:
    """The folder holding ``mathjax/`` in the installed package (``static/``)."""
    spec = importlib.util.find_spec(MATHJAX_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ExtensionError(f"{MATHJAX_PACKAGE} is not installed, so the book has no MathJax of "
                             "its own: `make book` installs it (pip install -r requirements.txt)")
    static = Path(list(spec.submodule_search_locations)[0]) / "static"
    if not (static / "mathjax" / "tex-chtml.js").is_file():
        raise ExtensionError(f"{static}/mathjax/tex-chtml.js is missing: reinstall {MATHJAX_PACKAGE}")
    return static


def _add_mathjax(app, config):
    config.html_static_path = list(config.html_static_path) + [str(mathjax_static_dir())]


def _key(asset):
    return (getattr(asset, "filename", asset) or "",
            tuple(sorted(getattr(asset, "attributes", {}).items())))


def _dedupe_assets(app, pagename, templatename, context, doctree):
    for name in ("script_files", "css_files"):
        if name in context:
            seen, kept = set(), []
            for asset in context[name]:
                if _key(asset) not in seen:
                    seen.add(_key(asset))
                    kept.append(asset)
            context[name] = kept


def setup(app):
    app.connect("config-inited", _add_mathjax)
    app.connect("html-page-context", _dedupe_assets, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
