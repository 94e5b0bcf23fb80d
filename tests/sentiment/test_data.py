"""Data readers: PhraseBank original/split, TFNS, generic CSV, source mixing, splits."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from pipeline.sentiment.data import (
    LABELS,
    DataFormatError,
    cv_fold_split,
    held_out_rows,
    load_benchmarks,
    load_sources,
    parse_source_spec,
    read_fpb_original,
    read_fpb_split,
    read_label_csv,
    read_tfns,
    stratified_split,
    without_held_out,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sentiment"
DATA = FIXTURES / "data"


def test_label_order() -> None:
    assert LABELS == ("negative", "neutral", "positive")


def test_fpb_original_latin1_crlf_bare_cr_and_last_at() -> None:
    rows = read_fpb_original(FIXTURES / "fpb_original.txt")
    # 5 lines, one exact duplicate; a bare CR separates lines 2 and 3.
    assert len(rows) == 4
    assert rows[0].label == 2
    assert rows[1].text.startswith("Café chain Närpes") and rows[1].label == 0
    assert rows[2].text == "Contact investor@relations.fi for the report ."
    assert rows[2].label == 1


def test_fpb_original_bad_label_names_file_and_line() -> None:
    with pytest.raises(DataFormatError, match=r"fpb_bad_label.txt:2: label 'bullish'"):
        read_fpb_original(FIXTURES / "fpb_bad_label.txt")


def test_fpb_split_and_benchmarks() -> None:
    path = DATA / "financial_phrasebank" / "fpb_split.tsv"
    train = read_fpb_split(path, split="train")
    test = read_fpb_split(path, split="test")
    assert len(train) == 18 and len(test) == 6
    benches = load_benchmarks(DATA)
    assert len(benches["fpb-50"]) == 6
    assert all(ex.agreement == 100 for ex in benches["fpb-all"])
    assert len(benches["fpb-all"]) == 3


def test_tfns_mapping_and_multiline_quotes() -> None:
    rows = read_tfns(DATA / "tfns" / "sent_train.csv")
    assert [r.label for r in rows] == [2, 0, 1, 2, 0, 1]
    assert "says CEO" in rows[2].text


def test_label_csv_case_insensitive() -> None:
    rows = read_label_csv(FIXTURES / "labels.csv")
    assert [r.label for r in rows] == [2, 0, 1]
    assert rows[0].text == "Shares jump, analysts cheer"


def test_label_csv_bad_label_one_line_error() -> None:
    with pytest.raises(DataFormatError) as err:
        read_label_csv(FIXTURES / "labels_bad.csv")
    msg = str(err.value)
    assert "labels_bad.csv:3" in msg and "bearish" in msg and "\n" not in msg


def test_missing_file_error() -> None:
    with pytest.raises(DataFormatError, match="file not found"):
        read_tfns(FIXTURES / "nope.csv")


def test_mix_sources_drops_test_sentences_and_weights() -> None:
    examples, weights, infos = load_sources(
        ["fpb-split*2", "fpb-all", "tfns", f"csv:{FIXTURES / 'labels.csv'}"], DATA
    )
    test_texts = {ex.text for ex in load_benchmarks(DATA)["fpb-50"]}
    assert not test_texts & {ex.text for ex in examples}
    assert [i.name for i in infos] == ["fpb-split", "fpb-all", "tfns", f"csv:{FIXTURES / 'labels.csv'}"]
    assert infos[0].weight == 2.0 and weights[0] == 2.0 and weights[-1] == 1.0
    assert all(len(i.sha256) == 64 for i in infos)
    # AllAgree fixture holds test sentences (every other row): they were removed.
    assert infos[1].rows < 12


def test_unknown_source_and_bad_weight() -> None:
    with pytest.raises(DataFormatError, match="unknown source"):
        load_sources(["fpb-99"], DATA)
    with pytest.raises(DataFormatError, match="weight"):
        parse_source_spec("tfns*x")


@pytest.mark.parametrize("weight", ["nan", "inf", "-inf", "NaN", "0", "-1"])
def test_a_source_weight_must_be_positive_and_finite(weight: str) -> None:
    # nan passed the "<= 0" check and trained a checkpoint of NaN weights.
    with pytest.raises(DataFormatError, match=rf"source 'fpb-split\*{weight}'.*finite"):
        parse_source_spec(f"fpb-split*{weight}")


def test_stratified_split_is_seeded_and_stratified() -> None:
    examples, _, _ = load_sources(["fpb-split", "tfns"], DATA)
    a = stratified_split(examples, 0.34, seed=1)
    b = stratified_split(examples, 0.34, seed=1)
    assert a == b
    train_idx, val_idx = a
    assert not set(train_idx) & set(val_idx)
    assert len(train_idx) + len(val_idx) == len(examples)
    val_counts = Counter((examples[i].source, examples[i].label) for i in val_idx)
    # every (source, label) group with >1 row contributes to validation
    assert len(val_counts) == 6


def test_cv_folds_partition_training_rows_and_stay_stratified() -> None:
    examples, _, _ = load_sources(["fpb-split", "tfns"], DATA)
    train_idx, val_idx = stratified_split(examples, 0.2, seed=3)
    held = [cv_fold_split(examples, train_idx, 3, k, seed=3) for k in range(3)]
    heldout = [set(h) for _, h in held]
    # every training row is held out by exactly one fold, never a validation row
    assert sorted(i for h in heldout for i in h) == sorted(train_idx)
    assert not set().union(*heldout) & set(val_idx)
    for kept, h in held:
        assert sorted(kept + h) == sorted(train_idx)
    # each fold holds out some of every (source, label) group that has >= 3 rows
    groups = Counter((examples[i].source, examples[i].label) for i in train_idx)
    for h in heldout:
        assert {(examples[i].source, examples[i].label) for i in h} >= {
            g for g, n in groups.items() if n >= 3
        }
    assert cv_fold_split(examples, train_idx, 3, 1, seed=3) == held[1]
    with pytest.raises(ValueError, match="fold 3 of 3"):
        cv_fold_split(examples, train_idx, 3, 3, seed=3)


def _write_tsv(path: Path, header: str, rows: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")


def test_near_copies_of_fpb_and_sentfin_test_rows_train_nothing(tmp_path: Path) -> None:
    # Real shapes of near-copies in the sets: the same sentence with other figures, spacing
    # or punctuation, in the FPB split and among SEntFiN's headlines.
    _write_tsv(
        tmp_path / "financial_phrasebank" / "fpb_split.tsv",
        "sentence\tlabel\tagreement\tsplit",
        [
            "Operating profit rose to EUR 13.1 mn from EUR 8.7 mn .\tpositive\t100\ttest",
            "Operating profit rose to EUR 9.4 mn from EUR 6.2 mn.\tpositive\t100\ttrain",
            "Net sales decreased by 5 % .\tnegative\t100\ttrain",
            "2009 .\tneutral\t50\ttrain",
        ],
    )
    entities = '"{""Infosys"": ""positive""}"'
    _write_tsv(
        tmp_path / "sentfin" / "sentfin_split.tsv",
        "id\ttitle\tentities\tn_entities\tmixed\tsplit",
        [
            f"1\tInfosys shares surge 5% on strong Q3 results\t{entities}\t1\t0\ttest",
            f"2\tInfosys shares surge 7 % on strong Q3 results\t{entities}\t1\t0\ttrain",
            f"3\tInfosys wins a large deal from a US bank\t{entities}\t1\t0\ttrain",
        ],
    )
    held_out = held_out_rows(tmp_path)
    assert "OPERATING profit rose to EUR 1 mn from EUR 2 mn" in held_out
    assert "Net sales decreased by 5 % ." not in held_out
    assert "2010 ." not in held_out  # a text without letters is nobody's copy
    # The sources keep them, so the split (and the headline check drawn from it) stays the
    # one earlier models had; training then reads none of them.
    examples, _, infos = load_sources(["fpb-split", "sentfin"], tmp_path)
    assert [i.rows for i in infos] == [3, 2]
    kept = without_held_out(examples, list(range(len(examples))), held_out)
    texts = [examples[i].text for i in kept]
    assert "Net sales decreased by 5 % ." in texts and "2009 ." in texts and len(texts) == 3
    assert not any("Operating profit" in t or "surge" in t for t in texts)
