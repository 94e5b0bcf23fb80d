"""The ``mention`` target style: a company's sentiment read at its mention's tokens.

A ``markers`` model reads each (text, company) pair as an input of its own, the mention
marked, so a text naming companies is read once for itself and once more per company. A
``mention`` model reads the text once, plain: the text's label comes from [CLS] as always,
and a company's from the mean of the last layer's states over the tokens of its mention,
put through the same head (the pooler's dense layer and tanh, then the classifier). Every
company of a text costs a few hundred multiply-adds instead of a forward pass. The weights
are an ordinary ``BertForSequenceClassification``: a row of the pooling matrix that picks
position 0 gives exactly the model's own output.

Serving (``SentimentClassifier``) and training both call these functions, so the model
learns the reading it is served.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = [
    "check_mention_head",
    "encode_reads",
    "head_logits",
    "mention_logits",
    "pool_weights",
    "token_span",
]

Span = tuple[int, int]


def token_span(offsets: Sequence[tuple[int, int]], span: Span) -> Span | None:
    """[first, last) of the tokens whose characters overlap ``span`` (a character range of
    the text), from a tokenizer's offsets; special and empty tokens never count. None when
    no token does (the span was cut off by truncation)."""
    hits = [k for k, (a, b) in enumerate(offsets) if b > a and a < span[1] and b > span[0]]
    return (hits[0], hits[-1] + 1) if hits else None


def encode_reads(
    tokenizer: Any, texts: Sequence[str], max_length: int, marked: Sequence[bool] | None = None
) -> tuple[list[list[int]], list[Span | None]]:
    """Token ids (special tokens included) and the span each row is read at, for rows as
    training stores them: a marked text (``mark_target``'s output) is read plain at its
    mention's tokens, any other text at [CLS] (None). ``marked`` says which rows may carry
    markers (default: all); a span is None too where truncation cut the mention off."""
    from pipeline.score.target import unmark

    plain: list[str] = []
    chars: list[Span | None] = []
    for k, text in enumerate(texts):
        read = unmark(text) if marked is None or marked[k] else None
        plain.append(text if read is None else read[0])
        chars.append(None if read is None else read[1])
    enc = tokenizer(plain, truncation=True, max_length=max_length, return_offsets_mapping=True)
    spans = [
        None if span is None else token_span(offsets, span)
        for offsets, span in zip(enc["offset_mapping"], chars, strict=True)
    ]
    return enc["input_ids"], spans


def pool_weights(width: int, spans: Sequence[Span | None]) -> torch.Tensor:
    """(len(spans), width) pooling rows over token positions: the mean of a row's span, or
    position 0 ([CLS], the text's own reading) where the span is None."""
    import torch

    weights = torch.zeros((len(spans), width), dtype=torch.float32)
    for row, span in enumerate(spans):
        if span is None or span[1] <= span[0]:
            weights[row, 0] = 1.0
        else:
            weights[row, span[0] : span[1]] = 1.0 / (span[1] - span[0])
    return weights


def mention_logits(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    weights: torch.Tensor,
    rows: torch.Tensor | None = None,
) -> torch.Tensor:
    """Logits of the model's head read at pooled positions: output row ``r`` pools batch row
    ``rows[r]`` (default: row ``r``) with ``weights[r]``. One encoder pass per batch row,
    however many rows read it."""
    hidden = model.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    return head_logits(model, hidden, weights, rows)


def head_logits(
    model: Any, hidden: torch.Tensor, weights: torch.Tensor, rows: torch.Tensor | None = None
) -> torch.Tensor:
    """The head read at pooled positions of last-layer states already computed (``hidden``,
    (batch, tokens, width); an OpenVINO graph's second output): see mention_logits."""
    import torch

    if rows is not None:
        hidden = hidden[rows]
    pooled = torch.einsum("rl,rlh->rh", weights.to(device=hidden.device, dtype=hidden.dtype), hidden)
    pooler = model.base_model.pooler
    pooled = pooled.to(pooler.dense.weight.dtype)  # the head's own precision (states may be fp32)
    return model.classifier(model.dropout(pooler.activation(pooler.dense(pooled))))


def check_mention_head(model: Any) -> None:
    """ValueError unless the model has the head the ``mention`` style reads through: a
    BERT-style pooler (dense + activation) under ``base_model`` and a ``classifier``."""
    pooler = getattr(model.base_model, "pooler", None)
    if not (
        pooler is not None
        and hasattr(pooler, "dense")
        and hasattr(pooler, "activation")
        and hasattr(model, "classifier")
        and hasattr(model, "dropout")
    ):
        raise ValueError(
            f"the 'mention' target style reads through a BERT-style pooler and classifier; "
            f'{type(model).__name__} has none: train it with target_style = "markers"'
        )
