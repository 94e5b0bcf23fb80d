"""Analysts' corrections of the model's labels, and their way back into training.

``record`` stores one (the web form does); ``list_corrections`` and ``write_corrections``
serve ``finsent feedback list|export``, ``remove_corrections`` ``finsent feedback remove``;
``own_corrections`` and ``withdraw_own`` let a page's author withdraw their own;
``training_examples`` gives the rows the training source ``feedback`` reads (``finsent
train --source feedback``). See docs/feedback.md.
"""

from pipeline.feedback.corrections import (
    LABELS,
    CorrectionRow,
    Recorded,
    corrections_on_page,
    list_corrections,
    own_corrections,
    record,
    remove_corrections,
    withdraw_own,
)
from pipeline.feedback.export import (
    FORMATS,
    SNAPSHOT_FILE,
    training_examples,
    write_corrections,
    write_training_snapshot,
)

__all__ = [
    "FORMATS",
    "LABELS",
    "SNAPSHOT_FILE",
    "CorrectionRow",
    "Recorded",
    "corrections_on_page",
    "list_corrections",
    "own_corrections",
    "record",
    "remove_corrections",
    "training_examples",
    "withdraw_own",
    "write_corrections",
    "write_training_snapshot",
]
