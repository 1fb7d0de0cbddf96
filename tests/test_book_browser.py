"""The rendered book as a reader sees it, in headless Chromium (Debian's chromium + chromium-driver,
Selenium), at a desktop width (1366 px) and a phone width (390 px).

``make test`` renders the book on the smoke profile into ``_build/smoke-book/_build/html`` first
(``BOOK_HTML`` points elsewhere). Every page must: load nothing from another host and log no console
error; have MathJax typeset every formula (no raw TeX left in the visible text or the title, no
formula in a heading); load every image; link only to pages and anchors that exist;
fit the viewport (nothing wider than the window); weigh at most 2.5 MB; show no Python object's
repr in a cell's output (``Claim(chapter=...``, ``<... object at 0x...>``); break no word of a
verdict box, a summary table or a caption across lines; at 390 px, make no table of the summary
page or of a verdict box scroll sideways (they reflow), and give figures a text column at least as
wide as the one ``lib.plot.figure`` checks their text for (``PHONE_COLUMN_PX``); have no element reach past the box that
holds it (a verdict box's table, a figure in its cell) and no image, paragraph or caption wider
than the window. The search page must find a
chapter. The browser cannot reach any host but this machine (``--host-resolver-rules``), so a book
whose MathJax comes from a CDN fails here whatever the network.

``BOOK_SCREENSHOTS=DIR`` saves a full-page screenshot of every page at both widths into DIR.
"""

from __future__ import annotations

import functools
import gzip
import http.server
import io
import json
import os
import re
import shutil
import threading
from pathlib import Path

import pytest

from lib import plot
from lib.paths import REPO_ROOT

pytestmark = pytest.mark.slow

BOOK = Path(os.environ.get("BOOK_HTML", REPO_ROOT / "_build" / "smoke-book" / "_build" / "html"))
WIDTHS = {"desktop": 1366, "phone": 390}
#: characters of bold prose that make a paragraph, not a phrase
LONG_BOLD = 100
MAX_PAGE_BYTES = 2.5e6
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
# what raw TeX looks like in visible text once MathJax should have replaced it
RAW_TEX = re.compile(
    r"\$\$|\\\(|\\\)|\\\[|\\\]|\\begin\{|\\(frac|sum|mathbb|lVert|alpha|partial)\b"
    r"|\$[^$\n]{0,80}\\[A-Za-z]+[^$\n]{0,80}\$"
)
# a Python object printed on the page: a dataclass's or namedtuple's repr, or the default one
OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-f]+>|\b[A-Z][A-Za-z0-9]*\([a-z_]+=")


def _pages() -> list[str]:
    if not BOOK.is_dir():
        return []
    skip = {"genindex.html", "search.html", "index.html"}
    return sorted(
        p.relative_to(BOOK).as_posix()
        for p in BOOK.rglob("*.html")
        if p.name not in skip and not p.relative_to(BOOK).parts[0].startswith("_")
    )


PAGES = _pages()


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the book as a static host does: text compressed with gzip (page weights count the
    bytes a reader downloads), nothing cached by the browser between pages."""

    _gz: dict[str, bytes] = {}

    def log_message(self, *a):
        pass

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def send_head(self):
        path = self.translate_path(self.path)
        ctype = self.guess_type(path)
        textual = ctype.startswith("text/") or ctype in (
            "application/javascript",
            "application/json",
            "image/svg+xml",
        )
        if (
            not os.path.isfile(path)
            or not textual
            or "gzip" not in self.headers.get("Accept-Encoding", "")
        ):
            return super().send_head()
        if path not in self._gz:
            self._gz[path] = gzip.compress(Path(path).read_bytes(), 6)
        data = self._gz[path]
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        return io.BytesIO(data)


@pytest.fixture(scope="module")
def server():
    if not PAGES:
        if os.environ.get("REQUIRE_BOOK"):
            pytest.fail(f"no rendered book in {BOOK}: `make smoke-book` renders it")
        pytest.skip(f"no rendered book in {BOOK} (make smoke-book)")

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Handler, directory=str(BOOK))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail(
            "headless Chromium is missing: `make test` installs Debian's chromium and "
            "chromium-driver (apt-get install chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1366,900",
        "--no-first-run",
        "--disable-extensions",
        # no host but this machine: a CDN is unreachable, with or without a network
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


def _viewport(driver, width: int, height: int = 900) -> None:
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
    )


_WAIT_FOR_PAGE = """
const done = arguments[arguments.length - 1];
(async () => {
  // every image, scrolled into view so that nothing lazy stays unloaded
  for (const img of document.images) { img.scrollIntoView(); }
  await Promise.all([...document.images].map(img => img.complete ? null :
      new Promise(r => { img.addEventListener('load', r); img.addEventListener('error', r);
                         setTimeout(r, 10000); })));
  window.scrollTo(0, 0);
  const hasMath = document.querySelector('.math') !== null;
  let mathjax = 'none';
  if (hasMath) {
    for (let i = 0; i < 200 && !(window.MathJax && MathJax.startup && MathJax.startup.promise); i++)
      await new Promise(r => setTimeout(r, 100));
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
      await MathJax.startup.promise; mathjax = 'typeset';
    } else { mathjax = 'not loaded'; }
  }
  done(mathjax);
})();
"""

_INSPECT = r"""
const base = arguments[0];
const LONG_BOLD = arguments[1];
const visible = document.body.cloneNode(true);
visible.querySelectorAll('pre, code, script, style, mjx-assistive-mml, .MathJax_Preview, '
                         + 'noscript, template').forEach(e => e.remove());
