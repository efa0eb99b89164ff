"""From annotators' Doccano exports to validated Prodigy JSONL and spaCy DocBins.

Input: Doccano JSONL files (export layout or upload layout) or the export zip itself
(one `<username>.jsonl` per annotator). Every record is validated against the schema and
the tokenizer; all problems are collected and reported together, and any error stops the
conversion before anything is written.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from spacy.language import Language
from spacy.tokens import DocBin

from homs_ner.data.conversion import example_to_doc, example_to_prodigy, merge_paragraphs, paragraph_fits
from homs_ner.data.corpus import Article, paragraphs as corpus_paragraphs
from homs_ner.data.io import atomic_write_bytes, export_members, jsonl_lines, write_jsonl
from homs_ner.data.records import Example, Origin, RecordError, from_doccano
from homs_ner.data.schema import Schema
from homs_ner.data.validation import PartialPolicy, Problem, TokenPolicy, check_duplicates, check_example, raise_on_errors


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


# What a damaged zip raises: bad or truncated archive, corrupt deflate data, unsupported or
# encrypted members, unreadable file.
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, OSError)


def _decode(data: bytes, where: str) -> str:
    """UTF-8 text, or a RecordError naming the file and the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise RecordError(Origin(where), f"not UTF-8 (byte {err.start}: {err.reason})") from err


def _file_problem(path: Path, err: BaseException) -> Problem:
    """A whole-file failure as one line: the file and the reason, never a traceback."""
    if isinstance(err, RecordError):
        return Problem("error", err.origin, err.reason)
    if isinstance(err, OSError) and not isinstance(err, zipfile.BadZipFile):
        return Problem("error", Origin(str(path)), f"cannot read: {err.strerror or err}")
    return Problem("error", Origin(str(path)), f"damaged zip: {err}")


def read_doccano(path: Path, annotator: str | None = None) -> tuple[list[Example], list[Problem]]:
    """Read a Doccano JSONL file or export zip; the annotator is the file (or member) name
    unless `annotator` names one for all records (as for the adjudicated gold).

    An unreadable file (not UTF-8, a truncated or corrupt zip) is one error naming it; the
    records read before the damage are still returned.
    """
    path = Path(path)
    examples: list[Example] = []
    problems: list[Problem] = []
    try:
        if path.suffix == ".zip":
            for member, data in export_members(path).items():
                where = f"{path}!{member}"
                ex, pr = _parse_lines(jsonl_lines(_decode(data, where)), where, annotator or _annotator_from_name(member))
                examples += ex
                problems += pr
        else:
            text = _decode(path.read_bytes(), str(path))
            examples, problems = _parse_lines(jsonl_lines(text), str(path), annotator or _annotator_from_name(path.name))
    except (RecordError, *ZIP_ERRORS) as err:
        problems.append(_file_problem(path, err))
    return examples, problems


