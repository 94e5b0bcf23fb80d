"""TrainConfig is the one declaration of training options; recipes are files of its fields."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import click
import pytest

from pipeline.errors import ConfigError
from pipeline.paths import MODELS_DIR, RECIPES_DIR
from pipeline.score.registry import released_model
from pipeline.sentiment.config import TrainConfig, load_recipe, options

RELEASE = released_model()
RECIPE = RECIPES_DIR / f"{RELEASE.name}.toml"
# What a recipe leaves to the run: the data's location, a terminal's bar, the corrections snapshot.
ENVIRONMENT = {"data_dir", "progress", "feedback_file"}


def test_the_release_recipe_is_the_released_models_recorded_training_config() -> None:
    recorded = json.loads((RELEASE / "training_config.json").read_text())["config"]
    recipe = load_recipe(RECIPE)
    config = TrainConfig(**recipe).validate().to_json()
    for key, value in recorded.items():
        if key not in ENVIRONMENT:
            assert config[key] == value, key
    # Every training option the release recorded is stated in the file, not left to defaults.
    assert set(recorded) - ENVIRONMENT - {"split_seed"} <= set(recipe)


def test_an_unknown_recipe_key_is_one_line_naming_the_key_and_the_file(tmp_path: Path) -> None:
    recipe = tmp_path / "typo.toml"
    recipe.write_text("epochs = 3\nlearning_rate = 5e-5\n")
    with pytest.raises(ConfigError) as err:
        load_recipe(recipe)
    message = str(err.value)
    assert "\n" not in message
    assert "'learning_rate'" in message and str(recipe) in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("epochs = 0", "'epochs' must be >= 1"),
        ('sources = "fpb-split"', "'sources' must be a list"),
        ('save_dtype = "int4"', "'save_dtype' must be one of float32, float16"),
        ("epochs = [", "not valid TOML"),
    ],
)
def test_a_bad_recipe_value_is_one_line(tmp_path: Path, text: str, expected: str) -> None:
    recipe = tmp_path / "bad.toml"
    recipe.write_text(text + "\n")
    with pytest.raises(ConfigError, match=expected):
        load_recipe(recipe)


def test_validate_names_the_flag() -> None:
    with pytest.raises(ConfigError, match="--lr: must be > 0"):
        TrainConfig(lr=0.0).validate()
    with pytest.raises(ConfigError, match="fold 3 of 3"):
        TrainConfig(cv_folds=3, cv_fold=3).validate()
    assert TrainConfig().problems() == []


def test_every_command_line_takes_every_option_from_trainconfig() -> None:
    from pipeline.cli.sentiment import train_cmd
    from pipeline.sentiment.train import build_arg_parser

    flags = {option.flag for _, option, _ in options() if option.flag}
    assert len(flags) == len([f for f in fields(TrainConfig) if f.metadata["option"].flag])
    click_flags = {opt for p in train_cmd.params if isinstance(p, click.Option) for opt in p.opts}
    assert flags <= click_flags
    parser_flags = {opt for action in build_arg_parser()._actions for opt in action.option_strings}
    assert flags <= parser_flags
    # Defaults come from TrainConfig, not from a second list.
    by_name = {p.name: p for p in train_cmd.params}
    assert by_name["epochs"].default == TrainConfig().epochs
    assert build_arg_parser().parse_args([]).lr == TrainConfig().lr


def test_command_line_options_override_the_recipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    import pipeline.sentiment.train as train_module
    from pipeline.cli.sentiment import train_cmd

    seen: list[TrainConfig] = []

    def fake_train(config: TrainConfig):
        seen.append(config)
        raise ConfigError("stop here", stage="train")

    monkeypatch.setattr(train_module, "train", fake_train)
    data = Path(__file__).resolve().parents[1] / "fixtures" / "sentiment" / "data"
    recipe = tmp_path / "r.toml"
    recipe.write_text('epochs = 5\nlr = 1e-4\nsources = ["fpb-split"]\nout_dir = "unused"\n')
    args = ["--recipe", str(recipe), "--epochs", "2", "--out", str(tmp_path / "m"), "--data-dir", str(data)]
    result = CliRunner().invoke(train_cmd, args)
    assert "stop here" in result.output, result.output
    (config,) = seen
    assert (config.epochs, config.lr, config.sources) == (2, 1e-4, ["fpb-split"])
    assert config.out_dir == tmp_path / "m"
    assert config.batch_size == TrainConfig().batch_size


def test_an_unknown_recipe_key_stops_finsent_train_in_one_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from pipeline.cli.sentiment import train_cmd

    recipe = tmp_path / "typo.toml"
    recipe.write_text("epoch = 3\n")
    result = CliRunner().invoke(train_cmd, ["--recipe", str(recipe), "--out", str(tmp_path / "m")])
    assert result.exit_code != 0
    assert "unknown key 'epoch'" in result.output and str(recipe) in result.output
    assert "did you mean 'epochs'" in result.output


@pytest.mark.parametrize("recipe", sorted(RECIPES_DIR.rglob("*.toml")), ids=lambda p: p.stem)
def test_every_bundled_recipe_is_a_valid_training_config(recipe: Path) -> None:
    values = load_recipe(recipe)
    assert "out_dir" in values  # finsent train needs it; every bundled recipe states it
    TrainConfig(**values).validate()


def test_a_recipes_relative_model_paths_are_read_from_the_repository_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retraining recipe names the release as models/...: it must run from an Airflow
    worker's directory too, while a path found from the working directory stays as given."""
    monkeypatch.chdir(tmp_path)
    values = load_recipe(RECIPES_DIR / "finsent-minilm-v3-feedback.toml")
    # The recipe itself by name or by its path in the repository, from anywhere.
    assert load_recipe("finsent-minilm-v3-feedback") == values
    assert load_recipe("recipes/finsent-minilm-v3-feedback.toml") == values
    v3 = str(MODELS_DIR / "finsent-minilm-v3")
    assert values["base_model"] == v3 and values["teachers"] == [v3]
    # Found from here (even where the repository has the same path), explicitly local, or
    # nowhere: as given.
    (tmp_path / "models" / "finsent-minilm-v3").mkdir(parents=True)
    recipe = tmp_path / "local.toml"
    recipe.write_text(
        'base_model = "models/finsent-minilm-v3"\n'
        'teachers = ["./recipes", "no/such/model", "sentence-transformers/all-MiniLM-L6-v2"]\n'
        'transfer = ["recipes/finsent-minilm-v3.toml"]\n'
    )
    values = load_recipe(recipe)
    assert values["base_model"] == "models/finsent-minilm-v3"
    assert values["teachers"] == ["./recipes", "no/such/model", "sentence-transformers/all-MiniLM-L6-v2"]
    assert values["transfer"] == [str(RECIPES_DIR / "finsent-minilm-v3.toml")]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        # numpy refused these seeds mid-run, reported as an unexpected internal error.
        ({"seed": -1}, "--seed: must be >= 0, got -1"),
        ({"seed": 2**32}, "--seed: must be <= 4294967295, got 4294967296"),
        ({"split_seed": -1}, "--split-seed: must be >= 0"),
        # OpenBLAS segfaulted on this many threads.
        ({"num_threads": 100000}, "--num-threads: must be <= 1024, got 100000"),
    ],
)
def test_seeds_and_thread_counts_out_of_range_are_refused(values: dict, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        TrainConfig(**values).validate()
    assert TrainConfig(seed=2**32 - 1, split_seed=0, num_threads=1024).problems() == []


@pytest.mark.parametrize("name", ["lr", "transfer_weight", "distill_alpha", "label_smoothing"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_number_option_must_be_finite(name: str, value: float) -> None:
    # nan compares false with every bound, so a range alone let `--lr nan` through.
    with pytest.raises(ConfigError, match="must be a finite number"):
        TrainConfig(**{name: value}).validate()


@pytest.mark.parametrize(
    "argv",
    [
        ["--seed", "-1"],
        ["--seed", "4294967296"],
        ["--num-threads", "100000"],
        ["augment", "--seed", "-1"],
        ["augment", "--split-seed", "4294967296"],
        ["crossfit", "--threads", "100000"],
    ],
)
def test_train_augment_and_crossfit_report_a_bad_seed_or_thread_count_as_a_usage_error(
    tmp_path: Path, argv: list
) -> None:
    from click.testing import CliRunner

    from pipeline.cli.sentiment import augment_cmd, crossfit_cmd, train_cmd

    command = {"augment": augment_cmd, "crossfit": crossfit_cmd}.get(argv[0], train_cmd)
    argv = argv[1:] if command is not train_cmd else argv
    result = CliRunner().invoke(command, [*argv, "--out", str(tmp_path / "m")])
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{argv[0]}'" in result.output and "unexpected" not in result.output
