"""AUTH: what the signing peer computed beside what the verifying peer expected, inputs marked."""

from __future__ import annotations

from rich.console import Group
from rich.text import Text

from ikelab.trace import AuthEvent, CertificateEvent, Event, Ikev1HashEvent
from ikelab.tui.panels.base import TextPanel
from ikelab.tui.panels.ikev1_auth import certificate, ikev1_auth
from ikelab.tui.text import short, values_table


def rows(e: AuthEvent) -> list[tuple[str, bytes]]:
    return [
        ("message", e.message),
        ("nonce", e.nonce),
        ("ID'", e.id_body),
        (f"prf({e.sk_p_label}, ID')", e.maced_id),
        ('prf(PSK, "Key Pad for IKEv2")', e.auth_key),
        ("AUTH", e.expected),
    ]


class AuthPanel(TextPanel):
    def show(self, events: list[Event], ike_version: int = 2) -> None:
        if ike_version == 1:
            self._show_ikev1(events)
            return
        auths = [e for e in events if isinstance(e, AuthEvent)]
        if not auths:
            self.update(Text("No AUTH yet: each side proves its identity in IKE_AUTH.", "dim italic"))
            return
        parts = [Text('AUTH = prf(prf(PSK, "Key Pad for IKEv2"), message | nonce | prf(SK_p, ID\'))   RFC 7296 §2.15', "bold"), Text("")]
        for of_role in ("initiator", "responder"):
            computed = next((e for e in auths if e.of_role == of_role and e.action == "computed"), None)
            verified = next((e for e in auths if e.of_role == of_role and e.action == "verified"), None)
            if computed is None and verified is None:
                continue
            parts += self._compare(of_role, computed, verified)
        for e in events:
            if isinstance(e, CertificateEvent):
                parts += certificate(e)
        self.update(Group(*parts))

    def _show_ikev1(self, events: list[Event]) -> None:
        if not any(isinstance(e, (Ikev1HashEvent, CertificateEvent)) for e in events):
            self.update(Text("No HASH yet: in main mode each side proves its identity in messages 5 and 6, "
                             "in aggressive mode in messages 2 and 3.", "dim italic"))
            return
        self.update(ikev1_auth(events))

    @staticmethod
    def _compare(of_role: str, computed: AuthEvent | None, verified: AuthEvent | None) -> list:
        title = Text(f"The {of_role}'s AUTH", "bold underline")
        if verified is not None:
            title += Text("  verified: OK", "bold green") if verified.ok else Text("  verified: MISMATCH", "bold red")
        sent_by = f"computed by {computed.peer}" if computed else "computed by the peer"
        checked_by = f"expected by {verified.peer}" if verified else "not verified yet"
        table = values_table("", sent_by, checked_by)
        table.add_column("", no_wrap=True)  # the verdict: same value on both sides or not
        mine = rows(computed) if computed else None
        theirs = rows(verified) if verified else None
        for i, (name, _) in enumerate(mine or theirs):
            a = mine[i][1] if mine else None
            b = theirs[i][1] if theirs else None
            mark = "" if a is None or b is None else Text("✓", "green") if a == b else Text("✗ differs", "bold red")
            table.add_row(name, short(a), short(b), mark)
        out = [title, table]
        if verified is not None and verified.received is not None:
            out.append(Text(f"AUTH received in the message: {short(verified.received)}", "dim"))
        return out + [Text("")]
