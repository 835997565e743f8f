"""ikelab.crypto.ikev1_kdf against NIST CAVS KDF135 and against every key strongSwan logged.

The strongSwan tests take the nonces, cookies and KE values from the captures and the DH secret
from strongSwan's log, and must reproduce SKEYID and its children, Ka and the IV; then, with those
keys alone, decrypt main mode messages 5 and 6 (or aggressive mode message 3) and quick mode,
reproduce every HASH payload found inside, and the Child SA keys.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from test_ikev1_wire import VECTORS, ike_datagrams

from ikelab.crypto import ikev1_kdf as kdf
from ikelab.crypto.cipher import cipher
from ikelab.crypto.prf import prf
from ikelab.wire.isakmp import HashPayload, IdPayload, KePayload, NoncePayload, SaPayload, decode_message, decode_payloads

PRF_BY_HASH = {"SHA-1": 2, "SHA-256": 5, "SHA-384": 6, "SHA-512": 7}
PSK = b"interop-test-psk"  # the captures' pre-shared key (captures/strongswan/README.md)


def _nist_cases(name: str) -> list[dict]:
    cases: list[dict] = []
    section: dict = {}
    for line in (VECTORS / name).read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("["):
            key, _, value = line.strip("[]").partition(" = ")
            if value:
                section[key] = int(value)
            else:
                section["hash"] = key
        elif line.startswith("COUNT"):
            cases.append({**section, "COUNT": line.split(" = ")[1]})
        else:
            key, _, value = line.partition(" = ")
            cases[-1][key] = bytes.fromhex(value)
    return cases


PSK_CASES = _nist_cases("kdf135_psk.fax")
DSA_CASES = _nist_cases("kdf135_dsa.fax")


def _case_id(case: dict) -> str:
    return f"{case['hash']}-gxy{case['g^xy length']}-nonce{case['Ni length']}-count{case['COUNT']}"


def test_nist_subsets_cover_every_hash():
    assert len(PSK_CASES) == len(DSA_CASES) == 34
    assert {c["hash"] for c in PSK_CASES} == {c["hash"] for c in DSA_CASES} == set(PRF_BY_HASH)


def _check_children(p, case, skeyid):
    children = kdf.skeyid_children(p, skeyid, case["g^xy"], case["CKY_I"], case["CKY_R"])
    assert (children.d.output, children.a.output, children.e.output) == (case["SKEYID_d"], case["SKEYID_a"], case["SKEYID_e"])


@pytest.mark.parametrize("case", PSK_CASES, ids=_case_id)
def test_nist_kdf135_ikev1_psk(case):
    p = prf(PRF_BY_HASH[case["hash"]])
    skeyid = kdf.skeyid_psk(p, case["pre-shared-key"], case["Ni"], case["Nr"])
    assert skeyid == case["SKEYID"]
    _check_children(p, case, skeyid)


@pytest.mark.parametrize("case", DSA_CASES, ids=_case_id)
def test_nist_kdf135_ikev1_signatures(case):
    p = prf(PRF_BY_HASH[case["hash"]])
    skeyid = kdf.skeyid_signature(p, case["Ni"], case["Nr"], case["g^xy"])
    assert skeyid == case["SKEYID"]
    _check_children(p, case, skeyid)


def test_children_parts_are_what_rfc_2409_concatenates():
    children = kdf.skeyid_children(prf(2), b"K", b"gxy", b"I" * 8, b"R" * 8)
    assert kdf.joined(children.d.parts) == b"gxy" + b"I" * 8 + b"R" * 8 + b"\x00"
    assert kdf.joined(children.e.parts) == children.a.output + b"gxy" + b"I" * 8 + b"R" * 8 + b"\x02"


def test_encryption_key_expansion_appendix_b():
    """SHA-1 gives 20 bytes; AES-256 needs 32: Ka = K1 | K2 with K1 = prf(SKEYID_e, 0), K2 = prf(SKEYID_e, K1)."""
    skeyid_e = bytes(range(20))
    k1 = hmac.new(skeyid_e, b"\x00", hashlib.sha1).digest()
    k2 = hmac.new(skeyid_e, k1, hashlib.sha1).digest()
    expansion = kdf.encryption_key(prf(2), skeyid_e, 32)
    assert expansion.output == (k1 + k2)[:32]
    assert [b.input for b in expansion.blocks] == [b"\x00", k1]
    short = kdf.encryption_key(prf(5), bytes(32), 16)
    assert short.output == bytes(16) and short.blocks == ()


def test_keymat_expansion():
    key, seed = b"d" * 32, [("protocol", b"\x03"), ("SPI", b"SPI!"), ("Ni_b", b"n" * 16), ("Nr_b", b"r" * 16)]
    s = kdf.joined(seed)
    k1 = hmac.new(key, s, hashlib.sha256).digest()
    k2 = hmac.new(key, k1 + s, hashlib.sha256).digest()
    assert kdf.keymat(prf(5), key, seed, 48).output == (k1 + k2)[:48]
    with_pfs = kdf.keymat_seed(3, b"SPI!", b"n", b"r", g_qm=b"g")
    assert kdf.joined(with_pfs) == b"g\x03SPI!nr"


# --- strongSwan ------------------------------------------------------------------------------


class Capture:
    """One strongSwan capture taken apart with nothing but ikelab and the logged DH secret."""

    def __init__(self, name: str) -> None:
        self.data = ike_datagrams(name)
        self.messages = [decode_message(d) for d in self.data]
        logged = json.loads((VECTORS / f"{name}.keys.json").read_text())
        self.ike, self.child = logged["ike_sas"][0], logged["child_sas"][0]
        self.prf, self.cipher = prf(5), cipher(12, 128)  # both captures: aes128-sha256-modp2048
        first = self.messages[0].message
        self.cky_i, self.cky_r = first.header.cky_i, self.messages[1].message.header.cky_r
        self.g_xy = bytes.fromhex(self.ike["dh_secret"])
        self.sa_i_b = self.messages[0].raw[[type(p) for p in first.payloads].index(SaPayload)][4:]


def _phase1_values(cap: Capture, ke_i_at: int, ke_r_at: int):
    mi, mr = cap.messages[ke_i_at].message, cap.messages[ke_r_at].message
    return mi.find(KePayload).data, mr.find(KePayload).data, mi.find(NoncePayload).data, mr.find(NoncePayload).data


def _keys(cap: Capture, ni: bytes, nr: bytes, ke_i: bytes, ke_r: bytes):
    skeyid = kdf.skeyid_psk(cap.prf, PSK, ni, nr)
    children = kdf.skeyid_children(cap.prf, skeyid, cap.g_xy, cap.cky_i, cap.cky_r)
    ka = kdf.encryption_key(cap.prf, children.e.output, 16).output
    iv = kdf.phase1_iv(cap.prf, ke_i, ke_r, 16)
    logged = {k: cap.ike[k] for k in ("skeyid", "skeyid_d", "skeyid_a", "skeyid_e", "ka", "iv")}
    ours = [skeyid, children.d.output, children.a.output, children.e.output, ka, iv]
    assert dict(zip(logged, (v.hex() for v in ours), strict=True)) == logged
    return skeyid, children, ka, iv


def _open(cap: Capture, index: int, ka: bytes, iv: bytes):
    message = cap.messages[index].message
    plaintext = cap.cipher.decrypt(ka, iv, message.encrypted)
    return decode_payloads(plaintext, message.header.next_payload), message.encrypted[-16:]


def _quick_mode(cap: Capture, first: int, children, ka: bytes, last_phase1_block: bytes) -> None:
    mid = cap.data[first][20:24]
    iv = kdf.phase2_iv(cap.prf, last_phase1_block, mid, 16)
    q1, iv = _open(cap, first, ka, iv)
    q2, iv = _open(cap, first + 1, ka, iv)
    q3, _ = _open(cap, first + 2, ka, iv)
    key = children.a.output
    ni, nr = q1.payloads[2].data, q2.payloads[2].data
    parts = [
        (q1, kdf.quick_hash_1_parts(mid, b"".join(q1.raw[1:]))),
        (q2, kdf.quick_hash_2_parts(mid, ni, b"".join(q2.raw[1:]))),
        (q3, kdf.quick_hash_3_parts(mid, ni, nr)),
    ]
    for chain, inputs in parts:
        assert isinstance(chain.payloads[0], HashPayload)
        assert cap.prf(key, kdf.joined(inputs)) == chain.payloads[0].data
    spi_i, spi_r = q1.payloads[1].proposals[0].spi, q2.payloads[1].proposals[0].spi
    for spi, direction in ((spi_r, "i"), (spi_i, "r")):  # each direction: the SPI its receiver chose
        material = kdf.keymat(cap.prf, children.d.output, kdf.keymat_seed(3, spi, ni, nr), 16 + 32).output
        assert material[:16].hex() == cap.child["keys"][f"encr_{direction}"]
        assert material[16:].hex() == cap.child["keys"][f"integ_{direction}"]


def test_strongswan_main_mode_keys_hashes_and_quick_mode():
    cap = Capture("ikev1-main-psk")
    ke_i, ke_r, ni, nr = _phase1_values(cap, 2, 3)
    skeyid, children, ka, iv = _keys(cap, ni, nr, ke_i, ke_r)
    m5, iv = _open(cap, 4, ka, iv)
    m6, last_block = _open(cap, 5, ka, iv)
    assert m5.payloads[0] == IdPayload(2, b"a.example") and m6.payloads[0] == IdPayload(2, b"b.example")
    hash_i = cap.prf(skeyid, kdf.joined(kdf.hash_i_parts(ke_i, ke_r, cap.cky_i, cap.cky_r, cap.sa_i_b, m5.raw[0][4:])))
    hash_r = cap.prf(skeyid, kdf.joined(kdf.hash_r_parts(ke_i, ke_r, cap.cky_i, cap.cky_r, cap.sa_i_b, m6.raw[0][4:])))
    assert (hash_i, hash_r) == (m5.payloads[1].data, m6.payloads[1].data)
    _quick_mode(cap, 6, children, ka, last_block)


def test_strongswan_aggressive_mode_keys_hashes_and_quick_mode():
    cap = Capture("ikev1-aggr-psk")
    ke_i, ke_r, ni, nr = _phase1_values(cap, 0, 1)
    skeyid, children, ka, iv = _keys(cap, ni, nr, ke_i, ke_r)
    m1, m2 = cap.messages[0], cap.messages[1]
    id_ii_b = m1.raw[[type(p) for p in m1.message.payloads].index(IdPayload)][4:]
    id_ir_b = m2.raw[[type(p) for p in m2.message.payloads].index(IdPayload)][4:]
    hash_r = cap.prf(skeyid, kdf.joined(kdf.hash_r_parts(ke_i, ke_r, cap.cky_i, cap.cky_r, cap.sa_i_b, id_ir_b)))
    assert hash_r == m2.message.find(HashPayload).data  # in the clear: what the PSK attack recomputes
    m3, last_block = _open(cap, 2, ka, iv)
    hash_i = cap.prf(skeyid, kdf.joined(kdf.hash_i_parts(ke_i, ke_r, cap.cky_i, cap.cky_r, cap.sa_i_b, id_ii_b)))
    assert hash_i == m3.payloads[0].data
    _quick_mode(cap, 3, children, ka, last_block)


def test_phase1_keys_from_given_inputs_match_strongswan():
    """What `ikelab keys ikev1` computes: every phase 1 key from values a student copies off the screen."""
    cap = Capture("ikev1-main-psk")
    ke_i, ke_r, ni, nr = _phase1_values(cap, 2, 3)
    keys = kdf.phase1_keys(cap.prf, ni, nr, cap.g_xy, cap.cky_i, cap.cky_r, 16, psk=PSK, g_xi=ke_i, g_xr=ke_r)
    assert {name.lower(): value.hex() for name, value in keys.items()} == {
        k: cap.ike[k] for k in ("skeyid", "skeyid_d", "skeyid_a", "skeyid_e", "ka", "iv")
    }
    signatures = kdf.phase1_keys(cap.prf, ni, nr, cap.g_xy, cap.cky_i, cap.cky_r, 16)
    assert signatures["SKEYID"] == kdf.skeyid_signature(cap.prf, ni, nr, cap.g_xy) and "IV" not in signatures
