"""Corrections out: JSON lines or CSV for people and tools, and the training snapshot.

The training source ``feedback`` reads a snapshot in the export's JSON-lines shape (a
``title`` and a ``label`` per line, and for a company's correction its ``ticker`` and
``mention``), so ``finsent feedback export > f.jsonl`` is also a file
``finsent train --feedback-file`` takes. The snapshot written next to a model leaves out
who made each correction: a model folder travels further than the database.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import TextIO

from sqlalchemy.orm import Session

from pipeline.feedback.corrections import CorrectionRow, list_corrections

log = logging.getLogger(__name__)

FORMATS = ("jsonl", "csv")
# The snapshot's name in a training run's folder (finsent train, the fine-tune task).
SNAPSHOT_FILE = "feedback.jsonl"
COLUMNS = (
    "id",
    "article_id",
    "ticker",
    "label",
    "model_version",
    "model_label",
    "corrected_by",
    "corrected_at",
    "title",
    "url",
    "mention",  # last: columns added later go at the end, so CSV readers by position keep working
)
# Not in the snapshot a model is trained from (see the module's docstring).
PRIVATE = ("corrected_by",)
# A spreadsheet reads a cell that starts with one of these as a formula (or, for a tab or
# carriage return, strips it and then may), so a feed's headline could run in the analyst's
# Excel. OWASP's CSV-injection advice: prefix such a text cell with a single quote.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def write_corrections(rows: list[CorrectionRow], stream: TextIO, fmt: str = "jsonl") -> int:
    """Write ``rows`` in ``fmt`` (jsonl: one object a line; csv: a header, then a row each)."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    if fmt == "csv":
        writer = csv.DictWriter(stream, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(_csv_safe(r.as_dict()) for r in rows)
    else:
        for row in rows:
            stream.write(json.dumps(row.as_dict(), ensure_ascii=False) + "\n")
    return len(rows)


def neutralise_cell(value: object) -> object:
    """``value`` as a spreadsheet shows it as text: a string that a spreadsheet would read
    as a formula gets a leading ``'``, and its carriage returns become newlines. Numbers and
    None pass unchanged, so they stay numbers."""
    if not isinstance(value, str):
        return value
    if value.startswith(FORMULA_STARTS):
        value = "'" + value
    # The writer quotes a cell only for the line terminator ("\n"), so a bare "\r" went out
    # unquoted: a spreadsheet broke the row there and read what followed as a new cell,
    # unprefixed ("x\r=HYPERLINK(...)"). As "\n" the cell is quoted and stays one cell.
    return value.replace("\r\n", "\n").replace("\r", "\n")


def _csv_safe(row: dict) -> dict:
    # Only the CSV is opened in spreadsheets; JSON lines keep the text exact for tools.
    return {key: neutralise_cell(value) for key, value in row.items()}


def training_examples(session: Session) -> list[dict]:
    """Every stored correction as a training row (``title``, ``label``, the company's
    ``ticker`` and ``mention``, and where it came from). Each person's latest for an
    (article, company) is the only one stored; the feedback source makes one row of each
    (article, company), with the majority's label, and reads a company's correction as the
    headline for that company (docs/feedback.md)."""
    rows = list_corrections(session)
    return [{k: v for k, v in r.as_dict().items() if k not in PRIVATE} for r in rows]


def write_training_snapshot(rows: list[dict], path: Path) -> int:
    """Write ``training_examples`` rows to ``path`` (JSON lines); returns how many."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    log.info("feedback: %d corrections written to %s", len(rows), path)
    return len(rows)