const math = [...document.querySelectorAll('.math')];
const scrolls = el => { for (let a = el.parentElement; a; a = a.parentElement) {
    const o = getComputedStyle(a).overflowX; if (o === 'auto' || o === 'scroll' || o === 'hidden') return true; }
  return false; };
const wide = [...document.body.querySelectorAll('*')].filter(e => {
    const r = e.getBoundingClientRect(); return r.width > 0 && r.right > window.innerWidth + 1 && !scrolls(e); })
  .slice(0, 5).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
        (e.className && typeof e.className === 'string' ? '.' + e.className.split(' ').join('.') : '')
        + ' (' + Math.round(e.getBoundingClientRect().right) + ' px)');
const col = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
const colWidth = col.getBoundingClientRect().width;
const wideTables = [...document.querySelectorAll('div.cell_output table')]
  .map(t => Math.round(t.getBoundingClientRect().width)).filter(w => w > colWidth + 1);
// a word (4+ letters) of a verdict box, a summary table or a caption whose letters fall on two
// lines: broken mid-word
const brokenWords = [];
for (const cell of document.querySelectorAll('div.verdict-box td, div.verdict-box th, '
    + 'table.claim-table td, table.claim-table th, figcaption, table caption')) {
  const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    for (const m of n.textContent.matchAll(/[A-Za-z]{4,}/g)) {
      const r = document.createRange(); r.setStart(n, m.index); r.setEnd(n, m.index + m[0].length);
      const tops = new Set([...r.getClientRects()].filter(q => q.width > 0).map(q => Math.round(q.top)));
      if (tops.size > 1 && brokenWords.length < 5) brokenWords.push(m[0]);
    }
  }
}
// an element that reaches past the box that holds it (a verdict box's table past the box, a
// figure past its cell): unless a scroll container between them clips it
const clippedWithin = (e, box) => { for (let a = e.parentElement; a && a !== box; a = a.parentElement) {
    const o = getComputedStyle(a).overflowX; if (o === 'auto' || o === 'scroll' || o === 'hidden') return true; }
  return false; };
const name = e => e.tagName.toLowerCase() + (typeof e.className === 'string' && e.className.trim()
    ? '.' + e.className.trim().split(/\s+/).join('.') : '');
const spills = [];
for (const box of document.querySelectorAll('article div.admonition, article figure, '
    + 'article table, article div.cell_output')) {
  const b = box.getBoundingClientRect();
  if (b.width === 0) continue;
  for (const e of box.querySelectorAll('*')) {
    const r = e.getBoundingClientRect(), pos = getComputedStyle(e).position;
    if (r.width === 0 || r.height === 0 || pos === 'absolute' || pos === 'fixed') continue;
    const over = Math.max(r.right - b.right, b.left - r.left);
    if (over > 1 && !clippedWithin(e, box)) {
      if (spills.length < 5) spills.push(`${name(e)} in ${name(box)} by ${Math.round(over)} px`);
      break;
    }
  }
}
// images and text wider than the window, even where a box scrolls them: a figure must fit the
// column, a caption or a paragraph must wrap (a table's cells may scroll with their table)
const tooWide = [...document.querySelectorAll('article img, article p, article li, '
    + 'article figcaption, article caption')]
  .filter(e => e.tagName === 'IMG' || e.tagName === 'CAPTION' || !e.closest('td, th'))
  .filter(e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.right > window.innerWidth + 1; })
  .slice(0, 5).map(e => `${name(e)} (${Math.round(e.getBoundingClientRect().right)} px)`);
