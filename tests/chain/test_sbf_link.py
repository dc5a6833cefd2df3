"""sbf_link: clang BPF objects become SBF v0 shared objects that LiteSVM loads and runs."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import pytest
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import Transaction
from solders.transaction_metadata import TransactionMetadata

from marketd.chain.localnet.build import compile_object, find_clang
from marketd.chain.localnet.sbf_link import (
    EM_BPF,
    ET_DYN,
    R_BPF_64_32,
    R_BPF_64_RELATIVE,
    LinkError,
    link,
)

HELLO = r"""
typedef unsigned long u64;
extern void sol_log_(const char *, u64);
extern void sol_log_64_(u64, u64, u64, u64, u64);
static const unsigned char WEIGHTS[8] = {3, 1, 4, 1, 5, 9, 2, 6};
__attribute__((noinline)) u64 weigh(const unsigned char *in, u64 n) {
    u64 total = 0;
    for (u64 i = 0; i < n && i < 8; i++) total += WEIGHTS[i] * in[i];
    return total;
}
static __attribute__((noinline)) u64 twice(u64 x) { return x * 2; }
u64 entrypoint(unsigned char *in) {
    u64 n_accounts = *(u64 *)in;
    u64 len = *(u64 *)(in + 8);
    sol_log_("hello from rodata", 17);
    sol_log_64_(n_accounts, len, weigh(in + 16, len), twice(len), 0);
    return 0;
}
"""

MINIMAL = "unsigned long entrypoint(unsigned char *in) { return in[0] == 0xff; }\n"


@dataclass
class _Elf:
    data: bytes

    def header(self) -> tuple[int, ...]:
        return struct.unpack_from("<HHIQQQIHHHHHH", self.data, 16)

    def sections(self) -> dict[str, tuple[int, ...]]:
        (*_, shoff, _flags, _eh, _ph, _phn, _sh, shnum, shstrndx) = self.header()
        raw = [struct.unpack_from("<IIQQQQIIQQ", self.data, shoff + 64 * i) for i in range(shnum)]
        names = raw[shstrndx]
        table = self.data[names[4] : names[4] + names[5]]
        return {table[h[0] : table.index(b"\0", h[0])].decode(): h for h in raw}

    def body(self, name: str) -> bytes:
        header = self.sections()[name]
        return self.data[header[4] : header[4] + header[5]]

    def dynamic_symbols(self) -> list[str]:
        strings = self.body(".dynstr")
        symbols = self.body(".dynsym")
        names = []
        for i in range(len(symbols) // 24):
            st_name = struct.unpack_from("<I", symbols, 24 * i)[0]
            names.append(strings[st_name : strings.index(b"\0", st_name)].decode())
        return names

    def relocations(self) -> list[tuple[int, int, int]]:
        body = self.body(".rel.dyn")
        out = []
        for i in range(len(body) // 16):
            offset, info = struct.unpack_from("<QQ", body, 16 * i)
            out.append((offset, info & 0xFFFFFFFF, info >> 32))
        return out


def compile_c(tmp_path: Path, source: str, *extra_flags: str) -> bytes:
    (tmp_path / "prog.c").write_text(source)
    return compile_object(find_clang(), tmp_path, "prog.c", tmp_path / "prog.o", extra_flags)


def run(program: bytes, data: bytes = b"") -> TransactionMetadata:
    svm = LiteSVM()
    program_id = Pubkey.new_unique()
    svm.add_program(program_id, program)
    payer = Keypair()
    svm.airdrop(payer.pubkey(), 10**9)
    message = Message([Instruction(program_id, data, [])], payer.pubkey())
    result = svm.send_transaction(Transaction([payer], message, svm.latest_blockhash()))
    assert isinstance(result, TransactionMetadata), result
    return result


# ------------------------------------------------------------------ linking real objects


def test_linked_program_runs_syscalls_rodata_and_calls(tmp_path: Path) -> None:
    program = link(compile_c(tmp_path, HELLO))
    result = run(program, bytes([1, 2, 3]))
    logs = result.logs()
    assert "Program log: hello from rodata" in logs
    # 0 accounts, 3 bytes of data, 3*1 + 1*2 + 4*3 = 17 = 0x11, twice(3) = 6
    assert "Program log: 0x0, 0x3, 0x11, 0x6, 0x0" in logs


def test_output_is_an_sbf_v0_shared_object(tmp_path: Path) -> None:
    elf = _Elf(link(compile_c(tmp_path, HELLO)))
    assert elf.data[:4] == b"\x7fELF"
    e_type, e_machine, _version, entry, *_ = elf.header()
    flags = struct.unpack_from("<I", elf.data, 48)[0]
    assert (e_type, e_machine, flags) == (ET_DYN, EM_BPF, 0)
    sections = elf.sections()
    assert list(sections)[1:] == [
        ".text",
        ".rodata",
        ".dynamic",
        ".dynsym",
        ".dynstr",
        ".rel.dyn",
        ".shstrtab",
    ]
    text = sections[".text"]
    assert text[3] == text[4], "the loader needs sh_addr == sh_offset"
    assert text[3] <= entry < text[3] + text[5]
    assert elf.dynamic_symbols() == ["", "sol_log_", "sol_log_64_"]
    relocs = elf.relocations()
    assert {r[1] for r in relocs} == {R_BPF_64_RELATIVE, R_BPF_64_32}
    for offset, r_type, r_sym in relocs:
        if r_type == R_BPF_64_32:
            assert r_sym in (1, 2)
            assert struct.unpack_from("<i", elf.data, offset + 4)[0] == -1
        else:
            low = struct.unpack_from("<I", elf.data, offset + 4)[0]
            rodata = sections[".rodata"]
            assert rodata[3] <= low < rodata[3] + rodata[5]


def test_linking_is_deterministic(tmp_path: Path) -> None:
    obj = compile_c(tmp_path, HELLO)
    assert link(obj) == link(bytes(obj))


def test_program_without_syscalls_or_rodata(tmp_path: Path) -> None:
    elf = _Elf(link(compile_c(tmp_path, MINIMAL)))
    assert ".rel.dyn" not in elf.sections()
    assert ".rodata" not in elf.sections()
    result = run(elf.data)
    assert result.compute_units_consumed() < 100


# ------------------------------------------------------------------ what cannot be linked


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "unsigned long counter;\nunsigned long entrypoint(void) { return counter++; }\n",
            "writable",
        ),
        (
            "unsigned long counter = 5;\nunsigned long entrypoint(void) { return counter++; }\n",
            "writable",
        ),
        (
            "extern void printf(const char *);\n"
            'unsigned long entrypoint(void) { printf("x"); return 0; }\n',
            "not a known syscall",
        ),
        ("unsigned long main(void) { return 0; }\n", "entrypoint"),
        (
            "extern void sol_log_(const char *, unsigned long);\n"
            'static const char *const T[] = {"ab", "cd"};\n'
            "unsigned long entrypoint(unsigned char *in) { sol_log_(T[*in & 1], 2); return 0; }\n",
            "pointer tables",
        ),
    ],
)
def test_unsupported_programs_are_rejected(tmp_path: Path, source: str, message: str) -> None:
    with pytest.raises(LinkError, match=message):
        link(compile_c(tmp_path, source))


def test_function_sections_are_rejected(tmp_path: Path) -> None:
    source = "unsigned long f(void) { return 1; }\nunsigned long entrypoint(void) { return 0; }\n"
    with pytest.raises(LinkError, match="exactly one"):
        link(compile_c(tmp_path, source, "-ffunction-sections"))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b"NOPE" + b[4:], "not an ELF"),
        (lambda b: b[:4] + b"\x01" + b[5:], "64-bit"),
        (lambda b: b[:16] + struct.pack("<H", ET_DYN) + b[18:], "relocatable"),
        (lambda b: b[:10], "not an ELF"),
    ],
)
def test_malformed_inputs_are_rejected(tmp_path: Path, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    obj = compile_c(tmp_path, HELLO)
    with pytest.raises(LinkError, match=message):
        link(mutate(obj))


# ------------------------------------------------------------------ relocation edge cases


def _text_relocations(obj: bytes) -> tuple[int, list[tuple[int, int, int]], int]:
    """(.rel.text file offset, its entries, .text file offset) of a relocatable object."""
    elf = _Elf(obj)
    sections = elf.sections()
    rel = sections[".rel.text"]
    body = obj[rel[4] : rel[4] + rel[5]]
    entries = []
    for i in range(len(body) // 16):
        offset, info = struct.unpack_from("<QQ", body, 16 * i)
        entries.append((offset, info & 0xFFFFFFFF, info >> 32))
    return rel[4], entries, sections[".text"][4]


def _patch_relocation(obj: bytes, index: int, r_type: int, r_sym: int) -> bytes:
    rel_off, entries, _ = _text_relocations(obj)
    out = bytearray(obj)
    struct.pack_into("<QQ", out, rel_off + 16 * index, entries[index][0], (r_sym << 32) | r_type)
    return bytes(out)


def _first(entries: list[tuple[int, int, int]], r_type: int) -> int:
    return next(i for i, e in enumerate(entries) if e[1] == r_type)


def test_unknown_relocation_type_is_rejected(tmp_path: Path) -> None:
    obj = compile_c(tmp_path, HELLO)
    _, entries, _ = _text_relocations(obj)
    with pytest.raises(LinkError, match="unsupported relocation type 3"):
        link(_patch_relocation(obj, 0, 3, entries[0][2]))


def test_relocations_must_sit_on_matching_instructions(tmp_path: Path) -> None:
    obj = compile_c(tmp_path, HELLO)
    _, entries, _ = _text_relocations(obj)
    data_index = _first(entries, 1)
    call_index = _first(entries, R_BPF_64_32)
    # a call relocation moved onto the lddw, and a data relocation moved onto the call
    with pytest.raises(LinkError, match="is not on a call"):
        link(_patch_relocation(obj, data_index, R_BPF_64_32, entries[call_index][2]))
    with pytest.raises(LinkError, match="is not on an lddw"):
        link(_patch_relocation(obj, call_index, 1, entries[data_index][2]))


def test_symbols_of_the_wrong_kind_are_rejected(tmp_path: Path) -> None:
    obj = compile_c(tmp_path, HELLO)
    _, entries, _ = _text_relocations(obj)
    data_index = _first(entries, 1)
    call_index = _first(entries, R_BPF_64_32)
    rodata_symbol = entries[data_index][2]
    syscall_symbol = entries[call_index][2]
    with pytest.raises(LinkError, match="call to non-code symbol"):
        link(_patch_relocation(obj, call_index, R_BPF_64_32, rodata_symbol))
    with pytest.raises(LinkError, match="data reference to unsupported symbol"):
        link(_patch_relocation(obj, data_index, 1, syscall_symbol))


def test_data_reference_to_code_is_relocated(tmp_path: Path) -> None:
    source = (
        "extern void sol_log_64_(unsigned long, unsigned long, unsigned long, unsigned long,"
        " unsigned long);\n"
        "static unsigned long f(void) { return 7; }\n"
        "unsigned long entrypoint(void) {\n"
        "    unsigned long (*volatile fp)(void) = f;\n"
        "    sol_log_64_((unsigned long)fp >> 32, 0, 0, 0, 0);\n"
        "    return 0;\n"
        "}\n"
    )
    elf = _Elf(link(compile_c(tmp_path, source)))
    text = elf.sections()[".text"]
    relative = [r for r in elf.relocations() if r[1] == R_BPF_64_RELATIVE]
    assert len(relative) == 1
    target = struct.unpack_from("<I", elf.data, relative[0][0] + 4)[0]
    assert text[3] <= target < text[3] + text[5]
    # the loader rebases the address into the read-only region at 0x1_0000_0000
    assert "Program log: 0x1, 0x0, 0x0, 0x0, 0x0" in run(elf.data).logs()
