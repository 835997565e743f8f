"""Which transport a run gets: a lesson with a [router] never runs over loopback, which cannot model it."""

from __future__ import annotations

import pytest

from ikelab.cli import main
from ikelab.lab import lab as lab_module
from ikelab.lab.runs import TransportUnavailable, choose_transport, plain_transport
from ikelab.lab.transports import TransportError
from ikelab.lessons import load_lesson


@pytest.fixture
def no_lab(monkeypatch):
    monkeypatch.setattr(lab_module, "missing_privileges", lambda: "the lab needs root (simulated)")


@pytest.mark.parametrize("slug", ["ikev2-blocked-500", "ikev2-nat"])
def test_loopback_is_refused_for_a_lesson_with_a_router(slug):
    lesson = load_lesson(slug)
    with pytest.raises(TransportUnavailable, match=rf"^{slug} puts a \[router\] .*--transport memory"):
        choose_transport("loopback", lesson)
    with pytest.raises(TransportError, match="--transport memory"):
        plain_transport(lesson, "loopback")


def test_explicit_loopback_with_a_router_is_one_line_and_exit_2(capsys):
    assert main(["run", "ikev2-blocked-500", "--headless", "--transport", "loopback"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "use --transport memory" in err


def test_without_the_lab_a_router_lesson_falls_back_to_memory(no_lab):
    choice = choose_transport(None, load_lesson("ikev2-blocked-500"))
    assert choice.name == "memory" and choice.lab_unavailable == "the lab needs root (simulated)"
    assert choose_transport(None, load_lesson("ikev2-psk")).name == "loopback"


def test_without_root_the_strongswan_lesson_gives_the_whole_reason(monkeypatch, capsys):
    monkeypatch.setattr(lab_module.os, "geteuid", lambda: 1000)
    reason = lab_module.missing_privileges()
    assert reason and reason.startswith("the lab needs root")
    assert main(["run", "ikev2-strongswan", "--headless"]) == 2
    err = capsys.readouterr().err
    assert f"it needs the namespace lab ({reason})" in err
