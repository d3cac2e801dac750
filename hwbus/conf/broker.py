"""[broker]: where RabbitMQ is and how hwbus's objects on it are named."""

from oslo_config import cfg

GROUP = cfg.OptGroup('broker', title='RabbitMQ broker',
                     help='The broker the ramdisks publish to and the '
                          'consumer reads from.')

OPTS = [
    cfg.ListOpt('management_urls', default=['http://127.0.0.1:15672'],
                deprecated_opts=[cfg.DeprecatedOpt('management_url',
                                                   group='broker')],
                help='RabbitMQ management HTTP API, one URL per cluster '
                     'node. Per-boot users are created and deleted '
                     'through it; a node that cannot be reached is '
                     'skipped for the next.'),
    cfg.StrOpt('admin_user', default='guest',
               help='Broker user with the "administrator" tag, used only '
                    'on the management API to create and delete per-boot '
                    'users and to set up the topology. RabbitMQ has no '
                    'narrower tag that may manage users.'),
    cfg.StrOpt('admin_password', default='guest', secret=True,
               help='Password of admin_user.'),
    cfg.StrOpt('management_ca_file',
               help='CA bundle to verify an https management URL against. '
                    'Unset uses the system CAs.'),
    cfg.StrOpt('vhost', default='/',
               help='Virtual host holding the exchanges and queues.'),
    cfg.ListOpt('public_urls', default=['amqp://127.0.0.1:5672/'],
                help='Broker URLs as the ramdisks reach them, without user '
                     'or password (amqp:// or amqps://, the vhost as '
                     'path). Each boot gets all of them and fails over in '
                     'order.'),
    cfg.StrOpt('ca_file',
               help='PEM file of the CA that signed the broker\'s AMQPS '
                    'certificate. It is put on each boot\'s kernel command '
                    'line (hwbus.ca) so the ramdisk refuses any other '
                    'broker; keep it to one small (EC) certificate. The '
                    'consumer verifies amqps:// [consumer] broker_urls '
                    'against it too.'),
    cfg.StrOpt('exchange', default='hwbus.inventory',
               help='Topic exchange the ramdisks publish to.'),
    cfg.StrOpt('queue', default='hwbus.inventory',
               help='Quorum queue the consumer reads.'),
    cfg.StrOpt('dead_exchange', default='hwbus.dead',
               help='Exchange that dead letters go to.'),
    cfg.StrOpt('dead_queue', default='hwbus.inventory.dead',
               help='Queue that keeps dead letters for "hwbus-manage dead".'),
    cfg.IntOpt('delivery_limit', default=20, min=1,
               help='Deliveries of one message before the quorum queue '
                    'dead-letters it (reason "delivery_limit"). Transient '
                    'failures use it up; raise it to ride out longer '
                    'Ironic outages.'),
    cfg.StrOpt('consumer_user', default='hwbus-consumer',
               help='The consumer\'s own broker user. It may read the '
                    'inventory queues and publish dead letters and '
                    'replays, nothing else.'),
    cfg.StrOpt('consumer_password', secret=True,
               help='Password of consumer_user. "hwbus-manage '
                    'setup-broker" sets it on the broker.'),
    cfg.IntOpt('max_message_size', default=1024 * 1024, min=4096,
               help='Largest inventory in bytes, after decompression. '
                    'Checked by the ramdisk before sending and by the '
                    'consumer before and after decompression. Set the '
                    'same max_message_size in rabbitmq.conf, so that the '
                    'broker refuses larger messages before anyone reads '
                    'them ("hwbus-manage setup-broker" reminds you).'),
    cfg.IntOpt('queue_max_bytes', default=512 * 1024 * 1024, min=1024 * 1024,
               help='Bytes the inventory queue may hold (a policy set by '
                    '"hwbus-manage setup-broker"). Beyond, the broker '
                    'refuses new messages (the ramdisks retry until their '
                    'deadline); nothing accepted is dropped.'),
    cfg.IntOpt('queue_max_messages', default=100_000, min=100,
               help='Messages the inventory queue may hold (a policy, '
                    'with queue_max_bytes: bytes count bodies only).'),
    cfg.IntOpt('dead_queue_max_messages', default=100_000, min=100,
               help='Messages the dead-letter queue may hold. A dead '
                    'letter of an unverified message keeps no body, so '
                    'this, not the bytes, bounds what a flood leaves.'),
    cfg.IntOpt('dead_queue_max_bytes', default=256 * 1024 * 1024,
               min=1024 * 1024,
               help='Bytes the dead-letter queue may hold. Beyond, the '
                    'consumer keeps a message it would dead-letter in the '
                    'inventory queue until room is made ("hwbus-manage '
                    'dead purge").'),
    cfg.FloatOpt('request_timeout', default=10.0, min=0.1,
                 help='Seconds to wait for one management API request.'),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_group(GROUP)
    conf.register_opts(OPTS, group=GROUP)
