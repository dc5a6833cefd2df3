"""marketd: the off-chain backend of a Solana prediction-market platform."""

__version__ = "0.1.0"
