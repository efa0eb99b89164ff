"""Inter-annotator agreement on the same paragraphs: how reliable the gold standard is.

Agreement is F1 with one annotator taken as reference (F1 is symmetric, so the choice does
not matter): per-label entity F1, exact and overlap; token-level Cohen's kappa on entity
labels; clause F1, exact and overlap, and clause-type agreement on overlapping clauses;
relation F1 (both endpoints and the label must agree). Only paragraphs both annotators
labelled are compared.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations

from sklearn.metrics import cohen_kappa_score
from spacy.language import Language

from homs_ner.data.records import Example, Span
from homs_ner.data.schema import Schema
from homs_ner.report import pct, table

Triple = tuple[int, int, str]


@dataclass(frozen=True)
class PRF:
    """Counts and derived precision/recall/F1 for one comparison."""

    tp_pred: int
    tp_ref: int
    n_pred: int
    n_ref: int

    @property
    def precision(self) -> float:
        return self.tp_pred / self.n_pred if self.n_pred else 0.0

    @property
    def recall(self) -> float:
        return self.tp_ref / self.n_ref if self.n_ref else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def __add__(self, other: PRF) -> PRF:
        return PRF(self.tp_pred + other.tp_pred, self.tp_ref + other.tp_ref, self.n_pred + other.n_pred, self.n_ref + other.n_ref)

    def as_dict(self) -> dict:
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1, "n_a": self.n_ref, "n_b": self.n_pred}


ZERO = PRF(0, 0, 0, 0)


def exact_prf(ref: Iterable, pred: Iterable) -> PRF:
    ref_set, pred_set = set(ref), set(pred)
    tp = len(ref_set & pred_set)
    return PRF(tp, tp, len(pred_set), len(ref_set))


def _overlap(a: Triple, b: Triple) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def overlap_prf(ref: Sequence[Triple], pred: Sequence[Triple], same_label: bool = True) -> PRF:
    """A span counts as found when a span of the other side overlaps it (with the same label)."""

    def hit(x: Triple, others: Sequence[Triple]) -> bool:
        return any(_overlap(x, y) and (not same_label or x[2] == y[2]) for y in others)

    return PRF(sum(hit(p, ref) for p in pred), sum(hit(r, pred) for r in ref), len(pred), len(ref))


def _split(example: Example, schema: Schema) -> tuple[list[Triple], list[Triple]]:
    ents, clauses = [], []
    for s in example.spans:
        kind, label = schema.parse_span_label(s.label)  # type: ignore[misc]
        (ents if kind == "entity" else clauses).append((s.start, s.end, label))
    return ents, clauses


def _relations(example: Example) -> set[tuple[Triple, Triple, str]]:
    by_id: dict[str, Span] = example.span_by_id()
    return {
        ((by_id[r.head].start, by_id[r.head].end, by_id[r.head].label), (by_id[r.child].start, by_id[r.child].end, by_id[r.child].label), r.label)
        for r in example.relations
    }


def _token_labels(example: Example, ents: Sequence[Triple], nlp: Language) -> list[str]:
    doc = nlp.make_doc(example.text)
    labels = ["O"] * len(doc)
    for start, end, label in ents:
        span = doc.char_span(start, end, alignment_mode="expand")
        if span is not None:
            for i in range(span.start, span.end):
                labels[i] = label
    return [lab for lab, tok in zip(labels, doc) if not tok.is_space]


def _clause_types(ref: Sequence[Triple], pred: Sequence[Triple]) -> tuple[int, int]:
    """(agreeing types, matched pairs): each reference clause against its best-overlapping partner."""
    agree = matched = 0
    for r in ref:
        partners = [(min(r[1], p[1]) - max(r[0], p[0]), p) for p in pred if _overlap(r, p)]
        if partners:
            matched += 1
            agree += max(partners)[1][2] == r[2]
    return agree, matched


def compare(a: Sequence[Example], b: Sequence[Example], schema: Schema, nlp: Language) -> dict:
    """Agreement between two annotators over the paragraphs they share."""
    b_by_key = {ex.key(): ex for ex in b}
    pairs = [(x, b_by_key[x.key()]) for x in a if x.key() in b_by_key]
    per_label_exact: dict[str, PRF] = defaultdict(lambda: ZERO)
    per_label_overlap: dict[str, PRF] = defaultdict(lambda: ZERO)
    clause_exact = clause_overlap = rel = ZERO
    rel_by_label: dict[str, PRF] = defaultdict(lambda: ZERO)
    tokens_a: list[str] = []
    tokens_b: list[str] = []
    type_agree = type_matched = 0
    for ex_a, ex_b in pairs:
        ents_a, clauses_a = _split(ex_a, schema)
        ents_b, clauses_b = _split(ex_b, schema)
        for label in schema.entity_labels:
            ra = [e for e in ents_a if e[2] == label]
            rb = [e for e in ents_b if e[2] == label]
            per_label_exact[label] += exact_prf(ra, rb)
            per_label_overlap[label] += overlap_prf(ra, rb)
        tokens_a += _token_labels(ex_a, ents_a, nlp)
        tokens_b += _token_labels(ex_b, ents_b, nlp)
        untyped_a = [(s, e, "") for s, e, _ in clauses_a]
        untyped_b = [(s, e, "") for s, e, _ in clauses_b]
        clause_exact += exact_prf(untyped_a, untyped_b)
        clause_overlap += overlap_prf(untyped_a, untyped_b)
        agree, matched = _clause_types(clauses_a, clauses_b)
        type_agree, type_matched = type_agree + agree, type_matched + matched
        rels_a, rels_b = _relations(ex_a), _relations(ex_b)
        rel += exact_prf(rels_a, rels_b)
        for label in schema.relation_labels:
            rel_by_label[label] += exact_prf({r for r in rels_a if r[2] == label}, {r for r in rels_b if r[2] == label})
    micro_exact = sum(per_label_exact.values(), ZERO)
    micro_overlap = sum(per_label_overlap.values(), ZERO)
    kappa = cohen_kappa_score(tokens_a, tokens_b) if tokens_a and len(set(tokens_a) | set(tokens_b)) > 1 else 1.0
    return {
        "paragraphs": len(pairs),
        "tokens": len(tokens_a),
        "entities": {
            "exact": {label: prf.as_dict() for label, prf in per_label_exact.items()} | {"micro": micro_exact.as_dict()},
            "overlap": {label: prf.as_dict() for label, prf in per_label_overlap.items()} | {"micro": micro_overlap.as_dict()},
            "token_kappa": float(kappa),
        },
        "clauses": {
            "exact": clause_exact.as_dict(),
            "overlap": clause_overlap.as_dict(),
            "type_agreement": type_agree / type_matched if type_matched else 0.0,
            "type_matched": type_matched,
        },
        "relations": {label: prf.as_dict() for label, prf in rel_by_label.items()} | {"micro": rel.as_dict()},
    }


def pairwise(examples: Sequence[Example], schema: Schema, nlp: Language) -> dict[str, dict]:
    """Agreement for every pair of annotators found in `examples`."""
    by_annotator: dict[str, list[Example]] = defaultdict(list)
    for ex in examples:
        by_annotator[str(ex.annotator)].append(ex)
    return {
        f"{a} vs {b}": compare(by_annotator[a], by_annotator[b], schema, nlp)
        for a, b in combinations(sorted(by_annotator), 2)
    }


def to_markdown(results: dict[str, dict]) -> str:
    """A readable report: one section per annotator pair."""
    lines = ["# Inter-annotator agreement", ""]
    lines.append("F1 with one annotator as reference (symmetric). Exact: same offsets and label; "
                 "overlap: spans that share a character, same label. Generated by `homs-ner agreement`.")
    for pair, r in results.items():
        ents = r["entities"]
        lines += ["", f"## {pair}", "", f"{r['paragraphs']} shared paragraphs, {r['tokens']} tokens.", ""]
        labels = [*[k for k in ents["exact"] if k != "micro"], "micro"]
        lines += table(["entities", "exact F1", "overlap F1", "n (a)", "n (b)"], (
            [label, pct(ents["exact"][label]["f1"]), pct(ents["overlap"][label]["f1"]),
             ents["exact"][label]["n_a"], ents["exact"][label]["n_b"]] for label in labels))
        lines += ["", f"Token-level Cohen's kappa (entity labels): **{ents['token_kappa']:.3f}**", ""]
        c = r["clauses"]
        lines += table(["clauses", "F1", "n (a)", "n (b)"], (
            [name, pct(c[key]["f1"]), c[key]["n_a"], c[key]["n_b"]]
            for name, key in (("exact span", "exact"), ("overlapping span", "overlap"))))
        lines += ["", f"Clause-type agreement on {c['type_matched']} overlapping clauses: **{pct(c['type_agreement'])}%**", ""]
        lines += table(["relations", "F1", "n (a)", "n (b)"], (
            [label, pct(prf["f1"]), prf["n_a"], prf["n_b"]] for label, prf in r["relations"].items()))
    return "\n".join(lines) + "\n"


def _show(text: str, span: Triple) -> str:
    return f"{span[2]} «{text[span[0]:span[1]]}» [{span[0]}-{span[1]}]"


def disagreements(examples: Sequence[Example], a: str, b: str) -> str:
    """What an adjudicator needs: per shared paragraph, the spans and relations only one side has.

    Spans are shown with their label, text and offsets; clauses with their Doccano label.
    """
    by_key: dict[str, dict[str, Example]] = defaultdict(dict)
    for ex in examples:
        by_key[ex.key()][str(ex.annotator)] = ex
    lines = [f"# Disagreements: {a} vs {b}", "", "Per paragraph: what only one annotator marked. Generated by "
             "`homs-ner agreement --diff`.", ""]
    for key in sorted(by_key):
        pair = by_key[key]
        if a not in pair or b not in pair:
            continue
        ex_a, ex_b = pair[a], pair[b]
        spans_a = {(s.start, s.end, s.label) for s in ex_a.spans}
        spans_b = {(s.start, s.end, s.label) for s in ex_b.spans}
        rels_a, rels_b = _relations(ex_a), _relations(ex_b)
        if spans_a == spans_b and rels_a == rels_b:
            continue
        text = ex_a.text
        lines += [f"## {key}", ""]
        for who, only in ((a, sorted(spans_a - spans_b)), (b, sorted(spans_b - spans_a))):
            lines += [f"- only {who}: {_show(text, s)}" for s in only]
        for who, only in ((a, sorted(rels_a - rels_b)), (b, sorted(rels_b - rels_a))):
            lines += [f"- only {who}: {_show(text, h)} --{label}--> {_show(text, c)}" for h, c, label in only]
        lines.append("")
    return "\n".join(lines) + "\n"
