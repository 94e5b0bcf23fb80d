"""One typed settings class for all of FinSent.

Values come from, highest precedence first: explicit overrides (CLI flags), ``FINSENT_*``
environment variables, an optional TOML config file, then the defaults below. Nothing here
runs at import time: call :func:`load_settings` where the settings are needed and pass the
result down.
"""

from __future__ import annotations

import difflib
import logging
import math
import os
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from pipeline import __version__
from pipeline.errors import ConfigError
from pipeline.masking import mask_url
from pipeline.paths import SHARED_DATA_DIR

log = logging.getLogger(__name__)

ENV_PREFIX = "FINSENT_"


def default_data_dir() -> Path:
    # Per-user, like other XDG-aware tools: survives reinstalls, never inside the clone.
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "finsent"


def _default_config_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "finsent" / "finsent.toml"


def _default_training_data_dir() -> Path:
    return SHARED_DATA_DIR


CommaList = Annotated[list[str], NoDecode]


_EMAIL = re.compile(r"^[^@\s,;:<>\"]+@[^@\s,;:<>\".][^@\s,;:<>\"]*$")
_NAMED = re.compile(r"^(?:\"[^\"]*\"|[^<>\",;]*?)\s*<([^<>]+)>$")


def is_email_address(value: str) -> bool:
    """Whether ``value`` is one address an SMTP server can take: ``local@domain``, or
    ``Name <local@domain>``. Lists (``a@x; b@x``) and anything around the address are
    refused: the mail library would keep the first address and drop the rest unsaid."""
    value = value.strip()
    if _EMAIL.match(value):
        return True
    named = _NAMED.match(value)
    return named is not None and _EMAIL.match(named.group(1).strip()) is not None


UI_TOKEN_MIN_LENGTH = 16
# An HTTP field name (RFC 9110's token): one name, no list, no spaces.
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")


