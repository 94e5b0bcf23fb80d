"""Evaluation gate and model resolution.

A candidate becomes the pipeline default only if it is at least as good as the current
model on FPB-50 and FPB-all, on both accuracy and macro-F1, and not worse by more than
``HEADLINE_TOLERANCE`` on the headline check (``pipeline.sentiment.headlines``) when both
models are known to be blind to its rows. Promotion writes the chosen path to
``<data_dir>/models/current.json``.

The pipeline resolves its model in this order (``pipeline.scoring.resolve_model_path``):
``FINSENT_MODEL_PATH``, the promoted model, the released model under ``models/``. The gate
guards the last two: a pinned ``FINSENT_MODEL_PATH`` is the user's choice, not a default.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.sentiment.data import rows_fingerprint
from pipeline.sentiment.headlines import HEADLINE_SET, blindness, load_headline_rows, recorded_seen

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
RELEASED_MODEL = REPO_ROOT / "models" / "finsent-minilm-v1"
PROMOTION_FILE = Path("models") / "current.json"
GATE_SETS = ("fpb-50", "fpb-all")
GATE_METRICS = ("accuracy", "macro_f1")
# The headline check has ~950 rows (one standard error of accuracy ~1.1 points): the guard
# is there to stop real regressions (A2 in the model card: 13 points), not to rank
# candidates on noise, so a drop of up to one point passes.
HEADLINE_TOLERANCE = 0.01


@dataclass
class GateDecision:
    promote: bool
    candidate: dict[str, dict[str, float]]
    current: dict[str, dict[str, float]] | None
    failures: list[str] = field(default_factory=list)
    headline_note: str = ""

    def table(self) -> str:
        head = "| set | metric | current | candidate | delta |"
        lines = [head, "|---|---|---:|---:|---:|"]
        for name in (*GATE_SETS, HEADLINE_SET):
            if name not in self.candidate:
                continue
            for metric in GATE_METRICS:
                cand = self.candidate[name][metric]
                cur = (self.current or {}).get(name)
                if cur is None:
                    lines.append(f"| {name} | {metric} | - | {cand:.4f} | - |")
                    continue
                lines.append(
                    f"| {name} | {metric} | {cur[metric]:.4f} | {cand:.4f} | {cand - cur[metric]:+.4f} |"
                )
        verdict = "PROMOTE" if self.promote else "KEEP CURRENT"
        why = f" ({'; '.join(self.failures)})" if self.failures else ""
        note = f"\n{self.headline_note}" if self.headline_note else ""
        return "\n".join(lines) + f"\n{note}\ngate: {verdict}{why}"


def _pick(metrics: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name in (*GATE_SETS, HEADLINE_SET):
        if name not in metrics:
            if name == HEADLINE_SET:  # optional: the data dir may lack TFNS
                continue
            raise KeyError(f"metrics lack {name!r}")
        m = _as_dict(metrics[name])
        out[name] = {k: float(m[k]) for k in GATE_METRICS}
    return out


def _as_dict(m: Any) -> Mapping[str, Any]:
    return m.to_dict() if hasattr(m, "to_dict") else m


def decide(
    candidate: Mapping[str, Any],
    current: Mapping[str, Any] | None,
    tolerance: float = 0.0,
    *,
    candidate_seen: int | None = None,
    current_seen: int | None = None,
    headline_tolerance: float = HEADLINE_TOLERANCE,
) -> GateDecision:
    """Promote when every FPB gate metric of the candidate is >= the current one
    (- tolerance) and, if both models are blind to the headline check (``*_seen == 0``),
    no headline metric dropped by more than ``headline_tolerance``.

    A model that trained or was selected on the check rows scores too well there: as the
    candidate it would pass unearned, as the current model it would set a bar honest
    candidates cannot reach. Then the check is reported, not applied.
    ``current`` None means there is no model yet: the candidate is promoted.
    """
    cand = _pick(candidate)
    cur = _pick(current) if current is not None else None
    failures = []
    if cur is not None:
        for name in GATE_SETS:
            for metric in GATE_METRICS:
                if cand[name][metric] < cur[name][metric] - tolerance:
                    failures.append(f"{name} {metric} {cand[name][metric]:.4f} < {cur[name][metric]:.4f}")
    note = ""
    if HEADLINE_SET in cand:
        head = f"headline check ({HEADLINE_SET}):"
        n_rows = _as_dict(candidate[HEADLINE_SET]).get("n")
        if cur is None or HEADLINE_SET not in cur:
            note = f"{head} reported only, nothing to compare with"
        elif candidate_seen != 0:
            note = f"{head} reported only, the candidate is {blindness(candidate_seen, n_rows)}"
        elif current_seen != 0:
            note = f"{head} reported only, the current model is {blindness(current_seen, n_rows)}"
        else:
            note = f"{head} guard applied, a drop of up to {headline_tolerance:.4f} passes"
            for metric in GATE_METRICS:
                c, k = cand[HEADLINE_SET][metric], cur[HEADLINE_SET][metric]
                if c < k - headline_tolerance:
                    failures.append(f"{HEADLINE_SET} {metric} {c:.4f} < {k:.4f} - {headline_tolerance:.2f}")
    return GateDecision(
        promote=not failures, candidate=cand, current=cur, failures=failures, headline_note=note
    )


def promoted_model(data_dir: Path, *, strict: bool = False) -> str | None:
    """The promoted model path from ``<data_dir>/models/current.json``, if any.

    A malformed record is ignored with a warning, or with ``strict`` raises ModelError
    (the pipeline's choice: scoring with an unintended model is worse than stopping)."""
    path = Path(data_dir) / PROMOTION_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        return str(record.get("path") or record["model_path"])
    except (ValueError, KeyError, TypeError, AttributeError):
        if strict:
            from pipeline.errors import ModelError

            raise ModelError(
                f"{path} is not a valid promotion record: delete it or re-run `finsent train --promote`"
            ) from None
        logger.warning("ignoring malformed %s", path)
        return None


def gate_baseline(data_dir: Path) -> str:
    """The model a candidate must beat: the promoted one while its folder exists, else the
    release (what the pipeline serves when FINSENT_MODEL_PATH is not set)."""
    promoted = promoted_model(data_dir)
    if promoted and Path(promoted).is_dir():
        return promoted
    return str(RELEASED_MODEL)


def write_promotion(data_dir: Path, model_path: str | Path, metrics: Mapping[str, Any] | None = None) -> Path:
    """Atomically record ``model_path`` as the pipeline default."""
    target = Path(data_dir) / PROMOTION_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    resolved = str(Path(model_path).resolve())
    # "path" is what pipeline.scoring reads; "model_path" is kept for older readers.
    payload = {
        "path": resolved,
        "model_path": resolved,
        "promoted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "metrics": _pick(metrics) if metrics is not None else None,
    }
    with tempfile.NamedTemporaryFile("w", dir=target.parent, delete=False, suffix=".tmp") as fh:
        json.dump(payload, fh, indent=2)
        tmp = fh.name
    os.replace(tmp, target)
    return target


def benchmark_model(
    model_path: str | Path, training_data_dir: Path, headline_rows: list | None = None
) -> dict[str, Any]:
    """FPB-50 / FPB-all metrics of a model folder (fp32, calibrated as served), and the
    headline check's when its rows are given."""
    import torch

    from pipeline.sentiment.classifier import check_model_dir
    from pipeline.sentiment.evaluate import evaluate_benchmarks, evaluate_examples, read_temperature

    model_dir = check_model_dir(model_path)
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32)
    temperature = read_temperature(model_dir)
    results = evaluate_benchmarks(model, tokenizer, training_data_dir, temperature)
    if headline_rows:
        results[HEADLINE_SET] = evaluate_examples(model, tokenizer, headline_rows, temperature)
    return {name: m.to_dict() for name, m in results.items()}


