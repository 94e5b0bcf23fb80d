"""The headline check: its rows, and how a checkpoint records whether it is blind to them."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.sentiment.data import Example, load_sources, stratified_split
from pipeline.sentiment.headlines import (
    blindness,
    headline_record,
    inherited_seen,
    load_headline_rows,
    recorded_seen,
    rows_seen,
)

DATA = Path(__file__).parent / "fixtures" / "sentiment" / "data"


def test_headline_rows_are_the_tfns_rows_the_release_split_holds_out() -> None:
    rows = load_headline_rows(DATA)
    examples, _, _ = load_sources(["fpb-split", "tfns"], DATA)
    train_idx, _ = stratified_split(examples, 0.1, 42)
    trained = {examples[i].text for i in train_idx}
    assert len(rows) == 3 and all(ex.source == "tfns" and ex.text not in trained for ex in rows)


def test_missing_data_skips_the_check(tmp_path: Path) -> None:
    assert load_headline_rows(tmp_path) == []


def test_rows_seen_compares_normalised_text() -> None:
    rows = [Example("$DEF soars on upgrade", 2, "tfns"), Example("$GHI slumps", 0, "tfns")]
    assert rows_seen(["$def  SOARS on upgrade ", "other"], rows) == 1
    assert rows_seen([], rows) == 0


def checkpoint_with(tmp_path: Path, record: object) -> Path:
    folder = tmp_path / "ckpt"
    folder.mkdir(parents=True)
    (folder / "training_config.json").write_text("{}")
    (folder / "metrics.json").write_text(json.dumps({"headline_check": record}))
    return folder


def test_recorded_seen_reads_only_a_well_formed_record(tmp_path: Path) -> None:
    assert recorded_seen(checkpoint_with(tmp_path / "a", {"seen_in_lineage": 4})) == 4
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


def test_record_adds_the_lineage_and_stays_unknown_when_a_part_is() -> None:
    rows = [Example("a", 0, "tfns"), Example("b", 1, "tfns")]
    assert headline_record(rows, 1, 2)["seen_in_lineage"] == 3
    assert headline_record(rows, 0, None)["seen_in_lineage"] is None
    record = headline_record(rows, None, 0)
    assert record["seen_in_lineage"] is None and record["rows"] == 2 and record["split_seed"] == 42


def test_blindness_phrases() -> None:
    assert blindness(0, 954).startswith("blind")
    assert "12 of the 954 rows" in blindness(12, 954)
    assert "unknown" in blindness(None)
