"""What the pipeline decided about one message, and what it knew.

``Outcome`` tells the service to ack, dead-letter or retry; ``Attempt``
is the state of one pass through the pipeline, handed to the observers
(hwbus.consumer.observers) when it is done; ``Boot`` is the credential as
the appliers see it, a plain record rather than the store's row.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections.abc import Mapping
from typing import Any

from hwbus import envelope
from hwbus.consumer.appliers import Applied


class Kind(enum.StrEnum):
    APPLIED = 'applied'   # ack
    DEAD = 'dead'         # dead-letter with the reason, then ack
    RETRY = 'retry'       # try again later (transient)


# The reason of failures outside both error families (bugs).
INTERNAL = 'internal-error'
# The reason of a message that expired in the queue (its sender set a
# per-message expiration) and that the broker dead-lettered itself.
MESSAGE_EXPIRED = 'message-expired'


@dataclasses.dataclass(frozen=True)
class Boot:
    """A boot's credential as appliers need it: who it is bound to and
    where its one message stands."""

    boot_id: str
    mac: str | None
    node: str | None
    state: str
    message_id: str | None

    @classmethod
    def of(cls, credential: Any) -> Boot:
        return cls(credential.boot_id, credential.mac, credential.node,
                   credential.state, credential.message_id)


@dataclasses.dataclass
class Outcome:
    kind: Kind
    reason: str = ''
    detail: str = ''
    boot_id: str | None = None
    message_id: str | None = None
    node: str | None = None
    applied: Applied | None = None
    # This call received the boot (or was told it owns it): its retries
    # may go on applying without waiting for the apply lease.
    claimed: bool = False
    # The traceback of an internal error, for one log line per message.
    trace: str = dataclasses.field(default='', repr=False)
    # The message was signed by its boot's key and parsed.
    verified: bool = False
    # Its body goes to the dead-letter queue (a replay needs it): only
    # for the one message a credential may send, the one that passed its
    # gate (or the first after its expiry). Anything else, even signed,
    # is the sender's noise: its dead letter keeps size and digest.
    keep_body: bool = False
    # Dead-lettered by the broker itself and read from its queue
    # (Topology.broker_dead_queue): a copy the dead-letter queue refuses
    # waits and is tried again, since that queue has nowhere further to
    # send it.
    broker_dead: bool = False


@dataclasses.dataclass
class Attempt:
    """One pass of one message through the pipeline."""

    properties: Mapping[str, Any]
    # An earlier call of this worker received the message (its own
    # retry), or an operator replays it.
    owned: bool = False
    replay: bool = False
    credential: Any = None          # the store's row, once looked up
    opened: envelope.Opened | None = None
    # Applied by an earlier delivery whose ack was lost: acknowledged
    # again, nothing applied or archived twice.
    applied_before: bool = False
    started: float = dataclasses.field(default_factory=time.perf_counter)

    @property
    def again(self) -> bool:
        """This message may have passed its boot's gate before: the
        worker's own retry, an operator's replay, or a delivery the broker
        marks as a redelivery. A second publish of the same message id
        (a copy, or another body under that id) is none of these."""
        return self.owned or self.replay or \
            self.properties.get('redelivered') is True

    @property
    def boot(self) -> Boot | None:
        return None if self.credential is None else Boot.of(self.credential)

    def seconds(self) -> float:
        return time.perf_counter() - self.started
