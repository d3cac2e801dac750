"""The consumer daemon: verify, revoke, bring into Ironic."""
