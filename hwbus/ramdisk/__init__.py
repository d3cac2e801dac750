"""The side that runs inside the ramdisk on the machine being discovered.

Everything under this package imports only what the ramdisk image carries:
the standard library, pika, psutil, cryptography and jsonschema (see
docs/ramdisk.md). tests/unit/test_ramdisk_imports.py keeps it that way.
"""
