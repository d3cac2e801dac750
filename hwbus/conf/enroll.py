"""[enroll]: the "enroll" applier's rules for nodes Ironic does not know."""

from oslo_config import cfg

GROUP = cfg.OptGroup('enroll', title='Enrolment',
                     help='How the "enroll" applier finds, creates and '
                          'updates nodes.')

OPTS = [
    cfg.BoolOpt('create_nodes', default=True,
                help='Create a node for a boot whose credential names no '
                     'node and whose MAC is no node\'s port.'),
    cfg.ListOpt('states', default=['enroll', 'manageable', 'inspect wait'],
                help='Provision states in which discovery may update an '
                     'existing node. A node in any other state (available, '
                     'active, deploying, cleaning, ...) is never changed: '
                     'its inventory is dead-lettered "node-state". A '
                     'credential issued for a MAC (the boot server) may '
                     'moreover update only a node that awaits discovery: '
                     'in "inspect wait", or enrolled by discovery and '
                     'still in "enroll".'),
    cfg.StrOpt('driver', default='ipmi',
               help='Hardware type of created nodes; "auto" is redfish '
                    'when the machine reports a Redfish host interface '
                    '(SMBIOS type 42), else ipmi. With a BMC account '
                    '([bmc] account) a node gets its credentials in the '
                    'fields its hardware type reads (ipmi_* or '
                    'redfish_*).'),
    cfg.BoolOpt('manage', default=False,
                help='Move a node that discovery enrolled and gave BMC '
                     'credentials to "manageable": Ironic then checks '
                     'power control through the BMC. The result (or '
                     'Ironic\'s last_error) is in the node\'s history '
                     'and notifications; a failure leaves the node in '
                     '"enroll" and the inventory applied.'),
    cfg.IntOpt('manage_timeout', default=120, min=0,
               help='Seconds to wait for Ironic\'s verdict on "manage" '
                    'before recording it as still verifying; 0 does not '
                    'wait.'),
    cfg.StrOpt('resource_class',
               help='Resource class of created nodes; unset leaves it '
                    'empty.'),
    cfg.StrOpt('name_template', default='{serial}',
               help='Name of created nodes. Fields: {serial}, {vendor}, '
                    '{product}, {mac} (the boot MAC, dashes), {boot_id}. '
                    'Falls back to no name when the result is empty or '
                    'not a valid node name.'),
    cfg.StrOpt('conductor_group',
               help='Conductor group of created nodes.'),
    cfg.ListOpt('traits', default=[],
                help='Traits added to every enrolled node.'),
    cfg.BoolOpt('all_ports', default=False,
                help='Create a port for every NIC, not only the boot NIC.'),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_group(GROUP)
    conf.register_opts(OPTS, group=GROUP)
