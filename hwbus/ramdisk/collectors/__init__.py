"""Built-in collectors, one module per kind of device (see base.py)."""
