"""IKEv1 phase 1 with signatures (RFC 2409 §5.1): certificates from the lab CA, SIG_I/SIG_R, and
every way the peer's certificate or signature can be refused, each with a one-line reason."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.utils import NoDigestInfo
from test_ikev1_handshake import carries_ping, config, run_configs, summaries
from test_ikev1_hostile import deliver

from ikelab.crypto import ikev1_kdf as kdf
from ikelab.ikev1.exchanges import authentication
from ikelab.ikev2.config import Identity
from ikelab.pki.ca import SEEDED_EPOCH, LabCa
from ikelab.trace import CertificateEvent, Ikev1HashEvent, Ikev1KeysEvent, NoteEvent, PrfEvent, ProposalEvent
from ikelab.wire.isakmp import SigPayload

NOW = SEEDED_EPOCH


@cache
def lab_ca(name: str) -> LabCa:
    return LabCa.create(name, "ecdsa256", NOW)


@cache
def issued(who: str, key: str = "rsa2048", ca: str = "ikelab Lab CA", **kw):
    san = kw.pop("san", (f"{who}.example",))
    return lab_ca(ca).issue(f"{who}.example", san, (), key, **kw)


def cert_config(name: str, key: str = "rsa2048", *, ca: str = "ikelab Lab CA", trusted: str = "ikelab Lab CA", **changes):
    cert = issued(name, key, ca)
    pki = dict(auth="pubkey", psk=b"", certificate=cert.certificate, private_key=cert.private_key,
               trusted_cas=(lab_ca(trusted).certificate,), clock_origin=NOW)
    return config(name, **(pki | changes))


def run_certs(left=None, right=None, **kw):
    return run_configs(cert_config("left", **(left or {})), cert_config("right", **(right or {})), **kw)


@pytest.mark.parametrize("key", ["rsa2048", "ecdsa256", "ecdsa384"])
@pytest.mark.parametrize("mode", ["main", "aggressive"])
def test_signature_handshake_then_quick_mode(mode, key):
    r = run_certs({"key": key, "mode": mode}, {"key": key})
    assert r.success and carries_ping(r), (r.failed, r.notes("left"), r.notes("right"))
    if mode == "main":
        assert summaries(r)[:6] == [
            "left Main Mode message 1: HDR, SA, VID, VID",
            "right Main Mode message 2: HDR, SA, VID, VID",
            "left Main Mode message 3: HDR, KE, Ni, CR, NAT-D, NAT-D",
            "right Main Mode message 4: HDR, KE, Nr, CR, NAT-D, NAT-D",
            "left Main Mode message 5: HDR*, IDii, CERT, SIG_I, N(INITIAL_CONTACT)",
            "right Main Mode message 6: HDR*, IDir, CERT, SIG_R",
        ]
    else:
        assert summaries(r)[:3] == [
            "left Aggressive Mode message 1: HDR, SA, KE, Ni, IDii, CR, VID, VID",
            "right Aggressive Mode message 2: HDR, SA, KE, Nr, IDir, CR, VID, VID, NAT-D, NAT-D, CERT, SIG_R",
            "left Aggressive Mode message 3: HDR*, CERT, SIG_I, NAT-D, NAT-D",
        ]
    method = {"rsa2048": "RSA_SIGNATURES", "ecdsa256": "ECDSA_SHA256_P256", "ecdsa384": "ECDSA_SHA384_P384"}[key]
    assert r.trace.of(ProposalEvent, "right")[0].chosen.endswith(method)
    # With ECDSA, HASH_I/HASH_R use the method's hash (RFC 4754), not the negotiated SHA-256.
    hash_i = next(e for e in r.trace.of(Ikev1HashEvent, "left") if e.label == "HASH_I")
    assert len(hash_i.output) == {"ecdsa384": 48}.get(key, 32)
    assert ("PRF_HMAC_SHA2_384" in hash_i.prf) == (key == "ecdsa384")
    for peer in ("left", "right"):
        (cert,) = r.trace.of(CertificateEvent, peer)
        assert cert.ok and [c["name"] for c in cert.checks if not c["ok"]] == []
        verified = [e for e in r.trace.of(Ikev1HashEvent, peer) if e.label.startswith("SIG_") and e.action == "verified"]
        assert len(verified) == 1 and verified[0].ok


@pytest.mark.parametrize("mode", ["main", "aggressive"])
@pytest.mark.parametrize("left_key, right_key", [("ecdsa256", "ecdsa384"), ("ecdsa384", "ecdsa256"), ("ecdsa521", "ecdsa256")])
def test_ecdsa_keys_on_different_curves_sign_the_agreed_methods_hash(mode, left_key, right_key):
    """The initiator's key names the ECDSA method; HASH is made with that method's hash and each side
    signs it on its own curve (what strongSwan does), with a warning naming both curves."""
    r = run_certs({"key": left_key, "mode": mode}, {"key": right_key})
    assert r.success and carries_ping(r), (r.failed, r.notes("left"), r.notes("right"))
    digest = {"ecdsa256": 32, "ecdsa384": 48, "ecdsa521": 64}[left_key]
    width = {"ecdsa256": 64, "ecdsa384": 96, "ecdsa521": 132}
    for peer, own, other in (("left", left_key, right_key), ("right", right_key, left_key)):
        signed = {e.action: e for e in r.trace.of(Ikev1HashEvent, peer) if e.label.startswith("SIG_")}
        assert [len(v) for v in signed["computed"].parts.values()] == [digest] and len(signed["computed"].output) == width[own]
        assert signed["verified"].ok and len(signed["verified"].output) == width[other]
    (ours,) = [e.text for e in r.trace.of(NoteEvent, "right") if "RFC 4754 pairs with" in e.text and e.text.startswith("our ")]
    assert r.trace.of(ProposalEvent, "right")[0].chosen.split()[-1] in ours


def test_skeyid_for_signatures_is_keyed_with_the_nonces_and_traced():
    r = run_certs()
    for peer in ("left", "right"):
        skeyid = next(e for e in r.trace.of(PrfEvent, peer) if e.label == "SKEYID")
        assert skeyid.formula.startswith("SKEYID = prf(Ni_b | Nr_b, g^xy)")
        sa = r.peers[peer]
        keys = r.trace.of(Ikev1KeysEvent, peer)[0].keys
        assert keys["SKEYID"] == skeyid.output == kdf.skeyid_signature(sa.established()[0].ike.prf, skeyid.key[:32], skeyid.key[32:], skeyid.data)


def test_rsa_sig_is_pkcs1_over_the_bare_hash():
    """SIG_I is HASH_I under the private key with PKCS#1 type 1 padding and no DigestInfo: what
    strongSwan's SIGN_RSA_EMSA_PKCS1_NULL makes; checked here against cryptography directly."""
    r = run_certs()
    sig_i = next(e for e in r.trace.of(Ikev1HashEvent, "left") if e.label == "SIG_I")
    hash_i = next(e for e in r.trace.of(Ikev1HashEvent, "left") if e.label == "HASH_I")
    assert sig_i.parts == {"HASH_I": hash_i.output}
    public = issued("left", "rsa2048", "ikelab Lab CA").certificate.public_key()
    assert public.recover_data_from_signature(sig_i.output, padding.PKCS1v15(), None) == hash_i.output
    public.verify(sig_i.output, hash_i.output, padding.PKCS1v15(), NoDigestInfo())


