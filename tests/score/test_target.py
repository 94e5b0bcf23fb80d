from __future__ import annotations

import pytest

from pipeline.score.registry import released_model
from pipeline.score.target import (
    CLOSE_MARK,
    OPEN_MARK,
    encode_target_inputs,
    format_target_input,
    mark_target,
    normalise_target,
    unmark,
)

HEADLINE = "Tesla shares jump after record deliveries, while Ford slumps on recall"


def test_no_target_is_the_article_input() -> None:
    assert format_target_input(HEADLINE) == (HEADLINE, None)
    assert format_target_input(HEADLINE, None, "markers") == (HEADLINE, None)


@pytest.mark.parametrize("blank", ["", "   ", "\n\t"])
def test_blank_target_scores_the_whole_text(blank: str) -> None:
    assert format_target_input(HEADLINE, blank) == (HEADLINE, None)
    assert format_target_input(HEADLINE, blank, "segment") == (HEADLINE, None)


def test_segment_style_puts_the_mention_second() -> None:
    assert format_target_input(HEADLINE, "  Ford ", "segment") == (HEADLINE, "Ford")


def test_default_style_is_markers() -> None:
    assert format_target_input(HEADLINE, "Ford") == format_target_input(HEADLINE, "Ford", "markers")


def test_normalise_target_collapses_whitespace_and_caps_length() -> None:
    assert normalise_target("Bank  of\nAmerica") == "Bank of America"
    assert normalise_target("\u200bBank of\u00a0America\ufeff\x00") == "Bank of America"
    assert normalise_target("\u200b\u2060") is None
    # The joiners shape Indic and Persian names as written: kept, as the text keeps them.
    assert normalise_target("\u200bमारुति\u200d सुजुकी") == "मारुति\u200d सुजुकी"
    assert len(normalise_target("x" * 500) or "") == 100


def test_markers_wrap_the_first_whole_word_mention_case_insensitively() -> None:
    first, second = format_target_input(HEADLINE, "ford", "markers")
    assert second is None
    assert (
        first
        == f"Tesla shares jump after record deliveries, while {OPEN_MARK} Ford {CLOSE_MARK} slumps on recall"
    )


def test_markers_do_not_match_inside_a_word() -> None:
    text = "Fordham University report lifts Ford"
    first, _ = format_target_input(text, "Ford", "markers")
    assert first == f"Fordham University report lifts {OPEN_MARK} Ford {CLOSE_MARK}"


def test_a_texts_own_marks_are_escaped_so_only_the_companys_mark_is_one() -> None:
    text = "Analysts say << Tesla >> is a buy >> while Ford slumps <<"
    first, second = format_target_input(text, "Ford", "markers")
    assert second is None
    assert first == f"Analysts say « Tesla » is a buy » while {OPEN_MARK} Ford {CLOSE_MARK} slumps «"
    assert first.count(OPEN_MARK) == first.count(CLOSE_MARK) == 1
    # unmark finds the company's mark, not the text's own, and gives back the escaped text.
    plain, (start, end) = unmark(first)
    assert plain[start:end] == "Ford" and OPEN_MARK not in plain
    # A text without such marks is marked as before (what the released model reads).
    assert mark_target(HEADLINE, "Ford") == HEADLINE.replace("Ford", f"{OPEN_MARK} Ford {CLOSE_MARK}")


def test_training_rows_escape_the_texts_own_marks(tmp_path) -> None:
    import json

    from pipeline.sentiment.data import read_feedback

    path = tmp_path / "f.jsonl"
    row = {
        "title": "<<Upgrade>> lifts Acme >> Beta",
        "label": "positive",
        "ticker": "ACME",
        "mention": "Acme",
    }
    path.write_text(json.dumps(row) + "\n")
    (example,) = read_feedback(path, for_companies=True)
    assert example.text == f"«Upgrade» lifts {OPEN_MARK} Acme {CLOSE_MARK} » Beta"


def test_markers_fall_back_to_a_second_segment_for_an_absent_mention() -> None:
    assert format_target_input(HEADLINE, "TSLA", "markers") == (HEADLINE, "TSLA")


