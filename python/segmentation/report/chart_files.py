"""Chart files as WeasyPrint reads them quickest, drawing the same: lean SVG, opaque PNG.

Matplotlib's SVG without what draws nothing, so that WeasyPrint has fewer nodes to walk.

Matplotlib wraps every artist in a ``<g id="...">`` (a tick is four nested groups around one
path and one text) and adds an RDF ``<metadata>`` block: more than half a chart's nodes,
each parsed, cascaded and visited by WeasyPrint's SVG renderer. A group with no attribute
but an id nobody refers to changes nothing in the drawing, nor does ``rotate(0 x y)`` on
a text, so they are taken out.

Every element also carries a ``style`` attribute that WeasyPrint parses as CSS, node by
node, and the file one ``*{...}`` rule that it matches against every node. Both become
plain attributes, in the cascade's order (the element's own attributes, then the ``*``
rule, then its ``style``): the same values on every node, without a CSS parser.
"""

from __future__ import annotations

import re
from pathlib import Path
from xml.etree import ElementTree

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
_REFERENCE = re.compile(rb'(?:href="#|url\(#)([^")]+)')
_NO_ROTATION = re.compile(r"rotate\(-?0 [-+0-9.e]+ [-+0-9.e]+\)")
_UNIVERSAL_RULE = re.compile(r"\*\s*\{([^{}]*)\}")
_PLAIN_DECLARATIONS = re.compile(r"[^!\\/{}<>]*")  # no !important, escapes, comments or blocks


def finish(path: Path, suffix: str) -> None:
    """Rewrite a chart file matplotlib just saved (a ``suffix`` file, e.g. ".svg") in its lean or opaque form."""
    if suffix == ".svg":
        path.write_bytes(lean_svg(path.read_bytes()))
    elif suffix == ".png":
        opaque_png(path)


def opaque_png(path: Path) -> None:
    """The PNG without its alpha channel when it is opaque everywhere (a chart on a white figure):
    WeasyPrint would split it off and encode it as a second image, for every chart of every render."""
    from PIL import Image

    with Image.open(path) as image:
        image.load()
    if image.mode == "RGBA" and image.getchannel("A").getextrema() == (255, 255):
        image.convert("RGB").save(path, format="png", dpi=image.info.get("dpi", (72, 72)))


def lean_svg(data: bytes) -> bytes:
    """The same drawing with fewer nodes: unreferenced bare groups flattened, metadata and no-op rotations dropped."""
    ElementTree.register_namespace("", SVG_NS)
    ElementTree.register_namespace("xlink", XLINK_NS)
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError:  # e.g. a control character in a label: left as drawn, for WeasyPrint to judge
        return data
    referenced = {match.decode() for match in _REFERENCE.findall(data)}
    _flatten(root, referenced)
    _styles_as_attributes(root)
    ElementTree.indent(root, space="")
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)


def _flatten(parent: ElementTree.Element, referenced: set[str]) -> None:
    kept: list[ElementTree.Element] = []
    for child in parent:
        tag = child.tag.rpartition("}")[2]
        if tag == "metadata":
            continue
        _flatten(child, referenced)
        if tag == "g" and set(child.attrib) <= {"id"} and child.get("id") not in referenced and not _has_text(child):
            kept.extend(child)
            continue
        if tag == "text" and _NO_ROTATION.fullmatch(child.get("transform", "")):
            del child.attrib["transform"]
        kept.append(child)
    parent[:] = kept


def _has_text(element: ElementTree.Element) -> bool:
    return bool((element.text or "").strip())


def _declarations(css: str) -> dict[str, str] | None:
    """``name: value; ...`` as a dict; None unless every declaration is a plain one."""
    if not _PLAIN_DECLARATIONS.fullmatch(css):
        return None
    declarations = {}
    for item in filter(None, (part.strip() for part in css.split(";"))):
        name, colon, value = item.partition(":")
        if not colon or not name.strip() or not value.strip():
            return None
        declarations[name.strip()] = value.strip()
    return declarations


def _styles_as_attributes(root: ElementTree.Element) -> None:
    """The ``*{...}`` rule and every ``style`` attribute as attributes, when the sheet is that one rule."""
    sheets = [(parent, child) for parent in root.iter() for child in parent if child.tag == f"{{{SVG_NS}}}style"]
    if len(sheets) != 1:
        return
    parent, sheet = sheets[0]
    rule = _UNIVERSAL_RULE.fullmatch((sheet.text or "").strip())
    universal = _declarations(rule.group(1)) if rule else None
    if universal is None:
        return
    parent.remove(sheet)
    for element in root.iter():
        element.attrib.update(universal)
        own = _declarations(element.get("style", ""))
        if own is not None:
            element.attrib.pop("style", None)
            element.attrib.update(own)