def _refused(r, peer: str) -> str:
    assert not r.success
    return r.failed[peer].reason


def test_certificate_from_an_unknown_ca_is_refused():
    r = run_certs(right={"ca": "Mallory CA"})
    reason = _refused(r, "left")
    assert "responder authentication failed: the peer's certificate is refused" in reason
    assert "Mallory CA" in reason and "not by the lab CA" in reason
    assert r.failed["left"].notify == "AUTHENTICATION_FAILED"


def test_expired_certificate_is_refused():
    expired = lab_ca("ikelab Lab CA").issue("right.example", ("right.example",), (), "rsa2048", NOW - dt.timedelta(days=30), NOW - dt.timedelta(days=1))
    right = cert_config("right", certificate=expired.certificate, private_key=expired.private_key)
    r = run_configs(cert_config("left"), right)
    assert "expired" in _refused(r, "left")


def test_identity_not_in_the_certificate_is_refused():
    r = run_certs(right={"local_id": Identity.parse("mallory.example")})
    reason = _refused(r, "left")
    assert "mallory.example" in reason and "certificate" in reason


def test_dn_identity_matches_the_certificate_subject():
    subject = str(Identity.from_wire(9, issued("right", "rsa2048", "ikelab Lab CA").certificate.subject.public_bytes()))
    r = run_certs(right={"local_id": Identity.parse(subject)}, left={"remote_id": Identity.parse(subject)})
    assert r.success, r.failed
    assert next(e for e in r.trace.of(Ikev1HashEvent, "left") if e.label == "HASH_R").parts["IDir_b"][0] == 9