def test_unknown_style_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="segment, markers"):
        format_target_input(HEADLINE, "Ford", "brackets")  # type: ignore[arg-type]


class _WordTokenizer:
    """A tiny stand-in with the Hugging Face call shapes the encoder uses (no model files)."""

    pad_token_id = 0

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}

    def _ids(self, text: str) -> list[int]:
        return [self.vocab.setdefault(w, len(self.vocab) + 3) for w in text.split()]

    def __call__(self, first: str, second: str | None = None, truncation=None, max_length: int = 512):
        ids = [1, *self._ids(first), 2]
        types = [0] * len(ids)
        if second is not None:
            extra = [*self._ids(second), 2]
            ids += extra
            types += [1] * len(extra)
        ids, types = ids[:max_length], types[:max_length]
        return {"input_ids": ids, "token_type_ids": types, "attention_mask": [1] * len(ids)}

    def pad(self, features, padding=True, return_tensors="pt"):
        import torch

        width = max(len(f["input_ids"]) for f in features)
        out = {}
        for key in ("input_ids", "token_type_ids", "attention_mask"):
            fill = self.pad_token_id if key == "input_ids" else 0
            out[key] = torch.tensor([f[key] + [fill] * (width - len(f[key])) for f in features])
        return out


def test_encode_mixes_one_and_two_segment_rows() -> None:
    tok = _WordTokenizer()
    batch = encode_target_inputs(
        tok, [format_target_input(HEADLINE, "Ford", "segment"), format_target_input("Markets calm")], 64
    )
    assert batch["input_ids"].shape[0] == 2
    # The pair row marks its target as segment 1; the single row has no segment 1 at all.
    assert batch["token_type_ids"][0].max().item() == 1
    assert batch["token_type_ids"][1].max().item() == 0
    assert batch["attention_mask"][1].sum().item() == 4


def test_encode_with_the_real_tokenizer_keeps_the_target_as_segment_two() -> None:
    transformers = pytest.importorskip("transformers")

    model_dir = released_model()
    if model_dir is None or not (model_dir / "tokenizer.json").is_file():
        pytest.skip("released model not in this tree")
    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    batch = encode_target_inputs(
        tok, [format_target_input(HEADLINE, "Ford", "segment"), (HEADLINE, None)], 64
    )
    first = tok.decode(batch["input_ids"][0][batch["attention_mask"][0].bool()])
    assert first.endswith("[SEP] ford [SEP]")
    assert batch["token_type_ids"][1].sum().item() == 0


def test_mention_style_keeps_the_text_plain_and_finds_the_span() -> None:
    from pipeline.score.target import format_target_input, mark_target, mention_span, unmark

    text = "Tesla jumps, while Ford slumps on recall"
    assert format_target_input(text, "ford", "mention") == (text, None)
    assert format_target_input(text, "GM", "mention") == (text, "GM")  # absent: second segment
    assert mention_span(text, " Ford ") == (19, 23) and mention_span(text, "Fo") is None
    assert mention_span(text, None) is None
    marked = mark_target(text, "ford")
    assert marked is not None and unmark(marked) == (text, (19, 23))  # the exact inverse
    assert unmark(text) is None and unmark("a << b") is None


@pytest.mark.parametrize("written", ["Bank of  America", "Bank of\u00a0America", "Bank of\tAmerica"])
def test_a_mention_is_found_whatever_whitespace_the_text_puts_between_its_words(written: str) -> None:
    # The target is normalised to single spaces; raw input (classify, a copied headline)
    # is not: missed, the company was read as a second segment, another label.
    from pipeline.score.target import mention_read, mention_span

    text = f"{written} slumps while Tesla jumps"
    assert mention_span(text, "Bank of America") == (0, len(written))
    assert mention_read(text, written) == (text, (0, len(written)))
    assert format_target_input(text, "Bank of America", "mention") == (text, None)
    assert format_target_input(text, written, "segment") == (text, "Bank of America")
    marked = mark_target(text, "bank of america")
    assert marked == f"{OPEN_MARK} {written} {CLOSE_MARK} slumps while Tesla jumps"
    assert unmark(marked) == (text, (0, len(written)))
    assert mark_target("Bank ofAmerica slumps", "Bank of America") is None
