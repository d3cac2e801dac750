"""[database]: the SQL store shared by the consumer and the issuers."""

from oslo_config import cfg

GROUP = cfg.OptGroup('database', title='Store',
                     help='Where credentials and inventories are kept.')

OPTS = [
    cfg.StrOpt('connection', secret=True,
               default='sqlite:////var/lib/hwbus/hwbus.sqlite',
               help='SQLAlchemy URL. SQLite suits one host; use '
                    'PostgreSQL (postgresql+psycopg://user:pw@host/db) '
                    'when consumers or boot servers run on several hosts.'),
    cfg.BoolOpt('auto_upgrade', default=True,
                help='Bring the schema up to date when a service starts. '
                     'Turn off when several hosts share one database and '
                     'an operator runs "hwbus-manage db upgrade" once.'),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_group(GROUP)
    conf.register_opts(OPTS, group=GROUP)
