"""Sealing values that leave the process (redis, database): authenticated encryption, optional zstd.

``b"DSW2" + flags(1) + nonce(12) + ciphertext + tag(16)``: AES-256-GCM with a 96-bit random nonce and
a key derived per app from ``SECRET_KEY`` (:mod:`dash_state.core.keys`). The associated data binds the
ciphertext to its storage key, which is 128 random bits (or a digest of user, store and value): a
value that was corrupted, truncated, or copied under another key inside Redis or the database fails
to decrypt and is treated as missing, never decoded. Old secrets in ``SECRET_KEY_FALLBACKS`` still
decrypt during a rotation.

``STATE_ENCRYPTION = "hmac"`` keeps values readable at rest and only authenticates them (HMAC-SHA256,
no ``cryptography`` package needed); it is slower (measured on 6 MB: HMAC-SHA256 3.4 ms, AES-GCM
encrypt 0.5 ms / decrypt 0.4 ms). Compression is off by default: on a local network zstd costs more
time than it saves (6.3 MB of Arrow IPC: level 1 gives 3.3x in 25 ms).
"""
from __future__ import annotations

import hashlib
import hmac
import os
from typing import Any

from dash_state.core.codecs import Snapshot, byte_buffer
from dash_state.core.keys import Keys
from dash_state.errors import ConfigError, CorruptValue

MAGIC = b"DSW2"
_ZSTD, _HMAC = 1, 2
_NONCE = 12
_TAG = 16
_HEAD = len(MAGIC) + 1
_STREAM_MIN = 1 << 16  # smaller values: one AESGCM call is cheaper than a streaming cipher


class Seal:
    def __init__(self, keys: Keys, encryption: str = "aes-gcm", compression: str = "off",
                 compress_min_bytes: int = 65536):
        self._encrypt = encryption == "aes-gcm"
        self._macs = keys.all("values hmac v2")
        self._ciphers: tuple[Any, ...] = ()
        if self._encrypt:
            try:
                from cryptography.hazmat.primitives.ciphers.aead import AESGCM
            except ImportError:
                raise ConfigError("STATE_ENCRYPTION = 'aes-gcm' (the default for redis and database) needs the "
                                  "cryptography package: pip install 'dash-state[redis]' or '[database]', or set "
                                  "STATE_ENCRYPTION = 'hmac'") from None
            self._aes_keys = keys.all("values aes-gcm v2")
            self._ciphers = tuple(AESGCM(key) for key in self._aes_keys)
        self._min = compress_min_bytes
        self._compress = self._decompress = None
        if compression == "zstd":
            zstandard = _zstandard()
            self._compress = zstandard.ZstdCompressor(level=1).compress
            self._decompress = zstandard.ZstdDecompressor().decompress

    def dump(self, key: str, snapshot: Snapshot) -> Any:
        """The sealed bytes of ``snapshot``: a buffer of its own (frames are encrypted straight from
        their column buffers into it, see :meth:`Snapshot.write_to`)."""
        size = snapshot.encoded_size()
        if self._encrypt and size >= _STREAM_MIN and not (self._compress is not None and size >= self._min):
            return self._encrypt_streamed(key, snapshot, size)
        body = snapshot.to_bytes()
        if isinstance(body, memoryview) and body.format != "B":
            body = body.cast("B")
        flags = 0
        if self._compress is not None and len(body) >= self._min:
            body, flags = self._compress(body), _ZSTD
        if not self._encrypt:
            head = MAGIC + bytes([flags | _HMAC])
            return b"".join((head, self._mac(self._macs[0], head, key, body), body))
        head = MAGIC + bytes([flags])
        nonce = os.urandom(_NONCE)
        out = byte_buffer(_HEAD + _NONCE + len(body) + _TAG)
        out[:_HEAD] = head
        out[_HEAD:_HEAD + _NONCE] = nonce
        self._ciphers[0].encrypt_into(nonce, body, head + key.encode(), out[_HEAD + _NONCE:])
        return out

    def _encrypt_streamed(self, key: str, snapshot: Snapshot, size: int) -> Any:
        """AES-GCM piece by piece: the same bytes as AESGCM.encrypt with this nonce, without the
        encoded value ever existing in one piece."""
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        head, nonce = MAGIC + bytes([0]), os.urandom(_NONCE)
        out = byte_buffer(_HEAD + _NONCE + size + _TAG)
        out[:_HEAD] = head
        out[_HEAD:_HEAD + _NONCE] = nonce
        encryptor = Cipher(algorithms.AES(self._aes_keys[0]), modes.GCM(nonce)).encryptor()
        encryptor.authenticate_additional_data(head + key.encode())
        at = _HEAD + _NONCE

        def encrypt(chunk: memoryview) -> None:
            nonlocal at  # GCM is a stream mode: each chunk encrypts to exactly its own length
            at += encryptor.update_into(chunk, out[at:])

        snapshot.write_to(encrypt)
        encryptor.finalize()
        if at + _TAG != len(out):  # the encoder wrote other than it measured: never store a short value
            raise CorruptValue(f"encoded {at - _HEAD - _NONCE} bytes, measured {size}")
        out[at:] = encryptor.tag
        return out

    def load(self, key: str, data: Any) -> Snapshot:
        """Open sealed bytes; raises CorruptValue when they were not sealed for ``key`` by this app."""
        view = memoryview(data)
        if len(view) < _HEAD + _TAG or bytes(view[:4]) != MAGIC:
            raise CorruptValue("not a sealed dash-state value")
        head, flags = bytes(view[:_HEAD]), view[4]
        if flags & _HMAC:
            body = view[_HEAD + _TAG:]
            given = bytes(view[_HEAD:_HEAD + _TAG])
            if not any(hmac.compare_digest(given, self._mac(k, head, key, body)) for k in self._macs):
                raise CorruptValue("integrity check failed")
        else:
            body = self._decrypt(key, head, view)
        if flags & _ZSTD:
            if self._decompress is None:  # written by a process with compression on
                self._decompress = _zstandard().ZstdDecompressor().decompress
            body = self._decompress(body)
        try:
            return Snapshot.from_bytes(body)
        except ValueError as exc:
            raise CorruptValue(str(exc)) from None

    def _decrypt(self, key: str, head: bytes, view: memoryview) -> Any:
        if not self._ciphers:
            raise CorruptValue("an encrypted value, but STATE_ENCRYPTION is 'hmac' in this process")
        nonce, sealed = bytes(view[_HEAD:_HEAD + _NONCE]), view[_HEAD + _NONCE:]
        if len(sealed) < _TAG:
            raise CorruptValue("truncated value")
        out = byte_buffer(len(sealed) - _TAG)
        from cryptography.exceptions import InvalidTag

        for cipher in self._ciphers:
            try:
                cipher.decrypt_into(nonce, sealed, head + key.encode(), out)
                return out
            except InvalidTag:
                continue
        raise CorruptValue("authentication failed (tampered, moved to another key, or another SECRET_KEY)")

    @staticmethod
    def _mac(secret: bytes, head: bytes, key: str, body: Any) -> bytes:
        mac = hmac.new(secret, head + key.encode() + b"\0", hashlib.sha256)
        mac.update(body)
        return mac.digest()[:_TAG]


def _zstandard() -> Any:
    try:
        import zstandard
    except ImportError:
        raise ConfigError("STATE_COMPRESSION = 'zstd' needs the zstandard package: pip install 'dash-state[zstd]'") \
            from None
    return zstandard
