/* Market lifecycle before trading (PROGRAM.md §3.2, §3.5, §3.6, §3.17). Included by zmart_twin.c. */

static void store_market(Ctx *c, SolAccountInfo *ai) { market_encode(&c->market, ai->data); }

static bool is_config_admin(const SolAccountInfo *config, const SolAccountInfo *who) {
    return key_eq(who->key, (const SolPubkey *)(config->data + GC_ADMIN));
}

/* accounts: creator (w, s), market (w, init), global_config, system_program
 * args: market_id [u8;32], b_parameter u64, initial_liquidity u64, ipfs_question_hash [u8;46]
 * Only the rent moves: initial_liquidity is a number, never deposited; b is not compared
 * with MIN_B (a market with 0 < b < 100·P exists but every trade fails). */
static u64 ix_create_market(Ctx *c) {
    Reader r = args_reader(c);
    u8 market_id[32], question[46];
    r_bytes(&r, market_id, 32);
    u64 b_parameter = r_u64(&r), initial_liquidity = r_u64(&r);
    r_bytes(&r, question, 46);
    if (!r.ok) return A_INSTRUCTION_DID_NOT_DESERIALIZE;
    static const u8 kinds[] = {K_SIGNER, K_UNCHECKED, K_CONFIG, K_SYSTEM_PROGRAM};
    TRY(load_accounts(c, kinds, 4));
    SolAccountInfo *creator = acct(c, 0), *market = acct(c, 1), *config = acct(c, 2);
    c->seeds[0] = (SolBytes){(const u8 *)"market", 6};
    c->seeds[1] = (SolBytes){market_id, 32};
    TRY(init_pda(c, creator, market, 2, SPACE_MARKET));
    u8 bump = c->bump[0];
    TRY(need_mut(creator));
    TRY(config_seeds(c, config));
    if (config_paused(config)) return E_PROTOCOL_PAUSED;
    if (b_parameter == 0) return E_INVALID_B_PARAMETER;
    if (initial_liquidity == 0) return E_INVALID_LIQUIDITY;

    Market *m = &c->market;
    sol_memset_(m, 0, sizeof(Market));
    sol_memcpy_(m->market_id, market_id, 32);
    sol_memcpy_(m->creator, creator->key, 32);
    m->state = STATE_PROPOSED;
    m->b_parameter = b_parameter;
    m->initial_liquidity = initial_liquidity;
    m->current_liquidity = initial_liquidity;
    m->shares_yes = m->shares_no = b_parameter / 1000;
    m->created_at = now(c);
    sol_memcpy_(m->ipfs_evidence_hash, question, 46);
    m->bump = bump;
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

/* ⌊yes·10000 / total⌋ ≥ threshold (total > 0 checked by the callers) */
static bool meets_threshold(u64 yes, u64 total, u64 threshold_bps) {
    return yes * BPS_DENOMINATOR / total >= threshold_bps;
}

/* accounts: admin (w, s), market (w), global_config — admin only, not pause-gated */
static u64 ix_approve_proposal(Ctx *c) {
    static const u8 kinds[] = {K_SIGNER, K_MARKET, K_CONFIG};
    TRY(load_accounts(c, kinds, 3));
    SolAccountInfo *admin = acct(c, 0), *market = acct(c, 1), *config = acct(c, 2);
    TRY(need_mut(admin));
    TRY(market_seeds(c, market));
    TRY(need_mut(market));
    TRY(config_seeds(c, config));
    if (!is_config_admin(config, admin)) return E_UNAUTHORIZED;
    Market *m = &c->market;
    if (m->state != STATE_PROPOSED) return E_INVALID_STATE_TRANSITION;
    if (m->proposal_total_votes == 0) return E_NO_VOTES_RECORDED;
    if (!meets_threshold(m->proposal_likes, m->proposal_total_votes,
                         config_u16(config, GC_PROPOSAL_APPROVAL_THRESHOLD)))
        return E_INSUFFICIENT_VOTES;
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
    static const u8 kinds[] = {K_SIGNER, K_MARKET, K_CONFIG};
    TRY(load_accounts(c, kinds, 3));
    SolAccountInfo *authority = acct(c, 0), *market = acct(c, 1), *config = acct(c, 2);
    Market *m = &c->market;
    TRY(need_mut(authority));
    TRY(market_seeds(c, market));
    TRY(need_mut(market));
    TRY(config_seeds(c, config));
    if (!is_config_admin(config, authority) && !key_eq(authority->key, (SolPubkey *)m->creator))
        return E_UNAUTHORIZED;
    if (m->state != STATE_APPROVED) return E_INVALID_STATE_TRANSITION;
    if (m->current_liquidity < m->initial_liquidity) return E_INSUFFICIENT_LIQUIDITY;
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

/* accounts: admin (s), market (w), global_config; Proposed | Approved → Cancelled.
 * is_cancelled stays false, nothing is refunded, the account stays open. */
static u64 ix_cancel_market(Ctx *c) {
    static const u8 kinds[] = {K_SIGNER, K_MARKET, K_CONFIG};
    TRY(load_accounts(c, kinds, 3));
    SolAccountInfo *admin = acct(c, 0), *market = acct(c, 1), *config = acct(c, 2);
    Market *m = &c->market;
    TRY(market_seeds(c, market));
    TRY(need_mut(market));
    TRY(config_seeds(c, config));
    if (!is_config_admin(config, admin)) return E_UNAUTHORIZED;
    if (m->state == STATE_CANCELLED) return E_MARKET_ALREADY_CANCELLED;
    if (m->state != STATE_PROPOSED && m->state != STATE_APPROVED) return E_CANNOT_CANCEL_MARKET;
    m->state = STATE_CANCELLED;
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
