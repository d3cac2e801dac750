"""Console entry points: thin layers over the library.

Every command tells the operator what happened in one line: an error it
can name (a missing configuration, a refused login, an unreachable
server, a store not migrated) is printed as ``<command>: <cause>: <what
fixes it>`` with a non-zero exit status; a traceback appears only with
``--debug``. Nothing here imports beyond the standard library at module
level: hwbus-collect and hwbus-ramdisk run in the ramdisk.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

DEFAULT_CONFIG = '/etc/hwbus/hwbus.conf'


def prog() -> str:
    return os.path.basename(sys.argv[0]) or 'hwbus'


def setup_service(argv: list[str] | None, cli_opts: list | None = None,
                  require_config: bool = True):
    """oslo.config + oslo.log the way every hwbus server command wants.

    Log lines go to standard error (standard output is for what an
    operator asked a command to print), libraries stay quiet. Without a
    configuration file a service would run on defaults it was never
    given (a store in /var/lib/hwbus, guest on localhost): it refuses.
    """
    from oslo_config import cfg
    from oslo_log import log

    from hwbus import text, version
    from hwbus.conf import CONF

    log.register_options(CONF)
    CONF.set_default('use_stderr', True)
    log.set_defaults(default_log_levels=[
        *log.get_default_log_levels(), 'alembic=WARN', 'kombu=WARN',
        'amqp=WARN', 'openstack=WARN', 'keystoneauth=WARN'])
    for opt in cli_opts or []:
        CONF.register_cli_opt(opt)
    try:
        CONF(argv if argv is not None else sys.argv[1:], project='hwbus',
             version=version.version_string())
    except cfg.ConfigFilesNotFoundError as exc:
        raise SystemExit(f'{prog()}: configuration file not found: '
                         f'{", ".join(exc.config_files)}: give an existing '
                         f'file with --config-file') from None
    except (cfg.Error, ValueError) as exc:
        raise SystemExit(f'{prog()}: configuration: {exc}') from None
    if require_config and not (CONF.config_file or CONF.config_dir):
        raise SystemExit(
            f'{prog()}: no configuration file: create {DEFAULT_CONFIG} '
            f'(start from etc/hwbus/hwbus.conf.sample) or give '
            f'--config-file')
    log.setup(CONF, 'hwbus')
    # Messages and requests carry text from the provisioning network:
    # every log line stays one line whatever they hold.
    text.install_log_filter()
    return CONF


def explain(exc: BaseException) -> str | None:
    """The one line an operator needs for an error hwbus knows, or None
    for one it does not (a bug: that gets its traceback)."""
    from hwbus.errors import HwbusError

    if isinstance(exc, HwbusError):
        return str(exc)
    from hwbus.store.api import StoreNotReady

    if isinstance(exc, StoreNotReady):
        return str(exc)
    # Here rather than at the top: ssl costs hwbus-collect 7 ms to load.
    import ssl

    try:
        import kombu.exceptions

        from hwbus.broker import amqp_errors
    except ImportError:  # pragma: no cover - the ramdisk has no kombu
        return None
    exc = amqp_errors.unwrap(exc)
    if isinstance(exc, ConnectionError | TimeoutError | ssl.SSLError |
                  kombu.exceptions.KombuError) or \
            type(exc).__module__.startswith('amqp'):
        return amqp_errors.describe(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return f'{exc.filename or "-"}: {exc.strerror}'
    return None


def guarded(main: Callable[..., int]) -> Callable[..., int]:
    """Run a command's main: known errors as one line and exit status 1,
    a traceback only with --debug (or for an error nobody foresaw)."""

    def run(*args: Any, **kwargs: Any) -> int:
        try:
            return main(*args, **kwargs)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:
            from hwbus.conf import CONF

            line = explain(exc)
            if line is None or getattr(CONF, 'debug', False):
                raise
            print(f'{prog()}: {line}', file=sys.stderr)
            return 1

    run.__doc__ = main.__doc__
    run.__name__ = main.__name__
    return run
