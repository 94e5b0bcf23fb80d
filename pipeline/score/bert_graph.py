"""A BERT classifier's forward pass written out for an exported graph (OpenVINO,
pipeline/score/classifier.py), computing only what its outputs read.

- The logits read the last layer at one position ([CLS], through the pooler). That layer's
  keys and values need every position, but its query, attention output, feed-forward and
  layer norms are per position, so only [CLS]'s row of them is computed: the rest is about
  a seventh of a six-layer model's work, done and thrown away.
- Attention is written as batched matrix products over (text, head) pairs with an additive
  mask, which OpenVINO runs on its matrix kernels (AMX where the CPU has it). The fused
  attention kernel it makes of transformers' own graph runs on AVX-512, up to 2.5x slower
  per batch at widths that are not a multiple of 16; end to end the products measured
  2-4 % faster on an AMX Xeon (BENCHMARKS.md).

The same modules and weights as the model's, in eval mode (no dropout); token type ids are
all 0, as the pipeline feeds single texts. Logits and states equal the model's own to float
rounding (tested against the transformers forward pass). Only BERT sequence classifiers
qualify (``supports_bert_graph``); other architectures export their own forward pass.
"""

from __future__ import annotations

from typing import Any

__all__ = ["bert_graph_module", "supports_bert_graph"]

# Added to the attention scores of padding: exp() of it is 0 in fp32 and bf16.
_MASKED = -10000.0


def supports_bert_graph(model: Any) -> bool:
    """Whether ``model`` is a BERT sequence classifier ``bert_graph_module`` reproduces:
    absolute positions, an encoder (no cross-attention), a pooler and a linear head."""
    from transformers import BertForSequenceClassification

    config = getattr(model, "config", None)
    bert = getattr(model, "bert", None)
    return (
        isinstance(model, BertForSequenceClassification)
        and config is not None
        and getattr(config, "model_type", None) == "bert"
        and getattr(config, "position_embedding_type", "absolute") == "absolute"
        and not getattr(config, "is_decoder", False)
        and not getattr(config, "add_cross_attention", False)
        and bert is not None
        and getattr(bert, "pooler", None) is not None
        and hasattr(model, "classifier")
        and config.hidden_size % config.num_attention_heads == 0
    )


def _layer(layer: Any, queries: Any, states: Any, mask: Any, heads: int) -> Any:
    """One BertLayer: ``queries`` (the rows to compute) attend over ``states`` (every row);
    ``mask``: (batch, 1, 1, width), 0 at a position to read and _MASKED at padding."""
    import torch

    attention = layer.attention.self
    batch, rows, width = queries.shape[0], queries.shape[1], states.shape[1]
    size = queries.shape[2] // heads

    def split(x: Any, n: int) -> Any:  # (batch, n, hidden) -> (batch x heads, n, size)
        return x.view(batch, n, heads, size).transpose(1, 2).reshape(batch * heads, n, size)

    q = split(attention.query(queries), rows)
    k = split(attention.key(states), width)
    v = split(attention.value(states), width)
    scores = torch.bmm(q, k.transpose(1, 2)) * (size**-0.5)
    weights = torch.softmax(scores.view(batch, heads, rows, width) + mask, dim=-1)
    context = torch.bmm(weights.view(batch * heads, rows, width), v)
    context = context.view(batch, heads, rows, size).transpose(1, 2).reshape(batch, rows, heads * size)
    attended = layer.attention.output.LayerNorm(layer.attention.output.dense(context) + queries)
    return layer.output.LayerNorm(layer.output.dense(layer.intermediate(attended)) + attended)


def bert_graph_module(model: Any, states: bool = False) -> Any:
    """A torch module (input_ids, attention_mask) -> logits of ``model``, the last layer at
    [CLS] only; with ``states``, (logits, the last layer's states at every position)."""
    import torch

    if not supports_bert_graph(model):
        raise ValueError(f"not a plain BERT sequence classifier: {type(model).__name__}")
    if model.training:
        raise ValueError("the model is in training mode (dropout): call model.eval() first")

    class BertGraph(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner
            self.heads = inner.config.num_attention_heads

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            bert = self.inner.bert
            hidden = bert.embeddings(input_ids=input_ids)
            mask = (1.0 - attention_mask[:, None, None, :].to(hidden.dtype)) * _MASKED
            layers = list(bert.encoder.layer)
            for layer in layers[:-1]:
                hidden = _layer(layer, hidden, hidden, mask, self.heads)
            if states:
                hidden = _layer(layers[-1], hidden, hidden, mask, self.heads)
                return self.inner.classifier(bert.pooler(hidden)), hidden
            cls = _layer(layers[-1], hidden[:, :1], hidden, mask, self.heads)
            return self.inner.classifier(bert.pooler(cls))

    return BertGraph(model)
