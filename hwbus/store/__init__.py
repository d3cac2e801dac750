"""The SQL store both services share: credentials now, archives later.

SQLite by default (one host), PostgreSQL when several consumers or boot
servers run on several hosts. Every state change is a single conditional
UPDATE, so concurrent writers on any number of hosts agree on who won.
"""

from hwbus.store.api import Store, StoreUnavailable
from hwbus.store.models import Credential, Inventory, State

__all__ = ['Credential', 'Inventory', 'State', 'Store', 'StoreUnavailable']
