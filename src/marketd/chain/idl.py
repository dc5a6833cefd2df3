"""Anchor IDL model, loader for both IDL formats, and the IDL-driven coder.

Two formats exist and are normalised here into one model:

* Anchor 0.30+ ("spec" in metadata): top-level `address`, explicit `discriminator` arrays on
  instructions/accounts/events, accounts and events name a struct in `types`, `pubkey`,
  `{"defined": {"name": ...}}`, account flags `writable`/`signer`/`optional`.
* Legacy (pre-0.30): `name` and `metadata.address`, no discriminators, accounts carry their own
  `type`, events their own `fields`, `publicKey`, `{"defined": "Name"}`, `isMut`/`isSigner`.
  Discriminators are derived the way Anchor derives them: sha256("global:<snake_case ix>")[:8],
  sha256("account:<Name>")[:8] and sha256("event:<Name>")[:8].

Values are mapped to Python as documented in `marketd.chain.borsh`. Generic types
(`{"generic": ...}`) are not supported and are reported as `IdlParseError` at load time.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from solders.pubkey import Pubkey

from marketd.chain.borsh import (
    PRIMITIVE_TYPES,
    AliasDef,
    ArrayType,
    BorshCodec,
    DefinedType,
    EnumDef,
    Fields,
    IdlEnumVariant,
    IdlField,
    IdlType,
    IdlTypeDef,
    NamedFields,
    OptionType,
    PrimitiveType,
    StructDef,
    TupleFields,
    VecType,
)
from marketd.chain.errors import BorshDecodeError, IdlParseError, UnknownNameError

_LEGACY_TYPE_NAMES = {"publicKey": "pubkey"}


def sighash(namespace: str, name: str) -> bytes:
    """Anchor's conventional 8-byte discriminator: sha256("<namespace>:<name>")[:8]."""
    return hashlib.sha256(f"{namespace}:{name}".encode()).digest()[:8]


def snake_case(name: str) -> str:
    """`createMarket` -> `create_market`, as legacy Anchor clients convert instruction names."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


# ---------------------------------------------------------------------------------------- model


@dataclass(frozen=True)
class IdlAccountMeta:
    """One account an instruction takes; `pda` is the IDL's raw `pda` object (seeds, program)."""

    name: str
    writable: bool
    signer: bool
    optional: bool = False
    address: Pubkey | None = None
    pda: Mapping[str, Any] | None = None

    @property
    def pda_seeds(self) -> list[Mapping[str, Any]] | None:
        return None if self.pda is None else list(self.pda.get("seeds", []))


@dataclass(frozen=True)
class IdlInstruction:
    name: str
    discriminator: bytes
    args: NamedFields
    accounts: tuple[IdlAccountMeta, ...]


@dataclass(frozen=True)
class IdlAccountDef:
    """A program account; its layout is the struct `types[name]`."""

    name: str
    discriminator: bytes


@dataclass(frozen=True)
class IdlEventDef:
    """A program event; its layout is the struct `types[name]`."""

    name: str
    discriminator: bytes


@dataclass(frozen=True)
class IdlError:
    """An entry of the IDL `errors` list (the program's `#[error_code]` enum)."""

    code: int
    name: str
    msg: str | None = None


@dataclass(frozen=True)
class Idl:
    name: str
    program_id: Pubkey | None
    instructions: Mapping[str, IdlInstruction]
    accounts: Mapping[str, IdlAccountDef]
    events: Mapping[str, IdlEventDef]
    types: Mapping[str, IdlTypeDef]
    errors: Mapping[int, IdlError] = field(default_factory=dict)
    version: str | None = None

    @classmethod
    def from_path(cls, path: str | Path) -> Idl:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Idl:
        try:
            return _parse_idl(raw)
        except IdlParseError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise IdlParseError(f"malformed IDL: {exc!r}") from exc


# ---------------------------------------------------------------------------------------- loader


def parse_type(raw: Any) -> IdlType:
    """One IDL type expression, in either format."""
    if isinstance(raw, str):
        name = _LEGACY_TYPE_NAMES.get(raw, raw)
        if name not in PRIMITIVE_TYPES:
            raise IdlParseError(f"unsupported IDL type {raw!r}")
        return PrimitiveType(name)
    if isinstance(raw, Mapping) and len(raw) == 1:
        ((key, value),) = raw.items()
        if key == "option":
            return OptionType(parse_type(value))
        if key == "vec":
            return VecType(parse_type(value))
        if key == "array" and isinstance(value[1], int):
            return ArrayType(parse_type(value[0]), value[1])
        if key == "defined":
            if isinstance(value, str):
                return DefinedType(value)
            if not value.get("generics"):
                return DefinedType(value["name"])
    raise IdlParseError(f"unsupported IDL type {raw!r}")


