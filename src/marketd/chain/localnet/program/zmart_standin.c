/* zmart_standin: a stand-in for the zmart_core Anchor program, for local chains (LiteSVM).
 *
 * Same instruction discriminators, account order, account layouts, events and error
 * codes as zmart_core's IDL for the instructions marketd sends or indexes. PDA accounts
 * are created the way Anchor's `init` does: a CPI to the system program's CreateAccount,
 * signed with the PDA seeds (sol_invoke_signed_c). Stand-in rules that differ from or
 * specify the real program are marked "stand-in:" below. */
#include "borsh.h"
#include "errors.h"
#include "pricing.h"
#include "sbf.h"
#include "state.h"
#include "wide.h"

/* sha256("global:<name>")[:8] as little-endian u64 */
#define IX_INITIALIZE_GLOBAL_CONFIG 0x3716d1e1837ad871UL
#define IX_CREATE_MARKET 0xfefbbcc8eb61e267UL
#define IX_SUBMIT_PROPOSAL_VOTE 0xf00eb91de63bbbb1UL
#define IX_SUBMIT_DISPUTE_VOTE 0xe648eb98423ddf31UL
#define IX_AGGREGATE_PROPOSAL_VOTES 0x48cab0b915129c1aUL
#define IX_APPROVE_PROPOSAL 0x9307726255666c88UL
#define IX_ACTIVATE_MARKET 0x5948637174c51a0aUL
#define IX_BUY_SHARES 0x6c6a25089a8aef28UL
#define IX_SELL_SHARES 0xc4c79ee710a9a4b8UL
#define IX_RESOLVE_MARKET 0xef174a2ead50179bUL
#define IX_INITIATE_DISPUTE 0x25ab3d2c17a0f280UL
#define IX_AGGREGATE_DISPUTE_VOTES 0x19708dd4131e0e4aUL
#define IX_FINALIZE_MARKET 0xf701d9d51c26e110UL
#define IX_CANCEL_MARKET 0x0b9647ded25479cdUL

/* sha256("event:<Name>")[:8] as little-endian u64 */
#define EV_GLOBAL_CONFIG_INITIALIZED 0x719d574d9eacdd05UL
#define EV_MARKET_CREATED 0x3a0654e2e782b858UL
#define EV_PROPOSAL_VOTE_SUBMITTED 0x3806a2d9028f439cUL
#define EV_DISPUTE_VOTE_SUBMITTED 0x72c10a4ec3d50227UL
#define EV_PROPOSAL_AGGREGATED 0xd58bf33c7647a6eaUL
#define EV_DISPUTE_AGGREGATED 0x2669244ba0d2113aUL
#define EV_PROPOSAL_APPROVED 0x31582b9de49b3146UL
#define EV_MARKET_ACTIVATED 0x0b6b84bb304e49c4UL
#define EV_SHARES_BOUGHT 0x41e2eafd0a4562f0UL
#define EV_SHARES_SOLD 0xfb719ee43505e723UL
#define EV_MARKET_RESOLVED 0xcac76a8f5fe64359UL
#define EV_DISPUTE_INITIATED 0x99b704c6fc5d6d96UL
#define EV_MARKET_FINALIZED 0xb3ea4c25cc423e53UL
#define EV_MARKET_CANCELLED 0xaa51b413a821a38bUL

/* GlobalConfig defaults written by initialize_global_config */
#define DEFAULT_PROTOCOL_FEE_BPS 300
#define DEFAULT_RESOLVER_REWARD_BPS 200
#define DEFAULT_LP_FEE_BPS 500
#define DEFAULT_PROPOSAL_THRESHOLD 7000
#define DEFAULT_DISPUTE_THRESHOLD 6000
#define DEFAULT_MIN_RESOLUTION_DELAY 86400
#define DEFAULT_DISPUTE_PERIOD 259200
#define DEFAULT_MIN_RESOLVER_REPUTATION 8000

#define BPS_DENOMINATOR 10000UL
#define MIN_TRADE_LAMPORTS 10000UL
#define ACCOUNT_STORAGE_OVERHEAD 128UL

#define SYSTEM_IX_CREATE_ACCOUNT 0
#define SYSTEM_IX_TRANSFER 2

/* All scratch state lives in the heap region: the BPF stack is too small for it. */
typedef struct {
    Input in;
    SolClock clock;
    Market market;
    u8 event[320];
    u8 cpi_data[64];
    SolAccountMeta metas[2];
    SolAccountInfo infos[3];
    SolBytes seeds[5];
    SolSignerSeeds signer;
    SolPubkey pda;
    u8 bump[1];
    u64 n_seeds;            /* seeds of the last find_pda_matches, without the bump */
    SolAccountInfo *system; /* the system program account, once checked */
} Ctx;

static Ctx *ctx(void) { return (Ctx *)HEAP_START; }

static SolAccountInfo *acct(Ctx *c, u64 i) { return &c->in.accounts[i]; }

static i64 now(Ctx *c) {
    sol_get_clock_sysvar(&c->clock);
    return c->clock.unix_timestamp;
}

static const u8 *args(Ctx *c) { return c->in.data + 8; }

static bool has_args(Ctx *c, u64 len) { return c->in.data_len >= 8 + len; }

