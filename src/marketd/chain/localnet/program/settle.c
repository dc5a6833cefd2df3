/* Resolution, disputes, finalization and payouts (PROGRAM.md §3.9–§3.11, §3.13, §3.14).
 * Included by zmart_twin.c. */

#define CLOCK_WINDOW_SECONDS 315360000L /* created_at ≤ now ≤ created_at + 10 years */
#define WITHDRAW_KEEPS 10000UL          /* withdraw leaves rent + this in the market */

static bool outside_clock_window(const Market *m, i64 t) {
    return t < m->created_at || t > m->created_at + CLOCK_WINDOW_SECONDS;
}

/* accounts: global_config, market (w), resolver (w, s)
 * args: proposed_outcome bool, ipfs_evidence_hash [u8;46] — any signer, no pause check */
static u64 ix_resolve_market(Ctx *c) {
    Reader r = args_reader(c);
    bool outcome = r_bool(&r);
    u8 evidence[46];
    r_bytes(&r, evidence, 46);
    if (!r.ok) return A_INSTRUCTION_DID_NOT_DESERIALIZE;
    static const u8 kinds[] = {K_CONFIG, K_MARKET, K_SIGNER};
    TRY(load_accounts(c, kinds, 3));
    SolAccountInfo *config = acct(c, 0), *market = acct(c, 1), *resolver = acct(c, 2);
    Market *m = &c->market;
    TRY(config_seeds(c, config));
    TRY(market_constraints(c, market, STATE_ACTIVE, E_INVALID_MARKET_STATE));
    TRY(need_mut(resolver));
    if (m->has_proposed_outcome) return 6026; /* AlreadyResolved: unreachable from Active */
    i64 t = now(c);
    if (outside_clock_window(m, t) || t <= m->activated_at) return E_INVALID_TIMESTAMP;
    m->has_proposed_outcome = true;
    m->proposed_outcome = outcome;
    sol_memcpy_(m->resolver, resolver->key, 32);
    sol_memcpy_(m->ipfs_evidence_hash, evidence, 46);
    m->resolution_proposed_at = t;
    m->resolution_agree = m->resolution_disagree = m->resolution_total_votes = 0;
    m->state = STATE_RESOLVING;
    store_market(c, market);

    Writer e = event_begin(c, EV_MARKET_RESOLVED);
    w_bytes(&e, m->market_id, 32);
    w_bytes(&e, resolver->key, 32);
    w_u8(&e, outcome);
    w_bytes(&e, evidence, 46);
    w_i64(&e, t);
    event_emit(c, &e);
    return 0;
}

static i64 dispute_period(const SolAccountInfo *config) {
    return (i64)rd_u64(config->data + GC_DISPUTE_PERIOD);
}

/* accounts: global_config, market (w), initiator (s) — any key, inside the dispute window */
static u64 ix_initiate_dispute(Ctx *c) {
    static const u8 kinds[] = {K_CONFIG, K_MARKET, K_SIGNER};
    TRY(load_accounts(c, kinds, 3));
    SolAccountInfo *config = acct(c, 0), *market = acct(c, 1), *initiator = acct(c, 2);
    Market *m = &c->market;
    TRY(config_seeds(c, config));
    TRY(market_constraints(c, market, STATE_RESOLVING, E_INVALID_MARKET_STATE));
    i64 t = now(c);
    if (t <= m->resolution_proposed_at) return E_INVALID_TIMESTAMP;
    if (t >= m->resolution_proposed_at + dispute_period(config)) return E_DISPUTE_PERIOD_ENDED;
    sol_memcpy_(m->dispute_initiator, initiator->key, 32);
    m->dispute_initiated_at = t;
    m->dispute_agree = m->dispute_disagree = m->dispute_total_votes = 0;
    m->state = STATE_DISPUTED;
    store_market(c, market);

    Writer e = event_begin(c, EV_DISPUTE_INITIATED);
    w_bytes(&e, m->market_id, 32);
    w_bytes(&e, initiator->key, 32);
    w_opt_bool(&e, m->has_proposed_outcome, m->proposed_outcome);
    w_i64(&e, t);
    event_emit(c, &e);
    return 0;
}