def _parse_fields(raw: list[Any] | None) -> Fields | None:
    """Named (`[{name, type}]`) or tuple (`[type, ...]`) fields; None when there are none."""
    if not raw:
        return None
    if all(isinstance(item, Mapping) and {"name", "type"} <= item.keys() for item in raw):
        return NamedFields(tuple(IdlField(item["name"], parse_type(item["type"])) for item in raw))
    return TupleFields(tuple(parse_type(item) for item in raw))


def _named_fields(raw: list[Any] | None) -> NamedFields:
    fields = _parse_fields(raw) or NamedFields(())
    if not isinstance(fields, NamedFields):
        raise IdlParseError(f"expected named fields, got {raw!r}")
    return fields


def parse_type_def(raw: Mapping[str, Any]) -> IdlTypeDef:
    name: str = raw["name"]
    body = raw["type"]
    serialization = raw.get("serialization", "borsh")
    kind = body["kind"]
    if kind == "struct":
        return StructDef(name, _parse_fields(body.get("fields")) or NamedFields(()), serialization)
    if kind == "enum":
        variants = tuple(
            IdlEnumVariant(v["name"], _parse_fields(v.get("fields"))) for v in body["variants"]
        )
        return EnumDef(name, variants, serialization)
    if kind == "type":
        return AliasDef(name, parse_type(body["alias"]), serialization)
    raise IdlParseError(f"type {name!r}: unsupported kind {kind!r}")


def _flatten_accounts(raw: Iterable[Mapping[str, Any]]) -> Iterator[IdlAccountMeta]:
    """Instruction accounts in order; composite groups (`{"name", "accounts"}`) are inlined."""
    for item in raw:
        if "accounts" in item:
            yield from _flatten_accounts(item["accounts"])
            continue
        address = item.get("address")
        yield IdlAccountMeta(
            name=item["name"],
            writable=bool(item.get("writable", item.get("isMut", False))),
            signer=bool(item.get("signer", item.get("isSigner", False))),
            optional=bool(item.get("optional", item.get("isOptional", False))),
            address=Pubkey.from_string(address) if address else None,
            pda=item.get("pda"),
        )


def _discriminator(raw: Mapping[str, Any], namespace: str, preimage_name: str) -> bytes:
    explicit = raw.get("discriminator")
    return bytes(explicit) if explicit is not None else sighash(namespace, preimage_name)


def _add_type(types: dict[str, IdlTypeDef], type_def: IdlTypeDef) -> None:
    existing = types.setdefault(type_def.name, type_def)
    if existing != type_def:
        raise IdlParseError(f"type {type_def.name!r} is defined twice, differently")


def _referenced_names(idl_type: IdlType) -> Iterator[str]:
    match idl_type:
        case OptionType(inner) | VecType(inner) | ArrayType(inner, _):
            yield from _referenced_names(inner)
        case DefinedType(name):
            yield name
        case PrimitiveType():
            pass


def _field_types(fields: Fields | None) -> Iterator[IdlType]:
    if isinstance(fields, NamedFields):
        yield from (f.type for f in fields.fields)
    elif isinstance(fields, TupleFields):
        yield from fields.types


def _check_references(idl: Idl) -> None:
    """Fail at load time, not at first use, when a `defined` type or layout is missing."""
    roots: list[IdlType] = [DefinedType(n) for n in (*idl.accounts, *idl.events)]
    for ix in idl.instructions.values():
        roots.extend(_field_types(ix.args))
    for type_def in idl.types.values():
        match type_def:
            case StructDef(_, fields):
                roots.extend(_field_types(fields))
            case EnumDef(_, variants):
                for variant in variants:
                    roots.extend(_field_types(variant.fields))
            case AliasDef(_, target):
                roots.append(target)
    for root in roots:
        for name in _referenced_names(root):
            if name not in idl.types:
                raise IdlParseError(f"type {name!r} is referenced but not defined")


def _parse_idl(raw: Mapping[str, Any]) -> Idl:
    metadata: Mapping[str, Any] = raw.get("metadata") or {}
    types: dict[str, IdlTypeDef] = {}
    for raw_type in raw.get("types", []):
        _add_type(types, parse_type_def(raw_type))

    accounts: dict[str, IdlAccountDef] = {}
    for acc in raw.get("accounts", []):
        if "type" in acc:  # legacy: the layout is inline
            _add_type(types, parse_type_def(acc))
        accounts[acc["name"]] = IdlAccountDef(
            acc["name"], _discriminator(acc, "account", acc["name"])
        )

    events: dict[str, IdlEventDef] = {}
    for ev in raw.get("events", []):
        if "fields" in ev:  # legacy: the layout is inline (fields also carry `index`)
            _add_type(types, StructDef(ev["name"], _named_fields(ev["fields"])))
        events[ev["name"]] = IdlEventDef(ev["name"], _discriminator(ev, "event", ev["name"]))

    instructions = {
        ix["name"]: IdlInstruction(
            name=ix["name"],
            discriminator=_discriminator(ix, "global", snake_case(ix["name"])),
            args=_named_fields(ix.get("args")),
            accounts=tuple(_flatten_accounts(ix.get("accounts", []))),
        )
        for ix in raw["instructions"]
    }
    errors = {
        e["code"]: IdlError(e["code"], e["name"], e.get("msg")) for e in raw.get("errors", [])
    }
    address = raw.get("address") or metadata.get("address")
    idl = Idl(
        name=metadata.get("name") or raw["name"],
        program_id=Pubkey.from_string(address) if address else None,
        instructions=instructions,
        accounts=accounts,
        events=events,
        types=types,
        errors=errors,
        version=metadata.get("version") or raw.get("version"),
    )
    _check_references(idl)
    return idl


