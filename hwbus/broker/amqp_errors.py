"""What a failed AMQP connection means to an operator, in one line.

kombu and py-amqp raise a handful of exception types for "cannot log in",
"nobody listens" and "the certificate is wrong"; the consumer's reconnect
loop and hwbus-manage's dead-letter commands say which it is and which
option fixes it, instead of a class name or a traceback.
"""

from __future__ import annotations

import ssl

import amqp.exceptions
import kombu.exceptions


def describe(exc: BaseException, user_option: str = '[broker] '
             'consumer_user and consumer_password') -> str:
    """One line naming the cause and what to change."""
    exc = unwrap(exc)
    if isinstance(exc, amqp.exceptions.AccessRefused):
        return (f'the broker refused the login ({_short(exc)}): check '
                f'{user_option} ("hwbus-manage setup-broker" sets the '
                f'consumer\'s on the broker)')
    if isinstance(exc, amqp.exceptions.NotAllowed):
        return (f'the broker refused the virtual host ({_short(exc)}): '
                f'check the vhost in [consumer] broker_urls and [broker] '
                f'vhost')
    if isinstance(exc, ssl.SSLError):
        return (f'TLS with the broker failed ({_short(exc)}): check '
                f'[broker] ca_file and the host names in [consumer] '
                f'broker_urls')
    if isinstance(exc, ConnectionRefusedError | TimeoutError |
                  ConnectionResetError):
        return (f'cannot reach the broker ({type(exc).__name__}): check '
                f'[consumer] broker_urls and that RabbitMQ runs')
    if isinstance(exc, OSError) and exc.strerror:
        return (f'cannot reach the broker ({exc.strerror}): check '
                f'[consumer] broker_urls')
    return f'{type(exc).__name__}: {_short(exc)}'


def unwrap(exc: BaseException) -> BaseException:
    """kombu wraps the transport's error (OperationalError): its cause."""
    if isinstance(exc, kombu.exceptions.OperationalError) and \
            exc.__cause__ is not None:
        return exc.__cause__
    return exc


def is_connection_error(exc: BaseException) -> bool:
    """A broker or network failure (not a bug in hwbus)."""
    exc = unwrap(exc)
    return isinstance(exc, OSError | kombu.exceptions.KombuError |
                      amqp.exceptions.AMQPError)


def is_login_refused(exc: BaseException) -> bool:
    return isinstance(unwrap(exc), amqp.exceptions.AccessRefused)


def _short(exc: BaseException) -> str:
    text = getattr(exc, 'reply_text', None) or str(exc)
    return text.splitlines()[0][:200] if text else type(exc).__name__
