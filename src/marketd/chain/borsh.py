"""Borsh encoding and decoding of values described by IDL types.

This module holds the IDL *type* model (what a field's type can be, what a defined struct/enum is)
and a codec over it; `marketd.chain.idl` builds these nodes from either IDL format.

Python value for each IDL type (decode returns exactly this; encode accepts it and the listed
alternatives):

=========================  ===============================================================
u8..u256, i8..i256         int (encode range-checks; bool is refused)
bool                       bool (decode refuses any byte other than 0/1)
f32, f64                   float (encode also accepts int)
string                     str (UTF-8, u32 length prefix)
bytes, vec<u8>             bytes (encode also accepts bytearray/memoryview/list[int])
[u8; N]                    bytes (encode also accepts list[int]; length must be N)
pubkey                     solders Pubkey (encode also accepts a base58 str)
option<T>                  None or the value of T (u8 tag 0/1)
vec<T>, [T; N]             list (vec has a u32 length prefix, array length must be N)
defined struct             dict field name -> value; tuple struct -> list
defined enum               unit variant -> its name (str); variant with fields ->
                           {"kind": name, "fields": dict (named) or list (tuple)}
                           (encode also accepts {"kind": name} for a unit variant)
type alias                 the value of the aliased type
=========================  ===============================================================

Field names are kept exactly as the IDL spells them. Structs are encoded strictly: a missing or
an unexpected field is a `BorshEncodeError`, so a typo never silently drops a value.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from solders.pubkey import Pubkey

from marketd.chain.errors import BorshDecodeError, BorshEncodeError, UnknownNameError

# ---------------------------------------------------------------------------------------- types

INT_TYPES: Mapping[str, tuple[int, bool]] = {
    f"{sign}{bits}": (bits // 8, sign == "i") for sign in "ui" for bits in (8, 16, 32, 64, 128, 256)
}
FLOAT_TYPES: Mapping[str, str] = {"f32": "<f", "f64": "<d"}
PRIMITIVE_TYPES = frozenset({*INT_TYPES, *FLOAT_TYPES, "bool", "string", "bytes", "pubkey"})


@dataclass(frozen=True, slots=True)
class PrimitiveType:
    name: str  # one of PRIMITIVE_TYPES


@dataclass(frozen=True, slots=True)
class OptionType:
    inner: IdlType


@dataclass(frozen=True, slots=True)
class VecType:
    inner: IdlType


@dataclass(frozen=True, slots=True)
class ArrayType:
    inner: IdlType
    length: int


@dataclass(frozen=True, slots=True)
class DefinedType:
    name: str


IdlType = PrimitiveType | OptionType | VecType | ArrayType | DefinedType
U8 = PrimitiveType("u8")


@dataclass(frozen=True, slots=True)
class IdlField:
    name: str
    type: IdlType


@dataclass(frozen=True, slots=True)
class NamedFields:
    fields: tuple[IdlField, ...]


@dataclass(frozen=True, slots=True)
class TupleFields:
    types: tuple[IdlType, ...]


Fields = NamedFields | TupleFields


@dataclass(frozen=True, slots=True)
class IdlEnumVariant:
    name: str
    fields: Fields | None  # None: unit variant


@dataclass(frozen=True, slots=True)
class StructDef:
    name: str
    fields: Fields
    serialization: str = "borsh"


@dataclass(frozen=True, slots=True)
class EnumDef:
    name: str
    variants: tuple[IdlEnumVariant, ...]
    serialization: str = "borsh"


@dataclass(frozen=True, slots=True)
class AliasDef:
    name: str
    target: IdlType
    serialization: str = "borsh"


IdlTypeDef = StructDef | EnumDef | AliasDef

# ---------------------------------------------------------------------------------------- codec


class BorshReader:
    """A cursor over a byte buffer that refuses to read past its end."""

    def __init__(self, data: bytes) -> None:
        self._data = bytes(data)
        self.offset = 0

    def take(self, count: int, path: str) -> bytes:
        end = self.offset + count
        if end > len(self._data):
            raise BorshDecodeError(
                f"{path}: needs {count} bytes at offset {self.offset}, "
                f"only {len(self._data) - self.offset} left"
            )
        chunk = self._data[self.offset : end]
        self.offset = end
        return chunk

    @property
    def remaining(self) -> int:
        return len(self._data) - self.offset


def _as_byte_string(value: Any, path: str) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, list | tuple):
        try:
            return bytes(value)
        except (TypeError, ValueError) as exc:
            raise BorshEncodeError(f"{path}: not a list of byte values (0..255)") from exc
    raise BorshEncodeError(f"{path}: expected bytes, got {type(value).__name__}")


def _as_sequence(value: Any, path: str) -> Sequence[Any]:
    if isinstance(value, list | tuple):
        return value
    raise BorshEncodeError(f"{path}: expected a list, got {type(value).__name__}")


class BorshCodec:
    """Encodes and decodes values of IDL types, resolving defined types by name in `types`."""

    def __init__(self, types: Mapping[str, IdlTypeDef]) -> None:
        self.types = types

    def type_def(self, name: str) -> IdlTypeDef:
        try:
            return self.types[name]
        except KeyError:
            raise UnknownNameError(f"unknown type {name!r}") from None

    # -- whole buffers

    def encode(self, idl_type: IdlType | Fields, value: Any, path: str) -> bytes:
        out = bytearray()
        if isinstance(idl_type, NamedFields | TupleFields):
            self.write_fields(idl_type, value, out, path)
        else:
            self.write(idl_type, value, out, path)
        return bytes(out)

    def decode(
        self, idl_type: IdlType | Fields, data: bytes, path: str, *, allow_trailing: bool = False
    ) -> Any:
        """Decode `data`, which must hold exactly one value unless `allow_trailing`."""
        reader = BorshReader(data)
        if isinstance(idl_type, NamedFields | TupleFields):
            value: Any = self.read_fields(idl_type, reader, path)
        else:
            value = self.read(idl_type, reader, path)
        if reader.remaining and not allow_trailing:
            raise BorshDecodeError(
                f"{path}: {reader.remaining} trailing bytes after offset {reader.offset}"
            )
        return value

    # -- decoding

    def read(self, idl_type: IdlType, reader: BorshReader, path: str) -> Any:
        match idl_type:
            case PrimitiveType(name):
                return self._read_primitive(name, reader, path)
            case OptionType(inner):
                tag = reader.take(1, path)[0]
                if tag > 1:
                    raise BorshDecodeError(f"{path}: invalid option tag {tag}")
                return self.read(inner, reader, path) if tag else None
            case VecType(inner):
                count = int.from_bytes(reader.take(4, path), "little")
                return self._read_items(inner, count, reader, path)
            case ArrayType(inner, length):
                return self._read_items(inner, length, reader, path)
            case DefinedType(name):
                return self._read_defined(self.type_def(name), reader, path)

    def _read_primitive(self, name: str, reader: BorshReader, path: str) -> Any:
        if name in INT_TYPES:
            size, signed = INT_TYPES[name]
            return int.from_bytes(reader.take(size, path), "little", signed=signed)
        if name in FLOAT_TYPES:
            fmt = FLOAT_TYPES[name]
            return struct.unpack(fmt, reader.take(struct.calcsize(fmt), path))[0]
        if name == "bool":
            byte = reader.take(1, path)[0]
            if byte > 1:
                raise BorshDecodeError(f"{path}: invalid bool byte {byte}")
            return byte == 1
        if name == "pubkey":
            return Pubkey.from_bytes(reader.take(32, path))
        raw = reader.take(int.from_bytes(reader.take(4, path), "little"), path)
        if name == "bytes":
            return raw
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BorshDecodeError(f"{path}: string is not valid UTF-8") from exc

    def _read_items(self, inner: IdlType, count: int, reader: BorshReader, path: str) -> Any:
        if inner == U8:
            return reader.take(count, path)
        return [self.read(inner, reader, f"{path}[{i}]") for i in range(count)]

    def _read_defined(self, type_def: IdlTypeDef, reader: BorshReader, path: str) -> Any:
        if type_def.serialization != "borsh":
            raise BorshDecodeError(f"{path}: {type_def.serialization} layout is not supported")
        match type_def:
            case StructDef(_, fields):
                return self.read_fields(fields, reader, path)
            case EnumDef(_, variants):
                index = reader.take(1, path)[0]
                if index >= len(variants):
                    raise BorshDecodeError(f"{path}: invalid {type_def.name} variant {index}")
                variant = variants[index]
                if variant.fields is None:
                    return variant.name
                values = self.read_fields(variant.fields, reader, f"{path}.{variant.name}")
                return {"kind": variant.name, "fields": values}
            case AliasDef(_, target):
                return self.read(target, reader, path)

    def read_fields(
        self, fields: Fields, reader: BorshReader, path: str
    ) -> dict[str, Any] | list[Any]:
        if isinstance(fields, NamedFields):
            return {f.name: self.read(f.type, reader, f"{path}.{f.name}") for f in fields.fields}
        return [self.read(t, reader, f"{path}[{i}]") for i, t in enumerate(fields.types)]

    # -- encoding

    def write(self, idl_type: IdlType, value: Any, out: bytearray, path: str) -> None:
        match idl_type:
            case PrimitiveType(name):
                self._write_primitive(name, value, out, path)
            case OptionType(inner):
                out.append(0 if value is None else 1)
                if value is not None:
                    self.write(inner, value, out, path)
            case VecType(inner):
                items = self._items(inner, value, path)
                out += len(items).to_bytes(4, "little")
                self._write_items(inner, items, out, path)
            case ArrayType(inner, length):
                items = self._items(inner, value, path)
                if len(items) != length:
                    raise BorshEncodeError(f"{path}: expected {length} items, got {len(items)}")
                self._write_items(inner, items, out, path)
            case DefinedType(name):
                self._write_defined(self.type_def(name), value, out, path)

    def _write_primitive(self, name: str, value: Any, out: bytearray, path: str) -> None:
        if name in INT_TYPES:
            size, signed = INT_TYPES[name]
            if not isinstance(value, int) or isinstance(value, bool):
                raise BorshEncodeError(f"{path}: expected int for {name}, got {value!r}")
            try:
                out += value.to_bytes(size, "little", signed=signed)
            except OverflowError:
                raise BorshEncodeError(f"{path}: {value} is out of range for {name}") from None
        elif name in FLOAT_TYPES:
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise BorshEncodeError(f"{path}: expected float for {name}, got {value!r}")
            try:
                out += struct.pack(FLOAT_TYPES[name], value)
            except OverflowError:
                raise BorshEncodeError(f"{path}: {value} is out of range for {name}") from None
        elif name == "bool":
            if not isinstance(value, bool):
                raise BorshEncodeError(f"{path}: expected bool, got {value!r}")
            out.append(int(value))
        elif name == "pubkey":
            out += bytes(self._as_pubkey(value, path))
        else:
            if name == "string" and not isinstance(value, str):
                raise BorshEncodeError(f"{path}: expected str, got {type(value).__name__}")
            raw = value.encode("utf-8") if name == "string" else _as_byte_string(value, path)
            out += len(raw).to_bytes(4, "little") + raw

    @staticmethod
    def _as_pubkey(value: Any, path: str) -> Pubkey:
        if isinstance(value, Pubkey):
            return value
        if isinstance(value, str):
            try:
                return Pubkey.from_string(value)
            except ValueError as exc:
                raise BorshEncodeError(f"{path}: {value!r} is not a base58 pubkey") from exc
        raise BorshEncodeError(f"{path}: expected Pubkey or base58 str, got {value!r}")

    @staticmethod
    def _items(inner: IdlType, value: Any, path: str) -> Sequence[Any]:
        return _as_byte_string(value, path) if inner == U8 else _as_sequence(value, path)

    def _write_items(self, inner: IdlType, items: Sequence[Any], out: bytearray, path: str) -> None:
        if isinstance(items, bytes):
            out += items
            return
        for i, item in enumerate(items):
            self.write(inner, item, out, f"{path}[{i}]")

    def _write_defined(self, type_def: IdlTypeDef, value: Any, out: bytearray, path: str) -> None:
        if type_def.serialization != "borsh":
            raise BorshEncodeError(f"{path}: {type_def.serialization} layout is not supported")
        match type_def:
            case StructDef(_, fields):
                self.write_fields(fields, value, out, path)
            case EnumDef(_, variants):
                self._write_variant(type_def.name, variants, value, out, path)
            case AliasDef(_, target):
                self.write(target, value, out, path)

    def _write_variant(
        self,
        enum_name: str,
        variants: tuple[IdlEnumVariant, ...],
        value: Any,
        out: bytearray,
        path: str,
    ) -> None:
        if isinstance(value, str):
            kind, fields = value, None
        elif isinstance(value, Mapping) and "kind" in value:
            kind, fields = value["kind"], value.get("fields")
        else:
            raise BorshEncodeError(f"{path}: expected {enum_name} variant name or {{'kind': ...}}")
        index = next((i for i, v in enumerate(variants) if v.name == kind), None)
        if index is None:
            raise BorshEncodeError(f"{path}: {kind!r} is not a variant of {enum_name}")
        out.append(index)
        variant = variants[index]
        if variant.fields is not None:
            self.write_fields(variant.fields, fields, out, f"{path}.{kind}")
        elif fields:
            raise BorshEncodeError(f"{path}: unit variant {kind} takes no fields")

    def write_fields(self, fields: Fields, value: Any, out: bytearray, path: str) -> None:
        if isinstance(fields, TupleFields):
            items = _as_sequence(value, path)
            if len(items) != len(fields.types):
                raise BorshEncodeError(
                    f"{path}: expected {len(fields.types)} items, got {len(items)}"
                )
            for i, (idl_type, item) in enumerate(zip(fields.types, items, strict=True)):
                self.write(idl_type, item, out, f"{path}[{i}]")
            return
        if not isinstance(value, Mapping):
            raise BorshEncodeError(f"{path}: expected a mapping, got {type(value).__name__}")
        expected = [f.name for f in fields.fields]
        missing = [name for name in expected if name not in value]
        unexpected = [str(key) for key in value if key not in expected]
        if missing or unexpected:
            raise BorshEncodeError(f"{path}: missing fields {missing}, unexpected {unexpected}")
        for field in fields.fields:
            self.write(field.type, value[field.name], out, f"{path}.{field.name}")
