"""What happens around each processed message, outside the pipeline.

The pipeline decides; observers record: metrics, the log line, the
notification, the archive and hardware history. Each gets every
finished attempt, in order, and none may stop intake: a failing observer
is logged and skipped (the way dramatiq's middleware sits around a
worker, not inside it).
"""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol

from hwbus import envelope
from hwbus.consumer import history, metrics
from hwbus.consumer.outcome import Attempt, Kind, Outcome
from hwbus.store import Inventory
from hwbus.store.api import utcnow

LOG = logging.getLogger(__name__)


class Observer(Protocol):
    def finished(self, outcome: Outcome, attempt: Attempt) -> None: ...


class Metrics:
    def finished(self, outcome: Outcome, attempt: Attempt) -> None:
        metrics.observe(outcome, attempt.seconds())


class LogLine:
    """One line per attempt; untrusted text is escaped by the log filter."""

    def finished(self, outcome: Outcome, attempt: Attempt) -> None:
        user = str(attempt.properties.get('user_id') or '-')[:64]
        if outcome.kind == Kind.APPLIED:
            LOG.info('applied message %s of boot %s (user %s) to node %s',
                     outcome.message_id, outcome.boot_id, user,
                     outcome.node or '-')
        elif outcome.kind == Kind.DEAD:
            LOG.warning('rejected message %s (user %s): %s: %s',
                        outcome.message_id or '-', user, outcome.reason,
                        outcome.detail)
        else:
            LOG.warning('will retry message %s (user %s): %s: %s',
                        outcome.message_id or '-', user, outcome.reason,
                        outcome.detail)


class Notify:
    """oslo.messaging notifications of final outcomes (not retries)."""

    def __init__(self, notifier: Any) -> None:
        self.notifier = notifier

    def finished(self, outcome: Outcome, attempt: Attempt) -> None:
        if outcome.kind != Kind.RETRY:
            self.notifier.outcome(outcome, attempt.opened)


class Archive:
    """Keep every applied inventory (signed body and all) and say what
    changed in the node's hardware since its previous one."""

    def __init__(self, store: Any, notifier: Any = None) -> None:
        self.store = store
        self.notifier = notifier

    def finished(self, outcome: Outcome, attempt: Attempt) -> None:
        opened = attempt.opened
        if outcome.kind != Kind.APPLIED or opened is None or \
                attempt.applied_before:
            return
        with metrics.step('archive'):
            self._archive(outcome, attempt, opened)

    def _archive(self, outcome: Outcome, attempt: Attempt,
                 opened: envelope.Opened) -> None:
        header = opened.header
        node = outcome.node
        previous = self.store.inventories(node=node, limit=1) if node else []
        saved = self.store.archive(Inventory(
            boot_id=header.boot_id, message_id=header.message_id, node=node,
            mac=(opened.inventory.get('boot') or {}).get('pxe_interface')
            or (attempt.boot.mac if attempt.boot else None),
            applied_at=utcnow(), body=opened.body,
            content_encoding=header.encoding,
            signature=envelope.keys.b64encode(header.signature),
            user_id=header.user_id,
            changes=json.dumps(outcome.applied.changes)
            if outcome.applied else None))
        if not (saved and previous):
            return
        changes = history.diff(history.document_of(previous[0]),
                               opened.document)
        if changes:
            LOG.info('hardware of node %s changed: %s', node,
                     '; '.join(changes))
            if self.notifier is not None:
                self.notifier.hardware_changed(node, changes)


def notify_all(observers: list[Observer], outcome: Outcome,
               attempt: Attempt) -> None:
    for observer in observers:
        try:
            observer.finished(outcome, attempt)
        except Exception as exc:  # observers never stop intake
            LOG.warning('%s failed on message %s: %s',
                        type(observer).__name__, outcome.message_id or '-',
                        exc)
