"""The alert life cycle, in the manner of Prometheus Alertmanager, with state in PostgreSQL.

Per scope and evaluation time ``now``:

* no open alert and the window fires -> open one (``firing``) and notify;
* an open alert whose window is calm (hysteresis, see :mod:`pipeline.alerts.detect`) ->
  ``resolved``, and notify if its firing was notified;
* an open alert still firing -> notify again once ``repeat`` has passed since the last
  notice (or for the first time when a silence that hid it has ended, or, for an episode a
  backfill or ``--no-notify`` run opened, when a live run finds it over the threshold).

Silences mute notifications, not detection: the alert is still tracked. A run that may send
honours a silence running at ``now`` or on the wall clock (one set after ``now``, the data's
end, but before the run). Every notice of
one evaluation is grouped: each recipient gets one email with all the alerts routed to
them. Notices become outbox rows (``alert_deliveries``) whose ``dedup_key`` is derived from
the evaluation time, the episodes (alert ids) and kinds, never from the wall clock.

Re-running an evaluation time changes nothing: a scope whose alerts were already evaluated
at or after ``now`` is skipped, and a transaction-scoped advisory lock keeps two concurrent
runs (an Airflow retry racing the original) from interleaving.

Aggregate scopes (market, sources, tags) are judged on their articles *without* those of
tickers firing in the same evaluation: one company's bad day is the company's alert, not
also a market alert and a source alert (Alertmanager calls this inhibition). Only articles
that count for a firing ticker leave (not its passing mentions), from the current window and
from the baseline alike: were they left in the baseline, a company whose news is usually
calmer than the rest would make the rest look like a spike the hour it is left out. A broad
sell off still fires the market: with BROAD_MOVE_TICKERS or more tickers firing, the market
is judged on all its articles.

One evaluation counts every article with the score of one model version (see
:func:`evaluation_model_version`): a baseline of the former model's labels against a window
of the new one's would see a spike in the change of model.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, or_, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from pipeline.alerts.detect import Assessment, Bucket, assess, calm_reasons, compute_baseline
from pipeline.alerts.params import AlertParams
from pipeline.alerts.queries import (
    ScopeId,
    ScopeSeries,
    company_names,
    exclusive_counts,
    scope_series,
    scope_sql,
    top_headlines,
)
from pipeline.alerts.recipients import Routing, load_routing
from pipeline.alerts.scopes import scope_text
from pipeline.alerts.transports import transport_class
from pipeline.db.engine import Database
from pipeline.db.models import Alert, AlertDelivery, AlertDeliveryItem, AlertEvaluation, AlertSilence
from pipeline.errors import AlertError
from pipeline.masking import mask_secrets
from pipeline.settings import Settings

log = logging.getLogger(__name__)

#: pg_advisory_xact_lock key serialising evaluations ("FSALERTS" as an integer).
EVALUATION_LOCK = 0x4653414C45525453 & 0x7FFFFFFFFFFFFFFF
#: Below this many articles in its history the market is a worse prior than the constant.
MARKET_PRIOR_MIN_VOLUME = 50
#: This many tickers firing in one evaluation, each on at least the least volume of articles
#: that name no other firing ticker, is a broad move: the market is then judged on all its
#: articles, theirs included (below it, one or two companies' bad day, or one story naming
#: several companies, is theirs). A market alert opened so is judged on all its articles
#: until it resolves, so that it does not flap as tickers stop and start firing.
BROAD_MOVE_TICKERS = 3


@dataclass(frozen=True)
class Notice:
    scope_type: str
    scope_key: str
    kind: str  # fired | repeat | resolved | silenced
    alert_id: int
    volume: int
    share: float
    baseline: float
    deviation: float

    @property
    def scope(self) -> str:
        return scope_text(self.scope_type, self.scope_key)

    def render(self) -> str:
        return (
            f"{self.scope}: {self.share:.0%} negative of {self.volume} vs {self.baseline:.0%} baseline "
            f"(z={self.deviation:.1f})"
        )


@dataclass
class EvaluationReport:
    evaluated_at: datetime
    scopes: int = 0
    skipped: int = 0
    notices: list[Notice] = field(default_factory=list)
    firing: int = 0
    deliveries: int = 0
    quiet_after: datetime | None = None  # set when a later time was already evaluated: no email

    def of(self, kind: str) -> list[Notice]:
        return [n for n in self.notices if n.kind == kind]

    @property
    def fired(self) -> list[Notice]:
        return self.of("fired")

    @property
    def resolved(self) -> list[Notice]:
        return self.of("resolved")

    def render(self) -> str:
        scopes = f"{self.scopes} scope{'' if self.scopes == 1 else 's'}"
        head = (
            f"alerts at {self.evaluated_at:%Y-%m-%d %H:%M}Z: {scopes}, "
            f"{len(self.fired)} fired, {len(self.of('repeat'))} repeated, {len(self.resolved)} resolved, "
            f"{len(self.of('silenced'))} silenced; {self.firing} firing; {self.deliveries} email(s) queued"
        )
        if self.skipped:
            head += f"; {self.skipped} already evaluated"
        if self.quiet_after is not None:
            head += f"; no email: {self.quiet_after:%Y-%m-%d %H:%M}Z was already evaluated (a backfill)"
        lines = [head] + [f"  {n.kind:<8} {n.render()}" for n in self.notices]
        return "\n".join(lines)


def aware(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise AlertError(f"evaluation time {now.isoformat()} has no time zone: pass an aware datetime (UTC)")
    return now.astimezone(UTC)


def evaluate(
    db: Database,
    settings: Settings,
    *,
    now: datetime,
    model_version: str | None = None,
    routing: Routing | None = None,
    notify: bool = True,
) -> EvaluationReport:
    """Evaluate every scope at ``now``; open, repeat and resolve alerts; queue their emails.

    ``notify=False`` (backfills) records the alerts but queues no email and leaves them
    un-notified, so an episode still firing at the next live evaluation is notified then.
    """
    now = aware(now)
    params = AlertParams.from_settings(settings)
    routing = routing if routing is not None else load_routing(settings)
    with db.transaction() as session:
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": EVALUATION_LOCK})
        model_version = model_version or evaluation_model_version(session)
        latest = session.scalar(select(func.max(AlertEvaluation.evaluated_at)))
        session.execute(insert(AlertEvaluation).values(evaluated_at=now).on_conflict_do_nothing())
        # A time before one already evaluated is a backfill: what it finds is history, and an
        # email about it now would be stale (a later evaluation may have found it calm).
        late = latest is not None and now < latest
        report = _Evaluation(
            session, settings, params, routing, now, model_version, notify and not late
        ).run()
        if late and notify:
            report.quiet_after = latest
        return report


def evaluation_model_version(session: Session) -> str | None:
    """The model version an evaluation counts when none is given (``finsent alerts check``;
    runs and the DAGs pass the version they scored with): the one whose score was stored
    last, the serving model's after a run, after a promotion and after a rollback alike.

    Articles that version has not scored yet (the history a re-score after a promotion has
    not reached) do not count: the baseline is the part of the history scored by the same
    model as the window, thinner for a while but never a mix of two models' labels."""
    return session.scalar(text("SELECT model_version FROM sentiment_scores ORDER BY id DESC LIMIT 1"))


