"""Namespace mode of the lab: addresses and names derived from the SIP port, and the LabConfig rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.contracts.errors import InputError, LabError
from harness.lab.config import LabConfig, lab_target
from harness.lab.netns import Netns, NetnsPlan, default_address, is_netns_address


def test_each_sip_port_gets_its_own_slash30() -> None:
    assert default_address(46960) == "10.233.221.194"
    assert default_address(46961) != default_address(46960)
    plan = NetnsPlan.for_address(default_address(46960))
    assert (plan.name, plan.root_if, plan.ns_if) == ("hlab14192", "hl14192r", "hl14192n")
    assert (plan.root_ip, plan.ns_ip) == ("10.233.221.193", "10.233.221.194")
    assert len(plan.root_if) <= 15 and plan.name.startswith("hl")  # interface name limit; our prefix
    last = NetnsPlan.for_address(default_address(16383))
    assert last.ns_ip == "10.233.255.254" and last.root_ip == "10.233.255.253"


def test_namespace_addresses_are_recognised() -> None:
    assert is_netns_address("10.233.0.2")
    assert not is_netns_address("10.233.0.1")  # the root side
    assert not is_netns_address("10.234.0.2") and not is_netns_address("127.0.0.1")
    assert not is_netns_address("not-an-ip")
    with pytest.raises(LabError, match="not a lab namespace address"):
        NetnsPlan.for_address("127.0.0.1")


def test_daemons_run_inside_the_namespace(tmp_path: Path) -> None:
    ns = Netns(NetnsPlan.for_address("10.233.0.6"), tmp_path)
    assert ns.exec_argv(["kamailio", "-DD"]) == ["ip", "netns", "exec", "hlab1", "kamailio", "-DD"]
    assert ns.control.path == tmp_path / "run" / "netem.sock"


def test_config_from_env_picks_the_namespace_address() -> None:
    cfg = LabConfig.from_env({"HARNESS_LAB_NETNS": "1", "HARNESS_LAB_SIP_PORT": "46960"})
    assert cfg.netns and cfg.ip == "10.233.221.194"
    assert LabConfig.from_env({}, netns=True, sip_port=46960).ip == cfg.ip
    assert not LabConfig.from_env({"HARNESS_LAB_NETNS": "0"}).netns
    assert LabConfig.from_env({}).ip == "127.0.0.1"
    assert cfg.as_dict()["netns"] is True
    target = lab_target(cfg, Path("lab"))
    assert target.is_lab and target.host == "10.233.221.194" and target.port == 46960


def test_config_rejects_addresses_that_do_not_fit_the_mode() -> None:
    with pytest.raises(InputError, match="cannot be a namespace address"):
        LabConfig.from_env({"HARNESS_LAB_NETNS": "1", "HARNESS_LAB_IP": "127.0.0.1"})
    with pytest.raises(InputError, match="not a loopback address"):
        LabConfig(ip="10.233.0.2").validate()
    LabConfig(ip="10.233.0.2", netns=True).validate()