class Settings(BaseSettings):
    """FinSent's effective configuration (see ``finsent config``)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        case_sensitive=False,
        validate_default=True,
        # An empty FINSENT_* variable is unset: docker compose's ${VAR:-} passes every
        # variable .env leaves out as "", which must not hide the config file or default.
        env_ignore_empty=True,
    )

    # --- storage ------------------------------------------------------------------
    database_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL URL (postgresql+psycopg2://user:pass@host/db). "
        "Unset: an embedded PostgreSQL in the data dir.",
    )
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Embedded database, alert outbox, promoted models and caches.",
    )

    # --- sentiment model ----------------------------------------------------------
    model_path: str | None = Field(
        default=None,
        description="Local model folder (download a Hub model first). Unset: the promoted model, "
        "else the released one under models/.",
    )
    training_data_dir: Path = Field(
        default_factory=_default_training_data_dir,
        description="Labelled data (Financial PhraseBank, TFNS) for train/eval.",
    )
    finetune_runs_kept: int = Field(
        default=4,
        ge=0,
        le=1000,
        description="Fine-tune checkpoints (<data_dir>/models/runs) the maintenance DAG keeps, newest "
        "first; the promoted and the pinned model are always kept. 0 keeps all.",
    )
    score_batch_size: int | None = Field(
        default=None,
        ge=1,
        le=4096,
        description="Texts per scoring batch (score, classify). Unset: 64 on a CPU, 512 on a GPU. "
        "A batch of long texts is cut shorter, so memory stays bounded by the batch.",
    )
    cpu_backend: Literal["auto", "torch", "openvino"] = Field(
        default="auto",
        description="What runs the model on a CPU (fp32/bf16). auto: OpenVINO (a dependency), "
        "eager PyTorch where it is missing or cannot convert the model. torch: eager PyTorch. "
        "openvino: OpenVINO or a one-line error.",
    )
    model_precision: Literal["auto", "fp32", "fp16", "bf16", "int8"] = Field(
        default="auto",
        description="Weight precision for scoring. auto: fp16 on a GPU; on the CPU bf16 where "
        "it outruns fp32 (AMX; AVX512-BF16 on AMD), else fp32 (exact). fp16: GPU only. int8: CPU "
        "only, opt-in: eager PyTorch, about OpenVINO fp32's speed, well under bf16's where "
        "the CPU has it; within half a point of fp32, but it changes 1-2% of labels against "
        "fp32 and a text's probabilities move with its batch-mates (BENCHMARKS.md).",
    )

    # --- ingestion ----------------------------------------------------------------
    feeds: CommaList = Field(
        default_factory=list,
        description="Feed URLs or paths added to the feed table on each run (comma-separated).",
    )
    watchlist_path: Path | None = Field(
        default=None,
        description="CSV of ticker,name,aliases for company linking, on top of the universe "
        "(FINSENT_UNIVERSE) and cashtags (the demo uses its bundled watchlist).",
    )
    universe: str = Field(
        default="sp500",
        min_length=1,
        description="Companies articles are linked to: 'sp500' (bundled: the S&P 500 as of August 2026, "
        "public domain, plus large non-US companies), 'watchlist' (the watchlist only), or the path of a "
        "CSV in the watchlist's format. The watchlist extends and overrides it.",
    )
    fetch_concurrency: int = Field(default=16, ge=1, le=512, description="Feeds fetched at once.")
    fetch_timeout_s: float = Field(default=20.0, gt=0, le=600, description="Per-request timeout.")
    fetch_max_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=1024,
        le=1024**3,  # a body is held in memory whole, and parsed
        description="Largest feed body accepted (decompressed).",
    )
    fetch_backoff_base_s: float = Field(
        default=600.0,
        gt=0,
        le=24 * 3600,
        description="Wait after a feed's first failure; doubles with each further one.",
    )
    fetch_backoff_max_s: float = Field(
        default=43200.0,
        gt=0,
        le=7 * 24 * 3600,
        description="Longest backoff wait (a Retry-After may ask for more, up to 24 h).",
    )
    dedup_window_hours: float = Field(
        default=48.0,
        gt=0,
        le=30 * 24,
        description="How far apart copies of one story may be and still be linked.",
    )
    user_agent: str = Field(
        default=f"FinSent/{__version__} (financial news sentiment monitor; +https://github.com/finsent/finsent)",
        description="HTTP User-Agent for feed fetches.",
    )

    fetch_retention_days: int = Field(
        default=30, ge=1, le=3650, description="Days of per-attempt fetch logs kept by maintenance."
    )

    # --- alerting -----------------------------------------------------------------
    alert_window_minutes: int = Field(default=60, ge=5, le=7 * 24 * 60, description="Spike window.")
    alert_baseline_days: int = Field(default=14, ge=1, le=365, description="History for the baseline.")
    alert_threshold: float = Field(default=3.0, gt=0, le=100, description="Robust z-score that fires.")
    alert_min_volume: int = Field(
        default=5, ge=1, le=1_000_000, description="Least novel articles in the window."
    )
    alert_min_negative_share: float = Field(
        default=0.4, ge=0, le=1, description="Least negative share in the window."
    )
    alert_repeat_hours: float = Field(
        default=24.0, gt=0, le=365 * 24, description="Re-notify a firing alert after."
    )
    alert_resolve_ratio: float = Field(
        default=0.5,
        gt=0,
        lt=1,
        description="A firing alert resolves below this fraction of what fires it (hysteresis).",
    )
    alert_prior_negative_share: float = Field(
        default=0.15, ge=0, le=1, description="Negative share assumed for a scope with little history."
    )
    alert_weighting: Literal["count", "confidence"] = Field(
        default="count", description="count: each novel article once; confidence: weight by the model."
    )
    alert_recipients: CommaList = Field(
        default_factory=list, description="Default alert recipients (comma-separated)."
    )
    alert_transport: str = Field(
        default="outbox",
        description=(
            "Comma-separated transports: outbox (.eml files in <data_dir>/outbox), smtp (send), "
            "webhook (HTTP POST); e.g. smtp,webhook."
        ),
    )
    web_url: str | None = Field(
        default=None,
        description=(
            "Address of the web pages as analysts reach them (finsent serve, or Airflow's "
            "/finsent/), e.g. https://finsent.example.com/: alert emails link each headline to "
            "its correction form there. Unset: no links."
        ),
    )

    ui_token: SecretStr | None = Field(
        default=None,
        description=(
            "Token that unlocks the web pages' writes (corrections, silences): analysts log in "
            "with it or send it as 'Authorization: Bearer'. Unset: the pages are read-only."
        ),
    )
    web_trusted_user_header: str | None = Field(
        default=None,
        description=(
            "One HTTP header (e.g. X-Forwarded-Email) that the authenticating reverse proxy in "
            "front of the web pages sets, or overwrites, on every request to the logged-in user: "
            "corrections are then made under that name. Unset: no header is trusted and the "
            "name typed in the form is used, as its writer declares it."
        ),
    )

    # --- email (SMTP) -------------------------------------------------------------
    smtp_host: str | None = Field(default=None, description="SMTP server host.")
    smtp_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="SMTP server port (default: 465 with smtp_security ssl, 587 with starttls, "
        "25 with none).",
    )
    smtp_user: str | None = Field(default=None, description="SMTP login.")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP password.")
    smtp_security: Literal["starttls", "ssl", "none"] = Field(
        default="starttls", description="Transport security."
    )
    smtp_from: str = Field(default="FinSent <finsent@localhost>", description="From: header.")
    smtp_timeout_s: float = Field(default=30.0, gt=0, le=600, description="SMTP timeout.")

    # --- webhook (alert transport) --------------------------------------------------
    webhook_url: SecretStr | None = Field(
        default=None, description="Webhook URL for alerts (Slack/Teams URLs hold a token: kept secret)."
    )
    webhook_format: Literal["generic", "slack", "teams"] = Field(
        default="generic", description="generic: signed FinSent JSON; slack / teams: their webhook formats."
    )
    webhook_secret: SecretStr | None = Field(
        default=None, description="HMAC-SHA256 key for the X-FinSent-Signature header (generic format)."
    )
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=300, description="Webhook HTTP timeout.")

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Logging level."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The config file is merged by load_settings (below env); no .env magic.
        return (init_settings, env_settings)

    @field_validator("feeds", "alert_recipients", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("alert_recipients", mode="after")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        bad = [a for a in value if not is_email_address(a)]
        if bad:
            raise ValueError(f"not an email address: {', '.join(repr(a) for a in bad)} (use name@domain)")
        return value

    @field_validator("webhook_url", mode="after")
    @classmethod
    def _webhook_url(cls, value: SecretStr | None) -> SecretStr | None:
        # Checked here, not first when an alert is sent and given up. The message names only
        # the scheme: the URL itself often holds a token (Slack, Teams).
        if value is not None:
            parts = urlsplit(value.get_secret_value().strip())
            if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
                shown = f"scheme {parts.scheme!r}" if parts.scheme else "no scheme"
                raise ValueError(f"must be an http(s) URL with a host ({shown})")
        return value

    @field_validator("alert_transport", mode="after")
    @classmethod
    def _transports(cls, value: str) -> str:
        # Imported here: the transports import settings' types, not the reverse at import time.
        from pipeline.alerts.transports.registry import transport_classes

        names = [part.strip().lower() for part in value.split(",") if part.strip()]
        known = transport_classes()
        bad = [n for n in names if n not in known]
        if bad or not names:
            raise ValueError(
                f"unknown alert transport {', '.join(map(repr, bad)) or repr(value)}: "
                f"use one or more of {', '.join(sorted(known))}, comma-separated"
            )
        return ",".join(dict.fromkeys(names))

    @field_validator("ui_token", mode="after")
    @classmethod
    def _ui_token(cls, value: SecretStr | None) -> SecretStr | None:
        # Empty means unset (docker compose passes an empty variable through): read-only.
        if value is None or not value.get_secret_value().strip():
            return None
        if len(value.get_secret_value()) < UI_TOKEN_MIN_LENGTH:
            # The token is all that guards the writes: a short one is guessed.
            raise ValueError(
                f"too short: use at least {UI_TOKEN_MIN_LENGTH} characters, e.g. "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return value

    @field_validator("web_trusted_user_header", mode="after")
    @classmethod
    def _header_name(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        name = value.strip()
        if not _HEADER_NAME.match(name):
            raise ValueError(
                f"{name!r} is not one HTTP header name: name exactly the one header the proxy "
                "sets to the user (e.g. X-Forwarded-Email)"
            )
        return name

    @field_validator("web_url", mode="after")
    @classmethod
    def _web_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        url = value.strip()
        parts = urlsplit(url)
        bad = parts.query or parts.fragment or "@" in parts.netloc  # no credentials in emails
        if parts.scheme not in ("http", "https") or not parts.netloc or bad:
            raise ValueError(
                f"{url!r} is not an http(s) address of the web pages (e.g. https://host/finsent/)"
            )
        # Links are joined below it: the base always ends in a slash.
        return url if url.endswith("/") else url + "/"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("model_precision", "cpu_backend", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("data_dir", "training_data_dir", "watchlist_path", mode="before")
    @classmethod
    def _not_blank(cls, value: Any, info: Any) -> Any:
        # An empty path is Path("."): the current folder, where an embedded database would
        # be created in ./pgdata. An empty watchlist path means none; the folders are refused.
        if isinstance(value, str) and not value.strip():
            if info.field_name == "watchlist_path":
                return None
            raise ValueError("is empty: unset it to use the default, or give a folder")
        return value

    @field_validator("data_dir", "training_data_dir", "watchlist_path", mode="after")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    # --- derived paths ------------------------------------------------------------
    @property
    def alert_transports(self) -> tuple[str, ...]:
        """``alert_transport`` as a list of names (it may name several: smtp,webhook)."""
        return tuple(self.alert_transport.split(","))

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def embedded_pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def promoted_model_file(self) -> Path:
        from pipeline.score.registry import PROMOTION_FILE

        return self.data_dir / PROMOTION_FILE


SECRET_FIELDS = frozenset({"database_url", "smtp_password", "webhook_url", "webhook_secret", "ui_token"})


@dataclass(frozen=True)
class LoadedSettings:
    """Settings plus where each value came from (for ``finsent config``)."""

    settings: Settings
    sources: dict[str, str] = field(default_factory=dict)
    config_file: Path | None = None


def _env_name(name: str) -> str:
    return f"{ENV_PREFIX}{name.upper()}"


def env_has(name: str) -> bool:
    """Whether the environment sets the setting ``name``. An empty variable does not: it
    means unset, as for the settings class (``env_ignore_empty``), so the config file, an
    Airflow Variable or the default still apply (docker compose passes unset ones as "")."""
    wanted = _env_name(name)
    return any(k.upper() == wanted and v != "" for k, v in os.environ.items())


# Settings that were renamed: a stale name is an error that says what to use instead.
RENAMED = {"model_quantize": ("model_precision", "auto, fp32, fp16, bf16 or int8; false was fp32")}


def check_renamed_keys(keys: Iterable[str], where: str, fix: str = "") -> None:
    """ConfigError naming the replacement of the first renamed setting among ``keys``."""
    for old in sorted(RENAMED.keys() & set(keys)):
        new, values = RENAMED[old]
        raise ConfigError(f"{where}: setting '{old}' was replaced by '{new}' ({values}){fix}")


#: FINSENT_* variables that are not settings but are read elsewhere (the DAG files, the Airflow
#: glue, docker compose, the test suite): known, so no "unknown variable" warning names them.
OTHER_ENV = frozenset(
    {
        "FINSENT_CONFIG",
        "FINSENT_CONFIG_DIR",
        "FINSENT_AIRFLOW_POSTGRES_CONN_ID",
        "FINSENT_AIRFLOW_SMTP_CONN_ID",
        "FINSENT_INGEST_SCHEDULE",
        "FINSENT_INGEST_SHARDS",
        "FINSENT_MAINTENANCE_SCHEDULE",
        "FINSENT_FINETUNE_SCHEDULE",
        "FINSENT_FINETUNE_RECIPE",
        "FINSENT_SCORE_QUEUE",
        "FINSENT_SCORE_POOL",
        "FINSENT_TRAIN_QUEUE",
        "FINSENT_TRAIN_POOL",
        "FINSENT_TRAINING_DATA",
        "FINSENT_IMAGE",
        "FINSENT_GPU_IMAGE",
        "FINSENT_SKIP_INTEGRATION",
    }
)
_OTHER_ENV_PREFIXES = ("FINSENT_TEST_",)


def unknown_env_warnings(environ: dict[str, str] | None = None) -> list[str]:
    """One warning per ``FINSENT_*`` variable that FinSent does not read (a typo is otherwise
    silently ignored), naming the nearest known one, as config files do for their keys."""
    environ = os.environ if environ is None else environ
    settings = {_env_name(name) for name in Settings.model_fields}
    known = settings | OTHER_ENV | {_env_name(old) for old in RENAMED}
    warnings = []
    for key in sorted(environ):
        upper = key.upper()
        if not upper.startswith(ENV_PREFIX) or upper in known or upper.startswith(_OTHER_ENV_PREFIXES):
            continue
        hint = next(iter(difflib.get_close_matches(upper, sorted(known), n=1)), None)
        extra = f" (did you mean {hint}?)" if hint else ""
        warnings.append(f"environment variable {key} is not a FinSent setting and is ignored{extra}")
    return warnings


def _check_renamed(file_values: dict[str, Any], path: Path | None) -> None:
    for old, (new, values) in RENAMED.items():
        if env_has(old):
            raise ConfigError(f"env {_env_name(old)} was replaced by {_env_name(new)} ({values})")
    check_renamed_keys(file_values, f"config file {path}")


def _read_config_file(path: Path, origin: str = "FINSENT_CONFIG") -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        fix = "unset FINSENT_CONFIG" if origin == "FINSENT_CONFIG" else f"check the path given as {origin}"
        raise ConfigError(f"config file {path} does not exist: create it or {fix}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML ({exc}): fix it") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
            f"{exc.start}): save it as UTF-8"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a folder: give the path of a .toml file") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read ({exc.strerror or exc}): check it") from None
    # Sections are only a way to group keys in the file: [alert] window_minutes = 30.
    flat: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for key, value in raw.items():
        for name, item in value.items() if isinstance(value, dict) else [(None, value)]:
            spelling = key if name is None else f"[{key}] {name}"
            flat_key = key.lower() if name is None else f"{key}_{name}".lower()
            if flat_key in flat:  # one would silently replace the other
                raise ConfigError(
                    f"config file {path}: {spelled[flat_key]!r} and {spelling!r} set the same setting "
                    f"({flat_key}): keep one"
                )
            flat[flat_key], spelled[flat_key] = item, spelling
    known = set(Settings.model_fields)
    for key in flat:
        if key not in known and key not in RENAMED:  # a renamed key gets its own message
            hint = next(iter(difflib.get_close_matches(key, known | set(RENAMED), n=1)), None)
            if hint in RENAMED:  # a typo of an old name points at its replacement
                hint = RENAMED[hint][0]
            extra = f" (did you mean '{hint}'?)" if hint else ""
            raise ConfigError(f"config file {path}: unknown setting '{key}'{extra}")
    return flat


def _declared_bounds(name: str) -> dict[str, Any]:
    """The ge/gt/le/lt bounds declared on a setting's field ({"ge": 1, "le": 4096})."""
    found: dict[str, Any] = {}
    for bound in Settings.model_fields[name].metadata:
        for attr in ("ge", "gt", "le", "lt"):
            value = getattr(bound, attr, None)
            if value is not None:
                found[attr] = value
    return found


