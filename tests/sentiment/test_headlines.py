"""The headline check: its rows, and how a checkpoint records whether it is blind to them."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.sentiment.data import Example, load_sources, rows_fingerprint, stratified_split
from pipeline.sentiment.headlines import (
    blindness,
    headline_record,
    inherited_seen,
    load_headline_rows,
    recorded_seen,
    rows_seen,
)

DATA = Path(__file__).resolve().parents[1] / "fixtures" / "sentiment" / "data"


def test_headline_rows_are_the_tfns_rows_the_release_split_holds_out() -> None:
    rows = load_headline_rows(DATA)
    examples, _, _ = load_sources(["fpb-split", "tfns"], DATA)
    train_idx, _ = stratified_split(examples, 0.1, 42)
    trained = {examples[i].text for i in train_idx}
    assert len(rows) == 3 and all(ex.source == "tfns" and ex.text not in trained for ex in rows)


def test_building_the_check_does_not_repeat_a_run_s_source_lines(caplog) -> None:
    import logging

    with caplog.at_level(logging.INFO, logger="pipeline.sentiment.data"):
        load_headline_rows(DATA)
    assert not [r for r in caplog.records if r.levelno >= logging.INFO]


def test_missing_data_skips_the_check(tmp_path: Path) -> None:
    assert load_headline_rows(tmp_path) == []


def test_rows_seen_compares_normalised_text() -> None:
    rows = [Example("$DEF soars on upgrade", 2, "tfns"), Example("$GHI slumps", 0, "tfns")]
    assert rows_seen(["$def  SOARS on upgrade ", "other"], rows) == 1
    assert rows_seen([], rows) == 0


def checkpoint_with(tmp_path: Path, record: object, architectures: list[str] | None = None) -> Path:
    folder = tmp_path / "ckpt"
    folder.mkdir(parents=True)
    (folder / "training_config.json").write_text("{}")
    (folder / "config.json").write_text(json.dumps({"architectures": architectures or ["BertModel"]}))
    (folder / "metrics.json").write_text(json.dumps({"headline_check": record}))
    return folder


def test_recorded_seen_reads_only_a_well_formed_record_for_the_same_rows(tmp_path: Path) -> None:
    record = {"seen_in_lineage": 4, "rows_sha256": "abc"}
    folder = checkpoint_with(tmp_path / "a", record)
    assert recorded_seen(folder) == 4
    assert recorded_seen(folder, "abc") == 4
    assert recorded_seen(folder, "another data dir's rows") is None
    assert recorded_seen(checkpoint_with(tmp_path / "b", {"seen_in_lineage": None})) is None
    assert recorded_seen(checkpoint_with(tmp_path / "c", {"seen_in_lineage": True})) is None
    assert recorded_seen(checkpoint_with(tmp_path / "d", "garbage")) is None
    assert recorded_seen(tmp_path / "nowhere") is None
    broken = checkpoint_with(tmp_path / "e", {})
    (broken / "metrics.json").write_text("{not json")
    assert recorded_seen(broken) is None


def test_inherited_seen_by_kind_of_base_model(tmp_path: Path) -> None:
    finsent = checkpoint_with(tmp_path / "a", {"seen_in_lineage": 7})
    assert inherited_seen(str(finsent), ["BertForSequenceClassification"]) == 7
    older = checkpoint_with(tmp_path / "b", None)  # a checkpoint from before the record
    assert inherited_seen(str(older), ["BertForSequenceClassification"]) is None
    # A classifier trained elsewhere may have trained on TFNS; a plain encoder has no labels.
    assert inherited_seen("someone/finance-sentiment", ["RobertaForSequenceClassification"]) is None
    assert inherited_seen("sentence-transformers/all-MiniLM-L6-v2", ["BertModel"]) == 0
    assert inherited_seen("some/encoder", None) == 0
    # A local folder without a FinSent record: its own config.json says what it is.
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "config.json").write_text(json.dumps({"architectures": ["BertForSequenceClassification"]}))
    assert inherited_seen(str(foreign)) is None
    (foreign / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))
    assert inherited_seen(str(foreign)) == 0


def test_record_adds_the_lineage_and_stays_unknown_when_a_part_is() -> None:
    rows = [Example("a", 0, "tfns"), Example("b", 1, "tfns")]
    record = headline_record(rows, 1, 1, 2)
    assert record["seen_in_lineage"] == 4 and record["seen_in_selection"] == 1
    assert record["rows_sha256"] == rows_fingerprint(rows) and record["rows"] == 2
    assert headline_record(rows, 0, 0, None)["seen_in_lineage"] is None
    assert headline_record(rows, 0, 0, 0)["seen_in_lineage"] == 0


def test_blindness_phrases() -> None:
    assert blindness(0, 954).startswith("blind")
    assert "12 exposures to the 954 rows" in blindness(12, 954)
    assert "unknown" in blindness(None)
