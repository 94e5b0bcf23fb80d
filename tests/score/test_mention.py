"""The ``mention`` target style: a company read at its mention's tokens from the text's own
pass (pipeline/score/mention.py), in serving and in training's reading of marked rows."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from score_helpers import tiny_model_folder

from pipeline.errors import ModelError
from pipeline.score.classifier import HEADLINE_WEIGHT, SentimentClassifier
from pipeline.score.mention import encode_reads, mention_logits, pool_weights, token_span
from pipeline.score.target import mark_target, mention_span

TITLE = "Tesla shares jump after record deliveries, while Ford slumps on recall"
SUMMARY = "Ford recalls 40,000 cars. Analysts expect more deliveries. Tesla guides higher."


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model_folder(tmp_path_factory.mktemp("mention") / "tiny-mention", target_style="mention")


@pytest.fixture(scope="module")
def clf(folder: Path) -> SentimentClassifier:
    return SentimentClassifier.load(folder, device="cpu", precision="fp32", batch_size=3, backend="torch")


def _p(result) -> np.ndarray:
    return np.array([result.probabilities[k] for k in ("negative", "neutral", "positive")])


def _read_by_hand(clf: SentimentClassifier, text: str, mention: str) -> np.ndarray:
    """The model card's recipe: transformers alone, the mention's tokens pooled through the head."""
    import torch

    model, tokenizer = clf.model, clf.tokenizer
    enc = tokenizer(text, return_offsets_mapping=True, return_tensors="pt")
    offsets = enc.pop("offset_mapping")[0].tolist()
    start = text.index(mention)
    end = start + len(mention)
    span = [k for k, (a, b) in enumerate(offsets) if b > a and a < end and b > start]
    with torch.inference_mode():
        hidden = model.base_model(**enc).last_hidden_state[0, span].mean(0)
        pooler = model.base_model.pooler
        logits = model.classifier(pooler.activation(pooler.dense(hidden)))
        T = clf.temperature  # the card's name for it
        probs = (logits.float() / T).softmax(-1)
    return probs[clf.label_columns].numpy()


def test_token_span_and_pool_weights() -> None:
    offsets = [(0, 0), (0, 5), (6, 12), (13, 17), (17, 18), (0, 0)]  # [CLS] Tesla shares Ford . [SEP]
    assert token_span(offsets, (13, 17)) == (3, 4)
    assert token_span(offsets, (6, 18)) == (2, 5)
    assert token_span(offsets, (40, 44)) is None  # cut off by truncation
    weights = pool_weights(6, [(2, 4), None])
    assert weights[0].tolist() == [0, 0, 0.5, 0.5, 0, 0] and weights[1].tolist() == [1, 0, 0, 0, 0, 0]


def test_a_cls_row_is_the_models_own_output(clf: SentimentClassifier) -> None:
    import torch

    enc = clf.tokenizer([TITLE, "Apple beats estimates"], padding=True, return_tensors="pt")
    with torch.inference_mode():
        own = clf.model(**enc).logits
        read = mention_logits(
            clf.model,
            enc["input_ids"],
            enc["attention_mask"],
            pool_weights(enc["input_ids"].shape[1], [None, None]),
        )
    torch.testing.assert_close(read, own)


def test_training_reads_a_marked_row_plain_at_its_mention(clf: SentimentClassifier) -> None:
    marked = mark_target(TITLE, "Ford")
    assert marked is not None
    ids, spans = encode_reads(clf.tokenizer, [marked, TITLE], 64)
    assert ids[0] == ids[1] == clf.tokenizer(TITLE)["input_ids"]  # the markers are gone
    assert spans[1] is None  # a plain row: [CLS]
    a, b = spans[0]
    assert clf.tokenizer.decode(ids[0][a:b]) == "ford"


def test_a_company_is_read_at_its_mention_from_the_texts_own_pass(clf: SentimentClassifier) -> None:
    texts = [TITLE, "Apple beats estimates"]
    whole, per_text = clf.predict_span_proba(
        texts, [[mention_span(TITLE, "Ford"), mention_span(TITLE, "Tesla")], []]
    )
    np.testing.assert_allclose(whole, clf.predict_proba(texts), atol=1e-6)  # the text's own label unchanged
    ford, tesla = per_text[0]
    np.testing.assert_allclose(ford, _read_by_hand(clf, TITLE, "Ford"), atol=1e-5)
    np.testing.assert_allclose(tesla, _read_by_hand(clf, TITLE, "Tesla"), atol=1e-5)
    assert not np.allclose(ford, tesla) and per_text[1].shape == (0, 3)
    # predict_targets reads the same way; a target the text lacks goes as a second segment
    probs = clf.predict_targets_proba([TITLE, TITLE, TITLE, TITLE], ["Ford", "tesla", None, "TSLA"])
    np.testing.assert_allclose(probs[0], ford, atol=1e-6)
    np.testing.assert_allclose(probs[1], tesla, atol=1e-6)
    np.testing.assert_allclose(probs[2], whole[0], atol=1e-6)
    assert not np.allclose(probs[3], whole[0])


def test_a_text_holding_its_own_marks_is_read_as_its_training_row(clf: SentimentClassifier) -> None:
    """Training rows escape a text's own << >> (mark_target) and read the mention there;
    scoring reads the same text, in a pass of its own, while the article keeps its own text."""
    text = "<<Upgrade>> lifts Ford while Tesla slumps"
    escaped = text.replace("<<", "\u00ab").replace(">>", "\u00bb")
    marked = mark_target(text, "Ford")
    assert marked is not None
    ids, _ = encode_reads(clf.tokenizer, [marked], 64)
    assert ids[0] == clf.tokenizer(escaped)["input_ids"]  # what training reads
    probs = clf.predict_targets_proba([text, text], ["Ford", None])
    np.testing.assert_allclose(probs[0], _read_by_hand(clf, escaped, "Ford"), atol=1e-5)
    np.testing.assert_allclose(probs[1], clf.predict_proba([text])[0], atol=1e-6)  # as written
    articles, [[ford]] = clf.score_articles_with_targets([text], [""], [["Ford"]])
    np.testing.assert_allclose(_p(ford), probs[0], atol=1e-5)
    np.testing.assert_allclose(_p(articles[0]), probs[1], atol=1e-5)
    assert ford.mention == "Ford"


def test_a_mention_deep_in_a_long_text_is_read_in_its_window(folder: Path) -> None:
    clf = SentimentClassifier.load(folder, device="cpu", precision="fp32", max_length=16, backend="torch")
    text = "Shares of the carmaker traded sideways for most of the session today while " * 3 + "Ford slumps."
    [[read]] = clf.predict_span_proba([text], [[mention_span(text, "Ford")]])[1]
    tail = clf.tokenizer(text, add_special_tokens=False)["input_ids"]
    starts = clf._window_starts(len(tail))
    assert len(starts) > 1  # several windows: the mention is in the last
    window = clf.tokenizer.decode(tail[starts[-1] : starts[-1] + 14])
    assert np.allclose(read, _read_by_hand(clf, window, "ford"), atol=1e-5)


def test_articles_and_their_companies_come_from_one_pass(clf: SentimentClassifier) -> None:
    articles, [[ford, tesla, orbix]] = clf.score_articles_with_targets(
        [TITLE], [SUMMARY], [["Ford", "tesla", "Orbix"]]
    )
    assert [_p(a).tolist() for a in articles] == [
        _p(a).tolist() for a in clf.score_articles([TITLE], [SUMMARY])
    ]
    head = _read_by_hand(clf, TITLE, "Ford")
    sentence = _read_by_hand(clf, "Ford recalls 40,000 cars.", "Ford")
    np.testing.assert_allclose(_p(ford), HEADLINE_WEIGHT * head + (1 - HEADLINE_WEIGHT) * sentence, atol=2e-5)
    assert (ford.target, ford.mention) == ("Ford", "Ford") and tesla.mention == "tesla"
    assert not np.allclose(_p(ford), _p(tesla))
    # Named nowhere: the headline with the target as a second segment, as for markers.
    np.testing.assert_allclose(_p(orbix), clf.predict_targets_proba([TITLE], ["Orbix"])[0], atol=2e-6)
    assert orbix.mention is None


def test_a_model_without_a_bert_style_head_is_refused(folder: Path, tmp_path: Path) -> None:
    import torch
    from transformers import AutoTokenizer, DistilBertConfig, DistilBertForSequenceClassification

    other = tmp_path / "distil"
    config = DistilBertConfig(
        vocab_size=30522,
        dim=32,
        n_layers=1,
        n_heads=2,
        hidden_dim=64,
        num_labels=3,
        id2label={0: "negative", 1: "neutral", 2: "positive"},
        label2id={"negative": 0, "neutral": 1, "positive": 2},
    )
    torch.manual_seed(0)
    DistilBertForSequenceClassification(config).save_pretrained(other)
    AutoTokenizer.from_pretrained(folder).save_pretrained(other)
    shutil.copy(folder / "target.json", other / "target.json")
    with pytest.raises(ModelError, match="BERT-style pooler"):
        SentimentClassifier.load(other, device="cpu", precision="fp32", backend="torch")


def test_a_text_and_its_targets_cost_one_pass(
    clf: SentimentClassifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    """classify sends each text with no target and again per target: the text is read once."""
    windows: list[int] = []
    real = clf._forward

    def counting(sequences, pools=()):
        windows.append(len(sequences))
        return real(sequences, pools)

    monkeypatch.setattr(clf, "_forward", counting)
    probs = clf.predict_targets_proba([TITLE, TITLE, TITLE], [None, "Ford", "Tesla"])
    assert windows == [1]  # one window of one text, three readings
    np.testing.assert_allclose(probs[0], clf.predict_proba([TITLE])[0], atol=1e-6)
