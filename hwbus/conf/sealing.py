"""[sealing]: the key secrets from the ramdisk are sealed to."""

from oslo_config import cfg

GROUP = cfg.OptGroup('sealing', title='Sealed secrets',
                     help='The consumer\'s X25519 key. The ramdisk seals '
                          'secrets it mints (the BMC password) to its '
                          'public half; only the private half opens them. '
                          'Create one with "hwbus-manage seal-key create".')

OPTS = [
    cfg.StrOpt('private_key_file',
               help='PEM file of the consumer\'s X25519 private key. The '
                    'consumer opens sealed secrets with it; an issuer on '
                    'the same host derives the public key from it.'),
    cfg.ListOpt('previous_key_files', default=[],
                help='Older private keys, still tried for messages sealed '
                     'before a key rotation (queued, dead-lettered or '
                     'archived ones).'),
    cfg.StrOpt('public_key',
               help='The public key (base64url, as "hwbus-manage seal-key '
                    'show" prints it) for an issuer that cannot read '
                    'private_key_file, such as a boot server on another '
                    'host.'),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_group(GROUP)
    conf.register_opts(OPTS, group=GROUP)
