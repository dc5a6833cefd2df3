"""Discussion content rules (pure)."""

from __future__ import annotations

MAX_CONTENT = 5000


def normalise_content(content: str) -> str:
    """Trimmed content; raises ValueError when empty or over 5,000 characters after trimming."""
    trimmed = content.strip()
    if not trimmed:
        raise ValueError("content is empty after trimming")
    if len(trimmed) > MAX_CONTENT:
        raise ValueError(f"content is longer than {MAX_CONTENT} characters after trimming")
    return trimmed
