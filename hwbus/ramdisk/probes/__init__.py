"""How the machine is read: the lowest layer of the ramdisk side.

* ``sysroot``: the one doorway to /proc, /sys, /dev and commands, live or
  recorded (``hwbus-collect --record`` / ``--root``);
* ``dmidecode``: the SMBIOS tables, parsed from plain ``dmidecode``;
* ``ethtool``: permanent MACs and driver/firmware versions, by ioctl;
* ``pci_bus``: every PCI device, from sysfs and ``lspci``;
* ``lldp_listener``: LLDP frames heard on all ports at once;
* ``values``: numbers and ids as sysfs and the tools print them.

The collectors (``hwbus.ramdisk.collectors``) build the document from
these; nothing here imports a collector or decides what goes in the
document. Several collectors share one reading through ``SystemRoot.memo``
(``pci_bus.scan``, ``dmidecode.read``).
"""
