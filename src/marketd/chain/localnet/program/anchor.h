/* The Anchor 0.32 framework passes around each zmart_core handler (PROGRAM.md §2), for the twin.
 *
 * Pass 1 decodes every non-init account in IDL order (3012/3007/3001/3002/3003, 3010 for
 * signers, 3008/3009 for the system program, 3005 when accounts run out); pass 2 creates
 * `init` / `init_if_needed` PDAs through the same system-program CPIs Anchor issues, so a
 * second initialize, a duplicate market id or a repeat vote fails inside the system program
 * with Custom(0) exactly as on a cluster; pass 3 helpers check seeds (2006), `mut` (2000) and
 * the handlers' custom constraints in the order each instruction file lists them. */
#ifndef ZMART_ANCHOR_H
#define ZMART_ANCHOR_H

#include "borsh.h"
#include "lmsr.h"
#include "sbf.h"
#include "state.h"
#include "wide.h"

/* Anchor framework error numbers */
#define A_INSTRUCTION_FALLBACK_NOT_FOUND 101
#define A_INSTRUCTION_DID_NOT_DESERIALIZE 102
#define A_CONSTRAINT_MUT 2000
#define A_CONSTRAINT_HAS_ONE 2001
#define A_CONSTRAINT_OWNER 2004
#define A_CONSTRAINT_RENT_EXEMPT 2005
#define A_CONSTRAINT_SEEDS 2006
#define A_CONSTRAINT_SPACE 2019
#define A_DISCRIMINATOR_NOT_FOUND 3001
#define A_DISCRIMINATOR_MISMATCH 3002
#define A_DID_NOT_DESERIALIZE 3003
#define A_NOT_ENOUGH_KEYS 3005
#define A_OWNED_BY_WRONG_PROGRAM 3007
#define A_INVALID_PROGRAM_ID 3008
#define A_INVALID_PROGRAM_EXECUTABLE 3009
#define A_NOT_SIGNER 3010
#define A_NOT_INITIALIZED 3012

/* `space` as zmart_core allocates it (InitSpace + 8), larger than the Borsh encodings */
#define SPACE_GLOBAL_CONFIG 206
#define SPACE_MARKET 488
#define SPACE_USER_POSITION 182
#define SPACE_VOTE_RECORD 83
#define GLOBAL_CONFIG_BORSH 198

#define SYSTEM_IX_CREATE_ACCOUNT 0
#define SYSTEM_IX_ASSIGN 1
#define SYSTEM_IX_TRANSFER 2
#define SYSTEM_IX_ALLOCATE 8

/* What pass 1 does with one account slot */
enum AccountKind {
    K_UNCHECKED = 0, /* UncheckedAccount / AccountInfo, and init accounts (pass 2) */
    K_SIGNER,
    K_SYSTEM_PROGRAM,
    K_CONFIG,
    K_MARKET,
    K_POSITION,
    K_VOTE_RECORD,
};

/* All scratch state lives in the heap region: the BPF stack is too small for it. */
typedef struct {
    Input in;
    SolClock clock;
    Market market;
    u8 event[320];
    u8 cpi_data[64];
    u8 log[96];
    SolAccountMeta metas[2];
    SolAccountInfo infos[3];
    SolBytes seeds[5];
    SolSignerSeeds signer;
    SolPubkey pda;
    u8 bump[1];
    SolAccountInfo *system;
} Ctx;

static Ctx *ctx(void) { return (Ctx *)HEAP_START; }

static SolAccountInfo *acct(Ctx *c, u64 i) { return &c->in.accounts[i]; }

static i64 now(Ctx *c) {
    sol_get_clock_sysvar(&c->clock);
    return c->clock.unix_timestamp;
}

static bool is_system_owned(const SolAccountInfo *ai) { return is_zero(ai->owner->x, 32); }

static bool owned_by_program(Ctx *c, const SolAccountInfo *ai) {
    return key_eq(ai->owner, c->in.program_id);
}

