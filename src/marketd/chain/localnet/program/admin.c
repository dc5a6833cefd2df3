/* GlobalConfig instructions of the twin (PROGRAM.md §3.1, §3.15, §3.16). Included by zmart_twin.c. */

#define DEFAULT_PROTOCOL_FEE_BPS 300
#define DEFAULT_RESOLVER_REWARD_BPS 200
#define DEFAULT_LP_FEE_BPS 500
#define DEFAULT_PROPOSAL_THRESHOLD 7000
#define DEFAULT_DISPUTE_THRESHOLD 6000
#define DEFAULT_MIN_RESOLUTION_DELAY 86400
#define DEFAULT_DISPUTE_PERIOD 259200
#define DEFAULT_MIN_RESOLVER_REPUTATION 8000

/* accounts: admin (w, s), global_config (w, init), protocol_fee_wallet, system_program
 * Whoever calls first becomes admin; a second call fails in the system program (Custom(0)). */
static u64 ix_initialize_global_config(Ctx *c) {
    Reader r = args_reader(c);
    u8 backend[32];
    r_bytes(&r, backend, 32);
    if (!r.ok) return A_INSTRUCTION_DID_NOT_DESERIALIZE;
    static const u8 kinds[] = {K_SIGNER, K_UNCHECKED, K_UNCHECKED, K_SYSTEM_PROGRAM};
    TRY(load_accounts(c, kinds, 4));
    SolAccountInfo *admin = acct(c, 0), *config = acct(c, 1), *fee_wallet = acct(c, 2);
    c->seeds[0] = (SolBytes){(const u8 *)"global-config", 13};
    TRY(init_pda(c, admin, config, 1, SPACE_GLOBAL_CONFIG));
    TRY(need_mut(admin));

    Writer w = {config->data};
    w_u64(&w, DISC_GLOBAL_CONFIG);
    w_bytes(&w, admin->key, 32);
    w_bytes(&w, backend, 32);
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
    w_bytes(&e, backend, 32);
    w_u16(&e, DEFAULT_PROTOCOL_FEE_BPS);
    w_i64(&e, now(c));
    event_emit(c, &e);
    return 0;
}

/* Shared account checks of update_global_config / emergency_pause.
 * accounts: admin (s), global_config (w) */
static u64 admin_config_accounts(Ctx *c) {
    static const u8 kinds[] = {K_SIGNER, K_CONFIG};
    TRY(load_accounts(c, kinds, 2));
    SolAccountInfo *admin = acct(c, 0), *config = acct(c, 1);
    TRY(config_seeds(c, config));
    TRY(need_mut(config));
    return key_eq(admin->key, (const SolPubkey *)(config->data + GC_ADMIN)) ? 0 : E_UNAUTHORIZED;
}

static bool r_opt_i64(Reader *r, i64 *value) {
    bool some = r_opt_tag(r);
    *value = some ? r_i64(r) : 0;
    return some;
}

/* args: five u16 (fees bps, thresholds), min_resolution_delay Option<i64>, dispute_period
 * Option<i64>. A zero fee sum is accepted (every buy then fails with DivisionByZero). */
static u64 ix_update_global_config(Ctx *c) {
    Reader r = args_reader(c);
    u16 v[5];
    for (int i = 0; i < 5; i++) v[i] = (u16)r_le(&r, 2);
    i64 delay, period;
    bool has_delay = r_opt_i64(&r, &delay);
    bool has_period = r_opt_i64(&r, &period);
    if (!r.ok) return A_INSTRUCTION_DID_NOT_DESERIALIZE;
    TRY(admin_config_accounts(c));
    SolAccountInfo *config = acct(c, 1);
    if ((u32)v[0] + v[1] + v[2] > BPS_DENOMINATOR) return E_INVALID_FEE_STRUCTURE;
    if (v[3] > BPS_DENOMINATOR || v[4] > BPS_DENOMINATOR) return E_INVALID_THRESHOLD;
    if ((has_delay && delay <= 0) || (has_period && period <= 0)) return E_INVALID_TIME_LIMIT;

    Writer w = {config->data + GC_PROTOCOL_FEE_BPS};
    for (int i = 0; i < 5; i++) w_u16(&w, v[i]);
    if (has_delay) {
        Writer d = {config->data + GC_MIN_RESOLUTION_DELAY};
        w_i64(&d, delay);
    }
    if (has_period) {
        Writer d = {config->data + GC_DISPUTE_PERIOD};
        w_i64(&d, period);
    }

    Writer e = event_begin(c, EV_CONFIG_UPDATED);
    for (int i = 0; i < 5; i++) w_u16(&e, v[i]);
    w_i64(&e, (i64)rd_u64(config->data + GC_MIN_RESOLUTION_DELAY));
    w_i64(&e, (i64)rd_u64(config->data + GC_DISPUTE_PERIOD));
    w_i64(&e, now(c));
    event_emit(c, &e);
    return 0;
}

/* Toggles is_paused; the pause gates only create_market, buy_shares and sell_shares. */
static u64 ix_emergency_pause(Ctx *c) {
    TRY(admin_config_accounts(c));
    SolAccountInfo *admin = acct(c, 0), *config = acct(c, 1);
    bool paused = !config_paused(config);
    config->data[GC_IS_PAUSED] = paused;

    Writer e = event_begin(c, EV_PROTOCOL_PAUSE_STATUS_CHANGED);
    w_u8(&e, paused);
    w_bytes(&e, admin->key, 32);
    w_i64(&e, now(c));
    event_emit(c, &e);
    return 0;
}
