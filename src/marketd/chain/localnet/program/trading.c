/* buy_shares and sell_shares (PROGRAM.md §3.7, §3.8). Included by zmart_twin.c.
 *
 * sell_shares never succeeds on Solana: its payout is a system transfer *from the market
 * PDA* issued without signer seeds, which the runtime rejects (PrivilegeEscalation). The
 * twin issues that same CPI. Built with ZMART_FIXED_PROGRAM it pays out by direct balance
 * edits instead (the intended behaviour) and emits SharesSold. */

static u64 fee_split_of(const SolAccountInfo *config, u64 amount, Fees *f) {
    return fee_split(amount, config_u16(config, GC_PROTOCOL_FEE_BPS),
                     config_u16(config, GC_RESOLVER_REWARD_BPS),
                     config_u16(config, GC_LIQUIDITY_PROVIDER_FEE_BPS), f);
}

/* protocol_fee_wallet: `mut`, and the configured wallet (Unauthorized otherwise) */
static u64 fee_wallet_constraints(const SolAccountInfo *config, SolAccountInfo *wallet) {
    TRY(need_mut(wallet));
    const SolPubkey *expected = (const SolPubkey *)(config->data + GC_PROTOCOL_FEE_WALLET);
    return key_eq(wallet->key, expected) ? 0 : E_UNAUTHORIZED;
}

/* Anchor's init_if_needed of the buyer's position (pass 2) */
static u64 position_init_if_needed(Ctx *c, SolAccountInfo *position, SolAccountInfo *market,
                                   SolAccountInfo *user, u8 *bump) {
    c->seeds[0] = (SolBytes){(const u8 *)"position", 8};
    c->seeds[1] = (SolBytes){market->key->x, 32};
    c->seeds[2] = (SolBytes){user->key->x, 32};
    if (is_system_owned(position)) {
        TRY(init_pda(c, user, position, 3, SPACE_USER_POSITION));
    } else {
        if (sol_try_find_program_address(c->seeds, 3, c->in.program_id, &c->pda, c->bump) != 0 ||
            !key_eq(&c->pda, position->key))
            return A_CONSTRAINT_SEEDS;
        TRY(decode_position(c, position));
    }
    *bump = c->bump[0];
    if (position->data_len != SPACE_USER_POSITION) return A_CONSTRAINT_SPACE;
    if (!owned_by_program(c, position)) return A_CONSTRAINT_OWNER;
    if (*position->lamports < rent_minimum(SPACE_USER_POSITION)) return A_CONSTRAINT_RENT_EXEMPT;
    return 0;
}

static void add_at(u8 *p, u64 delta) {
    Writer w = {p};
    w_u64(&w, rd_u64(p) + delta);
}

/* accounts: global_config, market (w), position (w, init_if_needed), user (w, s),
 * protocol_fee_wallet (w), system_program;  args: outcome bool, target_cost u64 (the TOTAL
 * the user pays, fees included; 10 % fees are assumed whatever the configured bps). */
static u64 ix_buy_shares(Ctx *c) {
    Reader r = args_reader(c);
    bool yes = r_bool(&r);
    u64 target_cost = r_u64(&r);
    if (!r.ok) return A_INSTRUCTION_DID_NOT_DESERIALIZE;
    static const u8 kinds[] = {K_CONFIG, K_MARKET, K_UNCHECKED, K_SIGNER, K_UNCHECKED,
                               K_SYSTEM_PROGRAM};
    TRY(load_accounts(c, kinds, 6));
    SolAccountInfo *config = acct(c, 0), *market = acct(c, 1), *position = acct(c, 2);
    SolAccountInfo *user = acct(c, 3), *fee_wallet = acct(c, 4);
    u8 bump;
    TRY(position_init_if_needed(c, position, market, user, &bump));
    TRY(config_seeds(c, config));
    TRY(market_constraints(c, market, STATE_ACTIVE, E_INVALID_MARKET_STATE));
    TRY(need_mut(user));
    TRY(fee_wallet_constraints(config, fee_wallet));

    Market *m = &c->market;
    if (config_paused(config)) return E_PROTOCOL_PAUSED;
    if (target_cost < MIN_TRADE_AMOUNT) return E_TRADE_TOO_SMALL;
    u64 budget, total_cost;
    TRY(buy_budget(target_cost, &budget));
    Pool pool = {m->shares_yes, m->shares_no, m->b_parameter};
    Quote quote;
    TRY(lmsr_buy(&pool, yes, budget, &quote));
    u64 shares = quote.shares, cost = quote.cost;
    Fees fees;
    TRY(fee_split_of(config, cost, &fees));
    TRY(checked_add(cost, fees.total, &total_cost));
    if (total_cost > target_cost) return E_SLIPPAGE_EXCEEDED;
    TRY(system_transfer(c, user, market, total_cost - fees.protocol));
    TRY(system_transfer(c, user, fee_wallet, fees.protocol));

    u64 *side = yes ? &m->shares_yes : &m->shares_no;
    TRY(checked_add(*side, shares, side));
    TRY(checked_add(m->total_volume, total_cost, &m->total_volume));
    TRY(checked_add(m->current_liquidity, fees.resolver, &m->current_liquidity));
    TRY(checked_add(m->current_liquidity, fees.lp, &m->current_liquidity));
    TRY(checked_add(m->accumulated_resolver_fees, fees.resolver, &m->accumulated_resolver_fees));
    TRY(checked_add(m->accumulated_lp_fees, fees.lp, &m->accumulated_lp_fees));

    u8 *p = position->data;
    if (rd_u32(p + UP_TRADES_COUNT) == 0) {
        Writer w = {p};
        w_u64(&w, DISC_USER_POSITION);
        w_bytes(&w, market->key, 32);
        w_bytes(&w, user->key, 32);
        w_u64(&w, 0); /* shares_yes */
        w_u64(&w, 0); /* shares_no */
        w_u64(&w, 0); /* total_invested */
        w_u32(&w, 0); /* trades_count */
        p[UP_HAS_CLAIMED] = 0;
        p[UP_BUMP] = bump;
    }
    i64 t = now(c);
    add_at(p + (yes ? UP_SHARES_YES : UP_SHARES_NO), shares);
    add_at(p + UP_TOTAL_INVESTED, total_cost);
    Writer pw = {p + UP_TRADES_COUNT};
    w_u32(&pw, rd_u32(p + UP_TRADES_COUNT) + 1);
    w_i64(&pw, t);
    store_market(c, market);

    u64 price;
    TRY(lmsr_yes_price(m->shares_yes, m->shares_no, m->b_parameter, &price));
    Writer e = event_begin(c, EV_SHARES_BOUGHT);
    w_bytes(&e, m->market_id, 32);
    w_bytes(&e, user->key, 32);
    w_u8(&e, yes);
    w_u64(&e, shares);
    w_u64(&e, total_cost);
    w_u64(&e, price);
    w_i64(&e, t);
    event_emit(c, &e);
    return 0;
}

