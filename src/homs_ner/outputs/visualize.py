"""Self-contained, right-to-left HTML pages of annotated and predicted articles (displaCy).

Entities and clauses are drawn together with displaCy's span style (clauses contain
entities, and the span style is the one that shows nested spans), in the schema's colours.
Relations, which displaCy has no style for across spans, are listed under each paragraph as
`head -> label -> child`. Gold and predicted docs of the same article sit side by side,
paragraph by paragraph, so disagreements are visible at a glance.

The page has no external resources (no fonts, scripts or stylesheets to fetch).
"""

from __future__ import annotations

import html
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from spacy import displacy
from spacy.displacy.templates import TPL_SPAN_RTL, TPL_SPAN_SLICE_RTL, TPL_SPAN_START_RTL
from spacy.tokens import Doc

from homs_ner.data.conversion import doc_spans, relations_of
from homs_ner.data.corpus import paragraph_spans
from homs_ner.data.schema import Schema

# spaCy 3.8's SpanRenderer picks its templates before it reads the doc's direction, so the
# right-to-left ones must be passed explicitly.
RTL_TEMPLATE = {"span": TPL_SPAN_RTL, "slice": TPL_SPAN_SLICE_RTL, "start": TPL_SPAN_START_RTL}

PAGE = """<!DOCTYPE html>
<html lang="ar" dir="rtl">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: "Noto Naskh Arabic", "DejaVu Sans", sans-serif; margin: 1.5em; background: #fff; color: #222; }}
h1 {{ font-size: 1.4em; }}
div.spans {{ line-height: 4.2 !important; }}
table.paras {{ border-collapse: collapse; width: 100%; table-layout: fixed; }}
table.paras th, table.paras td {{ border: 1px solid #ddd; vertical-align: top; padding: 0.4em 0.6em; }}
table.paras th {{ background: #f5f5f5; }}
ul.rels {{ font-size: 0.85em; margin: 0.3em 0; padding-inline-start: 1.2em; color: #333; }}
ul.rels .lab {{ font-family: monospace; direction: ltr; unicode-bidi: isolate; color: #555; }}
.legend span {{ display: inline-block; padding: 0.1em 0.5em; margin: 0.15em; border-radius: 3px; font-size: 0.8em; }}
.pid {{ font-family: monospace; font-size: 0.75em; color: #888; direction: ltr; unicode-bidi: isolate; }}
</style>
</head>
<body>
<h1>{title}</h1>
<div class="legend">{legend}</div>
<table class="paras">
<tr><th style="width:3em">#</th>{headers}</tr>
{rows}
</table>
</body>
</html>
"""


def colours(schema: Schema) -> dict[str, str]:
    """displaCy colour options for every span label as the docs carry it (ACTOR, CLAUSE:WEAPONS)."""
    return {label.name: label.color for label in schema.doccano_span_labels}


def _paragraph_markup(doc: Doc, start: int, end: int, schema: Schema, options: dict) -> str:
    """displaCy span markup of doc.text[start:end] plus the relations whose head lies in it."""
    window = doc.char_span(start, end, alignment_mode="expand")
    if window is None:
        return ""
    spans = [
        {"start_token": s.start - window.start, "end_token": s.end - window.start, "label": label}
        for s, label in doc_spans(doc, schema)
        if s.start >= window.start and s.end <= window.end
    ]
    parsed = {
        "text": window.text,
        "tokens": [t.text for t in window],
        "spans": spans,
        "settings": {"lang": "ar", "direction": "rtl"},
    }
    markup = displacy.render(parsed, style="span", manual=True, options=options)
    rels = [r for r in relations_of(doc) if start <= r["head"]["start"] < end]
    if rels:
        items = "".join(
            "<li>{} <span class=\"lab\">{} &rarr; {} &rarr; {}</span> {}</li>".format(
                html.escape(doc.text[r["head"]["start"] : r["head"]["end"]]),
                html.escape(r["head"]["label"]),
                html.escape(r["label"]),
                html.escape(r["child"]["label"]),
                html.escape(doc.text[r["child"]["start"] : r["child"]["end"]]),
            )
            for r in rels
        )
        markup += f'<ul class="rels">{items}</ul>'
    return markup


def render_article(title: str, columns: Sequence[tuple[str, Doc]], schema: Schema) -> str:
    """One HTML page: a column per (name, doc) of the same text, a row per paragraph."""
    texts = {doc.text for _, doc in columns}
    if len(texts) != 1:
        raise ValueError(f"{title}: the docs to compare do not have the same text")
    options = {"colors": colours(schema), "spans_key": schema.span_group, "template": RTL_TEMPLATE}
    text = texts.pop()
    rows = []
    for i, (start, end) in enumerate(paragraph_spans(text)):
        cells = "".join(f"<td>{_paragraph_markup(doc, start, end, schema, options)}</td>" for _, doc in columns)
        rows.append(f'<tr><td class="pid">{i:03d}</td>{cells}</tr>')
    legend = "".join(
        f'<span style="background:{colour}">{html.escape(label)}</span>' for label, colour in colours(schema).items()
    )
    headers = "".join(f"<th>{html.escape(name)}</th>" for name, _ in columns)
    return PAGE.format(title=html.escape(title), legend=legend, headers=headers, rows="\n".join(rows))


# Headless Chromium on a machine without network: the background-networking flags stop it
# from trying (and failing, noisily) to reach Google's services at every start.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
)


def chromium(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
    """Run Debian's headless Chromium with a throw-away profile; raise if it is missing."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        raise FileNotFoundError("chromium not found: install Debian's `chromium` package (make test does)")
    with tempfile.TemporaryDirectory(prefix="homs-ner-chromium-") as profile:
        return subprocess.run(
            [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=timeout
        )


def screenshot(page: Path, png: Path, width: int = 1400, height: int = 1800) -> Path:
    """A PNG of the page as a real browser lays it out (right-to-left, displaCy styles)."""
    png.parent.mkdir(parents=True, exist_ok=True)
    done = chromium(f"--screenshot={png.resolve()}", f"--window-size={width},{height}", page.resolve().as_uri())
    if done.returncode != 0 or not png.exists():
        raise RuntimeError(f"chromium could not screenshot {page} (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return png
