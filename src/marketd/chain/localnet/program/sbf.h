/* Minimal SBF v0 runtime interface: types, syscalls, input deserializer.
 *
 * Written for clang -target bpfel (upstream LLVM, no Solana toolchain). Constraints that
 * shape this file: no writable globals (the loader rejects .data/.bss), a 512-byte stack
 * limit per function in upstream clang (large scratch lives in the 32 KiB heap region),
 * no __int128 (see wide.h), and calls to memcpy/memset are routed to syscalls. */
#ifndef ZMART_SBF_H
#define ZMART_SBF_H

#include "types.h"

#define HEAP_START 0x300000000UL
#define MAX_PERMITTED_DATA_INCREASE 10240UL
#define NON_DUP_MARKER 0xff
#define MAX_ACCOUNTS 16

typedef struct { u8 x[32]; } SolPubkey;

/* C ABI structures the runtime reads in sol_invoke_signed_c. */
typedef struct {
    SolPubkey *pubkey;
    bool is_writable;
    bool is_signer;
} SolAccountMeta;

typedef struct {
    SolPubkey *program_id;
    SolAccountMeta *accounts;
    u64 account_len;
    u8 *data;
    u64 data_len;
} SolInstruction;

typedef struct {
    SolPubkey *key;
    u64 *lamports;
    u64 data_len;
    u8 *data;
    SolPubkey *owner;
    u64 rent_epoch;
    bool is_signer;
    bool is_writable;
    bool executable;
} SolAccountInfo;

typedef struct {
    const u8 *addr;
    u64 len;
} SolBytes; /* also SolSignerSeed */

typedef struct {
    const SolBytes *addr;
    u64 len;
} SolSignerSeeds;

typedef struct {
    u64 slot;
    i64 epoch_start_timestamp;
    u64 epoch;
    u64 leader_schedule_epoch;
    i64 unix_timestamp;
} SolClock;

typedef struct {
    u64 lamports_per_byte_year;
    u64 exemption_threshold_f64_bits;
    u8 burn_percent;
} SolRent;

/* syscalls (resolved by name through dynamic relocations, see sbf_link.py) */
extern void sol_log_(const char *message, u64 len);
extern void sol_log_data(const SolBytes *fields, u64 count);
extern u64 sol_get_clock_sysvar(void *clock);
extern u64 sol_get_rent_sysvar(void *rent);
extern void sol_memcpy_(void *dst, const void *src, u64 n);
extern void sol_memset_(void *dst, int c, u64 n);
extern void sol_memcmp_(const void *a, const void *b, u64 n, i32 *result);
extern u64 sol_create_program_address(const SolBytes *seeds, u64 n, const SolPubkey *program_id,
                                      SolPubkey *address);
extern u64 sol_try_find_program_address(const SolBytes *seeds, u64 n,
                                        const SolPubkey *program_id, SolPubkey *address,
                                        u8 *bump);
extern u64 sol_invoke_signed_c(const SolInstruction *ix, const SolAccountInfo *infos, u64 n_infos,
                               const SolSignerSeeds *seeds, u64 n_seeds);

/* clang may lower large struct copies to these; route them to the cheap syscalls. */
void *memcpy(void *dst, const void *src, u64 n) {
    sol_memcpy_(dst, src, n);
    return dst;
}
void *memset(void *dst, int c, u64 n) {
    sol_memset_(dst, c, n);
    return dst;
}

static bool bytes_eq(const void *a, const void *b, u64 n) {
    i32 result = 0;
    sol_memcmp_(a, b, n, &result);
    return result == 0;
}

static bool key_eq(const SolPubkey *a, const SolPubkey *b) { return bytes_eq(a, b, 32); }

static bool is_zero(const u8 *p, u64 n) {
    for (u64 i = 0; i < n; i++) {
        if (p[i] != 0) return false;
    }
    return true;
}

static u64 rd_u64(const u8 *p) {
    u64 v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static u32 rd_u32(const u8 *p) { return (u32)p[0] | (u32)p[1] << 8 | (u32)p[2] << 16 | (u32)p[3] << 24; }
static u16 rd_u16(const u8 *p) { return (u16)(p[0] | p[1] << 8); }

/* Parsed program input. */
typedef struct {
    u64 n_accounts;
    SolAccountInfo accounts[MAX_ACCOUNTS];
    const u8 *data;
    u64 data_len;
    SolPubkey *program_id;
} Input;

/* Deserialize the aligned (loader v2/v3) input layout. Returns false on too many accounts. */
static bool parse_input(u8 *in, Input *out) {
    u64 n = *(u64 *)in;
    in += 8;
    if (n > MAX_ACCOUNTS) return false;
    out->n_accounts = n;
    for (u64 i = 0; i < n; i++) {
        SolAccountInfo *ai = &out->accounts[i];
        u8 dup = *in;
        if (dup != NON_DUP_MARKER) {
            *ai = out->accounts[dup];
            in += 8;
            continue;
        }
        ai->is_signer = in[1] != 0;
        ai->is_writable = in[2] != 0;
        ai->executable = in[3] != 0;
        in += 8;
        ai->key = (SolPubkey *)in;
        in += 32;
        ai->owner = (SolPubkey *)in;
        in += 32;
        ai->lamports = (u64 *)in;
        in += 8;
        ai->data_len = *(u64 *)in;
        in += 8;
        ai->data = in;
        in += ai->data_len + MAX_PERMITTED_DATA_INCREASE;
        in = (u8 *)(((u64)in + 7) & ~7UL);
        ai->rent_epoch = *(u64 *)in;
        in += 8;
    }
    out->data_len = *(u64 *)in;
    in += 8;
    out->data = in;
    in += out->data_len;
    out->program_id = (SolPubkey *)in;
    return true;
}

#endif
