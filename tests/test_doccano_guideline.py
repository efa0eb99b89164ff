"""The guideline as pushed to Doccano: unwrapped, Arabic right-to-left, nothing lost."""

import re
from pathlib import Path

from homs_ner.doccano.guideline import RTL_CLOSE, RTL_OPEN, is_arabic, render_for_doccano, split_blocks

GUIDELINES = Path(__file__).resolve().parents[1] / "annotations" / "GUIDELINES.md"


def test_paragraphs_and_list_items_are_unwrapped_but_tables_and_headings_kept():
    source = (
        "## Title\n\nA paragraph wrapped\nover two lines.\n\n- item one\n  continues here\n- item two\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n"
    )
    assert render_for_doccano(source) == (
        "## Title\n\nA paragraph wrapped over two lines.\n\n- item one continues here\n- item two\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n"
    )


def test_arabic_runs_are_wrapped_in_rtl_divs_with_markdown_inside():
    source = "English.\n\n### ٢. العمل\n\nنص عربي\nفي سطرين مع `[قوات النظام]ACTOR`.\n\n---\n\nMore English.\n"
    assert render_for_doccano(source) == (
        f"English.\n\n{RTL_OPEN}\n\n### ٢. العمل\n\nنص عربي في سطرين مع `[قوات النظام]ACTOR`.\n\n{RTL_CLOSE}\n\n"
        "---\n\nMore English.\n"
    )


def test_the_project_guideline_renders_completely():
    source = GUIDELINES.read_text(encoding="utf-8")
    rendered = render_for_doccano(source)
    # Nothing lost or reordered: the same words in the same order, apart from the divs.
    words = [w for w in rendered.split() if w not in (RTL_OPEN.split() + [RTL_CLOSE])]
    assert words == source.split()
    assert rendered.count(RTL_OPEN) == rendered.count(RTL_CLOSE) > 10
    blocks = split_blocks(rendered)
    inside = False
    for block in blocks:
        line = block[0]
        if line in (RTL_OPEN, RTL_CLOSE):
            inside = line == RTL_OPEN
            continue
        assert is_arabic(block) == inside, block[0][:60]
        if not re.match(r"\s*(#|\||```|<|-{3})", line):
            # A paragraph is one line; a list has one line per item.
            assert all(re.match(r"\s*(?:[-*+]|\d+[.)])\s", l) for l in block[1:]), block


def test_the_guideline_opens_with_the_annotators_workflow_in_both_languages():
    rendered = render_for_doccano(GUIDELINES.read_text(encoding="utf-8"))
    first_section = rendered.split("\n## ")[1]
    assert first_section.startswith("0. ")
    assert RTL_OPEN in first_section  # the Arabic half, right-to-left
    for topic in ("key", "select", "relation", "pull"):
        assert topic in first_section.lower(), topic


def test_no_promise_of_a_warning_in_the_ui():
    text = GUIDELINES.read_text(encoding="utf-8")
    assert "shows a warning" not in text and "وتُظهر تنبيهاً" not in text