/* accounts: global_config, market (w), position (w), user (w, s), protocol_fee_wallet (w),
 * system_program;  args: outcome bool, shares_to_sell u64, min_proceeds u64 (net of fees) */
static u64 ix_sell_shares(Ctx *c) {
    Reader r = args_reader(c);
    bool yes = r_bool(&r);
    u64 n = r_u64(&r), min_proceeds = r_u64(&r);
    if (!r.ok) return A_INSTRUCTION_DID_NOT_DESERIALIZE;
    static const u8 kinds[] = {K_CONFIG, K_MARKET, K_POSITION, K_SIGNER, K_UNCHECKED,
                               K_SYSTEM_PROGRAM};
    TRY(load_accounts(c, kinds, 6));
    SolAccountInfo *config = acct(c, 0), *market = acct(c, 1), *position = acct(c, 2);
    SolAccountInfo *user = acct(c, 3), *fee_wallet = acct(c, 4);
    TRY(config_seeds(c, config));
    TRY(market_constraints(c, market, STATE_ACTIVE, E_INVALID_MARKET_STATE));
    TRY(position_seeds(c, position, market, user));
    TRY(need_mut(position));
    if (!key_eq(user->key, (const SolPubkey *)(position->data + UP_USER))) return E_UNAUTHORIZED;
    TRY(need_mut(user));
    TRY(fee_wallet_constraints(config, fee_wallet));

    Market *m = &c->market;
    u8 *p = position->data;
    if (config_paused(config)) return E_PROTOCOL_PAUSED;
    u8 *held = p + (yes ? UP_SHARES_YES : UP_SHARES_NO);
    if (rd_u64(held) < n) return E_INSUFFICIENT_SHARES;
    u64 gross, net, payout;
    Pool pool = {m->shares_yes, m->shares_no, m->b_parameter};
    TRY(lmsr_sell(&pool, yes, n, &gross));
    if (gross < MIN_TRADE_AMOUNT) return E_TRADE_TOO_SMALL;
    Fees fees;
    TRY(fee_split_of(config, gross, &fees));
    TRY(checked_sub(gross, fees.total, &net));
    if (net < min_proceeds) return E_SLIPPAGE_EXCEEDED;
    TRY(checked_add(net, fees.protocol, &payout));
    if (m->current_liquidity < payout) return E_INSUFFICIENT_LIQUIDITY;

    i64 t = now(c);
    u64 *side = yes ? &m->shares_yes : &m->shares_no;
    *side -= n;
    TRY(checked_add(m->total_volume, gross, &m->total_volume));
    m->current_liquidity -= payout;
    TRY(checked_add(m->accumulated_resolver_fees, fees.resolver, &m->accumulated_resolver_fees));
    TRY(checked_add(m->accumulated_lp_fees, fees.lp, &m->accumulated_lp_fees));
    Writer hw = {held};
    w_u64(&hw, rd_u64(held) - n);
    Writer pw = {p + UP_TRADES_COUNT};
    w_u32(&pw, rd_u32(p + UP_TRADES_COUNT) + 1);
    w_i64(&pw, t);
    m->is_locked = true;

    if (*market->lamports < net) return E_INSUFFICIENT_FUNDS;
    if (*market->lamports - net < rent_minimum(market->data_len))
        return E_WOULD_BREAK_RENT_EXEMPTION;
#ifdef ZMART_FIXED_PROGRAM
    TRY(pay_from_market(market, user, net, E_INSUFFICIENT_FUNDS));
    TRY(pay_from_market(market, fee_wallet, fees.protocol, E_INSUFFICIENT_FUNDS));
#else
    /* The deployed program's payout: rejected by the runtime, nothing below runs. */
    TRY(system_transfer(c, market, user, net));
#endif
    m->is_locked = false;
    store_market(c, market);

    u64 price;
    TRY(lmsr_yes_price(m->shares_yes, m->shares_no, m->b_parameter, &price));
    Writer e = event_begin(c, EV_SHARES_SOLD);
    w_bytes(&e, m->market_id, 32);
    w_bytes(&e, user->key, 32);
    w_u8(&e, yes);
    w_u64(&e, n);
    w_u64(&e, net);
    w_u64(&e, price);
    w_i64(&e, t);
    event_emit(c, &e);
    return 0;
}
