"""Initial schema: feeds, fetches, articles, entities, scores, alerts, deliveries, silences.

Revision ID: 0001
Revises:
Create Date: 2026-11-29 03:54:28.166742
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_silences",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("scope_type", sa.String(length=16), nullable=False),
        sa.Column("scope_key", sa.Text(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_silences")),
    )
    op.create_index(
        "ix_alert_silences_scope", "alert_silences", ["scope_type", "scope_key", "ends_at"], unique=False
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("scope_type", sa.String(length=16), nullable=False, comment="ticker | source | market"),
        sa.Column("scope_key", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False, comment="firing | resolved"),
        sa.Column(
            "started_at", sa.DateTime(timezone=True), nullable=False, comment="evaluation time that fired it"
        ),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_evaluated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("volume", sa.Integer(), nullable=False),
        sa.Column("negative_share", sa.Float(), nullable=False),
        sa.Column("baseline_share", sa.Float(), nullable=False),
        sa.Column("deviation", sa.Float(), nullable=False, comment="robust z of the negative share"),
        sa.Column(
            "details",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    op.create_index("ix_alerts_started_at", "alerts", ["started_at"], unique=False)
    op.create_index(
        "uq_alerts_open_scope",
        "alerts",
        ["scope_type", "scope_key"],
        unique=True,
        postgresql_where=sa.text("state = 'firing'"),
    )
    op.create_table(
        "feeds",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("url", sa.Text(), nullable=False, comment="http(s) URL, file:// URL or local path"),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column(
            "tags", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'::text[]"), nullable=False
        ),
        sa.Column("language", sa.String(length=16), nullable=True),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("etag", sa.Text(), nullable=True),
        sa.Column("last_modified", sa.Text(), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_fetched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_fetch_at", sa.DateTime(timezone=True), nullable=True, comment="NULL = due now"),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feeds")),
        sa.UniqueConstraint("url", name=op.f("uq_feeds_url")),
    )
    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("alert_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False, comment="firing | repeat | resolved"),
        sa.Column("dedup_key", sa.Text(), nullable=False),
        sa.Column(
            "recipients", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'::text[]"), nullable=False
        ),
        sa.Column("transport", sa.String(length=16), nullable=False, comment="outbox | smtp"),
        sa.Column("status", sa.String(length=16), server_default=sa.text("'pending'"), nullable=False),
        sa.Column("message_id", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_alert_deliveries_alert_id_alerts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_deliveries")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_alert_deliveries_dedup_key")),
        sa.UniqueConstraint("message_id", name=op.f("uq_alert_deliveries_message_id")),
    )
    op.create_index(
        "ix_alert_deliveries_pending", "alert_deliveries", ["status", "next_attempt_at"], unique=False
    )
    op.create_table(
        "articles",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("feed_id", sa.Integer(), nullable=False),
        sa.Column(
            "item_key",
            sa.Text(),
            nullable=False,
            comment="guid, else canonical URL, else content hash: identity within a feed",
        ),
        sa.Column("guid", sa.Text(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True, comment="canonical URL (tracking parameters dropped)"),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("language", sa.String(length=16), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "date_flag",
            sa.String(length=16),
            nullable=True,
            comment="NULL | missing (first_seen used) | future (clamped)",
        ),
        sa.Column(
            "content_hash", sa.String(length=64), nullable=False, comment="sha256 of normalised title+summary"
        ),
        sa.Column(
            "title_key",
            sa.String(length=64),
            nullable=True,
            comment="hash of the normalised title, for cross-feed syndication",
        ),
        sa.Column(
            "cluster_id",
            sa.BigInteger(),
            nullable=True,
            comment="id of the first copy of a syndicated story (self for the first)",
        ),
        sa.Column("is_novel", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.ForeignKeyConstraint(
            ["feed_id"], ["feeds.id"], name=op.f("fk_articles_feed_id_feeds"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_articles")),
        sa.UniqueConstraint("feed_id", "item_key", name="uq_articles_feed_item"),
    )
    op.create_index(
        "brin_articles_published_at", "articles", ["published_at"], unique=False, postgresql_using="brin"
    )
    op.create_index("ix_articles_cluster_id", "articles", ["cluster_id"], unique=False)
    op.create_index("ix_articles_first_seen_at", "articles", ["first_seen_at"], unique=False)
    op.create_index("ix_articles_title_key", "articles", ["title_key", "published_at"], unique=False)
    op.create_table(
        "fetches",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("feed_id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column(
            "outcome",
            sa.String(length=32),
            nullable=False,
            comment="ok | not_modified | http_error | timeout | too_large | parse_error | ...",
        ),
        sa.Column("http_status", sa.SmallInteger(), nullable=True),
        sa.Column("bytes", sa.Integer(), nullable=True),
        sa.Column("entries", sa.Integer(), nullable=True),
        sa.Column("new_articles", sa.Integer(), nullable=True),
        sa.Column("updated_articles", sa.Integer(), nullable=True),
        sa.Column("duplicate_articles", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("warning", sa.Text(), nullable=True, comment="e.g. feedparser bozo exception"),
        sa.ForeignKeyConstraint(
            ["feed_id"], ["feeds.id"], name=op.f("fk_fetches_feed_id_feeds"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fetches")),
    )
    op.create_index(
        "brin_fetches_started_at", "fetches", ["started_at"], unique=False, postgresql_using="brin"
    )
    op.create_index("ix_fetches_feed_started", "fetches", ["feed_id", "started_at"], unique=False)
    op.create_table(
        "article_entities",
        sa.Column("article_id", sa.BigInteger(), nullable=False),
        sa.Column("ticker", sa.String(length=32), nullable=False),
        sa.Column("company", sa.Text(), nullable=True),
        sa.Column(
            "matched_by", sa.String(length=16), nullable=False, comment="cashtag | exchange | name | alias"
        ),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["articles.id"],
            name=op.f("fk_article_entities_article_id_articles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("article_id", "ticker", name=op.f("pk_article_entities")),
    )
    op.create_index(
        "ix_article_entities_ticker_published", "article_entities", ["ticker", "published_at"], unique=False
    )
    op.create_table(
        "sentiment_scores",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("article_id", sa.BigInteger(), nullable=False),
        sa.Column("model_version", sa.String(length=128), nullable=False),
        sa.Column("label", sa.String(length=16), nullable=False),
        sa.Column("p_negative", sa.REAL(), nullable=False),
        sa.Column("p_neutral", sa.REAL(), nullable=False),
        sa.Column("p_positive", sa.REAL(), nullable=False),
        sa.Column("score", sa.REAL(), nullable=False, comment="p_positive - p_negative"),
        sa.Column("scored_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["articles.id"],
            name=op.f("fk_sentiment_scores_article_id_articles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sentiment_scores")),
        sa.UniqueConstraint("article_id", "model_version", name="uq_sentiment_scores_article_model"),
    )
    op.create_index(
        "brin_sentiment_scores_scored_at",
        "sentiment_scores",
        ["scored_at"],
        unique=False,
        postgresql_using="brin",
    )


def downgrade() -> None:
    op.drop_index("brin_sentiment_scores_scored_at", table_name="sentiment_scores", postgresql_using="brin")
    op.drop_table("sentiment_scores")
    op.drop_index("ix_article_entities_ticker_published", table_name="article_entities")
    op.drop_table("article_entities")
    op.drop_index("ix_fetches_feed_started", table_name="fetches")
    op.drop_index("brin_fetches_started_at", table_name="fetches", postgresql_using="brin")
    op.drop_table("fetches")
    op.drop_index("ix_articles_title_key", table_name="articles")
    op.drop_index("ix_articles_first_seen_at", table_name="articles")
    op.drop_index("ix_articles_cluster_id", table_name="articles")
    op.drop_index("brin_articles_published_at", table_name="articles", postgresql_using="brin")
    op.drop_table("articles")
    op.drop_index("ix_alert_deliveries_pending", table_name="alert_deliveries")
    op.drop_table("alert_deliveries")
    op.drop_table("feeds")
    op.drop_index("uq_alerts_open_scope", table_name="alerts", postgresql_where=sa.text("state = 'firing'"))
    op.drop_index("ix_alerts_started_at", table_name="alerts")
    op.drop_table("alerts")
    op.drop_index("ix_alert_silences_scope", table_name="alert_silences")
    op.drop_table("alert_silences")
