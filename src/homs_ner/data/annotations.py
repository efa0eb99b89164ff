"""From annotators' Doccano exports to validated Prodigy JSONL and spaCy DocBins.

Input: Doccano JSONL files (export layout or upload layout) or the export zip itself
(one `<username>.jsonl` per annotator). Every record is validated against the schema and
the tokenizer; all problems are collected and reported together, and any error stops the
conversion before anything is written.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from spacy.language import Language
from spacy.tokens import DocBin

from homs_ner.data.conversion import example_to_doc, example_to_prodigy, merge_paragraphs
from homs_ner.data.corpus import Article
from homs_ner.data.io import atomic_write_bytes, export_members, write_jsonl
from homs_ner.data.records import Example, Origin, RecordError, from_doccano
from homs_ner.data.schema import Schema
from homs_ner.data.validation import Problem, TokenPolicy, check_duplicates, check_example, raise_on_errors


@dataclass
class Checked:
    """The outcome of validating a set of inputs."""

    examples: list[Example] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "warning"]


def _annotator_from_name(name: str) -> str:
    return Path(name).stem


def _parse_lines(lines: Iterable[tuple[int, str]], source: str, annotator: str) -> tuple[list[Example], list[Problem]]:
    examples, problems = [], []
    for lineno, line in lines:
        if not line.strip():
            continue
        origin = Origin(source, lineno)
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise RecordError(origin, "expected a JSON object")
            examples.append(from_doccano(record, origin, annotator))
        except json.JSONDecodeError as err:
            problems.append(Problem("error", origin, f"not valid JSON: {err}"))
        except RecordError as err:
            problems.append(Problem("error", err.origin, err.reason))
    return examples, problems


def read_doccano(path: Path, annotator: str | None = None) -> tuple[list[Example], list[Problem]]:
    """Read a Doccano JSONL file or export zip; the annotator is the file (or member) name
    unless `annotator` names one for all records (as for the adjudicated gold)."""
    path = Path(path)
    if path.suffix == ".zip":
        examples, problems = [], []
        for member, data in export_members(path).items():
            text = data.decode("utf-8")
            ex, pr = _parse_lines(enumerate(text.splitlines(), 1), f"{path}!{member}", annotator or _annotator_from_name(member))
            examples += ex
            problems += pr
        return examples, problems
    lines = enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
    return _parse_lines(lines, str(path), annotator or _annotator_from_name(path.name))


def _raw_records(path: Path) -> Iterable[tuple[Origin, dict]]:
    """(origin, record) of every non-blank line of a Doccano JSONL file, as written."""
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            origin = Origin(str(path), lineno)
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise RecordError(origin, f"not valid JSON: {err}") from err
            yield origin, record


def is_labelled(record: dict) -> bool:
    """Whether a Doccano record (either export flavour) carries any span or relation."""
    return bool(record.get("entities") or record.get("label") or record.get("relations"))


def merge_single_pass(paths: Sequence[Path]) -> tuple[list[dict], list[Problem]]:
    """One record per paragraph from single-pass work split among annotators.

    A Doccano export holds every example for every member, so an annotator's file also has
    empty records for the paragraphs others labelled. Per paragraph (meta `paragraph_id`)
    the one record with spans or relations is kept, or an empty one when nobody labelled
    it; two annotators labelling the same paragraph is an error (that needs adjudication,
    not a merge). Records are kept exactly as exported, in first-seen order.
    """
    kept: dict[str, tuple[Origin, dict]] = {}
    problems: list[Problem] = []
    for path in paths:
        for origin, record in _raw_records(path):
            key = str(record.get("paragraph_id") or (record.get("meta") or {}).get("paragraph_id") or "")
            if not key:
                problems.append(Problem("error", origin, "record has no paragraph_id meta"))
                continue
            labelled = is_labelled(record)
            if key not in kept:
                kept[key] = (origin, record)
                continue
            first_origin, first = kept[key]
            if first.get("text") != record.get("text"):
                problems.append(Problem("error", origin, f"paragraph {key} has another text in {first_origin}"))
            elif labelled and is_labelled(first):
                problems.append(Problem("error", origin, f"paragraph {key} is labelled here and in {first_origin}: adjudicate"))
            elif labelled:
                kept[key] = (origin, record)
    return [record for _, record in kept.values()], problems


def expand_inputs(paths: Sequence[Path]) -> list[Path]:
    """Files as given; directories contribute their `*.jsonl` and `*.zip` files."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix in {".jsonl", ".zip"})
        elif path.exists():
            files.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or directory")
    return files


