"""An applier that applies nothing: for benchmarks of the pipeline."""

from __future__ import annotations

from typing import Any

from hwbus.consumer.appliers import Applied, Context


class NullApplier:
    name = 'null'

    def __init__(self, settings: Any, connection: Any) -> None:
        pass

    def apply(self, context: Context) -> Applied:
        return Applied()
