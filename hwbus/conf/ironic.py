"""[ironic]: how the consumer reaches the Ironic API (openstacksdk)."""

from keystoneauth1 import loading
from oslo_config import cfg

GROUP = cfg.OptGroup('ironic', title='Ironic API',
                     help='Reached through openstacksdk: a cloud from '
                          'clouds.yaml, or keystoneauth options here '
                          '(auth_type = password, http_basic or none).')

OPTS = [
    cfg.StrOpt('cloud',
               help='Name of a cloud in clouds.yaml. When set, it is used '
                    'instead of the options of this group.'),
    cfg.StrOpt('endpoint_override',
               help='Ironic API endpoint, e.g. http://ironic:6385. Needed '
                    'with auth_type none or http_basic; with keystone it '
                    'overrides the catalog.'),
    cfg.StrOpt('api_version', default='1.87',
               help='Ironic API microversion to request. 1.84 is the least '
                    'for continue_inspection.'),
    cfg.IntOpt('retries', default=2, min=0,
               help='openstacksdk connect retries for one call.'),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_group(GROUP)
    conf.register_opts(OPTS, group=GROUP)
    loading.register_auth_conf_options(conf, GROUP.name)
    loading.register_session_conf_options(conf, GROUP.name)


def list_opts() -> list[cfg.Opt]:
    return (list(OPTS) + loading.get_session_conf_options()
            + loading.get_auth_common_conf_options()
            + loading.get_auth_plugin_conf_options('password')
            + loading.get_auth_plugin_conf_options('http_basic'))