// tables that need a sideways scroll to be read whole (wider than the box that scrolls them),
// named by their caption or class: the summary page's and the verdict boxes' must reflow instead
const scrollingTables = [...document.querySelectorAll('article table')].filter(t => {
    for (let a = t.parentElement; a; a = a.parentElement) {
      const o = getComputedStyle(a).overflowX;
      if (o === 'auto' || o === 'scroll') return a.scrollWidth > a.clientWidth + 1;
    }
    return false; })
  .map(t => ({name: ((t.querySelector('caption') || {}).innerText || name(t)).slice(0, 60),
              mustReflow: !!t.closest('div.verdict-box') || t.matches('table.claim-table')}));
// bold runs of prose longer than a phrase (myst-nb sets glued text in bold by default)
const longBold = [...document.querySelectorAll('article p *, article li *')]
  .filter(e => !e.closest('h1, h2, h3, h4, table, pre, .MathJax, mjx-container')
    && parseInt(getComputedStyle(e).fontWeight) >= 600 && e.innerText.length > LONG_BOLD)
  .slice(0, 3).map(e => e.innerText.slice(0, 60));
// display formulas a phone shows only in part (wider than their box, which scrolls them)
const cutFormulas = [...document.querySelectorAll('article div.math, article mjx-container[display="true"]')]
  .filter(d => d.scrollWidth > d.clientWidth + 1)
  .slice(0, 3).map(d => (d.querySelector('mjx-assistive-mml') || d).textContent.trim().slice(0, 40));
// the column figures are scaled to: lib.plot.figure checks text for a phone's column this wide
const figureColumn = Math.round((document.querySelector('article.bd-article section > p') || col)
  .getBoundingClientRect().width);
