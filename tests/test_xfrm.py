"""The kernel XFRM backend: the exact `ip xfrm` commands, and the probe that picks a datapath."""

from __future__ import annotations

from conftest import needs_lab, run, lesson_with
from ikelab.lab import xfrm
from ikelab.lab.datapath import KernelXfrm, UserspaceEsp, choose, command_text
from ikelab.lab.lab import sample_child
from ikelab.lab.netns import Topology
from ikelab.lessons import load_lesson


def test_cbc_hmac_commands():
    child = run().outcome.children["left"][0]
    lines = [command_text(c) for c in xfrm.child_sa_commands("ns1", child)]
    out, inn = child.outbound, child.inbound
    assert lines[0] == (
        f"ip -n ns1 xfrm state add src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x{out.spi.hex()} reqid 1 mode tunnel "
        f"replay-window 64 enc 'cbc(aes)' 0x{out.encryption_key.hex()} auth-trunc 'hmac(sha256)' 0x{out.integrity_key.hex()} 128"
    )
    assert lines[1].startswith(f"ip -n ns1 xfrm state add src 192.0.2.2 dst 192.0.2.1 proto esp spi 0x{inn.spi.hex()} ")
    assert lines[2] == ("ip -n ns1 xfrm policy add src 198.51.100.0/24 dst 203.0.113.0/24 dir out "
                        "tmpl src 192.0.2.1 dst 192.0.2.2 proto esp reqid 1 mode tunnel")
    assert lines[3] == ("ip -n ns1 xfrm policy add src 203.0.113.0/24 dst 198.51.100.0/24 dir in "
                        "tmpl src 192.0.2.2 dst 192.0.2.1 proto esp reqid 1 mode tunnel")


def test_gcm_commands_carry_key_and_salt():
    child = run(lesson_with(both={"esp": "aes256gcm16"})).outcome.children["right"][0]
    line = command_text(xfrm.state_args(child.outbound, 7))
    assert f"aead 'rfc4106(gcm(aes))' 0x{child.outbound.encryption_key.hex()} 128" in line
    assert len(child.outbound.encryption_key) == 36 and "reqid 7" in line and "auth-trunc" not in line


def test_delete_commands_mirror_install():
    child = run().outcome.children["left"][0]
    lines = [command_text(c) for c in xfrm.delete_commands(None, child)]
    assert lines[0] == f"ip xfrm state delete src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x{child.outbound.spi.hex()}"
    assert "xfrm policy delete src 198.51.100.0/24 dst 203.0.113.0/24 dir out" in lines[2]


@needs_lab()
def test_probe_picks_the_backend_the_kernel_supports():
    topology = Topology([("left", "192.0.2.1", "198.51.100.1"), ("right", "192.0.2.2", "203.0.113.1")])
    with topology:
        sample = sample_child(load_lesson("ikev2-psk"))
        supported, why = xfrm.kernel_supports(topology.sides["left"].namespace, sample)
        chosen = choose(topology, sample)
        if supported:
            assert isinstance(chosen, KernelXfrm)
        else:
            assert isinstance(chosen, UserspaceEsp)
            assert "the kernel refused an ESP state" in chosen.reason and "userspace" in chosen.reason
