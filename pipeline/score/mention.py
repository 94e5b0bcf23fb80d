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
learns the reading it is served. On OpenVINO, serving reads the head from the weights file
alone (``MentionHead.read``): the PyTorch model is then never built.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = [
    "MentionHead",
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
    return head_logits(MentionHead.of(model), hidden, weights, rows)


def head_logits(
    head: MentionHead, hidden: torch.Tensor, weights: torch.Tensor, rows: torch.Tensor | None = None
) -> torch.Tensor:
    """The head read at pooled positions of last-layer states already computed (``hidden``,
    (batch, tokens, width); an OpenVINO graph's second output): see mention_logits."""
    import torch

    if rows is not None:
        hidden = hidden[rows]
    pooled = torch.einsum("rl,rlh->rh", weights.to(device=hidden.device, dtype=hidden.dtype), hidden)
    return head(pooled)


@dataclass(frozen=True)
class MentionHead:
    """The layers a pooled state goes through: the pooler's dense layer and activation,
    then the classifier (dropout: an identity in eval mode)."""

    dense: Any
    activation: Any
    dropout: Any
    classifier: Any

    @classmethod
    def of(cls, model: Any) -> MentionHead:
        """The model's own modules (shared: training's gradients flow through them)."""
        pooler = model.base_model.pooler
        return cls(pooler.dense, pooler.activation, model.dropout, model.classifier)

    @classmethod
    def read(cls, model_dir: Path, dtype: Any = None) -> MentionHead | None:
        """The head of a BERT sequence classifier read from its safetensors file alone
        (a few hundred kB, without building the model), in ``dtype`` (default fp32), equal
        to ``of`` on the loaded model (tested); None for another architecture or layout."""
        import torch
        from safetensors import safe_open

        try:
            config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        weights = model_dir / "model.safetensors"
        if config.get("architectures") != ["BertForSequenceClassification"] or not weights.is_file():
            return None
        names = ("bert.pooler.dense.weight", "bert.pooler.dense.bias", "classifier.weight", "classifier.bias")
        with safe_open(str(weights), framework="pt") as fh:
            if not set(names) <= set(fh.keys()):
                return None
            tensors = [fh.get_tensor(name).to(dtype or torch.float32) for name in names]

        def linear(weight: torch.Tensor, bias: torch.Tensor) -> torch.nn.Linear:
            # skip_init: no random initial weights (nor a draw from the global generator).
            layer = torch.nn.utils.skip_init(
                torch.nn.Linear, weight.shape[1], weight.shape[0], dtype=weight.dtype
            )
            with torch.no_grad():
                layer.weight.copy_(weight)
                layer.bias.copy_(bias)
            return layer.eval()

        # BertPooler's activation is always tanh; dropout does nothing in eval mode.
        return cls(linear(*tensors[:2]), torch.nn.Tanh(), torch.nn.Identity(), linear(*tensors[2:]))

    def copy(self, dtype: Any) -> MentionHead:
        """These layers copied in ``dtype``: the copy keeps no reference to the model."""
        import copy

        layers = (self.dense, self.activation, self.dropout, self.classifier)
        return MentionHead(*(copy.deepcopy(layer).to(dtype) for layer in layers))

    def __call__(self, pooled: torch.Tensor) -> torch.Tensor:
        pooled = pooled.to(self.dense.weight.dtype)  # the head's own precision (states may be fp32)
        return self.classifier(self.dropout(self.activation(self.dense(pooled))))


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