const resources = performance.getEntriesByType('resource');
const nav = performance.getEntriesByType('navigation')[0];
return {
  text: visible.innerText,
  mathTotal: math.length,
  mathRendered: math.filter(m => m.querySelector('mjx-container')).length,
  mjx: document.querySelectorAll('mjx-container').length,
  images: [...document.images].map(i => ({src: i.currentSrc || i.src, ok: i.complete && i.naturalWidth > 0})),
  scrollWidth: document.documentElement.scrollWidth,
  innerWidth: window.innerWidth,
  wide: wide,
  foreign: resources.map(r => r.name).filter(n => !n.startsWith(base) && !n.startsWith('data:')),
  bytes: (nav ? nav.encodedBodySize : 0) + resources.reduce((s, r) => s + (r.encodedBodySize || 0), 0),
  height: document.documentElement.scrollHeight,
  colWidth: Math.round(colWidth),
  mathHeadings: [...document.querySelectorAll('h1, h2, h3, h4, h5, h6')]
    .filter(h => h.querySelector('.math')).map(h => h.textContent.trim().slice(0, 60)),
  title: document.title,
  wideTables: wideTables,
  links: [...document.querySelectorAll('a[href]')].map(a => a.href).filter(h => h.startsWith(base)),
  outputs: [...document.querySelectorAll('div.cell_output')].map(e => e.innerText),
  brokenWords: brokenWords,
  longBold: longBold,
  cutFormulas: cutFormulas,
  spills: spills,
  tooWide: tooWide,
  scrollingTables: scrollingTables,
  figureColumn: figureColumn,
};
"""


def _open(driver, url: str) -> str:
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(url)
    return driver.execute_async_script(_WAIT_FOR_PAGE)


@functools.lru_cache(maxsize=None)
def _ids(path: Path) -> frozenset:
    return frozenset(
        re.findall(r'\bid="([^"]+)"', path.read_text(encoding="utf-8", errors="replace"))
    )


def _dead_links(links: list[str], base: str) -> list[str]:
    """Links within the book whose file, or anchor in that file, does not exist."""
    from urllib.parse import unquote, urlsplit

    dead = []
    for link in links:
        parts = urlsplit(link[len(base) - 1 :])
        target = BOOK / unquote(parts.path).lstrip("/")
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            dead.append(link)
        elif (
            parts.fragment
            and target.suffix == ".html"
            and unquote(parts.fragment) not in _ids(target)
        ):
            dead.append(link)
    return dead


def _raw_tex(text: str) -> list[str]:
    return [
        text[max(0, m.start() - 40) : m.end() + 40].replace("\n", " ")
        for m in RAW_TEX.finditer(text)
    ][:3]


WEIGHTS: dict[str, int] = {}
#: pages whose every table reflows on a phone (no sideways scrolling): the summary
REFLOW_PAGES = ("90_summary",)
#: the chapters and the summary: pages with a text column (figures are checked against it)
PAGE_HAS_TEXT = re.compile(r"notebooks/\d\d[a-z]?_")


@pytest.mark.parametrize("width", list(WIDTHS), ids=list(WIDTHS))
@pytest.mark.parametrize("page", PAGES or ["(no book)"])
def test_page_reads_well(server, browser, page, width):
    _viewport(browser, WIDTHS[width])
    mathjax = _open(browser, server + page)
    info = browser.execute_script(_INSPECT, server, LONG_BOLD)
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    problems = []
    if errors:
        problems.append(f"console errors: {errors[:3]}")
    if info["foreign"]:
        problems.append(f"loaded from another host: {info['foreign'][:3]}")
    if mathjax == "not loaded":
        problems.append("the page has math but MathJax never loaded")
    if info["mathRendered"] < info["mathTotal"]:
        problems.append(f"MathJax typeset {info['mathRendered']} of {info['mathTotal']} formulas")
    if info["mathHeadings"]:
        problems.append(
            f"math in headings (the sidebar, the search and the tab title show it as "
            f"raw TeX; say it in words): {info['mathHeadings']}"
        )
    raw = _raw_tex(info["text"] + "\n" + info["title"])
    if raw:
        problems.append(f"raw TeX in the visible text: {raw}")
    broken = [i["src"] for i in info["images"] if not i["ok"]]
    if broken:
        problems.append(f"images that did not load: {broken[:3]}")
    if info["scrollWidth"] > info["innerWidth"] + 1:
        problems.append(
            f"the page is {info['scrollWidth']} px wide in a {info['innerWidth']} px "
            f"window; widest: {info['wide']}"
        )
    if width == "desktop" and info["wideTables"]:
        problems.append(
            f"tables wider than the {info['colWidth']} px text column: "
            f"{info['wideTables']} px (lib.report.table splits or transposes them)"
        )
    reprs = [m.group(0) for out in info["outputs"] for m in OBJECT_REPR.finditer(out)]
    if reprs:
        problems.append(
            f"a Python object printed on the page: {reprs[:3]} (end the cell with a "
            "statement that returns None, or display the object's table)"
        )
    if info["brokenWords"]:
        problems.append(
            f"words broken across lines in a verdict box, a summary table or a "
            f"caption: {info['brokenWords']}"
        )
    if info["longBold"]:
        problems.append(
            f"bold runs of prose over {LONG_BOLD} characters (a phrase may be bold, a "
            f"paragraph not; glued text is bold unless book/_static/book.css says otherwise): "
            f"{info['longBold']}"
        )
    if width == "phone" and info["cutFormulas"]:
        problems.append(
            f"display formulas wider than a phone's column, shown only in part (one formula "
            f"a display, or break it): {info['cutFormulas']}"
        )
    if info["spills"]:
        problems.append(
            f"elements wider than the box that holds them (the book's style sheet, "
            f"book/_static/book.css): {info['spills']}"
        )
    if info["tooWide"]:
        problems.append(
            f"images or text wider than the {info['innerWidth']} px window: {info['tooWide']}"
        )
    if width == "phone":
        reflow = [
            t["name"]
            for t in info["scrollingTables"]
            if t["mustReflow"] or any(p in page for p in REFLOW_PAGES)
        ]
        if reflow:
            problems.append(
                f"tables cut off at the screen's edge that must reflow on a phone "
                f"(stack or transpose, book/_static/book.css): {reflow[:3]}"
            )
        if PAGE_HAS_TEXT.search(page) and info["figureColumn"] < plot.PHONE_COLUMN_PX - 2:
            problems.append(
                f"the text column is {info['figureColumn']} px on a phone, narrower "
                f"than the {plot.PHONE_COLUMN_PX} px lib.plot.figure checks figure "
                "text for: figures would be smaller than checked"
            )
    dead = _dead_links(info["links"], server)
    if dead:
        problems.append(f"links to missing pages or anchors: {dead[:3]}")
    if info["bytes"] > MAX_PAGE_BYTES:
        problems.append(
            f"the page weighs {info['bytes'] / 1e6:.2f} MB (> {MAX_PAGE_BYTES / 1e6} MB)"
        )
    if width == "desktop":
        WEIGHTS[page] = info["bytes"]
        _record_weights()
    shots = os.environ.get("BOOK_SCREENSHOTS")
    if shots:
        _screenshot(
            browser,
            info["height"],
            WIDTHS[width],
            Path(shots) / f"{page.replace('/', '__')[:-5]}-{WIDTHS[width]}.png",
        )
    assert not problems, f"{page} at {WIDTHS[width]} px:\n- " + "\n- ".join(problems)


def _record_weights():
    out = BOOK.parent / "page_weights.json"
    try:
        out.write_text(json.dumps(WEIGHTS, indent=1, sort_keys=True))
    except OSError:
        pass


def _screenshot(driver, height: int, width: int, path: Path) -> None:
    """The whole page: the viewport stretched to the page's height, then back."""
    import base64

    path.parent.mkdir(parents=True, exist_ok=True)
    _viewport(driver, width, min(height, 12000))
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
    path.write_bytes(base64.b64decode(shot["data"]))
    _viewport(driver, width)


