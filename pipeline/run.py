"""One pass of the whole pipeline: ingest -> score -> roll up -> alerts.

This is what ``finsent run`` does, and what the Airflow DAGs do in separate tasks. Each
stage is idempotent for the same ``now``, so a re-run changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipeline.db.engine import Database
from pipeline.settings import Settings

log = logging.getLogger(__name__)

STAGES = ("ingest", "score", "rollups", "alerts")


@dataclass
class RunReport:
    now: datetime
    sections: list[str] = field(default_factory=list)
    ingest: Any = None
    scoring: Any = None
    rollups: int | None = None
    evaluation: Any = None
    delivery: Any = None

    def render(self) -> str:
        return "\n".join(self.sections)


#: What a demo run says it leaves aside, when the user's configuration set any of it.
DEMO_ISOLATION = (
    "demo: the bundled feeds, the demo watchlist and the outbox ({data_dir}/outbox) are used; "
    "your configured {what} are not (run without --demo for them)"
)


def register_demo(db: Database, settings: Settings, now: datetime) -> Settings:
    """Render the bundled demo feeds into the data dir (once), register them, and return the
    settings of a demo run: the demo watchlist, no configured feeds, alerts written to the
    outbox for the demo watchlist's fictional subscribers only. A demo run in a data dir of
    its own, as the docs suggest, still reads the user's config file and FINSENT_* variables:
    with them it would link the user's companies instead of the demo's (the promised alert
    would not fire) and email alerts about fictional news to a real risk desk.

    Refused (ConfigError) when the database holds feeds other than the demo's: fictional news
    would enter their trends and baselines, and the run would evaluate their alerts and
    deliver their pending emails to the demo's outbox instead of their recipients."""
    from sqlalchemy import select

    from pipeline.db.models import Feed
    from pipeline.errors import ConfigError
    from pipeline.ingest.demo import prepare_demo
    from pipeline.ingest.registry import add_feeds, is_demo_feed
    from pipeline.masking import mask_secrets

    with db.session() as session:
        urls = session.scalars(select(Feed.url).order_by(Feed.id))
        own = [url for url in urls if not is_demo_feed(url)]
    if own:
        raise ConfigError(
            f"--demo: this database ({db.display_url}) holds {len(own)} feed(s) of your own "
            f"({mask_secrets(own[0])}{', ...' if len(own) > 1 else ''}): the demo would mix fictional "
            "news into their trends and alerts. Run it in a data dir of its own with no database "
            "configured: `finsent --data-dir /tmp/finsent-demo run --demo` with FINSENT_DATABASE_URL "
            "unset, and `--config` naming an empty file if yours sets database_url (`finsent config` "
            "shows where it comes from)"
        )
    bundle = prepare_demo(settings.data_dir, now)
    with db.transaction() as session:
        add_feeds(session, [str(p) for p in bundle.feed_paths])
    # The detector's settings as shipped: the demo's story is written for them (a 30-minute
    # window of your config would judge VLTA's hour on half of it).
    detector = {
        name: field.get_default(call_default_factory=True)
        for name, field in Settings.model_fields.items()
        if name.startswith("alert_") and name not in ("alert_transport", "alert_recipients")
    }
    overridden = [
        what
        for what, configured in (
            ("feeds", bool(settings.feeds)),
            ("watchlist", settings.watchlist_path is not None),
            ("alert transport", settings.alert_transports != ("outbox",)),
            ("alert recipients", bool(settings.alert_recipients)),
            ("alert settings", any(getattr(settings, k) != v for k, v in detector.items())),
        )
        if configured
    ]
    if overridden:
        log.warning(DEMO_ISOLATION.format(data_dir=settings.data_dir, what=", ".join(overridden)))
    return settings.model_copy(
        update={
            **detector,
            "watchlist_path": bundle.watchlist,
            "feeds": [],
            "alert_transport": "outbox",
            "alert_recipients": [],
            # Unused by the outbox: cleared, so nothing warns that they go unused.
            "smtp_host": None,
            "webhook_url": None,
        }
    )


def register_configured_feeds(db: Database, settings: Settings) -> None:
    """Add the configured feeds (FINSENT_FEEDS, ``feeds`` in the config file) to the feed
    table; a run, ``finsent ingest`` and the Airflow plan all start so."""
    if not settings.feeds:
        return
    from pipeline.errors import ConfigError
    from pipeline.ingest.registry import add_feeds

    try:
        with db.transaction() as session:
            add_feeds(session, list(settings.feeds))
    except ConfigError as exc:
        # The user did not type `feeds add` here: say where the entry comes from.
        raise ConfigError(
            f"{str(exc).removeprefix('config: ')}: it is listed in FINSENT_FEEDS or `feeds` in the "
            "config file (`finsent config` shows which); fix or remove it there"
        ) from None


def run_once(
    db: Database,
    settings: Settings,
    *,
    now: datetime | None = None,
    demo: bool = False,
    stages: tuple[str, ...] = STAGES,
    progress: bool = False,
    classifier: Any = None,
) -> RunReport:
    now = now or datetime.now(UTC)
    report = RunReport(now=now)
    model = None
    if "score" in stages and classifier is None:
        from pipeline.score.registry import serving_model

        # Before ingest, and once per run: a wrong model path must stop the run before it
        # stores articles that this run then leaves unscored (and out of this run's alerts).
        model = serving_model(settings)

    if demo:
        settings = register_demo(db, settings, now)
    register_configured_feeds(db, settings)
    if "ingest" in stages:
        from pipeline.ingest.service import ingest

        report.ingest = ingest(db, settings, now=now, progress=progress)
        report.sections.append(report.ingest.render())

    if "score" in stages:
        from pipeline.score.service import score_pending

        report.scoring = score_pending(db, settings, classifier=classifier, progress=progress, model=model)
        report.sections.append(report.scoring.render())

    if "rollups" in stages:
        from pipeline.trends.rollups import refresh_rollups

        report.rollups = refresh_rollups(db)
        report.sections.append(f"rollups: {report.rollups} buckets refreshed")

    if "alerts" in stages:
        from pipeline.alerts.service import run_alerts

        # The model this run served, whose scores the alerts count (a `finsent score --model M`
        # experiment stored since must not switch them to M).
        if model is not None:
            version = model.version
        else:
            version = report.scoring.model_version if report.scoring is not None else None
        report.evaluation, report.delivery = run_alerts(db, settings, now=now, model_version=version)
        report.sections.append(report.evaluation.render())
        report.sections.append(report.delivery.render())
    return report
