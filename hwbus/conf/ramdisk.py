"""[ramdisk]: what the issuing side asks the ramdisk to collect and do.

The ramdisk has no configuration file: these values travel to it on the
kernel command line of each boot, written by the boot server or by
``hwbus-manage issue``.
"""

from oslo_config import cfg

GROUP = cfg.OptGroup('ramdisk', title='Ramdisk behaviour',
                     help='Parameters handed to the hwbus ramdisk on its '
                          'kernel command line for each boot.')

OPTS = [
    cfg.FloatOpt('lldp_timeout', default=0.0, min=0.0, max=300.0,
                 help='Seconds to listen for LLDP on all ports at once. '
                      'Switches send LLDP every 30 seconds by default, so '
                      'a value of at least 31 is needed to hear every '
                      'port; 0 disables LLDP.'),
    cfg.StrOpt('after', default='poweroff',
               choices=[('poweroff', 'power the machine off'),
                        ('reboot', 'reboot the machine'),
                        ('agent', 'hand over to ironic-python-agent when '
                                  'the image has it, else reboot'),
                        ('none', 'do nothing (for tests and debugging)')],
               help='What the ramdisk does once its inventory is '
                    'confirmed by the broker.'),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_group(GROUP)
    conf.register_opts(OPTS, group=GROUP)
