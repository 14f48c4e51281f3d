"""pysnmp's USM AES on hashlib's libcrypto: the same cipher as cryptography's, without loading
cryptography (memory)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.decrepit.ciphers.modes import CFB
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from agent.sensors.snmp import usm
from agent.sensors.snmp.session import require_privacy

ROOT = Path(__file__).resolve().parents[4]
# NIST SP 800-38A, F.3.13 CFB128-AES128.Encrypt
KEY = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
IV = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
PLAIN = bytes.fromhex(
    "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710"
)
CIPHER = bytes.fromhex(
    "3b3fd92eb72dad20333449f8e83cfb4ac8a64537a0b3a93fcde3cdad9f1ce58b"
    "26751f67a3cbb140b1808cf187a4f4dfc04b05357c5d1c0eeac4c66f9ff7f2e6"
)

needs_libcrypto = pytest.mark.skipif(usm.LIBCRYPTO is None, reason="no libcrypto mapped")


def _pysnmp_cipher(key: bytes, iv: bytes) -> usm._Cipher:
    from pysnmp.proto.secmod.rfc3826.priv import aes

    cipher: usm._Cipher = aes._cryptography_cipher(key, iv)
    return cipher


@needs_libcrypto
def test_known_answer_both_ways() -> None:
    encryptor = _pysnmp_cipher(KEY, IV).encryptor()
    assert encryptor.update(PLAIN) + encryptor.finalize() == CIPHER
    decryptor = _pysnmp_cipher(KEY, IV).decryptor()
    assert decryptor.update(CIPHER) + decryptor.finalize() == PLAIN


@needs_libcrypto
@pytest.mark.parametrize("length", [0, 1, 15, 17, 483])
def test_same_bytes_as_cryptography(length: int) -> None:
    data = os.urandom(length)
    key, iv = os.urandom(16), os.urandom(16)
    ours = _pysnmp_cipher(key, iv).encryptor().update(data)
    theirs = Cipher(algorithms.AES(key), CFB(iv)).encryptor()
    assert ours == theirs.update(data) + theirs.finalize()
    assert _pysnmp_cipher(key, iv).decryptor().update(ours) == data


@needs_libcrypto
def test_wrong_key_size_refused() -> None:
    with pytest.raises(ValueError, match="16-byte"):
        _pysnmp_cipher(KEY[:8], IV).decryptor().update(CIPHER)


def test_privacy_available() -> None:
    require_privacy()


@needs_libcrypto
def test_trap_receiver_does_not_load_cryptography() -> None:
    code = (
        "import sys, agent.sensors.snmp.traps, agent.sensors.snmp.v3;"
        " from agent.sensors.snmp.session import require_privacy; require_privacy();"
        " print(sorted(m for m in sys.modules if m.startswith('cryptography')))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == "[]"
