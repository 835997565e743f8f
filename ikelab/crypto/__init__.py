"""Cryptography for IKE: DH groups, PRFs and prf+, integrity, ciphers, key derivation."""
