"""Borsh coding over IDL types: conformance vectors, property round trips, error cases."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from solders.pubkey import Pubkey

from marketd.chain.borsh import (
    FLOAT_TYPES,
    INT_TYPES,
    AliasDef,
    ArrayType,
    BorshCodec,
    BorshReader,
    DefinedType,
    EnumDef,
    Fields,
    IdlType,
    NamedFields,
    OptionType,
    PrimitiveType,
    StructDef,
    TupleFields,
    VecType,
)
from marketd.chain.errors import (
    BorshDecodeError,
    BorshEncodeError,
    CoderError,
    UnknownNameError,
)
from marketd.chain.idl import Idl, IdlCoder

# An Anchor 0.30+ IDL exercising every type construct the coder supports.
KITCHEN_SINK_IDL: dict[str, Any] = {
    "address": "11111111111111111111111111111111",
    "metadata": {"name": "kitchen_sink", "version": "0.1.0", "spec": "0.1.0"},
    "instructions": [
        {
            "name": "everything",
            "discriminator": [1, 2, 3, 4, 5, 6, 7, 8],
            "accounts": [],
            "args": [
                {"name": "all", "type": {"defined": {"name": "AllPrimitives"}}},
                {"name": "shapes", "type": {"vec": {"defined": {"name": "Shape"}}}},
                {"name": "pair", "type": {"defined": {"name": "Pair"}}},
                {"name": "alias", "type": {"defined": {"name": "Lamports"}}},
                {"name": "maybe_keys", "type": {"option": {"vec": "pubkey"}}},
                {"name": "grid", "type": {"array": [{"array": ["i16", 2]}, 3]}},
                {"name": "blob", "type": {"vec": "u8"}},
                {"name": "unit", "type": {"defined": {"name": "Nothing"}}},
            ],
        },
        {"name": "short_tag", "discriminator": [9], "accounts": [], "args": []},
    ],
    "accounts": [{"name": "Pair", "discriminator": [11, 12, 13, 14, 15, 16, 17, 18]}],
    "events": [{"name": "Shaped", "discriminator": [21, 22, 23, 24, 25, 26, 27, 28]}],
    "types": [
        {
            "name": "AllPrimitives",
            "type": {
                "kind": "struct",
                "fields": [
                    *({"name": f"f_{name}", "type": name} for name in [*INT_TYPES, *FLOAT_TYPES]),
                    {"name": "f_bool", "type": "bool"},
                    {"name": "f_string", "type": "string"},
                    {"name": "f_bytes", "type": "bytes"},
                    {"name": "f_pubkey", "type": "pubkey"},
                ],
            },
        },
        {
            "name": "Shape",
            "type": {
                "kind": "enum",
                "variants": [
                    {"name": "Empty"},
                    {"name": "Circle", "fields": [{"name": "radius", "type": "u32"}]},
                    {"name": "Point", "fields": ["i64", "i64"]},
                ],
            },
        },
        {"name": "Pair", "type": {"kind": "struct", "fields": ["string", {"option": "u8"}]}},
        {"name": "Lamports", "type": {"kind": "type", "alias": "u64"}},
        {"name": "Nothing", "type": {"kind": "struct"}},
        {
            "name": "Shaped",
            "type": {
                "kind": "struct",
                "fields": [{"name": "shape", "type": {"defined": {"name": "Shape"}}}],
            },
        },
        {
            "name": "ZeroCopy",
            "serialization": "bytemuck",
            "repr": {"kind": "c"},
            "type": {"kind": "struct", "fields": [{"name": "x", "type": "u64"}]},
        },
    ],
}


# -------------------------------------------------------------------- strategies from IDL types


def strategy_for(idl_type: IdlType | Fields, types: Any) -> st.SearchStrategy[Any]:
    """Values of an IDL type in the coder's documented Python mapping."""
    match idl_type:
        case PrimitiveType(name) if name in INT_TYPES:
            size, signed = INT_TYPES[name]
            bits = size * 8
            low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
            return st.integers(low, high)
        case PrimitiveType("f32"):
            return st.floats(width=32, allow_nan=False)
        case PrimitiveType("f64"):
            return st.floats(allow_nan=False)
        case PrimitiveType("bool"):
            return st.booleans()
        case PrimitiveType("string"):
            return st.text(max_size=20)
        case PrimitiveType("bytes") | VecType(PrimitiveType("u8")):
            return st.binary(max_size=40)
        case PrimitiveType("pubkey"):
            return st.binary(min_size=32, max_size=32).map(Pubkey.from_bytes)
        case OptionType(inner):
            return st.none() | strategy_for(inner, types)
        case VecType(inner):
            return st.lists(strategy_for(inner, types), max_size=4)
        case ArrayType(PrimitiveType("u8"), length):
            return st.binary(min_size=length, max_size=length)
        case ArrayType(inner, length):
            return st.lists(strategy_for(inner, types), min_size=length, max_size=length)
        case DefinedType(name):
            return _strategy_for_def(types[name], types)
        case NamedFields(fields):
            return st.fixed_dictionaries({f.name: strategy_for(f.type, types) for f in fields})
        case TupleFields(items):
            return st.tuples(*(strategy_for(t, types) for t in items)).map(list)
    raise AssertionError(f"no strategy for {idl_type!r}")


