"""SVG uploads: measured with a parser that cannot be made to expand entities, then sanitised (CONTRACT 4).

SVGs are stored as uploaded once sanitised, never rasterised. A sanitiser's work grows with
nesting (issue 13: 100,000 nested <g> in 700 KB took one process past 9.9 GB), so the document is
first measured against the limits in core/upload_rules.py, and svg-hush only ever sees a bounded one.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import py_svg_hush
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as DefusedET

from core import upload_rules


class InvalidSvg(ValueError):
    """The SVG is over a limit, not well-formed XML, or could not be sanitised."""


_LINK_ATTRS = ("href", "{http://www.w3.org/1999/xlink}href")


def sanitize_svg(data: bytes) -> bytes:
    """Remove scripts, event handlers and external references; raise InvalidSvg if unparsable.

    The file is first measured with a parser that refuses entity declarations and external
    references (defusedxml), within SVG_MAX_BYTES, SVG_MAX_DEPTH and SVG_MAX_ELEMENTS, so the
    sanitiser only ever sees a bounded document. svg-hush (a maintained sanitiser) then drops
    scripts, handlers and foreign content; it rewrites external URLs to relative ones, so links
    that are not in-document (#id) or inline data are removed as well.
    """
    check_svg_bounds(data)
    try:
        hushed = py_svg_hush.filter_svg(data)
        ET.register_namespace("", "http://www.w3.org/2000/svg")
        ET.register_namespace("xlink", "http://www.w3.org/1999/xlink")
        root = DefusedET.fromstring(hushed)
        for element in root.iter():
            for attr in _LINK_ATTRS:
                value = element.get(attr)
                if value is not None and not (value.startswith("#") or value.startswith("data:image/")):
                    del element.attrib[attr]
        return ET.tostring(root, encoding="utf-8", xml_declaration=True)
    except Exception as exc:
        raise InvalidSvg(f"SVG could not be sanitised: {exc}") from None


class _SvgMeter:
    """Parser target that counts elements and nesting, and stops the parse past a limit."""

    def __init__(self) -> None:
        self.depth = self.elements = 0

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        self.depth += 1
        self.elements += 1
        if self.depth > upload_rules.SVG_MAX_DEPTH:
            raise InvalidSvg(f"SVG nests deeper than {upload_rules.SVG_MAX_DEPTH} levels")
        if self.elements > upload_rules.SVG_MAX_ELEMENTS:
            raise InvalidSvg(f"SVG has more than {upload_rules.SVG_MAX_ELEMENTS} elements")

    def end(self, tag: str) -> None:
        self.depth -= 1

    def data(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


def check_svg_bounds(data: bytes) -> None:
    """Raise InvalidSvg unless the SVG is within the size, depth and element limits and declares no entities."""
    if len(data) > upload_rules.SVG_MAX_BYTES:
        raise InvalidSvg(f"SVG is over {upload_rules.SVG_MAX_BYTES} bytes")
    parser = DefusedET.DefusedXMLParser(
        target=_SvgMeter(), forbid_dtd=False, forbid_entities=True, forbid_external=True
    )
    try:
        parser.feed(data)
        parser.close()
    except InvalidSvg:
        raise
    except (DefusedXmlException, ET.ParseError) as exc:
        raise InvalidSvg(f"SVG is not acceptable XML: {exc}") from None
