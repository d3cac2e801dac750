"""hwbus: bare-metal hardware discovery for OpenStack Ironic over a bus."""