def _tagged(kind: str) -> Callable[[Any], dict[str, Any]]:
    return lambda fields: {"kind": kind, "fields": fields}


def _strategy_for_def(type_def: Any, types: Any) -> st.SearchStrategy[Any]:
    match type_def:
        case StructDef(_, fields):
            return strategy_for(fields, types)
        case EnumDef(_, variants):
            options = [
                st.just(v.name)
                if v.fields is None
                else strategy_for(v.fields, types).map(_tagged(v.name))
                for v in variants
            ]
            return st.one_of(options)
        case AliasDef(_, target):
            return strategy_for(target, types)
    raise AssertionError(f"no strategy for {type_def!r}")


# ---------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def borsh_zmart_coder(zmart_idl_path: Path) -> IdlCoder:
    return IdlCoder(Idl.from_path(zmart_idl_path))


@pytest.fixture(scope="module")
def kitchen_sink_coder() -> IdlCoder:
    return IdlCoder(Idl.from_dict(KITCHEN_SINK_IDL))


# ------------------------------------------------------------------------- conformance vectors


INSTRUCTION_VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "fixtures" / "anchor" / "vectors.json").read_text()
)["instructions"]


@pytest.mark.parametrize("vector", INSTRUCTION_VECTORS, ids=lambda vector: str(vector["name"]))
def test_zmart_instruction_vectors(vector: dict[str, Any], zmart_idl_path: Path) -> None:
    # The vectors name the real IDL by its place in the handed-over material
    # (../../idl/zmart_core.json); marketd keeps that file as its bundled IDL.
    assert Path(vector["idl"]).name == "zmart_core.json", vector["idl"]
    coder = IdlCoder(Idl.from_path(zmart_idl_path))
    data = bytes.fromhex(vector["data_hex"])
    assert coder.encode_instruction(vector["name"], vector["args"]) == data
    assert coder.decode_instruction(data) == (vector["name"], vector["args"])


