"""Discussion rules (pure): what a post may contain, and which markets take posts."""

from __future__ import annotations

from marketd.core.inputs import strip_blank
from marketd.shared.market_state import MarketState

MIN_CONTENT = 1
MAX_CONTENT = 1000
"""Characters of a post after trimming (the schema of DiscussionCreate states these): the
platform's `discussions` checks (`content_not_empty`, `content_max_length`)."""

CLOSED_STATES = frozenset({MarketState.CANCELLED, MarketState.FINALIZED})
"""Markets whose discussion takes no new posts (409): the question is settled or withdrawn, so
a post could no longer inform anyone's trade or vote, and the last daily snapshot stays the
thread's final record. Their threads stay readable, and authors may still delete their posts."""


def normalise_content(content: str) -> str:
    """Trimmed content (surrounding white space and invisible characters: a post of only
    zero-width characters is empty); raises ValueError when empty or over MAX_CONTENT characters
    after trimming."""
    trimmed = strip_blank(content)
    if len(trimmed) < MIN_CONTENT:
        raise ValueError("content is empty after trimming")
    if len(trimmed) > MAX_CONTENT:
        raise ValueError(f"content is longer than {MAX_CONTENT} characters after trimming")
    return trimmed
