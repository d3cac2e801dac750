"""Prometheus metrics of the consumer (``[consumer] metrics_port``).

Labels are bounded: outcomes and reasons come from fixed sets of error
classes, never from message content.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import prometheus_client as prom

MESSAGES = prom.Counter(
    'hwbus_messages', 'Messages processed, by outcome and reason.',
    ['outcome', 'reason'])
PIPELINE_SECONDS = prom.Histogram(
    'hwbus_pipeline_seconds', 'Time to process one message, whole.',
    buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
STEP_SECONDS = prom.Histogram(
    'hwbus_step_seconds', 'Time spent in one pipeline step.', ['step'],
    buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5))
QUEUE_DEPTH = prom.Gauge(
    'hwbus_queue_depth', 'Messages in a queue, by queue name: the '
    'inventory queue and the dead-letter queue, every 10 s.', ['queue'])
CREDENTIALS = prom.Counter(
    'hwbus_credentials', 'Credential events the consumer sees: received '
    '(its inventory applied), expired (swept unused).', ['event'])
REVOKE_DELAY = prom.Histogram(
    'hwbus_revoke_delay_seconds', 'From a message\'s received state to '
    'its credential\'s broker user deleted (the batching revoker).',
    buckets=(.001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5, 10, 30))
REVOKE_PENDING = prom.Gauge(
    'hwbus_revoke_pending', 'Broker users of used credentials waiting for '
    'their deletion.')
IN_FLIGHT = prom.Gauge('hwbus_in_flight', 'Messages being processed now.')
IRONIC_LIMIT = prom.Gauge(
    'hwbus_ironic_concurrency_limit', 'Applies the consumer lets reach '
    'Ironic at once now (adaptive, [consumer] ironic_concurrency at most).')

# The series a metric of each type is exposed as, before its first
# sample (the text format's suffixes).
_SUFFIXES = {'counter': ('_total', '_created'),
             'gauge': ('',),
             'histogram': ('_bucket', '_sum', '_count', '_created'),
             'summary': ('', '_sum', '_count', '_created'),
             'info': ('_info',),
             'stateset': ('',),
             'enum': ('',)}


def exposed_names(registry: Any = None) -> set[str]:
    """The series names a scrape of ``registry`` (the one /metrics
    serves, by default) can hold, as PromQL sees them: a Counter
    ``hwbus_messages`` is ``hwbus_messages_total``, a Histogram has
    ``_bucket``, ``_sum`` and ``_count``. Labelled metrics count before
    their first sample too (the etc/ dashboard and alert rules are
    checked against these names)."""
    names: set[str] = set()
    for family in (registry or prom.REGISTRY).collect():
        if family.samples:
            names.update(sample.name for sample in family.samples)
        else:
            names.update(family.name + suffix
                         for suffix in _SUFFIXES.get(family.type, ('',)))
    return names


@contextlib.contextmanager
def step(name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        STEP_SECONDS.labels(name).observe(time.perf_counter() - started)


def observe(outcome: Any, seconds: float) -> None:
    MESSAGES.labels(outcome.kind, outcome.reason or '-').inc()
    PIPELINE_SECONDS.observe(seconds)
    if outcome.kind == 'applied':
        CREDENTIALS.labels('received').inc()


def serve(host: str, port: int) -> None:
    """Start the /metrics endpoint in a daemon thread (port 0: off)."""
    if port:
        prom.start_http_server(port, addr=host)
