"""[inspection]: the "inspection" applier (Ironic's continue_inspection)."""

from oslo_config import cfg

GROUP = cfg.OptGroup('inspection', title='Inspection',
                     help='How the "inspection" applier hands inventories '
                          'to Ironic\'s own inspection.')

OPTS = [
    cfg.ListOpt('states', default=['inspect wait'],
                help='Provision states of an existing node that discovery '
                     'may continue inspecting. Ironic itself continues '
                     'only nodes in "inspect wait"; a node in any other '
                     'state is never changed (dead letter "node-state").'),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_group(GROUP)
    conf.register_opts(OPTS, group=GROUP)