def run_gate(
    candidate_path: str | Path,
    data_dir: Path,
    training_data_dir: Path,
    *,
    promote: bool = True,
) -> GateDecision:
    """Compare a candidate with the current default; promote it if it passes.

    Both models are scored on the same test rows here (the current model's stored
    metrics could come from other code or data), the headline check included when the
    training data dir has TFNS; each model's blindness to it is read from its checkpoint.
    """
    current_path = gate_baseline(data_dir)
    headline_rows = load_headline_rows(training_data_dir)
    fingerprint = rows_fingerprint(headline_rows) if headline_rows else None
    cand = benchmark_model(candidate_path, training_data_dir, headline_rows)
    current = None
    if Path(current_path).resolve() == Path(candidate_path).resolve():
        current = cand
    elif Path(current_path).exists():
        current = benchmark_model(current_path, training_data_dir, headline_rows)
    else:
        logger.warning("current model %s is missing; the candidate has nothing to beat", current_path)
    decision = decide(
        cand,
        current,
        candidate_seen=recorded_seen(candidate_path, fingerprint),
        current_seen=recorded_seen(current_path, fingerprint),
    )
    if decision.promote and promote:
        path = write_promotion(data_dir, candidate_path, cand)
        logger.info("promoted %s (recorded in %s)", candidate_path, path)
    return decision
