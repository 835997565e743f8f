"""ikelab.crypto.ikev2_kdf against NIST CAVS KDF135 vectors and keys logged by strongSwan.

The strongSwan tests take the nonces from real captures (decrypting CREATE_CHILD_SA with
our own cipher and checking its ICV where they are encrypted) and must reproduce the
SKEYSEED and every key strongSwan logged: agreement with an independent implementation.
"""

import json
from pathlib import Path

import pytest
from scapy.layers.inet import UDP
from scapy.utils import rdpcap

from ikelab.crypto.ikev2_kdf import child_keymat, ike_sa_keys, rekey_skeyseed, skeyseed
from ikelab.crypto.names import parse_proposal
from ikelab.crypto.prf import prf, prf_plus

VECTORS = Path(__file__).parent / "vectors"

# --- NIST CAVS 17.3 KDF135 (subset in vectors/ikev2_kdf135.fax) ---------------------------

PRF_BY_HASH = {"SHA-1": 2, "SHA-256": 5, "SHA-384": 6, "SHA-512": 7}


def _nist_cases() -> list[dict]:
    cases: list[dict] = []
    section: dict = {}
    for line in (VECTORS / "ikev2_kdf135.fax").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("["):
            name, _, value = line.strip("[]").partition(" = ")
            if value:
                section[name] = int(value)  # lengths, in bits
            else:
                section["hash"] = name
        elif line.startswith("COUNT"):
            cases.append({**section, "COUNT": line.split(" = ")[1]})
        else:
            name, _, value = line.partition(" = ")
            cases[-1][name] = bytes.fromhex(value)
    return cases


NIST = _nist_cases()


def _nist_id(case: dict) -> str:
    return f"{case['hash']}-gir{case['g^ir length']}-nonce{case['Ni length']}-count{case['COUNT']}"


def test_nist_subset_covers_every_section():
    assert len(NIST) == 27
    assert {c["hash"] for c in NIST} == set(PRF_BY_HASH)


