"""Reading a machine, recording it, and replaying it exactly."""

import os
import threading
import time

import pytest

from hwbus.ramdisk.probes import sysroot
from hwbus.ramdisk.probes.sysroot import SystemRoot
from tests.unit.machine import Machine


def test_replay_reads_files_links_and_listings(tmp_path):
    m = Machine(tmp_path).file('/proc/meminfo', 'MemTotal: 1 kB\n')
    m.nic('eth0', 'aa:bb:cc:dd:ee:01')
    root = m.root()
    assert root.read('/proc/meminfo') == 'MemTotal: 1 kB'
    assert root.listdir('/sys/class/net') == ['eth0']
    assert root.read('/sys/class/net/eth0/address') == 'aa:bb:cc:dd:ee:01'
    assert root.link_name('/sys/class/net/eth0/device') == '0000:3b:00.0'
    assert root.link_name('/sys/class/net/eth0/device/driver') == 'i40e'
    assert root.realpath('/sys/class/net/eth0').startswith('/sys/devices/')


def test_missing_things_read_as_none_or_empty(tmp_path):
    root = Machine(tmp_path).root()
    assert root.read('/sys/nothing') is None
    assert root.listdir('/sys/nothing') == []
    assert root.readlink('/sys/nothing') is None
    assert not root.exists('/dev/ipmi0')


def test_paths_must_be_absolute(tmp_path):
    with pytest.raises(ValueError):
        Machine(tmp_path).root().read('proc/cpuinfo')


def test_replayed_command_keeps_output_status_and_stderr(tmp_path):
    root = Machine(tmp_path).cmd('tool', 'out\n', rc=3, err='bad\n').root()
    result = root.run('tool', ['tool'])
    assert (result.returncode, result.stdout, result.stderr) == (
        3, 'out\n', 'bad\n')
    assert not result.ok


def test_command_absent_from_recording_is_not_installed(tmp_path):
    with pytest.raises(sysroot.CommandNotFound):
        Machine(tmp_path).root().run('ipmitool', ['ipmitool'])


def test_recorded_timeout_replays_as_timeout(tmp_path):
    root = Machine(tmp_path).timeout('ipmitool-lan-print-1').root()
    with pytest.raises(sysroot.CommandTimeout):
        root.run('ipmitool-lan-print-1', ['ipmitool'])


def test_live_command_that_hangs_is_killed_at_its_timeout():
    root = SystemRoot('/')
    started = time.monotonic()
    with pytest.raises(sysroot.CommandTimeout):
        root.run('sleep', ['sh', '-c', 'sleep 30 & sleep 30'], timeout=0.3)
    # The whole process group is gone, children included.
    assert time.monotonic() - started < 10


def test_live_missing_tool_is_not_found():
    with pytest.raises(sysroot.CommandNotFound):
        SystemRoot('/').run('x', ['hwbus-no-such-tool-anywhere'])


def test_live_command_runs_in_the_c_locale():
    result = SystemRoot('/').run('env', ['sh', '-c', 'echo $LC_ALL'])
    assert result.stdout.strip() == 'C'


def test_probe_replays_recorded_json_and_none_when_absent(tmp_path):
    root = Machine(tmp_path).probe('net_if_addrs', {'eth0': 1}).root()
    assert root.probe('net_if_addrs', lambda: pytest.fail('ran')) == {
        'eth0': 1}
    assert root.probe('other', lambda: pytest.fail('ran')) is None


def test_memo_runs_once_across_threads_and_caches_failures(tmp_path):
    root = Machine(tmp_path).root()
    calls = []

    def slow():
        calls.append(1)
        time.sleep(0.05)
        return 42

    threads = [threading.Thread(target=root.memo, args=('k', slow))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [1]
    assert root.memo('k', slow) == 42

    def broken():
        calls.append(2)
        raise sysroot.CommandError('nope')

    for _ in range(2):
        with pytest.raises(sysroot.CommandError):
            root.memo('b', broken)
    assert calls == [1, 2]


def test_recording_the_live_system_replays_identically(tmp_path):
    record = tmp_path / 'rec'
    live = SystemRoot('/', record_to=str(record))
    paths = ['/proc/cpuinfo', '/proc/meminfo', '/proc/cmdline']
    nets = live.listdir('/sys/class/net')
    links = {n: live.link_name(f'/sys/class/net/{n}/device') for n in nets}
    texts = {p: live.read(p) for p in paths}
    out = live.run('echo', ['echo', 'hello'])

    replay = SystemRoot(str(record))
    assert replay.listdir('/sys/class/net') == nets
    assert {n: replay.link_name(f'/sys/class/net/{n}/device')
            for n in nets} == links
    assert {p: replay.read(p) for p in paths} == texts
    assert replay.run('echo', ['whatever']) == out


def test_recording_keeps_symlinks_relative_to_the_recording(tmp_path):
    record = tmp_path / 'rec'
    live = SystemRoot('/', record_to=str(record))
    for name in live.listdir('/sys/class/net'):
        live.read(f'/sys/class/net/{name}/address')
    for dirpath, dirnames, filenames in os.walk(record):
        for entry in dirnames + filenames:
            path = os.path.join(dirpath, entry)
            if os.path.islink(path):
                assert not os.path.isabs(os.readlink(path)), path


def test_only_the_live_system_can_be_recorded(tmp_path):
    with pytest.raises(ValueError):
        SystemRoot(str(tmp_path), record_to=str(tmp_path / 'x'))


def test_empty_directories_survive_a_copy_that_drops_them(tmp_path):
    record = tmp_path / 'rec'
    live = SystemRoot('/', record_to=str(record))
    nodes = live.listdir('/sys/devices/system/node')
    # git keeps no empty directories: the recorder's marker files make
    # sure a clone still lists the same entries.
    for dirpath, dirnames, filenames in os.walk(record):
        assert dirnames or filenames, dirpath
    assert SystemRoot(str(record)).listdir('/sys/devices/system/node') == \
        nodes
