"""[notifications]: what the consumer tells the rest of the cloud."""

from oslo_config import cfg

GROUP = cfg.OptGroup('notifications', title='Notifications',
                     help='oslo.messaging notifications: '
                          'baremetal.hwbus.inventory.applied, .rejected '
                          'and .hardware_changed.')

OPTS = [
    cfg.StrOpt('transport_url', secret=True,
               help='oslo.messaging transport for notifications, e.g. '
                    'rabbit://user:pw@host:5672/. Unset uses '
                    '[DEFAULT] transport_url.'),
    cfg.StrOpt('driver', default='noop',
               help='oslo.messaging notification driver: messagingv2 to '
                    'send, log to log them, noop for none.'),
    cfg.ListOpt('topics', default=['notifications'],
                help='Topics to send notifications to.'),
    cfg.StrOpt('publisher_id', default='hwbus-consumer',
               help='publisher_id of the notifications.'),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_group(GROUP)
    conf.register_opts(OPTS, group=GROUP)
