"""[bootserver]: the HTTP endpoint iPXE chain-loads for unknown machines."""

from oslo_config import cfg

GROUP = cfg.OptGroup('bootserver', title='Boot server',
                     help='hwbus-bootserver: issues a credential per boot '
                          'and answers iPXE or GRUB with the hwbus '
                          'ramdisk.')

OPTS = [
    cfg.HostAddressOpt('host', default='127.0.0.1',
                       help='Address the boot server listens on; the '
                            'provisioning network must reach it.'),
    cfg.PortOpt('port', default=8086,
                help='Port the boot server listens on.'),
    cfg.IntOpt('threads', default=8, min=1,
               help='Worker threads answering boot scripts and health '
                    'checks. A request reaches one only once its head is '
                    'complete, so slow clients do not hold them.'),
    cfg.IntOpt('image_threads', default=8, min=1,
               help='Worker threads answering downloads (/images/, the '
                    'firmware loaders, the boot disk images), apart from '
                    'the others so downloads never delay a boot script. '
                    'A thread only finds the file: the bytes are streamed '
                    'from the event loop, so a slow download holds none.'),
    cfg.PortOpt('tftp_port', default=0,
                help='UDP port to serve TFTP on (69 is what firmware and '
                     'GRUB ask), 0: no TFTP. For Secure Boot over the '
                     'network with Debian\'s signed GRUB, which fetches '
                     'over TFTP only: UEFI PXE loads shimx64.efi, shim '
                     'loads grubx64.efi, GRUB reads grub/grub.cfg and '
                     'the per-boot boot.grub from here, issued exactly as '
                     'over HTTP. Port 69 needs CAP_NET_BIND_SERVICE (the '
                     'systemd unit says how to grant it).'),
    cfg.HostAddressOpt('tftp_host',
                       help='Address TFTP listens on. Unset: host.'),
    cfg.IntOpt('downloads_per_client', default=4, min=1,
               help='Downloads one client address may have under way at '
                    'once, over HTTP and over TFTP each; more are '
                    'answered 429 (a TFTP error). A booting machine '
                    'fetches one file at a time.'),
    cfg.IntOpt('max_downloads', default=512, min=1,
               help='Downloads under way at once in all; more are answered '
                    '503. Each costs an open file, a socket and up to '
                    'about 200 KiB of buffers. Serve the images from nginx '
                    '(or kernel_url, initrd_url) for more machines at '
                    'once.'),
    cfg.IntOpt('min_download_rate', default=32768, min=0,
               help='Bytes per second a download (/images/, the firmware '
                    'loaders, the boot disk images over HTTP) must keep '
                    'up, counted from the start of its response with '
                    'download_grace seconds of allowance: at t seconds it '
                    'must have been acknowledged rate * (t - '
                    'download_grace) bytes. A download that falls behind '
                    'is cut (the connection reset) and its address gets '
                    'no new download for download_grace seconds, so slow '
                    'readers cannot hold the max_downloads places. The '
                    'default, 32 KiB/s, is a fraction of what firmware '
                    'gets on any LAN (megabytes a second) and slower than '
                    'a machine could use: at 32 KiB/s a 60 MiB initramfs '
                    'takes over 30 minutes, twice credential_ttl. Holding '
                    'a place costs an attacker this rate for as long as '
                    'it is held (512 places: 16 MiB/s). 0: no minimum.'),
    cfg.FloatOpt('download_grace', default=20.0, min=1.0,
                 help='Seconds of allowance min_download_rate gives a '
                      'download (TCP slow start, a firmware that pauses), '
                      'and how long an address whose download was cut '
                      'waits for a new one (answered 429 meanwhile).'),
    cfg.FloatOpt('header_timeout', default=10.0, min=1.0,
                 help='Seconds a client has to send a complete request '
                      'head, from the moment it connects (after the TLS '
                      'handshake) or its previous response ended; then '
                      'the connection is closed. Also the TLS handshake\'s '
                      'own limit.'),
    cfg.IntOpt('max_header_size', default=8192, min=1024,
               help='Bytes a request head may have at most (request line '
                    'and headers); a larger one is answered 431 and the '
                    'connection closed. iPXE sends a few hundred.'),
    cfg.FloatOpt('send_timeout', default=60.0, min=1.0,
                 help='Seconds a client may take to accept the next part '
                      'of a response (an image download); then the '
                      'response is abandoned, the connection closed and '
                      'its worker thread freed.'),
    cfg.ListOpt('trusted_proxies', default=[],
                help='Addresses of reverse proxies (nginx) in front of the '
                     'boot server. For a request from one of them the '
                     'client address, which the per-client limits count, '
                     'is the last address of X-Forwarded-For.'),
    cfg.StrOpt('cert_file',
               help='PEM certificate (chain) to serve HTTPS with. iPXE '
                    'verifies it only against the CAs built into it (or '
                    'embedded with TRUST=), so a site CA must be compiled '
                    'into its iPXE. Unset: plain HTTP.'),
    cfg.StrOpt('key_file',
               help='PEM private key of cert_file.'),
    cfg.StrOpt('image_dir', default='/var/lib/hwbus/images',
               help='Directory holding the x86-64 vmlinuz and '
                    'initramfs.zst, served under /images/ when kernel_url '
                    'is not set, and one subdirectory per other '
                    'architecture (arm64/vmlinuz, arm64/initramfs.zst, '
                    'served under /images/arm64/). A boot names its '
                    'architecture with arch= (iPXE\'s ${buildarch}, '
                    'GRUB\'s $grub_cpu).'),
    cfg.StrOpt('shim_x64', default='/usr/lib/shim/shimx64.efi.signed',
               help='Signed shim for x86-64 UEFI (Debian shim-signed): '
                    '\\EFI\\BOOT\\BOOTX64.EFI of /hwbus-x64.img, the '
                    'disk image UEFI HTTP boot loads, and served as '
                    '/shimx64.efi. Empty: GRUB is BOOTX64.EFI itself (no '
                    'Secure Boot).'),
    cfg.StrOpt('grub_x64',
               default='/usr/lib/grub/x86_64-efi-signed/'
                       'grubnetx64.efi.signed',
               help='GRUB for x86-64 UEFI: GRUBX64.EFI of /hwbus-x64.img '
                    '(the name shim loads), served as /grubx64.efi. It '
                    'must have the http module and read /grub/grub.cfg '
                    'of the disk it starts from, which brings up the '
                    'network and sources /boot.grub. Debian 12\'s signed '
                    'grubnetx64 reads that config but has no http module '
                    '(it fetches over TFTP only): build one with '
                    'grub-mkimage -O x86_64-efi -p /grub fat part_gpt '
                    'efinet net http linux normal configfile echo test '
                    'sleep minicmd boot (docs/bootserver.md).'),
    cfg.StrOpt('grub_http_x64',
               help='GRUB for x86-64 UEFI HTTP boot, when it is not '
                    'grub_x64: GRUBX64.EFI of /hwbus-x64.img and served '
                    'as /grubhttpx64.efi, while grub_x64 stays what shim '
                    'loads over TFTP (/grubx64.efi). Set it when one boot '
                    'server serves both UEFI HTTP boot (a GRUB with the '
                    'http module) and Secure Boot over PXE (Debian\'s '
                    'signed GRUB, which has none). Unset: grub_x64.'),
    cfg.StrOpt('shim_aa64', default='/usr/lib/shim/shimaa64.efi.signed',
               help='Signed shim for arm64 UEFI: BOOTAA64.EFI of '
                    '/hwbus-aa64.img and served as /shimaa64.efi. '
                    'Missing or empty: GRUB is BOOTAA64.EFI itself.'),
    cfg.StrOpt('grub_aa64',
               default='/usr/lib/grub/arm64-efi-signed/'
                       'grubnetaa64.efi.signed',
               help='GRUB for arm64 UEFI: what shim loads over TFTP '
                    '(/grubaa64.efi) and, unless grub_http_aa64 is set, '
                    'GRUBAA64.EFI (and, without a shim, BOOTAA64.EFI) of '
                    '/hwbus-aa64.img, the disk image arm64 UEFI HTTP boot '
                    'loads, also served as /grubnetaa64.efi. For HTTP '
                    'boot it needs the http module, as grub_x64.'),
    cfg.StrOpt('grub_http_aa64',
               help='GRUB for arm64 UEFI HTTP boot, when it is not '
                    'grub_aa64: what /hwbus-aa64.img holds and what '
                    '/grubnetaa64.efi and /grubhttpaa64.efi serve (the '
                    'grubhttpaa64.efi of tools/build-ramdisk --arch '
                    'arm64), while grub_aa64 stays what shim loads over '
                    'TFTP (Debian\'s signed grubnetaa64). Set both when '
                    'one boot server serves arm64 machines by HTTP boot '
                    'and by Secure Boot over PXE. Unset: grub_aa64.'),
    cfg.StrOpt('arm64_kernel_args',
               help='Kernel arguments for arm64 boots instead of '
                    'kernel_args (their consoles differ: ttyAMA0 on '
                    'QEMU virt and many arm64 servers). Unset: '
                    'kernel_args.'),
    cfg.StrOpt('kernel_url',
               help='URL of the x86-64 ramdisk kernel, when another '
                    'server serves the images. Unset: this server, '
                    '/images/vmlinuz. Other architectures are always '
                    'served from image_dir. GRUB (UEFI HTTP boot) fetches '
                    'plain http:// URLs only.'),
    cfg.StrOpt('initrd_url',
               help='URL of the x86-64 ramdisk initramfs. Unset: this '
                    'server, /images/initramfs.zst.'),
    cfg.StrOpt('public_url',
               help='This server\'s URL as booting machines reach it, for '
                    'the image URLs. Unset: taken from each request.'),
    cfg.StrOpt('kernel_args', default='console=tty0 console=ttyS0,115200n8',
               help='Kernel arguments added before the hwbus.* ones.'),
    cfg.IntOpt('credential_ttl', default=900, min=60,
               help='Seconds a credential the boot server issues stays '
                    'valid when it is never used (instead of '
                    '[credentials] ttl): long enough for a machine to '
                    'load the ramdisk, collect and publish, short so '
                    'that unused ones stop counting against '
                    '[credentials] max_outstanding soon.'),
    cfg.IntOpt('per_client_burst', default=10, min=1,
               help='Credentials one client address may be issued in any '
                    'per_client_interval seconds. A machine needs one per '
                    'boot; the default lets one address hold at most '
                    'per_client_burst * credential_ttl / '
                    'per_client_interval (150) credentials at once, so '
                    'one host cannot reach [credentials] max_outstanding '
                    'and lock every other machine out.'),
    cfg.IntOpt('per_client_interval', default=60, min=1,
               help='Seconds of the per-client window (see '
                    'per_client_burst).'),
    cfg.IntOpt('per_mac_outstanding', default=3, min=1,
               help='Unused credentials for one MAC that other client '
                    'addresses may hold. A new request from the address '
                    'that holds one replaces its own (a machine looping in '
                    'PXE); beyond this many from other addresses the new '
                    'request is refused (429), never an earlier one '
                    'withdrawn, so requests for a victim\'s MAC cannot '
                    'cancel the victim\'s boot.'),
    cfg.BoolOpt('check_ironic', default=True,
                help='Ask Ironic ([ironic]) about each MAC: one that is a '
                     'port of a node that does not await discovery (not '
                     'in "inspect wait", nor enrolled by discovery and '
                     'still in "enroll") is refused. When Ironic cannot '
                     'answer, the credential is issued: the consumer '
                     'checks the same rule before writing.'),
    cfg.IntOpt('per_mac_burst', default=2, min=1,
               help='Credentials one MAC may be issued from one client '
                    'address in any per_mac_interval seconds, so a '
                    'machine looping in PXE cannot mint credentials in a '
                    'loop. The client address is part of the key: no '
                    'other host can spend a machine\'s budget.'),
    cfg.IntOpt('per_mac_interval', default=10, min=1,
               help='Seconds of the per-MAC window: a machine that spent '
                    'its per_mac_burst waits at most this long.'),
    cfg.FloatOpt('global_rate', default=20.0, min=0.1,
                 help='Credentials issued per second at most, all clients '
                      'together, on average: at most global_burst in any '
                      'global_burst / global_rate seconds (rounded up to '
                      'a whole second).'),
    cfg.IntOpt('global_burst', default=100, min=1,
               help='Credentials that may be issued at once, all clients '
                    'together (see global_rate).'),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_group(GROUP)
    conf.register_opts(OPTS, group=GROUP)
