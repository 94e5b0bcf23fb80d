"""Model folders: check them, name their version, and load any Hugging Face sequence
classifier from them (the one loader that serving, the gate, the release tool and
training share).

A bad folder is refused with one line that names the file and what to do, before
transformers gets to print a load report or raise from deep inside (a truncated weight
file, a head with the wrong number of labels).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.errors import ModelError
from pipeline.score.labels import LABELS

__all__ = [
    "CALIBRATION_FILE",
    "check_labels",
    "check_model_dir",
    "check_weights",
    "folder_label_order",
    "label_order",
    "load_model",
    "load_sequence_classifier",
    "load_tokenizer",
    "model_label_order",
    "model_version_of",
    "read_temperature",
    "weight_files",
    "weights_hash",
    "weights_sha256",
]

logger = logging.getLogger(__name__)

#: The temperature a model's probabilities are divided by, fitted on validation rows.
CALIBRATION_FILE = "calibration.json"


def check_model_dir(path: str | Path) -> Path:
    """Validate a local model folder, or raise a one-line ModelError saying what to do."""
    model_dir = Path(path).expanduser()
    if not model_dir.exists():
        raise ModelError(
            f"model path {model_dir} does not exist; pass an existing local model folder "
            "(a Hub model: download it first, e.g. 'hf download ORG/NAME --local-dir DIR') "
            "or train one with 'finsent train'"
        )
    if model_dir.is_file():
        raise ModelError(
            f"model path {model_dir} is a file: point it at the model's folder (the one that "
            "holds config.json and the weights)"
        )
    if not (model_dir / "config.json").is_file():
        raise ModelError(
            f"model path {model_dir} has no config.json; point it at a folder written by "
            "'finsent train' or save_pretrained()"
        )
    return model_dir


def weight_files(model_dir: Path) -> list[Path]:
    """A model folder's weight files, in name order: safetensors, else .bin."""
    return sorted(model_dir.glob("*.safetensors")) or sorted(model_dir.glob("*.bin"))


def weights_sha256(model_dir: Path) -> str:
    """sha256 over a model folder's weight files (weight_files), in name order."""
    digest = hashlib.sha256()
    for path in weight_files(model_dir):
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def weights_hash(model_dir: Path) -> str:
    """Short sha256 over the weight files: a stable id even if the folder is renamed."""
    return weights_sha256(model_dir)[:10]


def model_version_of(model_dir: Path) -> str:
    """The version scores are stored under: folder name and weights hash (no model load)."""
    return f"{model_dir.resolve().name}-{weights_hash(model_dir)}"


def read_temperature(model_dir: Path) -> float:
    """The calibration temperature (1.0 without a calibration file). Anything but a finite
    number above 0 is refused: 0 or NaN would store NaN scores (and NaN breaks the alert
    tables' JSON), a negative one would invert every label."""
    path = Path(model_dir) / CALIBRATION_FILE
    if not path.is_file():
        return 1.0
    try:
        value = json.loads(path.read_text(encoding="utf-8"))["temperature"]
        temperature = float(value)
    except (ValueError, TypeError, KeyError, OSError, OverflowError) as exc:
        raise ModelError(
            f"{path}: not a JSON object with a numeric 'temperature' ({type(exc).__name__}: {exc}); "
            "rewrite it (finsent train writes it) or remove it to serve uncalibrated"
        ) from None
    if isinstance(value, bool) or not math.isfinite(temperature) or temperature <= 0:
        raise ModelError(
            f"{path}: temperature {value!r} must be a finite number above 0 (1.0 leaves the "
            "probabilities as they are); rewrite it or remove the file"
        )
    return temperature


def model_label_order(model: Any) -> list[int]:
    """Column permutation mapping the model's output ids to our label order.

    Reads id2label from the model config, so a model with another label order (or
    upper-case names) is evaluated correctly.
    """
    return label_order(model.config.id2label)


def folder_label_order(model_dir: Path) -> list[int]:
    """model_label_order read from a model folder's config.json, without loading the model."""
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    return label_order(config.get("id2label") or {})


def label_order(id2label: dict[Any, Any]) -> list[int]:
    """model_label_order from a config's id2label (keys may be strings, as in config.json)."""
    id2label = {int(k): str(v).lower() for k, v in id2label.items()}
    by_name = {name: idx for idx, name in id2label.items()}
    missing = [name for name in LABELS if name not in by_name]
    if missing:
        raise ModelError(f"model labels {sorted(by_name)} lack {missing}; expected {', '.join(LABELS)}")
    return [by_name[name] for name in LABELS]