@dataclass
class _Pending:
    alert: Alert
    kind: str  # firing | repeat | resolved
    assessment: Assessment
    exclude: list[str]


class _Evaluation:
    def __init__(
        self,
        session: Session,
        settings: Settings,
        params: AlertParams,
        routing: Routing,
        now: datetime,
        model_version: str | None,
        notify: bool = True,
    ):
        self.notify = notify
        self.session = session
        self.settings = settings
        self.params = params
        self.routing = routing
        self.now = now
        self.model_version = model_version
        self.report = EvaluationReport(evaluated_at=now)
        self.pending: list[_Pending] = []
        # The series each scope was judged on (an inhibited aggregate's without the firing
        # tickers' articles), which its email charts.
        self.judged: dict[ScopeId, ScopeSeries] = {}

    # --- detection ------------------------------------------------------------------
    def run(self) -> EvaluationReport:
        s, p, now = self.session, self.params, self.now
        self.series = scope_series(s, now=now, params=p, model_version=self.model_version)
        self.open = {
            (a.scope_type, a.scope_key): a for a in s.scalars(select(Alert).where(Alert.state == "firing"))
        }
        last_event = func.greatest(
            func.max(Alert.started_at), func.max(Alert.resolved_at), func.max(Alert.last_evaluated_at)
        )
        self.last_event = {
            (t, k): at
            for t, k, at in s.execute(
                select(Alert.scope_type, Alert.scope_key, last_event).group_by(
                    Alert.scope_type, Alert.scope_key
                )
            )
        }
        self.silenced = self._silenced_scopes()
        n = p.history_buckets
        market = self.series.get(("market", ""), ScopeSeries({}))
        market_base = compute_baseline(market.history(n), p, p.prior_share)
        prior = market_base.share if market_base.volume >= MARKET_PRIOR_MIN_VOLUME else p.prior_share

        # Tickers first: which fire decides what the aggregates may attribute to them.
        tickers = {k for t, k in self.series if t == "ticker"}
        if self.routing.tickers is not None:
            tickers &= self.routing.tickers
        tickers |= {k for t, k in self.open if t == "ticker"}
        firing_tickers: list[str] = []
        for key in sorted(tickers):
            scope = ("ticker", key)
            ser = self.judged[scope] = self.series.get(scope, ScopeSeries({}))
            a = assess(ser.current, compute_baseline(ser.history(n), p, prior), p)
            if self._step(scope, a, exclude=[]):
                firing_tickers.append(key)

        aggregates = {sc for sc in self.series if sc[0] != "ticker"} | {
            sc for sc in self.open if sc[0] != "ticker"
        }
        aggregates.add(("market", ""))
        residual = (
            scope_series(
                s,
                now=now,
                params=p,
                model_version=self.model_version,
                exclude_tickers=firing_tickers,
            )
            if firing_tickers
            else None
        )
        market_alert = self.open.get(("market", ""))
        on_all = self._broad_move(firing_tickers) or bool(
            market_alert is not None and (market_alert.details or {}).get("judged_on_all")
        )
        for scope in sorted(aggregates):
            whole = scope[0] == "market" and on_all
            inhibited = residual is not None and not whole
            ser = self.judged[scope] = (residual if inhibited else self.series).get(scope, ScopeSeries({}))
            own_prior = prior if scope[0] != "market" else p.prior_share
            a = assess(ser.current, compute_baseline(ser.history(n), p, own_prior), p)
            self._step(scope, a, exclude=firing_tickers if inhibited else [], judged_on_all=whole)

        self.session.flush()
        # Firing as of the evaluation time, so that a backfill reports that time, not today.
        self.report.firing = (
            self.session.scalar(
                select(func.count())
                .select_from(Alert)
                .where(
                    Alert.started_at <= self.now,
                    or_(Alert.resolved_at.is_(None), Alert.resolved_at > self.now),
                )
            )
            or 0
        )
        self._queue()
        return self.report

    def _broad_move(self, firing_tickers: list[str]) -> bool:
        """BROAD_MOVE_TICKERS or more tickers firing, each on its own articles."""
        if len(firing_tickers) < BROAD_MOVE_TICKERS:
            return False
        own = exclusive_counts(
            self.session,
            now=self.now,
            params=self.params,
            tickers=firing_tickers,
            model_version=self.model_version,
        )
        return sum(own.get(t, 0) >= self.params.min_volume for t in firing_tickers) >= BROAD_MOVE_TICKERS

    def _silenced_scopes(self) -> set[ScopeId]:
        """Scopes under a silence at the evaluation time, and, for a run that may send, also
        at the wall clock: a live run evaluates as of its data's end, minutes (or, catching
        up, hours) behind the clock, and an analyst who has just said "stop paging me about
        VLTA" means the next email too, whatever time it is about."""
        active = (AlertSilence.starts_at <= self.now) & (AlertSilence.ends_at > self.now)
        wall = datetime.now(UTC)
        if self.notify and wall > self.now:
            active = active | ((AlertSilence.starts_at <= wall) & (AlertSilence.ends_at > wall))
        rows = self.session.execute(select(AlertSilence.scope_type, AlertSilence.scope_key).where(active))
        return {(t, k) for t, k in rows}

    def _step(
        self, scope: ScopeId, a: Assessment, *, exclude: list[str], judged_on_all: bool = False
    ) -> bool:
        """Apply one scope's assessment; True when the scope is firing afterwards.
        ``judged_on_all``: the market judged on all its articles (a broad move), kept in the
        alert's details so that it is judged so until it resolves."""
        now = self.now
        self.report.scopes += 1
        alert = self.open.get(scope)
        last = self.last_event.get(scope)
        if last is not None and last >= now:
            self.report.skipped += 1
            return alert is not None
        silenced = scope in self.silenced
        if alert is None:
            if not a.fires:
                return False
            alert = Alert(
                scope_type=scope[0],
                scope_key=scope[1],
                state="firing",
                started_at=now,
                last_evaluated_at=now,
                details={},
            )
            self._update(alert, a, first=True, exclude=exclude)
            if judged_on_all:
                alert.details = {**alert.details, "judged_on_all": True}
            if not self.notify:
                alert.details = {**alert.details, "opened_quietly": True}
            self.session.add(alert)
            self.session.flush()
            self._notify(alert, "firing", a, exclude, silenced, report_kind="fired")
            return True
        if a.calm:
            alert.state = "resolved"
            alert.resolved_at = now
            alert.last_evaluated_at = now
            alert.details = {**alert.details, "resolved_with": a.as_dict()}
            if alert.last_notified_at is not None:
                self._notify(alert, "resolved", a, exclude, silenced, report_kind="resolved")
            else:
                self._record("resolved", alert, a)
            return False
        self._update(alert, a, first=False, exclude=exclude)
        if alert.last_notified_at is None:
            # An episode a quiet run opened (a backfill, --no-notify) is emailed when a live
            # run finds it over the threshold, not merely not yet calm: "FIRING at 2.1 sigma"
            # about an episode no live run saw cross 3 would be a false alarm.
            if a.fires or not (alert.details or {}).get("opened_quietly"):
                self._notify(alert, "firing", a, exclude, silenced, report_kind="fired")
        elif now - alert.last_notified_at >= self.params.repeat:
            self._notify(alert, "repeat", a, exclude, silenced, report_kind="repeat")
        return True

    def _update(self, alert: Alert, a: Assessment, *, first: bool, exclude: list[str]) -> None:
        alert.last_evaluated_at = self.now
        alert.window_start = self.now - self.params.window
        alert.window_end = self.now
        alert.volume = a.volume
        alert.negative_share = a.share
        alert.baseline_share = a.baseline.share
        alert.deviation = a.deviation
        details = dict(alert.details or {})
        details.update(a.as_dict())
        # What the latest evaluation counted, for the alert's page to list the same articles.
        details["model_version"] = self.model_version
        details["excluded_tickers"] = list(exclude)
        if first:
            details["fired_with"] = a.as_dict()
        details["peak_deviation"] = max(float(details.get("peak_deviation", a.deviation)), a.deviation)
        details["peak_negative_share"] = max(float(details.get("peak_negative_share", a.share)), a.share)
        alert.details = details

    def _record(self, kind: str, alert: Alert, a: Assessment) -> None:
        self.report.notices.append(
            Notice(
                alert.scope_type,
                alert.scope_key,
                kind,
                alert.id,
                a.volume,
                a.share,
                a.baseline.share,
                a.deviation,
            )
        )

    def _notify(
        self, alert: Alert, kind: str, a: Assessment, exclude: list[str], silenced: bool, *, report_kind: str
    ) -> None:
        if silenced:  # tracked, not sent
            self._record("resolved" if kind == "resolved" else "silenced", alert, a)
            return
        self._record(report_kind, alert, a)
        if not self.notify:
            return
        alert.last_notified_at = self.now
        self.pending.append(_Pending(alert, kind, a, list(exclude)))

    # --- outbox ---------------------------------------------------------------------
    def _queue(self) -> None:
        if not self.pending:
            return
        companies = {
            **company_names(
                self.session, [p.alert.scope_key for p in self.pending if p.alert.scope_type == "ticker"]
            ),
            **self.routing.companies,
        }
        items = [self._item(p, companies) for p in self.pending]
        by_recipient: dict[str, list[int]] = defaultdict(list)
        for i, p in enumerate(self.pending):
            for address in self.routing.recipients(p.alert.scope_type, p.alert.scope_key):
                by_recipient[address].append(i)
        groups: dict[tuple[int, ...], list[str]] = defaultdict(list)
        for address, indices in by_recipient.items():
            groups[tuple(indices)].append(address)
        # One row per transport: an email transport gets one per recipient group, any other
        # (a webhook) one with every notice. The first email transport keeps the dedup key
        # it always had, so re-running an evaluation queued before several transports existed
        # queues nothing twice.
        first_email = True
        for name in self.settings.alert_transports:
            if transport_class(name).capabilities.email:
                via = None if first_email else name
                first_email = False
                for indices, recipients in sorted(groups.items()):
                    self._insert_delivery([items[i] for i in indices], sorted(recipients), name, via)
            else:
                self._insert_delivery(items, [], name, name)

    def _item(self, p: _Pending, companies: dict[str, str]) -> dict[str, Any]:
        alert, a, params, now = p.alert, p.assessment, self.params, self.now
        scope = (alert.scope_type, alert.scope_key)
        ser = self.judged.get(scope) or self.series.get(scope, ScopeSeries({}))
        hours = max(1, int(params.chart_hours * 60 / (params.window.total_seconds() / 60)))
        chart = [ser.buckets.get(k, Bucket()) for k in range(hours - 1, -1, -1)]
        headlines = []
        if p.kind != "resolved":
            headlines = top_headlines(
                self.session,
                scope,
                now=now,
                window=params.window,
                limit=params.headlines,
                model_version=self.model_version,
                exclude_tickers=p.exclude,
            )
        return {
            "alert_id": alert.id,
            "kind": p.kind,
            "scope_type": alert.scope_type,
            # Frozen into emails and webhook bodies: a source's key can be a feed URL with a
            # password in it (its alert row keeps the key itself).
            "scope_key": mask_secrets(alert.scope_key),
            "company": companies.get(alert.scope_key.upper()) if alert.scope_type == "ticker" else None,
            "started_at": alert.started_at.isoformat(),
            "window_start": (now - params.window).isoformat(),
            "window_end": now.isoformat(),
            "window_minutes": int(params.window.total_seconds() // 60),
            "threshold": params.threshold,
            "min_volume": params.min_volume,
            "min_share": params.min_share,
            "baseline_days": params.baseline_days,
            "excluded_tickers": p.exclude,
            **a.as_dict(),
            **({"resolved_because": calm_reasons(a, params)} if p.kind == "resolved" else {}),
            "headlines": headlines,
            "chart": {
                "end": now.isoformat(),
                "step_minutes": int(params.window.total_seconds() // 60),
                "volumes": [b.volume for b in chart],
                "shares": [round(b.share, 4) for b in chart],
            },
            "model_version": self.model_version,
            "sql": scope_sql(
                scope, start=now - params.window, end=now, model_version=self.model_version, exclude=p.exclude
            ),
        }

    def _payload(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        """What the message shows, frozen: the web pages' address too (FINSENT_WEB_URL), so
        a retry links where the first attempt did."""
        payload: dict[str, Any] = {"evaluated_at": self.now.isoformat(), "items": items}
        if self.settings.web_url:
            payload["web_url"] = self.settings.web_url
        return payload

    def _insert_delivery(
        self, items: list[dict[str, Any]], recipients: list[str], transport: str, via: str | None
    ) -> None:
        key: dict[str, Any] = {
            "at": self.now.isoformat(),
            "items": [[i["scope_type"], i["scope_key"], i["alert_id"], i["kind"]] for i in items],
            "to": recipients,
        }
        if via is not None:
            key["via"] = via
        ident = json.dumps(key, sort_keys=True)
        dedup_key = hashlib.sha256(ident.encode()).hexdigest()
        lead = next((i for i in items if i["kind"] != "resolved"), items[0])
        row_id = self.session.scalar(
            insert(AlertDelivery)
            .values(
                alert_id=lead["alert_id"],
                kind=lead["kind"],
                dedup_key=dedup_key,
                recipients=recipients,
                transport=transport,
                status="pending",
                next_attempt_at=self.now,
                evaluated_at=self.now,
                payload=self._payload(items),
            )
            .on_conflict_do_nothing(index_elements=["dedup_key"])
            .returning(AlertDelivery.id)
        )
        if row_id is None:  # queued by an earlier run of this same evaluation
            return
        for i in items:
            self.session.add(AlertDeliveryItem(delivery_id=row_id, alert_id=i["alert_id"], kind=i["kind"]))
        self.report.deliveries += 1
