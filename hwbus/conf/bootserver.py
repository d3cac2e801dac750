"""[bootserver]: the HTTP endpoint iPXE chain-loads for unknown machines."""

from oslo_config import cfg

GROUP = cfg.OptGroup('bootserver', title='Boot server',
                     help='hwbus-bootserver: issues a credential per boot '
                          'and answers iPXE with the hwbus ramdisk.')

OPTS = [
    cfg.HostAddressOpt('host', default='127.0.0.1',
                       help='Address the boot server listens on; the '
                            'provisioning network must reach it.'),
    cfg.PortOpt('port', default=8086,
                help='Port the boot server listens on.'),
    cfg.IntOpt('threads', default=8, min=1,
               help='Requests served at once.'),
    cfg.StrOpt('cert_file',
               help='PEM certificate (chain) to serve HTTPS with. iPXE '
                    'verifies it only against the CAs built into it (or '
                    'embedded with TRUST=), so a site CA must be compiled '
                    'into its iPXE. Unset: plain HTTP.'),
    cfg.StrOpt('key_file',
               help='PEM private key of cert_file.'),
    cfg.StrOpt('image_dir', default='/var/lib/hwbus/images',
               help='Directory holding vmlinuz and initramfs.zst, served '
                    'under /images/ when kernel_url is not set.'),
    cfg.StrOpt('kernel_url',
               help='URL of the ramdisk kernel, when another server serves '
                    'the images. Unset: this server, /images/vmlinuz.'),
    cfg.StrOpt('initrd_url',
               help='URL of the ramdisk initramfs. Unset: this server, '
                    '/images/initramfs.zst.'),
    cfg.StrOpt('public_url',
               help='This server\'s URL as booting machines reach it, for '
                    'the image URLs. Unset: taken from each request.'),
    cfg.StrOpt('kernel_args', default='console=tty0 console=ttyS0,115200n8',
               help='Kernel arguments added before the hwbus.* ones.'),
    cfg.FloatOpt('per_mac_interval', default=30.0, min=0.0,
                 help='Seconds before one MAC may get another credential. A '
                      'machine looping in PXE cannot mint credentials.'),
    cfg.FloatOpt('global_rate', default=20.0, min=0.1,
                 help='Credentials issued per second at most, all MACs '
                      'together (token bucket).'),
    cfg.IntOpt('global_burst', default=100, min=1,
               help='Credentials that may be issued at once above the '
                    'global rate (token bucket size).'),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_group(GROUP)
    conf.register_opts(OPTS, group=GROUP)
