"""hwbus's own BMC user, created in-band with ipmitool.

Zero-touch enrolment needs BMC credentials nobody typed: the ramdisk, root
on the machine, makes a dedicated administrator (``hwbus``) through the
host interface, which needs no password, and the password travels sealed
to the consumer. The consumer then enrols the node with it.

Two modes:

``create``
    Find the user named ``hwbus`` (reuse its slot, new password) or the
    first free slot, and make it an enabled administrator on every LAN
    channel with a fresh random password.
``keep``
    Only find and report the existing user; nothing on the BMC changes
    (the consumer keeps the password Ironic already has).

Slots 1 (anonymous) and 2 (the vendor's administrator on most BMCs) and
any slot that holds another user are never changed. Every failure is one
line in ``AccountResult.errors`` and the function returns: the inventory
goes out whatever the BMC did. The password is on ipmitool's command line
(ipmitool takes it nowhere else without a terminal) but never in a step
name, an error, a log line or a recording (SystemRoot.run's ``redact``).

The modules, each with one job:

``ensure``
    ``ensure_account``: the steps, in order, that find or make the user.
``parse``
    What ipmitool prints, as data (no command is run there).
``slots``
    Which user slots hwbus may take.
``passwords``
    Random passwords the BMC can store whole.
``session``
    Runs ipmitool steps; turns each failure into one message without a
    password in it.
``result``
    ``AccountResult``: what ``ensure_account`` did.
"""
