/* zmart_twin: the faithful twin of the zmart_core Anchor program (PROGRAM.md), for LiteSVM.
 *
 * It reproduces zmart_core's behaviour, defects included: the Anchor framework passes
 * (anchor.h), the bit-exact LMSR (lmsr.h, fixed.h) and the 18 instructions, one file per
 * family. Built twice: as deployed (sell_shares fails with PrivilegeEscalation) and with
 * -DZMART_FIXED_PROGRAM (sell_shares pays out). */
#include "anchor.h"

#define IX_ACTIVATE_MARKET 0x5948637174c51a0aUL
#define IX_AGGREGATE_DISPUTE_VOTES 0x19708dd4131e0e4aUL
#define IX_AGGREGATE_PROPOSAL_VOTES 0x48cab0b915129c1aUL
#define IX_APPROVE_PROPOSAL 0x9307726255666c88UL
#define IX_BUY_SHARES 0x6c6a25089a8aef28UL
#define IX_CANCEL_MARKET 0x0b9647ded25479cdUL
#define IX_CLAIM_WINNINGS 0xddf2ec0e3b18d7a1UL
#define IX_CREATE_MARKET 0xfefbbcc8eb61e267UL
#define IX_EMERGENCY_PAUSE 0xffd2b5c88e1b8f15UL
#define IX_FINALIZE_MARKET 0xf701d9d51c26e110UL
#define IX_INITIALIZE_GLOBAL_CONFIG 0x3716d1e1837ad871UL
#define IX_INITIATE_DISPUTE 0x25ab3d2c17a0f280UL
#define IX_RESOLVE_MARKET 0xef174a2ead50179bUL
#define IX_SELL_SHARES 0xc4c79ee710a9a4b8UL
#define IX_SUBMIT_DISPUTE_VOTE 0xe648eb98423ddf31UL
#define IX_SUBMIT_PROPOSAL_VOTE 0xf00eb91de63bbbb1UL
#define IX_UPDATE_GLOBAL_CONFIG 0xc8fa3a6fbd8254a4UL
#define IX_WITHDRAW_LIQUIDITY 0x1ffdf32fb9219e95UL

#define EV_CONFIG_UPDATED 0xc2c6130b7ae6f128UL
#define EV_DISPUTE_AGGREGATED 0x2669244ba0d2113aUL
#define EV_DISPUTE_INITIATED 0x99b704c6fc5d6d96UL
#define EV_DISPUTE_VOTE_SUBMITTED 0x72c10a4ec3d50227UL
#define EV_GLOBAL_CONFIG_INITIALIZED 0x719d574d9eacdd05UL
#define EV_LIQUIDITY_WITHDRAWN 0x44da1f9a8b4978f0UL
#define EV_MARKET_ACTIVATED 0x0b6b84bb304e49c4UL
#define EV_MARKET_CANCELLED 0xaa51b413a821a38bUL
#define EV_MARKET_CREATED 0x3a0654e2e782b858UL
#define EV_MARKET_FINALIZED 0xb3ea4c25cc423e53UL
#define EV_MARKET_RESOLVED 0xcac76a8f5fe64359UL
#define EV_PROPOSAL_AGGREGATED 0xd58bf33c7647a6eaUL
#define EV_PROPOSAL_APPROVED 0x31582b9de49b3146UL
#define EV_PROPOSAL_VOTE_SUBMITTED 0x3806a2d9028f439cUL
#define EV_PROTOCOL_PAUSE_STATUS_CHANGED 0x6731236701d896bdUL
#define EV_SHARES_BOUGHT 0x41e2eafd0a4562f0UL
#define EV_SHARES_SOLD 0xfb719ee43505e723UL
#define EV_WINNINGS_CLAIMED 0x96467536c41db8bbUL

#include "admin.c"
#include "market.c"
#include "voting.c"
#include "trading.c"
#include "settle.c"

static u64 dispatch(Ctx *c) {
    switch (rd_u64(c->in.data)) {
    case IX_INITIALIZE_GLOBAL_CONFIG:
        return ix_initialize_global_config(c);
    case IX_UPDATE_GLOBAL_CONFIG:
        return ix_update_global_config(c);
    case IX_EMERGENCY_PAUSE:
        return ix_emergency_pause(c);
    case IX_CREATE_MARKET:
        return ix_create_market(c);
    case IX_APPROVE_PROPOSAL:
        return ix_approve_proposal(c);
    case IX_ACTIVATE_MARKET:
        return ix_activate_market(c);
    case IX_CANCEL_MARKET:
        return ix_cancel_market(c);
    case IX_SUBMIT_PROPOSAL_VOTE:
        return ix_submit_vote(c, VOTE_TYPE_PROPOSAL);
    case IX_SUBMIT_DISPUTE_VOTE:
        return ix_submit_vote(c, VOTE_TYPE_DISPUTE);
    case IX_AGGREGATE_PROPOSAL_VOTES:
        return ix_aggregate_proposal_votes(c);
    case IX_AGGREGATE_DISPUTE_VOTES:
        return ix_aggregate_dispute_votes(c);
    case IX_BUY_SHARES:
        return ix_buy_shares(c);
    case IX_SELL_SHARES:
        return ix_sell_shares(c);
    case IX_RESOLVE_MARKET:
        return ix_resolve_market(c);
    case IX_INITIATE_DISPUTE:
        return ix_initiate_dispute(c);
    case IX_FINALIZE_MARKET:
        return ix_finalize_market(c);
    case IX_CLAIM_WINNINGS:
        return ix_claim_winnings(c);
    case IX_WITHDRAW_LIQUIDITY:
        return ix_withdraw_liquidity(c);
    default:
        return A_INSTRUCTION_FALLBACK_NOT_FOUND;
    }
}

u64 entrypoint(u8 *input) {
    Ctx *c = ctx();
    if (!parse_input(input, &c->in)) return fail_with(c, A_NOT_ENOUGH_KEYS);
    if (c->in.data_len < 8) return fail_with(c, A_INSTRUCTION_FALLBACK_NOT_FOUND);
    u64 err = dispatch(c);
    return err == 0 ? 0 : fail_with(c, err);
}
