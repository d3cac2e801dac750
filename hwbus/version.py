"""The installed hwbus version, for documents and log lines."""

from importlib import metadata


def version_string() -> str:
    """The package version, or "unknown" when run from a bare source tree.

    Uses the standard library rather than pbr.version so that the ramdisk,
    which does not carry pbr, can report which hwbus built its inventory.
    """
    try:
        return metadata.version('hwbus')
    except metadata.PackageNotFoundError:
        return 'unknown'
