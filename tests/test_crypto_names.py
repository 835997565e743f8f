"""ikelab.crypto.names: strongSwan proposal keywords and strongSwan's proposal rules."""

import pytest

from ikelab.crypto.cipher import cipher
from ikelab.crypto.dh import dh_group
from ikelab.crypto.integrity import integrity
from ikelab.crypto.names import ProposalError, UnknownAlgorithm, parse_proposal
from ikelab.crypto.prf import prf


def test_ike_proposal_takes_prf_from_integrity():
    spec = parse_proposal("aes128-sha256-modp2048", ike=True)
    assert spec.encryption == (cipher(12, 128),)
    assert spec.integrity == (integrity(12),)
    assert spec.prf == (prf(5),)
    assert spec.dh == (dh_group(14),)
    assert spec.esn == ()
    assert spec.keywords() == "aes128-sha256-prfsha256-modp2048"


def test_ike_aead_proposal():
    spec = parse_proposal("aes256gcm16-prfsha256-ecp256", ike=True)
    assert spec.encryption == (cipher(20, 256),)
    assert spec.integrity == ()
    assert spec.keywords() == "aes256gcm16-prfsha256-ecp256"


def test_ike_aead_with_integrity_keyword_uses_it_as_prf_only():
    spec = parse_proposal("aes128gcm128-sha384-x25519", ike=True)
    assert (spec.integrity, spec.prf) == ((), (prf(6),))
    assert spec.keywords() == "aes128gcm16-prfsha384-curve25519"


def test_lists_keep_order_and_aliases():
    spec = parse_proposal("AES256-aes128-sha-sha512-prfsha1-ecp384-modp3072-ecp384", ike=True)
    assert [c.name for c in spec.encryption] == ["aes256", "aes128"]
    assert [i.name for i in spec.integrity] == ["sha1", "sha512"]
    assert [p.name for p in spec.prf] == ["prfsha1"]
    assert [g.number for g in spec.dh] == [20, 15]


@pytest.mark.parametrize(
    "text, keywords",
    [
        ("aes128-sha256", "aes128-sha256-noesn"),
        ("aes128gcm16", "aes128gcm16-noesn"),
        ("aes256gcm16-sha256-esn-noesn", "aes256gcm16-esn-noesn"),
        ("aes192-sha1-modp2048", "aes192-sha1-modp2048-noesn"),
    ],
)
def test_esp_proposals(text, keywords):
    spec = parse_proposal(text, ike=False)
    assert spec.keywords() == keywords
    assert parse_proposal(spec.keywords(), ike=False) == spec


@pytest.mark.parametrize(
    "text, ike, error, message",
    [
        (
            "aes999-sha256-modp2048",
            True,
            UnknownAlgorithm,
            "unknown encryption algorithm 'aes999' (known: aes128,",
        ),
        (
            "aes128-sha257-modp2048",
            True,
            UnknownAlgorithm,
            "unknown integrity algorithm 'sha257' (known: sha1,",
        ),
        ("aes128-prfmd5-modp2048", True, UnknownAlgorithm, "unknown PRF 'prfmd5' (known: prfsha1,"),
        (
            "aes128-sha256-modp1000",
            True,
            UnknownAlgorithm,
            "unknown DH group 'modp1000' (known: modp768,",
        ),
        (
            "aes128-sha256-3des",
            True,
            UnknownAlgorithm,
            "unknown proposal keyword '3des' (known: aes128,",
        ),
        ("aes128--sha256", True, ProposalError, "empty keyword in proposal 'aes128--sha256'"),
        ("aes128gcm16-modp2048", True, ProposalError, "needs a PRF, e.g. prfsha256"),
        ("aes128-modp2048", True, ProposalError, "needs an integrity algorithm, e.g. sha256"),
        (
            "aes128-prfsha256-modp2048",
            True,
            ProposalError,
            "needs an integrity algorithm, e.g. sha256",
        ),
        ("aes128-sha256", True, ProposalError, "needs a DH group, e.g. modp2048"),
        ("sha256-modp2048", True, ProposalError, "has no encryption algorithm"),
        (
            "aes128-sha256-modp2048-esn",
            True,
            ProposalError,
            "'esn'/'noesn' in 'aes128-sha256-modp2048-esn'",
        ),
        ("aes128-aes128gcm16-sha256-modp2048", True, ProposalError, "'aes128gcm16' and 'aes128'"),
        (
            "aes128-sha256-prfsha256",
            False,
            ProposalError,
            "'prfsha256' in 'aes128-sha256-prfsha256'",
        ),
        ("aes128", False, ProposalError, "ESP proposal 'aes128' needs an integrity algorithm"),
    ],
)
def test_errors(text, ike, error, message):
    with pytest.raises(error) as raised:
        parse_proposal(text, ike=ike)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_unknown_algorithm_is_a_key_error():
    with pytest.raises(KeyError):
        parse_proposal("aes128-sha256-ecp999", ike=True)
