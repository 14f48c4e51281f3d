"""pysnmp's USM (SNMPv3 security) with its AES-128-CFB from the OpenSSL ``hashlib`` already
loaded, rather than from cryptography.

cryptography is a 15 MB library with its own OpenSSL: importing it and building the first
cipher cost the agent 7.3 MiB of RSS, for one primitive (RFC 3826 AES-128-CFB) that the
``libcrypto`` Python links ``hashlib`` against already provides, loaded and initialised
(docs/benchmarks.md, agent footprint). Only the block cipher changes: key localisation, the
IV from boots, time and salt, authentication and every USM check stay pysnmp's. pysnmp's
other privacy protocols (DES, 3DES, AES-192/256), which a site file cannot ask for, are then
left without a cipher: a user configured with one would be refused as undecryptable.

Import this module before any other pysnmp module of the engine (``entity``, ``hlapi``,
``proto.secmod``): pysnmp's privacy modules import cryptography when they are first imported,
and that import is held off here. Where no ``libcrypto`` can be found (not Linux, a Python
without ``_hashlib``), pysnmp is imported as it is, with cryptography.
"""

from __future__ import annotations

import ctypes
import sys
from pathlib import Path
from typing import Any

_AES_MODULE = "pysnmp.proto.secmod.rfc3826.priv.aes"


class _Library:
    """The few EVP functions of ``libcrypto`` an AES-128-CFB stream needs, typed for ctypes."""

    def __init__(self, path: str) -> None:
        lib = ctypes.CDLL(path)
        lib.EVP_aes_128_cfb128.argtypes = []
        lib.EVP_aes_128_cfb128.restype = ctypes.c_void_p
        lib.EVP_CIPHER_CTX_new.argtypes = []
        lib.EVP_CIPHER_CTX_new.restype = ctypes.c_void_p
        lib.EVP_CIPHER_CTX_free.argtypes = [ctypes.c_void_p]
        lib.EVP_CIPHER_CTX_free.restype = None
        lib.EVP_CipherInit_ex.argtypes = [
            ctypes.c_void_p,  # ctx
            ctypes.c_void_p,  # cipher
            ctypes.c_void_p,  # engine: none
            ctypes.c_char_p,  # key
            ctypes.c_char_p,  # iv
            ctypes.c_int,  # 1 encrypt, 0 decrypt
        ]
        lib.EVP_CipherInit_ex.restype = ctypes.c_int
        lib.EVP_CipherUpdate.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.POINTER(ctypes.c_int),
            ctypes.c_char_p,
            ctypes.c_int,
        ]
        lib.EVP_CipherUpdate.restype = ctypes.c_int
        self.lib = lib

    def aes_128_cfb(self, key: bytes, iv: bytes, data: bytes, *, encrypt: bool) -> bytes:
        """``data`` through AES-128-CFB128 (a stream mode: same length out, nothing held back)."""
        if len(key) != 16 or len(iv) != 16:
            raise ValueError("AES-128-CFB takes a 16-byte key and a 16-byte IV")
        lib = self.lib
        ctx = lib.EVP_CIPHER_CTX_new()
        if not ctx:
            raise MemoryError("EVP_CIPHER_CTX_new failed")
        try:
            if (
                lib.EVP_CipherInit_ex(ctx, lib.EVP_aes_128_cfb128(), None, key, iv, int(encrypt))
                != 1
            ):
                raise ValueError("EVP_CipherInit_ex failed")
            out = ctypes.create_string_buffer(len(data) + 16)  # OpenSSL: room for a block more
            written = ctypes.c_int(0)
            if lib.EVP_CipherUpdate(ctx, out, ctypes.byref(written), data, len(data)) != 1:
                raise ValueError("EVP_CipherUpdate failed")
            if written.value != len(data):
                raise ValueError("AES-128-CFB returned a different length")
            return out.raw[: written.value]
        finally:
            lib.EVP_CIPHER_CTX_free(ctx)


class _Cipher:
    """The part of cryptography's ``Cipher`` pysnmp's AES uses: ``encryptor()`` and
    ``decryptor()``, each with ``update`` and ``finalize``."""

    def __init__(self, library: _Library, key: bytes, iv: bytes) -> None:
        self._library, self._key, self._iv = library, bytes(key), bytes(iv)

    def encryptor(self) -> _Stream:
        """One message to encrypt."""
        return _Stream(self._library, self._key, self._iv, encrypt=True)

    def decryptor(self) -> _Stream:
        """One message to decrypt."""
        return _Stream(self._library, self._key, self._iv, encrypt=False)


class _Stream:
    """pysnmp calls ``update`` once with the whole message, then ``finalize``."""

    def __init__(self, library: _Library, key: bytes, iv: bytes, *, encrypt: bool) -> None:
        self._library, self._key, self._iv, self._encrypt = library, key, iv, encrypt
        self._done = False

    def update(self, data: bytes) -> bytes:
        """The whole message, in one piece (CFB keeps no state pysnmp would need between)."""
        if self._done:
            raise ValueError("one message per cipher context")
        self._done = True
        return self._library.aes_128_cfb(self._key, self._iv, bytes(data), encrypt=self._encrypt)

    def finalize(self) -> bytes:
        """Nothing held back: CFB is a stream mode."""
        return b""


def _libcrypto_path() -> str | None:
    """The ``libcrypto`` mapped into this process by ``hashlib``'s ``_hashlib``, if any."""
    try:
        import _hashlib  # noqa: F401  (maps libcrypto, as hashlib already did)

        maps = Path("/proc/self/maps").read_text()
    except (ImportError, OSError):
        return None
    for line in maps.splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and "/libcrypto.so" in fields[5]:
            return fields[5].strip()
    return None


def _library() -> _Library | None:
    path = _libcrypto_path()
    if path is None:
        return None
    try:
        return _Library(path)
    except (OSError, AttributeError):  # not an OpenSSL with the EVP interface
        return None


def _load() -> _Library | None:
    """Import pysnmp's USM, with the AES of ``libcrypto`` when it can; returns that library."""
    if _AES_MODULE in sys.modules:
        # Imported before this module: pysnmp's AES is cryptography's already.
        _skip_backend_lookup(sys.modules[_AES_MODULE])
        return None
    library = _library()
    if library is None or "cryptography" in sys.modules:
        # The USM package first: in pysnmp 7 a privacy module imported alone is circular.
        import pysnmp.proto.secmod.rfc3414
    else:
        sys.modules["cryptography"] = None  # type: ignore[assignment]  # pysnmp: "not installed"
        try:
            import pysnmp.proto.secmod.rfc3414  # noqa: F401
        finally:
            del sys.modules["cryptography"]
    aes: Any = sys.modules[_AES_MODULE]
    if library is None:
        _skip_backend_lookup(aes)
        return None
    aes._cryptography_cipher = lambda key, iv: _Cipher(library, key, iv)
    aes.PysnmpCryptoError = False
    return library


def _skip_backend_lookup(aes: Any) -> None:
    """Let pysnmp's AES build cryptography's cipher without asking for a backend."""
    # pysnmp passes ``default_backend()`` to every ``Cipher``; cryptography has ignored that
    # argument since 3.1, but the call imports its OpenSSL backend module and with it the RSA,
    # EC, padding and serialization modules (1.1 MiB), which the agent never uses.
    if getattr(aes, "default_backend", None) is not None:
        aes.default_backend = _no_backend


def _no_backend() -> None:
    return None


LIBCRYPTO = _load()
"""The ``libcrypto`` pysnmp's AES runs on, or None when it runs on cryptography."""
