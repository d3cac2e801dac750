"""Credentials issued and revoked per second against a real RabbitMQ node.

An issue is one SQL insert plus four management API calls (user,
permissions, topic permissions, connection limit); a revoke is a
conditional UPDATE plus one DELETE. The reference, run in the same
process against the same node, is the floor any per-boot-user design
pays: one bare ``PUT /api/users`` per boot.

    .venv/bin/python benchmarks/issue.py [--count N] [--threads T]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import secrets
import time

import _broker


def rate(count: int, threads: int, work) -> float:
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(count)))
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--count', type=int, default=300)
    parser.add_argument('--threads', type=int, default=4)
    args = parser.parse_args()
    server, credentials = _broker.start()
    try:
        management = credentials.management
        bare = rate(args.count, args.threads, lambda i: management.put_user(
            f'bare-{i}-{secrets.token_hex(4)}', 'x'))
        issued = []
        issue = rate(args.count, args.threads, lambda i: issued.append(
            credentials.issue(mac=f'52:54:00:{i >> 16 & 255:02x}:'
                                  f'{i >> 8 & 255:02x}:{i & 255:02x}')))
        revoke = rate(len(issued), args.threads, lambda i: credentials.revoke(
            issued[i].credential.boot_id))
    finally:
        server.stop()
    print(f'{args.count} credentials, {args.threads} threads, RabbitMQ '
          f'on loopback, SQLite store')
    print(f'  reference: bare PUT /api/users  {bare:8.1f} /s')
    print(f'  hwbus issue                     {issue:8.1f} /s  '
          f'({issue / bare:.2f}x the reference)')
    print(f'  hwbus revoke                    {revoke:8.1f} /s  '
          f'({revoke / bare:.2f}x the reference)')


if __name__ == '__main__':
    main()
