"""Splitting a long reply into pieces a platform accepts, at the most natural boundary available.

A cut prefers the last paragraph break (a blank line) that fits, then the last
line break, and only then cuts mid-line at the limit itself. The separator at
a paragraph or line cut is dropped; nothing else is lost or reordered.
"""

from __future__ import annotations


def split_text(text: str, limit: int) -> list[str]:
    """`text` in order as pieces of at most `limit` characters (one piece when it fits; none when empty)."""
    if limit < 1:
        raise ValueError(f"a text limit must be at least 1 character, not {limit}")
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        cut, skip = _cut(rest, limit)
        piece = rest[:cut]
        if piece.strip():
            pieces.append(piece)
        rest = rest[cut + skip :]
    if rest.strip() or (not pieces and rest):
        pieces.append(rest)
    return pieces


def _cut(text: str, limit: int) -> tuple[int, int]:
    """Where to end the next piece and how many separator characters to drop after it."""
    window = text[: limit + 1]  # a separator just past the limit still ends a full-length piece
    paragraph = window.rfind("\n\n")
    if 0 < paragraph <= limit:
        return paragraph, 2
    line = window.rfind("\n")
    if 0 < line <= limit:
        return line, 1
    return limit, 0