def test_psk_on_one_side_signatures_on_the_other_gives_no_proposal_chosen():
    r = run_configs(config("left"), cert_config("right"))
    assert r.failed["left"].notify == "NO_PROPOSAL_CHOSEN"
    reasons = r.trace.of(ProposalEvent, "right")[0].reasons
    assert any("PRE_SHARED_KEY, but we are configured for RSA signatures" in x for x in reasons)


def test_rsa_and_ecdsa_keys_do_not_meet():
    r = run_certs(right={"key": "ecdsa256"})
    assert r.failed["left"].notify == "NO_PROPOSAL_CHOSEN"


def test_an_ed25519_key_has_no_ikev1_method():
    r = run_certs(left={"key": "ed25519"})
    assert "IKEv1 has no signature method for an Ed25519" in r.failed["left"].reason


# --- hostile input: a peer that sends broken CERT or SIG payloads ------------------------------------


def _tamper(r_builder, mutate):
    """Run with right's phase 1 proof payloads passed through `mutate` before they are sent."""
    original = authentication.own_proof

    def proof(peer, sa, **kw):
        payloads = original(peer, sa, **kw)
        return mutate(payloads) if peer.config.name == "right" else payloads

    authentication.own_proof = proof
    try:
        return r_builder()
    finally:
        authentication.own_proof = original


@pytest.mark.parametrize("mode", ["main", "aggressive"])
@pytest.mark.parametrize("mutation, words", [
    (lambda ps: [ps[0], SigPayload(bytes(len(ps[1].data)))], "SIG_R of right.example is wrong"),
    (lambda ps: [ps[0], SigPayload(ps[1].data[:-1])], "the SIG payload has 255"),
    (lambda ps: [ps[0], SigPayload(b"")], "SIG_R of right.example is wrong"),
    (lambda ps: [ps[1]], "no certificate (CERT payload)"),
    (lambda ps: [ps[0]], "lacks the SIG payload"),
    (lambda ps: [type(ps[0])(4, b"\x30\x03\x02\x01"), ps[1]], "certificate is refused"),
    (lambda ps: [type(ps[0])(4, b""), ps[1]], "certificate is refused"),
    (lambda ps: [type(ps[0])(1, ps[0].data), ps[1]], "no certificate (CERT payload)"),
])
def test_broken_cert_or_sig_is_refused_with_a_reason(mode, mutation, words):
    r = _tamper(lambda: run_certs({"mode": mode}), mutation)
    reason = _refused(r, "left")
    assert words in reason and "\n" not in reason
    assert r.failed["left"].notify == "AUTHENTICATION_FAILED"
    assert not [e for e in r.trace.of(NoteEvent) if e.text.startswith("internal error")]


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
@pytest.mark.parametrize("mode", ["main", "aggressive"])
def test_tshark_decrypts_phase1_with_certificates(tmp_path, mode):
    """Wireshark, with the Ka from the ikev1_decryption_table, finds our certificates and signatures."""
    from ikelab.export.pcap import write_pcapng

    r = run_certs({"mode": mode})
    assert r.success
    path = tmp_path / "ikev1-certs.pcapng"
    write_pcapng(path, r.trace)
    keys = r.trace.of(Ikev1KeysEvent, "left")[0]
    record = f"{keys.cky_i.hex()},{keys.keys['Ka'].hex()}"
    out = subprocess.run(
        ["tshark", "-r", str(path), "-o", f"uat:ikev1_decryption_table:{record}", "-T", "fields",
         "-e", "isakmp.sig", "-e", "isakmp.cert.data", "-e", "_ws.malformed"],
        capture_output=True, text=True, check=True,
    ).stdout.split("\n")
    rows = [line.split("\t") for line in out if line.strip()]
    signatures = [row[0] for row in rows if row[0]]
    ours = [e.output.hex() for e in r.trace.of(Ikev1HashEvent) if e.label.startswith("SIG_") and e.action == "computed"]
    assert signatures == ours and len(ours) == 2
    assert sum(1 for row in rows if row[1]) == 2  # one CERT per side, in messages 5/6 (or 2/3)
    assert not any(row[-1] for row in rows)


