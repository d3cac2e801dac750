"""Real servers on this machine's loopback: the local stack's and the tests'.

Each runner starts a real program with its own data directory on free
loopback ports and stops it again: RabbitMQ and PostgreSQL from Debian's
packages, Ironic and Keystone from PyPI in their own virtualenvs
(``.cache/ironic-venv``, ``.cache/keystone-venv``), and hwbus's own
``hwbus-consumer`` and ``hwbus-bootserver`` from the virtualenv running
this code. Nothing here fakes a server: when a program is missing the
runner fails and says how to install it (``tools/install-deps --test``).

``tools/local-stack`` runs the whole chain with them for an operator
trying hwbus on one machine (``consumer.write_config(profile='local')``);
the functional, chaos, attack and end-to-end tests and the benchmarks
start the same runners with the ``test`` profile.

- ``common``: ports, waiting for readiness, stopping; where the
  virtualenvs and caches live (``CACHE``)
- ``rabbitmq``: one node or a cluster of nodes
- ``ironic``: standalone Ironic (noauth or behind Keystone)
- ``keystone``: Keystone under gunicorn
- ``postgres``: a throwaway PostgreSQL cluster
- ``consumer``: hwbus.conf for these servers, hwbus-consumer as a process
- ``bootserver``: hwbus-bootserver as a process
- ``tls``: a throwaway CA that issues the servers' certificates
"""
