"""The STAC ``file:checksum`` multihash (sha2-256, hex): one helper for model files and map outputs."""

from __future__ import annotations

import hashlib
from pathlib import Path

SHA2_256_PREFIX = "1220"
"""Multihash header of a sha2-256 digest: function code 0x12, length 0x20 (32 bytes)."""


def multihash_sha256(data: bytes | str | Path) -> str:
    """The multihash of ``data``: bytes as given, or the contents of a file path, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    if isinstance(data, bytes):
        digest.update(data)
    else:
        with open(data, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return SHA2_256_PREFIX + digest.hexdigest()
