"""The two ethtool questions sysfs cannot answer, asked by ioctl.

The permanent MAC (sysfs shows the current one, which bonding and some
drivers change) and the driver/firmware versions. Asking the kernel
directly needs no ethtool binary in the image and takes microseconds per
port; the answers are recorded as a probe so recorded machines replay them.
"""

from __future__ import annotations

import ctypes
import fcntl
import socket
from typing import Any

_SIOCETHTOOL = 0x8946
_ETHTOOL_GDRVINFO = 0x00000003
_ETHTOOL_GPERMADDR = 0x00000020
_MAX_ADDR_LEN = 32


class _DrvInfo(ctypes.Structure):
    _fields_ = [('cmd', ctypes.c_uint32),
                ('driver', ctypes.c_char * 32),
                ('version', ctypes.c_char * 32),
                ('fw_version', ctypes.c_char * 32),
                ('bus_info', ctypes.c_char * 32),
                ('erom_version', ctypes.c_char * 32),
                ('reserved2', ctypes.c_char * 12),
                ('n_priv_flags', ctypes.c_uint32),
                ('n_stats', ctypes.c_uint32),
                ('testinfo_len', ctypes.c_uint32),
                ('eedump_len', ctypes.c_uint32),
                ('regdump_len', ctypes.c_uint32)]


class _PermAddr(ctypes.Structure):
    _fields_ = [('cmd', ctypes.c_uint32),
                ('size', ctypes.c_uint32),
                ('data', ctypes.c_uint8 * _MAX_ADDR_LEN)]


class _IfReq(ctypes.Structure):
    _fields_ = [('name', ctypes.c_char * 16),
                ('data', ctypes.c_void_p),
                ('pad', ctypes.c_char * 16)]


def _ask(sock: socket.socket, name: str, request: ctypes.Structure) -> bool:
    ifreq = _IfReq(name=name.encode()[:15],
                   data=ctypes.addressof(request))
    try:
        fcntl.ioctl(sock.fileno(), _SIOCETHTOOL, ifreq)
    except OSError:
        return False
    return True


def _text(raw: bytes) -> str | None:
    return raw.decode('utf-8', 'replace').strip() or None


def query(names: list[str]) -> dict[str, dict[str, Any]]:
    """Permanent MAC and driver facts for each named interface.

    A port whose driver answers neither question is left out; callers fall
    back to sysfs.
    """
    answers: dict[str, dict[str, Any]] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for name in names:
            facts: dict[str, Any] = {}
            perm = _PermAddr(cmd=_ETHTOOL_GPERMADDR, size=_MAX_ADDR_LEN)
            if _ask(sock, name, perm) and any(perm.data[:perm.size]):
                facts['permanent_mac'] = ':'.join(
                    f'{b:02x}' for b in perm.data[:perm.size])
            info = _DrvInfo(cmd=_ETHTOOL_GDRVINFO)
            if _ask(sock, name, info):
                facts['driver'] = _text(info.driver)
                facts['driver_version'] = _text(info.version)
                facts['firmware_version'] = _text(info.fw_version)
                facts['bus_info'] = _text(info.bus_info)
            if facts:
                answers[name] = facts
    return answers
