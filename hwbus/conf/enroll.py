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
               help='Hardware type of created nodes.'),
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
