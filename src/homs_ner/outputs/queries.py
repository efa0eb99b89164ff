"""Analysts' questions over the archive store, as named DuckDB queries.

Each query reads the store's views (`articles`, `entities`, `clauses`, `relations`,
`errors`; see `outputs.store`), so the same SQL works in `homs-ner query --sql` and in any
DuckDB session over the Parquet files. Places and actors are grouped by the name
`extract` gives a mention (spelling variants and attached proclitics folded together),
falling back to the text. The labels named here are the schema's (`configs/labels.yml`):
renaming one there means renaming it here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from homs_ner.outputs.store import ArchiveStore


@dataclass(frozen=True)
class NamedQuery:
    description: str
    sql: str


QUERIES: dict[str, NamedQuery] = {
    "evacuations": NamedQuery(
        "EVACUATION clauses by month, with their destinations and amounts",
        """
        SELECT c.month, c.article_id, c.text AS clause,
               string_agg(DISTINCT r.child_text, ' | ') FILTER (WHERE r.label = 'destination') AS destination,
               string_agg(DISTINCT r.child_text, ' | ') FILTER (WHERE r.label = 'amount') AS amount
        FROM clauses c
        LEFT JOIN relations r
          ON r.month = c.month AND r.article_id = c.article_id AND r.head_start = c.start AND r.head_end = c.end
        WHERE c.type = 'EVACUATION'
        GROUP BY c.month, c.article_id, c.start, c.text
        ORDER BY c.month, c.article_id, c.start
        """,
    ),
    "guarantors": NamedQuery(
        "Guarantors per place: the actors guaranteeing clauses located at or leading to each place",
        """
        WITH g AS (SELECT month, article_id, head_start, head_end, coalesce(child_name, child_text) AS guarantor
                   FROM relations WHERE label = 'guarantor'),
             p AS (SELECT month, article_id, head_start, head_end, coalesce(child_name, child_text) AS place
                   FROM relations WHERE label IN ('location', 'destination'))
        SELECT p.place, string_agg(DISTINCT g.guarantor, ' | ' ORDER BY g.guarantor) AS guarantors,
               count(DISTINCT g.article_id) AS articles
        FROM g JOIN p USING (month, article_id, head_start, head_end)
        GROUP BY p.place
        ORDER BY articles DESC, p.place
        """,
    ),
    "agents": NamedQuery(
        "Actors most often the agent of a clause, with the clause types they act in",
        """
        SELECT coalesce(child_name, child_text) AS actor, count(*) AS clauses, count(DISTINCT article_id) AS articles,
               string_agg(DISTINCT split_part(head_label, ':', 2), ', ' ORDER BY split_part(head_label, ':', 2)) AS types
        FROM relations
        WHERE label = 'agent'
        GROUP BY actor
        ORDER BY clauses DESC, actor
        """,
    ),
    "clauses-by-month": NamedQuery(
        "Clauses per month and type",
        """
        SELECT month, type, count(*) AS clauses, count(DISTINCT article_id) AS articles
        FROM clauses
        GROUP BY month, type
        ORDER BY month, clauses DESC, type
        """,
    ),
}


def run_query(store: Path, sql: str, limit: int | None = None) -> tuple[list[str], list[tuple]]:
    """(column names, rows) of `sql` over the store's views; at most `limit` rows if given.

    Raises `duckdb.Error` for bad SQL (the caller shows its first line).
    """
    con = ArchiveStore(store).connect()
    try:
        wrapped = f"SELECT * FROM ({sql.strip().rstrip(';')}) LIMIT {int(limit)}" if limit is not None else sql
        cursor = con.execute(wrapped)
        columns = [d[0] for d in cursor.description]
        return columns, cursor.fetchall()
    finally:
        con.close()
