"""Daily housekeeping: trim the raw fetch log, delete old fine-tune checkpoints and report
feed health."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select

from pipeline.db.engine import Database
from pipeline.db.models import Feed, Fetch

log = logging.getLogger(__name__)

#: Rows deleted per statement: short transactions, so ingest runs are never blocked for long.
PRUNE_BATCH = 10_000
#: A feed with no successful fetch for this long is reported as stale.
STALE_AFTER = timedelta(days=1)
#: A checkpoint folder changed more recently than this may belong to a run still training.
CHECKPOINT_QUIET = timedelta(days=1)


def checkpoint_complete(folder: Path) -> bool:
    """Whether a fine-tune run finished writing ``folder``: training writes metrics.json after
    the model (config.json) is saved."""
    return (folder / "config.json").is_file() and (folder / "metrics.json").is_file()


def prune_checkpoints(runs_dir: Path, *, keep: int, protected: Iterable[Path], now: datetime) -> list[Path]:
    """Delete the fine-tune checkpoints under ``runs_dir`` (one folder per run) but the
    ``keep`` newest complete ones (``config.json`` and ``metrics.json`` written), by when each
    folder last changed, and the folders of runs that failed before completing; returns the
    deleted folders.

    Never deleted: a folder in ``protected`` or holding one (the promoted model, a pinned
    ``model_path``: the model that serves), and a folder changed within CHECKPOINT_QUIET of
    ``now`` (a run may still be writing it). ``keep`` 0 keeps all. Each weekly run adds a
    whole model, so without this the data dir grows by about 2 GB a year."""
    if keep <= 0 or not runs_dir.is_dir():
        return []
    guarded = [p.resolve() for p in protected]
    changed = {
        p: datetime.fromtimestamp(p.stat().st_mtime, tz=now.tzinfo)
        for p in runs_dir.iterdir()
        if p.is_dir() and not p.is_symlink()
    }
    folders = sorted(changed, key=changed.__getitem__, reverse=True)
    kept = set([p for p in folders if checkpoint_complete(p)][:keep])
    deleted: list[Path] = []
    for folder in (p for p in folders if p not in kept):
        real = folder.resolve()
        if any(real == g or real in g.parents for g in guarded):
            continue
        if now - changed[folder] < CHECKPOINT_QUIET:
            continue
        shutil.rmtree(folder)
        log.info(
            "deleted fine-tune checkpoint %s (last changed %s)",
            folder,
            changed[folder].isoformat(timespec="seconds"),
        )
        deleted.append(folder)
    return deleted


def prune_fetches(db: Database, *, before: datetime, batch: int = PRUNE_BATCH) -> int:
    """Delete fetch-log rows that started before ``before``; returns how many went.

    Only the log goes: feeds keep their last error and success time, and articles keep
    their feed, so nothing a trend or an alert reads is lost.
    """
    if before.tzinfo is None:
        raise ValueError("prune_fetches needs a timezone-aware cutoff")
    total = 0
    while True:
        doomed = select(Fetch.id).where(Fetch.started_at < before).limit(batch).scalar_subquery()
        with db.transaction() as session:
            deleted = session.execute(delete(Fetch).where(Fetch.id.in_(doomed))).rowcount
        total += deleted
        if deleted < batch:
            break
    log.info("pruned %d fetch-log rows older than %s", total, before.isoformat())
    return total


@dataclass
class FeedHealth:
    """Feed health at one instant."""

    as_of: datetime
    enabled: int = 0
    disabled: int = 0
    failing: list[dict[str, Any]] = field(default_factory=list)
    stale: list[dict[str, Any]] = field(default_factory=list)
    outcomes_last_day: dict[str, int] = field(default_factory=dict)

    def render(self) -> str:
        lines = [
            f"feed health at {self.as_of.isoformat()}: {self.enabled} enabled, {self.disabled} disabled, "
            f"{len(self.failing)} failing, {len(self.stale)} stale",
        ]
        if self.outcomes_last_day:
            shown = ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes_last_day.items()))
            lines.append(f"  fetches in the last day: {shown}")
        for feed in self.failing:
            lines.append(
                f"  failing: #{feed['id']} {feed['url']} ({feed['consecutive_failures']} in a row: "
                f"{feed['last_error']})"
            )
        for feed in self.stale:
            lines.append(f"  stale: #{feed['id']} {feed['url']} (last success {feed['last_success_at']})")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["as_of"] = self.as_of.isoformat()
        return data


def feed_health_report(db: Database, *, now: datetime) -> FeedHealth:
    """Failing and stale enabled feeds, and fetch outcomes in the day before ``now``."""
    report = FeedHealth(as_of=now)
    stale_before = now - STALE_AFTER
    with db.session() as session:
        counts = dict(session.execute(select(Feed.enabled, func.count()).group_by(Feed.enabled)).all())
        report.enabled = int(counts.get(True, 0))
        report.disabled = int(counts.get(False, 0))
        for feed in session.scalars(
            select(Feed).where(Feed.enabled, Feed.consecutive_failures > 0).order_by(Feed.id)
        ):
            report.failing.append(
                {
                    "id": feed.id,
                    "url": feed.url,
                    "consecutive_failures": feed.consecutive_failures,
                    "last_error": feed.last_error,
                }
            )
        for feed in session.scalars(
            select(Feed)
            .where(
                Feed.enabled,
                Feed.created_at < stale_before,
                (Feed.last_success_at.is_(None)) | (Feed.last_success_at < stale_before),
            )
            .order_by(Feed.id)
        ):
            last = feed.last_success_at.isoformat() if feed.last_success_at else "never"
            report.stale.append({"id": feed.id, "url": feed.url, "last_success_at": last})
        report.outcomes_last_day = {
            outcome: int(n)
            for outcome, n in session.execute(
                select(Fetch.outcome, func.count())
                .where(Fetch.started_at >= now - timedelta(days=1), Fetch.started_at < now)
                .group_by(Fetch.outcome)
            ).all()
        }
    return report
