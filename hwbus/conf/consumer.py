"""[consumer]: the daemon that verifies inventories and applies them."""

from oslo_config import cfg

GROUP = cfg.OptGroup('consumer', title='Consumer daemon',
                     help='hwbus-consumer: verify, revoke, apply, ack.')

OPTS = [
    cfg.ListOpt('broker_urls', default=['amqp://127.0.0.1:5672/'],
                help='Broker URLs for the consumer, without user or '
                     'password (those are [broker] consumer_user and '
                     'consumer_password). Several URLs fail over in '
                     'order. With amqps:// (for all of them, then) the '
                     'broker must present a certificate for the URL\'s '
                     'host signed by [broker] ca_file, or by a system CA '
                     'when that is unset.'),
    cfg.IntOpt('workers', default=16, min=1,
               help='Messages processed at once. Most of a worker\'s time '
                    'is spent waiting on Ironic, whose share is bounded '
                    'by ironic_concurrency; the rest (verification, the '
                    'store) takes about a millisecond per message.'),
    cfg.IntOpt('ironic_concurrency', default=16, min=1,
               help='Ceiling of the applies that reach Ironic at once. '
                    'Below it the consumer finds by itself how many Ironic '
                    'sustains: one more per round while Ironic\'s answers '
                    'stay within ironic_latency_tolerance of their '
                    'fastest, fewer as soon as they slow down or Ironic '
                    'answers 5xx, 409, 429 or times out '
                    '(hwbus_ironic_concurrency_limit). workers bounds it '
                    'too.'),
    cfg.FloatOpt('ironic_latency_tolerance', default=2.0, min=1.1,
                 help='How many times slower than its fastest recent '
                      'answers Ironic may become before the consumer sends '
                      'it fewer applies at once. Lower spares Ironic\'s '
                      'other users more, higher drains a burst faster.'),
    cfg.IntOpt('heartbeat', default=30, min=0,
               help='AMQP heartbeat in seconds: a broker connection that '
                    'stays silent for twice this long (a cut network, a '
                    'frozen node) is dropped and another broker URL is '
                    'tried. 0 turns heartbeats off.'),
    cfg.IntOpt('prefetch', default=32, min=1,
               help='Unacknowledged messages the broker hands this '
                    'consumer at most (basic.qos). At least workers, so '
                    'that none waits for the broker; each may take up to '
                    '[broker] max_message_size of memory.'),
    cfg.ListOpt('appliers', default=['inspection'],
                help='Appliers to run for each verified inventory, in '
                     'order, by entry-point name (hwbus.appliers): '
                     '"inspection" (Ironic\'s continue_inspection), '
                     '"enroll" (find or create the node and set it up '
                     'directly), "null" (benchmarks).'),
    cfg.FloatOpt('retry_window', default=600.0, min=0.0,
                 help='Seconds a worker keeps retrying one message while '
                      'Ironic or the store is unavailable before returning '
                      'it to the queue (which counts a delivery). Must stay '
                      'below RabbitMQ\'s consumer_timeout (30 min).'),
    cfg.FloatOpt('apply_lease', default=120.0, min=1.0,
                 help='Seconds a redelivered message waits while the '
                      'worker that received it first (maybe a consumer '
                      'that lost its broker connection) may still be '
                      'applying it; a worker renews this with every '
                      'retry. Longer than one apply (Ironic calls) takes; '
                      'it bounds recovery after a consumer is killed '
                      'mid-message.'),
    cfg.IntOpt('internal_attempts', default=3, min=1,
               help='Attempts at a message that fails in a way no error '
                    'family foresaw (a bug, or input nobody expected) '
                    'before it is dead-lettered "internal-error". Its '
                    'traceback is logged once.'),
    cfg.FloatOpt('max_backoff', default=30.0, min=0.1,
                 help='Longest pause between two retries of one message.'),
    cfg.FloatOpt('shutdown_timeout', default=60.0, min=0.0,
                 help='On SIGTERM, seconds to let in-flight messages '
                      'finish; the rest are returned to the queue.'),
    cfg.StrOpt('metrics_host', default='127.0.0.1',
               help='Address of the Prometheus metrics endpoint.'),
    cfg.PortOpt('metrics_port', default=9464,
                help='Port of the Prometheus metrics endpoint; 0 turns it '
                     'off.'),
    cfg.IntOpt('revoke_batch_size', default=100, min=1,
               help='Broker users the consumer deletes in one management '
                    'API call at most. A used credential\'s user is '
                    'deleted by a background thread, in batches, after '
                    'the store recorded the message as received (which '
                    'already refuses any further message of it).'),
    cfg.FloatOpt('revoke_max_delay', default=5.0, min=0.1,
                 help='Seconds a used credential\'s broker user may wait '
                      'for its deletion. When the oldest waits longer '
                      '(the broker deletes users more slowly than '
                      'messages arrive, or its management API is down), '
                      'workers wait before taking the next message, so '
                      'the user of a received credential lives about this '
                      'long at most while the management API answers '
                      '(hwbus_revoke_delay_seconds).'),
    cfg.BoolOpt('archive', default=True,
                help='Keep every applied inventory in the store, for '
                     '"hwbus-manage replay" and "history".'),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_group(GROUP)
    conf.register_opts(OPTS, group=GROUP)
