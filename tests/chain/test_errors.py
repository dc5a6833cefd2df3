"""The chain layer's error tree: what a caller may catch, and which kinds are worth a retry."""

from __future__ import annotations

import pytest

from marketd.chain.errors import (
    BlockhashExpired,
    ChainError,
    CoderError,
    ConfirmationTimeout,
    MarketNotOnChain,
    RpcRejected,
    RpcUnavailable,
    StaleBlockhash,
    StreamError,
    StreamGapError,
    SubscriptionError,
)


@pytest.mark.parametrize(
    ("kind", "retryable"),
    [
        (RpcUnavailable, True),
        (RpcRejected, False),
        (BlockhashExpired, True),
        (ConfirmationTimeout, True),
        (MarketNotOnChain, True),
        (StaleBlockhash, True),
        (StreamGapError, True),
        (SubscriptionError, True),
    ],
)
def test_each_chain_error_says_whether_trying_again_may_pass(
    kind: type[ChainError], retryable: bool
) -> None:
    assert kind("x").retryable is retryable


def test_stream_errors_are_chain_errors_and_coder_errors_are_not() -> None:
    assert issubclass(StreamGapError, StreamError) and issubclass(StreamError, ChainError)
    assert not issubclass(CoderError, ChainError)  # a retry cannot fix bytes we cannot decode
