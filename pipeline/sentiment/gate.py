"""Evaluation gate and model resolution.

A candidate becomes the pipeline default only if it is at least as good as the current
model on FPB-50 and FPB-all, on both accuracy and macro-F1, and not worse by more than
``HEADLINE_TOLERANCE`` on the headline check (``pipeline.sentiment.headlines``) when both
models are known to be blind to its rows. A target-aware candidate (it scores each company
of a text) must also beat the current model on the entity-level check, overall and on
the rows where one headline's companies differ; it may then give up to one point on FPB
(``TARGET_AWARE_TOLERANCE``). An article-level candidate for a target-aware current model
must not be worse on that check. Promotion writes the chosen path to
``<data_dir>/models/current.json``.

Which model serves is the serving registry's answer (``pipeline.score.registry``:
``FINSENT_MODEL_PATH``, the promoted model, the released model under ``models/``); the
gate's baseline is that same model, so a candidate is measured against what is serving.
A pinned ``FINSENT_MODEL_PATH`` still wins over a promotion.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import ModelError
from pipeline.score import registry
from pipeline.score.loading import load_sequence_classifier, read_temperature
from pipeline.score.target import read_target_style
from pipeline.sentiment.data import rows_fingerprint
from pipeline.sentiment.entity_eval import ENTITY_SET, entity_test_rows
from pipeline.sentiment.headlines import HEADLINE_SET, blindness, load_headline_rows, recorded_seen

if TYPE_CHECKING:
    from pipeline.settings import Settings

logger = logging.getLogger(__name__)

GATE_SETS = ("fpb-50", "fpb-all")
GATE_METRICS = ("accuracy", "macro_f1")
# The headline check has ~950 rows (one standard error of accuracy ~1.1 points): the guard
# is there to stop real regressions (A2 in docs/model-experiments.md: 13 points), not to rank
# candidates on noise, so a drop of up to one point passes.
HEADLINE_TOLERANCE = 0.01
# A target-aware candidate (one that scores each company of a text, ``target.json``) may
# give up to one point on FPB, if it is better than the current model on the entity-level
# check (SEntFiN test rows) overall and on the mixed rows, where one score per article is
# wrong by construction: the trade the company-level issue sets.
TARGET_AWARE_TOLERANCE = 0.01
ENTITY_GATE_SLICES = ("all", "mixed")


@dataclass
class GateDecision:
    promote: bool
    candidate: dict[str, dict[str, float]]
    current: dict[str, dict[str, float]] | None
    failures: list[str] = field(default_factory=list)
    headline_note: str = ""
    # Entity-level accuracy (overall and mixed rows) of both models, when the candidate
    # is target-aware: {"candidate": {"all": 0.84, "mixed": 0.73}, "current": {...}}
    entity: dict[str, dict[str, float]] | None = None
    # The model compared with (its folder), so the table says what "current" is.
    current_model: str | None = None

    def table(self) -> str:
        head = "| set | metric | current | candidate | delta |"
        lines = [f"current: {self.current_model or '(none)'}", head, "|---|---|---:|---:|---:|"]
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
        if self.entity is not None:
            for part in ENTITY_GATE_SLICES:
                cand, cur = self.entity["candidate"][part], self.entity["current"][part]
                lines.append(
                    f"| {ENTITY_SET} ({part}) | accuracy | {cur:.4f} | {cand:.4f} | {cand - cur:+.4f} |"
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
    entity: Mapping[str, Mapping[str, float]] | None = None,
    candidate_target_aware: bool = True,
) -> GateDecision:
    """Promote when every FPB gate metric of the candidate is >= the current one
    (- tolerance) and, if both models are blind to the headline check (``*_seen == 0``),
    no headline metric dropped by more than ``headline_tolerance``.

    A model that trained or was selected on the check rows scores too well there: as the
    candidate it would pass unearned, as the current model it would set a bar honest
    candidates cannot reach. Then the check is reported, not applied.
    ``current`` None means there is no model yet: the candidate is promoted.

    ``entity`` (a target-aware candidate): entity-level accuracy of both models,
    ``{"candidate": {"all", "mixed"}, "current": {"all", "mixed"}}`` (an article-level
    current model counts with its headline label copied to each company, as the pipeline
    would use it). A target-aware candidate must beat the current model on both slices;
    then FPB may drop by up to ``TARGET_AWARE_TOLERANCE``. An article-level candidate
    measured so (the current model is target-aware) must not be worse on either slice: it
    would give every company its headline's label, undoing the company-level scores.
    """
    cand = _pick(candidate)
    cur = _pick(current) if current is not None else None
    failures = []
    if entity is not None and cur is not None:
        if candidate_target_aware:
            tolerance = max(tolerance, TARGET_AWARE_TOLERANCE)
        for part in ENTITY_GATE_SLICES:
            c, k = entity["candidate"][part], entity["current"][part]
            if candidate_target_aware and c <= k:
                failures.append(f"{ENTITY_SET} ({part}) accuracy {c:.4f} <= {k:.4f}")
            elif not candidate_target_aware and c < k:
                failures.append(
                    f"{ENTITY_SET} ({part}) accuracy {c:.4f} < {k:.4f} (an article-level candidate "
                    "gives each company its headline's label)"
                )
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
        promote=not failures,
        candidate=cand,
        current=cur,
        failures=failures,
        headline_note=note,
        entity={k: dict(v) for k, v in entity.items()} if entity is not None and cur is not None else None,
    )


def entity_accuracy(model_path: str | Path, rows: list[Any]) -> dict[str, float]:
    """Entity-level accuracy (overall, mixed rows) of a model folder as the pipeline uses it:
    a target-aware model scores each company, an article-level one gives each company its
    headline's label (fp32, calibrated)."""
    from pipeline.score.classifier import SentimentClassifier
    from pipeline.sentiment.entity_eval import served_entity_metrics

    clf = SentimentClassifier.load(model_path, device="cpu", precision="fp32")
    check = served_entity_metrics(clf, rows)[("target" if clf.target_aware else "copy_article_label")]
    return {part: check[part]["accuracy"] for part in ENTITY_GATE_SLICES}


