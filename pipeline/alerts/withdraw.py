"""Alerts whose evidence was deleted: withdrawn, without an email.

``finsent feeds remove --purge`` deletes a feed's articles as if the feed had never carried
them (the demo's fictional news before real use, a spam feed). A firing alert whose window
then holds no article of its scope has nothing left to stand on: the next evaluation would
find it calm and email a RESOLVED notice about news that no longer exists. Instead it is
resolved on the spot, quietly (``details.withdrawn`` says why), and its emails not yet sent
(``pending`` or ``failed``, carrying no other alert) become ``withdrawn``, a final state that
no delivery run picks up. An alert whose window still holds articles of its scope is left to
the next evaluation, which judges what is left.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from pipeline.alerts.queries import scope_sql
from pipeline.db.models import Alert, AlertDelivery, AlertDeliveryItem

log = logging.getLogger(__name__)

#: Delivery states a withdrawal may end: nothing was handed to a server yet.
UNSENT = ("pending", "failed")


def withdraw_orphaned_alerts(session: Session, *, now: datetime, reason: str) -> list[Alert]:
    """Resolve, without a notice, every firing alert whose window holds none of its scope's
    articles any more; return them. Runs in the caller's transaction (the purge's)."""
    withdrawn = []
    for alert in session.scalars(select(Alert).where(Alert.state == "firing").order_by(Alert.id)):
        # The scope's articles of the window as the alert's evidence query lists them.
        scope = (alert.scope_type, alert.scope_key)
        listed = scope_sql(scope, start=alert.window_start, end=alert.window_end).rstrip().rstrip(";")
        left = session.execute(text(f"SELECT count(*) FROM ({listed}) AS q")).scalar_one()
        if left:
            continue
        alert.state = "resolved"
        alert.resolved_at = now
        alert.details = {**(alert.details or {}), "withdrawn": reason}
        withdrawn.append(alert)
    if withdrawn:
        session.flush()
        ids = [a.id for a in withdrawn]
        carries_other = (
            select(AlertDeliveryItem.delivery_id)
            .where(AlertDeliveryItem.alert_id.not_in(ids))
            .scalar_subquery()
        )
        unsent = session.scalars(
            select(AlertDelivery)
            .join(AlertDeliveryItem, AlertDeliveryItem.delivery_id == AlertDelivery.id)
            .where(AlertDeliveryItem.alert_id.in_(ids), AlertDelivery.status.in_(UNSENT))
            .where(AlertDelivery.id.not_in(carries_other))
        ).unique()
        for delivery in unsent:
            delivery.status = "withdrawn"
            delivery.next_attempt_at = None
            delivery.last_error = f"withdrawn: {reason}"
        log.info("alerts withdrawn (%s): %s", reason, ", ".join(f"#{i}" for i in ids))
    return withdrawn