static bool r_opt_u32(Reader *r, u32 *value) {
    bool some = r_opt_tag(r);
    *value = some ? r_u32(r) : 0;
    return some;
}

/* accounts: global_config, market (w), backend_authority (s)
 * args: dispute_agree Option<u32>, dispute_disagree Option<u32>
 * Disputed: the counts decide (≥ threshold flips the proposal); Resolving: the arguments are
 * ignored and the whole dispute period must have passed. */
static u64 ix_finalize_market(Ctx *c) {
    Reader r = args_reader(c);
    u32 agree, disagree;
    bool has_agree = r_opt_u32(&r, &agree);
    bool has_disagree = r_opt_u32(&r, &disagree);
    if (!r.ok) return A_INSTRUCTION_DID_NOT_DESERIALIZE;
    static const u8 kinds[] = {K_CONFIG, K_MARKET, K_SIGNER};
    TRY(load_accounts(c, kinds, 3));
    SolAccountInfo *config = acct(c, 0), *market = acct(c, 1), *backend = acct(c, 2);
    Market *m = &c->market;
    TRY(config_seeds(c, config));
    TRY(market_seeds(c, market));
    TRY(need_mut(market));
    if (m->state != STATE_RESOLVING && m->state != STATE_DISPUTED) return E_INVALID_MARKET_STATE;
    if (!key_eq(backend->key, (const SolPubkey *)(config->data + GC_BACKEND_AUTHORITY)))
        return E_UNAUTHORIZED;
    i64 t = now(c);
    if (outside_clock_window(m, t) || t <= m->resolution_proposed_at) return E_INVALID_TIMESTAMP;
    bool disputed = m->state == STATE_DISPUTED;
    bool final_outcome = m->proposed_outcome;
    if (disputed) {
        if (!has_agree || !has_disagree) return E_NO_VOTES_RECORDED;
        u32 total = agree + disagree;
        if (total < agree) return E_OVERFLOW;
        if (total == 0) return E_NO_VOTES_RECORDED;
        m->dispute_agree = agree;
        m->dispute_disagree = disagree;
        m->dispute_total_votes = total;
        if (meets_threshold(agree, total, config_u16(config, GC_DISPUTE_SUCCESS_THRESHOLD)))
            final_outcome = !final_outcome;
    } else if (t < m->resolution_proposed_at + dispute_period(config)) {
        return E_DISPUTE_PERIOD_NOT_ENDED;
    }
    TRY(check_bounded_loss(m->b_parameter, m->initial_liquidity, m->current_liquidity));
    m->has_final_outcome = true;
    m->final_outcome = final_outcome;
    m->was_disputed = disputed;
    m->finalized_at = t;
    m->state = STATE_FINALIZED;
    store_market(c, market);

    Writer e = event_begin(c, EV_MARKET_FINALIZED);
    w_bytes(&e, m->market_id, 32);
    w_opt_bool(&e, true, final_outcome);
    w_u8(&e, disputed);
    w_i64(&e, t);
    event_emit(c, &e);
    return 0;
}

/* accounts: global_config, market (w), position (w), user (w, s), resolver (w),
 * system_program. Pro-rata of current_liquidity over the outcome's outstanding quantity
 * (seed shares included, never paid); INVALID (no final outcome) refunds total_invested.
 * The first successful claimer also pays the resolver all accumulated resolver fees. */