def numeric_range(name: str) -> tuple[str, str] | None:
    """The bounds declared on a numeric setting's field, as text (``(">= 1", "<= 4096")``);
    None for a setting that is not a number. The fields are the one place ranges are set."""
    info = Settings.model_fields[name]
    # An optional number (``int | None``: unset means a default chosen elsewhere) is a number.
    kinds = set(get_args(info.annotation)) - {type(None)} or {info.annotation}
    if len(kinds) != 1 or kinds.pop() not in (int, float):
        return None
    low = high = ""
    signs = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
    for attr, value in _declared_bounds(name).items():
        text = f"{signs[attr]} {value:g}" if isinstance(value, float) else f"{signs[attr]} {value}"
        if attr in ("ge", "gt"):
            low = text
        else:
            high = text
    return low, high


def int_bounds(name: str) -> tuple[int | None, int | None]:
    """An integer setting's inclusive bounds as numbers, for a CLI option that overrides it
    (``click.IntRange(*int_bounds("score_batch_size"))``), so the range is declared once."""
    inclusive = {
        "ge": math.ceil,
        "gt": lambda v: math.floor(v) + 1,
        "le": math.floor,
        "lt": lambda v: math.ceil(v) - 1,
    }
    low = high = None
    for attr, value in _declared_bounds(name).items():
        if attr in ("ge", "gt"):
            low = inclusive[attr](value)
        else:
            high = inclusive[attr](value)
    return low, high


