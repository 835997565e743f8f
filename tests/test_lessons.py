"""Lesson files: every shipped lesson loads; every broken one gives one line with file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from ikelab.cli import main
from ikelab.lessons import LESSONS_DIR, LessonError, list_lessons, load_lesson

LESSON_1 = (LESSONS_DIR / "ikev2-psk.toml").read_text()


def test_every_shipped_lesson_loads():
    slugs = {lesson.slug for lesson in list_lessons()}
    assert {"ikev2-psk", "manual-keying"} <= slugs
    for lesson in list_lessons():
        assert lesson.title and {lesson.left.role, lesson.right.role} == {"initiator", "responder"}


def broken(tmp_path: Path, old: str, new: str) -> LessonError:
    assert old in LESSON_1
    path = tmp_path / "broken.toml"
    path.write_text(LESSON_1.replace(old, new, 1))
    with pytest.raises(LessonError) as info:
        load_lesson(path)
    return info.value


def line_of(text: str, needle: str, after: str = "") -> int:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if after in line) if after else 0
    return next(i for i, line in enumerate(lines, start=1) if i > start and needle in line)


@pytest.mark.parametrize("old,new,key,words", [
    ('ike = "aes128-sha256-modp2048"', 'ike = "aes129-sha256-modp2048"', "left.ike", "aes129"),
    ('address = "192.0.2.1"', 'address = "10.0.0.1"', "left.address", "outside the documentation ranges"),
    ('local_ts = "198.51.100.0/24"', 'local_ts = "198.51.100.0/33"', "left.local_ts", "not an IP network"),
    ('role = "responder"', 'role = "initiator"', "right.role", "one peer must be the initiator"),
    ('psk = "correct horse battery staple"', "psk = 42", "left.psk", "must be a string"),
    ('protected = "198.51.100.1"', 'protected = "198.51.100.1"\ncolour = "blue"', "left.colour", "unknown setting"),
    ('esp = "aes128-sha256"', 'esp = "aes128-prfsha256"', "left.esp", "prfsha256"),
])
def test_errors_name_file_line_and_key(tmp_path, old, new, key, words):
    error = broken(tmp_path, old, new)
    text = str(error)
    assert "\n" not in text
    assert text.startswith(str(tmp_path / "broken.toml"))
    assert f": {key}: " in text and words in text
    fixed = LESSON_1.replace(old, new, 1)
    expected_line = line_of(fixed, new.split("\n")[-1], after=f"[{key.split('.')[0]}]")
    assert error.line == expected_line, text


def test_invalid_toml_reports_its_line(tmp_path):
    error = broken(tmp_path, 'title = "IKEv2 with a pre-shared key"', 'title = "unterminated')
    assert error.line == line_of(LESSON_1, "title =") and "not valid TOML" in str(error)


def test_missing_peer_table(tmp_path):
    path = tmp_path / "half.toml"
    path.write_text(LESSON_1.split("[right]")[0])
    with pytest.raises(LessonError, match=r"right: missing table \[right\]"):
        load_lesson(path)


def test_manual_keying_key_length_is_checked(tmp_path):
    text = (LESSONS_DIR / "manual-keying.toml").read_text()
    path = tmp_path / "manual.toml"
    path.write_text(text.replace('encryption_key = "000102030405060708090a0b0c0d0e0f"', 'encryption_key = "0001"', 1))
    with pytest.raises(LessonError, match=r"manual.left_to_right.encryption_key: must be 16 bytes"):
        load_lesson(path)


def test_lessons_check_command(tmp_path, capsys):
    assert main(["lessons", "check", str(LESSONS_DIR / "ikev2-psk.toml")]) == 0
    assert ": ok" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text(LESSON_1.replace('ike = "aes128-sha256-modp2048"', 'ike = "aes128-sha256-modp9999"', 1))
    assert main(["lessons", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "modp9999" in err and f"bad.toml:{line_of(LESSON_1, 'ike =')}:" in err


STRONGSWAN_REKEY = (LESSONS_DIR / "ikev2-strongswan-rekey.toml").read_text()


@pytest.mark.parametrize("old,new,message", [
    ("rekey_child_after = 2", "rekey_child_after = 2.5", r"right.rekey_child_after: strongSwan takes whole seconds here, not 2.5"),
    ("rekey_child_after = 2", "rekey_child_after = 2\nliveness_every = 0.4", r"right.liveness_every: strongSwan takes whole seconds here, not 0.4"),
    ("rekey_ike_after = 3", "rekey_ike_after = 3\nnat_keepalive_every = -1", r"left.nat_keepalive_every: must be a positive number"),
    ('match = "CREATE_CHILD_SA response"', 'match = "x"\n[[action]]\nat = 1.0\npeer = "right"\ndo = "liveness"\n[[step]]\nmatch = "y"',
     r"action.do: swanctl has no command that makes strongSwan check liveness"),
])
def test_strongswan_side_settings_are_checked(tmp_path, old, new, message):
    assert old in STRONGSWAN_REKEY
    path = tmp_path / "ss.toml"
    path.write_text(STRONGSWAN_REKEY.replace(old, new, 1))
    with pytest.raises(LessonError, match=message):
        load_lesson(path)


def test_nat_keepalive_interval_defaults_to_twenty_seconds(tmp_path):
    lesson = load_lesson("ikev2-strongswan-rekey")
    assert (lesson.left.nat_keepalive_every, lesson.right.rekey_child_after, lesson.left.rekey_ike_after) == (20.0, 2.0, 3.0)
    path = tmp_path / "keepalive.toml"
    path.write_text(STRONGSWAN_REKEY.replace("rekey_ike_after = 3", "rekey_ike_after = 3\nnat_keepalive_every = 1.5", 1))
    assert load_lesson(path).left.nat_keepalive_every == 1.5