@pytest.mark.parametrize(
    ("idl_type", "value", "encoded"),
    [
        (PrimitiveType("u16"), 0x0102, "0201"),
        (PrimitiveType("i8"), -1, "ff"),
        (PrimitiveType("i64"), -2, "feffffffffffffff"),
        (PrimitiveType("u128"), 1, "01" + "00" * 15),
        (PrimitiveType("bool"), True, "01"),
        (PrimitiveType("string"), "hé", "03000000" + "68c3a9"),
        (PrimitiveType("bytes"), b"\x00\xff", "02000000" + "00ff"),
        (PrimitiveType("f32"), 1.5, struct.pack("<f", 1.5).hex()),
        (PrimitiveType("f64"), -0.25, struct.pack("<d", -0.25).hex()),
        (OptionType(PrimitiveType("u8")), None, "00"),
        (OptionType(PrimitiveType("u8")), 7, "0107"),
        (VecType(PrimitiveType("u16")), [1, 2], "02000000" + "0100" + "0200"),
        (ArrayType(PrimitiveType("u8"), 3), b"abc", "616263"),
        (VecType(PrimitiveType("u8")), b"ab", "02000000" + "6162"),
    ],
)
def test_borsh_wire_format(idl_type: IdlType, value: Any, encoded: str) -> None:
    codec = BorshCodec({})
    assert codec.encode(idl_type, value, "v").hex() == encoded
    assert codec.decode(idl_type, bytes.fromhex(encoded), "v") == value


def test_pubkey_is_its_32_bytes_and_accepts_base58() -> None:
    key = Pubkey.from_string("6EF8rrecthR5Dkzon8Nwu78hRvfCKubJ14M5uBEwF6P")
    codec = BorshCodec({})
    assert codec.encode(PrimitiveType("pubkey"), key, "k") == bytes(key)
    assert codec.encode(PrimitiveType("pubkey"), str(key), "k") == bytes(key)
    assert codec.decode(PrimitiveType("pubkey"), bytes(key), "k") == key


def test_u8_sequences_accept_int_lists() -> None:
    codec = BorshCodec({})
    assert codec.encode(ArrayType(PrimitiveType("u8"), 2), [1, 255], "a") == b"\x01\xff"
    assert codec.encode(VecType(PrimitiveType("u8")), (1,), "a") == b"\x01\x00\x00\x00\x01"
    assert codec.encode(PrimitiveType("bytes"), bytearray(b"z"), "a") == b"\x01\x00\x00\x00z"


def test_enum_wire_format(borsh_zmart_coder: IdlCoder, kitchen_sink_coder: IdlCoder) -> None:
    state = DefinedType("MarketState")
    assert borsh_zmart_coder.borsh.encode(state, "Active", "s") == b"\x02"
    assert borsh_zmart_coder.borsh.encode(state, {"kind": "Cancelled"}, "s") == b"\x06"
    assert borsh_zmart_coder.borsh.decode(state, b"\x05", "s") == "Finalized"
    shape = DefinedType("Shape")
    sink = kitchen_sink_coder.borsh
    circle = {"kind": "Circle", "fields": {"radius": 3}}
    assert sink.encode(shape, circle, "s") == b"\x01\x03\x00\x00\x00"
    point = {"kind": "Point", "fields": [-1, 2]}
    encoded_point = b"\x02" + (-1).to_bytes(8, "little", signed=True) + (2).to_bytes(8, "little")
    assert sink.encode(shape, point, "s") == encoded_point
    assert sink.decode(shape, encoded_point, "s") == point