# ---------------------------------------------------------------------------------------- coder


class IdlCoder:
    """Encodes/decodes instructions, accounts and events of one program from its IDL."""

    def __init__(self, idl: Idl) -> None:
        self.idl = idl
        self.borsh = BorshCodec(idl.types)

    def _instruction(self, name: str) -> IdlInstruction:
        if name not in self.idl.instructions:
            raise UnknownNameError(f"unknown instruction {name!r}")
        return self.idl.instructions[name]

    def _account(self, name: str) -> IdlAccountDef:
        if name not in self.idl.accounts:
            raise UnknownNameError(f"unknown account {name!r}")
        return self.idl.accounts[name]

    def _event(self, name: str) -> IdlEventDef:
        if name not in self.idl.events:
            raise UnknownNameError(f"unknown event {name!r}")
        return self.idl.events[name]

    # -- instructions

    def instruction_discriminator(self, name: str) -> bytes:
        return self._instruction(name).discriminator

    def instruction_accounts(self, name: str) -> list[IdlAccountMeta]:
        return list(self._instruction(name).accounts)

    def encode_instruction(self, name: str, args: Mapping[str, Any]) -> bytes:
        ix = self._instruction(name)
        return ix.discriminator + self.borsh.encode(ix.args, args, name)

    def decode_instruction(self, data: bytes) -> tuple[str, dict[str, Any]]:
        ix = _longest_prefix_match(self.idl.instructions.values(), data)
        if ix is None:
            raise BorshDecodeError(f"no instruction has discriminator {bytes(data[:8]).hex()}")
        args = self.borsh.decode(ix.args, data[len(ix.discriminator) :], ix.name)
        return ix.name, cast(dict[str, Any], args)

    # -- accounts

    def account_discriminator(self, name: str) -> bytes:
        return self._account(name).discriminator

    def encode_account(self, name: str, value: Mapping[str, Any]) -> bytes:
        account = self._account(name)
        return account.discriminator + self.borsh.encode(DefinedType(name), value, name)

    def decode_account(
        self, name: str, data: bytes, *, allow_trailing: bool = False
    ) -> dict[str, Any]:
        """Decode account data, checking its discriminator.

        On chain an account is usually larger than its Borsh value: Anchor allocates the space of
        the largest value (every Option as Some) and never clears the tail when a value shrinks.
        Pass `allow_trailing=True` for data read from the chain, as Anchor's own deserializer
        ignores that tail; the strict default suits bytes this service produced.
        """
        account = self._account(name)
        size = len(account.discriminator)
        if bytes(data[:size]) != account.discriminator:
            raise BorshDecodeError(
                f"{name}: discriminator {bytes(data[:size]).hex()} != {account.discriminator.hex()}"
            )
        value = self.borsh.decode(
            DefinedType(name), data[size:], name, allow_trailing=allow_trailing
        )
        return cast(dict[str, Any], value)

    # -- events

    def event_discriminator(self, name: str) -> bytes:
        return self._event(name).discriminator

    def encode_event(self, name: str, value: Mapping[str, Any]) -> bytes:
        event = self._event(name)
        return event.discriminator + self.borsh.encode(DefinedType(name), value, name)

    def decode_event(self, data: bytes) -> tuple[str, dict[str, Any]] | None:
        """None when no event of this IDL has the discriminator; malformed body raises."""
        event = _longest_prefix_match(self.idl.events.values(), data)
        if event is None:
            return None
        body = data[len(event.discriminator) :]
        return event.name, cast(
            dict[str, Any], self.borsh.decode(DefinedType(event.name), body, event.name)
        )

    # -- errors

    def error_for_code(self, code: int) -> IdlError | None:
        return self.idl.errors.get(code)


_Coded = TypeVar("_Coded", IdlInstruction, IdlEventDef)


def _longest_prefix_match(candidates: Iterable[_Coded], data: bytes) -> _Coded | None:
    """The entry whose discriminator prefixes `data` (Anchor 0.31 allows custom lengths)."""
    matches = [c for c in candidates if c.discriminator and data.startswith(c.discriminator)]
    return max(matches, key=lambda c: len(c.discriminator), default=None)
