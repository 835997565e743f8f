"""Kernel XFRM: the `ip xfrm` commands that install a Child SA, and the probe for kernel ESP.

The same commands are shown whichever datapath is active: they are what a student would type to
build this tunnel by hand on a Linux gateway.
"""

from __future__ import annotations

import subprocess

from ikelab.esp.sa import ChildSa, EspSa

# Linux crypto API names (ip-xfrm(8)).
KERNEL_CIPHERS = {"aes128": "cbc(aes)", "aes192": "cbc(aes)", "aes256": "cbc(aes)"}
KERNEL_AEAD = {"aes128gcm16": "rfc4106(gcm(aes))", "aes192gcm16": "rfc4106(gcm(aes))", "aes256gcm16": "rfc4106(gcm(aes))"}
KERNEL_AUTH = {"sha1": ("hmac(sha1)", 96), "sha256": ("hmac(sha256)", 128), "sha384": ("hmac(sha384)", 192), "sha512": ("hmac(sha512)", 256)}


def state_args(sa: EspSa, reqid: int) -> list[str]:
    """`ip xfrm state add` arguments for one direction."""
    args = ["xfrm", "state", "add", "src", sa.src, "dst", sa.dst, "proto", "esp", "spi", "0x" + sa.spi.hex(),
            "reqid", str(reqid), "mode", "tunnel", "replay-window", "64"]
    if sa.cipher.is_aead:
        args += ["aead", KERNEL_AEAD[sa.cipher.name], "0x" + sa.encryption_key.hex(), str(8 * sa.cipher.icv_length)]
    else:
        auth, bits = KERNEL_AUTH[sa.integrity.name]
        args += ["enc", KERNEL_CIPHERS[sa.cipher.name], "0x" + sa.encryption_key.hex()]
        args += ["auth-trunc", auth, "0x" + sa.integrity_key.hex(), str(bits)]
    return args


def policy_args(direction: str, src_net: str, dst_net: str, tunnel: EspSa, reqid: int) -> list[str]:
    return ["xfrm", "policy", "add", "src", src_net, "dst", dst_net, "dir", direction,
            "tmpl", "src", tunnel.src, "dst", tunnel.dst, "proto", "esp", "reqid", str(reqid), "mode", "tunnel"]


def _ip(namespace: str | None) -> list[str]:
    return ["ip", "-n", namespace] if namespace else ["ip"]


def child_sa_commands(namespace: str | None, child: ChildSa, reqid: int = 1) -> list[list[str]]:
    """States for both directions and the policies that steer the protected subnets into them."""
    n = _ip(namespace)
    commands = [n + state_args(child.outbound, reqid), n + state_args(child.inbound, reqid)]
    for local in child.local_ts:
        for remote in child.remote_ts:
            commands.append(n + policy_args("out", local, remote, child.outbound, reqid))
            commands.append(n + policy_args("in", remote, local, child.inbound, reqid))
    return commands


def delete_commands(namespace: str | None, child: ChildSa) -> list[list[str]]:
    n = _ip(namespace)
    commands = [n + ["xfrm", "state", "delete", "src", sa.src, "dst", sa.dst, "proto", "esp", "spi", "0x" + sa.spi.hex()]
                for sa in (child.outbound, child.inbound)]
    for local in child.local_ts:
        for remote in child.remote_ts:
            commands.append(n + ["xfrm", "policy", "delete", "src", local, "dst", remote, "dir", "out"])
            commands.append(n + ["xfrm", "policy", "delete", "src", remote, "dst", local, "dir", "in"])
    return commands


def kernel_supports(namespace: str, child: ChildSa) -> tuple[bool, str]:
    """Try to add this Child SA's outbound state in a scratch namespace; say why it failed."""
    args = ["ip", "-n", namespace] + state_args(child.outbound, 1)
    result = subprocess.run(args, capture_output=True, text=True)
    if result.returncode != 0:
        reason = result.stderr.strip() or "unknown error"
        return False, f"the kernel refused an ESP state ({reason})"
    # Only the probe's own state goes: `ikelab peer` probes in a namespace other runs may use too.
    sa = child.outbound
    subprocess.run(["ip", "-n", namespace, "xfrm", "state", "delete", "src", sa.src, "dst", sa.dst, "proto", "esp",
                    "spi", "0x" + sa.spi.hex()], capture_output=True)
    return True, "the kernel accepts ESP states with these algorithms"
