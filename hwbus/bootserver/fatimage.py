"""A small FAT16 file system image, for UEFI HTTP boot's RAM disk.

UEFI HTTP boot can boot a disk image instead of one EFI program: the
firmware downloads it (Content-Type ``application/vnd.efi-img``), makes
it a RAM disk and starts ``\\EFI\\BOOT\\BOOT<arch>.EFI`` from it, as from
a USB stick. The boot server uses that for the signed chain: a signed
GRUB started straight from an HTTP URL gets no network configuration
and no config file (Debian's 2.06 reads both from the PXE protocol
only), while one started from a disk finds ``/grub/grub.cfg`` there,
which brings up the network and loads the per-boot script.

Only what that needs: 8.3 upper-case names, directories, whole files;
clusters of one sector, or larger for images over 32 MiB. No dependency
beyond the standard library.
"""

from __future__ import annotations

import struct

SECTOR = 512  # bytes
ROOT_ENTRIES = 512  # 32 sectors of root directory
MIN_CLUSTERS = 4200  # FAT16 needs at least 4085 clusters
MAX_CLUSTERS = 65000  # and at most 65524
Tree = dict[str, 'bytes | Tree']


def _short_name(name: str) -> bytes:
    base, _, ext = name.upper().partition('.')
    if not (0 < len(base) <= 8 and len(ext) <= 3) or not all(
            c.isalnum() or c in '_-' for c in base + ext):
        raise ValueError(f'{name!r} is not an 8.3 name')
    return base.ljust(8).encode() + ext.ljust(3).encode()


def _entry(name: bytes, attr: int, cluster: int, size: int) -> bytes:
    # 2024-01-01 00:00 for every time stamp: reproducible images.
    date = ((2024 - 1980) << 9) | (1 << 5) | 1
    return struct.pack('<11sBBBHHHHHHHL', name, attr, 0, 0, 0, date, date,
                       0, 0, date, cluster, size)


def _clusters(size: int, cluster: int) -> int:
    return max(1, -(-size // cluster))


def _dir_size(tree: Tree, root: bool) -> int:
    return len(tree) * 32 + (0 if root else 64)


def _used(tree: Tree, cluster: int) -> int:
    """Clusters the contents of ``tree`` (not its own entries) take."""
    total = 0
    for value in tree.values():
        if isinstance(value, dict):
            total += (_clusters(_dir_size(value, False), cluster)
                      + _used(value, cluster))
        else:
            total += _clusters(len(value), cluster)
    return total


def build(tree: Tree, label: str = 'HWBUS') -> bytes:
    """A FAT16 image holding ``tree`` (names to bytes or to subtrees)."""
    if len(tree) > ROOT_ENTRIES:
        raise ValueError('too many entries in the root directory')
    per_cluster = 1
    while _used(tree, per_cluster * SECTOR) + 16 > MAX_CLUSTERS:
        per_cluster *= 2
    cluster_size = per_cluster * SECTOR
    clusters = max(MIN_CLUSTERS, _used(tree, cluster_size) + 16)
    fat_sectors = -(-(clusters + 2) * 2 // SECTOR)
    root_sectors = ROOT_ENTRIES * 32 // SECTOR
    first_data = 1 + 2 * fat_sectors + root_sectors
    total = first_data + clusters * per_cluster
    fat = [0xFFF8, 0xFFFF]
    data = bytearray()

    def allocate(content: bytes) -> int:
        """Contiguous clusters for ``content``; its first cluster."""
        first = len(fat)
        count = _clusters(len(content), cluster_size)
        fat.extend(range(first + 1, first + count))
        fat.append(0xFFFF)
        data.extend(content.ljust(count * cluster_size, b'\0'))
        return first

    def directory(tree: Tree, own: int, parent: int) -> bytes:
        """The entries of ``tree``; subdirectories written first."""
        entries = b''
        if own:
            entries += _entry(b'.'.ljust(11), 0x10, own, 0)
            entries += _entry(b'..'.ljust(11), 0x10, parent, 0)
        for name, value in tree.items():
            if isinstance(value, dict):
                # Reserve the directory's clusters, then fill them once
                # its children have theirs.
                at = len(data)
                cluster = allocate(b'\0' * _dir_size(value, False))
                content = directory(value, cluster, own)
                data[at:at + len(content)] = content
                entries += _entry(_short_name(name), 0x10, cluster, 0)
            else:
                cluster = allocate(value) if value else 0
                entries += _entry(_short_name(name), 0x20, cluster,
                                  len(value))
        return entries

    root = directory(tree, 0, 0)
    volume = _entry(label.upper().ljust(11)[:11].encode(), 0x08, 0, 0)
    boot = struct.pack(
        '<3s8sHBHBHHBHHHLLBBBL11s8s', b'\xeb\x3c\x90', b'HWBUS   ', SECTOR,
        per_cluster, 1, 2, ROOT_ENTRIES, total if total < 0x10000 else 0, 0xF8,
        fat_sectors, 32, 64, 0, total if total >= 0x10000 else 0, 0x80, 0,
        0x29, 0x48574255, label.upper().ljust(11)[:11].encode(),
        b'FAT16   ')
    boot = boot.ljust(SECTOR - 2, b'\0') + b'\x55\xaa'
    fat.extend([0] * (clusters + 2 - len(fat)))
    table = struct.pack(f'<{len(fat)}H', *fat).ljust(
        fat_sectors * SECTOR, b'\0')
    root_dir = (volume + root).ljust(root_sectors * SECTOR, b'\0')
    image = boot + table + table + root_dir + bytes(data)
    return image.ljust(total * SECTOR, b'\0')