def check_weights(model_dir: Path) -> None:
    """Refuse a safetensors file whose header does not describe exactly its bytes (a copy
    cut short, a download interrupted): transformers would fail deep inside the load."""
    for path in sorted(model_dir.glob("*.safetensors")):
        size = path.stat().st_size
        fix = "copy the model folder again, or re-run 'finsent train' to write it"
        try:
            with open(path, "rb") as fh:
                (header_len,) = struct.unpack("<Q", fh.read(8))
                if header_len > size - 8:
                    raise ValueError("header longer than the file")
                header = json.loads(fh.read(header_len))
            end = max(
                (int(t["data_offsets"][1]) for k, t in header.items() if k != "__metadata__"), default=0
            )
        except (struct.error, ValueError, KeyError, TypeError, IndexError, AttributeError):
            raise ModelError(f"model file {path} is damaged (unreadable safetensors header): {fix}") from None
        if 8 + header_len + end != size:
            raise ModelError(
                f"model file {path} is truncated or damaged ({size} bytes, its header describes "
                f"{8 + header_len + end}): {fix}"
            )


def check_labels(model_dir: Path) -> None:
    """Refuse a folder whose config does not name FinSent's three labels."""
    config_file = model_dir / "config.json"
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
        names = [str(v).lower() for v in (config.get("id2label") or {}).values()]
    except (OSError, UnicodeDecodeError, ValueError, AttributeError) as exc:
        raise ModelError(
            f"model config {config_file} is unreadable ({exc}): copy the model folder again"
        ) from None
    # Extra labels are tolerated, as model_label_order reads only these three columns.
    if not set(LABELS) <= set(names):
        shown = ", ".join(names) or "none"
        raise ModelError(
            f"model folder {model_dir} is not a FinSent sentiment model: its config.json has "
            f"{len(names)} labels ({shown}), FinSent needs {', '.join(LABELS)}; point the model "
            "path at a 3-label model, or fine-tune this one with 'finsent train --base-model'"
        )


def load_sequence_classifier(
    name_or_path: str | Path,
    *,
    dtype: Any = None,
    sentiment_labels: bool = True,
    on_error: Callable[[BaseException], str] | None = None,
    **overrides: Any,
) -> tuple[Any, Any]:
    """(model, tokenizer) of any Hugging Face sequence classifier, in ``dtype`` (default fp32).

    ``sentiment_labels``: the folder must be a FinSent model (local, three labels); False
    for a base model or Hub id that ``overrides`` (num_labels, id2label...) give a new
    head. ``on_error`` words the one-line ModelError for a failed load.
    """
    source = _checked_source(name_or_path, sentiment_labels)
    tokenizer = _tokenizer(source, on_error)
    return _model(source, dtype, on_error, overrides), tokenizer


def load_tokenizer(model_dir: Path) -> Any:
    """The tokenizer of a FinSent model folder, checked as load_sequence_classifier checks
    it, without the model: importing transformers' modelling code alone costs about 130 MB
    and 2 s, which a scorer on a cached OpenVINO graph never needs."""
    return _tokenizer(_checked_source(model_dir, sentiment_labels=True), None)


def load_model(model_dir: Path, *, dtype: Any = None) -> Any:
    """The model of a FinSent model folder without its tokenizer (a caller that already
    has it: load_tokenizer), checked as load_sequence_classifier checks it."""
    return _model(_checked_source(model_dir, sentiment_labels=True), dtype, None, {})


def _tokenizer(source: str, on_error: Callable[[BaseException], str] | None) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(source)
    except Exception as exc:  # transformers raises many types; the user needs one line
        raise _load_error(exc, source, on_error) from exc


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """transformers' own warnings and progress bars off for the block: a "Loading weights"
    bar and "`loss_type=None` ... Using the default loss: `ForCausalLMLoss`" (from tracing a
    classifier for OpenVINO) read like faults in a scheduled run's log. Its errors still show."""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _model(
    source: str, dtype: Any, on_error: Callable[[BaseException], str] | None, overrides: dict[str, Any]
) -> Any:
    import torch
    from transformers import AutoModelForSequenceClassification

    try:
        with quiet_transformers():
            return AutoModelForSequenceClassification.from_pretrained(
                source, dtype=dtype or torch.float32, **overrides
            )
    except Exception as exc:  # transformers raises many types; the user needs one line
        raise _load_error(exc, source, on_error) from exc


def _checked_source(name_or_path: str | Path, sentiment_labels: bool) -> str:
    """The folder (or Hub id) to load from, after the one-line checks of a local folder."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    local = Path(name_or_path).expanduser()
    if sentiment_labels:
        local = check_model_dir(local)
        check_labels(local)
    if local.is_dir():
        check_weights(local)
    return str(local) if local.is_dir() else str(name_or_path)


def _load_error(
    exc: BaseException, source: str, on_error: Callable[[BaseException], str] | None
) -> ModelError:
    if on_error is not None:
        return ModelError(on_error(exc))
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ModelError(f"cannot load model from {source}: {first}")
