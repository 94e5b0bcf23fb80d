"""The PostgreSQL schema as SQLAlchemy 2 typed models.

Alembic migrations in ``pipeline/db/migrations`` are the source of truth for the live
schema; these models mirror them (a test checks that autogenerate finds no difference).
See docs/database.md ("Schema design for tens of millions of scores") for the why.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    REAL,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Deterministic constraint names so migrations can drop what they created.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

TZ = DateTime(timezone=True)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Feed(Base):
    __tablename__ = "feeds"

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    url: Mapped[str] = mapped_column(Text, unique=True, comment="http(s) URL, file:// URL or local path")
    name: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'::text[]"))
    moved_from: Mapped[list[str]] = mapped_column(
        ARRAY(Text),
        server_default=text("'{}'::text[]"),
        comment="URLs the feed had before permanent redirects moved it (registration finds it there)",
    )
    language: Mapped[str | None] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    consecutive_failures: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text)
    last_fetched_at: Mapped[datetime | None] = mapped_column(TZ)
    last_success_at: Mapped[datetime | None] = mapped_column(TZ)
    next_fetch_at: Mapped[datetime | None] = mapped_column(TZ, comment="NULL = due now")
    body_hash: Mapped[str | None] = mapped_column(
        String(64), comment="sha256 of the last body stored: an unchanged body is not parsed again"
    )
    poll_interval_s: Mapped[int | None] = mapped_column(
        Integer,
        comment="seconds between polls the feed asks for (<ttl>, sy:updatePeriod); NULL = no hint",
    )
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())


class Fetch(Base):
    """One row per fetch attempt, successful or not (retention trims old rows)."""

    __tablename__ = "fetches"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"))
    started_at: Mapped[datetime] = mapped_column(TZ)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(
        String(32), comment="ok | not_modified | http_error | timeout | too_large | parse_error | ..."
    )
    http_status: Mapped[int | None] = mapped_column(SmallInteger)
    bytes: Mapped[int | None] = mapped_column(Integer)
    entries: Mapped[int | None] = mapped_column(Integer)
    new_articles: Mapped[int | None] = mapped_column(Integer)
    updated_articles: Mapped[int | None] = mapped_column(Integer)
    duplicate_articles: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    warning: Mapped[str | None] = mapped_column(Text, comment="e.g. feedparser bozo exception")

    __table_args__ = (
        Index("ix_fetches_feed_started", "feed_id", "started_at"),
        Index("brin_fetches_started_at", "started_at", postgresql_using="brin"),
    )


class Article(Base):
    __tablename__ = "articles"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"))
    item_key: Mapped[str] = mapped_column(
        Text, comment="guid, else canonical URL, else content hash: identity within a feed"
    )
    guid: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text, comment="canonical URL (tracking parameters dropped)")
    title: Mapped[str] = mapped_column(Text)
    summary: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(16))
    published_at: Mapped[datetime] = mapped_column(TZ)
    first_seen_at: Mapped[datetime] = mapped_column(TZ)
    updated_at: Mapped[datetime | None] = mapped_column(TZ)
    date_flag: Mapped[str | None] = mapped_column(
        String(16), comment="NULL | missing (first_seen used) | future (clamped)"
    )
    content_hash: Mapped[str] = mapped_column(String(64), comment="sha256 of normalised title+summary")
    title_key: Mapped[str | None] = mapped_column(
        String(64), comment="hash of the normalised title, for cross-feed syndication"
    )
    cluster_id: Mapped[int | None] = mapped_column(
        BigInteger, comment="id of the first copy of a syndicated story (self for the first)"
    )
    is_novel: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))

    __table_args__ = (
        UniqueConstraint("feed_id", "item_key", name="uq_articles_feed_item"),
        Index("brin_articles_published_at", "published_at", postgresql_using="brin"),
        Index("ix_articles_first_seen_at", "first_seen_at"),
        Index("ix_articles_title_key", "title_key", "published_at"),
        Index("ix_articles_cluster_id", "cluster_id"),
    )


class ArticleEntity(Base):
    """A ticker / company mentioned by an article (one row per article and ticker)."""

    __tablename__ = "article_entities"

    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True)
    ticker: Mapped[str] = mapped_column(String(32), primary_key=True)
    company: Mapped[str | None] = mapped_column(Text)
    matched_by: Mapped[str] = mapped_column(
        String(16), comment="exchange | ric | cashtag | name | alias | ticker"
    )
    # How much the article is about this company, 0-100 (pipeline/companies/relevance.py);
    # NULL for links made before relevance existed, until `finsent feeds relink`.
    relevance: Mapped[int | None] = mapped_column(SmallInteger, comment="0-100, see docs/companies.md")
    # The first mention as written ("Ford", "BofA", "NASDAQ:VLTA"): what the company-level
    # scorer marks in the text. NULL for links made before 0012, until a relink.
    mention: Mapped[str | None] = mapped_column(
        Text, comment="first mention as written; NULL: linked before 0012"
    )
    # Denormalised from articles so "ticker over time" is one index range scan.
    published_at: Mapped[datetime] = mapped_column(TZ)

    __table_args__ = (Index("ix_article_entities_ticker_published", "ticker", "published_at"),)


class SentimentScore(Base):
    """A model's verdict on an article. Unique per (article, model version): scoring with
    a new model adds rows and keeps the old ones (point-in-time history)."""

    __tablename__ = "sentiment_scores"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"))
    model_version: Mapped[str] = mapped_column(String(128))
    label: Mapped[str] = mapped_column(String(16))
    p_negative: Mapped[float] = mapped_column(REAL)
    p_neutral: Mapped[float] = mapped_column(REAL)
    p_positive: Mapped[float] = mapped_column(REAL)
    score: Mapped[float] = mapped_column(REAL, comment="p_positive - p_negative")
    scored_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    content_hash: Mapped[str | None] = mapped_column(
        String(64), comment="articles.content_hash of the text scored; NULL: scored before 0007"
    )

    __table_args__ = (
        UniqueConstraint("article_id", "model_version", name="uq_sentiment_scores_article_model"),
        Index("brin_sentiment_scores_scored_at", "scored_at", postgresql_using="brin"),
    )


class EntityScore(Base):
    """A model's verdict on an article *for one company* (pipeline/score/target.py marks the
    mention). Unique per (article, ticker, model version), point in time like SentimentScore;
    company trends and alerts read it, source and market scopes read the article's score."""

    __tablename__ = "entity_scores"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"))
    ticker: Mapped[str] = mapped_column(String(32))
    model_version: Mapped[str] = mapped_column(String(128))
    mention: Mapped[str | None] = mapped_column(Text, comment="the mention the model read; NULL: none found")
    label: Mapped[str] = mapped_column(String(16))
    p_negative: Mapped[float] = mapped_column(REAL)
    p_neutral: Mapped[float] = mapped_column(REAL)
    p_positive: Mapped[float] = mapped_column(REAL)
    score: Mapped[float] = mapped_column(REAL, comment="p_positive - p_negative")
    scored_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    content_hash: Mapped[str | None] = mapped_column(
        String(64), comment="articles.content_hash of the text scored"
    )

    __table_args__ = (
        UniqueConstraint(
            "article_id", "ticker", "model_version", name="uq_entity_scores_article_ticker_model"
        ),
        CheckConstraint("label IN ('negative', 'neutral', 'positive')", name="label"),
        Index("brin_entity_scores_scored_at", "scored_at", postgresql_using="brin"),
        {"comment": "sentiment of an article for one company (docs/companies.md); point in time per model"},
    )