def test_search_finds_a_chapter(server, browser):
    """A word of a chapter's title, typed into the book's search, lists that chapter."""
    chapters = [p for p in PAGES if p.startswith("notebooks/")]
    assert chapters, "no chapter pages in the book"
    page = chapters[0]
    html = (BOOK / page).read_text(encoding="utf-8")
    title = re.sub(r"<[^>]+>", "", re.search(r"<h1[^>]*>(.*?)</h1>", html, re.S).group(1))
    word = max(re.findall(r"[A-Za-z]{4,}", title), key=len).lower()
    _viewport(browser, WIDTHS["desktop"])
    browser.get(server + f"search.html?q={word}")
    links = browser.execute_async_script("""
      const done = arguments[arguments.length - 1];
      (async () => {
        for (let i = 0; i < 200; i++) {
          const a = [...document.querySelectorAll('#search-results ul.search li a')];
          if (a.length) { done(a.map(x => x.getAttribute('href'))); return; }
          await new Promise(r => setTimeout(r, 100));
        }
        done([]);
      })();""")
    assert any(page in (href or "") for href in links), (
        f"searching {word!r} (from the title of {page}) did not list it: {links[:5]}"
    )


def test_search_quotes_formulas_in_unicode_not_tex(server, browser):
    """The search page quotes each result's text around the word; a formula there reads as
    Unicode (book/_static/search_math.js), never as raw TeX such as ``\\(\\alpha^c_k\\)``."""
    _viewport(browser, WIDTHS["desktop"])
    browser.get(server + "search.html?q=gradients")
    quotes = browser.execute_async_script("""
      const done = arguments[arguments.length - 1];
      (async () => {
        for (let i = 0; i < 300; i++) {
          const p = [...document.querySelectorAll('#search-results p.context')];
          const n = document.querySelectorAll('#search-results ul.search li').length;
          if (n && p.length === n) { done(p.map(x => x.textContent)); return; }
          await new Promise(r => setTimeout(r, 100));
        }
        done(null);
      })();""")
    assert quotes, "searching 'gradients' listed no page with a quoted summary"
    tex = [q for q in quotes if re.search(r"\\[()\[\]]|\\[A-Za-z]{2,}", q)]
    assert not tex, f"search summaries show raw TeX: {tex[:2]}"
    assert any(re.search(r"[α-ω∑∂]", q) for q in quotes), (
        f"no search summary quotes a formula (expected one near 'gradients'): {quotes[:3]}"
    )
