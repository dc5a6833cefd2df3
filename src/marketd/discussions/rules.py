"""Discussion content rules (pure)."""

from __future__ import annotations

MAX_CONTENT = 1000
"""The platform's `discussions.content_max_length` (char_length(content) <= 1000)."""


def normalise_content(content: str) -> str:
    """Trimmed content; raises ValueError when empty or over `MAX_CONTENT` characters after
    trimming (the platform's `content_not_empty` and `content_max_length` checks)."""
    trimmed = content.strip()
    if not trimmed:
        raise ValueError("content is empty after trimming")
    if len(trimmed) > MAX_CONTENT:
        raise ValueError(f"content is longer than {MAX_CONTENT} characters after trimming")
    return trimmed