# ----------------------------------------------------------------------- property round trips


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_every_zmart_instruction_round_trips(borsh_zmart_coder: IdlCoder, data: Any) -> None:
    idl = borsh_zmart_coder.idl
    assert len(idl.instructions) == 18
    for name, ix in idl.instructions.items():
        args = data.draw(strategy_for(ix.args, idl.types), label=name)
        encoded = borsh_zmart_coder.encode_instruction(name, args)
        assert encoded.startswith(ix.discriminator)
        assert borsh_zmart_coder.decode_instruction(encoded) == (name, args)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_every_zmart_account_round_trips(borsh_zmart_coder: IdlCoder, data: Any) -> None:
    idl = borsh_zmart_coder.idl
    assert set(idl.accounts) == {"GlobalConfig", "MarketAccount", "UserPosition", "VoteRecord"}
    for name in idl.accounts:
        value = data.draw(strategy_for(DefinedType(name), idl.types), label=name)
        encoded = borsh_zmart_coder.encode_account(name, value)
        assert encoded[:8] == borsh_zmart_coder.account_discriminator(name)
        assert borsh_zmart_coder.decode_account(name, encoded) == value


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_every_zmart_event_round_trips(borsh_zmart_coder: IdlCoder, data: Any) -> None:
    idl = borsh_zmart_coder.idl
    assert len(idl.events) == 18
    for name in idl.events:
        value = data.draw(strategy_for(DefinedType(name), idl.types), label=name)
        encoded = borsh_zmart_coder.encode_event(name, value)
        assert encoded[:8] == borsh_zmart_coder.event_discriminator(name)
        assert borsh_zmart_coder.decode_event(encoded) == (name, value)


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_every_type_construct_round_trips(kitchen_sink_coder: IdlCoder, data: Any) -> None:
    idl = kitchen_sink_coder.idl
    args = data.draw(strategy_for(idl.instructions["everything"].args, idl.types))
    encoded = kitchen_sink_coder.encode_instruction("everything", args)
    assert kitchen_sink_coder.decode_instruction(encoded) == ("everything", args)
    pair = data.draw(strategy_for(DefinedType("Pair"), idl.types))
    assert (
        kitchen_sink_coder.decode_account("Pair", kitchen_sink_coder.encode_account("Pair", pair))
        == pair
    )


@given(blob=st.binary(max_size=64))
def test_decode_then_encode_reproduces_the_bytes(blob: bytes) -> None:
    """Decoding is strict (canonical bools/tags), so any accepted buffer re-encodes identically."""
    codec = BorshCodec({})
    shape = VecType(OptionType(PrimitiveType("bool")))
    try:
        value = codec.decode(shape, blob, "v")
    except BorshDecodeError:
        return
    assert codec.encode(shape, value, "v") == blob


# ------------------------------------------------------------------------------------ errors


def test_decode_reports_missing_bytes_with_the_field_path(borsh_zmart_coder: IdlCoder) -> None:
    full = borsh_zmart_coder.encode_instruction(
        "aggregate_proposal_votes", {"final_likes": 1, "final_dislikes": 2}
    )
    with pytest.raises(BorshDecodeError, match=r"final_dislikes: needs 4 bytes .* only 3 left"):
        borsh_zmart_coder.decode_instruction(full[:-1])


def test_decode_reports_trailing_bytes(borsh_zmart_coder: IdlCoder) -> None:
    full = borsh_zmart_coder.encode_instruction("submit_proposal_vote", {"vote": True})
    with pytest.raises(BorshDecodeError, match="3 trailing bytes"):
        borsh_zmart_coder.decode_instruction(full + b"xyz")
    account = borsh_zmart_coder.encode_account(
        "VoteRecord",
        {
            "market": Pubkey.default(),
            "user": Pubkey.default(),
            "vote_type": "Dispute",
            "vote": False,
            "voted_at": -5,
            "bump": 255,
        },
    )
    with pytest.raises(BorshDecodeError, match="1 trailing bytes"):
        borsh_zmart_coder.decode_account("VoteRecord", account + b"\x00")
    padded = borsh_zmart_coder.decode_account("VoteRecord", account + b"\x07", allow_trailing=True)
    assert padded == borsh_zmart_coder.decode_account("VoteRecord", account)
    assert padded["vote_type"] == "Dispute"
    event = borsh_zmart_coder.encode_event(
        "ProtocolPauseStatusChanged",
        {"is_paused": True, "paused_by": Pubkey.default(), "timestamp": 1},
    )
    with pytest.raises(BorshDecodeError, match="2 trailing bytes"):
        borsh_zmart_coder.decode_event(event + b"\x00\x00")


