"""oslo.messaging notifications of what the consumer did.

``baremetal.hwbus.inventory.applied`` (INFO), ``.rejected`` (WARN) and
``.hardware_changed`` (INFO). Payloads carry ids, reasons and the
hardware differences, never an inventory's secrets (it has none) or a
credential's.
"""

from __future__ import annotations

import logging
from typing import Any

LOG = logging.getLogger(__name__)
PREFIX = 'baremetal.hwbus.inventory'


class Notifier:
    def __init__(self, conf: Any) -> None:
        import oslo_messaging

        group = conf.notifications
        url = group.transport_url
        transport = oslo_messaging.get_notification_transport(conf, url=url)
        self._notifier = oslo_messaging.Notifier(
            transport, publisher_id=group.publisher_id, driver=group.driver,
            topics=group.topics)

    def outcome(self, outcome: Any, opened: Any) -> None:
        payload = {'boot_id': outcome.boot_id,
                   'message_id': outcome.message_id}
        if outcome.kind == 'applied':
            applied = outcome.applied
            payload.update(node=outcome.node,
                           created=bool(applied and applied.created),
                           matched_by=applied.matched_by if applied else None,
                           changes=list(applied.changes) if applied else [])
            self._notifier.info({}, f'{PREFIX}.applied', payload)
        else:
            payload.update(reason=outcome.reason, detail=outcome.detail)
            self._notifier.warn({}, f'{PREFIX}.rejected', payload)

    def hardware_changed(self, node: str, changes: dict[str, Any]) -> None:
        self._notifier.info({}, f'{PREFIX}.hardware_changed',
                            {'node': node, 'changes': changes})
