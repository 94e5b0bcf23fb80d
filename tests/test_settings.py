"""Settings: precedence, validation errors in one line, secret masking."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from pipeline.errors import ConfigError
from pipeline.settings import Settings, display_value, load_settings, mask_url


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("FINSENT_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "finsent.toml"
    path.write_text(text)
    return path


def test_defaults_are_per_user_and_lazy(tmp_path: Path) -> None:
    loaded = load_settings()
    assert loaded.settings.data_dir == tmp_path / "xdg-data" / "finsent"
    assert loaded.settings.database_url is None
    assert loaded.settings.outbox_dir == loaded.settings.data_dir / "outbox"
    assert set(loaded.sources.values()) == {"default"}
    assert loaded.config_file is None


def test_precedence_override_env_file_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write_config(
        tmp_path,
        'fetch_concurrency = 4\nalert_threshold = 2.5\nlog_level = "debug"\n[alert]\nmin_volume = 9\n',
    )
    monkeypatch.setenv("FINSENT_ALERT_THRESHOLD", "4.5")
    monkeypatch.setenv("FINSENT_FETCH_TIMEOUT_S", "7")
    loaded = load_settings(cfg, fetch_timeout_s=3.0)
    s = loaded.settings
    assert s.fetch_concurrency == 4 and loaded.sources["fetch_concurrency"] == f"file {cfg}"
    assert s.alert_threshold == 4.5 and loaded.sources["alert_threshold"] == "env FINSENT_ALERT_THRESHOLD"
    assert s.fetch_timeout_s == 3.0 and loaded.sources["fetch_timeout_s"] == "command line"
    assert s.alert_min_volume == 9  # [alert] section flattens to alert_min_volume
    assert s.log_level == "DEBUG"
    assert loaded.sources["score_batch_size"] == "default"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (
            'alert_recipients = ["a@example.com"]\n[alert]\nrecipients = ["b@example.com"]\n',
            "[alert] recipients",
        ),
        ("Score_Batch_Size = 8\nscore_batch_size = 16\n", "score_batch_size"),
    ],
)
def test_two_keys_for_one_setting_are_refused(tmp_path: Path, text: str, named: str) -> None:
    """One would silently replace the other: a recipient lost without a word."""
    cfg = write_config(tmp_path, text)
    with pytest.raises(ConfigError, match="set the same setting") as caught:
        load_settings(cfg)
    assert named in str(caught.value) and "\n" not in str(caught.value)


def test_config_file_from_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write_config(tmp_path, "score_batch_size = 8\n")
    monkeypatch.setenv("FINSENT_CONFIG", str(cfg))
    assert load_settings().settings.score_batch_size == 8


def test_comma_separated_lists_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINSENT_ALERT_RECIPIENTS", "a@x.com, b@y.com,")
    monkeypatch.setenv("FINSENT_FEEDS", "https://a/rss")
    s = load_settings().settings
    assert s.alert_recipients == ["a@x.com", "b@y.com"]
    assert s.feeds == ["https://a/rss"]


def test_alert_recipients_must_be_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINSENT_ALERT_RECIPIENTS", "Desk <desk@example.com>, ops@localhost")
    assert load_settings().settings.alert_recipients == ["Desk <desk@example.com>", "ops@localhost"]
    monkeypatch.setenv("FINSENT_ALERT_RECIPIENTS", "desk@example.com, not an email")
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert "FINSENT_ALERT_RECIPIENTS" in message and "not an email address: 'not an email'" in message
    assert "\n" not in message


def test_web_url_is_unset_by_default_and_an_http_address_ending_in_a_slash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings().settings.web_url is None
    monkeypatch.setenv("FINSENT_WEB_URL", "https://finsent.example.com/finsent")
    assert load_settings().settings.web_url == "https://finsent.example.com/finsent/"
    for bad in ("javascript:alert(1)", "finsent.example.com", "https://u:p@host/", "https://h/?x=1"):
        monkeypatch.setenv("FINSENT_WEB_URL", bad)
        with pytest.raises(ConfigError, match="FINSENT_WEB_URL") as info:
            load_settings()
        assert "\n" not in str(info.value)


def test_trusted_user_header_is_unset_by_default_and_exactly_one_header_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings().settings.web_trusted_user_header is None
    monkeypatch.setenv("FINSENT_WEB_TRUSTED_USER_HEADER", " X-Forwarded-Email ")
    assert load_settings().settings.web_trusted_user_header == "X-Forwarded-Email"
    for bad in ("X-Forwarded-Email, Remote-User", "X-Forwarded Email", "X-User:"):
        monkeypatch.setenv("FINSENT_WEB_TRUSTED_USER_HEADER", bad)
        with pytest.raises(ConfigError, match=r"TRUSTED_USER_HEADER.*not one HTTP header") as info:
            load_settings()
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("junk", ["desk@x.com; ops@x.com", "mailto:a@b.com", "a@b c.com", "Desk <a@b.com> x"])
def test_a_recipient_the_mail_library_would_cut_short_is_refused(monkeypatch: pytest.MonkeyPatch, junk: str):
    # The mail library keeps the first address of such a value and drops the rest unsaid.
    monkeypatch.setenv("FINSENT_ALERT_RECIPIENTS", junk)
    with pytest.raises(ConfigError, match="not an email address"):
        load_settings()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("fetch_concurency = 3\n", "unknown setting 'fetch_concurency' (did you mean 'fetch_concurrency'?)"),
        ("fetch_concurrency = [\n", "is not valid TOML"),
        ("fetch_concurrency = 0\n", "setting 'fetch_concurrency' from file"),
        ('alert_transport = "pigeon"\n', "setting 'alert_transport'"),
    ],
)
def test_bad_config_file_is_one_line(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write_config(tmp_path, text))
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


def test_missing_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The fix named is where the path came from: --config, or the environment.
    with pytest.raises(ConfigError, match="does not exist: create it or check the path given as --config"):
        load_settings(tmp_path / "nope.toml")
    monkeypatch.setenv("FINSENT_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match="does not exist: create it or unset FINSENT_CONFIG"):
        load_settings()


def test_bad_env_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINSENT_SMTP_PORT", "seventy")
    with pytest.raises(ConfigError, match="env FINSENT_SMTP_PORT"):
        load_settings()


@pytest.mark.parametrize("name", ["FINSENT_DATA_DIR", "FINSENT_TRAINING_DATA_DIR"])
def test_an_empty_folder_setting_is_refused_not_read_as_the_current_folder(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(name, "  ")
    with pytest.raises(ConfigError, match=f"env {name} is invalid: is empty: unset it"):
        load_settings()


def test_an_empty_watchlist_path_means_no_watchlist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINSENT_WATCHLIST_PATH", "")
    assert load_settings().settings.watchlist_path is None


def test_invalid_secret_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINSENT_SMTP_PASSWORD", "")
    monkeypatch.setenv("FINSENT_SMTP_PORT", "0")
    with pytest.raises(ConfigError) as info:
        load_settings(smtp_password=SecretStr("hunter2"))
    assert "hunter2" not in str(info.value)


def test_secrets_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINSENT_DATABASE_URL", "postgresql://bob:s3cret@db.example:5432/fin")
    monkeypatch.setenv("FINSENT_SMTP_PASSWORD", "hunter2")
    s = load_settings().settings
    shown = {name: display_value(name, getattr(s, name)) for name in Settings.model_fields}
    assert shown["database_url"] == "postgresql://bob:***@db.example:5432/fin"
    assert shown["smtp_password"] == "***"
    assert "s3cret" not in repr(s) and "hunter2" not in repr(s)
    assert "s3cret" not in str(s.model_dump())


def test_ui_token_is_a_masked_secret_empty_means_unset_short_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FINSENT_UI_TOKEN", "a-long-enough-ui-token")
    s = load_settings().settings
    assert display_value("ui_token", s.ui_token) == "***" and "a-long-enough" not in repr(s)
    monkeypatch.setenv("FINSENT_UI_TOKEN", "")  # docker compose passes an unset variable as ""
    assert load_settings().settings.ui_token is None
    monkeypatch.setenv("FINSENT_UI_TOKEN", "short-secret")
    with pytest.raises(ConfigError, match=r"ui_token.*too short: use at least 16") as info:
        load_settings()
    assert "short-secret" not in str(info.value)


def test_mask_url_never_leaks_unparsable() -> None:
    assert mask_url("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"
    assert "pw" not in mask_url("not a url :pw@")


def test_a_renamed_setting_says_what_replaced_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINSENT_MODEL_QUANTIZE", "false")
    with pytest.raises(ConfigError, match="FINSENT_MODEL_QUANTIZE was replaced by FINSENT_MODEL_PRECISION"):
        load_settings()
    monkeypatch.delenv("FINSENT_MODEL_QUANTIZE")
    cfg = tmp_path / "f.toml"
    cfg.write_text("model_quantize = false\n")
    with pytest.raises(ConfigError, match="'model_quantize' was replaced by 'model_precision'"):
        load_settings(cfg)
    monkeypatch.setenv("FINSENT_MODEL_PRECISION", "bf16")
    assert load_settings().settings.model_precision == "bf16"
    monkeypatch.setenv("FINSENT_MODEL_PRECISION", " FP32 ")  # spelled as in the docs' prose
    assert load_settings().settings.model_precision == "fp32"
    cfg.write_text("model_quantise = false\n")  # a typo suggests the current name
    with pytest.raises(ConfigError, match="did you mean 'model_precision'"):
        load_settings(cfg)


def test_the_cpu_backend_is_a_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().settings.cpu_backend == "auto"
    assert load_settings(write_config(tmp_path, 'cpu_backend = "torch"\n')).settings.cpu_backend == "torch"
    monkeypatch.setenv("FINSENT_CPU_BACKEND", " OpenVINO ")
    assert load_settings().settings.cpu_backend == "openvino"
    monkeypatch.setenv("FINSENT_CPU_BACKEND", "onnx")
    with pytest.raises(ConfigError, match="setting 'cpu_backend' from env FINSENT_CPU_BACKEND"):
        load_settings()


def test_every_numeric_setting_declares_a_range() -> None:
    # Without an upper bound an absurd value (fetch_max_bytes = 10**23) passed and broke every
    # feed at run time; each number's range is declared on its field, and only there.
    from pipeline.settings import numeric_range

    for name in Settings.model_fields:
        bounds = numeric_range(name)
        if bounds is not None:
            low, high = bounds
            assert low and high, f"setting {name} needs both bounds in its Field(...)"


def test_int_bounds_agree_with_the_declared_range() -> None:
    # A CLI flag that overrides an integer setting takes its range from int_bounds.
    from pipeline.settings import int_bounds, numeric_range

    for name, info in Settings.model_fields.items():
        if info.annotation not in (int, int | None) or numeric_range(name) is None:
            continue
        low, high = int_bounds(name)
        text_low, text_high = numeric_range(name)
        assert low is not None and high is not None, name
        assert text_low in (f">= {low}", f"> {low - 1}"), name
        assert text_high in (f"<= {high}", f"< {high + 1}"), name


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("fetch_max_bytes", "99999999999999999999999", "must be >= 1024 and <= 1073741824"),
        ("fetch_timeout_s", "inf", "must be > 0 and <= 600"),
        ("fetch_timeout_s", "nan", "must be > 0 and <= 600"),
        ("fetch_concurrency", "0", "must be >= 1 and <= 512"),
        ("score_batch_size", "0", "must be >= 1 and <= 4096"),
        ("alert_repeat_hours", "1e9", "<= 8760"),
    ],
)
def test_absurd_numbers_are_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(f"FINSENT_{name.upper()}", value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert f"setting '{name}' from env FINSENT_{name.upper()}" in message and fragment in message
    assert "\n" not in message
    monkeypatch.delenv(f"FINSENT_{name.upper()}")
    with pytest.raises(ConfigError, match=f"setting '{name}' from file"):  # TOML: inf, nan too
        load_settings(write_config(tmp_path, f"{name} = {value}\n"))


def test_unknown_env_variable_warns_with_the_nearest_name(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("FINSENT_ALERT_RECIPENTS", "ops@example.com")
    monkeypatch.setenv("FINSENT_INGEST_SHARDS", "4")  # read by the DAG files: known
    monkeypatch.setenv("FINSENT_CPU_BACKEND", "torch")  # a setting (it was warned about once)
    monkeypatch.setenv("FINSENT_TEST_WHATEVER", "1")  # the test suite's own
    with caplog.at_level("WARNING", logger="pipeline.settings"):
        loaded = load_settings()
    assert loaded.settings.alert_recipients == []
    warnings = [r.getMessage() for r in caplog.records if r.name == "pipeline.settings"]
    assert warnings == [
        "environment variable FINSENT_ALERT_RECIPENTS is not a FinSent setting and is ignored "
        "(did you mean FINSENT_ALERT_RECIPIENTS?)"
    ]


def test_an_empty_env_variable_means_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # docker compose's ${VAR:-} passes every unset variable through as "": it must not hide
    # the config file's value (nor the default), and `finsent config` must not name the env.
    cfg = write_config(tmp_path, 'feeds = ["https://a/rss"]\nalert_threshold = 2.5\n')
    for name in ("FEEDS", "ALERT_RECIPIENTS", "UI_TOKEN", "ALERT_THRESHOLD", "DATA_DIR"):
        monkeypatch.setenv(f"FINSENT_{name}", "")
    loaded = load_settings(cfg)
    s = loaded.settings
    assert s.feeds == ["https://a/rss"] and loaded.sources["feeds"] == f"file {cfg}"
    assert s.alert_threshold == 2.5 and loaded.sources["alert_threshold"] == f"file {cfg}"
    assert s.alert_recipients == [] and loaded.sources["alert_recipients"] == "default"
    assert s.ui_token is None and loaded.sources["ui_token"] == "default"
    assert s.data_dir == tmp_path / "xdg-data" / "finsent" and loaded.sources["data_dir"] == "default"


def test_an_empty_unknown_env_variable_still_warns(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("FINSENT_ALERT_RECIPENTS", "")
    monkeypatch.setenv("FINSENT_FEEDS", "")  # a setting, empty: unset, and no warning
    with caplog.at_level("WARNING", logger="pipeline.settings"):
        load_settings()
    warnings = [r.getMessage() for r in caplog.records if r.name == "pipeline.settings"]
    assert len(warnings) == 1 and "FINSENT_ALERT_RECIPENTS is not a FinSent setting" in warnings[0]


@pytest.mark.parametrize(
    "url", ["htp://hooks.example.com/T0/SECRET", "hooks.example.com/SECRET", "https:///SECRET"]
)
def test_a_webhook_url_that_is_no_http_url_is_refused_without_showing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    """Found at load, not when the first alert is given up; the URL holds a token."""
    monkeypatch.setenv("FINSENT_WEBHOOK_URL", url)
    with pytest.raises(ConfigError, match="http\\(s\\) URL with a host") as caught:
        load_settings()
    assert "SECRET" not in str(caught.value) and "\n" not in str(caught.value)
    monkeypatch.setenv("FINSENT_WEBHOOK_URL", "https://hooks.example.com/T0/SECRET")
    assert load_settings().settings.webhook_url is not None
