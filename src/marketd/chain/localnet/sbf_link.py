"""Link a clang ``-target bpfel`` relocatable object into an SBF v0 shared object.

The Solana loader (sbpf, "lenient" v0 parser) does not care about program headers for
layout: it reads the section headers, maps ``.text`` and ``.rodata`` read-only at
``MM_RODATA_START + sh_addr`` (``sh_addr`` must equal ``sh_offset``), and applies the
dynamic relocations found through ``PT_DYNAMIC``:

* ``R_BPF_64_RELATIVE`` (8) on an ``lddw`` in ``.text``: the two immediates hold a
  virtual address of rodata; the loader adds ``MM_RODATA_START``.
* ``R_BPF_64_32`` (10) on a ``call -1`` naming an undefined dynamic symbol: the loader
  replaces the immediate with the murmur3 hash of the syscall name.

Calls between functions of the object are resolved here into pc-relative immediates,
which the loader turns into its own function keys. Writable data (``.data``, ``.bss``)
is rejected, as the runtime rejects it. The output is a pure function of the input
bytes, so rebuilding is reproducible.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

ELF_MAGIC = b"\x7fELF"
ELFCLASS64 = 2
ELFDATA2LSB = 1
ET_REL = 1
ET_DYN = 3
EM_BPF = 247

SHT_NULL = 0
SHT_PROGBITS = 1
SHT_SYMTAB = 2
SHT_STRTAB = 3
SHT_NOBITS = 8
SHT_REL = 9
SHT_DYNAMIC = 6
SHT_DYNSYM = 11

SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4

SHN_UNDEF = 0
PT_LOAD = 1
PT_DYNAMIC = 2
PF_X = 1
PF_W = 2
PF_R = 4

DT_NULL = 0
DT_STRTAB = 5
DT_SYMTAB = 6
DT_STRSZ = 10
DT_SYMENT = 11
DT_REL = 17
DT_RELSZ = 18
DT_RELENT = 19
DT_TEXTREL = 22

R_BPF_64_64 = 1
R_BPF_64_RELATIVE = 8
R_BPF_64_32 = 10

STB_GLOBAL = 1
STT_NOTYPE = 0

EHDR_SIZE = 64
PHDR_SIZE = 56
SHDR_SIZE = 64
SYM_SIZE = 24
REL_SIZE = 16
DYN_SIZE = 16
INSN_SIZE = 8
CALL_IMM_OPCODE = 0x85
LDDW_OPCODE = 0x18

#: Syscalls the runtime registers that a program may call by name.
KNOWN_SYSCALLS = frozenset(
    {
        "abort",
        "sol_panic_",
        "sol_log_",
        "sol_log_64_",
        "sol_log_pubkey",
        "sol_log_compute_units_",
        "sol_log_data",
        "sol_create_program_address",
        "sol_try_find_program_address",
        "sol_sha256",
        "sol_keccak256",
        "sol_memcpy_",
        "sol_memmove_",
        "sol_memset_",
        "sol_memcmp_",
        "sol_invoke_signed_c",
        "sol_invoke_signed_rust",
        "sol_get_clock_sysvar",
        "sol_get_rent_sysvar",
        "sol_get_epoch_schedule_sysvar",
        "sol_set_return_data",
        "sol_get_return_data",
        "sol_get_stack_height",
        "sol_remaining_compute_units",
    }
)


class LinkError(ValueError):
    """The object cannot become a loadable SBF v0 program."""


@dataclass(frozen=True)
class _Section:
    index: int
    name: str
    sh_type: int
    flags: int
    offset: int
    size: int
    link: int
    info: int
    align: int
    entsize: int


@dataclass(frozen=True)
class _Symbol:
    name: str
    value: int
    shndx: int
    info: int


@dataclass
class _ObjectFile:
    data: bytes
    sections: list[_Section]
    symbols: list[_Symbol] = field(default_factory=list)

    def body(self, section: _Section) -> bytes:
        return self.data[section.offset : section.offset + section.size]


def _align(value: int, alignment: int) -> int:
    return (value + alignment - 1) // alignment * alignment


def _cstr(table: bytes, offset: int) -> str:
    end = table.index(b"\x00", offset)
    return table[offset:end].decode()


def _parse_object(data: bytes) -> _ObjectFile:
    if len(data) < EHDR_SIZE or data[:4] != ELF_MAGIC:
        raise LinkError("not an ELF file")
    if data[4] != ELFCLASS64 or data[5] != ELFDATA2LSB:
        raise LinkError("expected a 64-bit little-endian ELF")
    e_type, e_machine = struct.unpack_from("<HH", data, 16)
    if e_type != ET_REL or e_machine != EM_BPF:
        raise LinkError("expected a BPF relocatable object (clang -target bpfel -c)")
    e_shoff = struct.unpack_from("<Q", data, 40)[0]
    e_shnum, e_shstrndx = struct.unpack_from("<HH", data, 60)
    raw = [struct.unpack_from("<IIQQQQIIQQ", data, e_shoff + i * SHDR_SIZE) for i in range(e_shnum)]
    names_hdr = raw[e_shstrndx]
    names = data[names_hdr[4] : names_hdr[4] + names_hdr[5]]
    sections = [
        _Section(
            index=i,
            name=_cstr(names, h[0]),
            sh_type=h[1],
            flags=h[2],
            offset=h[4],
            size=h[5],
            link=h[6],
            info=h[7],
            align=max(h[8], 1),
            entsize=h[9],
        )
        for i, h in enumerate(raw)
    ]
    obj = _ObjectFile(data=data, sections=sections)
    symtab = next(s for s in sections if s.sh_type == SHT_SYMTAB)
    strtab = obj.body(sections[symtab.link])
    body = obj.body(symtab)
    for i in range(len(body) // SYM_SIZE):
        st_name, st_info, _other, st_shndx, st_value, _size = struct.unpack_from(
            "<IBBHQQ", body, i * SYM_SIZE
        )
        obj.symbols.append(
            _Symbol(name=_cstr(strtab, st_name), value=st_value, shndx=st_shndx, info=st_info)
        )
    return obj


@dataclass(frozen=True)
class _Layout:
    """Where every piece of the output lives (file offset == virtual address)."""

    text_off: int
    rodata_off: dict[int, int]  # object section index -> output address
    rodata_start: int
    rodata_end: int


def _classify(obj: _ObjectFile) -> tuple[_Section, list[_Section]]:
    texts = [
        s for s in obj.sections if s.flags & SHF_EXECINSTR and s.flags & SHF_ALLOC and s.size > 0
    ]
    if len(texts) != 1 or texts[0].name != ".text":
        raise LinkError("expected exactly one non-empty .text section (no -ffunction-sections)")
    rodata: list[_Section] = []
    for section in obj.sections:
        if not section.flags & SHF_ALLOC or section.flags & SHF_EXECINSTR or section.size == 0:
            continue
        if section.flags & SHF_WRITE or section.sh_type == SHT_NOBITS:
            raise LinkError(f"writable section {section.name} is not supported by SBF")
        rodata.append(section)
    return texts[0], rodata


def _relocations_for(obj: _ObjectFile, target: _Section) -> list[tuple[int, int, int]]:
    out: list[tuple[int, int, int]] = []
    for section in obj.sections:
        if section.sh_type != SHT_REL or section.info != target.index:
            continue
        body = obj.body(section)
        for i in range(len(body) // REL_SIZE):
            r_offset, r_info = struct.unpack_from("<QQ", body, i * REL_SIZE)
            out.append((r_offset, r_info & 0xFFFFFFFF, r_info >> 32))
    return out


def _check_no_data_relocations(obj: _ObjectFile, rodata: list[_Section]) -> None:
    for section in rodata:
        if _relocations_for(obj, section):
            raise LinkError(f"relocations inside {section.name} (pointer tables) are not supported")


def link(object_bytes: bytes) -> bytes:
    """Return the bytes of a loadable SBF v0 ``.so`` built from one relocatable object."""
    obj = _parse_object(object_bytes)
    text, rodata = _classify(obj)
    _check_no_data_relocations(obj, rodata)

    phnum = 3
    text_off = _align(EHDR_SIZE + phnum * PHDR_SIZE, INSN_SIZE)
    cursor = text_off + text.size
    rodata_addr: dict[int, int] = {}
    rodata_start = _align(cursor, 8)
    cursor = rodata_start
    for section in rodata:
        cursor = _align(cursor, section.align)
        rodata_addr[section.index] = cursor
        cursor += section.size
    rodata_end = cursor
    layout = _Layout(text_off, rodata_addr, rodata_start, rodata_end)

    text_bytes = bytearray(obj.body(text))
    syscalls, dyn_relocs = _relocate_text(obj, text, text_bytes, layout)
    entry = _entrypoint(obj, text)
    return _emit(obj, bytes(text_bytes), rodata, layout, syscalls, dyn_relocs, entry)


def _entrypoint(obj: _ObjectFile, text: _Section) -> int:
    for symbol in obj.symbols:
        if symbol.name == "entrypoint" and symbol.shndx == text.index:
            return symbol.value
    raise LinkError("no `entrypoint` function in .text")


def _relocate_text(
    obj: _ObjectFile, text: _Section, code: bytearray, layout: _Layout
) -> tuple[list[str], list[tuple[int, int, str | None]]]:
    """Patch ``code`` in place; return syscall names and (offset, type, symbol) relocs."""
    syscalls: list[str] = []
    relocs: list[tuple[int, int, str | None]] = []
    for r_offset, r_type, r_sym in sorted(_relocations_for(obj, text)):
        symbol = obj.symbols[r_sym]
        if r_type == R_BPF_64_64:
            if code[r_offset] != LDDW_OPCODE:
                raise LinkError(f"R_BPF_64_64 at {r_offset:#x} is not on an lddw")
            addend = struct.unpack_from("<I", code, r_offset + 4)[0]
            if symbol.shndx == text.index:
                base = layout.text_off
            elif symbol.shndx in layout.rodata_off:
                base = layout.rodata_off[symbol.shndx]
            else:
                raise LinkError(f"data reference to unsupported symbol {symbol.name!r}")
            address = base + symbol.value + addend
            struct.pack_into("<I", code, r_offset + 4, address & 0xFFFFFFFF)
            struct.pack_into("<I", code, r_offset + 12, address >> 32)
            relocs.append((layout.text_off + r_offset, R_BPF_64_RELATIVE, None))
        elif r_type == R_BPF_64_32:
            if code[r_offset] != CALL_IMM_OPCODE:
                raise LinkError(f"R_BPF_64_32 at {r_offset:#x} is not on a call")
            if symbol.shndx == SHN_UNDEF:
                if symbol.name not in KNOWN_SYSCALLS:
                    raise LinkError(f"undefined symbol {symbol.name!r} is not a known syscall")
                struct.pack_into("<i", code, r_offset + 4, -1)
                if symbol.name not in syscalls:
                    syscalls.append(symbol.name)
                relocs.append((layout.text_off + r_offset, R_BPF_64_32, symbol.name))
            elif symbol.shndx == text.index:
                delta = (symbol.value - (r_offset + INSN_SIZE)) // INSN_SIZE
                struct.pack_into("<i", code, r_offset + 4, delta)
            else:
                raise LinkError(f"call to non-code symbol {symbol.name!r}")
        else:
            raise LinkError(f"unsupported relocation type {r_type} at {r_offset:#x}")
    return sorted(syscalls), relocs


def _emit(
    obj: _ObjectFile,
    code: bytes,
    rodata: list[_Section],
    layout: _Layout,
    syscalls: list[str],
    relocs: list[tuple[int, int, str | None]],
    entry: int,
) -> bytes:
    dynstr = bytearray(b"\x00")
    name_offset: dict[str, int] = {}
    for name in syscalls:
        name_offset[name] = len(dynstr)
        dynstr += name.encode() + b"\x00"
    sym_index = {name: i + 1 for i, name in enumerate(syscalls)}

    dynsym = bytearray(SYM_SIZE)
    for name in syscalls:
        dynsym += struct.pack(
            "<IBBHQQ", name_offset[name], (STB_GLOBAL << 4) | STT_NOTYPE, 0, SHN_UNDEF, 0, 0
        )
    rel_dyn = b"".join(
        struct.pack("<QQ", off, ((sym_index[name] if name else 0) << 32) | rtype)
        for off, rtype, name in relocs
    )

    dynamic_off = _align(layout.rodata_end, 8)
    n_dyn = 6 + (4 if rel_dyn else 0)
    dynsym_off = dynamic_off + n_dyn * DYN_SIZE
    dynstr_off = dynsym_off + len(dynsym)
    rel_off = _align(dynstr_off + len(dynstr), 8)
    entries = [
        (DT_SYMTAB, dynsym_off),
        (DT_SYMENT, SYM_SIZE),
        (DT_STRTAB, dynstr_off),
        (DT_STRSZ, len(dynstr)),
    ]
    if rel_dyn:
        entries += [
            (DT_REL, rel_off),
            (DT_RELSZ, len(rel_dyn)),
            (DT_RELENT, REL_SIZE),
            (DT_TEXTREL, 0),
        ]
    entries += [(DT_NULL, 0), (DT_NULL, 0)]
    dynamic = b"".join(struct.pack("<qQ", tag, val) for tag, val in entries)
    load_end = rel_off + len(rel_dyn)

    shstrtab = bytearray(b"\x00")

    def shname(name: str) -> int:
        offset = len(shstrtab)
        shstrtab.extend(name.encode() + b"\x00")
        return offset

    shstr_off = load_end
    sections: list[tuple[int, int, int, int, int, int, int, int, int, int]] = [
        (0, SHT_NULL, 0, 0, 0, 0, 0, 0, 0, 0)
    ]
    sections.append(
        (
            shname(".text"),
            SHT_PROGBITS,
            SHF_ALLOC | SHF_EXECINSTR,
            layout.text_off,
            layout.text_off,
            len(code),
            0,
            0,
            INSN_SIZE,
            0,
        )
    )
    if rodata:
        size = layout.rodata_end - layout.rodata_start
        start = layout.rodata_start
        sections.append(
            (shname(".rodata"), SHT_PROGBITS, SHF_ALLOC, start, start, size, 0, 0, 8, 0)
        )
    dynstr_index = len(sections) + 2
    dynsym_index = len(sections) + 1
    sections.append(
        (
            shname(".dynamic"),
            SHT_DYNAMIC,
            SHF_ALLOC | SHF_WRITE,
            dynamic_off,
            dynamic_off,
            len(dynamic),
            dynstr_index,
            0,
            8,
            DYN_SIZE,
        )
    )
    sections.append(
        (
            shname(".dynsym"),
            SHT_DYNSYM,
            SHF_ALLOC,
            dynsym_off,
            dynsym_off,
            len(dynsym),
            dynstr_index,
            1,
            8,
            SYM_SIZE,
        )
    )
    sections.append(
        (shname(".dynstr"), SHT_STRTAB, SHF_ALLOC, dynstr_off, dynstr_off, len(dynstr), 0, 0, 1, 0)
    )
    if rel_dyn:
        sections.append(
            (
                shname(".rel.dyn"),
                SHT_REL,
                SHF_ALLOC,
                rel_off,
                rel_off,
                len(rel_dyn),
                dynsym_index,
                0,
                8,
                REL_SIZE,
            )
        )
    shstrtab_index = len(sections)
    sections.append((shname(".shstrtab"), SHT_STRTAB, 0, 0, shstr_off, 0, 0, 0, 1, 0))
    # the name table is complete only now; patch its own size
    last = sections[-1]
    sections[-1] = (*last[:5], len(shstrtab), *last[6:])
    shoff = _align(shstr_off + len(shstrtab), 8)

    out = bytearray(shoff + len(sections) * SHDR_SIZE)
    ident = ELF_MAGIC + bytes([ELFCLASS64, ELFDATA2LSB, 1, 0]) + bytes(8)
    out[0:16] = ident
    struct.pack_into(
        "<HHIQQQIHHHHHH",
        out,
        16,
        ET_DYN,
        EM_BPF,
        1,
        layout.text_off + entry,
        EHDR_SIZE,
        shoff,
        0,
        EHDR_SIZE,
        PHDR_SIZE,
        3,
        SHDR_SIZE,
        len(sections),
        shstrtab_index,
    )
    phdrs = [
        (PT_LOAD, PF_R | PF_X, layout.text_off, len(code)),
        (PT_LOAD, PF_R, layout.rodata_start, load_end - layout.rodata_start),
        (PT_DYNAMIC, PF_R | PF_W, dynamic_off, len(dynamic)),
    ]
    for i, (p_type, flags, off, size) in enumerate(phdrs):
        struct.pack_into(
            "<IIQQQQQQ", out, EHDR_SIZE + i * PHDR_SIZE, p_type, flags, off, off, off, size, size, 8
        )
    out[layout.text_off : layout.text_off + len(code)] = code
    for section in rodata:
        start = layout.rodata_off[section.index]
        out[start : start + section.size] = obj.body(section)
    out[dynamic_off : dynamic_off + len(dynamic)] = dynamic
    out[dynsym_off : dynsym_off + len(dynsym)] = dynsym
    out[dynstr_off : dynstr_off + len(dynstr)] = dynstr
    out[rel_off : rel_off + len(rel_dyn)] = rel_dyn
    out[shstr_off : shstr_off + len(shstrtab)] = shstrtab
    for i, header in enumerate(sections):
        struct.pack_into("<IIQQQQIIQQ", out, shoff + i * SHDR_SIZE, *header)
    return bytes(out)