def test_wrong_account_discriminator_is_refused(borsh_zmart_coder: IdlCoder) -> None:
    config = borsh_zmart_coder.account_discriminator("GlobalConfig")
    with pytest.raises(BorshDecodeError, match="discriminator"):
        borsh_zmart_coder.decode_account("MarketAccount", config + bytes(500))
    with pytest.raises(BorshDecodeError, match="discriminator"):
        borsh_zmart_coder.decode_account("MarketAccount", b"\x01")


def test_unknown_instruction_discriminator_is_refused(borsh_zmart_coder: IdlCoder) -> None:
    with pytest.raises(BorshDecodeError, match="no instruction has discriminator 0000000000000000"):
        borsh_zmart_coder.decode_instruction(bytes(16))


def test_unknown_event_discriminator_is_not_an_event(borsh_zmart_coder: IdlCoder) -> None:
    assert borsh_zmart_coder.decode_event(bytes(40)) is None
    assert borsh_zmart_coder.decode_event(b"") is None
    account = borsh_zmart_coder.account_discriminator("GlobalConfig")
    assert borsh_zmart_coder.decode_event(account + bytes(190)) is None


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.instruction_discriminator("nope"),
        lambda c: c.encode_instruction("nope", {}),
        lambda c: c.instruction_accounts("nope"),
        lambda c: c.account_discriminator("Nope"),
        lambda c: c.encode_account("Nope", {}),
        lambda c: c.decode_account("Nope", b""),
        lambda c: c.event_discriminator("Nope"),
        lambda c: c.encode_event("Nope", {}),
        lambda c: c.borsh.decode(DefinedType("Nope"), b"", "x"),
    ],
)
def test_unknown_names_are_both_decode_and_encode_errors(
    borsh_zmart_coder: IdlCoder, call: Any
) -> None:
    with pytest.raises(UnknownNameError) as raised:
        call(borsh_zmart_coder)
    assert isinstance(raised.value, BorshDecodeError)
    assert isinstance(raised.value, BorshEncodeError)
    assert isinstance(raised.value, CoderError)


@pytest.mark.parametrize(
    ("name", "low", "high"),
    [
        (name, -(2 ** (size * 8 - 1)) if signed else 0, 2 ** (size * 8 - (1 if signed else 0)) - 1)
        for name, (size, signed) in INT_TYPES.items()
    ],
)
def test_integers_are_range_checked(name: str, low: int, high: int) -> None:
    codec = BorshCodec({})
    int_type = PrimitiveType(name)
    for edge in (low, high):
        assert codec.decode(int_type, codec.encode(int_type, edge, "n"), "n") == edge
    for outside in (low - 1, high + 1):
        with pytest.raises(BorshEncodeError, match=f"out of range for {name}"):
            codec.encode(int_type, outside, "n")


@pytest.mark.parametrize(
    ("idl_type", "value", "message"),
    [
        (PrimitiveType("u8"), True, "expected int"),
        (PrimitiveType("u64"), "5", "expected int"),
        (PrimitiveType("f64"), "1.0", "expected float"),
        (PrimitiveType("f32"), False, "expected float"),
        (PrimitiveType("f32"), 1e300, "out of range for f32"),
        (PrimitiveType("bool"), 1, "expected bool"),
        (PrimitiveType("string"), b"x", "expected str"),
        (PrimitiveType("bytes"), "x", "expected bytes"),
        (PrimitiveType("pubkey"), "not-base58!", "not a base58 pubkey"),
        (PrimitiveType("pubkey"), bytes(32), "expected Pubkey"),
        (ArrayType(PrimitiveType("u8"), 32), bytes(31), "expected 32 items, got 31"),
        (ArrayType(PrimitiveType("u8"), 2), [1, 256], "byte values"),
        (ArrayType(PrimitiveType("u16"), 2), [1], "expected 2 items, got 1"),
        (VecType(PrimitiveType("u16")), {1, 2}, "expected a list"),
        (VecType(PrimitiveType("u16")), [1, -1], r"v\[1\]: -1 is out of range"),
    ],
)
def test_encode_refuses_values_that_do_not_fit(idl_type: IdlType, value: Any, message: str) -> None:
    with pytest.raises(BorshEncodeError, match=message):
        BorshCodec({}).encode(idl_type, value, "v")


