"""Rendering: Jinja2 (autoescaped) → HTML → WeasyPrint PDF, with a fetcher limited to the report's assets.

Data reaches the page only as values in autoescaped templates, and WeasyPrint fetches
nothing but the report's own stylesheets and charts (``AssetFetcher``). Every file is
written atomically (temporary file beside it, then rename).
"""

from __future__ import annotations

import base64
import logging
import mimetypes
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import jinja2
from markupsafe import Markup
from weasyprint import HTML
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


def template_environment(templates_dir: Path) -> jinja2.Environment:
    """Every template autoescaped (whatever its name), and undefined names are errors."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(context: Mapping, templates_dir: Path) -> str:
    return template_environment(templates_dir).get_template("report.html").render(**context)


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Write through a temporary file beside `path`, then rename: a killed run leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


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
    document = HTML(string=html, base_url=str(base_dir), url_fetcher=fetcher).render()
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
