"""The embedded local chain of one marketd process (used when no SOLANA_RPC_URL is set).

`LocalChainRuntime` opens the chain persisted under ``Settings.data_dir / "chain"``, deploys
the twin of zmart_core under the configured program id, initialises GlobalConfig on first start
(the backend key is admin and backend authority) and serves Solana JSON-RPC + websocket on
127.0.0.1 (PubSub also on port + 1, as Agave does), so the rest of marketd talks to it exactly
as it would to a cluster. It says loudly that the chain is SIMULATED.

It moves in time like a cluster (`Settings.localnet_slot_ms`, default a slot every 400 ms,
confirmed `localnet_confirmation_slots` later, finalized 32 slots later, history pruned to
`localnet_history_slots`); `localnet_slot_ms=0` gives the deterministic timing. What the runtime
itself writes (GlobalConfig, the demo's seed) is laid out a slot per transaction and then
finalized, like a genesis: clients see it at every commitment from the start. The test controls
are served only when asked (`controls=True`: the demo and tests), never for `marketd run`.

The backend key is ``Settings.backend_keypair`` when set (base58, a JSON byte array, or the path
of a Solana CLI key file), else one generated on first start and kept in the data directory
(mode 0600), so restarts keep the same admin.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import structlog
from pydantic import SecretStr
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from marketd.chain.idl import IdlCoder
from marketd.chain.localnet.build import program_artifact
from marketd.chain.localnet.rpc_server import RpcEndpoint, serve_local_rpc
from marketd.chain.localnet.seed import LocalProgram, ensure_global_config, seed_chain
from marketd.chain.localnet.svm import FINALITY_DEPTH, ChainTiming, LocalChain
from marketd.chain.program import program_coder, program_id
from marketd.config import Settings

log = structlog.get_logger(__name__)

DEFAULT_PORT = 8899
"""The port solana-test-validator uses, so wallets and CLIs find the chain where they expect."""
HOST = "127.0.0.1"
CHAIN_DIR = "chain"
BACKEND_KEY_FILE = "backend-keypair.json"


class PersistentLocalChain(LocalChain):
    """A `LocalChain` that can group many changes into one snapshot write.

    `LocalChain` rewrites its whole snapshot after every change, which is what a running chain
    wants but makes seeding hundreds of transactions quadratic. Inside `batch()` saves are
    deferred to the end of the outermost batch; a batch that raises is not saved, so the data
    directory keeps its state from before the batch (it is all-or-nothing on disk) until the
    next change outside a batch saves the whole chain again.
    """

    def __init__(self, data_dir: Path | str | None = None, **kwargs: Any) -> None:
        self._batch_depth = 0
        self._dirty = False
        super().__init__(data_dir, **kwargs)

    def save(self) -> None:
        if self._batch_depth:
            self._dirty = True
            return
        super().save()

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        self._batch_depth += 1
        try:
            yield
        except BaseException:
            self._batch_depth -= 1
            if self._batch_depth == 0:
                self._dirty = False
            raise
        self._batch_depth -= 1
        if self._batch_depth == 0 and self._dirty:
            self._dirty = False
            super().save()


def parse_keypair(value: str) -> Keypair:
    """A keypair from base58, a JSON byte array, or the path of a file holding either."""
    text = value.strip()
    if not text.startswith("[") and Path(text).is_file():
        text = Path(text).read_text().strip()
    if text.startswith("["):
        return Keypair.from_bytes(bytes(json.loads(text)))
    return Keypair.from_base58_string(text)


def backend_keypair(settings: Settings) -> Keypair:
    """The configured backend key, else the data directory's own (created once, mode 0600)."""
    if settings.backend_keypair is not None:
        return parse_keypair(settings.backend_keypair.get_secret_value())
    path = settings.data_dir / BACKEND_KEY_FILE
    if path.is_file():
        return parse_keypair(str(path))
    keypair = Keypair()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps(list(bytes(keypair))))
    log.info("generated the local backend key", path=str(path), pubkey=str(keypair.pubkey()))
    return keypair