/* The system program's id is 32 zero bytes; remember its account for CPIs. */
static bool use_system_program(Ctx *c, SolAccountInfo *ai) {
    c->system = ai;
    return is_zero(ai->key->x, 32);
}

static bool owned_by_program(Ctx *c, SolAccountInfo *ai) {
    return key_eq(ai->owner, c->in.program_id);
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

/* ---- sysvars ---- */

/* Rent-exempt minimum: (128 + len) * lamports_per_byte_year * threshold (an f64, decoded
 * by hand since there is no FPU; rounded up). */
static u64 rent_minimum(u64 data_len) {
    SolRent rent;
    sol_get_rent_sysvar(&rent);
    u64 base = (ACCOUNT_STORAGE_OVERHEAD + data_len) * rent.lamports_per_byte_year;
    u64 bits = rent.exemption_threshold_f64_bits;
    i64 exponent = (i64)((bits >> 52) & 0x7ff) - 1023;
    if ((bits & ~(1UL << 63)) == 0) return 0;
    if (exponent > 52) return ~0UL;
    u64 mantissa = (bits & ((1UL << 52) - 1)) | (1UL << 52);
    U128 product;
    mul_64x64(base, mantissa, &product);
    u64 shift = (u64)(52 - exponent);
    if (shift >= 128) return 1;
    U128 truncated = product;
    shr_u128(&truncated, shift);
    if (truncated.hi != 0) return ~0UL;
    return truncated.lo + 1; /* +1 covers the dropped fraction */
}

/* ---- CPI to the system program ---- */

static void set_info(SolAccountInfo *dst, const SolAccountInfo *src) { *dst = *src; }

/* CreateAccount(lamports, space, owner = this program) signed by the PDA seeds. */
static void create_pda_account(Ctx *c, SolAccountInfo *payer, SolAccountInfo *target,
                               u64 space, u64 extra_lamports) {
    SolAccountInfo *system = c->system;
    u64 n_seeds = c->n_seeds;
    Writer w = {c->cpi_data};
    w_u32(&w, SYSTEM_IX_CREATE_ACCOUNT);
    w_u64(&w, rent_minimum(space) + extra_lamports);
    w_u64(&w, space);
    w_bytes(&w, c->in.program_id, 32);
    c->metas[0] = (SolAccountMeta){payer->key, true, true};
    c->metas[1] = (SolAccountMeta){target->key, true, true};
    SolInstruction ix = {system->key, c->metas, 2, c->cpi_data, (u64)(w.p - c->cpi_data)};
    set_info(&c->infos[0], payer);
    set_info(&c->infos[1], target);
    set_info(&c->infos[2], system);
    c->seeds[n_seeds] = (SolBytes){c->bump, 1};
    c->signer = (SolSignerSeeds){c->seeds, n_seeds + 1};
    sol_invoke_signed_c(&ix, c->infos, 3, &c->signer, 1);
    target->data_len = space; /* the runtime grew the serialized account */
}

static void system_transfer(Ctx *c, SolAccountInfo *from, SolAccountInfo *to, u64 lamports) {
    SolAccountInfo *system = c->system;
    Writer w = {c->cpi_data};
    w_u32(&w, SYSTEM_IX_TRANSFER);
    w_u64(&w, lamports);
    c->metas[0] = (SolAccountMeta){from->key, true, true};
    c->metas[1] = (SolAccountMeta){to->key, true, false};
    SolInstruction ix = {system->key, c->metas, 2, c->cpi_data, (u64)(w.p - c->cpi_data)};
    set_info(&c->infos[0], from);
    set_info(&c->infos[1], to);
    set_info(&c->infos[2], system);
    sol_invoke_signed_c(&ix, c->infos, 3, NULL, 0);
}

/* Canonical PDA of c->seeds[0..n) into c->pda / c->bump; true if it equals `expected`. */
static bool find_pda_matches(Ctx *c, u64 n_seeds, const SolPubkey *expected) {
    c->n_seeds = n_seeds;
    if (sol_try_find_program_address(c->seeds, n_seeds, c->in.program_id, &c->pda, c->bump) != 0)
        return false;
    return key_eq(&c->pda, expected);
}

/* ---- account loading ---- */

static u8 *load_config(Ctx *c, SolAccountInfo *ai) {
    if (!owned_by_program(c, ai) || ai->data_len < GLOBAL_CONFIG_SIZE ||
        rd_u64(ai->data) != DISC_GLOBAL_CONFIG)
        return NULL;
    return ai->data;
}

static bool load_market(Ctx *c, SolAccountInfo *ai) {
    if (!owned_by_program(c, ai) || ai->data_len < MARKET_ACCOUNT_SIZE ||
        rd_u64(ai->data) != DISC_MARKET_ACCOUNT)
        return false;
    return market_decode(ai->data, ai->data_len, &c->market);
}

static void store_market(Ctx *c, SolAccountInfo *ai) { market_encode(&c->market, ai->data); }

static bool signer_is(SolAccountInfo *ai, const u8 *expected_key) {
    return ai->is_signer && bytes_eq(ai->key->x, expected_key, 32);
}

static bool paused(const u8 *config) { return config[GC_IS_PAUSED] != 0; }

static bool meets_threshold(u64 yes, u64 total, u64 threshold_bps) {
    return total > 0 && yes * BPS_DENOMINATOR >= threshold_bps * total;
}

/* ---- instructions ---- */

/* accounts: admin (w, s), global_config (w), protocol_fee_wallet, system_program */
static u64 ix_initialize_global_config(Ctx *c) {
    if (c->in.n_accounts < 4) return FAIL(AccountNotEnoughKeys);
    if (!has_args(c, 32)) return FAIL(InstructionDidNotDeserialize);
    SolAccountInfo *admin = acct(c, 0), *config = acct(c, 1), *fee_wallet = acct(c, 2);
    SolAccountInfo *system = acct(c, 3);
    if (!admin->is_signer) return FAIL(Unauthorized);
    if (!use_system_program(c, system)) return FAIL(InvalidInput);
    c->seeds[0] = (SolBytes){(const u8 *)"global-config", 13};
    if (!find_pda_matches(c, 1, config->key)) return FAIL(InvalidGlobalConfig);
    if (config->data_len != 0 || owned_by_program(c, config)) return FAIL(AlreadyInitialized);
    create_pda_account(c, admin, config, GLOBAL_CONFIG_SIZE, 0);

    Writer w = {config->data};
    w_u64(&w, DISC_GLOBAL_CONFIG);
    w_bytes(&w, admin->key, 32);
    w_bytes(&w, args(c), 32);
    w_bytes(&w, fee_wallet->key, 32);
    w_u16(&w, DEFAULT_PROTOCOL_FEE_BPS);
    w_u16(&w, DEFAULT_RESOLVER_REWARD_BPS);
    w_u16(&w, DEFAULT_LP_FEE_BPS);
    w_u16(&w, DEFAULT_PROPOSAL_THRESHOLD);
    w_u16(&w, DEFAULT_DISPUTE_THRESHOLD);
    w_i64(&w, DEFAULT_MIN_RESOLUTION_DELAY);
    w_i64(&w, DEFAULT_DISPUTE_PERIOD);
    w_u16(&w, DEFAULT_MIN_RESOLVER_REPUTATION);
    w_u8(&w, 0);
    sol_memset_(w.p, 0, 64);
    w.p += 64;
    w_u8(&w, c->bump[0]);

    Writer e = event_begin(c, EV_GLOBAL_CONFIG_INITIALIZED);
    w_bytes(&e, admin->key, 32);
    w_bytes(&e, args(c), 32);
    w_u16(&e, DEFAULT_PROTOCOL_FEE_BPS);
    w_i64(&e, now(c));
    event_emit(c, &e);
    return 0;
}

/* accounts: creator (w, s), market (w), global_config, system_program
 * args: market_id [u8;32], b_parameter u64, initial_liquidity u64, ipfs_question_hash [u8;46]
 * stand-in: the creator funds the market with initial_liquidity on top of its rent; the
 * question hash is not stored (MarketAccount has no field for it). */
static u64 ix_create_market(Ctx *c) {
    if (c->in.n_accounts < 4) return FAIL(AccountNotEnoughKeys);
    if (!has_args(c, 32 + 8 + 8 + 46)) return FAIL(InstructionDidNotDeserialize);
    SolAccountInfo *creator = acct(c, 0), *market = acct(c, 1), *config_ai = acct(c, 2);
    SolAccountInfo *system = acct(c, 3);
    const u8 *a = args(c);
    u64 b_parameter = rd_u64(a + 32), initial_liquidity = rd_u64(a + 40);
    if (!creator->is_signer) return FAIL(Unauthorized);
    u8 *config = load_config(c, config_ai);
    if (config == NULL) return FAIL(InvalidGlobalConfig);
    if (paused(config)) return FAIL(ProtocolPaused);
    if (!use_system_program(c, system)) return FAIL(InvalidInput);
    if (b_parameter == 0) return FAIL(InvalidBParameter);
    c->seeds[0] = (SolBytes){(const u8 *)"market", 6};
    c->seeds[1] = (SolBytes){a, 32};
    if (!find_pda_matches(c, 2, market->key)) return FAIL(InvalidMarketId);
    create_pda_account(c, creator, market, MARKET_ACCOUNT_SIZE, initial_liquidity);

    Market *m = &c->market;
    sol_memset_(m, 0, sizeof(Market));
    sol_memcpy_(m->market_id, a, 32);
    sol_memcpy_(m->creator, creator->key, 32);
    m->state = STATE_PROPOSED;
    m->b_parameter = b_parameter;
    m->initial_liquidity = initial_liquidity;
    m->current_liquidity = initial_liquidity;
    m->created_at = now(c);
    m->bump = c->bump[0];
    store_market(c, market);

    Writer e = event_begin(c, EV_MARKET_CREATED);
    w_bytes(&e, m->market_id, 32);
    w_bytes(&e, m->creator, 32);
    w_u64(&e, b_parameter);
    w_u8(&e, STATE_PROPOSED);
    w_i64(&e, m->created_at);
    event_emit(c, &e);
    return 0;
}

/* accounts: market, vote_record (w), user (w, s), system_program;  args: vote bool
 * VoteRecord PDA: ["vote", market, user, [vote_type]] (VoteType: Proposal 0, Dispute 1) */
static u64 ix_submit_vote(Ctx *c, u8 vote_type) {
    if (c->in.n_accounts < 4) return FAIL(AccountNotEnoughKeys);
    if (!has_args(c, 1) || args(c)[0] > 1) return FAIL(InstructionDidNotDeserialize);
    SolAccountInfo *market = acct(c, 0), *record = acct(c, 1), *user = acct(c, 2);
    SolAccountInfo *system = acct(c, 3);
    bool vote = args(c)[0] == 1;
    if (!user->is_signer) return FAIL(Unauthorized);
    if (!use_system_program(c, system)) return FAIL(InvalidInput);
    if (!load_market(c, market)) return FAIL(InvalidMarketId);
    u8 wanted = vote_type == VOTE_TYPE_PROPOSAL ? STATE_PROPOSED : STATE_DISPUTED;
    if (c->market.state != wanted) return FAIL(InvalidStateForVoting);
    if (record->data_len != 0 || owned_by_program(c, record)) return FAIL(AlreadyVoted);
    c->seeds[0] = (SolBytes){(const u8 *)"vote", 4};
    c->seeds[1] = (SolBytes){market->key->x, 32};
    c->seeds[2] = (SolBytes){user->key->x, 32};
    c->seeds[3] = (SolBytes){&vote_type, 1};
    if (!find_pda_matches(c, 4, record->key)) return FAIL(InvalidInput);
    create_pda_account(c, user, record, VOTE_RECORD_SIZE, 0);

    i64 t = now(c);
    Writer w = {record->data};
    w_u64(&w, DISC_VOTE_RECORD);
    w_bytes(&w, market->key, 32);
    w_bytes(&w, user->key, 32);
    w_u8(&w, vote_type);
    w_u8(&w, vote);
    w_i64(&w, t);
    w_u8(&w, c->bump[0]);

    Writer e = event_begin(c, vote_type == VOTE_TYPE_PROPOSAL ? EV_PROPOSAL_VOTE_SUBMITTED
                                                               : EV_DISPUTE_VOTE_SUBMITTED);
    w_bytes(&e, c->market.market_id, 32);
    w_bytes(&e, user->key, 32);
    w_u8(&e, vote);
    w_i64(&e, t);
    event_emit(c, &e);
    return 0;
}

/* accounts: market (w), global_config, backend_authority (s);  args: u32, u32
 * stand-in: records the counts and reports the decision; it never changes the state.
 * approve_proposal / finalize_market act on it. */
static u64 ix_aggregate_votes(Ctx *c, u8 vote_type) {
    if (c->in.n_accounts < 3) return FAIL(AccountNotEnoughKeys);
    if (!has_args(c, 8)) return FAIL(InstructionDidNotDeserialize);
    SolAccountInfo *market = acct(c, 0), *config_ai = acct(c, 1), *backend = acct(c, 2);
    u32 yes = rd_u32(args(c)), no = rd_u32(args(c) + 4);
    u8 *config = load_config(c, config_ai);
    if (config == NULL) return FAIL(InvalidGlobalConfig);
    if (!signer_is(backend, config + GC_BACKEND_AUTHORITY)) return FAIL(Unauthorized);
    if (!load_market(c, market)) return FAIL(InvalidMarketId);
    Market *m = &c->market;
    bool proposal = vote_type == VOTE_TYPE_PROPOSAL;
    if (m->state != (proposal ? STATE_PROPOSED : STATE_DISPUTED))
        return FAIL(InvalidStateForVoting);
    u32 total = yes + no;
    if (total < yes) return FAIL(OverflowError);
    u16 threshold = rd_u16(config + (proposal ? GC_PROPOSAL_APPROVAL_THRESHOLD
                                              : GC_DISPUTE_SUCCESS_THRESHOLD));
    bool passed = meets_threshold(yes, total, threshold);
    u8 percentage = total == 0 ? 0 : (u8)((u64)yes * 100 / total);
    if (proposal) {
        m->proposal_likes = yes;
        m->proposal_dislikes = no;
        m->proposal_total_votes = total;
    } else {
        m->dispute_agree = yes;
        m->dispute_disagree = no;
        m->dispute_total_votes = total;
    }
    store_market(c, market);

    Writer e =
        event_begin(c, proposal ? EV_PROPOSAL_AGGREGATED : EV_DISPUTE_AGGREGATED);
    w_bytes(&e, m->market_id, 32);
    w_u32(&e, yes);
    w_u32(&e, no);
    w_u8(&e, percentage);
    w_u8(&e, passed);
    w_i64(&e, now(c));
    event_emit(c, &e);
    return 0;
}

/* accounts: admin (w, s), market (w), global_config
 * stand-in: approves only if the last aggregate_proposal_votes met the threshold. */
static u64 ix_approve_proposal(Ctx *c) {
    if (c->in.n_accounts < 3) return FAIL(AccountNotEnoughKeys);
    SolAccountInfo *admin = acct(c, 0), *market = acct(c, 1), *config_ai = acct(c, 2);
    u8 *config = load_config(c, config_ai);
    if (config == NULL) return FAIL(InvalidGlobalConfig);
    if (!signer_is(admin, config + GC_ADMIN)) return FAIL(Unauthorized);
    if (!load_market(c, market)) return FAIL(InvalidMarketId);
    Market *m = &c->market;
    if (m->state != STATE_PROPOSED) return FAIL(InvalidStateTransition);
    if (m->proposal_total_votes == 0) return FAIL(NoVotesRecorded);
    if (!meets_threshold(m->proposal_likes, m->proposal_total_votes,
                         rd_u16(config + GC_PROPOSAL_APPROVAL_THRESHOLD)))
        return FAIL(InsufficientVotes);
    m->state = STATE_APPROVED;
    m->approved_at = now(c);
    store_market(c, market);

    Writer e = event_begin(c, EV_PROPOSAL_APPROVED);
    w_bytes(&e, m->market_id, 32);
    w_bytes(&e, admin->key, 32);
    w_i64(&e, m->approved_at);
    event_emit(c, &e);
    return 0;
}

/* accounts: authority (w, s) = admin or creator, market (w), global_config */
static u64 ix_activate_market(Ctx *c) {
    if (c->in.n_accounts < 3) return FAIL(AccountNotEnoughKeys);
    SolAccountInfo *authority = acct(c, 0), *market = acct(c, 1), *config_ai = acct(c, 2);
    u8 *config = load_config(c, config_ai);
    if (config == NULL) return FAIL(InvalidGlobalConfig);
    if (!load_market(c, market)) return FAIL(InvalidMarketId);
    Market *m = &c->market;
    if (!signer_is(authority, config + GC_ADMIN) && !signer_is(authority, m->creator))
        return FAIL(Unauthorized);
    if (m->state != STATE_APPROVED) return FAIL(InvalidStateTransition);
    m->state = STATE_ACTIVE;
    m->activated_at = now(c);
    store_market(c, market);

    Writer e = event_begin(c, EV_MARKET_ACTIVATED);
    w_bytes(&e, m->market_id, 32);
    w_bytes(&e, m->creator, 32);
    w_u64(&e, m->initial_liquidity);
    w_i64(&e, m->activated_at);
    event_emit(c, &e);
    return 0;
}

/* Shared checks of buy_shares / sell_shares.
 * accounts: global_config, market (w), position (w), user (w, s), protocol_fee_wallet (w),
 * system_program */
static u64 trade_preamble(Ctx *c, u8 **config_out) {
    if (c->in.n_accounts < 6) return FAIL(AccountNotEnoughKeys);
    u8 *config = load_config(c, acct(c, 0));
    if (config == NULL) return FAIL(InvalidGlobalConfig);
    if (paused(config)) return FAIL(ProtocolPaused);
    if (!acct(c, 3)->is_signer) return FAIL(Unauthorized);
    if (!load_market(c, acct(c, 1))) return FAIL(InvalidMarketId);
    if (c->market.state != STATE_ACTIVE) return FAIL(InvalidMarketState);
    if (!bytes_eq(acct(c, 4)->key, config + GC_PROTOCOL_FEE_WALLET, 32))
        return FAIL(Unauthorized);
    if (!use_system_program(c, acct(c, 5))) return FAIL(InvalidInput);
    *config_out = config;
    return 0;
}

static bool position_belongs(Ctx *c, SolAccountInfo *position) {
    return owned_by_program(c, position) && position->data_len >= USER_POSITION_SIZE &&
           rd_u64(position->data) == DISC_USER_POSITION &&
           bytes_eq(position->data + UP_MARKET, acct(c, 1)->key, 32) &&
           bytes_eq(position->data + UP_USER, acct(c, 3)->key, 32);
}

/* Fees in basis points of `amount`; amount * bps / 10000 always fits (bps <= 65535). */
static void fees_of(const u8 *config, u64 amount, u64 *protocol, u64 *resolver, u64 *lp) {
    *protocol = *resolver = *lp = 0;
    mul_div(amount, rd_u16(config + GC_PROTOCOL_FEE_BPS), BPS_DENOMINATOR, false, protocol);
    mul_div(amount, rd_u16(config + GC_RESOLVER_REWARD_BPS), BPS_DENOMINATOR, false, resolver);
    mul_div(amount, rd_u16(config + GC_LIQUIDITY_PROVIDER_FEE_BPS), BPS_DENOMINATOR, false, lp);
}

static void add_u64_at(u8 *p, u64 delta) {
    Writer w = {p};
    w_u64(&w, rd_u64(p) + delta);
}

/* args: outcome bool, target_cost u64 (pre-fee budget; fees are charged on top) */
static u64 ix_buy_shares(Ctx *c) {
    if (!has_args(c, 9) || args(c)[0] > 1) return FAIL(InstructionDidNotDeserialize);
    u8 *config;
    u64 err = trade_preamble(c, &config);
    if (err != 0) return err;
    SolAccountInfo *market = acct(c, 1), *position = acct(c, 2), *user = acct(c, 3);
    SolAccountInfo *fee_wallet = acct(c, 4);
    Market *m = &c->market;
    bool yes = args(c)[0] == 1;
    u64 budget = rd_u64(args(c) + 1);
    if (budget == 0) return FAIL(ZeroAmount);
    if (budget < MIN_TRADE_LAMPORTS) return FAIL(TradeTooSmall);

    u64 *bought = yes ? &m->shares_yes : &m->shares_no;
    u64 *other = yes ? &m->shares_no : &m->shares_yes;
    u64 y, a, shares, cost;
    if (!add_ok(*bought, m->b_parameter, &y) || !add_ok(*other, m->b_parameter, &a) ||
        !quote_buy(y, a, budget, &shares, &cost))
        return FAIL(OverflowError);
    if (shares == 0) return FAIL(TradeTooSmall);
    u64 protocol_fee, resolver_fee, lp_fee;
    fees_of(config, cost, &protocol_fee, &resolver_fee, &lp_fee);

    bool fresh = position->data_len == 0 && !owned_by_program(c, position);
    if (fresh) {
        c->seeds[0] = (SolBytes){(const u8 *)"position", 8};
        c->seeds[1] = (SolBytes){market->key->x, 32};
        c->seeds[2] = (SolBytes){user->key->x, 32};
        if (!find_pda_matches(c, 3, position->key)) return FAIL(InvalidInput);
        create_pda_account(c, user, position, USER_POSITION_SIZE, 0);
        Writer w = {position->data};
        w_u64(&w, DISC_USER_POSITION);
        w_bytes(&w, market->key, 32);
        w_bytes(&w, user->key, 32);
        sol_memset_(w.p, 0, USER_POSITION_SIZE - 72);
        position->data[UP_BUMP] = c->bump[0];
    } else if (!position_belongs(c, position)) {
        return FAIL(Unauthorized);
    }
    system_transfer(c, user, market, cost + resolver_fee + lp_fee);
    if (protocol_fee > 0) system_transfer(c, user, fee_wallet, protocol_fee);

    i64 t = now(c);
    *bought += shares;
    m->current_liquidity += cost;
    m->total_volume += cost;
    m->accumulated_protocol_fees += protocol_fee;
    m->accumulated_resolver_fees += resolver_fee;
    m->accumulated_lp_fees += lp_fee;
    store_market(c, market);
    add_u64_at(position->data + (yes ? UP_SHARES_YES : UP_SHARES_NO), shares);
    add_u64_at(position->data + UP_TOTAL_INVESTED, cost + protocol_fee + resolver_fee + lp_fee);
    Writer pw = {position->data + UP_TRADES_COUNT};
    w_u32(&pw, rd_u32(position->data + UP_TRADES_COUNT) + 1);
    w_i64(&pw, t);

    u64 new_price = 0;
    price_yes(m->shares_yes, m->shares_no, m->b_parameter, &new_price);
    Writer e = event_begin(c, EV_SHARES_BOUGHT);
    w_bytes(&e, m->market_id, 32);
    w_bytes(&e, user->key, 32);
    w_u8(&e, yes);
    w_u64(&e, shares);
    w_u64(&e, cost);
    w_u64(&e, new_price);
    w_i64(&e, t);
    event_emit(c, &e);
    return 0;
}

/* args: outcome bool, shares_to_sell u64, min_proceeds u64 (net of fees)
 * The market is program-owned, so proceeds move by editing lamports directly. */
static u64 ix_sell_shares(Ctx *c) {
    if (!has_args(c, 17) || args(c)[0] > 1) return FAIL(InstructionDidNotDeserialize);
    u8 *config;
    u64 err = trade_preamble(c, &config);
    if (err != 0) return err;
    SolAccountInfo *market = acct(c, 1), *position = acct(c, 2), *user = acct(c, 3);
    SolAccountInfo *fee_wallet = acct(c, 4);
    Market *m = &c->market;
    bool yes = args(c)[0] == 1;
    u64 shares = rd_u64(args(c) + 1), min_proceeds = rd_u64(args(c) + 9);
    if (!position_belongs(c, position)) return FAIL(Unauthorized);
    if (shares == 0) return FAIL(ZeroAmount);
    u8 *held_at = position->data + (yes ? UP_SHARES_YES : UP_SHARES_NO);
    u64 *sold = yes ? &m->shares_yes : &m->shares_no;
    u64 *other = yes ? &m->shares_no : &m->shares_yes;
    if (rd_u64(held_at) < shares || *sold < shares) return FAIL(InsufficientShares);

    u64 y, a, gross;
    if (!add_ok(*sold, m->b_parameter, &y) || !add_ok(*other, m->b_parameter, &a) ||
        !quote_sell(y, a, shares, &gross))
        return FAIL(OverflowError);
    u64 protocol_fee, resolver_fee, lp_fee;
    fees_of(config, gross, &protocol_fee, &resolver_fee, &lp_fee);
    u64 net = gross - protocol_fee - resolver_fee - lp_fee;
    if (net < min_proceeds) return FAIL(SlippageExceeded);
    u64 payout = net + protocol_fee;
    if (gross > m->current_liquidity ||
        *market->lamports < payout + rent_minimum(market->data_len))
        return FAIL(InsufficientLiquidity);

    *market->lamports -= payout;
    *user->lamports += net;
    *fee_wallet->lamports += protocol_fee;

    i64 t = now(c);
    *sold -= shares;
    m->current_liquidity -= gross;
    m->total_volume += gross;
    m->accumulated_protocol_fees += protocol_fee;
    m->accumulated_resolver_fees += resolver_fee;
    m->accumulated_lp_fees += lp_fee;
    store_market(c, market);
    Writer hw = {held_at};
    w_u64(&hw, rd_u64(held_at) - shares);
    Writer pw = {position->data + UP_TRADES_COUNT};
    w_u32(&pw, rd_u32(position->data + UP_TRADES_COUNT) + 1);
    w_i64(&pw, t);

    u64 new_price = 0;
    price_yes(m->shares_yes, m->shares_no, m->b_parameter, &new_price);
    Writer e = event_begin(c, EV_SHARES_SOLD);
    w_bytes(&e, m->market_id, 32);
    w_bytes(&e, user->key, 32);
    w_u8(&e, yes);
    w_u64(&e, shares);
    w_u64(&e, net);
    w_u64(&e, new_price);
    w_i64(&e, t);
    event_emit(c, &e);
    return 0;
}

/* accounts: global_config, market (w), resolver (w, s)
 * args: proposed_outcome bool, ipfs_evidence_hash [u8;46]
 * stand-in: any signer may propose (as documented); min_resolution_delay is not enforced. */
static u64 ix_resolve_market(Ctx *c) {
    if (c->in.n_accounts < 3) return FAIL(AccountNotEnoughKeys);
    if (!has_args(c, 47) || args(c)[0] > 1) return FAIL(InstructionDidNotDeserialize);
    SolAccountInfo *config_ai = acct(c, 0), *market = acct(c, 1), *resolver = acct(c, 2);
    u8 *config = load_config(c, config_ai);
    if (config == NULL) return FAIL(InvalidGlobalConfig);
    if (paused(config)) return FAIL(ProtocolPaused);
    if (!resolver->is_signer) return FAIL(Unauthorized);
    if (!load_market(c, market)) return FAIL(InvalidMarketId);
    Market *m = &c->market;
    if (m->state != STATE_ACTIVE) return FAIL(InvalidStateTransition);
    bool outcome = args(c)[0] == 1;
    m->state = STATE_RESOLVING;
    sol_memcpy_(m->resolver, resolver->key, 32);
    m->has_proposed_outcome = true;
    m->proposed_outcome = outcome;
    sol_memcpy_(m->ipfs_evidence_hash, args(c) + 1, 46);
    m->resolution_proposed_at = now(c);
    store_market(c, market);

    Writer e = event_begin(c, EV_MARKET_RESOLVED);
    w_bytes(&e, m->market_id, 32);
    w_bytes(&e, resolver->key, 32);
    w_u8(&e, outcome);
    w_bytes(&e, m->ipfs_evidence_hash, 46);
    w_i64(&e, m->resolution_proposed_at);
    event_emit(c, &e);
    return 0;
}

static bool dispute_window_open(Ctx *c, const u8 *config, i64 t) {
    return t < c->market.resolution_proposed_at + (i64)rd_u64(config + GC_DISPUTE_PERIOD);
}

/* accounts: global_config, market (w), initiator (s) */
static u64 ix_initiate_dispute(Ctx *c) {
    if (c->in.n_accounts < 3) return FAIL(AccountNotEnoughKeys);
    SolAccountInfo *config_ai = acct(c, 0), *market = acct(c, 1), *initiator = acct(c, 2);
    u8 *config = load_config(c, config_ai);
    if (config == NULL) return FAIL(InvalidGlobalConfig);
    if (!initiator->is_signer) return FAIL(Unauthorized);
    if (!load_market(c, market)) return FAIL(InvalidMarketId);
    Market *m = &c->market;
    if (m->state == STATE_DISPUTED) return FAIL(AlreadyDisputed);
    if (m->state != STATE_RESOLVING) return FAIL(InvalidStateTransition);
    i64 t = now(c);
    if (!dispute_window_open(c, config, t)) return FAIL(DisputePeriodEnded);
    m->state = STATE_DISPUTED;
    m->dispute_initiated_at = t;
    sol_memcpy_(m->dispute_initiator, initiator->key, 32);
    m->was_disputed = true;
    store_market(c, market);

    Writer e = event_begin(c, EV_DISPUTE_INITIATED);
    w_bytes(&e, m->market_id, 32);
    w_bytes(&e, initiator->key, 32);
    w_opt_bool(&e, m->has_proposed_outcome, m->proposed_outcome);
    w_i64(&e, t);
    event_emit(c, &e);
    return 0;
}

/* accounts: global_config, market (w), backend_authority (s)
 * args: dispute_agree Option<u32>, dispute_disagree Option<u32>
 * Resolving + (None, None) after the dispute period: final = proposed.
 * Disputed + (Some, Some): final = proposed, flipped if the dispute met its threshold. */
static u64 ix_finalize_market(Ctx *c) {
    if (c->in.n_accounts < 3) return FAIL(AccountNotEnoughKeys);
    Reader r = {args(c), c->in.data + c->in.data_len, c->in.data_len >= 8};
    bool has_agree = r_opt_tag(&r);
    u32 agree = has_agree ? r_u32(&r) : 0;
    bool has_disagree = r_opt_tag(&r);
    u32 disagree = has_disagree ? r_u32(&r) : 0;
    if (!r.ok) return FAIL(InstructionDidNotDeserialize);
    SolAccountInfo *config_ai = acct(c, 0), *market = acct(c, 1), *backend = acct(c, 2);
    u8 *config = load_config(c, config_ai);
    if (config == NULL) return FAIL(InvalidGlobalConfig);
    if (!signer_is(backend, config + GC_BACKEND_AUTHORITY)) return FAIL(Unauthorized);
    if (!load_market(c, market)) return FAIL(InvalidMarketId);
    Market *m = &c->market;
    i64 t = now(c);
    bool flip = false;
    if (m->state == STATE_RESOLVING) {
        if (has_agree || has_disagree) return FAIL(InvalidInput);
        if (dispute_window_open(c, config, t)) return FAIL(DisputePeriodNotEnded);
    } else if (m->state == STATE_DISPUTED) {
        if (!has_agree || !has_disagree) return FAIL(InvalidInput);
        u32 total = agree + disagree;
        if (total < agree) return FAIL(OverflowError);
        m->dispute_agree = agree;
        m->dispute_disagree = disagree;
        m->dispute_total_votes = total;
        flip = meets_threshold(agree, total, rd_u16(config + GC_DISPUTE_SUCCESS_THRESHOLD));
    } else {
        return FAIL(InvalidStateTransition);
    }
    m->state = STATE_FINALIZED;
    m->has_final_outcome = m->has_proposed_outcome;
    m->final_outcome = flip ? !m->proposed_outcome : m->proposed_outcome;
    m->finalized_at = t;
    m->resolved_at = t;
    store_market(c, market);

    Writer e = event_begin(c, EV_MARKET_FINALIZED);
    w_bytes(&e, m->market_id, 32);
    w_opt_bool(&e, m->has_final_outcome, m->final_outcome);
    w_u8(&e, m->was_disputed);
    w_i64(&e, t);
    event_emit(c, &e);
    return 0;
}

/* accounts: admin (s), market (w), global_config;  Proposed | Approved -> Cancelled */
static u64 ix_cancel_market(Ctx *c) {
    if (c->in.n_accounts < 3) return FAIL(AccountNotEnoughKeys);
    SolAccountInfo *admin = acct(c, 0), *market = acct(c, 1), *config_ai = acct(c, 2);
    u8 *config = load_config(c, config_ai);
    if (config == NULL) return FAIL(InvalidGlobalConfig);
    if (!signer_is(admin, config + GC_ADMIN)) return FAIL(Unauthorized);
    if (!load_market(c, market)) return FAIL(InvalidMarketId);
    Market *m = &c->market;
    if (m->state == STATE_CANCELLED) return FAIL(MarketAlreadyCancelled);
    if (m->state != STATE_PROPOSED && m->state != STATE_APPROVED)
        return FAIL(CannotCancelMarket);
    m->state = STATE_CANCELLED;
    m->is_cancelled = true;
    m->has_cancelled_at = true;
    m->cancelled_at = now(c);
    store_market(c, market);

    Writer e = event_begin(c, EV_MARKET_CANCELLED);
    w_bytes(&e, m->market_id, 32);
    w_bytes(&e, admin->key, 32);
    w_i64(&e, m->cancelled_at);
    event_emit(c, &e);
    return 0;
}

u64 entrypoint(u8 *input) {
    Ctx *c = ctx();
    if (!parse_input(input, &c->in)) return FAIL(InvalidInput);
    if (c->in.data_len < 8) return FAIL(InstructionFallbackNotFound);
    switch (rd_u64(c->in.data)) {
    case IX_INITIALIZE_GLOBAL_CONFIG:
        LOG("Instruction: InitializeGlobalConfig");
        return ix_initialize_global_config(c);
    case IX_CREATE_MARKET:
        LOG("Instruction: CreateMarket");
        return ix_create_market(c);
    case IX_SUBMIT_PROPOSAL_VOTE:
        LOG("Instruction: SubmitProposalVote");
        return ix_submit_vote(c, VOTE_TYPE_PROPOSAL);
    case IX_SUBMIT_DISPUTE_VOTE:
        LOG("Instruction: SubmitDisputeVote");
        return ix_submit_vote(c, VOTE_TYPE_DISPUTE);
    case IX_AGGREGATE_PROPOSAL_VOTES:
        LOG("Instruction: AggregateProposalVotes");
        return ix_aggregate_votes(c, VOTE_TYPE_PROPOSAL);
    case IX_AGGREGATE_DISPUTE_VOTES:
        LOG("Instruction: AggregateDisputeVotes");
        return ix_aggregate_votes(c, VOTE_TYPE_DISPUTE);
    case IX_APPROVE_PROPOSAL:
        LOG("Instruction: ApproveProposal");
        return ix_approve_proposal(c);
    case IX_ACTIVATE_MARKET:
        LOG("Instruction: ActivateMarket");
        return ix_activate_market(c);
    case IX_BUY_SHARES:
        LOG("Instruction: BuyShares");
        return ix_buy_shares(c);
    case IX_SELL_SHARES:
        LOG("Instruction: SellShares");
        return ix_sell_shares(c);
    case IX_RESOLVE_MARKET:
        LOG("Instruction: ResolveMarket");
        return ix_resolve_market(c);
    case IX_INITIATE_DISPUTE:
        LOG("Instruction: InitiateDispute");
        return ix_initiate_dispute(c);
    case IX_FINALIZE_MARKET:
        LOG("Instruction: FinalizeMarket");
        return ix_finalize_market(c);
    case IX_CANCEL_MARKET:
        LOG("Instruction: CancelMarket");
        return ix_cancel_market(c);
    default:
        return FAIL(InstructionFallbackNotFound);
    }
}
