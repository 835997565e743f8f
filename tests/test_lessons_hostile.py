"""Hostile lesson files: whatever the file holds, the check answers with one line naming the problem."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import ikelab.lessons
from ikelab.cli import main
from ikelab.lessons import LESSONS_DIR, LessonError, load_lesson

LESSON_1 = (LESSONS_DIR / "ikev2-psk.toml").read_text()
NO_STORY = LESSON_1.split("[[step]]")[0]  # the peers without steps and checkpoints


def write(tmp_path: Path, text: str | bytes, name: str = "hostile.toml") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def error_of(path: Path | str) -> LessonError:
    with pytest.raises(LessonError) as info:
        load_lesson(path)
    assert "\n" not in str(info.value)
    return info.value


def edited(tmp_path: Path, old: str, new: str, base: str = LESSON_1) -> LessonError:
    assert old in base
    return error_of(write(tmp_path, base.replace(old, new, 1)))


def test_a_file_that_is_not_utf8_names_the_byte_and_line(tmp_path):
    error = error_of(write(tmp_path, LESSON_1.encode().replace(b"IKEv2 with", b"IKEv2 \xff with", 1)))
    assert "not UTF-8" in str(error) and "0xff" in str(error)
    assert error.line == next(i for i, line in enumerate(LESSON_1.splitlines(), 1) if "IKEv2 with" in line)


def test_a_byte_order_mark_is_accepted(tmp_path):
    assert load_lesson(write(tmp_path, "\ufeff" + LESSON_1)).title == load_lesson("ikev2-psk").title


def test_an_unreadable_file_is_one_line(tmp_path, monkeypatch):
    path = write(tmp_path, LESSON_1)

    def refuse(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)
    assert str(error_of(path)) == f"{path}: cannot read the file: Permission denied"


def test_deep_nesting_is_not_a_recursion_error(tmp_path):
    error = error_of(write(tmp_path, "title = " + "[" * 5000 + "]" * 5000 + "\n"))
    assert "nested too deeply" in str(error)


@pytest.mark.parametrize("name", ["adir", "adir.toml"])
def test_a_directory_is_named_as_one(tmp_path, monkeypatch, name):
    (tmp_path / name).mkdir()
    monkeypatch.chdir(tmp_path)
    assert "is a directory" in str(error_of(name))
    assert "is a directory" in str(error_of(tmp_path / name))


def test_a_missing_lessons_directory_is_a_usage_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(ikelab.lessons, "LESSONS_DIR", tmp_path / "nonexistent")
    assert main(["lessons"]) == 2
    assert "nonexistent: no such lessons directory" in capsys.readouterr().err


def test_one_bad_lesson_file_does_not_hide_the_others(tmp_path, monkeypatch, capsys):
    write(tmp_path, LESSON_1, "good.toml")
    write(tmp_path, "title = [", "bad.toml")
    monkeypatch.setattr(ikelab.lessons, "LESSONS_DIR", tmp_path)
    assert main(["lessons"]) == 2
    out, err = capsys.readouterr()
    assert out.startswith("good ") and "bad.toml: not valid TOML" in err


def test_a_fifo_or_device_is_no_lesson_file(tmp_path):
    fifo = tmp_path / "f.toml"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/null")):
        assert "is not a regular file" in str(error_of(path))


@pytest.mark.parametrize("setting,words", [
    ("action = 5", "action: must be [[action]] tables, not int"),
    ("step = 5", "step: must be [[step]] tables, not int"),
    ("checkpoint = 7", "checkpoint: must be [[checkpoint]] tables, not int"),
])
def test_arrays_of_tables_of_the_wrong_type(tmp_path, setting, words):
    error = error_of(write(tmp_path, f"{setting}\n{NO_STORY}"))
    assert words in str(error) and error.line == 1


def test_a_peer_that_is_not_a_table(tmp_path):
    text = NO_STORY.split("[left]")[0] + 'left = "oops"\n[right]' + NO_STORY.split("[right]")[1]
    error = error_of(write(tmp_path, text))
    assert "left: must be a table [left] describing the left peer, not str" in str(error)


STRONGSWAN = (LESSONS_DIR / "ikev2-strongswan.toml").read_text()


@pytest.mark.parametrize("value", ["inf", "nan"])
@pytest.mark.parametrize("base", [LESSON_1, STRONGSWAN], ids=["ikelab", "strongswan"])
def test_seconds_are_finite(tmp_path, base, value):
    error = edited(tmp_path, 'esp = "aes128-sha256"\nlocal_ts = "203.0.113.0/24"',
                   f'esp = "aes128-sha256"\nrekey_child_after = {value}\nlocal_ts = "203.0.113.0/24"', base)
    assert f"right.rekey_child_after: must be a positive number of seconds, not {value}" in str(error)


@pytest.mark.parametrize("old,new,words", [
    ("ike_version = 2\n", "ike_version = true\n", "ike_version: must be 1 or 2, not True"),
    ("ike_version = 2\n", "ike_version = 2.0\n", "ike_version: must be 1 or 2, not 2.0"),
    ('protected = "198.51.100.1"', 'protected = "198.51.100.1"\nport = 500.0', "left.port: IKE runs on port 500 or 4500, not 500.0"),
])
def test_whole_numbers_are_not_booleans_or_floats(tmp_path, old, new, words):
    assert words in str(edited(tmp_path, old, new))


CERTS = (LESSONS_DIR / "ikev2-certs.toml").read_text()
LEFT_CERT = 'certificate = { key = "ecdsa256", san = ["left.example", "192.0.2.1"] }'


def left_certificate(settings: str) -> str:
    return f'certificate = {{ key = "ecdsa256", san = ["left.example"], {settings} }}'


@pytest.mark.parametrize("old,new,key,words", [
    ('ca = "ikelab Lab CA"', f'ca = "{"C" * 100}"', "pki.ca", "must be 1 to 64 characters (an X.509 common name), not 100"),
    ('ca = "ikelab Lab CA"', 'ca = ""', "pki.ca", "must be 1 to 64 characters (an X.509 common name), not 0"),
    (LEFT_CERT, left_certificate(f'issuer = "{"I" * 100}"'), "left.certificate.issuer", "must be 1 to 64 characters"),
    (LEFT_CERT, left_certificate("not_before = 2030-01-01T00:00:00Z, not_after = 2029-01-01T00:00:00Z"),
     "left.certificate.not_after", "must be later than not_before (2030-01-01T00:00:00Z)"),
    (LEFT_CERT, left_certificate("not_before = 2030-01-01T00:00:00Z, not_after = 2030-01-01T00:00:00Z"),
     "left.certificate.not_after", "must be later than not_before"),
    (LEFT_CERT, left_certificate("not_before = 0001-01-01T00:00:00Z"), "left.certificate.not_before", "must be from 1950-01-01"),
    (LEFT_CERT, left_certificate("not_after = 1949-12-31T23:59:59Z"), "left.certificate.not_after", "must be from 1950-01-01"),
    (LEFT_CERT, left_certificate("not_after = 9999-12-31T23:00:00-05:00"), "left.certificate.not_after", "must be from 1950-01-01 to 9999-12-31 (UTC)"),
    (LEFT_CERT, left_certificate('key = "dsa"').replace('key = "ecdsa256", ', ""), "left.certificate.key", "unknown key type"),
    ('id = "left.example"', f'id = "{"a" * 60}.example"', "left.id", 'with auth = "pubkey" the identity is the certificate\'s common name, at most 64'),
])
def test_certificate_settings_that_x509_refuses(tmp_path, old, new, key, words):
    """Each of these passed the check and then crashed the run in `cryptography`."""
    error = edited(tmp_path, old, new, CERTS)
    assert f": {key}: {words}" in str(error)
    assert error.line == next(i for i, line in enumerate(CERTS.replace(old, new, 1).splitlines(), 1) if line == new)


def test_certificate_dates_in_order_load(tmp_path):
    text = CERTS.replace(LEFT_CERT, left_certificate("not_before = 1950-01-01T00:00:00Z, not_after = 9999-12-31T23:59:59Z"))
    cert = load_lesson(write(tmp_path, text)).left.certificate
    assert (cert.not_before.year, cert.not_after.year) == (1950, 9999)


@pytest.mark.parametrize("setting", ["not_after = 1950-01-01T00:00:00Z", "not_before = 9999-12-31T23:59:59Z"])
def test_a_lone_date_at_the_edge_of_x509_leaves_no_period(tmp_path, setting):
    error = error_of(write(tmp_path, CERTS.replace(LEFT_CERT, left_certificate(setting))))
    assert "must be from 1950-01-01 to 9999-12-31 (UTC)" in str(error)


def test_identities_are_limited_to_255_characters(tmp_path):
    error = edited(tmp_path, 'id = "left.example"', f'id = "{"a" * 70000}.example"')
    assert "left.id: must be at most 255 characters, not 70008" in str(error)
    longest = f'{"a" * 63}.{"b" * 63}.{"c" * 63}.{"d" * 55}.example'  # 255 characters, an FQDN DNS could hold
    assert load_lesson(write(tmp_path, LESSON_1.replace('id = "left.example"', f'id = "{longest}"', 1))).left.identity.text == longest


@pytest.mark.parametrize("address", ["198.51.100.7", "192.0.2.255", "192.0.2.0", "2001:db8::1"])
def test_outer_addresses_are_hosts_on_the_lab_link(tmp_path, address):
    error = edited(tmp_path, 'address = "192.0.2.1"', f'address = "{address}"')
    assert f"left.address: {address} is not a host address on the lab's link 192.0.2.0/24" in str(error)


@pytest.mark.parametrize("key,old,new", [
    ("address", 'address = "192.0.2.1"', 'address = "2001:db8::1%eth0"'),
    ("local_ts", 'local_ts = "198.51.100.0/24"', 'local_ts = "2001:db8::%eth0/64"'),
])
def test_scope_ids_are_refused(tmp_path, key, old, new):
    assert f"left.{key}: '2001:db8::" in str(error := edited(tmp_path, old, new)) and "has a scope id" in str(error)


@pytest.mark.parametrize("old,new,words", [
    ('protected = "198.51.100.1"', 'protected = "203.0.113.5"', "left.protected: 203.0.113.5 is outside this side's local_ts (198.51.100.0/24)"),
    ('local_ts = "198.51.100.0/24"', 'local_ts = "2001:db8:1::/48"', "left.protected: 198.51.100.1 is outside this side's local_ts (2001:db8:1::/48)"),
    ('local_ts = "198.51.100.0/24"\nremote_ts = "203.0.113.0/24"\nprotected = "198.51.100.1"',
     'local_ts = ["198.51.100.0/24", "203.0.113.0/24"]\nremote_ts = "203.0.113.0/24"\nprotected = "203.0.113.1"',
     "left.protected: 203.0.113.1 is the right peer's protected address too"),
])
def test_protected_is_a_host_of_its_own_inside_local_ts(tmp_path, old, new, words):
    assert words in str(edited(tmp_path, old, new))


def test_esn_is_refused_because_the_lab_datapath_lacks_it(tmp_path):
    error = edited(tmp_path, 'esp = "aes128-sha256"', 'esp = ["aes128-sha256", "aes128gcm16-esn"]')
    assert "left.esp: 'aes128gcm16-esn' allows extended sequence numbers (esn)" in str(error)
    assert load_lesson(write(tmp_path, LESSON_1.replace('esp = "aes128-sha256"', 'esp = "aes128-sha256-noesn"', 1))).left.esp


def test_flood_is_at_most_1000(tmp_path):
    cookie = (LESSONS_DIR / "ikev2-cookie.toml").read_text()
    assert "flood = 12" in cookie
    assert "flood: must be a whole number from 0 to 1000, not 1001" in str(edited(tmp_path, "flood = 12", "flood = 1001", cookie))
    assert load_lesson(write(tmp_path, cookie.replace("flood = 12", "flood = 1000"))).flood == 1000


@pytest.mark.parametrize("base", [LESSON_1, STRONGSWAN], ids=["ikelab", "strongswan"])
def test_an_empty_psk_is_refused(tmp_path, base):
    old = 'psk = "correct horse battery staple"' if base is LESSON_1 else 'psk = "interop-test-psk"'
    assert "left.psk: must not be empty" in str(edited(tmp_path, old, 'psk = ""', base))


def test_a_strongswan_side_takes_a_psk_of_at_most_4096_bytes(tmp_path):
    def right_psk(psk: str) -> str:
        head, tail = STRONGSWAN.split("[right]")
        return head + "[right]" + tail.replace('psk = "interop-test-psk"', f'psk = "{psk}"', 1)

    error = error_of(write(tmp_path, right_psk("é" * 2049)))  # 4098 bytes in UTF-8
    assert "right.psk: strongSwan's side takes a PSK of at most 4096 bytes here, not 4098" in str(error)
    assert load_lesson(write(tmp_path, right_psk("k" * 4096))).right.psk == b"k" * 4096
    assert load_lesson(write(tmp_path, LESSON_1.replace("correct horse battery staple", "k" * 200000))).left.psk == b"k" * 200000


@pytest.mark.parametrize("old,new,words", [
    ('title = "IKEv2 with a pre-shared key"', 'title = "IKEv2 \\u001b[31mred"', "title: holds the control character U+001B"),
    ('title = "IKEv2 with a pre-shared key"', 'title = "two\\nlines"', "title: must be one line"),
    ('psk = "', 'psk = "\\u0007', "left.psk: holds the control character U+0007"),
])
def test_texts_hold_no_control_characters(tmp_path, old, new, words):
    assert words in str(edited(tmp_path, old, new))


def test_step_texts_hold_no_control_characters(tmp_path):
    start = LESSON_1.index("[[step]]")
    text = LESSON_1[:start] + '[[step]]\nmatch = "IKE_SA_INIT request"\ntext = "\\u001b]0;pwned\\u0007"\n'
    assert "step.text: holds the control character U+001B" in str(error_of(write(tmp_path, text)))


@pytest.mark.parametrize("new,words", [
    ('protected = "198.51.100.0"', "left.protected: 198.51.100.0 is the network address of 198.51.100.0/24"),
    ('protected = "198.51.100.255"', "left.protected: 198.51.100.255 is the broadcast address of 198.51.100.0/24"),
])
def test_protected_is_no_network_or_broadcast_address(tmp_path, new, words):
    assert words in str(edited(tmp_path, 'protected = "198.51.100.1"', new))


def test_an_address_identity_is_a_documentation_address(tmp_path):
    error = edited(tmp_path, 'id = "left.example"', 'id = "8.8.8.8"')
    assert "left.id: 8.8.8.8 is outside the documentation ranges" in str(error)
    assert load_lesson(write(tmp_path, LESSON_1.replace('id = "left.example"', 'id = "192.0.2.1"', 1))).left


# --- second QA pass: each of these passed the check, then the run misbehaved -------------------------------

MANUAL = (LESSONS_DIR / "manual-keying.toml").read_text()
IKEV1 = (LESSONS_DIR / "ikev1-main-psk.toml").read_text()
COMPARE = (LESSONS_DIR / "ikev1-vs-ikev2.toml").read_text()


def line_of(text: str, wanted: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if wanted in line)


@pytest.mark.parametrize("old,new,words", [
    ('id = "left.example"', 'id = "bücher.example"', "left.id: 'bücher.example' is not ASCII"),
    ('id = "left.example"', 'id = "@bücher.example"', "write '@xn--bcher-kva.example'"),
    ('remote_id = "right.example"', 'remote_id = "bücher.example"', "left.remote_id: 'bücher.example' is not ASCII"),
    ('id = "left.example"', 'id = "left@bücher.example"', "write 'left@xn--bcher-kva.example'"),
    ('id = "left.example"', 'id = "jürgen@left.example"', "left.id: 'jürgen@left.example' is not ASCII"),
])
def test_fqdn_and_email_identities_are_ascii(tmp_path, old, new, words):
    error = edited(tmp_path, old, new)
    assert words in str(error) and "A-label" in str(error)
    assert error.line == line_of(LESSON_1.replace(old, new, 1), new)


def test_a_dn_identity_may_be_utf8(tmp_path):
    text = LESSON_1.replace('id = "left.example"', 'id = "CN=bücher, O=ikelab"', 1)
    assert load_lesson(write(tmp_path, text)).left.identity.text == "CN=bücher, O=ikelab"


def test_certificate_names_are_ascii(tmp_path):
    error = edited(tmp_path, LEFT_CERT, 'certificate = { key = "ecdsa256", san = ["bücher.example"] }', CERTS)
    assert "left.certificate.san: 'bücher.example' is not ASCII" in str(error) and "xn--bcher-kva.example" in str(error)


@pytest.mark.parametrize("key", ["rekey_child_after", "rekey_ike_after", "liveness_every", "nat_keepalive_every"])
def test_periods_are_at_least_a_second(tmp_path, key):
    error = edited(tmp_path, 'protected = "198.51.100.1"', f'protected = "198.51.100.1"\n{key} = 1e-9')
    assert f"left.{key}: must be at least 1 second, not 1e-09" in str(error)
    assert load_lesson(write(tmp_path, LESSON_1.replace('protected = "198.51.100.1"', f'protected = "198.51.100.1"\n{key} = 1', 1)))


REKEY = (LESSONS_DIR / "ikev2-rekey.toml").read_text()


def test_duration_is_at_most_an_hour(tmp_path):
    assert "duration: must be at most 3600 seconds, not 3601.0" in str(edited(tmp_path, "duration = 6.0", "duration = 3601", REKEY))
    assert load_lesson(write(tmp_path, REKEY.replace("duration = 6.0", "duration = 1500", 1))).duration == 1500


def test_duration_over_the_shortest_period_is_at_most_1000_events(tmp_path):
    error = edited(tmp_path, "duration = 6.0", "duration = 1501", REKEY)  # rekey_child_after = 1.5
    assert "duration: 1501 s with left.rekey_child_after = 1.5 s makes 1001 events; at most 1000" in str(error)
    assert error.line == line_of(REKEY, "duration = 6.0")


def test_an_action_is_within_the_duration(tmp_path):
    action = '[[action]]\nat = {at}\npeer = "left"\ndo = "rekey-child"\n'
    error = error_of(write(tmp_path, REKEY + action.format(at=6.5)))
    assert "action.at: 6.5 is after the run's end (duration = 6), so the action would never run" in str(error)
    assert load_lesson(write(tmp_path, REKEY + action.format(at=6))).actions[0].at == 6


@pytest.mark.parametrize("old,new,key", [
    ('local_ts = "198.51.100.0/24"', 'local_ts = ["198.51.100.0/24", "192.0.2.0/24"]', "left.local_ts"),
    ('remote_ts = "203.0.113.0/24"', 'remote_ts = ["203.0.113.0/24", "192.0.2.0/25"]', "left.remote_ts"),
    ('local_ts = "198.51.100.0/24"', 'local_ts = "192.0.2.7/32"', "left.local_ts"),
])
def test_traffic_selectors_stay_off_the_lab_link(tmp_path, old, new, key):
    error = edited(tmp_path, old, new)
    assert f"{key}: 192.0.2." in str(error) and "overlaps the lab's link 192.0.2.0/24" in str(error)
    assert error.line == line_of(LESSON_1.replace(old, new, 1), new)


def test_traffic_selectors_stay_off_the_lab_link_without_ike(tmp_path):
    error = edited(tmp_path, 'remote_ts = "203.0.113.0/24"', 'remote_ts = "192.0.2.0/24"', MANUAL)
    assert "left.remote_ts: 192.0.2.0/24 overlaps the lab's link" in str(error)


@pytest.mark.parametrize("slug", ["x/../../sl2/pwned", "", "-x", "Big", "a b", "a.b"])
def test_a_slug_names_no_path(tmp_path, slug):
    error = edited(tmp_path, "ike_version = 2\n", f'ike_version = 2\nslug = "{slug}"\n')
    assert "slug: must be lowercase letters, digits and dashes" in str(error)


def test_the_shipped_slugs_are_valid_and_explicit_ones_load(tmp_path):
    assert all(ikelab.lessons.SLUG.fullmatch(p.stem) for p in LESSONS_DIR.glob("*.toml"))
    assert load_lesson(write(tmp_path, 'slug = "my-lesson-2"\n' + LESSON_1)).slug == "my-lesson-2"


@pytest.mark.parametrize("title", ["", "   "])
def test_a_title_is_not_blank(tmp_path, title):
    assert "title: must not be empty" in str(edited(tmp_path, 'title = "IKEv2 with a pre-shared key"', f'title = "{title}"'))


@pytest.mark.parametrize("do", ["rekey-child", "rekey-ike"])
@pytest.mark.parametrize("base", [IKEV1, COMPARE], ids=["ikev1", "compare"])
def test_ikev1_has_no_rekey_action(tmp_path, base, do):
    error = error_of(write(tmp_path, "duration = 1\n" + base + f'[[action]]\nat = 0.5\npeer = "left"\ndo = "{do}"\n'))
    assert f"action.do: IKEv1 cannot '{do}'" in str(error)


def test_ikev1_actions_load(tmp_path):
    text = 'duration = 1\n' + IKEV1 + '[[action]]\nat = 0.5\npeer = "left"\ndo = "delete-child"\n'
    assert load_lesson(write(tmp_path, text)).actions[0].do == "delete-child"


GCM = 'ike = "aes128gcm16-prfsha256-modp2048"'


@pytest.mark.parametrize("base", [IKEV1, COMPARE], ids=["ikev1", "compare"])
def test_ikev1_has_no_aead_ike_proposal(tmp_path, base):
    old = next(line for line in base.splitlines() if line.startswith("ike = "))
    error = edited(tmp_path, old, GCM, base)
    assert "left.ike: no proposal of aes128gcm16-prfsha256-modp2048 can be offered in IKEv1" in str(error)
    assert error.line == line_of(base.replace(old, GCM, 1), GCM)


def test_an_aead_ike_proposal_is_fine_in_ikev2_or_beside_a_cbc_one_in_ikev1(tmp_path):
    assert load_lesson(write(tmp_path, LESSON_1.replace('ike = "aes128-sha256-modp2048"', GCM, 1))).left.ike
    old = next(line for line in IKEV1.splitlines() if line.startswith("ike = "))
    both = f'ike = ["aes128gcm16-prfsha256-modp2048", {old.split("=", 1)[1].strip()}]'
    assert len(load_lesson(write(tmp_path, IKEV1.replace(old, both, 1))).left.ike) == 2


@pytest.mark.parametrize("old,new,key", [
    ('esp = "aes128-sha256"\n', 'esp = "aes128-sha256"\nfoo = 1\n', "manual.foo"),
    ('[manual.left_to_right]\n', '[manual.left_to_right]\nreplay = 0\n', "manual.left_to_right.replay"),
])
def test_unknown_manual_settings_are_refused(tmp_path, old, new, key):
    error = edited(tmp_path, old, new, MANUAL)
    assert f"{key}: unknown setting (known: " in str(error)
    assert error.line == line_of(MANUAL.replace(old, new, 1), new.splitlines()[-1])


@pytest.mark.parametrize("table,key", [("step", "colour"), ("checkpoint", "colour")])
def test_unknown_story_settings_are_refused(tmp_path, table, key):
    error = edited(tmp_path, f"[[{table}]]\n", f'[[{table}]]\n{key} = "red"\n')
    assert f"{table}.{key}: unknown setting (known: " in str(error) and error.line == line_of(LESSON_1, f"[[{table}]]") + 1


def test_manual_keying_takes_exactly_one_esp_proposal(tmp_path):
    error = edited(tmp_path, 'esp = "aes128-sha256"', 'esp = ["aes128-sha256", "aes256-sha256"]', MANUAL)
    assert "manual.esp: manual keying takes exactly one ESP proposal, not 2" in str(error)
