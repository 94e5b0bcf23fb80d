"""A correction made on a page becomes a training row: one step of `finsent train --source
feedback` reads it from the database, keeps the snapshot with the model, and its card counts it."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from trends_helpers import add_article, add_feed, add_score

from pipeline.cli.sentiment import train_cmd
from pipeline.db.engine import Database
from pipeline.web import create_app

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DATA = Path(__file__).resolve().parents[1] / "fixtures" / "sentiment" / "data"


@pytest.fixture
def env(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("FINSENT_") and key != "FINSENT_TEST_DATABASE_URL":
            monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("FINSENT_DATABASE_URL", database_url)
    monkeypatch.setenv("FINSENT_DATA_DIR", str(tmp_path / "state"))


def _train(out: Path, *sources: str) -> CliRunner:
    args = ["--data-dir", str(DATA), "--out", str(out), "--max-steps", "1", "--batch-size", "4"]
    args += ["--max-length", "24", "--state-dir", str(out.parent / "state")]
    for source in sources:
        args += ["--source", source]
    return CliRunner().invoke(train_cmd, args)


@pytest.mark.slow
def test_a_page_correction_trains_the_next_model_and_its_card_counts_it(
    db: Database, env: None, tmp_path: Path
) -> None:
    with db.transaction() as s:
        feed = add_feed(s, "https://news.example/rss", "Wire")
        ids = [
            add_article(s, feed, f"a{i}", title, NOW, tickers=("ACME",))
            for i, title in enumerate(["Acme recall widens to Europe", "Acme names a new auditor"])
        ]
        for article in ids:
            add_score(s, article, "positive", model="m1", scored_at=NOW)
    token = "training-test-ui-token"
    app = create_app(db, clock=lambda: NOW, token=token)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        for article, label in zip(ids, ["negative", "neutral"], strict=True):
            r = client.post(
                "/company/ACME/correct",
                data={"article_id": str(article), "label": label, "who": "ann@example.com"},
                follow_redirects=False,
            )
            assert r.status_code == 303
    out = tmp_path / "model"
    result = _train(out, "fpb-split", "feedback")
    assert result.exit_code == 0, result.output
    assert "feedback: 2 analyst correction(s)" in result.output
    snapshot = [json.loads(line) for line in (out / "feedback.jsonl").read_text().splitlines()]
    assert {(r["title"], r["label"]) for r in snapshot} == {
        ("Acme recall widens to Europe", "negative"),
        ("Acme names a new auditor", "neutral"),
    }
    assert "ann@example.com" not in (out / "feedback.jsonl").read_text()
    card = (out / "README.md").read_text()
    assert "Analyst corrections: 2 rows" in card
    # A handful of validation rows fits noise, not a temperature: none is fitted.
    calibration = json.loads((out / "calibration.json").read_text())
    assert calibration["n"] < 50
    assert (calibration["temperature"], calibration["fitted_on"]) == (1.0, "none (too few validation rows)")
    assert "evaluation gate" in result.output.lower() or "|" in result.output  # the gate still decides


def test_feedback_alone_with_no_corrections_is_one_line(db: Database, env: None, tmp_path: Path) -> None:
    result = _train(tmp_path / "empty", "feedback")
    assert result.exit_code != 0
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "no analyst corrections in the database yet" in result.output
    assert not (tmp_path / "empty").exists()  # refused before anything was written


def test_feedback_alone_with_too_few_rows_for_validation_is_refused_before_training(
    db: Database, env: None, tmp_path: Path
) -> None:
    # Two corrections: both go to training and none is left to choose the checkpoint on.
    from pipeline.feedback import record

    with db.transaction() as s:
        feed = add_feed(s, "https://news.example/rss", "Wire")
        for i, (title, label) in enumerate([("Acme recall widens", "negative"), ("Acme beats", "positive")]):
            article = add_article(s, feed, f"b{i}", title, NOW, tickers=("ACME",))
            record(s, article, label=label, who="ann", now=NOW)
    out = tmp_path / "few"
    result = _train(out, "feedback")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "too few rows for a validation share (2 labelled in all" in result.output
    # Nothing left behind: the same command with more data is not refused for a full folder.
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("content", ["", "\n  \n\n"], ids=["empty", "blank-lines"])
def test_feedback_file_with_no_corrections_is_one_line_naming_it(
    env: None, tmp_path: Path, content: str
) -> None:
    from pipeline.cli import cli

    empty = tmp_path / "empty.jsonl"
    empty.write_text(content, encoding="utf-8")
    out = tmp_path / "run"
    args = ["train", "--source", "feedback", "--feedback-file", str(empty), "--data-dir", str(DATA)]
    result = CliRunner().invoke(cli, [*args, "--out", str(out), "--state-dir", str(tmp_path / "state")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("finsent: error: --source feedback: ") and "unexpected" not in last
    assert f"{empty} holds no corrections" in last and "finsent feedback export" in last
    assert not out.exists() or not any(out.iterdir())  # refused before anything was written
