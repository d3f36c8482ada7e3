"""The HTML pieces of the store report (`analysis.report`): the page shell with its inline CSS
(readable on a phone: viewport meta, tables that scroll sideways inside their box) and inline
JavaScript (click a column header to sort; no network, no library), sortable tables, a matplotlib
figure as inline SVG. Plain strings; every value shown goes through `html.escape`.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from matplotlib.figure import Figure


@dataclass(frozen=True)
class Cell:
    """A table cell: its text (escaped when rendered) or trusted `markup`, and an optional sort
    key (numbers sort as numbers: a duration by its seconds, not by its text)."""

    text: str = ""
    sort: float | str | None = None
    markup: str | None = None


CellLike = Cell | str | int | float | None


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _td(cell: CellLike) -> str:
    if not isinstance(cell, Cell):
        cell = Cell("" if cell is None else str(cell))
    sort = "" if cell.sort is None else f' data-sort="{esc(cell.sort)}"'
    return f"<td{sort}>{cell.markup if cell.markup is not None else esc(cell.text)}</td>"


def table(
    headers: Sequence[str], rows: Iterable[Sequence[CellLike]], *, table_id: str, caption: str = ""
) -> str:
    """A sortable table (click a header) inside a box that scrolls sideways on narrow screens."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "\n".join(f"<tr>{''.join(_td(c) for c in row)}</tr>" for row in rows)
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return (
        f'<div class="scroll"><table class="sortable" id="{esc(table_id)}">{cap}'
        f"<thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table></div>"
    )


def details(summary: str, body_markup: str, *, open_: bool = False) -> str:
    """Content shown on demand (a click on `summary`); `open_`: unfolded to begin with."""
    attr = " open" if open_ else ""
    return f"<details{attr}><summary>{esc(summary)}</summary>{body_markup}</details>"


WIDE_INCHES = 10.0


def svg(fig: Figure) -> str:
    """The figure as inline SVG markup (no XML prolog; scales to its box through CSS). Element
    ids are made unique per figure: several inline SVGs share one document's id space."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    if fig.get_figwidth() > WIDE_INCHES:  # several panels a row: scroll sideways on a phone
        text = text.replace("<svg", '<svg class="wide"', 1)
    prefix = f"f{id(fig):x}-"
    text = re.sub(r'id="([^"]+)"', lambda m: f'id="{prefix}{m.group(1)}"', text)
    return re.sub(
        r"(url\(#|href=\"#)([^)\"]+)", lambda m: f"{m.group(1)}{prefix}{m.group(2)}", text
    )


CSS = """
:root { color-scheme: light; --line: #d0d7de; --muted: #57606a; --bad: #b42318; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #1f2328; background: #fff; }
header, main { max-width: 1200px; margin: 0 auto; padding: 0 14px; }
header { padding-top: 14px; border-bottom: 1px solid var(--line); }
h1 { font-size: 1.35em; margin: 0.2em 0; } h2 { font-size: 1.2em; margin-top: 1.6em; }
h3 { font-size: 1.05em; margin-bottom: 0.3em; }
nav { display: flex; flex-wrap: wrap; gap: 4px 14px; padding: 8px 0; }
nav a { color: #0969da; text-decoration: none; }
.muted, caption, .note { color: var(--muted); font-size: 0.9em; }
caption { text-align: left; caption-side: bottom; padding-top: 4px; }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; margin: 6px 0 12px; }
table { border-collapse: collapse; font-size: 0.88em; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left;
         vertical-align: top; white-space: nowrap; }
td details, td pre { white-space: pre-wrap; max-width: 60ch; }
th { position: sticky; top: 0; background: #f6f8fa; cursor: pointer; user-select: none; }
th[data-dir="asc"]::after { content: " \\25B2"; } th[data-dir="desc"]::after { content: " \\25BC"; }
tr:hover td { background: #f6f8fa; }
.failed { color: var(--bad); } .done { color: #1a7f37; } .running { color: #0969da; }
figure { margin: 10px 0 22px; overflow-x: auto; } figure svg { max-width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 0.9em; }
pre { background: #f6f8fa; padding: 8px; overflow-x: auto; font-size: 0.85em; }
summary { cursor: pointer; color: #0969da; }
@media (max-width: 600px) { body { font-size: 14px; } th, td { padding: 3px 5px; }
  figure svg.wide { max-width: none; width: 200%; } }
"""

# Click a header to sort its table (numbers as numbers; `data-sort` overrides the text); a URL
# `#sort=TABLE_ID:COLUMN` sorts on load (how the browser test drives it).
JS = """
(function () {
  function key(row, i) {
    var c = row.cells[i]; if (!c) return "";
    var v = c.hasAttribute("data-sort") ? c.getAttribute("data-sort") : c.textContent.trim();
    var n = Number(v.split(" ")[0].replace("%", ""));
    return v !== "" && !isNaN(n) ? n : v.toLowerCase();
  }
  function sort(th) {
    var table = th.closest("table"), body = table.tBodies[0], i = th.cellIndex;
    var dir = th.getAttribute("data-dir") === "asc" ? -1 : 1;
    table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("data-dir"); });
    th.setAttribute("data-dir", dir === 1 ? "asc" : "desc");
    Array.prototype.slice.call(body.rows).sort(function (a, b) {
      var x = key(a, i), y = key(b, i);
      if (typeof x === typeof y) return dir * (x < y ? -1 : x > y ? 1 : 0);
      return dir * (typeof x === "number" ? -1 : 1);
    }).forEach(function (r) { body.appendChild(r); });
  }
  document.querySelectorAll("table.sortable th").forEach(function (th) {
    th.addEventListener("click", function () { sort(th); });
  });
  var m = /^#sort=([^:]+):(\\d+)$/.exec(location.hash);
  if (m) { var t = document.getElementById(m[1]); if (t) sort(t.tHead.rows[0].cells[+m[2]]); }
  document.documentElement.className = "js";
})();
"""


def page(title: str, header_markup: str, sections: Sequence[tuple[str, str, str]]) -> str:
    """The whole document: `sections` are (anchor, heading, markup), listed in the nav."""
    # "s-" keeps section anchors apart from table ids (a table may be named like its section)
    nav = "".join(f'<a href="#s-{esc(a)}">{esc(h)}</a>' for a, h, _ in sections)
    body = "\n".join(
        f'<section id="s-{esc(a)}"><h2>{esc(h)}</h2>{m}</section>' for a, h, m in sections
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style></head>\n<body>\n"
        f"<header>{header_markup}<nav>{nav}</nav></header>\n<main>\n{body}\n</main>\n"
        f"<script>{JS}</script>\n</body></html>\n"
    )
