"""The side that runs inside the ramdisk on the machine being discovered.

Three layers, each importing only from the ones below it:

* this package, the program: ``main`` (collect, seal, publish, then the
  after-action), ``publisher`` (pika, confirms, retries) and ``after``;
* ``collectors``: the collector plug-ins and the ``runner`` that runs
  them into one document;
* ``probes``: how the machine is read (``sysroot``, ``dmidecode``,
  ``ethtool``, ``pci_bus``, ``lldp_listener``).

(``collect``, ``sysroot`` and ``lldp`` here only re-export a few names
from their new homes for callers not moved yet; import from the new ones.)

Everything under this package imports only what the ramdisk image carries:
the standard library, pika, psutil, cryptography and jsonschema (see
docs/ramdisk.md). tests/unit/test_ramdisk_imports.py keeps it that way,
and checks the layers too.
"""
