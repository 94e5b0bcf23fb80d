"""Builders for sentiment tests: the labelled-data fixture and a tiny training config."""

from __future__ import annotations

from pathlib import Path

from pipeline.sentiment.train import TrainConfig

DATA = Path(__file__).parent / "fixtures" / "sentiment" / "data"


def tiny_config(out: Path, **overrides: object) -> TrainConfig:
    """A few steps on the FPB fixture, no benchmark: runs differ only in overrides."""
    values: dict = {
        "data_dir": DATA,
        "sources": ["fpb-split"],
        "out_dir": out,
        "batch_size": 8,
        "max_steps": 2,
        "val_fraction": 0.25,
        "max_length": 32,
        "progress": False,
        "eval_benchmarks": False,
    }
    values.update(overrides)
    return TrainConfig(**values)
