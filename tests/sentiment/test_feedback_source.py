"""The ``feedback`` training source: a corrections snapshot read as (headline, label) rows,
and the model card's count of them."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from pipeline.sentiment.card import write_model_card
from pipeline.sentiment.data import (
    DataFormatError,
    check_source_spec,
    load_sources,
    read_feedback,
)

from .test_card import _release_inputs

DATA = Path(__file__).resolve().parents[1] / "fixtures" / "sentiment" / "data"


def _snapshot(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_feedback_rows_are_headlines_with_the_analysts_label(tmp_path: Path) -> None:
    path = _snapshot(
        tmp_path / "f.jsonl",
        [
            {"title": "Acme recalls widgets", "label": "negative", "ticker": "ACME"},
            {"text": "Beta names a CFO", "label": "Neutral"},
            {"title": "Earnings missed expectations .", "label": "positive"},  # an FPB test row
        ],
    )
    rows = read_feedback(path)  # an article-level run: every correction labels its headline
    assert [(r.text, r.label, r.source) for r in rows[:2]] == [
        ("Acme recalls widgets", 0, "feedback"),
        ("Beta names a CFO", 1, "feedback"),
    ]
    # A target-aware run reads a company's correction for the company.
    assert read_feedback(path, for_companies=True)[0].text == "<< Acme >> recalls widgets"
    examples, weights, infos = load_sources(["fpb-split", "feedback*2"], DATA, feedback_file=path)
    mine = [e for e, w in zip(examples, weights, strict=True) if e.source == "feedback"]
    assert len(mine) == 2  # the benchmark's test sentence is dropped, as from every source
    assert infos[-1].name == "feedback" and infos[-1].rows == 2 and infos[-1].weight == 2


def test_feedback_needs_its_snapshot_and_well_formed_lines(tmp_path: Path) -> None:
    check_source_spec("feedback")  # a known name: the snapshot is written when the run starts
    with pytest.raises(DataFormatError, match="finsent feedback export"):
        load_sources(["feedback"], DATA)
    bad = _snapshot(tmp_path / "bad.jsonl", [{"title": "x", "label": "bearish"}])
    with pytest.raises(DataFormatError, match=r"bad\.jsonl:1"):
        read_feedback(bad)
    (tmp_path / "junk.jsonl").write_text("not json\n")
    with pytest.raises(DataFormatError, match=r"junk\.jsonl:1: not a correction"):
        read_feedback(tmp_path / "junk.jsonl")


def test_no_corrections_is_a_warning_not_an_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    empty = _snapshot(tmp_path / "empty.jsonl", [])
    with caplog.at_level(logging.WARNING):
        examples, _, infos = load_sources(["fpb-split", "feedback"], DATA, feedback_file=empty)
    assert examples and infos[-1].rows == 0
    assert "no analyst corrections yet" in caplog.text


def test_the_card_counts_the_corrections_a_model_learnt_from(tmp_path: Path) -> None:
    info, metrics = _release_inputs()
    (tmp_path / "a").mkdir()
    assert "Analyst corrections" not in write_model_card(tmp_path / "a", info, metrics).read_text()
    info["sources"].append(
        {"name": "feedback", "path": "f.jsonl", "sha256": "0" * 64, "rows": 7, "weight": 1.0}
    )
    info["config"]["feedback_file"] = "runs/x/feedback.jsonl"
    (tmp_path / "b").mkdir()
    card = write_model_card(tmp_path / "b", info, metrics).read_text()
    assert "Analyst corrections: 7 rows" in card
    assert "--feedback-file runs/x/feedback.jsonl" in card


def test_a_company_correction_trains_the_headline_for_that_company_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    title = "Tesla shares jump after record deliveries, while Ford slumps on recall"
    path = _snapshot(
        tmp_path / "f.jsonl",
        [
            {"title": title, "label": "negative", "ticker": "F", "mention": "Ford"},
            {"title": title, "label": "positive", "ticker": "TSLA", "mention": "Tesla"},
            {"title": title, "label": "positive"},  # the whole article
            # named in the summary only: no span of the headline to mark, so not a headline label
            {"title": "Automakers slide on tariffs", "label": "negative", "ticker": "F", "mention": "Ford"},
        ],
    )
    with caplog.at_level(logging.INFO):
        rows = read_feedback(path, for_companies=True)
    assert [(r.text, r.label) for r in rows] == [
        ("Tesla shares jump after record deliveries, while << Ford >> slumps on recall", 0),
        ("<< Tesla >> shares jump after record deliveries, while Ford slumps on recall", 2),
        (title, 2),
    ]
    assert "1 company corrections left out" in caplog.text
    # load_sources reads them so when the run has company rows (then its model is target-aware)
    examples, _, _ = load_sources(["sentfin", "feedback"], DATA, feedback_file=path)
    assert "<< Ford >>" in next(e.text for e in examples if e.source == "feedback")
    plain, _, _ = load_sources(["fpb-split", "feedback"], DATA, feedback_file=path)
    assert all("<<" not in e.text for e in plain)


def test_company_corrections_of_held_out_rows_are_compared_unmarked(tmp_path: Path) -> None:
    # A company correction is read marked ("The << company >> operates ..."): compared as
    # written, an FPB test sentence or a headline-check tweet got into training and went
    # uncounted, while the same text corrected for the whole article was dropped.
    from pipeline.sentiment.headlines import load_headline_rows, rows_seen
    from pipeline.sentiment.train import TrainConfig, load_data

    fpb_test = "The company operates in Finland ."
    tweet = "$DEF soars on upgrade"  # a headline-check row of the fixture
    path = _snapshot(
        tmp_path / "f.jsonl",
        [
            {"title": fpb_test, "label": "positive", "ticker": "X", "mention": "company"},
            {"title": fpb_test, "label": "positive"},
            {"title": tweet, "label": "negative", "ticker": "DEF", "mention": "DEF"},
            {"title": "Acme recalls widgets", "label": "negative", "ticker": "ACME", "mention": "Acme"},
        ],
    )
    examples, _, _ = load_sources(["fpb-split", "feedback"], DATA, feedback_file=path, for_companies=True)
    feedback = [e.text for e in examples if e.source == "feedback"]
    assert feedback == ["$<< DEF >> soars on upgrade", "<< Acme >> recalls widgets"]

    headline_rows = load_headline_rows(DATA)
    assert rows_seen(feedback, headline_rows) == 1
    config = TrainConfig(data_dir=DATA, sources=["sentfin", "feedback"], feedback_file=str(path))
    data = load_data(config)
    assert "$<< DEF >> soars on upgrade" not in {e.text for e in data.train}
    assert "<< Acme >> recalls widgets" in {e.text for e in (*data.train, *data.validation)}


def test_one_row_per_article_and_company_with_the_majoritys_label(tmp_path: Path) -> None:
    title = "Tesla jumps, while Ford slumps on recall"

    def fix(n: int, label: str, ticker: str | None = None, article: int = 1) -> dict:
        row = {
            "article_id": article,
            "title": title,
            "label": label,
            "corrected_at": f"2026-11-{n:02d}T12:00:00+00:00",
        }
        return {**row, "ticker": ticker, "mention": {"F": "Ford", "TSLA": "Tesla"}.get(ticker or "")}

    path = _snapshot(
        tmp_path / "f.jsonl",
        # 40 names agreeing are one row, not 40
        [fix(1, "positive") for _ in range(40)]
        # contradictory labels for Ford: two say negative, one neutral (the latest)
        + [fix(2, "negative", "F"), fix(3, "negative", "F"), fix(9, "neutral", "F")]
        # a tie for Tesla: the latest correction among the tied labels wins
        + [fix(5, "negative", "TSLA"), fix(4, "positive", "TSLA")]
        # another article with the same headline is its own question
        + [fix(6, "neutral", article=2)],
    )
    rows = read_feedback(path, for_companies=True)
    assert [(r.text, r.label) for r in rows] == [
        (title, 2),
        ("Tesla jumps, while << Ford >> slumps on recall", 0),
        ("<< Tesla >> jumps, while Ford slumps on recall", 0),
        (title, 1),
    ]
    # Without article ids (a hand-made file) the headline stands for the article.
    assert [
        r.label
        for r in read_feedback(
            _snapshot(
                tmp_path / "g.jsonl",
                [
                    {"title": title, "label": "neutral"},
                    {"title": title, "label": "positive"},
                    {"title": title, "label": "positive"},
                ],
            )
        )
    ] == [2]
