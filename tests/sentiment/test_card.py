"""The model card keeps a model user's short shape, and the released card is what card.py writes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from pipeline.score.registry import released_model
from pipeline.score.target import TARGET_FILE, read_target_style, write_target_style
from pipeline.sentiment.card import CARD_NOTES_FILE, write_model_card

RELEASE = released_model()
NOTES_HEADING = "## About this release"
SECTIONS = ("## Intended use", "## Evaluation", "## Training data", "## Limitations", "## Reproduce")


def _release_inputs() -> tuple[dict, dict]:
    info = json.loads((RELEASE / "training_config.json").read_text())
    metrics = json.loads((RELEASE / "metrics.json").read_text())
    return info, metrics


def _regenerate(tmp_path: Path, notes: str | None, config_extra: dict | None = None) -> str:
    out = tmp_path / RELEASE.name
    out.mkdir()
    if notes is not None:
        (out / CARD_NOTES_FILE).write_text(notes)
    if (RELEASE / TARGET_FILE).is_file():  # a target-aware release's card says how to pass a target
        shutil.copy2(RELEASE / TARGET_FILE, out / TARGET_FILE)
    info, metrics = _release_inputs()
    info["config"].update(config_extra or {})
    return write_model_card(out, info, metrics).read_text()


def test_released_card_is_what_card_py_writes_with_its_notes(tmp_path: Path) -> None:
    committed = (RELEASE / "README.md").read_text()
    notes = committed[committed.index(NOTES_HEADING) :]
    assert _regenerate(tmp_path, notes) == committed


def test_card_has_the_users_sections_in_order_and_stays_short(tmp_path: Path) -> None:
    card = _regenerate(tmp_path, notes=None)
    positions = [card.index(section) for section in SECTIONS]
    assert positions == sorted(positions)
    # A card is for model users: about 8k characters at most, the experiment log lives in docs/.
    assert len((RELEASE / "README.md").read_text()) <= 8500
    assert len(card) <= 7000


def test_a_recipe_in_the_config_is_the_reproduce_command(tmp_path: Path) -> None:
    card = _regenerate(tmp_path, notes=None, config_extra={"recipe": "recipes/finsent-minilm-v3.toml"})
    reproduce = card[card.index("## Reproduce") :]
    assert "finsent train --recipe recipes/finsent-minilm-v3.toml" in reproduce
    # The full command stays next to it, so the card shows every option the recipe sets.
    assert "--teacher models/finsent-minilm-v2" in reproduce and "--freeze-embeddings" in reproduce


def test_release_card_says_the_headline_rows_are_held_out(tmp_path: Path) -> None:
    card = _regenerate(tmp_path, notes=None)
    assert "| fp32 | tfns-heldout |" in card
    # Never trained on; 93 of its 954 rows were among the validation rows v2 (v3's base model
    # and teacher, each counted) chose its epoch on.
    assert "`tfns-heldout` is the headline check" in card and "not blind (186 exposures" in card


def test_a_target_aware_release_card_says_how_to_pass_a_target(tmp_path: Path) -> None:
    card = _regenerate(tmp_path, notes=None)
    section = card[card.index("## Company-level sentiment") : card.index("## Training data")]
    how = (
        "One pass scores a text and each company" if read_target_style(RELEASE) == "mention" else "<< Ford >>"
    )
    assert how in section and "| released fp32, for each company | 2182 |" in section
    assert "baseline: headline label copied" in section


def test_a_mention_style_card_shows_the_reading_and_reproduces_it(tmp_path: Path) -> None:
    out = tmp_path / "m"
    out.mkdir()
    write_target_style(out, "mention")
    info, metrics = _release_inputs()
    info["config"]["target_style"] = "mention"
    card = write_model_card(out, info, metrics).read_text()
    section = card[card.index("## Company-level sentiment") : card.index("## Training data")]
    assert "One pass scores a text and each company" in section and "model.base_model.pooler" in section
    assert (
        '(logits / T).softmax(-1)  # T = calibration.json\'s "temperature"' in section
    )  # calibrated, as served
    assert "<< Ford >>" not in section
    assert "--target-style mention" in card and "the company must be named in the text" in card