def _raw_records(path: Path) -> Iterable[tuple[Origin, dict]]:
    """(origin, record) of every non-blank line of a Doccano JSONL file, as written."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise RecordError(Origin(str(path)), f"cannot read: {err.strerror or err}") from err
    for lineno, line in jsonl_lines(_decode(data, str(path))):
        if line.strip():
            origin = Origin(str(path), lineno)
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise RecordError(origin, f"not valid JSON: {err}") from err
            if not isinstance(record, dict):
                raise RecordError(origin, f"expected a JSON object, got {type(record).__name__}")
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


def expand_inputs(paths: Sequence[Path]) -> tuple[list[Path], list[Problem]]:
    """Files as given; directories contribute their `*.jsonl` and `*.zip` files.

    A missing path, or a folder with neither, is an error naming it.
    """
    files: list[Path] = []
    problems: list[Problem] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in {".jsonl", ".zip"})
            if not found:
                problems.append(Problem("error", Origin(str(path)), "folder has no .jsonl or .zip files"))
            files += found
        elif path.exists():
            files.append(path)
        else:
            problems.append(Problem("error", Origin(str(path)), "no such file or folder"))
    return files, problems


def check_inputs(
    paths: Sequence[Path],
    schema: Schema,
    nlp: Language,
    tokens: TokenPolicy = TokenPolicy.expand,
    annotator: str | None = None,
) -> Checked:
    """Parse and validate every record of every input file; nothing is dropped unreported.

    No record at all in the inputs is an error (an empty export validates nothing); one
    empty file among others is only a warning, since Doccano exports an empty file for a
    member who labelled nothing.
    """
    result = Checked()
    raw: list[Example] = []
    files, result.problems = expand_inputs(paths)
    for path in files:
        examples, problems = read_doccano(path, annotator)
        raw += examples
        result.problems += problems
        if not examples and not problems:
            result.problems.append(Problem("warning", Origin(str(path)), "no records"))
    if not raw and not result.errors:
        result.problems.append(Problem("error", Origin(", ".join(map(str, paths)) or "<no input>"), "no records to check"))
    result.problems += check_duplicates(raw)
    for example in raw:
        clean, problems = check_example(example, schema, nlp, offsets="utf16", tokens=tokens)
        result.examples.append(clean)
        result.problems += problems
    return result


def _rebased(parts: Sequence[Example]) -> tuple[str, list[Example]]:
    """The given paragraphs alone, joined by a blank line, with `start`/`end` meta re-based onto that text."""
    pieces, rebased, cursor = [], [], 0
    for part in sorted(parts, key=lambda p: p.meta.get("start", 0)):
        pieces.append(part.text)
        rebased.append(replace(part, meta={**part.meta, "start": cursor, "end": cursor + len(part.text)}))
        cursor += len(part.text) + 2
    return "\n\n".join(pieces), rebased


def article_examples(
    examples: Sequence[Example], articles: dict[str, Article], partial: PartialPolicy = PartialPolicy.exclude
) -> tuple[list[Example], list[Problem]]:
    """Group paragraphs by (annotator, article) and rebuild article-level examples.

    A paragraph of the article with no record is not annotated, not "no entities": training
    on it would teach the model to find nothing there. Such articles are rebuilt from their
    annotated paragraphs only (`exclude`, with a warning naming them; the doc's text is
    then those paragraphs joined by blank lines) or are an error (`error`).
    """
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
        expected = [p.id for p in corpus_paragraphs(article)]
        missing = [pid for pid in expected if pid not in {part.meta.get("paragraph_id") for part in parts}]
        example, found = merge_paragraphs(article_id, article.text, parts)
        problems += found
        if missing:
            where = Origin(parts[0].origin.file, None, article_id)
            what = f"{len(missing)} of {len(expected)} paragraphs of article {article_id} have no record ({', '.join(missing[:5])})"
            if partial is PartialPolicy.error:
                problems.append(Problem("error", where, f"{what}; annotate them or use --partial exclude"))
                continue
            problems.append(Problem("warning", where, f"{what}: left out of the training doc, not trained as empty"))
            example, _ = merge_paragraphs(article_id, *_rebased([p for p in parts if paragraph_fits(article.text, p)]))
            example.meta["excluded_paragraphs"] = missing
        example.meta.update(source=article.source, split=article.split)
        merged.append(example)
    return merged, problems


def write_outputs(
    nlp: Language, schema: Schema, paragraphs: Sequence[Example], articles: Sequence[Example], out_dir: Path
) -> dict[str, int]:
    """Write `<annotator>.prodigy.jsonl` (paragraph tasks) and `<split>.spacy` (article docs).

    With several annotators, DocBins are per annotator (`<annotator>/<split>.spacy`) since
    training needs one version of the truth; the adjudicated gold is its own annotator.
    """
    counts: dict[str, int] = {}
    written: list[Path] = []
    by_annotator: dict[str | None, list[Example]] = defaultdict(list)
    for ex in paragraphs:
        by_annotator[ex.annotator].append(ex)
    for annotator, exs in by_annotator.items():
        name = f"{annotator or 'annotations'}.prodigy.jsonl"
        counts[name] = write_jsonl(out_dir / name, (example_to_prodigy(nlp, ex) for ex in exs))
        written.append(out_dir / name)
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
            written.append(target)
            counts[str(target.relative_to(out_dir))] = len(docbin)
    _remove_stale(out_dir, written)
    return counts


def _remove_stale(out_dir: Path, written: Sequence[Path]) -> None:
    """Delete outputs of an earlier run that this run did not write (a split or annotator gone).

    Only the kinds of file `write_outputs` makes are touched: an old `dev.spacy` left beside a
    new `train.spacy` would be trained on as if it were current.
    """
    keep = {p.resolve() for p in written}
    for pattern in ("*.prodigy.jsonl", "*.spacy", "*/*.spacy"):
        for path in out_dir.glob(pattern):
            if path.resolve() not in keep:
                path.unlink()


def convert(
    inputs: Sequence[Path],
    out_dir: Path,
    schema: Schema,
    nlp: Language,
    articles: dict[str, Article],
    tokens: TokenPolicy = TokenPolicy.expand,
    annotator: str | None = None,
    partial: PartialPolicy = PartialPolicy.exclude,
) -> tuple[Checked, dict[str, int]]:
    """Validate everything, then (only if there is no error) write Prodigy JSONL and DocBins."""
    checked = check_inputs(inputs, schema, nlp, tokens, annotator)
    merged, problems = article_examples(checked.examples, articles, partial)
    checked.problems += problems
    raise_on_errors(checked.problems)
    return checked, write_outputs(nlp, schema, checked.examples, merged, out_dir)
