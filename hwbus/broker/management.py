"""RabbitMQ's management HTTP API, as far as hwbus needs it.

Users, permissions, limits and connections have no AMQP operations, so
credentials are managed here. Errors name the operation and the object,
never the password: requests carries the credentials in a header, not in
the URL, and request bodies are never echoed.
"""

from __future__ import annotations

import logging
import urllib.parse
from typing import Any

import requests

from hwbus.errors import PermanentError, TransientError

LOG = logging.getLogger(__name__)


class ManagementError(PermanentError):
    """The broker refused a request for a reason retrying will not fix."""

    reason = 'broker-refused'


class ManagementUnavailable(TransientError):
    """The management API did not answer, or answered 5xx."""

    reason = 'broker-unavailable'


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe='')


class Management:
    """The management API of one broker (or cluster), as one administrator.

    A cluster answers the same on every node, so several URLs may be
    given: a call that cannot reach one node goes to the next, and the
    node that answered is tried first from then on.
    """

    def __init__(self, url: str | list[str], user: str, password: str,
                 vhost: str = '/', timeout: float = 10.0,
                 verify: bool | str = True) -> None:
        urls = [url] if isinstance(url, str) else list(url)
        if not urls:
            raise ValueError('at least one management API URL is needed')
        self.urls = [u.rstrip('/') for u in urls]
        self.vhost = vhost
        self.timeout = timeout
        self._http = requests.Session()
        self._http.auth = (user, password)
        self._http.verify = verify
        self._http.headers['content-type'] = 'application/json'
        # No proxy look-up from the environment on every call: the
        # management API is a direct, internal endpoint.
        self._http.trust_env = False

    def close(self) -> None:
        self._http.close()

    def send(self, method: str, path: str, body: Any = None,
             ok_status: tuple[int, ...] = (404,)) -> requests.Response:
        """One call; errors raised by family, except ``ok_status``
        (returned)."""
        what = f'{method} {path}'
        response = None
        for url in list(self.urls):
            try:
                response = self._http.request(method, url + path, json=body,
                                              timeout=self.timeout)
            except requests.ConnectionError as exc:
                LOG.warning('RabbitMQ management API at %s unreachable '
                            '(%s); trying the next', url,
                            type(exc).__name__)
                continue
            except requests.RequestException as exc:
                raise ManagementUnavailable(
                    f'RabbitMQ management API at {url}: {what} failed: '
                    f'{type(exc).__name__}') from None
            if url != self.urls[0]:
                self.urls.remove(url)
                self.urls.insert(0, url)
            break
        if response is None:
            raise ManagementUnavailable(
                f'RabbitMQ management API: {what} failed: no node of '
                f'{", ".join(self.urls)} answered')
        if response.status_code >= 500:
            raise ManagementUnavailable(
                f'RabbitMQ management API: {what} answered '
                f'{response.status_code}')
        if response.status_code >= 400 and response.status_code not in \
                ok_status:
            raise ManagementError(
                f'RabbitMQ management API: {what} answered '
                f'{response.status_code}: {_reason(response)}')
        return response

    def request(self, method: str, path: str, body: Any = None,
                ok_missing: bool = False) -> Any:
        """Call the API; its JSON answer, or None for a 404 when
        ok_missing (a 404 otherwise raises ManagementError)."""
        response = self.send(method, path, body)
        if response.status_code == 404:
            if ok_missing:
                return None
            raise ManagementError(
                f'RabbitMQ management API: {method} {path} answered 404: '
                f'{_reason(response)}')
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    # -- users ----------------------------------------------------------
    def put_user(self, name: str, password: str, tags: str = '') -> None:
        self.request('PUT', f'/api/users/{_q(name)}',
                     {'password': password, 'tags': tags})

    def delete_user(self, name: str) -> bool:
        """Delete a user; its open connections close at once.

        :returns: False when the user did not exist (already revoked).
        """
        response = self.send('DELETE', f'/api/users/{_q(name)}')
        return response.status_code != 404

    def delete_users(self, names: list[str]) -> None:
        """Delete several users in one call; their connections close.

        RabbitMQ's bulk delete stops at the first user that does not
        exist (400 ``no_such_user``) and brokers before 3.8 lack it
        (404): then each is deleted on its own, where a missing user is
        no error.
        """
        if not names:
            return
        if len(names) > 1:
            response = self.send('POST', '/api/users/bulk-delete',
                                 {'users': names}, ok_status=(400, 404))
            if response.status_code < 300:
                return
        for name in names:
            self.delete_user(name)

    def user_exists(self, name: str) -> bool:
        return self.request('GET', f'/api/users/{_q(name)}',
                            ok_missing=True) is not None

    def users(self) -> list[dict]:
        return self.request('GET', '/api/users?columns=name,tags')

    def set_permissions(self, user: str, configure: str, write: str,
                        read: str) -> None:
        self.request('PUT',
                     f'/api/permissions/{_q(self.vhost)}/{_q(user)}',
                     {'configure': configure, 'write': write, 'read': read})

    def set_topic_permissions(self, user: str, exchange: str, write: str,
                              read: str) -> None:
        self.request('PUT',
                     f'/api/topic-permissions/{_q(self.vhost)}/{_q(user)}',
                     {'exchange': exchange, 'write': write, 'read': read})

    def set_user_limit(self, user: str, name: str, value: int) -> None:
        self.request('PUT', f'/api/user-limits/{_q(user)}/{_q(name)}',
                     {'value': value})

    # -- topology -------------------------------------------------------
    def put_vhost(self) -> None:
        self.request('PUT', f'/api/vhosts/{_q(self.vhost)}', {})

    def put_exchange(self, name: str, kind: str,
                     arguments: dict | None = None) -> None:
        self.request('PUT',
                     f'/api/exchanges/{_q(self.vhost)}/{_q(name)}',
                     {'type': kind, 'durable': True, 'auto_delete': False,
                      'internal': False, 'arguments': arguments or {}})

    def put_queue(self, name: str, arguments: dict) -> None:
        self.request('PUT', f'/api/queues/{_q(self.vhost)}/{_q(name)}',
                     {'durable': True, 'auto_delete': False,
                      'arguments': arguments})

    def queue(self, name: str) -> dict | None:
        return self.request('GET',
                            f'/api/queues/{_q(self.vhost)}/{_q(name)}',
                            ok_missing=True)

    def bindings(self, exchange: str, queue: str) -> list[dict]:
        return self.request(
            'GET', f'/api/bindings/{_q(self.vhost)}/e/{_q(exchange)}'
                   f'/q/{_q(queue)}')

    def bind(self, exchange: str, queue: str, routing_key: str) -> None:
        if any(b['routing_key'] == routing_key
               for b in self.bindings(exchange, queue)):
            return
        self.request('POST',
                     f'/api/bindings/{_q(self.vhost)}/e/{_q(exchange)}'
                     f'/q/{_q(queue)}', {'routing_key': routing_key})

    def unbind(self, exchange: str, queue: str, routing_key: str) -> None:
        """Remove the binding with this key, if there is one."""
        for binding in self.bindings(exchange, queue):
            if binding['routing_key'] == routing_key:
                self.request('DELETE',
                             f'/api/bindings/{_q(self.vhost)}/e/'
                             f'{_q(exchange)}/q/{_q(queue)}/'
                             f'{_q(binding["properties_key"])}')

    def put_policy(self, name: str, pattern: str, definition: dict,
                   apply_to: str = 'queues', priority: int = 0) -> None:
        self.request('PUT', f'/api/policies/{_q(self.vhost)}/{_q(name)}',
                     {'pattern': pattern, 'definition': definition,
                      'apply-to': apply_to, 'priority': priority})

    def policy(self, name: str) -> dict | None:
        return self.request('GET',
                            f'/api/policies/{_q(self.vhost)}/{_q(name)}',
                            ok_missing=True)

    def overview(self) -> dict:
        return self.request('GET', '/api/overview')


def _reason(response: requests.Response) -> str:
    try:
        return str(response.json().get('reason', ''))[:200]
    except ValueError:
        return response.text[:200]
