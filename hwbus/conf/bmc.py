"""[bmc]: the BMC account the ramdisk creates and how nodes get it."""

from oslo_config import cfg

GROUP = cfg.OptGroup('bmc', title='BMC credentials',
                     help='The dedicated BMC user the ramdisk creates '
                          'in-band, sealed to the consumer, and the '
                          'driver_info the consumer sets from it. See '
                          'docs/bmc.md.')

OPTS = [
    cfg.StrOpt('account', default='off',
               choices=[('off', 'leave the BMC alone'),
                        ('create', 'create or reset the hwbus BMC user and '
                                   'send its password sealed')],
               help='Whether the issuer (boot server, "hwbus-manage issue") '
                    'asks the ramdisk to create a BMC user (hwbus.bmc=). '
                    'It needs [sealing] public_key or private_key_file. '
                    '"hwbus-manage issue --bmc" overrides it per boot.'),
    cfg.BoolOpt('rotate', default=False,
                help='Give a machine whose node already holds BMC '
                     'credentials a new password at its next discovery. '
                     'Off: such a boot only reports the existing hwbus '
                     'user (hwbus.bmc=keep) and Ironic keeps its password.'),
    cfg.ListOpt('networks', default=[],
                help='Networks (CIDR) BMC addresses may be in. A BMC '
                     'address is the machine\'s claim: outside these, the '
                     'consumer writes no ipmi_address/redfish_address, so '
                     'Ironic never talks IPMI or Redfish to an address a '
                     'ramdisk chose on a network that is not the BMCs\'. '
                     'Empty: any address.'),
    cfg.StrOpt('redfish_verify_ca', default='True',
               help='redfish_verify_ca of nodes given Redfish credentials: '
                    'True, False, or a CA bundle path on the conductor.'),
    cfg.StrOpt('ipmi_cipher_suite',
               help='ipmi_cipher_suite for nodes given IPMI credentials; '
                    'unset leaves Ironic\'s default.'),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_group(GROUP)
    conf.register_opts(OPTS, group=GROUP)
