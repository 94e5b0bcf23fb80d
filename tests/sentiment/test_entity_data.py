from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.sentiment.data import LABEL2ID, DataFormatError, Example
from pipeline.sentiment.entity_data import (
    EntityRow,
    read_sentfin,
    sentence_rows,
    split_by_text,
    synthetic_mixed,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "sentiment" / "sentfin_split_mini.tsv"
HEADER = "id\ttitle\tentities\tn_entities\tmixed\tsplit\n"


def test_read_sentfin_gives_one_row_per_entity_of_the_split() -> None:
    train = read_sentfin(FIXTURE, "train")
    assert len(train) == 7
    sensex = [r for r in train if r.text.startswith("Sensex falls")]
    assert {(r.target, r.label) for r in sensex} == {
        ("Sensex", LABEL2ID["negative"]),
        ("Infosys", LABEL2ID["positive"]),
    }
    assert all(r.mixed for r in sensex)
    assert not any(r.mixed for r in train if r not in sensex)


def test_read_sentfin_test_split_and_all() -> None:
    test = read_sentfin(FIXTURE, "test")
    assert len(test) == 5
    assert sum(r.mixed for r in test) == 4  # neutral indices next to negative stocks
    assert len(read_sentfin(FIXTURE)) == 12


def test_read_sentfin_names_the_bad_line(tmp_path: Path) -> None:
    bad = tmp_path / "s.tsv"
    bad.write_text(HEADER + '1\tA up\t"{""A"": ""bullish""}"\t1\t0\ttrain\n', encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"s\.tsv:2: label 'bullish'"):
        read_sentfin(bad)
    bad.write_text(HEADER + "1\tA up\tnot json\t1\t0\ttrain\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"s\.tsv:2: entities is not JSON"):
        read_sentfin(bad)


def test_read_sentfin_missing_file_and_header(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="no such file"):
        read_sentfin(tmp_path / "absent.tsv")
    (tmp_path / "h.tsv").write_text("title\tlabel\nA\tpositive\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="header lacks id, entities"):
        read_sentfin(tmp_path / "h.tsv")


def test_sentence_rows_target_the_whole_text() -> None:
    rows = sentence_rows([Example("Profit rose.", 2, "fpb-split")])
    assert rows == [EntityRow("Profit rose.", None, 2, "fpb-split")]


def test_synthetic_mixed_joins_two_clauses_of_different_labels() -> None:
    rows = synthetic_mixed(read_sentfin(FIXTURE, "train"), n=20, seed=1)
    assert len(rows) == 40
    for a, b in zip(rows[::2], rows[1::2], strict=True):
        assert a.text == b.text
        assert a.label != b.label
        assert a.target != b.target
        assert a.source == b.source == "synthetic" and a.mixed and b.mixed
        # each target is named in the text, in its own clause (the headline it came from)
        assert a.target.lower() in a.text.lower() and b.target.lower() in b.text.lower()
        assert a.text.lower().index(a.target.lower()) < a.text.lower().index(b.target.lower())
    # the multi-entity Sensex/Infosys headline is never used as a clause
    assert not any("Sensex" in r.text for r in rows)
    assert {r.label for r in rows} == {0, 1, 2}


def test_synthetic_mixed_is_deterministic_per_seed() -> None:
    train = read_sentfin(FIXTURE, "train")
    assert synthetic_mixed(train, 5, seed=3) == synthetic_mixed(train, 5, seed=3)


def test_synthetic_mixed_needs_positive_and_negative_rows() -> None:
    only_neutral = [EntityRow("SpiceJet to issue warrants", "SpiceJet", 1, "sentfin")]
    with pytest.raises(DataFormatError, match="positive and negative"):
        synthetic_mixed(only_neutral, 2, seed=0)


def test_split_by_text_keeps_a_headline_on_one_side() -> None:
    rows = read_sentfin(FIXTURE)
    train, val = split_by_text(rows, 0.5, seed=7)
    assert len(train) + len(val) == len(rows)
    assert not {r.text for r in train} & {r.text for r in val}
    assert val
