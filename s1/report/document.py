"""A report as a list of blocks, rendered to markdown (images linked) and self-contained HTML (images embedded)."""

from __future__ import annotations

import base64
import html
import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Para:
    text: str


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    highlight: set[tuple[int, int]] = field(default_factory=set)  # (row, column) cells to mark


@dataclass
class Image:
    path: Path
    caption: str


Block = Heading | Para | Table | Image


def to_markdown(blocks: list[Block], base_dir: Path) -> str:
    out = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"{'#' * b.level} {b.text}\n")
        elif isinstance(b, Para):
            out.append(b.text + "\n")
        elif isinstance(b, Table):
            out.append("| " + " | ".join(b.header) + " |")
            out.append("|" + "---|" * len(b.header))
            for i, row in enumerate(b.rows):
                cells = [f"**{c}**" if (i, j) in b.highlight else str(c) for j, c in enumerate(row)]
                out.append("| " + " | ".join(cells) + " |")
            out.append("")
        elif isinstance(b, Image):
            rel = os.path.relpath(b.path, base_dir)
            out.append(f"![{b.caption}]({rel})\n")
    return "\n".join(out)


CSS = """
body { font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif; max-width: 980px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; }
th { background: #f2f2f2; } td.diff { background: #fff3b0; font-weight: bold; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { color: #666; font-size: 13px; } p.note { color: #555; }
"""


def to_html(blocks: list[Block], title: str) -> str:
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
           f"<style>{CSS}</style></head><body>"]
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"<h{b.level}>{html.escape(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            out.append(f"<p class='note'>{html.escape(b.text)}</p>")
        elif isinstance(b, Table):
            out.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in b.header) + "</tr>")
            for i, row in enumerate(b.rows):
                cells = "".join(
                    f"<td{' class=diff' if (i, j) in b.highlight else ''}>{html.escape(str(c))}</td>"
                    for j, c in enumerate(row))
                out.append(f"<tr>{cells}</tr>")
            out.append("</table>")
        elif isinstance(b, Image):
            data = base64.b64encode(Path(b.path).read_bytes()).decode("ascii")
            out.append(f"<figure><img alt='{html.escape(b.caption)}' src='data:image/png;base64,{data}'>"
                       f"<figcaption>{html.escape(b.caption)}</figcaption></figure>")
    # Lets a headless browser (and a person in devtools) see that every embedded image decoded.
    out.append("<script>window.addEventListener('load', () => { const im = [...document.images]; "
               "document.body.dataset.imagesOk = im.filter(i => i.complete && i.naturalWidth > 0).length "
               "+ '/' + im.length; });</script>")
    out.append("</body></html>")
    return "\n".join(out)