class LocalChainRuntime:
    """Start/stop the simulated chain: ``async with LocalChainRuntime(settings) as runtime:``.

    `port`: None serves on 8899 (PubSub 8900), or on a free pair when either is taken; an int is
    used as given (0 = a free pair). `controls`: serve the test controls (demo and tests only).
    """

    def __init__(
        self, settings: Settings, *, port: int | None = None, controls: bool = False
    ) -> None:
        if settings.solana_rpc_url is not None:
            raise ValueError(
                "SOLANA_RPC_URL is set: marketd uses that chain and must not start a local one"
            )
        self.settings = settings
        self.port = port
        self.controls = controls
        self.program_id: Pubkey = program_id(settings)
        self.coder: IdlCoder = program_coder(settings)
        self._stack: AsyncExitStack | None = None
        self._chain: PersistentLocalChain | None = None
        self._endpoint: RpcEndpoint | None = None
        self._backend: Keypair | None = None

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir / CHAIN_DIR

    @property
    def chain(self) -> PersistentLocalChain:
        if self._chain is None:
            raise RuntimeError("the local chain is not running")
        return self._chain

    @property
    def endpoint(self) -> RpcEndpoint:
        if self._endpoint is None:
            raise RuntimeError("the local chain is not running")
        return self._endpoint

    @property
    def backend(self) -> Keypair:
        if self._backend is None:
            raise RuntimeError("the local chain is not running")
        return self._backend

    def program_artifact(self) -> Path:
        return program_artifact(fixed=self.settings.local_chain_fixed_program)

    def program(self) -> LocalProgram:
        return LocalProgram(self.chain, self.program_id, self.coder)

    def settings_for_clients(self) -> Settings:
        """The process settings pointed at this chain, with the backend key it administers."""
        endpoint = self.endpoint
        updates: dict[str, Any] = {
            "solana_rpc_url": endpoint.http_url,
            "solana_ws_url": endpoint.ws_url,
        }
        if self.settings.backend_keypair is None:
            updates["backend_keypair"] = SecretStr(str(self.backend))
        return self.settings.model_copy(update=updates)

    @property
    def timing(self) -> ChainTiming:
        settings = self.settings
        if settings.localnet_slot_ms == 0:
            return ChainTiming(history_slots=settings.localnet_history_slots)
        return ChainTiming.cluster(
            settings.localnet_confirmation_slots, settings.localnet_history_slots
        )

    @property
    def slot_seconds(self) -> float | None:
        slot_ms = self.settings.localnet_slot_ms
        return slot_ms / 1000 if slot_ms else None

    def seed_demo_chain(self, now: int) -> bool:
        """Create the demo markets on the chain unless present (one snapshot write)."""
        sells = self.settings.local_chain_fixed_program  # sell_shares pays out there only
        with self.chain.batch(), self.chain.slot_per_transaction():
            created = seed_chain(self.program(), self.backend, now, sells=sells)
        if created:
            _settle(self.chain)
        return created

    async def start(self) -> None:
        if self._stack is not None:
            raise RuntimeError("the local chain is already running")
        backend = backend_keypair(self.settings)
        chain = PersistentLocalChain(self.data_dir, timing=self.timing)
        with chain.batch(), chain.slot_per_transaction():
            chain.load_program(self.program_id, self.program_artifact())
            ensure_global_config(LocalProgram(chain, self.program_id, self.coder), backend)
        _settle(chain)
        stack = AsyncExitStack()
        endpoint = await stack.enter_async_context(self._serve(chain))  # empty stack if it fails
        self._stack, self._chain, self._endpoint, self._backend = stack, chain, endpoint, backend
        log.warning(
            "SIMULATED Solana chain: LiteSVM running a local zmart program, not a real "
            "network (set SOLANA_RPC_URL to use one)",
            program=self.program_artifact().name,
            rpc_url=endpoint.http_url,
            ws_url=endpoint.ws_url,
            program_id=str(self.program_id),
            admin=str(backend.pubkey()),
            data_dir=str(self.data_dir),
        )

    def _serve(self, chain: LocalChain) -> contextlib.AbstractAsyncContextManager[RpcEndpoint]:
        port = DEFAULT_PORT if self.port is None else self.port
        if self.port is None and not (_port_is_free(port) and _port_is_free(port + 1)):
            log.warning("port taken; serving the local chain on a free port", port=port)
            port = 0
        return serve_local_rpc(
            chain, HOST, port, controls=self.controls, slot_seconds=self.slot_seconds
        )

    async def stop(self) -> None:
        stack, self._stack = self._stack, None
        if stack is None:
            return
        await stack.aclose()
        self.chain.save()
        self._chain = self._endpoint = self._backend = None
        log.info("local chain stopped", data_dir=str(self.data_dir))

    async def __aenter__(self) -> LocalChainRuntime:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


def _settle(chain: LocalChain) -> None:
    """Finalize what the runtime wrote, in a cluster timing (deterministic: nothing to do)."""
    if not chain.timing.slot_per_transaction:
        chain.advance_slots(FINALITY_DEPTH)


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True