/* "Program log: AnchorError ... Error Number: <n>" (text logs are not contractual) */
static u64 fail_with(Ctx *c, u64 code) {
    const char prefix[] = "AnchorError occurred. Error Number: ";
    u64 n = sizeof(prefix) - 1;
    sol_memcpy_(c->log, prefix, n);
    u8 digits[20];
    u64 count = 0, v = code;
    do {
        digits[count++] = (u8)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (count > 0) c->log[n++] = digits[--count];
    sol_log_((const char *)c->log, n);
    return code;
}

/* ---- rent: Rent::minimum_balance = ((128 + len)·lamports_per_byte_year) as f64 · threshold ---- */

static u64 rent_minimum(u64 data_len) {
    SolRent rent;
    sol_get_rent_sysvar(&rent);
    u64 base = (128 + data_len) * rent.lamports_per_byte_year;
    u64 bits = rent.exemption_threshold_f64_bits;
    if ((bits & ~(1UL << 63)) == 0) return 0;
    i64 exponent = (i64)((bits >> 52) & 0x7ff) - 1023;
    u64 mantissa = (bits & ((1UL << 52) - 1)) | (1UL << 52);
    U128 product;
    mul_64x64(base, mantissa, &product);
    if (exponent >= 52) return ~0UL;
    u64 shift = (u64)(52 - exponent);
    if (shift >= 128) return 0;
    shr_u128(&product, shift);
    return product.hi != 0 ? ~0UL : product.lo;
}

/* ---- pass 1 ---- */

static u64 check_typed(Ctx *c, SolAccountInfo *ai, u64 discriminator) {
    if (is_system_owned(ai) && *ai->lamports == 0) return A_NOT_INITIALIZED;
    if (!owned_by_program(c, ai)) return A_OWNED_BY_WRONG_PROGRAM;
    if (ai->data_len < 8) return A_DISCRIMINATOR_NOT_FOUND;
    if (rd_u64(ai->data) != discriminator) return A_DISCRIMINATOR_MISMATCH;
    return 0;
}

static u64 decode_config(Ctx *c, SolAccountInfo *ai) {
    TRY(check_typed(c, ai, DISC_GLOBAL_CONFIG));
    if (ai->data_len < GLOBAL_CONFIG_BORSH || ai->data[GC_IS_PAUSED] > 1)
        return A_DID_NOT_DESERIALIZE;
    return 0;
}

static u64 decode_market(Ctx *c, SolAccountInfo *ai) {
    TRY(check_typed(c, ai, DISC_MARKET_ACCOUNT));
    return market_decode(ai->data, ai->data_len, &c->market) ? 0 : A_DID_NOT_DESERIALIZE;
}

static u64 decode_position(Ctx *c, SolAccountInfo *ai) {
    TRY(check_typed(c, ai, DISC_USER_POSITION));
    if (ai->data_len < SPACE_USER_POSITION || ai->data[UP_HAS_CLAIMED] > 1)
        return A_DID_NOT_DESERIALIZE;
    return 0;
}

static u64 decode_vote_record(Ctx *c, SolAccountInfo *ai) {
    TRY(check_typed(c, ai, DISC_VOTE_RECORD));
    if (ai->data_len < SPACE_VOTE_RECORD || ai->data[VR_VOTE_TYPE] > 1 || ai->data[VR_VOTE] > 1)
        return A_DID_NOT_DESERIALIZE;
    return 0;
}

/* Pass 1 over the IDL account list `kinds` (one byte per slot, enum AccountKind). */
static u64 load_accounts(Ctx *c, const u8 *kinds, u64 count) {
    for (u64 i = 0; i < count; i++) {
        if (i >= c->in.n_accounts) return A_NOT_ENOUGH_KEYS;
        SolAccountInfo *ai = acct(c, i);
        switch (kinds[i]) {
        case K_SIGNER:
            if (!ai->is_signer) return A_NOT_SIGNER;
            break;
        case K_SYSTEM_PROGRAM:
            if (!is_zero(ai->key->x, 32)) return A_INVALID_PROGRAM_ID;
            if (!ai->executable) return A_INVALID_PROGRAM_EXECUTABLE;
            c->system = ai;
            break;
        case K_CONFIG:
            TRY(decode_config(c, ai));
            break;
        case K_MARKET:
            TRY(decode_market(c, ai));
            break;
        case K_POSITION:
            TRY(decode_position(c, ai));
            break;
        case K_VOTE_RECORD:
            TRY(decode_vote_record(c, ai));
            break;
        default:
            break;
        }
    }
    return 0;
}

/* ---- pass 3 ---- */

static u64 need_mut(SolAccountInfo *ai) { return ai->is_writable ? 0 : A_CONSTRAINT_MUT; }

/* seeds = c->seeds[0..n) plus the stored bump must re-derive the account's address */
static u64 seeds_with_bump(Ctx *c, u64 n, u8 bump, const SolPubkey *expected) {
    c->bump[0] = bump;
    c->seeds[n] = (SolBytes){c->bump, 1};
    if (sol_create_program_address(c->seeds, n + 1, c->in.program_id, &c->pda) != 0)
        return A_CONSTRAINT_SEEDS;
    return key_eq(&c->pda, expected) ? 0 : A_CONSTRAINT_SEEDS;
}

static u64 config_seeds(Ctx *c, SolAccountInfo *config) {
    c->seeds[0] = (SolBytes){(const u8 *)"global-config", 13};
    return seeds_with_bump(c, 1, config->data[GC_BUMP], config->key);
}

static u64 market_seeds(Ctx *c, SolAccountInfo *market) {
    c->seeds[0] = (SolBytes){(const u8 *)"market", 6};
    c->seeds[1] = (SolBytes){c->market.market_id, 32};
    return seeds_with_bump(c, 2, c->market.bump, market->key);
}

static u64 position_seeds(Ctx *c, SolAccountInfo *position, SolAccountInfo *market,
                          SolAccountInfo *user) {
    c->seeds[0] = (SolBytes){(const u8 *)"position", 8};
    c->seeds[1] = (SolBytes){market->key->x, 32};
    c->seeds[2] = (SolBytes){user->key->x, 32};
    return seeds_with_bump(c, 3, position->data[UP_BUMP], position->key);
}

/* Market seeds, `mut`, then the state the instruction requires (error `wrong_state`). */
static u64 market_constraints(Ctx *c, SolAccountInfo *market, u8 state, u64 wrong_state) {
    TRY(market_seeds(c, market));
    TRY(need_mut(market));
    return c->market.state == state ? 0 : wrong_state;
}

/* ---- CPIs to the system program ---- */

/* Transfer `from` → `to` signed by `from` (a transaction signer, or — without seeds — a PDA,
 * which the runtime rejects with PrivilegeEscalation: the sell_shares defect). */
static u64 system_transfer(Ctx *c, SolAccountInfo *from, SolAccountInfo *to, u64 lamports) {
    Writer w = {c->cpi_data};
    w_u32(&w, SYSTEM_IX_TRANSFER);
    w_u64(&w, lamports);
    c->metas[0] = (SolAccountMeta){from->key, true, true};
    c->metas[1] = (SolAccountMeta){to->key, true, false};
    SolInstruction ix = {c->system->key, c->metas, 2, c->cpi_data, 12};
    c->infos[0] = *from;
    c->infos[1] = *to;
    c->infos[2] = *c->system;
    return sol_invoke_signed_c(&ix, c->infos, 3, NULL, 0);
}

/* One-account system instruction on the PDA being initialised, signed with its seeds. */
static u64 system_pda_ix(Ctx *c, SolAccountInfo *target, u64 data_len) {
    c->metas[0] = (SolAccountMeta){target->key, true, true};
    SolInstruction ix = {c->system->key, c->metas, 1, c->cpi_data, data_len};
    c->infos[0] = *target;
    c->infos[1] = *c->system;
    return sol_invoke_signed_c(&ix, c->infos, 2, &c->signer, 1);
}

/* ---- pass 2: Anchor's `init` of a PDA whose seeds are c->seeds[0..n) ---- */

static u64 init_pda(Ctx *c, SolAccountInfo *payer, SolAccountInfo *target, u64 n_seeds,
                    u64 space) {
    if (sol_try_find_program_address(c->seeds, n_seeds, c->in.program_id, &c->pda, c->bump) != 0 ||
        !key_eq(&c->pda, target->key))
        return A_CONSTRAINT_SEEDS;
    c->seeds[n_seeds] = (SolBytes){c->bump, 1};
    c->signer = (SolSignerSeeds){c->seeds, n_seeds + 1};
    u64 rent = rent_minimum(space);
    u64 current = *target->lamports;
    if (current == 0) {
        Writer w = {c->cpi_data};
        w_u32(&w, SYSTEM_IX_CREATE_ACCOUNT);
        w_u64(&w, rent);
        w_u64(&w, space);
        w_bytes(&w, c->in.program_id, 32);
        c->metas[0] = (SolAccountMeta){payer->key, true, true};
        c->metas[1] = (SolAccountMeta){target->key, true, true};
        SolInstruction ix = {c->system->key, c->metas, 2, c->cpi_data, 52};
        c->infos[0] = *payer;
        c->infos[1] = *target;
        c->infos[2] = *c->system;
        TRY(sol_invoke_signed_c(&ix, c->infos, 3, &c->signer, 1));
    } else {
        u64 required = (rent > 1 ? rent : 1);
        if (required > current) TRY(system_transfer(c, payer, target, required - current));
        Writer w = {c->cpi_data};
        w_u32(&w, SYSTEM_IX_ALLOCATE);
        w_u64(&w, space);
        TRY(system_pda_ix(c, target, 12));
        target->data_len = space; /* keep our view in step: the next CPI passes it back */
        Writer a = {c->cpi_data};
        w_u32(&a, SYSTEM_IX_ASSIGN);
        w_bytes(&a, c->in.program_id, 32);
        TRY(system_pda_ix(c, target, 36));
    }
    target->data_len = space; /* the runtime grew the serialized account */
    return 0;
}

/* ---- lamports leaving the program-owned market: direct balance edits ---- */

/* zmart_core's rent-checked transfer: `short` when the market holds less than `amount`,
 * WouldBreakRentExemption when what stays would fall below the market's rent minimum. */
static u64 pay_from_market(SolAccountInfo *market, SolAccountInfo *to, u64 amount, u64 short_err) {
    if (*market->lamports < amount) return short_err;
    if (*market->lamports - amount < rent_minimum(market->data_len))
        return E_WOULD_BREAK_RENT_EXEMPTION;
    *market->lamports -= amount;
    *to->lamports += amount;
    return 0;
}

/* ---- events: Anchor's emit! = sol_log_data([discriminator || borsh]) ---- */

static Writer event_begin(Ctx *c, u64 discriminator) {
    Writer w = {c->event};
    w_u64(&w, discriminator);
    return w;
}

static void event_emit(Ctx *c, Writer *w) {
    SolBytes field = {c->event, (u64)(w->p - c->event)};
    sol_log_data(&field, 1);
}

/* ---- argument decoding (trailing bytes are ignored, as Borsh's deserialize does) ---- */

static Reader args_reader(Ctx *c) {
    Reader r = {c->in.data + 8, c->in.data + c->in.data_len, true};
    return r;
}

static u16 config_u16(const SolAccountInfo *config, u64 offset) {
    return rd_u16(config->data + offset);
}

static bool config_paused(const SolAccountInfo *config) {
    return config->data[GC_IS_PAUSED] != 0;
}

#endif
