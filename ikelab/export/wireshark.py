"""Wireshark's decryption tables (UAT files), filled from the keys in the trace.

The algorithm strings must be exactly Wireshark's (checked against tshark 4.0).
"""

from __future__ import annotations

from pathlib import Path

from ikelab.trace import ChildSaEvent, IkeKeysEvent, Ikev1KeysEvent, Trace

IKEV2_ENCRYPTION = {
    "aes128": "AES-CBC-128 [RFC3602]",
    "aes192": "AES-CBC-192 [RFC3602]",
    "aes256": "AES-CBC-256 [RFC3602]",
    "aes128gcm16": "AES-GCM-128 with 16 octet ICV [RFC5282]",
    "aes192gcm16": "AES-GCM-192 with 16 octet ICV [RFC5282]",
    "aes256gcm16": "AES-GCM-256 with 16 octet ICV [RFC5282]",
}
IKEV2_INTEGRITY = {
    "": "NONE [RFC4306]",
    "sha1": "HMAC_SHA1_96 [RFC2404]",
    "sha256": "HMAC_SHA2_256_128 [RFC4868]",
    "sha384": "HMAC_SHA2_384_192 [RFC4868]",
    "sha512": "HMAC_SHA2_512_256 [RFC4868]",
}
ESP_ENCRYPTION = {
    "aes128": "AES-CBC [RFC3602]",
    "aes192": "AES-CBC [RFC3602]",
    "aes256": "AES-CBC [RFC3602]",
    "aes128gcm16": "AES-GCM with 16 octet ICV [RFC4106]",
    "aes192gcm16": "AES-GCM with 16 octet ICV [RFC4106]",
    "aes256gcm16": "AES-GCM with 16 octet ICV [RFC4106]",
}
ESP_AUTHENTICATION = {
    None: "NULL",
    "sha1": "HMAC-SHA-1-96 [RFC2404]",
    "sha256": "HMAC-SHA-256-128 [RFC4868]",
    "sha384": "HMAC-SHA-384-192 [RFC4868]",
    "sha512": "HMAC-SHA-512-256 [RFC4868]",
}
HEADER = "# Written by ikelab from the keys its peers used.\n"


def ikev2_decryption_table(trace: Trace) -> list[str]:
    """One record per IKE SA: spii,spir,SK_ei,SK_er,encryption,SK_ai,SK_ar,integrity."""
    records: dict[tuple[bytes, bytes], str] = {}
    for e in trace.of(IkeKeysEvent):
        k = e.keys
        records[(e.spi_i, e.spi_r)] = ",".join(
            [
                e.spi_i.hex(),
                e.spi_r.hex(),
                k["SK_ei"].hex(),
                k["SK_er"].hex(),
                f'"{IKEV2_ENCRYPTION[e.cipher]}"',
                k["SK_ai"].hex(),
                k["SK_ar"].hex(),
                f'"{IKEV2_INTEGRITY[e.integrity]}"',
            ]
        )
    return list(records.values())


def ikev1_decryption_table(trace: Trace) -> list[str]:
    """One record per ISAKMP SA: initiator cookie, encryption key (Ka)."""
    records = {e.cky_i: f"{e.cky_i.hex()},{e.keys['Ka'].hex()}" for e in trace.of(Ikev1KeysEvent)}
    return list(records.values())


def esp_sa_table(trace: Trace) -> list[str]:
    """One record per ESP SA (each direction once), in Wireshark 4.0's 8-field format."""
    records: dict[str, str] = {}
    for e in trace.of(ChildSaEvent):
        if e.action != "installed":
            continue
        for sa in (e.inbound, e.outbound):
            cipher, integrity = sa["cipher_name"], sa["integrity_name"]
            family = "IPv6" if ":" in sa["src"] else "IPv4"
            records[sa["spi"]] = ",".join(
                f'"{v}"'
                for v in (
                    family,
                    sa["src"],
                    sa["dst"],
                    "0x" + sa["spi"],
                    ESP_ENCRYPTION[cipher],
                    "0x" + sa["encryption_key"],
                    ESP_AUTHENTICATION[integrity],
                    "0x" + sa["integrity_key"] if sa["integrity_key"] else "",
                )
            )
    return list(records.values())


def write_profile(directory: Path, trace: Trace, decode_as_ports: list[int]) -> list[Path]:
    """A Wireshark configuration directory: tables, the ESP decryption preference, decode-as rules."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    files = {
        "ikev2_decryption_table": ikev2_decryption_table(trace),
        "ikev1_decryption_table": ikev1_decryption_table(trace),
        "esp_sa": esp_sa_table(trace),
    }
    for name, records in files.items():
        path = directory / name
        path.write_text(HEADER + "".join(r + "\n" for r in records))
        written.append(path)
    preferences = directory / "preferences"
    preferences.write_text(
        "# ikelab: let Wireshark decrypt ESP with the esp_sa table and check each packet's ICV\n"
        "esp.enable_encryption_decode: TRUE\n"
        "esp.enable_authentication_check: TRUE\n"
    )
    written.append(preferences)
    if decode_as_ports:
        decode_as = directory / "decode_as_entries"
        decode_as.write_text(
            "# ikelab: IKE on ports other than 500/4500 (the loopback transport)\n"
            + "".join(f"decode_as_entry: udp.port,{port},(none),ISAKMP\n" for port in sorted(set(decode_as_ports)))
        )
        written.append(decode_as)
    return written
