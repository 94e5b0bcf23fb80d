"""finsent augment: label-free variants of training rows, and the transfer file format."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from pipeline.sentiment.augment import (
    OPPOSITES,
    Augmenter,
    NeighbourTable,
    build_transfer,
    edit_delete,
    edit_direction,
    edit_numbers,
    join_words,
    make_edit_neighbour,
    read_transfer,
    rescale_number,
    words_of,
    write_transfer,
)
from pipeline.sentiment.data import (
    DataFormatError,
    load_sources,
    normalise_text,
    rows_fingerprint,
    stratified_split,
)

DATA = Path(__file__).resolve().parents[1] / "fixtures" / "sentiment" / "data"


class AlwaysRandom(random.Random):
    """random() below every threshold and sample() taking everything: edits fire fully."""

    def random(self) -> float:
        return 0.0

    def randint(self, a: int, b: int) -> int:
        return b


def test_words_keep_their_punctuation_when_the_core_changes() -> None:
    words = words_of("Net profit rose, to EUR 13.1 mn ( $ 17.2 mn ).")
    assert join_words(words) == "Net profit rose, to EUR 13.1 mn ( $ 17.2 mn )."
    assert [w.core for w in words][:3] == ["Net", "profit", "rose"]
    assert str(words[2].replace("fell")) == "fell,"


def test_direction_edit_flips_every_direction_word_and_keeps_case() -> None:
    out = edit_direction(words_of("Profit rose, sales were Higher ."), AlwaysRandom())
    assert out is not None and join_words(out) == "Loss fell, sales were Lower ."
    assert edit_direction(words_of("The company has 120 employees ."), random.Random(0)) is None


def test_opposites_table_is_its_own_inverse() -> None:
    # every word has exactly one opposite, whose opposite is the word again
    assert all(OPPOSITES[OPPOSITES[word]] == word for word in OPPOSITES)
    assert OPPOSITES["weak"] == "strong" and OPPOSITES["lower"] == "higher"
    assert "cut" not in OPPOSITES and "record" not in OPPOSITES


@pytest.mark.parametrize(
    ("core", "factor", "expected"),
    [
        ("8.7", 2.0, "17.4"),
        ("120", 0.5, "60"),
        ("1,200", 2.0, "2,400"),
        ("5,2", 2.0, "10,4"),
        ("1,234,567", 0.5, "617,284"),
        ("1,2,3", 2.0, None),
    ],
)
def test_rescaled_numbers_keep_their_notation(core: str, factor: float, expected: str | None) -> None:
    assert rescale_number(core, factor) == expected


def test_number_edit_swaps_numbers_but_never_years() -> None:
    text = "In 2007 profit rose from EUR 8.7 mn to EUR 13.1 mn ."
    swapped = edit_numbers(words_of(text), AlwaysRandom(1))
    assert swapped is not None
    assert join_words(swapped) == "In 2007 profit rose from EUR 13.1 mn to EUR 8.7 mn ."
    # with one number it is rescaled, keeping its decimals
    rescaled = edit_numbers(words_of("Sales were EUR 8.7 mn in 2008 ."), random.Random(3))
    assert rescaled is not None
    value = join_words(rescaled).split()[3]
    assert value != "8.7" and len(value.split(".")[1]) == 1
    assert "2008" in join_words(rescaled)
    assert edit_numbers(words_of("Sales rose in 2008 ."), random.Random(0)) is None


def test_delete_edit_needs_a_long_enough_sentence() -> None:
    short = words_of("Profit rose sharply .")
    assert edit_delete(short, random.Random(0)) is None
    long = words_of("The company said its operating profit rose sharply in the quarter .")
    out = edit_delete(long, random.Random(0))
    assert out is not None and 1 <= len(long) - len(out) <= 3


def test_neighbour_table_orders_by_cosine_and_edit_uses_it() -> None:
    vectors = np.array([[1, 0], [0.9, 0.1], [0, 1], [-1, 0]], dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    table = NeighbourTable(["profit", "earnings", "weather", "loss"], vectors, k=2)
    assert table.neighbours("Profit") == ["earnings", "weather"]
    assert table.neighbours("unknown") == []
    nearest = NeighbourTable(table.words, vectors, k=1)
    out = make_edit_neighbour(nearest, p=1.0)(words_of("Profit rose ."), random.Random(0))
    assert out is not None and join_words(out) == "Earnings rose ."


def test_augmenter_is_seeded_distinct_and_never_returns_inputs_or_excluded() -> None:
    texts = [
        "Operating profit rose to EUR 13.1 mn from EUR 8.7 mn in the third quarter of 2007 .",
        "Net sales decreased by 5 % to EUR 120 mn and the company expects weaker demand .",
    ]
    excluded = {
        normalise_text("Operating loss fell to EUR 13.1 mn from EUR 8.7 mn in the third quarter of 2007 .")
    }
    first = Augmenter(seed=1).augment(texts, 6, excluded)
    assert first == Augmenter(seed=1).augment(texts, 6, excluded)
    assert first != Augmenter(seed=2).augment(texts, 6, excluded)
    keys = [normalise_text(t) for t in first]
    assert len(keys) == len(set(keys)) and 6 < len(first) <= 12
    assert not set(keys) & ({normalise_text(t) for t in texts} | excluded)


def test_transfer_file_round_trip_and_other_formats(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    write_transfer(path, ["Profit fell .", "Sales rose ."], {"validation_rows_sha256": "abc"})
    loaded = read_transfer(path)
    assert loaded.texts == ["Profit fell .", "Sales rose ."]
    bom = tmp_path / "bom.jsonl"  # written by a Windows editor
    bom.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert read_transfer(bom).meta == {"validation_rows_sha256": "abc"}
    assert loaded.meta == {"validation_rows_sha256": "abc"}
    assert json.loads(path.read_text().splitlines()[0])["format"] == "finsent-transfer/1"
    csv_file = tmp_path / "t.csv"
    csv_file.write_text('id,text\n1,"Profit fell, again ."\n2,\n')
    assert read_transfer(csv_file).texts == ["Profit fell, again ."]
    txt = tmp_path / "t.txt"
    txt.write_text("Profit fell .\n\n  Sales rose .  \n")
    assert read_transfer(txt).texts == ["Profit fell .", "Sales rose ."]


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("a.jsonl", '{"text": "ok"}\n{"txt": "no"}\n', "a.jsonl:2: expected a JSON object with a 'text'"),
        ("b.jsonl", '{"text": "ok"}\nnot json\n', "b.jsonl:2: not JSON"),
        ("c.csv", "sentence\nhello\n", "c.csv:1: expected a 'text' column"),
        ("d.txt", "\n\n", "d.txt: no texts"),
        (
            "e.jsonl",
            '{"format": "finsent-transfer/0", "meta": {}}\n{"text": "ok"}\n',
            "format 'finsent-transfer/0'",
        ),
    ],
)
def test_bad_transfer_files_are_one_line_errors(tmp_path: Path, name: str, content: str, needle: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataFormatError) as info:
        read_transfer(path)
    assert needle in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(DataFormatError, match="no such file"):
        read_transfer(tmp_path / "missing.txt")


def test_build_transfer_varies_only_training_rows_and_records_the_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    original = Augmenter.augment

    def spy(self: Augmenter, texts, per_text, exclude=frozenset()):  # type: ignore[no-untyped-def]
        texts = list(texts)
        seen.extend(texts)
        return original(self, texts, per_text, exclude)

    monkeypatch.setattr(Augmenter, "augment", spy)
    out = tmp_path / "aug.jsonl"
    rows, variants = build_transfer(["fpb-split"], DATA, out, per_text=3, val_fraction=0.3, split_seed=5)
    examples, _, _ = load_sources(["fpb-split"], DATA)
    train_idx, val_idx = stratified_split(examples, 0.3, 5)
    assert sorted(seen) == sorted(examples[i].text for i in train_idx) and rows == len(train_idx)
    transfer = read_transfer(out)
    assert len(transfer.texts) == variants > rows
    assert transfer.meta["validation_rows_sha256"] == rows_fingerprint([examples[i] for i in val_idx])
    assert transfer.meta["split_seed"] == 5 and transfer.meta["sources"] == ["fpb-split"]
