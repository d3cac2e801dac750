"""Console entry points: thin layers over the library."""


def setup_service(argv: list[str] | None, cli_opts: list | None = None):
    """oslo.config + oslo.log the way every hwbus server command wants.

    Log lines go to standard error (standard output is for what an
    operator asked a command to print), libraries stay quiet.
    """
    import sys

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
    CONF(argv if argv is not None else sys.argv[1:], project='hwbus',
         version=version.version_string())
    log.setup(CONF, 'hwbus')
    # Messages and requests carry text from the provisioning network:
    # every log line stays one line whatever they hold.
    text.install_log_filter()
    return CONF
