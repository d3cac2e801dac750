"""One message, from wire bytes to Ironic, in the design's order.

size → properties → credential by ``user_id`` → signature → expiry →
state transition → revoke → schema → MAC binding → sealed secrets →
appliers → applied.
``process()`` never raises: it returns an ``Outcome`` that tells the
service to ack, dead-letter (with a reason) or retry, and hands the
attempt to the observers (metrics, log, notifications, archive). It knows
nothing of AMQP, so tests and ``hwbus-manage replay`` drive it directly.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import traceback
from collections.abc import Mapping
from typing import Any

from hwbus import bmc, envelope, inventory, sealing
from hwbus.consumer import metrics
from hwbus.consumer.appliers import Applied, Applier, Context
from hwbus.consumer.observers import Observer, notify_all
from hwbus.consumer.outcome import INTERNAL, Attempt, Kind, Outcome
from hwbus.credentials import BOOT_USER_RE, Credentials
from hwbus.errors import PermanentError, TransientError
from hwbus.store import Credential, State, StoreUnavailable
from hwbus.store.api import utcnow
from hwbus.store.models import holds

LOG = logging.getLogger(__name__)

APPLIED, DEAD, RETRY = Kind.APPLIED, Kind.DEAD, Kind.RETRY
__all__ = ['APPLIED', 'DEAD', 'INTERNAL', 'RETRY', 'Outcome', 'Pipeline']


class Rejected(PermanentError):
    """A verified message that still cannot be accepted."""


class Revoked(Rejected):
    reason = 'revoked'


class ReplayedBoot(Rejected):
    reason = 'replayed-boot'


class CredentialMismatch(Rejected):
    reason = 'credential-mismatch'


class Expired(Rejected):
    reason = 'expired'


class MacMismatch(Rejected):
    reason = 'mac-mismatch'


class RamdiskError(Rejected):
    reason = 'ramdisk-error'


class InProgress(TransientError):
    """Another worker (maybe on another host) is applying this message."""

    reason = 'in-progress'


def sender(properties: Mapping[str, Any]) -> str | None:
    """The per-boot user that published a message, as the broker saw it:
    ``user_id`` if present, else the user its routing key names."""
    user = properties.get('user_id')
    if not isinstance(user, str):
        key = properties.get('routing_key')
        user = key.removeprefix('inventory.') if isinstance(key, str) and \
            key.startswith('inventory.') else None
    return user if user and BOOT_USER_RE.match(user) else None


class Pipeline:
    """The checks and the appliers; shared by all worker threads."""

    def __init__(self, credentials: Credentials, appliers: list[Applier],
                 observers: list[Observer] | None = None,
                 max_size: int = envelope.MAX_SIZE,
                 apply_lease: float = 120.0,
                 keyring: list[Any] | None = None,
                 limit: Any = None) -> None:
        self.credentials = credentials
        self.store = credentials.store
        self.appliers = appliers
        self.observers = observers or []
        self.max_size = max_size
        self.apply_lease = datetime.timedelta(seconds=apply_lease)
        # The consumer's X25519 private keys ([sealing]), current first.
        self.keyring = keyring or []
        # How many applies reach Ironic at once (hwbus.consumer.limit);
        # None: as many as there are workers (the null applier).
        self.limit = limit

    def process(self, body: bytes, properties: Mapping[str, Any],
                owned: bool = False, replay: bool = False) -> Outcome:
        """Verify and apply one message.

        ``owned``: an earlier call of this worker received this message
        (outcome.claimed), so this is its own retry, not a redelivery.
        ``replay``: an operator asks for it again ("hwbus-manage replay",
        "dead replay"): verified as always, then applied even if it was
        applied, received or expired before.
        """
        attempt = Attempt(properties, owned=owned or replay, replay=replay)
        try:
            with metrics.step('verify'):
                attempt.opened = envelope.open(
                    body, properties,
                    lambda header: self._key_for(header, attempt),
                    self.max_size)
            outcome = self._accept(attempt.opened, attempt)
        except PermanentError as exc:
            outcome = Outcome(DEAD, exc.reason, str(exc))
        except TransientError as exc:
            outcome = Outcome(RETRY, exc.reason, str(exc))
        except Exception as exc:  # a bug or an unforeseen failure
            # Not retried for long (see Service): the traceback goes with
            # the outcome, to be logged once per message, not per retry.
            outcome = Outcome(RETRY, INTERNAL, f'{type(exc).__name__}: '
                              f'{exc}'[:500],
                              trace=traceback.format_exc())
        outcome.claimed = attempt.owned
        if attempt.opened is not None:
            outcome.boot_id = attempt.opened.header.boot_id
            outcome.message_id = attempt.opened.header.message_id
            outcome.verified = True
            # The message that passed its boot's gate: a replay needs it.
            outcome.keep_body = attempt.owned
        else:
            outcome.message_id = str(properties.get('message_id') or '')[:128]
        if outcome.kind == DEAD and not self._close_gate(outcome):
            # A failed replay too. Not dead-lettered while its boot's
            # refusal is not recorded: retried like any store failure.
            outcome = self._unrecorded(outcome)
        if outcome.kind == DEAD and not replay:
            self._end_sender(properties, attempt.credential, outcome)
        notify_all(self.observers, outcome, attempt)
        return outcome

    def _close_gate(self, outcome: Outcome) -> bool:
        """The message that passed its boot's gate is dead-lettered: the
        boot is ``refused``, so that no copy of it (which would come back
        marked redelivered after a lost connection) passes as the same
        message; only an operator's replay applies it from there.

        False when the refusal could not be recorded: the boot would stay
        ``received`` under this message's id, and a redelivered copy (or
        another body under that id) would take it over once the apply
        lease ran out, and be applied. The message must not be
        dead-lettered then.
        """
        if not (outcome.claimed and outcome.boot_id):
            return True
        try:
            self.store.transition(outcome.boot_id, State.REFUSED,
                                  [State.RECEIVED])
        except Exception as exc:
            LOG.warning('could not record boot %s as refused: %s',
                        outcome.boot_id, exc)
            return False
        return True

    @staticmethod
    def _unrecorded(outcome: Outcome) -> Outcome:
        """A refusal the store did not record, as a transient outcome:
        the worker tries the message again (it still owns it), which
        refuses it again and records it then."""
        retry = Outcome(RETRY, StoreUnavailable.reason,
                        f'{outcome.reason} not recorded (its boot stays '
                        f'open until it is): {outcome.detail}'[:1000])
        for name in ('claimed', 'boot_id', 'message_id', 'verified'):
            setattr(retry, name, getattr(outcome, name))
        return retry

    def refused(self, properties: Mapping[str, Any],
                outcome: Outcome) -> bool:
        """A message the workers dead-letter after process() returned
        (internal errors, once their attempts are spent) ends its
        sender's credential, and its boot's gate, as any refused message
        does. False when the gate could not be closed: the workers keep
        the message and try again."""
        if not self._close_gate(outcome):
            return False
        self._end_sender(properties, None, outcome)
        return True

    def _end_sender(self, properties: Mapping[str, Any],
                    credential: Credential | None,
                    outcome: Outcome) -> None:
        """A refused message ends the credential that sent it.

        The routing key is the broker's word (a per-boot user may publish
        only with its own, and ``user_id``, when present, must be that
        user too), so the holder of that per-boot user sent this message,
        whatever else is wrong with it. A credential is good for one
        message: deleting the user now stops a flood from it at the first
        message the consumer sees, instead of at its expiry. A credential
        already past ``issued`` lost its user when its message was
        received.
        """
        try:
            if credential is None:
                user = sender(properties)
                if user is None:
                    return
                credential = self.store.by_username(user)
                if credential is None:  # the store forgot it: no record
                    self.credentials.management.delete_user(user)
                    return
            to = State.EXPIRED if outcome.reason == Expired.reason \
                else State.REVOKED
            withdrawn = self.credentials.withdraw(credential, to)
            if to == State.EXPIRED and outcome.verified:
                # The first message after the expiry may be replayed
                # ("dead replay --reason expired"), whether this consumer
                # or the sweeper expired the credential; those after it,
                # sent while the user lived on, are noise.
                outcome.keep_body = self.store.first_after_expiry(
                    credential.boot_id, outcome.message_id or '',
                    again=properties.get('redelivered') is True)
            if withdrawn:
                LOG.warning('%s credential of boot %s (user %s) after its '
                            'message was refused (%s)', to.value,
                            credential.boot_id, credential.username,
                            outcome.reason)
        except Exception as exc:  # the sweeper deletes it later
            LOG.warning('could not end the credential of a refused '
                        'message: %s', exc)

    # -- steps ------------------------------------------------------------
    def _key_for(self, header: envelope.Header, attempt: Attempt) -> bytes:
        with metrics.step('lookup'):
            credential = self.credentials.lookup(header.user_id)
        if credential.boot_id != header.boot_id:
            raise CredentialMismatch(
                f'broker user {header.user_id} belongs to boot '
                f'{credential.boot_id}, not {header.boot_id}')
        if credential.state == State.REVOKED.value:
            raise Revoked(f'the credential of boot {credential.boot_id} was '
                          f'revoked')
        if credential.state == State.REFUSED.value and not attempt.replay:
            raise ReplayedBoot(f'boot {credential.boot_id} sent its message '
                               f'already, and it was refused')
        attempt.credential = credential
        return credential.public_key

    def _check_claim(self, credential: Credential, message_id: str,
                     owned: bool) -> None:
        """Apply one message in one place at a time.

        A message is redelivered when the connection that carried it is
        lost (a broker node or a consumer went away), possibly while the
        worker that received it is still applying it: two concurrent
        continue_inspection calls would enrol two nodes. So a redelivery
        of a received, unfinished message waits (transient) until the
        boot is applied or its worker has shown no sign of life for
        ``apply_lease``, and then takes it over.
        """
        if not holds(credential, State.RECEIVED, message_id):
            return
        if owned:
            self.store.touch(credential.boot_id, message_id)
            return
        idle = utcnow() - credential.changed_at
        if idle < self.apply_lease:
            raise InProgress(
                f'boot {credential.boot_id} is being applied by another '
                f'delivery (last seen {idle.total_seconds():.0f} s ago); '
                f'waiting for it')

    @staticmethod
    def _check_expiry(credential: Credential) -> None:
        """Refuse what reaches the consumer after the credential's expiry.

        Judged by this consumer's clock at the first receipt, never by a
        time the sender signs. A message published in time and consumed
        after the expiry (the consumer was down longer than the TTL) is
        dead-lettered too, and an operator can replay it ("hwbus-manage
        dead replay --reason expired").
        """
        if utcnow() > credential.expires_at:
            expiry = credential.expires_at.isoformat(timespec='seconds')
            raise Expired(f'the credential of boot {credential.boot_id} '
                          f'expired at {expiry}Z, before this message was '
                          f'received')

    def _unseal_bmc(self, opened: envelope.Opened,
                    credential: Credential) -> bmc.Secret | None:
        """The BMC account the ramdisk minted, opened with this
        consumer's key. A blob that does not open is the whole message's
        permanent failure ("sealed-secret"): applying the inventory
        without it would leave the BMC with a password nobody knows. The
        dead letter keeps the sealed blob only, so that a replay after
        the key is fixed opens it.

        Only a boot issued with hwbus.bmc=create may send one: anyone can
        seal to the consumer's public key (it is on every kernel command
        line), so an account from a boot that was not asked to make one
        is refused, not written to a node.
        """
        blob = opened.sealed.get('bmc')
        boot_id = credential.boot_id
        if blob is None:
            return None
        if getattr(credential, 'bmc', None) != 'create':
            raise sealing.SealError(
                f'boot {boot_id} sent a BMC password but was not issued '
                f'for a BMC account (hwbus.bmc=create)')
        if not self.keyring:
            raise sealing.SealError(
                f'boot {boot_id} sent a sealed BMC password and this '
                f'consumer has no key to open it: set [sealing] '
                f'private_key_file, then "hwbus-manage dead replay '
                f'--reason sealed-secret"')
        return bmc.Secret.from_bytes(sealing.open(
            self.keyring, blob, boot_id=boot_id, purpose='bmc'))

    def _accept(self, opened: envelope.Opened, attempt: Attempt) -> Outcome:
        header = opened.header
        credential = attempt.credential
        if attempt.again and not attempt.replay and holds(
                credential, State.APPLIED, header.message_id):
            # Applied before, but the ack was lost with the connection
            # (a broker node or the consumer went away): acknowledge it
            # again, apply nothing twice.
            LOG.info('message %s of boot %s was applied before; '
                     'redelivery acknowledged', header.message_id,
                     credential.boot_id)
            attempt.applied_before = True
            return Outcome(APPLIED, applied=Applied(matched_by='redelivery'))
        if attempt.again:
            self._check_claim(credential, header.message_id, attempt.owned)
        if not (attempt.replay or holds(credential, State.RECEIVED,
                                        header.message_id)):
            self._check_expiry(credential)
        with metrics.step('receive'):
            if not self.credentials.receive(credential, header.message_id,
                                            again=attempt.again,
                                            replay=attempt.replay):
                if credential.message_id == header.message_id:
                    # A ramdisk whose confirm was lost publishes again;
                    # so does an attacker holding the credential.
                    raise ReplayedBoot(
                        f'boot {credential.boot_id} sent message '
                        f'{header.message_id} again (a second publish, '
                        f'not a redelivery by the broker); the first one '
                        f'is the one applied')
                raise ReplayedBoot(
                    f'boot {credential.boot_id} already sent another '
                    f'message; {header.message_id} is refused')
        attempt.owned = True
        if opened.error is not None:
            raise RamdiskError(
                f'the ramdisk of boot {credential.boot_id} reported: '
                f'{opened.error.get("stage", "?")}: '
                f'{str(opened.error.get("message", ""))[:300]}')
        with metrics.step('schema'):
            problems = inventory.problems({'inventory': opened.inventory,
                                           'plugin_data': opened.plugin_data})
        if problems:
            raise inventory.InvalidDocument(problems[:5])
        macs = {i.get('mac_address') for i in
                opened.inventory.get('interfaces', [])}
        if credential.mac and credential.mac not in macs:
            raise MacMismatch(f'the credential was issued for '
                              f'{credential.mac}, which this inventory does '
                              f'not have')
        with metrics.step('unseal'):
            bmc_secret = self._unseal_bmc(opened, credential)
        context = Context(boot_id=credential.boot_id,
                          message_id=header.message_id, boot=attempt.boot,
                          inventory=opened.inventory,
                          plugin_data=opened.plugin_data,
                          replay=attempt.replay, bmc_secret=bmc_secret)
        result = Applied()
        place = self.limit.slot(lambda: self.store.touch(
            credential.boot_id, header.message_id)) if self.limit \
            else contextlib.nullcontext()
        with place, metrics.step('apply'):
            for applier in self.appliers:
                one = applier.apply(context)
                result.node = one.node or result.node
                result.created = result.created or one.created
                result.matched_by = one.matched_by or result.matched_by
                result.changes += one.changes
        # A MAC-bound boot's node is known now: "credentials list --node"
        # finds it.
        # Not user_deleted: the revoker records that when the user is
        # gone, which may be after this (and must survive a crash here).
        self.store.transition(credential.boot_id, State.APPLIED,
                              [State.RECEIVED],
                              node=None if credential.node else result.node)
        return Outcome(APPLIED, node=result.node, applied=result)
