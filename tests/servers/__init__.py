"""Real servers for functional and end-to-end tests.

Each starts a real program (Ironic, RabbitMQ, PostgreSQL) on free loopback
ports with its own data directory, and stops it afterwards. Nothing here
fakes a server: when a program is missing the fixture fails and says how
to install it (tools/install-deps --test).
"""
