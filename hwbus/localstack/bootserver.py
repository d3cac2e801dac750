"""hwbus-bootserver as a process, on its config file's host and port."""

from __future__ import annotations

import pathlib
import subprocess

import requests

from hwbus.localstack.common import stop, wait_for
from hwbus.localstack.consumer import BIN


class BootServer:
    def __init__(self, config: pathlib.Path, log: pathlib.Path, port: int,
                 ca_file: pathlib.Path | None = None) -> None:
        self.config, self.log, self.port = config, log, port
        self.ca_file = ca_file
        scheme = 'https' if ca_file else 'http'
        host = 'localhost' if ca_file else '127.0.0.1'
        self.url = f'{scheme}://{host}:{port}'
        self.proc: subprocess.Popen | None = None

    def get(self, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault('verify', str(self.ca_file) if self.ca_file
                          else True)
        return requests.get(self.url + path, timeout=10, **kwargs)

    def start(self) -> BootServer:
        self.proc = subprocess.Popen(
            [str(BIN / 'hwbus-bootserver'), '--config-file',
             str(self.config)], stdout=subprocess.DEVNULL,
            stderr=self.log.open('a'))
        wait_for(lambda: self.get('/healthz').ok, 60, 'hwbus-bootserver',
                 self.log, self.proc)
        return self

    def stop(self) -> int | None:
        stop(self.proc)
        return self.proc.returncode if self.proc else None