class Alert(Base):
    """One alert per scope episode: firing, then resolved."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    scope_type: Mapped[str] = mapped_column(String(16), comment="ticker | source | market")
    scope_key: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), comment="firing | resolved")
    started_at: Mapped[datetime] = mapped_column(TZ, comment="evaluation time that fired it")
    resolved_at: Mapped[datetime | None] = mapped_column(TZ)
    last_evaluated_at: Mapped[datetime] = mapped_column(TZ)
    last_notified_at: Mapped[datetime | None] = mapped_column(TZ)
    window_start: Mapped[datetime] = mapped_column(TZ)
    window_end: Mapped[datetime] = mapped_column(TZ)
    volume: Mapped[int] = mapped_column(Integer)
    negative_share: Mapped[float] = mapped_column(Float)
    baseline_share: Mapped[float] = mapped_column(Float)
    deviation: Mapped[float] = mapped_column(Float, comment="robust z of the negative share")
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))

    __table_args__ = (
        # At most one open episode per scope: a re-run cannot open a second one.
        Index(
            "uq_alerts_open_scope",
            "scope_type",
            "scope_key",
            unique=True,
            postgresql_where=text("state = 'firing'"),
        ),
        Index("ix_alerts_started_at", "started_at"),
    )


class AlertEvaluation(Base):
    """One row per evaluation time: an evaluation earlier than the latest is a backfill."""

    __tablename__ = "alert_evaluations"

    evaluated_at: Mapped[datetime] = mapped_column(TZ, primary_key=True)
    ran_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now(), comment="wall clock")


class UiSession(Base):
    """A login to the web pages (docs/web.md): the server's record of a session cookie, so
    that logging out ends it for every worker of the app and the server decides its expiry."""

    __tablename__ = "ui_sessions"

    nonce_hash: Mapped[str] = mapped_column(
        String(64), primary_key=True, comment="sha256 of the cookie's nonce; the cookie is never stored"
    )
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(TZ)
    ended_at: Mapped[datetime | None] = mapped_column(TZ, comment="logged out")

    __table_args__ = (Index("ix_ui_sessions_expires_at", "expires_at"),)


class AlertSilence(Base):
    """A scope muted until a time (Alertmanager-style silence)."""

    __tablename__ = "alert_silences"

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    scope_type: Mapped[str] = mapped_column(String(16))
    scope_key: Mapped[str] = mapped_column(Text)
    starts_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    ends_at: Mapped[datetime] = mapped_column(TZ)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())

    __table_args__ = (Index("ix_alert_silences_scope", "scope_type", "scope_key", "ends_at"),)


class AlertDelivery(Base):
    """The outbox: one row per notification to send. Idempotent by ``dedup_key``."""

    __tablename__ = "alert_deliveries"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16), comment="firing | repeat | resolved")
    dedup_key: Mapped[str] = mapped_column(Text, unique=True)
    recipients: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'::text[]"))
    transport: Mapped[str] = mapped_column(String(16), comment="outbox | smtp")
    status: Mapped[str] = mapped_column(String(16), server_default=text("'pending'"))
    message_id: Mapped[str | None] = mapped_column(Text, unique=True)
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_attempt_at: Mapped[datetime | None] = mapped_column(TZ)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(TZ)
    evaluated_at: Mapped[datetime | None] = mapped_column(
        TZ, comment="evaluation time that queued it (part of the dedup key)"
    )
    payload: Mapped[dict[str, Any]] = mapped_column(
        JSONB,
        server_default=text("'{}'::jsonb"),
        comment="what the email shows, frozen when queued so a retry sends the same message",
    )

    __table_args__ = (Index("ix_alert_deliveries_pending", "status", "next_attempt_at"),)


class AlertDeliveryItem(Base):
    """Which alerts one delivery (one email) carries: grouping puts several in one email."""

    __tablename__ = "alert_delivery_items"

    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("alert_deliveries.id", ondelete="CASCADE"), primary_key=True
    )
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), comment="firing | repeat | resolved")

    __table_args__ = (Index("ix_alert_delivery_items_alert_id", "alert_id"),)


class Correction(Base):
    """An analyst's label for an article (or its mention of one company), against a model's.

    Kept apart from the scores: re-scoring and relinking never touch it. One row per
    (article, company or none, person); a newer correction by the same person replaces
    theirs (``pipeline.feedback.record``)."""

    __tablename__ = "corrections"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"))
    ticker: Mapped[str | None] = mapped_column(String(32), comment="NULL: the whole article")
    model_version: Mapped[str | None] = mapped_column(
        String(128), comment="the score corrected; NULL: unscored"
    )
    model_label: Mapped[str | None] = mapped_column(String(16), comment="the label that score gave")
    label: Mapped[str] = mapped_column(String(16), comment="negative | neutral | positive")
    corrected_by: Mapped[str] = mapped_column(Text, comment="free text: an email or a name")
    corrected_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())

    __table_args__ = (
        CheckConstraint("label IN ('negative', 'neutral', 'positive')", name="label"),
        # NULL tickers are distinct in a unique index: one index per kind of row. A person
        # in any case is one person ("Ann", "ann"): migration 0017.
        Index(
            "uq_corrections_company",
            "article_id",
            "ticker",
            text("lower(corrected_by)"),
            unique=True,
            postgresql_where=text("ticker IS NOT NULL"),
        ),
        Index(
            "uq_corrections_article",
            "article_id",
            text("lower(corrected_by)"),
            unique=True,
            postgresql_where=text("ticker IS NULL"),
        ),
        Index("ix_corrections_corrected_at", "corrected_at"),
        {"comment": "analysts' corrections; the feedback training source (docs/feedback.md)"},
    )


# --- trends rollups (migration 0003; the SQL, triggers and views are in sql/) ------------------


class _SentimentRollup:
    """Additive per-scope counts and sums for one bucket; shares are derived in the views."""

    scope_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    scope_key: Mapped[str] = mapped_column(Text, primary_key=True)
    bucket: Mapped[datetime] = mapped_column(TZ, primary_key=True)
    n_articles: Mapped[int] = mapped_column(Integer)
    n_novel: Mapped[int] = mapped_column(Integer)
    n_negative: Mapped[int] = mapped_column(Integer)
    n_neutral: Mapped[int] = mapped_column(Integer)
    n_positive: Mapped[int] = mapped_column(Integer)
    n_novel_negative: Mapped[int] = mapped_column(Integer)
    sum_score: Mapped[float] = mapped_column(Float)
    sum_confidence: Mapped[float] = mapped_column(Float)
    sum_weighted_score: Mapped[float] = mapped_column(Float)
    refreshed_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())


class SentimentHourly(_SentimentRollup, Base):
    __tablename__ = "sentiment_hourly"
    __table_args__ = (Index("ix_sentiment_hourly_bucket", "scope_type", "bucket"),)


class SentimentDaily(_SentimentRollup, Base):
    __tablename__ = "sentiment_daily"
    __table_args__ = (Index("ix_sentiment_daily_bucket", "scope_type", "bucket"),)


class TrendsDirtyHour(Base):
    """An hour whose rollups are stale (queued by triggers, consumed by refresh_rollups)."""

    __tablename__ = "trends_dirty_hours"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    bucket: Mapped[datetime] = mapped_column(TZ)
    queued_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
