"""Helpers for the formats' sniffing functions, which look at a file's first bytes only."""

from __future__ import annotations

import re

# How many leading bytes a sniffing function sees: enough for a zip's first member name and
# a tar header's "ustar" magic (offset 257).
HEAD_BYTES = 512


def zip_first_member(head: bytes) -> bytes | None:
    """Name of the first member of a zip file from its first bytes (None if not a zip)."""
    if head[:4] != b"PK\x03\x04" or len(head) < 30:
        return None
    n = int.from_bytes(head[26:28], "little")
    return head[30:30 + n] if len(head) >= 30 + n else None


# The first member of a zip written by torch.save / torch.jit.save: "<folder>/data.pkl",
# "<folder>/data/0", ... (the folder is named after the file when it was saved).
_TORCH_MEMBER = re.compile(rb"[^/]+/(data\.pkl|data/|constants\.pkl|code/|\.data/|version|"
                           rb"\.format_version|byteorder)")


def zip_kind(head: bytes) -> str | None:
    """``"torch"`` or ``"npz"`` for a zip whose first member marks it as one, ``"zip"`` for any
    other zip, None when ``head`` is not the start of a zip.

    A zip of neither kind is claimed by both formats' sniffing functions, so its extension
    decides which reader explains what is wrong with it.
    """
    member = zip_first_member(head)
    if member is None:
        return None
    if _TORCH_MEMBER.match(member):
        return "torch"
    return "npz" if member.endswith(b".npy") else "zip"