@pytest.mark.parametrize("case", NIST, ids=_nist_id)
def test_nist_kdf135_ikev2(case):
    p = prf(PRF_BY_HASH[case["hash"]])
    ni, nr, g_ir, g_ir_new = case["Ni"], case["Nr"], case["g^ir"], case["g^ir (new)"]
    assert len(ni) * 8 == case["Ni length"] and len(g_ir) * 8 == case["g^ir length"]

    seed = skeyseed(p, ni, nr, g_ir)
    assert seed == case["SKEYSEED"]

    dkm = prf_plus(p, seed, ni + nr + case["SPIi"] + case["SPIr"], case["DKM length"] // 8)
    assert dkm.output == case["DKM"]

    sk_d = dkm.output[: p.output_length]
    child_length = case["Child SA DKM length"] // 8
    assert child_keymat(p, sk_d, ni, nr, child_length).output == case["DKM(Child SA)"]
    with_dh = child_keymat(p, sk_d, ni, nr, child_length, g_ir_new=g_ir_new)
    assert with_dh.output == case["DKM(Child SA D-H)"]
    assert rekey_skeyseed(p, sk_d, g_ir_new, ni, nr) == case["SKEYSEED(Rekey)"]


def test_ike_sa_keys_layout():
    p = prf(5)
    keys, result = ike_sa_keys(p, b"seed", b"ni", b"nr", b"i" * 8, b"r" * 8, 16, 32)
    stream = prf_plus(p, b"seed", b"ninr" + b"i" * 8 + b"r" * 8, 3 * 32 + 2 * 32 + 2 * 16).output
    assert result.output == stream
    assert list(keys.as_dict()) == ["SK_d", "SK_ai", "SK_ar", "SK_ei", "SK_er", "SK_pi", "SK_pr"]
    assert b"".join(keys.as_dict().values()) == stream
    assert [len(k) for k in keys.as_dict().values()] == [32, 32, 32, 16, 16, 32, 32]


# --- strongSwan captures (vectors/strongswan/<name>/) --------------------------------------

IKE_SA_INIT, CREATE_CHILD_SA = 34, 36
SA, KE, NONCE, SK = 33, 34, 40, 46
FLAG_INITIATOR, FLAG_RESPONSE = 0x08, 0x20


def _ike_messages(name: str) -> list[bytes]:
    """IKE messages in capture order: UDP 500, and UDP 4500 behind the non-ESP marker."""
    messages = []
    for packet in rdpcap(str(VECTORS / "strongswan" / name / "capture.pcap")):
        if UDP not in packet:
            continue
        data = bytes(packet[UDP].payload)
        if packet[UDP].dport == 4500:
            if data[:4] != bytes(4):
                continue  # ESP in UDP
            data = data[4:]
        messages.append(data)
    return messages


def _payloads(first: int, data: bytes) -> dict[int, bytes]:
    """Walk a chain of generic payload headers; payload type -> body of its first instance."""
    found: dict[int, bytes] = {}
    kind, offset = first, 0
    while kind:
        length = int.from_bytes(data[offset + 2 : offset + 4], "big")
        found.setdefault(kind, data[offset + 4 : offset + length])
        kind, offset = data[offset], offset + length
    return found


def _keys(name: str) -> dict:
    return json.loads((VECTORS / "strongswan" / name / "keys.json").read_text())


STRONGSWAN = [
    ("ikev2-psk", "aes128-sha256-modp2048", "aes128-sha256"),
    ("ikev2-gcm", "aes256gcm16-prfsha256-ecp256", "aes256gcm16"),
]


@pytest.mark.parametrize("name, ike_proposal, esp_proposal", STRONGSWAN)
def test_reproduces_strongswan_keys(name, ike_proposal, esp_proposal):
    ike = parse_proposal(ike_proposal, ike=True)
    esp = parse_proposal(esp_proposal, ike=False)
    logged = _keys(name)
    sa = logged["ike_sas"][0]
    request, response = [m for m in _ike_messages(name) if m[18] == IKE_SA_INIT]
    ni = _payloads(request[16], request[28:])[NONCE]
    nr = _payloads(response[16], response[28:])[NONCE]
    group = ike.dh[0]
    for message in (request, response):
        ke = _payloads(message[16], message[28:])[KE]
        assert int.from_bytes(ke[:2], "big") == group.number
        assert len(ke[4:]) == group.public_length

    p, encr = ike.prf[0], ike.encryption[0]
    integ_length = ike.integrity[0].key_length if ike.integrity else 0
    seed = skeyseed(p, ni, nr, bytes.fromhex(sa["dh_secret"]))
    assert seed.hex() == sa["skeyseed"]
    spi_i, spi_r = bytes.fromhex(sa["spi_i"]), bytes.fromhex(sa["spi_r"])
    keys, _ = ike_sa_keys(p, seed, ni, nr, spi_i, spi_r, encr.key_length, integ_length)
    ours = {k.lower(): v.hex() for k, v in keys.as_dict().items() if v}
    theirs = {k: v for k, v in sa.items() if k.startswith("sk_")}
    assert ours == theirs

    # The first Child SA (from IKE_AUTH): KEYMAT = prf+(SK_d, Ni | Nr), no PFS.
    encr = esp.encryption[0]
    integ_length = esp.integrity[0].key_length if esp.integrity else 0
    per_direction = encr.key_length + integ_length
    keymat = child_keymat(p, keys.sk_d, ni, nr, 2 * per_direction).output
    child = {
        "encr_i": keymat[: encr.key_length],
        "integ_i": keymat[encr.key_length : per_direction],
        "encr_r": keymat[per_direction : per_direction + encr.key_length],
        "integ_r": keymat[per_direction + encr.key_length :],
    }
    expected = logged["child_sas"][0]["keys"]
    assert {k: v.hex() for k, v in child.items() if v} == expected


def _decrypt_sk(message: bytes, encr, integ, sk_e: bytes, sk_a: bytes) -> dict[int, bytes]:
    """Check the ICV of an SK payload (RFC 7296 §3.14), decrypt it, walk its inner payloads."""
    first_inner = message[28]
    body = message[32:]
    iv, ciphertext, icv = (
        body[: encr.iv_length],
        body[encr.iv_length : -integ.icv_length],
        body[-integ.icv_length :],
    )
    assert integ.verify(sk_a, message[: -integ.icv_length], icv)
    plain = encr.decrypt(sk_e, iv, ciphertext)
    return _payloads(first_inner, plain[: -1 - plain[-1]])  # drop padding and its length


def test_reproduces_strongswan_ike_rekey():
    ike = parse_proposal("aes128-sha256-modp2048", ike=True)
    p, encr, integ = ike.prf[0], ike.encryption[0], ike.integrity[0]
    old, new = (bytes.fromhex(x) for x in ("cbf0fb52b77774cf", "d53086ae82cd1e5d"))
    sas = {bytes.fromhex(sa["spi_i"]): sa for sa in _keys("ikev2-rekey")["ike_sas"]}
    old_sa, new_sa = sas[old], sas[new]

    def sk(name: str) -> bytes:
        return bytes.fromhex(old_sa[name])

    # The CREATE_CHILD_SA pair whose SA payload proposes protocol 1 (IKE) rekeys the IKE SA.
    exchanges = {}
    for message in _ike_messages("ikev2-rekey"):
        if message[:8] != old or message[18] != CREATE_CHILD_SA:
            continue
        from_initiator = bool(message[19] & FLAG_INITIATOR)
        keys = (sk("sk_ei"), sk("sk_ai")) if from_initiator else (sk("sk_er"), sk("sk_ar"))
        inner = _decrypt_sk(message, encr, integ, *keys)
        message_id = int.from_bytes(message[20:24], "big")
        exchanges.setdefault(message_id, {})[bool(message[19] & FLAG_RESPONSE)] = inner
    ((request, response),) = [
        (e[False], e[True]) for e in exchanges.values() if e[False][SA][5] == 1
    ]
    assert request[SA][8:16] == new  # the new SA's initiator SPI, from its proposal

    seed = rekey_skeyseed(
        p, sk("sk_d"), bytes.fromhex(new_sa["dh_secret"]), request[NONCE], response[NONCE]
    )
    assert seed.hex() == new_sa["skeyseed"]
    spi_r = bytes.fromhex(new_sa["spi_r"])
    assert response[SA][8:16] == spi_r
    keys, _ = ike_sa_keys(
        p, seed, request[NONCE], response[NONCE], new, spi_r, encr.key_length, integ.key_length
    )
    assert {k.lower(): v.hex() for k, v in keys.as_dict().items()} == {
        k: v for k, v in new_sa.items() if k.startswith("sk_")
    }
