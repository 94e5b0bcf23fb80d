"""BERT's forward pass written for export: the last layer at [CLS] only, or with the states."""

from __future__ import annotations

import pytest
import torch
import transformers

from pipeline.score.bert_graph import bert_graph_module, supports_bert_graph


def _bert(**overrides: object) -> object:
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=500,
        hidden_size=48,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=96,
        num_labels=3,
        **overrides,
    )
    model = transformers.BertForSequenceClassification(config).eval()
    with torch.no_grad():  # a head that separates the classes clearly
        model.classifier.weight.normal_(0, 2.0)
    return model


def test_logits_and_states_equal_the_models_own_forward_pass_with_padding() -> None:
    model = _bert()
    ids = torch.randint(5, 500, (4, 19))
    mask = torch.ones_like(ids)
    mask[1, 11:] = 0  # padded rows: the mask must keep [CLS] from reading the padding
    mask[3, 3:] = 0
    with torch.no_grad():
        expected = model(input_ids=ids, attention_mask=mask).logits
        got = bert_graph_module(model)(ids, mask)
    assert got.shape == expected.shape == (4, 3)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    # With the states: the same logits, and the last layer at every position where the
    # mask reads (padding positions are not compared: nothing reads them).
    with torch.no_grad():
        out = model.bert(input_ids=ids, attention_mask=mask).last_hidden_state
        logits, states = bert_graph_module(model, states=True)(ids, mask)
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-5)
    keep = mask.bool()
    torch.testing.assert_close(states[keep], out[keep], atol=1e-5, rtol=1e-5)
    # Padding changes nothing: a row's logits are those of its unpadded text.
    with torch.no_grad():
        alone = bert_graph_module(model)(ids[3:, :3], mask[3:, :3])
    torch.testing.assert_close(alone, got[3:], atol=1e-5, rtol=1e-5)


def test_only_plain_bert_classifiers_qualify() -> None:
    assert supports_bert_graph(_bert())
    assert not supports_bert_graph(_bert(position_embedding_type="relative_key"))
    assert not supports_bert_graph(_bert(is_decoder=True))
    config = transformers.DistilBertConfig(vocab_size=500, dim=48, n_layers=1, n_heads=4, hidden_dim=96)
    distil = transformers.DistilBertForSequenceClassification(config)
    assert not supports_bert_graph(distil)
    with pytest.raises(ValueError, match="not a plain BERT sequence classifier"):
        bert_graph_module(distil)
    with pytest.raises(ValueError, match="training mode"):
        bert_graph_module(_bert().train())  # dropout would differ from the written pass
