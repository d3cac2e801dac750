"""ipmitool steps run through the SystemRoot, one message per failure,
never with a password in it."""

from __future__ import annotations

from collections.abc import Sequence

from hwbus.ramdisk.probes.sysroot import (
    CommandError,
    CommandNotFound,
    CommandResult,
    CommandTimeout,
    SystemRoot,
)

# Characters of the BMC's own words kept in one error line.
_DETAIL_CHARS = 200
# ipmitool's own chatter that says nothing about the command asked for.
_NOISE = ('Get HPM.x Capabilities request failed',)


class _Stop(Exception):
    """A step that leaves nothing more to do; its message is the error."""


class Session:
    """Runs ipmitool steps through the SystemRoot, one message per failure.

    Every step has a name (the recording's) that holds no password; the
    passwords generated are remembered so no message can carry them.
    """

    def __init__(self, root: SystemRoot, ipmitool: Sequence[str],
                 timeout: float) -> None:
        self.root = root
        self.ipmitool = list(ipmitool)
        self.timeout = timeout
        self.secrets: list[str] = []

    def run(self, name: str, args: Sequence[str], doing: str,
            secret: Sequence[str] = ()) -> CommandResult:
        """Run one step; _Stop when ipmitool could not give an answer."""
        try:
            return self.root.run(name, [*self.ipmitool, *args],
                                 timeout=self.timeout, redact=secret)
        except CommandTimeout:
            raise _Stop(f'the BMC did not answer within {self.timeout:g} s '
                        f'when asked to {doing}') from None
        except CommandNotFound:
            raise _Stop(f'{self.ipmitool[0]} is not installed: cannot '
                        f'{doing}') from None
        except CommandError as exc:
            raise _Stop(f'ipmitool could not {doing}: '
                        f'{self.scrub(str(exc))}') from None

    def must(self, name: str, args: Sequence[str], doing: str,
             secret: Sequence[str] = ()) -> CommandResult:
        """Run one step that has to succeed; _Stop when it did not."""
        result = self.run(name, args, doing, secret)
        if not result.ok:
            raise _Stop(self.refused(doing, result))
        return result

    def refused(self, doing: str, result: CommandResult) -> str:
        return f'the BMC refused to {doing}: {self.detail(result)}'

    def detail(self, result: CommandResult) -> str:
        """The BMC's own words: the first two lines that are not chatter."""
        lines = [line.strip() for line in
                 (result.stderr + '\n' + result.stdout).splitlines()]
        lines = [line for line in lines
                 if line and not line.startswith(_NOISE)]
        text = '; '.join(lines[:2]) or f'exit status {result.returncode}'
        text = ''.join(c if c.isprintable() else '?' for c in text)
        return self.scrub(text)[:_DETAIL_CHARS]

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, '***')
        return text