static u64 ix_claim_winnings(Ctx *c) {
    static const u8 kinds[] = {K_CONFIG, K_MARKET, K_POSITION, K_SIGNER, K_UNCHECKED,
                               K_SYSTEM_PROGRAM};
    TRY(load_accounts(c, kinds, 6));
    SolAccountInfo *config = acct(c, 0), *market = acct(c, 1), *position = acct(c, 2);
    SolAccountInfo *user = acct(c, 3), *resolver = acct(c, 4);
    Market *m = &c->market;
    u8 *p = position->data;
    TRY(config_seeds(c, config));
    TRY(market_constraints(c, market, STATE_FINALIZED, E_INVALID_MARKET_STATE));
    TRY(position_seeds(c, position, market, user));
    TRY(need_mut(position));
    if (!key_eq(user->key, (const SolPubkey *)(p + UP_USER))) return A_CONSTRAINT_HAS_ONE;
    if (p[UP_HAS_CLAIMED]) return E_ALREADY_CLAIMED;
    TRY(need_mut(user));
    TRY(need_mut(resolver));
    if (!key_eq(resolver->key, (const SolPubkey *)m->resolver)) return E_INVALID_RESOLVER;

    u64 w;
    if (!m->has_final_outcome) {
        w = rd_u64(p + UP_TOTAL_INVESTED);
        if (w == 0) return E_NO_WINNINGS;
        TRY(pay_from_market(market, user, w, E_INSUFFICIENT_LIQUIDITY));
    } else {
        u64 held = rd_u64(p + (m->final_outcome ? UP_SHARES_YES : UP_SHARES_NO));
        u64 outstanding = m->final_outcome ? m->shares_yes : m->shares_no;
        if (held == 0) return E_NO_WINNINGS;
        if (outstanding == 0) return E_DIVISION_BY_ZERO;
        w = mul_div_truncated(held, m->current_liquidity, outstanding);
        if (w == 0) return E_NO_WINNINGS;
        u64 needed;
        TRY(checked_add(w, m->accumulated_resolver_fees, &needed));
        if (*market->lamports < needed) return E_INSUFFICIENT_LIQUIDITY;
        TRY(pay_from_market(market, user, w, E_INSUFFICIENT_LIQUIDITY));
        if (m->accumulated_resolver_fees > 0) {
            TRY(pay_from_market(market, resolver, m->accumulated_resolver_fees,
                                E_INSUFFICIENT_LIQUIDITY));
            m->accumulated_resolver_fees = 0;
        }
    }
    p[UP_HAS_CLAIMED] = 1;
    Writer cw = {p + UP_CLAIMED_AMOUNT};
    w_u64(&cw, w);
    store_market(c, market);

    Writer e = event_begin(c, EV_WINNINGS_CLAIMED);
    w_bytes(&e, market->key, 32);
    w_bytes(&e, user->key, 32);
    w_opt_bool(&e, m->has_final_outcome, m->final_outcome);
    w_u64(&e, w);
    w_i64(&e, now(c));
    event_emit(c, &e);
    return 0;
}

/* accounts: market (w), creator (w, s) — everything above rent + 10 000 lamports, any time
 * after finalization (also before the claims, which then find nothing to pay). */
static u64 ix_withdraw_liquidity(Ctx *c) {
    static const u8 kinds[] = {K_MARKET, K_SIGNER};
    TRY(load_accounts(c, kinds, 2));
    SolAccountInfo *market = acct(c, 0), *creator = acct(c, 1);
    Market *m = &c->market;
    TRY(market_seeds(c, market));
    TRY(need_mut(market));
    if (!key_eq(creator->key, (const SolPubkey *)m->creator)) return E_UNAUTHORIZED;
    if (m->state != STATE_FINALIZED) return E_INVALID_MARKET_STATE;
    TRY(need_mut(creator));
    u64 keep = rent_minimum(market->data_len) + WITHDRAW_KEEPS;
    u64 w = *market->lamports > keep ? *market->lamports - keep : 0;
    if (w == 0) return E_INSUFFICIENT_LIQUIDITY;
    *market->lamports -= w;
    *creator->lamports += w;
    m->current_liquidity = 0;
    m->accumulated_lp_fees = 0;
    store_market(c, market);

    Writer e = event_begin(c, EV_LIQUIDITY_WITHDRAWN);
    w_bytes(&e, m->market_id, 32);
    w_bytes(&e, creator->key, 32);
    w_u64(&e, w);
    w_i64(&e, now(c));
    event_emit(c, &e);
    return 0;
}