def gate_baseline(settings: Settings) -> str | None:
    """The model a candidate must beat: the one that serves now (pipeline.score.registry),
    None when there is none. A malformed promotion record is ignored here (with a warning):
    a new promotion replaces it."""
    try:
        return registry.resolve_model_path(settings, strict=False)
    except ModelError:
        return None


def write_promotion(data_dir: Path, model_path: str | Path, metrics: Mapping[str, Any] | None = None) -> Path:
    """Record ``model_path`` as the promoted model, with its gate metrics."""
    return registry.write_promotion(data_dir, model_path, _pick(metrics) if metrics is not None else None)


def benchmark_model(
    model_path: str | Path, training_data_dir: Path, headline_rows: list | None = None
) -> dict[str, Any]:
    """FPB-50 / FPB-all metrics of a model folder (fp32, calibrated as served), and the
    headline check's when its rows are given."""
    from pipeline.sentiment.evaluate import evaluate_benchmarks, evaluate_examples

    model, tokenizer = load_sequence_classifier(model_path)
    temperature = read_temperature(Path(model_path))
    results = evaluate_benchmarks(model, tokenizer, training_data_dir, temperature)
    if headline_rows:
        results[HEADLINE_SET] = evaluate_examples(model, tokenizer, headline_rows, temperature)
    return {name: m.to_dict() for name, m in results.items()}


def run_gate(
    candidate_path: str | Path,
    settings: Settings,
    *,
    promote: bool = True,
) -> GateDecision:
    """Compare a candidate with the model that serves now; promote it if it passes.

    Both models are scored on the same test rows here (the current model's stored
    metrics could come from other code or data), the headline check included when the
    training data dir has TFNS; each model's blindness to it is read from its checkpoint.
    """
    data_dir, training_data_dir = settings.data_dir, settings.training_data_dir
    current_path = gate_baseline(settings)
    headline_rows = load_headline_rows(training_data_dir)
    fingerprint = rows_fingerprint(headline_rows) if headline_rows else None
    cand = benchmark_model(candidate_path, training_data_dir, headline_rows)
    current = None
    if current_path is None:
        logger.warning("no model serves yet; the candidate has nothing to beat")
    elif Path(current_path).resolve() == Path(candidate_path).resolve():
        current = cand
    elif Path(current_path).exists():
        current = benchmark_model(current_path, training_data_dir, headline_rows)
    else:
        logger.warning("current model %s is missing; the candidate has nothing to beat", current_path)
    entity = None
    candidate_aware = read_target_style(candidate_path) is not None
    # Either side target-aware: an article-level candidate replacing a target-aware model
    # is measured on the companies too, or it would pass on FPB while undoing them.
    if current is not None and (candidate_aware or read_target_style(current_path) is not None):
        rows = entity_test_rows(training_data_dir)
        if rows:
            entity = {
                "candidate": entity_accuracy(candidate_path, rows),
                "current": entity_accuracy(current_path, rows),
            }
        else:
            logger.warning("no SEntFiN test rows: the candidate is gated on FPB alone")
    decision = decide(
        cand,
        current,
        candidate_seen=recorded_seen(candidate_path, fingerprint),
        current_seen=recorded_seen(current_path, fingerprint) if current_path else None,
        entity=entity,
        candidate_target_aware=candidate_aware,
    )
    decision.current_model = str(current_path) if current_path else None
    if decision.promote and promote:
        path = write_promotion(data_dir, candidate_path, cand)
        logger.info("promoted %s (recorded in %s)", candidate_path, path)
        if settings.model_path:
            # The registry's order: the user's pin wins over any promotion.
            logger.warning(
                "FINSENT_MODEL_PATH pins %s: it keeps serving until you unset it", settings.model_path
            )
    return decision
