"""IDL loading in both formats, discriminators, account metas and IDL errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from solders.pubkey import Pubkey

from marketd.chain.borsh import (
    AliasDef,
    ArrayType,
    DefinedType,
    EnumDef,
    IdlEnumVariant,
    IdlField,
    NamedFields,
    OptionType,
    PrimitiveType,
    StructDef,
    TupleFields,
    VecType,
)
from marketd.chain.errors import IdlParseError
from marketd.chain.idl import Idl, IdlAccountMeta, IdlCoder, IdlError, parse_type, snake_case

# A legacy (pre-0.30) IDL using every legacy spelling the loader normalises.
LEGACY_IDL: dict[str, Any] = {
    "version": "0.1.0",
    "name": "legacy_market",
    "instructions": [
        {
            "name": "createMarket",
            "accounts": [
                {"name": "market", "isMut": True, "isSigner": False},
                {
                    "name": "authorityGroup",
                    "accounts": [
                        {"name": "creator", "isMut": True, "isSigner": True},
                        {"name": "referrer", "isMut": False, "isSigner": False, "isOptional": True},
                    ],
                },
                {
                    "name": "config",
                    "isMut": False,
                    "isSigner": False,
                    "pda": {"seeds": [{"kind": "const", "type": "string", "value": "config"}]},
                },
            ],
            "args": [
                {"name": "owner", "type": "publicKey"},
                {"name": "kind", "type": {"defined": "Kind"}},
                {"name": "tags", "type": {"vec": "string"}},
            ],
        }
    ],
    "accounts": [
        {
            "name": "Market",
            "type": {
                "kind": "struct",
                "fields": [
                    {"name": "owner", "type": "publicKey"},
                    {"name": "kind", "type": {"defined": "Kind"}},
                ],
            },
        }
    ],
    "types": [
        {
            "name": "Kind",
            "type": {
                "kind": "enum",
                "variants": [
                    {"name": "Plain"},
                    {"name": "Weighted", "fields": [{"name": "weight", "type": "u16"}]},
                    {"name": "Pair", "fields": ["u8", "bool"]},
                ],
            },
        }
    ],
    "events": [
        {
            "name": "MarketMade",
            "fields": [
                {"name": "owner", "type": "publicKey", "index": False},
                {"name": "kind", "type": {"defined": "Kind"}, "index": False},
            ],
        }
    ],
    "errors": [
        {"code": 6000, "name": "Closed", "msg": "Market closed"},
        {"code": 6001, "name": "X"},
    ],
    "metadata": {"address": "2dhGsWUzy5YKUsjZdLHLmkNpUDAXkNa9MYWsPc4Ziqzy"},
}


def sha8(preimage: str) -> bytes:
    return hashlib.sha256(preimage.encode()).digest()[:8]


@pytest.fixture(scope="module")
def idl_zmart(zmart_idl_path: Path) -> Idl:
    return Idl.from_path(zmart_idl_path)


# ------------------------------------------------------------------------------- zmart_core


def test_zmart_idl_loads(idl_zmart: Idl, zmart_idl_path: Path) -> None:
    raw = json.loads(zmart_idl_path.read_text())
    assert idl_zmart.name == "zmart_core"
    assert idl_zmart.program_id == Pubkey.from_string(raw["address"])
    assert idl_zmart.version == raw["metadata"]["version"]
    assert list(idl_zmart.instructions) == [ix["name"] for ix in raw["instructions"]]
    assert set(idl_zmart.events) == {ev["name"] for ev in raw["events"]}
    assert {"MarketCreated", "SharesBought", "WinningsClaimed"} <= set(idl_zmart.events)


def test_every_zmart_discriminator_is_the_conventional_sha256(idl_zmart: Idl) -> None:
    """DESIGN.md: discriminators are sha256("global:"|"account:"|"event:" + name)[:8]."""
    for name, ix in idl_zmart.instructions.items():
        assert ix.discriminator == sha8(f"global:{name}"), name
    for name, account in idl_zmart.accounts.items():
        assert account.discriminator == sha8(f"account:{name}"), name
    for name, event in idl_zmart.events.items():
        assert event.discriminator == sha8(f"event:{name}"), name
    assert len(idl_zmart.instructions) + len(idl_zmart.accounts) + len(idl_zmart.events) == 40


def test_zmart_types_are_modelled(idl_zmart: Idl) -> None:
    state = idl_zmart.types["MarketState"]
    assert isinstance(state, EnumDef)
    assert [v.name for v in state.variants] == [
        "Proposed",
        "Approved",
        "Active",
        "Resolving",
        "Disputed",
        "Finalized",
        "Cancelled",
    ]
    market = idl_zmart.types["MarketAccount"]
    assert isinstance(market, StructDef)
    assert isinstance(market.fields, NamedFields)
    by_name = {f.name: f.type for f in market.fields.fields}
    assert by_name["market_id"] == ArrayType(PrimitiveType("u8"), 32)
    assert by_name["state"] == DefinedType("MarketState")
    assert by_name["proposed_outcome"] == OptionType(PrimitiveType("bool"))
    finalize = idl_zmart.instructions["finalize_market"].args
    assert finalize == NamedFields(
        (
            IdlField("dispute_agree", OptionType(PrimitiveType("u32"))),
            IdlField("dispute_disagree", OptionType(PrimitiveType("u32"))),
        )
    )


def test_zmart_instruction_accounts(idl_zmart: Idl) -> None:
    coder = IdlCoder(idl_zmart)
    metas = {m.name: m for m in coder.instruction_accounts("aggregate_proposal_votes")}
    assert list(metas) == ["market", "global_config", "backend_authority"]
    assert (metas["market"].writable, metas["market"].signer) == (True, False)
    assert (metas["backend_authority"].writable, metas["backend_authority"].signer) == (False, True)
    seeds = metas["global_config"].pda_seeds
    assert seeds is not None
    assert bytes(seeds[0]["value"]) == b"global-config"
    assert metas["market"].pda_seeds is None
    assert coder.instruction_discriminator("approve_proposal") == sha8("global:approve_proposal")


def test_zmart_errors(idl_zmart: Idl, zmart_idl_path: Path) -> None:
    coder = IdlCoder(idl_zmart)
    raw_errors = json.loads(zmart_idl_path.read_text())["errors"]
    first = raw_errors[0]
    assert coder.error_for_code(first["code"]) == IdlError(
        first["code"], first["name"], first["msg"]
    )
    assert len(idl_zmart.errors) == len(raw_errors)
    assert coder.error_for_code(1) is None


# ------------------------------------------------------------------------------- 0.30+ public


def test_pump_idl_fixed_addresses_and_pda_programs(fixtures_dir: Path) -> None:
    idl = Idl.from_path(fixtures_dir / "anchor" / "pump.idl.json")
    assert idl.name == "pump"
    assert idl.program_id == Pubkey.from_string("6EF8rrecthR5Dkzon8Nwu78hRvfCKubJ14M5uBEwF6P")
    metas = {m.name: m for m in IdlCoder(idl).instruction_accounts("buy")}
    assert metas["system_program"].address == Pubkey.from_string("11111111111111111111111111111111")
    assert metas["user"] == IdlAccountMeta("user", writable=True, signer=True)
    curve = metas["associated_bonding_curve"]
    assert curve.pda is not None and "program" in curve.pda
    assert [seed["kind"] for seed in curve.pda_seeds or []] == ["account", "const", "account"]
    assert idl.events["TradeEvent"].discriminator == sha8("event:TradeEvent")


# ------------------------------------------------------------------------------------- legacy


def test_legacy_idl_is_normalised() -> None:
    idl = Idl.from_dict(LEGACY_IDL)
    assert idl.name == "legacy_market"
    assert idl.version == "0.1.0"
    assert idl.program_id == Pubkey.from_string("2dhGsWUzy5YKUsjZdLHLmkNpUDAXkNa9MYWsPc4Ziqzy")
    assert idl.instructions["createMarket"].discriminator == sha8("global:create_market")
    assert idl.accounts["Market"].discriminator == sha8("account:Market")
    assert idl.events["MarketMade"].discriminator == sha8("event:MarketMade")
    assert idl.types["Kind"] == EnumDef(
        "Kind",
        (
            IdlEnumVariant("Plain", None),
            IdlEnumVariant("Weighted", NamedFields((IdlField("weight", PrimitiveType("u16")),))),
            IdlEnumVariant("Pair", TupleFields((PrimitiveType("u8"), PrimitiveType("bool")))),
        ),
    )
    assert idl.errors[6001] == IdlError(6001, "X", None)


def test_legacy_accounts_flatten_groups_and_read_legacy_flags() -> None:
    metas = IdlCoder(Idl.from_dict(LEGACY_IDL)).instruction_accounts("createMarket")
    assert [(m.name, m.writable, m.signer, m.optional) for m in metas] == [
        ("market", True, False, False),
        ("creator", True, True, False),
        ("referrer", False, False, True),
        ("config", False, False, False),
    ]
    assert metas[3].pda_seeds == [{"kind": "const", "type": "string", "value": "config"}]


def test_legacy_coder_round_trips_all_kinds() -> None:
    coder = IdlCoder(Idl.from_dict(LEGACY_IDL))
    owner = Pubkey.from_string("2dhGsWUzy5YKUsjZdLHLmkNpUDAXkNa9MYWsPc4Ziqzy")
    args = {"owner": owner, "kind": {"kind": "Pair", "fields": [7, True]}, "tags": ["a", "b"]}
    data = coder.encode_instruction("createMarket", args)
    assert data[:8] == sha8("global:create_market")
    assert data[8:40] == bytes(owner)
    assert data[40:43] == b"\x02\x07\x01"
    assert coder.decode_instruction(data) == ("createMarket", args)
    account = {"owner": owner, "kind": {"kind": "Weighted", "fields": {"weight": 9}}}
    encoded = coder.encode_account("Market", account)
    assert coder.decode_account("Market", encoded) == account
    event = {"owner": owner, "kind": "Plain"}
    assert coder.decode_event(coder.encode_event("MarketMade", event)) == ("MarketMade", event)


def test_legacy_events_fixture_loads(fixtures_dir: Path) -> None:
    idl = Idl.from_path(fixtures_dir / "anchor" / "events_program.idl.json")
    assert (idl.name, idl.program_id, idl.version) == ("events", None, "0.0.0")
    assert idl.instructions["initialize"].discriminator == sha8("global:initialize")
    assert idl.types["MyEvent"] == StructDef(
        "MyEvent",
        NamedFields(
            (IdlField("data", PrimitiveType("u64")), IdlField("label", PrimitiveType("string")))
        ),
    )


@pytest.mark.parametrize(
    ("camel", "snake"),
    [
        ("initialize", "initialize"),
        ("createMarket", "create_market"),
        ("aggregate_proposal_votes", "aggregate_proposal_votes"),
        ("initializeV2", "initialize_v2"),
        ("setHTTPUrl", "set_http_url"),
    ],
)
def test_snake_case(camel: str, snake: str) -> None:
    assert snake_case(camel) == snake


# --------------------------------------------------------------------------------- type parsing


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("publicKey", PrimitiveType("pubkey")),
        ("pubkey", PrimitiveType("pubkey")),
        ({"defined": "Kind"}, DefinedType("Kind")),
        ({"defined": {"name": "Kind"}}, DefinedType("Kind")),
        ({"defined": {"name": "Kind", "generics": []}}, DefinedType("Kind")),
        ({"vec": {"option": "u8"}}, VecType(OptionType(PrimitiveType("u8")))),
        ({"array": [{"array": ["u8", 2]}, 3]}, ArrayType(ArrayType(PrimitiveType("u8"), 2), 3)),
    ],
)
def test_parse_type(raw: Any, parsed: Any) -> None:
    assert parse_type(raw) == parsed


@pytest.mark.parametrize(
    "raw",
    [
        "u512",
        {"generic": "T"},
        {"array": ["u8", {"generic": "N"}]},
        {"defined": {"name": "Wrapper", "generics": [{"kind": "type", "type": "u8"}]}},
        {"option": "u8", "vec": "u8"},
        {"coption": "u8"},
        7,
    ],
)
def test_unsupported_types_are_refused(raw: Any) -> None:
    with pytest.raises(IdlParseError, match="unsupported IDL type"):
        parse_type(raw)


def _with(**changes: Any) -> dict[str, Any]:
    return {**LEGACY_IDL, **changes}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (_with(types=[]), "type 'Kind' is referenced but not defined"),
        (
            _with(types=[{"name": "Kind", "type": {"kind": "union"}}]),
            "unsupported kind 'union'",
        ),
        (
            _with(
                types=[
                    LEGACY_IDL["types"][0],
                    {"name": "Market", "type": {"kind": "struct", "fields": []}},
                ]
            ),
            "'Market' is defined twice",
        ),
        (_with(metadata={"address": "not a key"}), "malformed IDL"),
        ({"name": "broken"}, "malformed IDL"),
        (_with(instructions=[{"name": "x", "args": ["u8"]}]), "expected named fields"),
        (
            {
                "name": "a",
                "instructions": [],
                "accounts": [{"name": "Ghost", "discriminator": [1]}],
            },
            "type 'Ghost' is referenced but not defined",
        ),
    ],
)
def test_malformed_idls_raise_idl_parse_error(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(IdlParseError, match=message):
        Idl.from_dict(raw)


def test_references_inside_aliases_and_variants_are_checked() -> None:
    base = {"name": "a", "instructions": []}
    alias = {"name": "A", "type": {"kind": "type", "alias": {"vec": {"defined": "Missing"}}}}
    with pytest.raises(IdlParseError, match="'Missing' is referenced"):
        Idl.from_dict({**base, "types": [alias]})
    variant = {
        "name": "E",
        "type": {"kind": "enum", "variants": [{"name": "V", "fields": [{"defined": "Gone"}]}]},
    }
    with pytest.raises(IdlParseError, match="'Gone' is referenced"):
        Idl.from_dict({**base, "types": [variant]})
    ok = Idl.from_dict({**base, "types": [{"name": "L", "type": {"kind": "type", "alias": "u64"}}]})
    assert ok.types["L"] == AliasDef("L", PrimitiveType("u64"))
    assert ok.program_id is None
