"""The annotation guidelines as Doccano's guideline viewer needs them.

Why: `annotations/GUIDELINES.md` is written for a text editor: lines hard-wrapped at about
90 characters, English and Arabic sections side by side. Doccano's viewer (Toast UI)
turns every source line break into a visible break, and lays everything out left to
right, so an Arabic line that mixes in label names (`[قوات النظام]ACTOR`) comes out
scrambled. What is pushed is therefore the same text with

* every paragraph and list item joined onto one line (headings, tables, rules and code
  blocks are left as they are), and
* every run of Arabic blocks wrapped in ``<div dir="rtl">`` ... ``</div>``, with blank
  lines around the Markdown inside so the viewer still renders it as Markdown.

A block is Arabic when it has more Arabic letters than Latin ones.
"""

from __future__ import annotations

import re

_ARABIC = re.compile(r"[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff]")
_LATIN = re.compile(r"[A-Za-z]")
_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s")
_FENCE = re.compile(r"^\s*(```|~~~)")
RTL_OPEN = '<div dir="rtl">'
RTL_CLOSE = "</div>"


def split_blocks(markdown: str) -> list[list[str]]:
    """Blocks of lines separated by blank lines; a fenced code block stays whole."""
    blocks: list[list[str]] = []
    current: list[str] = []
    fenced = False
    for line in markdown.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        if not line.strip() and not fenced:
            if current:
                blocks.append(current)
            current = []
        else:
            current.append(line)
    if current:
        blocks.append(current)
    return blocks


def _kept_as_is(block: list[str]) -> bool:
    """Headings, tables, rules, code and HTML: their line breaks mean something."""
    first = block[0].lstrip()
    return first.startswith(("#", "|", "---", "```", "~~~", "<")) or first.startswith("    ")


def unwrap(block: list[str]) -> list[str]:
    """A paragraph becomes one line; a list keeps one line per item (continuations joined)."""
    if _kept_as_is(block):
        return block
    lines: list[str] = []
    for line in block:
        if _ITEM.match(line) or not lines:
            lines.append(line.rstrip())
        else:
            lines[-1] = f"{lines[-1]} {line.strip()}"
    return lines


def is_arabic(block: list[str]) -> bool:
    text = "\n".join(block)
    return len(_ARABIC.findall(text)) > len(_LATIN.findall(text))


def render_for_doccano(markdown: str) -> str:
    """The guideline text to push: unwrapped, Arabic runs in right-to-left divs."""
    out: list[str] = []
    in_rtl = False
    for block in split_blocks(markdown):
        arabic = is_arabic(block)
        if arabic != in_rtl:
            out.append(RTL_OPEN if arabic else RTL_CLOSE)
            in_rtl = arabic
        out.append("\n".join(unwrap(block)))
    if in_rtl:
        out.append(RTL_CLOSE)
    return "\n\n".join(out) + "\n"