@pytest.mark.parametrize("mutation, words", [
    (lambda ps: [ps[0], SigPayload(ps[1].data[:-1])], "signatures are r|s of 64 bytes, the SIG payload has 63"),
    (lambda ps: [ps[0], SigPayload(bytes(64))], "the ECDSA signature does not verify"),
])
def test_broken_ecdsa_sig_is_refused_with_a_reason(mutation, words):
    r = _tamper(lambda: run_certs({"key": "ecdsa256"}, {"key": "ecdsa256"}), mutation)
    assert words in _refused(r, "left")


@pytest.fixture(scope="module")
def cert_references():
    fast = {"ike_proposals": "aes128-sha256-curve25519", "esp_proposals": "aes128-sha256"}
    return [run_certs({**fast}, fast), run_certs({**fast, "mode": "aggressive"}, fast),
            run_certs({**fast, "key": "ecdsa256", "mode": "aggressive"}, {**fast, "key": "ecdsa256"})]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutated_certificate_messages_never_raise(cert_references, data):
    """Flipped, cut or extended messages of certificate handshakes (CERT, CR and SIG in the clear in
    aggressive mode): each is dropped or refused with a reason, never an internal error."""
    reference = data.draw(st.sampled_from(cert_references))
    index = data.draw(st.integers(0, 3))
    original = bytearray(reference.wire[index].data)
    mutation = data.draw(st.sampled_from(["flip", "truncate", "extend"]))
    if mutation == "flip":
        for _ in range(data.draw(st.integers(1, 4))):
            original[data.draw(st.integers(0, len(original) - 1))] ^= data.draw(st.integers(1, 255))
    elif mutation == "truncate":
        original = original[: data.draw(st.integers(0, len(original) - 1))]
    else:
        original += data.draw(st.binary(min_size=1, max_size=32))
    deliver(reference, index, bytes(original))


def test_dn_identities_compare_as_names_not_bytes():
    """The same DN as PrintableString (how strongSwan encodes it) and as UTF8String (ours) is one identity."""
    from ikelab.pki import asn1
    from ikelab.pki.validation import same_identity

    def _same_identity(a: Identity, b: Identity) -> bool:
        return same_identity(a.id_type, a.data, b.id_type, b.data)

    ours = Identity.parse("O=ikelab, CN=right.example")
    printable = lambda oid, v: asn1.encode(0x31, asn1.encode(0x30, asn1.encode_oid(oid) + asn1.encode(0x13, v)))
    theirs = asn1.encode(0x30, printable("2.5.4.10", b"ikelab") + printable("2.5.4.3", b"right.example"))
    assert theirs != ours.data and _same_identity(ours, Identity.from_wire(9, theirs))
    assert not _same_identity(ours, Identity.parse("O=ikelab, CN=left.example"))
    assert not _same_identity(ours, Identity.from_wire(9, b"\x30\x03garbage"))


def test_aggressive_mode_with_signatures_gives_the_psk_cracker_nothing(tmp_path):
    """Message 2 carries SIG_R, not HASH_R, and SKEYID needs g^xy: `ikelab crack` finds nothing to test."""
    from ikelab.export.pcap import write_pcapng
    from ikelab.ikev1.crack import from_capture

    r = run_certs({"mode": "aggressive"})
    assert r.success
    path = tmp_path / "aggr-certs.pcapng"
    write_pcapng(path, r.trace)
    assert from_capture(path) == []


# --- against what two strongSwan daemons did between themselves ----------------------------------


