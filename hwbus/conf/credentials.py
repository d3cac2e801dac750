"""[credentials]: the per-boot broker users and their keys."""

from oslo_config import cfg

GROUP = cfg.OptGroup('credentials', title='Per-boot credentials',
                     help='How long a boot\'s credential lives and what it '
                          'may do.')

OPTS = [
    cfg.IntOpt('ttl', default=3600, min=60,
               help='Seconds a credential stays valid when it is never '
                    'used. It must cover the boot, the collection and '
                    'the publish retries of a slow machine.'),
    cfg.IntOpt('max_connections', default=2, min=0,
               help='Broker connections one per-boot user may hold at '
                    'once (a RabbitMQ user limit); 0 sets no limit. 2 '
                    'lets a reconnect overlap a dying connection.'),
    cfg.IntOpt('max_outstanding', default=1000, min=1,
               help='Credentials issued and not yet used or expired, at '
                    'most. Issuing beyond this fails, so a flood of boot '
                    'requests cannot exhaust the broker\'s users.'),
    cfg.IntOpt('publish_deadline', default=900, min=10,
               help='Seconds the ramdisk keeps retrying its publish '
                    '(hwbus.deadline) before it gives up.'),
    cfg.IntOpt('sweep_interval', default=60, min=1,
               help='Seconds between two full sweeps by the consumer (also '
                    '"hwbus-manage credentials sweep"): stray broker users '
                    'of the per-boot form are deleted; expired credentials '
                    'lose their users at their expiry, between sweeps.'),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_group(GROUP)
    conf.register_opts(OPTS, group=GROUP)
