"""The sample configuration in etc/ is what the generator makes today."""

import pathlib

from oslo_config import generator

TOP = pathlib.Path(__file__).parents[2]


def test_sample_config_is_in_sync(tmp_path, monkeypatch):
    monkeypatch.chdir(TOP)
    out = tmp_path / 'hwbus.conf.sample'
    generator.main(['--config-file',
                    'etc/oslo-config-generator/hwbus.conf',
                    '--output-file', str(out)])
    committed = (TOP / 'etc' / 'hwbus' / 'hwbus.conf.sample').read_text()
    assert out.read_text() == committed, (
        'etc/hwbus/hwbus.conf.sample is stale: run "tox -e genconfig"')


def test_every_option_has_help():
    from hwbus.conf import ironic, opts
    # keystoneauth's own options (in [ironic]) are theirs to document.
    foreign = {o.dest for o in ironic.list_opts()} - {
        o.dest for o in ironic.OPTS}
    for group, options in opts.list_opts():
        assert group.help, group.name
        for opt in options:
            if group.name == 'ironic' and opt.dest in foreign:
                continue
            assert opt.help and len(opt.help) > 20, (group.name, opt.name)
