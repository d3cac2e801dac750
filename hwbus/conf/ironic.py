"""[ironic]: how the consumer reaches the Ironic API (openstacksdk)."""

from keystoneauth1 import loading
from oslo_config import cfg

GROUP = cfg.OptGroup('ironic', title='Ironic API',
                     help='Reached through openstacksdk: a cloud from '
                          'clouds.yaml, or keystoneauth options here '
                          '(auth_type = password, v3applicationcredential, '
                          'http_basic or none). Behind Keystone the '
                          'baremetal endpoint comes from the catalog.')

OPTS = [
    cfg.StrOpt('cloud',
               help='Name of a cloud in clouds.yaml. When set, it is used '
                    'instead of the options of this group (except '
                    'clouds_yaml, region_name, interface, api_version and '
                    'retries).'),
    cfg.StrOpt('clouds_yaml',
               help='The clouds.yaml file to read the cloud from, instead '
                    'of the usual search path (./clouds.yaml, '
                    '~/.config/openstack/, /etc/openstack/) and '
                    'OS_CLIENT_CONFIG_FILE.'),
    cfg.StrOpt('endpoint_override',
               help='Ironic API endpoint, e.g. http://ironic:6385. Needed '
                    'with auth_type none or http_basic; with keystone it '
                    'overrides the catalog.'),
    cfg.StrOpt('region_name',
               help='Region of the baremetal endpoint in the Keystone '
                    'catalog (with a cloud: overrides its region_name).'),
    cfg.ListOpt('interface',
                help='Endpoint interfaces to look for in the Keystone '
                     'catalog, in order, e.g. "internal,public". Unset: '
                     'internal, then public; with a cloud, its own '
                     'interface (openstacksdk: public).'),
    cfg.StrOpt('api_version', default='1.87',
               help='Ironic API microversion to request. 1.84 is the least '
                    'for continue_inspection.'),
    cfg.IntOpt('retries', default=2, min=0,
               help='openstacksdk connect retries for one call.'),
]

# keystoneauth plugins whose options the sample shows.
PLUGINS = ('password', 'v3applicationcredential', 'http_basic')


# Seconds an Ironic request may take: keystoneauth's default is none,
# and a hung Ironic then held the boot server's threads for good.
TIMEOUT = 60


def _session_opts() -> list[cfg.Opt]:
    """keystoneauth's session options, ``timeout`` defaulting to TIMEOUT."""
    opts = loading.get_session_conf_options()
    for opt in opts:
        if opt.dest == 'timeout':
            opt.default = TIMEOUT
            opt.help = (f'Seconds an Ironic request may take before it '
                        f'counts as failed (retried like an outage). '
                        f'Default {TIMEOUT}.')
    return opts


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_group(GROUP)
    conf.register_opts(OPTS, group=GROUP)
    loading.register_auth_conf_options(conf, GROUP.name)
    conf.register_opts(_session_opts(), group=GROUP)


def list_opts() -> list[cfg.Opt]:
    opts = (list(OPTS) + _session_opts()
            + loading.get_auth_common_conf_options())
    seen = {o.dest for o in opts}
    for plugin in PLUGINS:
        for opt in loading.get_auth_plugin_conf_options(plugin):
            if opt.dest not in seen:
                seen.add(opt.dest)
                opts.append(opt)
    return opts
