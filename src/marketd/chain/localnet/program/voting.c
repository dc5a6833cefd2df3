/* Votes and their off-chain aggregation (PROGRAM.md §3.3, §3.4, §3.12). Included by zmart_twin.c. */

/* accounts: market, vote_record (w, init), user (w, s), system_program;  args: vote bool
 * The record is created before the state is checked, so a repeat voter gets the system
 * program's Custom(0) in every state. Nothing is counted on chain. */
static u64 ix_submit_vote(Ctx *c, u8 vote_type) {
    Reader r = args_reader(c);
    bool vote = r_bool(&r);
    if (!r.ok) return A_INSTRUCTION_DID_NOT_DESERIALIZE;
    static const u8 kinds[] = {K_MARKET, K_UNCHECKED, K_SIGNER, K_SYSTEM_PROGRAM};
    TRY(load_accounts(c, kinds, 4));
    SolAccountInfo *market = acct(c, 0), *record = acct(c, 1), *user = acct(c, 2);
    c->seeds[0] = (SolBytes){(const u8 *)"vote", 4};
    c->seeds[1] = (SolBytes){market->key->x, 32};
    c->seeds[2] = (SolBytes){user->key->x, 32};
    c->seeds[3] = (SolBytes){&vote_type, 1};
    TRY(init_pda(c, user, record, 4, SPACE_VOTE_RECORD));
    u8 bump = c->bump[0];
    TRY(market_seeds(c, market));
    u8 wanted = vote_type == VOTE_TYPE_PROPOSAL ? STATE_PROPOSED : STATE_DISPUTED;
    if (c->market.state != wanted) return E_INVALID_STATE_FOR_VOTING;
    TRY(need_mut(user));

    i64 t = now(c);
    Writer w = {record->data};
    w_u64(&w, DISC_VOTE_RECORD);
    w_bytes(&w, market->key, 32);
    w_bytes(&w, user->key, 32);
    w_u8(&w, vote_type);
    w_u8(&w, vote);
    w_i64(&w, t);
    w_u8(&w, bump);

    Writer e = event_begin(c, vote_type == VOTE_TYPE_PROPOSAL ? EV_PROPOSAL_VOTE_SUBMITTED
                                                               : EV_DISPUTE_VOTE_SUBMITTED);
    w_bytes(&e, c->market.market_id, 32);
    w_bytes(&e, user->key, 32);
    w_u8(&e, vote);
    w_i64(&e, t);
    event_emit(c, &e);
    return 0;
}

/* Shared checks of the two aggregations. accounts: market (w), global_config, backend (s) */
static u64 aggregate_accounts(Ctx *c, u8 state) {
    static const u8 kinds[] = {K_MARKET, K_CONFIG, K_SIGNER};
    TRY(load_accounts(c, kinds, 3));
    SolAccountInfo *market = acct(c, 0), *config = acct(c, 1), *backend = acct(c, 2);
    TRY(market_constraints(c, market, state, E_INVALID_STATE_FOR_VOTING));
    TRY(config_seeds(c, config));
    const SolPubkey *authority = (const SolPubkey *)(config->data + GC_BACKEND_AUTHORITY);
    return key_eq(backend->key, authority) ? 0 : E_UNAUTHORIZED;
}

static u64 read_counts(Ctx *c, u32 *yes, u32 *no) {
    Reader r = args_reader(c);
    *yes = r_u32(&r);
    *no = r_u32(&r);
    return r.ok ? 0 : A_INSTRUCTION_DID_NOT_DESERIALIZE;
}

/* args: final_likes u32, final_dislikes u32 — records the counts, never changes the state
 * (approval is the admin's approve_proposal); repeatable, the last call wins. */
static u64 ix_aggregate_proposal_votes(Ctx *c) {
    u32 likes, dislikes;
    TRY(read_counts(c, &likes, &dislikes));
    TRY(aggregate_accounts(c, STATE_PROPOSED));
    SolAccountInfo *market = acct(c, 0), *config = acct(c, 1);
    Market *m = &c->market;
    u32 total = likes + dislikes;
    if (total < likes) return E_OVERFLOW;
    m->proposal_likes = likes;
    m->proposal_dislikes = dislikes;
    m->proposal_total_votes = total;
    store_market(c, market);
    u64 approval = total == 0 ? 0 : (u64)likes * BPS_DENOMINATOR / total;

    Writer e = event_begin(c, EV_PROPOSAL_AGGREGATED);
    w_bytes(&e, m->market_id, 32);
    w_u32(&e, likes);
    w_u32(&e, dislikes);
    w_u8(&e, (u8)(approval / 100));
    w_u8(&e, approval >= config_u16(config, GC_PROPOSAL_APPROVAL_THRESHOLD));
    w_i64(&e, now(c));
    event_emit(c, &e);
    return 0;
}

/* args: final_agrees u32, final_disagrees u32 — not a settlement: a successful dispute
 * re-opens Resolving (the later finalize keeps the ORIGINAL outcome); a failed one
 * (including no votes) finalizes with no final outcome, i.e. the INVALID refund path. */
static u64 ix_aggregate_dispute_votes(Ctx *c) {
    u32 agrees, disagrees;
    TRY(read_counts(c, &agrees, &disagrees));
    TRY(aggregate_accounts(c, STATE_DISPUTED));
    SolAccountInfo *market = acct(c, 0), *config = acct(c, 1);
    Market *m = &c->market;
    u32 total = agrees + disagrees;
    if (total < agrees) return E_OVERFLOW;
    m->dispute_agree = agrees;
    m->dispute_disagree = disagrees;
    m->dispute_total_votes = total;
    bool succeeded = total > 0 && meets_threshold(agrees, total,
                                                  config_u16(config, GC_DISPUTE_SUCCESS_THRESHOLD));
    i64 t = now(c);
    m->was_disputed = true;
    if (succeeded) {
        m->state = STATE_RESOLVING;
    } else {
        m->state = STATE_FINALIZED;
        m->resolved_at = t;
    }
    store_market(c, market);

    Writer e = event_begin(c, EV_DISPUTE_AGGREGATED);
    w_bytes(&e, m->market_id, 32);
    w_u32(&e, agrees);
    w_u32(&e, disagrees);
    w_u8(&e, total == 0 ? 0 : (u8)((u64)agrees * 100 / total));
    w_u8(&e, succeeded);
    w_i64(&e, t);
    event_emit(c, &e);
    return 0;
}
