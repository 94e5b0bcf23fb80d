"""How a (text, target) pair is put to the target-aware sentiment model.

The model is one ``AutoModelForSequenceClassification`` that answers "what is the
sentiment of this text *for this target*". The target's mention is marked inside the text
(``Tesla jumps, while << Ford >> slumps on recall``), so the model reads the clause around
it; a target the text does not contain (a ticker for a name) goes as a second segment
(``[CLS] text [SEP] target [SEP]``). A text without a target is one plain segment, exactly
as the article-level model reads it, so scoring whole texts keeps working with the same
weights.

Markers against a second segment only, measured on SEntFiN test rows, are in
docs/model-target-aware.md: with the same training budget markers learned the target
far faster (mixed-row accuracy 0.67 against 0.50). Training imports this module so that
the model learns exactly the input it is served.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pipeline.errors import ModelError

__all__ = [
    "DEFAULT_STYLE",
    "STYLES",
    "TARGET_FILE",
    "TargetInput",
    "encode_target_inputs",
    "escape_marks",
    "find_mention",
    "format_target_input",
    "mark_target",
    "mention_pattern",
    "mention_read",
    "mention_span",
    "normalise_target",
    "read_target_style",
    "unmark",
    "write_target_style",
]

logger = logging.getLogger(__name__)

# segment: the target as a second segment; markers: the mention marked, one input per
# target; mention: the text read once, each target at its mention's tokens
# (pipeline/score/mention.py), a target the text lacks as a second segment.
Style = Literal["segment", "markers", "mention"]
STYLES: tuple[str, ...] = ("segment", "markers", "mention")
DEFAULT_STYLE: Style = "markers"
OPEN_MARK, CLOSE_MARK = "<<", ">>"
# What a text's own "<<" and ">>" become before a mention is marked in it, so that the only
# marks in a marked input are FinSent's: a headline's "<<Buy>> rating" would read as a
# second company, and unmark() would find the wrong one. Guillemets mean the same quote.
OWN_MARKS = {OPEN_MARK: "\u00ab", CLOSE_MARK: "\u00bb"}
# A target is a mention (a company name, ticker, index, ...), never a paragraph: longer
# input is cut so that the text, not the target, keeps the token budget.
MAX_TARGET_CHARS = 100
# Unicode categories of the characters a target drops: format (zero-width, BOM, bidi
# marks, soft hyphen) and control characters.
_HIDDEN = frozenset({"Cf", "Cc"})

# A model folder trained on targeted rows says so, and how it reads a target, in this file
# (written by training, copied by the release); a folder without it is an article-level
# model: it can be asked about a target, but its answer is the text's overall tone.
TARGET_FILE = "target.json"

# (first segment, second segment or None for a one-segment input)
TargetInput = tuple[str, str | None]


def normalise_target(target: str | None) -> str | None:
    """The target as the model reads it: whitespace collapsed, invisible characters
    dropped, None for no target.

    An empty or blank target means "the whole text", like no target at all.
    """
    if target is None:
        return None
    cleaned = " ".join(target.split())
    if not cleaned.isprintable():  # only spaces are left as whitespace: rare, so checked first
        # A zero-width space, a BOM, a bidi mark or a soft hyphen pasted with a name (from a
        # spreadsheet, a web page) would hide its mention in the text: the target would be
        # read as a second segment, with another label. The tokenizer drops them anyway.
        cleaned = " ".join("".join(ch for ch in cleaned if _shown(ch)).split())
    return cleaned[:MAX_TARGET_CHARS] or None


def _shown(char: str) -> bool:
    # The zero-width joiner and non-joiner are format characters that shape Indic and
    # Persian names as written: a text that has them keeps them, so the target does too.
    return char in "\u200c\u200d" or unicodedata.category(char) not in _HIDDEN


def mention_pattern(mention: str) -> str:
    """A regex for ``mention`` whose words may be apart by any whitespace: the target is
    normalised to single spaces, a text as given is not ("Bank of  America", a non-breaking
    space copied from a web page), and a mention missed there is read as a second segment."""
    if " " not in mention:  # most mentions are one word: no split (per pair, on the hot path)
        return re.escape(mention)
    return r"\s+".join(map(re.escape, mention.split()))


def find_mention(text: str, mention: str) -> re.Match[str] | None:
    """The first whole-word, case-insensitive occurrence of ``mention`` (already
    normalised: see normalise_target) in ``text``, any whitespace between its words, or None."""
    return re.search(rf"(?<!\w){mention_pattern(mention)}(?!\w)", text, re.IGNORECASE)


def mention_span(text: str, target: str | None) -> tuple[int, int] | None:
    """The character span of ``target``'s first whole-word occurrence in ``text`` (what the
    ``mention`` style reads), or None (no target, or the text does not contain it)."""
    mention = normalise_target(target)
    match = None if mention is None else find_mention(text, mention)
    return None if match is None else match.span()


def mention_read(text: str, target: str | None) -> tuple[str, tuple[int, int]] | None:
    """What a ``mention`` model reads for ``target`` in ``text``: the text as its training
    rows hold it (its own ``<<`` / ``>>`` escaped, as mark_target then unmark leave them) and
    the mention's span there; None when the text does not contain it. For a text without
    such marks that is the text itself, read in the same pass as its own score."""
    read = escape_marks(text)
    span = mention_span(read, target)
    return None if span is None else (read, span)


def unmark(text: str) -> tuple[str, tuple[int, int]] | None:
    """The plain text and the mention's character span of a marked input (``mark_target``'s
    output), or None for a text without markers. Training rows are stored marked; a
    ``mention`` model reads them this way."""
    start = text.find(OPEN_MARK + " ")
    if start < 0:
        return None
    end = text.find(" " + CLOSE_MARK, start + len(OPEN_MARK) + 1)
    if end < 0:
        return None
    mention = text[start + len(OPEN_MARK) + 1 : end]
    plain = text[:start] + mention + text[end + len(CLOSE_MARK) + 1 :]
    return plain, (start, start + len(mention))


def escape_marks(text: str) -> str:
    """``text`` with its own ``<<`` and ``>>`` written as guillemets (:data:`OWN_MARKS`); a
    text without them is returned unchanged."""
    for mark, written in OWN_MARKS.items():
        text = text.replace(mark, written)
    return text


def mark_target(text: str, mention: str) -> str | None:
    """The text with the first whole-word, case-insensitive occurrence of ``mention``
    (already normalised: see normalise_target) wrapped in markers, or None when the text
    does not contain it. The text's own ``<<`` / ``>>`` are escaped first (escape_marks),
    so the mention's are the only marks."""
    text, mention = escape_marks(text), escape_marks(mention)
    match = find_mention(text, mention)
    if match is None:
        return None
    return f"{text[: match.start()]}{OPEN_MARK} {match.group(0)} {CLOSE_MARK}{text[match.end() :]}"


