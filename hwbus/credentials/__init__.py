"""Per-boot credentials: a broker user and a key pair for one boot.

``issue()`` writes the store record first and creates the broker user
second, so a broker user never exists without a record; a crash in
between leaves a record that expires and is swept. Every state change is a
conditional UPDATE (see hwbus.store), and the broker user is deleted after
the state changed, so a consumer on another host never sees a credential
that is revoked in the store but still usable on the broker for long:
the sweeper deletes the users such a crash leaves behind.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import re
import secrets
import threading
from collections.abc import Iterable

from hwbus import bootparams, keys, macs
from hwbus.broker.management import Management
from hwbus.broker.topology import Topology
from hwbus.credentials.revoker import Revoker
from hwbus.errors import PermanentError
from hwbus.store import Credential, State, Store
from hwbus.store.api import utcnow

LOG = logging.getLogger(__name__)

USER_PREFIX = 'boot-'
# issued_by of the credentials the (unauthenticated) boot server issues.
BOOTSERVER = 'bootserver'
# Only names of this form are ever swept: the consumer's own user, the
# administrator and anything else an operator made are never touched.
BOOT_USER_RE = re.compile(r'^boot-[0-9a-f]{20}$')


class CredentialError(PermanentError):
    reason = 'credential'


class BadMac(CredentialError):
    reason = 'bad-mac'


class TooManyForMac(CredentialError):
    reason = 'too-many-for-mac'


class NoSealKey(CredentialError):
    reason = 'no-seal-key'


class UnknownCredential(CredentialError):
    reason = 'unknown-credential'


def normalize_mac(mac: str) -> str:
    """aa:bb:cc:dd:ee:ff, from the forms operators and firmware write.

    The rule is hwbus.macs, the one the ramdisk's collectors use too.
    """
    text = macs.parse(mac)
    if text is None:
        raise BadMac(f'{mac[:40]!r} is not a MAC address')
    if macs.is_multicast(text):
        raise BadMac(f'{text} is a multicast address, not a NIC\'s')
    if not macs.is_nic_address(text):
        raise BadMac(f'{text} is no NIC\'s address')
    return text


@dataclasses.dataclass(frozen=True)
class Issued:
    """A new credential and the parameters that carry it to the ramdisk.

    ``params`` holds the password and the private key: print them for the
    machine that boots, never log them.
    """

    credential: Credential
    params: bootparams.BootParams

    @property
    def cmdline(self) -> str:
        return self.params.render()


@dataclasses.dataclass
class SweepResult:
    expired: list[str] = dataclasses.field(default_factory=list)
    finished: list[str] = dataclasses.field(default_factory=list)
    orphans: list[str] = dataclasses.field(default_factory=list)


class Credentials:
    """Issue, receive, revoke and sweep credentials on one broker + store."""

    def __init__(self, store: Store, management: Management,
                 topology: Topology, public_urls: Iterable[str], *,
                 ca: str | None = None, max_connections: int = 2,
                 max_outstanding: int = 1000,
                 publish_deadline: float = 900.0,
                 seal_key: bytes | None = None) -> None:
        self.store = store
        self.management = management
        self.topology = topology
        self.public_urls = list(public_urls)
        if not self.public_urls:
            raise ValueError('at least one public broker URL is needed')
        for url in self.public_urls:
            # What the ramdisk would refuse (an unbracketed IPv6 address,
            # a zone id) fails here, at start, instead of on every boot.
            try:
                bootparams.check_url(url)
            except bootparams.BadBootParams as exc:
                raise ValueError(f'[broker] public_urls: {exc}') from None
        self.ca = ca
        self.max_connections = max_connections
        self.max_outstanding = max_outstanding
        self.publish_deadline = publish_deadline
        # The consumer's X25519 public key: boots that mint secrets (a BMC
        # password) seal them to it.
        self.seal_key = seal_key
        self._lock = threading.Lock()
        # The consumer's batching revoker (hwbus.credentials.revoker),
        # set by the consumer; other users of this class delete at once.
        self.revoker: Revoker | None = None

    # -- issuing --------------------------------------------------------
    def issue(self, mac: str | None = None, node: str | None = None,
              ttl: float = 3600, after: str = 'poweroff',
              issued_by: str = 'manage', lldp: float = 0.0,
              per_mac: int = 0, client: str | None = None,
              bmc: str | None = None) -> Issued:
        """A credential for the next boot of ``mac`` and/or ``node``.

        Credentials the boot server issues (``issued_by='bootserver'``,
        asked for by anyone on the provisioning network) are bounded so
        that nobody can lock a real machine out:

        * ``max_outstanding`` unused ones at most: at the cap the oldest
          is withdrawn (a flood churns credentials while it lasts, and
          leaves nothing locked when it stops); an operator's are never
          counted nor withdrawn;
        * one unused credential per MAC and ``client`` address: a machine
          looping in PXE replaces its own;
        * ``per_mac`` unused ones per MAC from other addresses: beyond,
          the new request is refused, never an earlier one withdrawn, so
          requests for a victim's MAC cannot cancel the victim's boot.

        ``bmc`` (hwbus.bmc=): "create" asks the ramdisk to create the
        hwbus BMC user and seal its password to ``seal_key``; "keep" to
        report the existing one only (hwbus.bmc.issue_mode decides).
        """
        mac = normalize_mac(mac) if mac else None
        if after not in bootparams.AFTER_ACTIONS:
            raise CredentialError(f'after must be one of '
                                  f'{", ".join(bootparams.AFTER_ACTIONS)}')
        if bmc is not None and bmc not in bootparams.BMC_MODES:
            raise CredentialError(f'bmc must be one of '
                                  f'{", ".join(bootparams.BMC_MODES)}')
        if bmc == 'create' and self.seal_key is None:
            raise NoSealKey('a BMC account needs the consumer\'s sealing '
                            'key: set [sealing] private_key_file or '
                            'public_key ("hwbus-manage seal-key create")')
        seed, public = keys.new_keypair()
        password = keys.b64encode(secrets.token_bytes(32))
        now = utcnow()
        credential = Credential(
            boot_id=secrets.token_hex(16),
            username=USER_PREFIX + secrets.token_hex(10),
            public_key=public, mac=mac, node=node, state=State.ISSUED.value,
            created_at=now, changed_at=now,
            expires_at=now + datetime.timedelta(seconds=ttl),
            issued_by=issued_by, issued_to=client, bmc=bmc)
        if issued_by == BOOTSERVER:
            # Count and record as one step, or concurrent requests overrun
            # the limits (one boot server process; several share them
            # only approximately).
            with self._lock:
                if mac and per_mac:
                    self._make_room_for_mac(mac, per_mac, client)
                self._make_room()
                self.store.add(credential)
        else:
            self.store.add(credential)
        try:
            self._create_user(credential.username, password)
        except Exception:
            self._delete_user_quietly(credential.username)
            self.store.delete(credential.boot_id)
            raise
        LOG.info('issued credential for boot %s (user %s, mac %s, node %s, '
                 'expires %s)', credential.boot_id, credential.username,
                 mac or '-', node or '-', credential.expires_at)
        deadline = min(self.publish_deadline, ttl)
        params = bootparams.BootParams(
            urls=self._urls(credential.username, password),
            boot_id=credential.boot_id, key=seed, ca=self.ca, after=after,
            deadline=deadline, exchange=self.topology.exchange, lldp=lldp,
            bmc=bmc, seal=keys.b64encode(self.seal_key)
            if bmc and self.seal_key else None)
        return Issued(credential, params)

    def _make_room_for_mac(self, mac: str, per_mac: int,
                           client: str | None) -> None:
        unused = self.store.list([State.ISSUED], mac=mac,
                                 issued_by=BOOTSERVER)
        others = 0
        for credential in unused:
            if client is not None and credential.issued_to == client:
                if self.withdraw(credential, State.REVOKED):
                    LOG.info('replaced the unused credential of boot %s for '
                             '%s: %s asked again', credential.boot_id, mac,
                             client)
            else:
                others += 1
        if others >= per_mac:
            raise TooManyForMac(
                f'{others} unused credentials for {mac} are outstanding '
                f'(asked for from other addresses); retry when they are '
                f'used or expire')

    def _make_room(self) -> None:
        """At the cap, withdraw the oldest unused boot-server credential."""
        outstanding = self.store.count([State.ISSUED], issued_by=BOOTSERVER)
        if outstanding < self.max_outstanding:
            return
        excess = outstanding - self.max_outstanding + 1
        oldest = self.store.list([State.ISSUED], issued_by=BOOTSERVER,
                                 oldest_first=True, limit=excess)
        for credential in oldest:
            if self.withdraw(credential, State.REVOKED):
                LOG.warning('withdrew the oldest unused credential (boot %s '
                            'for %s): %d boot-server credentials are '
                            'outstanding, the limit ([credentials] '
                            'max_outstanding)', credential.boot_id,
                            credential.mac, self.max_outstanding)

    def _urls(self, user: str, password: str) -> list[str]:
        first, *rest = self.public_urls
        scheme, sep, location = first.partition('://')
        return [f'{scheme}{sep}{user}:{password}@{location}', *rest]

    def _create_user(self, user: str, password: str) -> None:
        m, t = self.management, self.topology
        m.put_user(user, password)
        m.set_permissions(user, **t.boot_permissions())
        m.set_topic_permissions(user, **t.boot_topic_permissions())
        if self.max_connections:
            m.set_user_limit(user, 'max-connections', self.max_connections)

    def _delete_user_quietly(self, user: str) -> None:
        try:
            self.management.delete_user(user)
        except Exception as exc:  # the sweeper will retry
            LOG.warning('could not delete broker user %s: %s', user, exc)

    # -- using ----------------------------------------------------------
    def lookup(self, username: str) -> Credential:
        """The credential of a per-boot broker user, whatever its state."""
        credential = self.store.by_username(username)
        if credential is None:
            raise UnknownCredential(f'no credential for broker user '
                                    f'{username}')
        return credential

    def receive(self, credential: Credential, message_id: str,
                again: bool = False, replay: bool = False) -> bool:
        """Mark the boot's message received and have its broker user
        deleted (by the revoker when there is one, else at once).

        :param again: this delivery may be the received message seen
            again (a broker redelivery, the worker's own retry, a replay).
            Only then does the same message id pass: the sender chooses
            message ids, so a second publish under the first one's id (a
            copy, or another body) is another message.
        :param replay: an operator's replay, which may also reopen a boot
            whose message was refused (``refused``); nothing else may:
            a copy that looked the credential up before the refusal was
            recorded must not pass.
        :returns: True for the first receipt of any message for this boot,
            or the same message again; False when another message was
            received for this boot before.
        """
        # EXPIRED is accepted too, for an operator's replay: the pipeline
        # refuses messages received after the expiry before this.
        allowed = [State.ISSUED, State.EXPIRED]
        if replay:
            allowed.append(State.REFUSED)
        won = self.store.transition(credential.boot_id, State.RECEIVED,
                                    allowed, message_id=message_id)
        if not won:
            if not again:
                return False
            current = self.store.get(credential.boot_id)
            if current is None or current.message_id != message_id or \
                    current.state not in (State.RECEIVED.value,
                                          State.APPLIED.value):
                # Another message's, or this one's refused (a replay
                # reopens that above).
                return False
            if current.user_deleted_at is not None:
                return True
        # The transition above is the gate: from here on any other
        # message of this credential is refused, whether its user exists
        # or not. With a revoker (the consumer's) the user goes within
        # its bounded delay, off this message's path; the revoker, or
        # the sweeper after a crash, records the deletion.
        if self.revoker is not None:
            self.revoker.submit(credential.boot_id, credential.username)
        else:
            self.delete_user(credential)
        return True

    def withdraw(self, credential: Credential, to: State) -> bool:
        """End an unused credential (``issued`` → ``to``) and delete its
        broker user; False when it was not ``issued`` any more."""
        if not self.store.transition(credential.boot_id, to,
                                     [State.ISSUED]):
            return False
        self.delete_user(credential)
        return True

    def delete_user(self, credential: Credential) -> None:
        """Delete the broker user (closing its connections) and note it."""
        self.management.delete_user(credential.username)
        self.store.mark_user_deleted(credential.boot_id)

    def revoke(self, boot_id: str) -> Credential:
        """Withdraw a credential by hand; its connections close at once."""
        credential = self.store.get(boot_id)
        if credential is None:
            raise UnknownCredential(f'no credential for boot {boot_id}')
        self.store.transition(boot_id, State.REVOKED,
                              [State.ISSUED, State.RECEIVED])
        self.delete_user(credential)
        LOG.info('revoked credential for boot %s (user %s)', boot_id,
                 credential.username)
        return self.store.get(boot_id) or credential

    # -- sweeping -------------------------------------------------------
    def sweep(self, now: datetime.datetime | None = None,
              orphans: bool = True) -> SweepResult:
        """Expire unused credentials and delete every stray boot user.

        Three kinds of leftovers: issued credentials past their expiry;
        used or revoked ones whose user deletion did not finish; and,
        with ``orphans`` (it lists every broker user), broker users of the
        per-boot form with no live record at all.
        """
        result = SweepResult()
        for credential in self.store.expired(now):
            if self.store.transition(credential.boot_id, State.EXPIRED,
                                     [State.ISSUED]):
                self.delete_user(credential)
                result.expired.append(credential.boot_id)
                LOG.info('credential for boot %s expired unused; deleted '
                         'broker user %s', credential.boot_id,
                         credential.username)
        for credential in self.store.user_not_deleted():
            self.delete_user(credential)
            result.finished.append(credential.boot_id)
        if not orphans:
            return result
        live = self.store.live_usernames()
        for user in self.management.users():
            name = user['name']
            if BOOT_USER_RE.match(name) and name not in live:
                # Re-read: it may have been issued since we listed.
                if name in self.store.live_usernames():
                    continue
                if self.management.delete_user(name):
                    result.orphans.append(name)
                    LOG.info('deleted broker user %s: no live credential',
                             name)
        return result