def test_struct_fields_must_match_exactly(borsh_zmart_coder: IdlCoder) -> None:
    with pytest.raises(BorshEncodeError, match=r"missing fields \['final_dislikes'\]"):
        borsh_zmart_coder.encode_instruction("aggregate_proposal_votes", {"final_likes": 1})
    with pytest.raises(BorshEncodeError, match=r"unexpected \['typo'\]"):
        borsh_zmart_coder.encode_instruction("submit_proposal_vote", {"vote": True, "typo": 1})
    with pytest.raises(BorshEncodeError, match="expected a mapping"):
        borsh_zmart_coder.encode_instruction("submit_proposal_vote", [True])  # type: ignore[arg-type]


def test_enum_and_tuple_encode_errors(kitchen_sink_coder: IdlCoder) -> None:
    sink = kitchen_sink_coder.borsh
    shape, pair = DefinedType("Shape"), DefinedType("Pair")
    with pytest.raises(BorshEncodeError, match="'Square' is not a variant of Shape"):
        sink.encode(shape, "Square", "s")
    with pytest.raises(BorshEncodeError, match="variant name"):
        sink.encode(shape, 1, "s")
    with pytest.raises(BorshEncodeError, match="unit variant Empty takes no fields"):
        sink.encode(shape, {"kind": "Empty", "fields": {"x": 1}}, "s")
    with pytest.raises(BorshEncodeError, match=r"s.Circle: missing fields \['radius'\]"):
        sink.encode(shape, {"kind": "Circle", "fields": {}}, "s")
    with pytest.raises(BorshEncodeError, match="expected 2 items, got 1"):
        sink.encode(pair, ["only"], "p")
    with pytest.raises(BorshEncodeError, match="bytemuck layout is not supported"):
        sink.encode(DefinedType("ZeroCopy"), {"x": 1}, "z")


@pytest.mark.parametrize(
    ("idl_type", "data", "message"),
    [
        (PrimitiveType("bool"), b"\x02", "invalid bool byte 2"),
        (OptionType(PrimitiveType("u8")), b"\x02\x00", "invalid option tag 2"),
        (PrimitiveType("string"), b"\x01\x00\x00\x00\xff", "not valid UTF-8"),
        (PrimitiveType("string"), b"\x05\x00\x00\x00abc", "needs 5 bytes at offset 4"),
        (VecType(PrimitiveType("u32")), b"\x02\x00\x00\x00\x01\x00\x00\x00", r"v\[1\]"),
        (PrimitiveType("pubkey"), bytes(31), "needs 32 bytes"),
        (DefinedType("Shape"), b"\x03", "invalid Shape variant 3"),
        (DefinedType("ZeroCopy"), bytes(8), "bytemuck layout is not supported"),
    ],
)
def test_decode_refuses_malformed_bytes(
    kitchen_sink_coder: IdlCoder, idl_type: IdlType, data: bytes, message: str
) -> None:
    with pytest.raises(BorshDecodeError, match=message):
        kitchen_sink_coder.borsh.decode(idl_type, data, "v")


def test_reader_tracks_offset() -> None:
    reader = BorshReader(b"abcdef")
    assert reader.take(2, "x") == b"ab"
    assert (reader.offset, reader.remaining) == (2, 4)
    with pytest.raises(BorshDecodeError, match="needs 5 bytes at offset 2, only 4 left"):
        reader.take(5, "x")


def test_short_custom_discriminators_match_by_prefix(kitchen_sink_coder: IdlCoder) -> None:
    """Anchor 0.31 allows discriminators of any length; they prefix the data."""
    assert kitchen_sink_coder.encode_instruction("short_tag", {}) == b"\x09"
    assert kitchen_sink_coder.decode_instruction(b"\x09") == ("short_tag", {})
