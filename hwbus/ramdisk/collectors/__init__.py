"""The collectors: one plug-in module per kind of device, and their runner.

* ``base``: what a collector is given and hands back (``Options``,
  ``Contribution``) and the helpers collectors share;
* ``system``, ``boot``, ``cpu``, ``memory``, ``disks``, ``interfaces``,
  ``bmc``, ``pci``, ``gpus``, ``numa``, ``dmi``, ``lldp``: the built-in
  plug-ins, registered under the ``hwbus.collectors`` entry points;
* ``runner``: loads the installed plug-ins, runs them in parallel under
  one deadline and merges their parts into one schema-valid document.

Collectors read the machine through ``hwbus.ramdisk.probes`` and never
import the program (``hwbus.ramdisk.main``, ``publisher``, ``after``).
See docs/collectors.md.
"""
