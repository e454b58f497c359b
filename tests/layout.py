"""A print-layout checker for tests: lay HTML out with WeasyPrint and list boxes that leave the page's text area.

WeasyPrint never clips content to the page's content box: a table wider than the text width runs into the right
margin, or off the paper, and nothing complains. `overflows` walks every laid-out page's box tree and reports the
boxes (tables, cells, blocks, inline text) whose border box starts left of, or ends right of, the content box of
their page. One entry per element and page, with the largest overshoot, so a too-wide table shows up once and each
of its cells that sticks out shows up beside it.

Reads WeasyPrint's box tree (`Page._page_box`, weasyprint.formatting_structure.boxes): not a public API, so a
WeasyPrint upgrade may need this module to follow.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from weasyprint import HTML
from weasyprint.document import Document
from weasyprint.formatting_structure import boxes

# Boxes as wide as their block or table, which is reported itself: their own entries would only repeat it.
_SAME_WIDTH_AS_PARENT = (boxes.LineBox, boxes.TableRowGroupBox, boxes.TableRowBox, boxes.TableColumnGroupBox,
                         boxes.TableColumnBox)
PX_TO_PT = 0.75  # WeasyPrint lays out in CSS px (1/96 in); a point is 1/72 in
SAMPLE_CHARS = 60


@dataclass(frozen=True)
class Overflow:
    """One element that sticks out of its page's text area."""

    page: int  # 1-based
    tag: str  # the element's tag ('table', 'td', 'code'...); anonymous boxes report their parent element's
    classes: str  # the element's class attribute ('' when none)
    element_id: str  # the element's id attribute ('' when none)
    within: str  # the nearest enclosing element with an id, e.g. 'table#t-vbs_blockers-actions' ('' when none)
    kind: str  # the WeasyPrint box class that overshot most, e.g. TableBox, TableCellBox, TextBox
    side: str  # 'right' or 'left'
    overshoot_pt: float  # how far past the content box edge, in points
    text: str  # the start of the box's text

    def __str__(self) -> str:
        name = self.tag + "".join(f".{c}" for c in self.classes.split())
        name += f"#{self.element_id}" if self.element_id else ""
        within = f" in {self.within}" if self.within else ""
        return (f"page {self.page}: <{name}>{within} ({self.kind}) {self.overshoot_pt}pt past the {self.side} margin: "
                f"{self.text!r}")


def overflows(html: str, base_url: str, url_fetcher: Any = None, tolerance_pt: float = 1.0) -> list[Overflow]:
    """Lay html out as WeasyPrint would print it and return the elements that leave their page's content box by
    more than tolerance_pt, in page and document order."""
    kwargs = {"url_fetcher": url_fetcher} if url_fetcher is not None else {}
    return document_overflows(HTML(string=html, base_url=base_url, **kwargs).render(), tolerance_pt)


def document_overflows(document: Document, tolerance_pt: float = 1.0) -> list[Overflow]:
    """overflows() of a document WeasyPrint has already laid out (HTML(...).render())."""
    found: dict[tuple[int, int, str], Overflow] = {}  # (page, element, side) -> the largest overshoot, in page order
    for number, page in enumerate(document.pages, start=1):
        for box, area, clip, within in _boxes(page._page_box):
            if isinstance(box, _SAME_WIDTH_AS_PARENT) or box.is_outside_marker:
                continue  # list bullets hang in the margin on purpose
            # only what is drawn counts: the part of the box inside every clipping ancestor
            left = max(box.border_box_x(), clip[0])
            right = min(box.border_box_x() + box.border_width(), clip[1])
            _note(found, number, box, within, "left", area[0] - left, tolerance_pt)
            _note(found, number, box, within, "right", right - area[1], tolerance_pt)
    return list(found.values())


Span = tuple[float, float]  # left and right x, in px