def check_inputs(
    paths: Sequence[Path],
    schema: Schema,
    nlp: Language,
    tokens: TokenPolicy = TokenPolicy.expand,
    annotator: str | None = None,
) -> Checked:
    """Parse and validate every record of every input file; nothing is dropped unreported."""
    result = Checked()
    raw: list[Example] = []
    for path in expand_inputs(paths):
        examples, problems = read_doccano(path, annotator)
        raw += examples
        result.problems += problems
    result.problems += check_duplicates(raw)
    for example in raw:
        clean, problems = check_example(example, schema, nlp, offsets="utf16", tokens=tokens)
        result.examples.append(clean)
        result.problems += problems
    return result


def article_examples(examples: Sequence[Example], articles: dict[str, Article]) -> tuple[list[Example], list[Problem]]:
    """Group paragraphs by (annotator, article) and rebuild article-level examples."""
    groups: dict[tuple[str | None, str], list[Example]] = defaultdict(list)
    problems: list[Problem] = []
    for ex in examples:
        article_id = ex.meta.get("article_id")
        if article_id not in articles:
            problems.append(Problem("error", ex.origin, f"meta article_id {article_id!r} is not in the corpus"))
            continue
        groups[(ex.annotator, article_id)].append(ex)
    merged = []
    for (annotator, article_id), parts in sorted(groups.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
        article = articles[article_id]
        example, found = merge_paragraphs(article_id, article.text, parts)
        example.meta.update(source=article.source, split=article.split)
        merged.append(example)
        problems += found
    return merged, problems


def write_outputs(
    nlp: Language, schema: Schema, paragraphs: Sequence[Example], articles: Sequence[Example], out_dir: Path
) -> dict[str, int]:
    """Write `<annotator>.prodigy.jsonl` (paragraph tasks) and `<split>.spacy` (article docs).

    With several annotators, DocBins are per annotator (`<annotator>/<split>.spacy`) since
    training needs one version of the truth; the adjudicated gold is its own annotator.
    """
    counts: dict[str, int] = {}
    by_annotator: dict[str | None, list[Example]] = defaultdict(list)
    for ex in paragraphs:
        by_annotator[ex.annotator].append(ex)
    for annotator, exs in by_annotator.items():
        name = f"{annotator or 'annotations'}.prodigy.jsonl"
        counts[name] = write_jsonl(out_dir / name, (example_to_prodigy(nlp, ex) for ex in exs))
    annotators = sorted({str(ex.annotator) for ex in articles})
    for annotator in annotators:
        base = out_dir if len(annotators) == 1 else out_dir / annotator
        splits: dict[str, DocBin] = defaultdict(lambda: DocBin(store_user_data=True))
        for ex in articles:
            if str(ex.annotator) == annotator:
                splits[str(ex.meta.get("split", "train"))].add(example_to_doc(nlp, ex, schema))
        for split, docbin in splits.items():
            target = base / f"{split}.spacy"
            atomic_write_bytes(target, docbin.to_bytes())
            counts[str(target.relative_to(out_dir))] = len(docbin)
    return counts


def convert(
    inputs: Sequence[Path],
    out_dir: Path,
    schema: Schema,
    nlp: Language,
    articles: dict[str, Article],
    tokens: TokenPolicy = TokenPolicy.expand,
    annotator: str | None = None,
) -> tuple[Checked, dict[str, int]]:
    """Validate everything, then (only if there is no error) write Prodigy JSONL and DocBins."""
    checked = check_inputs(inputs, schema, nlp, tokens, annotator)
    merged, problems = article_examples(checked.examples, articles)
    checked.problems += problems
    raise_on_errors(checked.problems)
    return checked, write_outputs(nlp, schema, checked.examples, merged, out_dir)
