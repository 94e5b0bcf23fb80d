"""Evaluation gate: decision rule, promotion record, model resolution order."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.sentiment.gate import (
    RELEASED_MODEL,
    decide,
    gate_baseline,
    promoted_model,
    write_promotion,
)


def metrics(a50: float, f50: float, aall: float, fall: float) -> dict[str, dict[str, float]]:
    return {
        "fpb-50": {"accuracy": a50, "macro_f1": f50},
        "fpb-all": {"accuracy": aall, "macro_f1": fall},
    }


def test_promotes_when_at_least_as_good_everywhere() -> None:
    current = metrics(0.85, 0.83, 0.97, 0.96)
    assert decide(metrics(0.85, 0.83, 0.97, 0.96), current).promote  # ties pass
    assert decide(metrics(0.86, 0.84, 0.98, 0.97), current).promote


def test_rejects_when_any_metric_is_worse() -> None:
    current = metrics(0.85, 0.83, 0.97, 0.96)
    decision = decide(metrics(0.90, 0.88, 0.99, 0.95), current)
    assert not decision.promote
    assert decision.failures == ["fpb-all macro_f1 0.9500 < 0.9600"]
    table = decision.table()
    assert "KEEP CURRENT" in table and "| fpb-all | macro_f1 | 0.9600 | 0.9500 | -0.0100 |" in table


def test_no_current_model_promotes() -> None:
    decision = decide(metrics(0.5, 0.4, 0.6, 0.5), None)
    assert decision.promote and "PROMOTE" in decision.table()


def test_promotion_record_and_gate_baseline(tmp_path: Path) -> None:
    model = tmp_path / "candidate"
    model.mkdir()
    assert gate_baseline(tmp_path) == str(RELEASED_MODEL)
    record = write_promotion(tmp_path, model, metrics(0.9, 0.9, 0.98, 0.98))
    assert record == tmp_path / "models" / "current.json"
    payload = json.loads(record.read_text())
    assert payload["path"] == str(model.resolve())  # the key pipeline.scoring reads
    assert payload["metrics"]["fpb-50"]["accuracy"] == 0.9
    assert promoted_model(tmp_path) == str(model.resolve())
    assert gate_baseline(tmp_path) == str(model.resolve())
    model.rmdir()  # a promoted model that is gone: the pipeline serves the release again
    assert gate_baseline(tmp_path) == str(RELEASED_MODEL)


def test_malformed_promotion_record_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "current.json").write_text("{not json")
    assert gate_baseline(tmp_path) == str(RELEASED_MODEL)