def _boxes(page_box: boxes.PageBox) -> Iterator[tuple[boxes.Box, Span, Span, str]]:
    """Every box on the page, depth first in document order, with the area it must stay within (the page's content
    box; for running headers and footers in margin boxes, the page itself), the span its clipping ancestors
    (overflow other than visible) let show, and its nearest ancestor element with an id ('tag#id')."""
    content = (page_box.content_box_x(), page_box.content_box_x() + page_box.width)
    paper = (0.0, page_box.margin_width())
    unclipped = (float("-inf"), float("inf"))
    stack = [(child, paper if isinstance(child, boxes.MarginBox) else content, unclipped, "")
             for child in reversed(page_box.children)]
    while stack:
        box, area, clip, within = stack.pop()
        yield box, area, clip, within
        if not isinstance(box, boxes.ParentBox):
            continue
        if box.style["overflow"] != "visible":
            clip = (max(clip[0], box.padding_box_x()), min(clip[1], box.padding_box_x() + box.padding_width()))
        if box.element is not None and box.element.get("id"):
            within = f"{box.element_tag}#{box.element.get('id')}"
        children = [child for child in box.all_children() if isinstance(child, boxes.Box)]
        stack.extend((child, area, clip, within) for child in reversed(children))


def _note(found: dict[tuple[int, int, str], Overflow], page: int, box: boxes.Box, within: str, side: str,
          overshoot_px: float, tolerance_pt: float) -> None:
    """Record box as overflowing on page and side if it overshoots by more than the tolerance (px in, pt out)."""
    overshoot = round(overshoot_px * PX_TO_PT, 1)
    if overshoot <= tolerance_pt:
        return
    element = box.element  # None for page-margin boxes (running headers and footers) and what they hold
    key = (page, id(element if element is not None else box), side)
    if key in found and found[key].overshoot_pt >= overshoot:
        return
    found[key] = Overflow(
        page=page,
        tag=box.element_tag or "@page",
        classes=(element.get("class") or "") if element is not None else "",
        element_id=(element.get("id") or "") if element is not None else "",
        within=within,
        kind=type(box).__name__ if not box.is_table_wrapper else "TableWrapperBox",
        side=side,
        overshoot_pt=overshoot,
        text=_text(box),
    )


def _text(box: boxes.Box) -> str:
    """The first SAMPLE_CHARS characters of the text laid out in box (its text boxes, spaces collapsed)."""
    words: list[str] = []
    size = 0
    for child in box.descendants():
        if isinstance(child, boxes.TextBox):
            words.append(child.text.strip())
            size += len(child.text)
            if size > SAMPLE_CHARS:
                break
    return " ".join(" ".join(w for w in words if w).split())[:SAMPLE_CHARS]


def split_header_words(document: Document, table_class: str, tolerance_pt: float = 0.5) -> list[str]:
    """The header cells (th) of tables with class table_class whose words the layout split between their letters
    (a line holds part of a word) or let stick out of their cell, one line each ('page N: <text>: why'). Words are
    what spaces separate, so this suits languages written with spaces between words."""
    found: list[str] = []
    for number, page in enumerate(document.pages, start=1):
        tables = [box for box, _area, _clip, _within in _boxes(page._page_box) if isinstance(box, boxes.TableBox)
                  and table_class in (box.element.get("class") or "").split()]
        cells = [cell for table in tables for cell in table.descendants()
                 if isinstance(cell, boxes.TableCellBox) and cell.element_tag == "th"]
        for cell in cells:
            words = "".join(cell.element.itertext()).split()
            lines = [" ".join(t.text for t in line.descendants() if isinstance(t, boxes.TextBox)).split()
                     for line in cell.descendants() if isinstance(line, boxes.LineBox)]
            # a line may end after a hyphen ('Reboot-' / 'free'): that is where the word itself breaks
            laid_out = " ".join(w for line in lines for w in line).replace("- ", "-").split()
            if laid_out != words:
                found.append(f"page {number}: {' '.join(words)!r}: split into lines {lines}")
            cell_right = cell.content_box_x() + cell.width
            for text in (t for t in cell.descendants() if isinstance(t, boxes.TextBox)):
                past = (text.position_x + text.width - cell_right) * PX_TO_PT
                if past > tolerance_pt:
                    found.append(f"page {number}: {text.text!r} sticks {past:.1f}pt out of its header cell")
    return found
