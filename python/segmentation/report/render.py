"""Rendering: Jinja2 (autoescaped) → HTML → WeasyPrint PDF, with a fetcher limited to the report's assets.

Data reaches the page only as values in autoescaped templates, and WeasyPrint fetches
nothing but the report's own stylesheets and charts (``AssetFetcher``). Every file is
written atomically (temporary file beside it, then rename).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import gc
import logging
import mimetypes
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import jinja2
from markupsafe import Markup
from weasyprint import CSS, HTML
from weasyprint.css.counters import CounterStyle
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher, URLFetcherResponse

from segmentation.report.warehouse import ReportError

logger = logging.getLogger(__name__)

STYLESHEETS = ("fonts.css", "variables.css", "pages.css", "style.css")
SCREEN_STYLESHEET = "screen.css"  # the HTML companion only: pages as sheets on a grey desk


# --- safe asset fetching -------------------------------------------------------------------


class FetchRefused(ValueError):
    """A URL outside the report's own assets."""


class AssetFetcher(URLFetcher):
    """Serve only files inside the allowed directories; refuse (and log) anything else.

    The report needs its stylesheets and its charts, nothing more: no network, no
    other local file. WeasyPrint catches the refusal, warns and leaves the resource
    out, so a hostile URL can never make the render reach outside.
    """

    def __init__(
        self, allowed_dirs: Iterable[Path], before_read: Callable[[Path], object] | None = None, **kwargs
    ) -> None:
        super().__init__(allowed_protocols=("file",), allow_redirects=False, **kwargs)
        self.allowed_dirs = tuple(Path(d).resolve() for d in allowed_dirs)
        self.before_read = before_read  # e.g. wait until a chart being drawn is written
        self.refused: list[str] = []

    def fetch(self, url: str, headers=None) -> URLFetcherResponse:
        if self.before_read is not None:
            self._wait(url)
        path = self._allowed_path(url)
        if path is None:
            self.refused.append(url)
            logger.warning("refused to fetch %s: not one of the report's own assets", url[:200])
            raise FetchRefused(f"refused: {url[:200]}")
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if content_type.startswith("text/"):
            content_type += "; charset=utf-8"
        return URLFetcherResponse(path.as_uri(), body=path.read_bytes(), headers={"Content-Type": content_type})

    def _wait(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme.lower() == "file" and parts.netloc in ("", "localhost"):
            self.before_read(Path(url2pathname(unquote(parts.path))))

    def _allowed_path(self, url: str) -> Path | None:
        try:
            parts = urlsplit(url)
        except ValueError:
            return None
        if parts.scheme.lower() != "file" or parts.netloc not in ("", "localhost"):
            return None
        path = Path(url2pathname(unquote(parts.path))).resolve()  # resolves "..", symlinks
        if not path.is_file():
            return None
        if any(path.is_relative_to(d) for d in self.allowed_dirs):
            return path
        return None


@functools.lru_cache(maxsize=8)
def template_environment(templates_dir: Path) -> jinja2.Environment:
    """Every template autoescaped (whatever its name), and undefined names are errors.

    One environment per folder and process: the templates are compiled once, not once per
    render (the PDF and its HTML twin); Jinja still reloads a template whose file changed.
    """
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(context: Mapping, templates_dir: Path) -> str:
    return template_environment(Path(templates_dir)).get_template("report.html").render(**context)


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Write through a temporary file beside `path`, then rename: a killed run leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


# --- the user-agent stylesheet ------------------------------------------------------------

# WeasyPrint's default stylesheet gives every element six pseudo-elements for footnotes and
# notes, and a ::marker: seven styles computed per element, most of the cascade's time. The
# report has no footnotes or notes, and markers only on list items; the rest is kept as is.
_UA_UNUSED = re.compile(r"^::(?:footnote-call|footnote-marker|note-call|note-marker|note-callback) \{[^}\n]*\}\n", re.M)
_UA_MARKER = re.compile(r"^::marker \{", re.MULTILINE)


def report_ua_css(ua: str) -> str | None:
    """WeasyPrint's user-agent CSS without the rules the report cannot use; None if it is not as expected."""
    trimmed, removed = _UA_UNUSED.subn("", ua)
    trimmed, markers = _UA_MARKER.subn("li::marker {", trimmed)
    return trimmed if (removed, markers) == (5, 1) else None


@functools.cache
def _ua_stylesheet() -> CSS | None:
    from weasyprint.html import UA

    css = report_ua_css(UA)
    if css is None:
        logger.warning("WeasyPrint's default stylesheet is not the expected one: using it untrimmed")
        return None
    return CSS(string=css, counter_style=CounterStyle())


class ReportHTML(HTML):
    """A WeasyPrint document with the report's user-agent stylesheet (``report_ua_css``)."""

    def _ua_stylesheets(self, forms: bool = False):
        sheet = None if forms else _ua_stylesheet()
        return super()._ua_stylesheets(forms) if sheet is None else [sheet]


@functools.cache
def font_configuration() -> FontConfiguration:
    """One font configuration per process: Pango's fonts, once loaded, serve every later render.

    The report declares no @font-face (its fonts are the system's), so nothing is added to it
    from one document to the next; a fresh one per render loaded and shaped the fonts again.
    """
    return FontConfiguration()


# The report's faces (body, condensed tables, bold, the cover's light subtitle, the portrait's italic).
_FONT_SAMPLE = (
    '<p style="font-family: DejaVu Sans">Aa 0,9 <b>Aa 0,9</b> <i>Aa</i> <span style="font-weight: 200">Aa</span>'
    '<span style="font-family: DejaVu Sans Condensed">Aa 0,9 <b>Aa 0,9</b></span></p>'
)


def warm_up(templates_dir: Path) -> None:
    """Compile the templates, parse the default stylesheet and load the fonts now (e.g. while another step runs)."""
    environment = template_environment(Path(templates_dir))
    for name in environment.list_templates(extensions=("html",)):
        environment.get_template(name)
    ReportHTML(string=_FONT_SAMPLE).write_pdf(font_config=font_configuration())


@contextlib.contextmanager
def _no_cyclic_gc():
    """Layout allocates hundreds of thousands of short-lived objects and the cyclic collector
    would walk them again and again (a sixth of the render); they are collected once at the end."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def write_pdf(
    html: str,
    base_dir: Path,
    allowed_dirs: Iterable[Path],
    pdf_path: Path,
    before_read: Callable[[Path], object] | None = None,
) -> int:
    """Lay out and write the PDF; returns its number of pages.

    before_read: called with each local file's path before it is read (charts still being drawn).
    """
    fetcher = AssetFetcher(allowed_dirs, before_read)
    with _no_cyclic_gc():
        document = ReportHTML(string=html, base_url=str(base_dir), url_fetcher=fetcher).render(
            font_config=font_configuration()
        )
        write_atomically(pdf_path, document.write_pdf)
    if fetcher.refused:
        logger.warning("%d resource(s) refused while rendering", len(fetcher.refused))
    return len(document.pages)


def data_url(path: Path) -> str:
    """A chart as a data: URL, so the HTML companion needs no other file."""
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{content_type};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def inline_stylesheets(static_dir: Path) -> Markup:
    """The report's own stylesheets as one <style> body for the HTML companion.

    Marked safe because it is the project's own CSS, never data; refused if it could end
    the <style> element early.
    """
    css = "\n".join((static_dir / name).read_text(encoding="utf-8") for name in (*STYLESHEETS, SCREEN_STYLESHEET))
    if "</" in css:
        raise ReportError(f"a stylesheet in {static_dir} contains '</', which cannot be inlined in <style>")
    return Markup(css)
