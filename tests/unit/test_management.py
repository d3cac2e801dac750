"""The management client fails over between a cluster's nodes."""

import http.server
import json
import threading

import pytest

from hwbus.broker.management import Management, ManagementUnavailable
from hwbus.localstack.common import free_port


@pytest.fixture
def node():
    """A stand-in management API answering GET /api/overview."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({'node': 'up'}).encode()
            self.send_response(200)
            self.send_header('content-length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(('127.0.0.1', 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{server.server_port}'
    server.shutdown()


def test_a_node_that_is_down_is_skipped_and_the_live_one_kept(node):
    down = f'http://127.0.0.1:{free_port()}'
    management = Management([down, node], 'admin', 'secret')
    assert management.request('GET', '/api/overview') == {'node': 'up'}
    assert management.urls[0] == node  # tried first from now on


def test_no_node_up_is_transient_and_names_no_password():
    urls = [f'http://127.0.0.1:{free_port()}' for _ in range(2)]
    management = Management(urls, 'admin', 'secret-password')
    with pytest.raises(ManagementUnavailable) as info:
        management.request('GET', '/api/overview')
    assert 'secret-password' not in str(info.value)
    assert 'no node' in str(info.value)


def test_one_url_as_a_string_still_works(node):
    assert Management(node, 'a', 'b').urls == [node]
