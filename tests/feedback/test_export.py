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