def format_target_input(text: str, target: str | None = None, style: Style = DEFAULT_STYLE) -> TargetInput:
    """(first segment, second segment) for scoring ``text`` for ``target``.

    - no target (None or blank): ``(text, None)``, the article-level input;
    - ``segment``: ``(text, target)``;
    - ``markers``: ``(text with << mention >>, None)``; a target the text does not contain
      (a ticker for a name, a paraphrase) falls back to the second segment, so any target
      is scored and none is an error;
    - ``mention``: ``(text, None)`` when the text contains the mention (the model reads it
      at ``mention_span``), else the second segment, as for markers.
    """
    if style not in STYLES:
        raise ValueError(f"target style {style!r}: use one of {', '.join(STYLES)}")
    mention = normalise_target(target)
    if mention is None:
        return text, None
    if style == "markers":
        marked = mark_target(text, mention)
        if marked is not None:
            return marked, None
    if style == "mention" and find_mention(text, mention) is not None:
        return text, None
    return text, mention


def encode_target_inputs(tokenizer: Any, inputs: Sequence[TargetInput], max_length: int) -> dict[str, Any]:
    """Tokenise a batch that mixes one- and two-segment inputs, padded to its longest row.

    A Hugging Face tokenizer takes ``text_pair`` for all rows or none, so each row is
    encoded on its own and the batch padded together; truncation cuts the longer segment
    first, which keeps a short target whole. Returns PyTorch tensors.
    """
    features = []
    for first, second in inputs:
        if second is None:
            enc = tokenizer(first, truncation=True, max_length=max_length)
        else:
            enc = tokenizer(first, second, truncation="longest_first", max_length=max_length)
        features.append(dict(enc))
    return tokenizer.pad(features, padding=True, return_tensors="pt")


def read_target_style(model_dir: str | Path) -> Style | None:
    """The target style a model folder was trained with, or None for an article-level model."""
    path = Path(model_dir) / TARGET_FILE
    if not path.is_file():
        return None
    try:
        style = json.loads(path.read_text(encoding="utf-8")).get("style")
    except (ValueError, AttributeError, OSError) as exc:
        raise ModelError(
            f"{path}: not a JSON object with a 'style' ({exc}); rewrite it or remove it"
        ) from None
    if style not in STYLES:
        raise ModelError(
            f"{path}: style {style!r} is not one of {', '.join(STYLES)}; rewrite it or remove it"
        )
    return style


def write_target_style(model_dir: str | Path, style: Style = DEFAULT_STYLE) -> Path:
    """Mark a model folder as target-aware (training does this for runs with targeted rows)."""
    if style not in STYLES:
        raise ValueError(f"target style {style!r}: use one of {', '.join(STYLES)}")
    path = Path(model_dir) / TARGET_FILE
    record = {"style": style, "markers": [OPEN_MARK, CLOSE_MARK], "max_target_chars": MAX_TARGET_CHARS}
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return path