_RANGE_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal", "finite_number"}


def _describe_validation_error(exc: ValidationError, sources: dict[str, str]) -> str:
    err = exc.errors()[0]
    name = str(err["loc"][0]) if err.get("loc") else "?"
    where = sources.get(name, "default")
    shown = "***" if name in SECRET_FIELDS else repr(err.get("input"))
    message = str(err["msg"]).removeprefix("Value error, ")  # pydantic's prefix for our own checks
    bounds = numeric_range(name) if name in Settings.model_fields else None
    if bounds and err.get("type") in _RANGE_ERRORS:
        message = f"out of range: must be {bounds[0]} and {bounds[1]}"
    return f"setting '{name}' from {where} is invalid: {message} (got {shown}); fix it"


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> LoadedSettings:
    """Build the effective settings. Raises :class:`ConfigError` with a one-line message.

    ``config_file`` defaults to ``$FINSENT_CONFIG``, else ``~/.config/finsent/finsent.toml``
    when it exists. ``overrides`` (from CLI flags) win over everything; ``None`` values are
    ignored so callers can pass optional flags straight through.
    """
    overrides = {k: v for k, v in overrides.items() if v is not None}
    explicit = config_file or os.environ.get("FINSENT_CONFIG")
    path: Path | None = Path(explicit).expanduser() if explicit else None
    if path is None and _default_config_file().is_file():
        path = _default_config_file()
    origin = "--config" if config_file else "FINSENT_CONFIG"
    file_values = _read_config_file(path, origin) if path else {}
    _check_renamed(file_values, path)
    for warning in unknown_env_warnings():
        log.warning("%s", warning)

    sources: dict[str, str] = {}
    init: dict[str, Any] = {}
    for name in Settings.model_fields:
        if name in overrides:
            sources[name] = "command line"
            init[name] = overrides[name]
        elif env_has(name):
            sources[name] = f"env {_env_name(name)}"
        elif name in file_values:
            sources[name] = f"file {path}"
            init[name] = file_values[name]
        else:
            sources[name] = "default"
    try:
        settings = Settings(**init)
    except ValidationError as exc:
        raise ConfigError(_describe_validation_error(exc, sources)) from None
    return LoadedSettings(settings=settings, sources=sources, config_file=path)


def json_value(name: str, value: Any) -> Any:
    """How ``finsent config --json`` gives a value: JSON's own types (null, numbers, booleans,
    arrays), secrets masked as in :func:`display_value`, anything else as its string."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, list):
        return [json_value(name, v) for v in value]
    if isinstance(value, SecretStr):
        return display_value(name, value)
    return str(value)


def display_value(name: str, value: Any) -> str:
    """How ``finsent config`` shows a value: secrets masked, lists joined."""
    if value is None:
        return "(unset)"
    if isinstance(value, SecretStr):
        return mask_url(value.get_secret_value()) if name == "database_url" else "***"
    if isinstance(value, list):
        return ", ".join(map(str, value)) if value else "(none)"
    return str(value)