@pytest.mark.parametrize("name, method, hash_length", [
    ("ikev1-main-rsa", "RSA_SIGNATURES", 32),
    ("ikev1-main-ecdsa384", "ECDSA_SHA384_P384", 48),
])
def test_strongswans_own_signatures_verify_with_ikelabs_hash_and_skeyid(name, method, hash_length):
    """tests/vectors/ikev1/<name>.pcap: two charons (5.9.8), main mode with certificates from a lab CA,
    and the keys the responder logged. From the captured messages ikelab computes SKEYID = prf(Ni_b |
    Nr_b, g^xy), HASH_I and HASH_R, checks each certificate against the CA and each SIG with its key."""
    import json

    from cryptography import x509
    from test_ikev1_wire import VECTORS, ike_datagrams

    from ikelab.crypto.cipher import cipher
    from ikelab.ikev1 import proposals, signatures
    from ikelab.pki.validation import validate
    from ikelab.wire.isakmp import CertPayload, IdPayload, KePayload, NoncePayload, SaPayload, decode_message, decode_payloads

    keys = json.loads((VECTORS / f"{name}.keys.json").read_text())
    ca = x509.load_pem_x509_certificate((VECTORS / f"{name}.ca.pem").read_bytes())
    d = [decode_message(m) for m in ike_datagrams(name)]
    offer_at = next(i for i, p in enumerate(d[0].message.payloads) if isinstance(p, SaPayload))
    chosen, _ = proposals.phase1_algorithms(d[1].message.find(SaPayload).proposals[0].transforms[0])
    assert chosen.auth_method == getattr(proposals.AuthMethod, method)
    prf, aes = chosen.prf, cipher(12, 128)
    ke_i, ke_r = d[2].message.find(KePayload).data, d[3].message.find(KePayload).data
    ni, nr = d[2].message.find(NoncePayload).data, d[3].message.find(NoncePayload).data
    skeyid = kdf.skeyid_signature(prf, ni, nr, bytes.fromhex(keys["dh_secret"]))
    assert skeyid.hex() == keys["skeyid"]  # strongSwan's SKEYID for signatures is ours
    ka = kdf.encryption_key(prf, kdf.skeyid_children(prf, skeyid, bytes.fromhex(keys["dh_secret"]), d[0].message.header.cky_i,
                                                     d[1].message.header.cky_r).e.output, 16).output
    assert ka.hex() == keys["ka"]
    iv = kdf.phase1_iv(prf, ke_i, ke_r, 16)
    cky_i, cky_r, sa_i_b = d[4].message.header.cky_i, d[4].message.header.cky_r, d[0].raw[offer_at][4:]
    hash_prf = signatures.hash_prf(chosen.auth_method, prf)
    for index, of_initiator in ((4, True), (5, False)):
        message = d[index].message
        chain = decode_payloads(aes.decrypt(ka, iv, message.encrypted), message.header.next_payload)
        iv = message.encrypted[-16:]  # the next message's IV: this one's last ciphertext block
        id_at = next(i for i, p in enumerate(chain.payloads) if isinstance(p, IdPayload))
        cert = next(p for p in chain.payloads if isinstance(p, CertPayload))
        sig = next(p for p in chain.payloads if isinstance(p, SigPayload))
        parts = (kdf.hash_i_parts if of_initiator else kdf.hash_r_parts)(ke_i, ke_r, cky_i, cky_r, sa_i_b, chain.raw[id_at][4:])
        hash_value = hash_prf(skeyid, kdf.joined(parts))
        assert len(hash_value) == hash_length  # ECDSA-384: HMAC-SHA-384 although SHA2-256 was negotiated
        checked = validate(cert.data, ca, now=x509.load_der_x509_certificate(cert.data).not_valid_before_utc + dt.timedelta(hours=2),
                           identity=chain.payloads[id_at])
        assert checked.ok, checked.reason
        ok, why = signatures.verify(chosen.auth_method, checked.public_key, hash_value, sig.data)
        assert ok, why
        # and one flipped bit of the HASH makes the same signature fail
        assert not signatures.verify(chosen.auth_method, checked.public_key, bytes([hash_value[0] ^ 1]) + hash_value[1:], sig.data)[0]


def test_certificate_requests_are_read_and_explained():
    r = run_certs()
    assert any("asks for a certificate from CA 'O=ikelab, CN=ikelab Lab CA': ours is from that CA" in t for t in r.notes("right", "info"))
    r = run_certs(left={"ca": "Mallory CA"})
    assert any("but ours is from 'O=ikelab, CN=Mallory CA'" in t for t in r.notes("left", "warning"))


@pytest.mark.parametrize("authority, words", [(b"", "from any CA"), (b"\x30\x05junk", "names no readable CA")])
def test_odd_certificate_requests_are_noted_not_fatal(authority, words):
    from ikelab.wire.isakmp import CertReqPayload

    original = authentication.certificate_request

    def odd(peer):
        return [CertReqPayload(4, authority)] if peer.config.name == "left" else original(peer)

    authentication.certificate_request = odd
    try:
        r = run_certs()
    finally:
        authentication.certificate_request = original
    assert r.success and any(words in t for t in r.notes("right", "info") + r.notes("right", "warning"))
