/* Account layouts of zmart_core (8-byte discriminator + Borsh), as in its IDL. */
#ifndef ZMART_STATE_H
#define ZMART_STATE_H

#include "borsh.h"
#include "sbf.h"

/* sha256("account:<Name>")[:8] as little-endian u64 */
#define DISC_GLOBAL_CONFIG 0xd9b0fca0ca9c0895UL
#define DISC_MARKET_ACCOUNT 0xfbc9c6f0e1bb4ec9UL
#define DISC_USER_POSITION 0x1b11ea53f5d1f8fbUL
#define DISC_VOTE_RECORD 0xa79d09eaa57b0970UL

/* GlobalConfig: fixed layout (no Option fields), byte offsets from the account start */
#define GC_ADMIN 8
#define GC_BACKEND_AUTHORITY 40
#define GC_PROTOCOL_FEE_WALLET 72
#define GC_PROTOCOL_FEE_BPS 104
#define GC_RESOLVER_REWARD_BPS 106
#define GC_LIQUIDITY_PROVIDER_FEE_BPS 108
#define GC_PROPOSAL_APPROVAL_THRESHOLD 110
#define GC_DISPUTE_SUCCESS_THRESHOLD 112
#define GC_MIN_RESOLUTION_DELAY 114
#define GC_DISPUTE_PERIOD 122
#define GC_MIN_RESOLVER_REPUTATION 130
#define GC_IS_PAUSED 132
#define GC_RESERVED 133
#define GC_BUMP 197

/* UserPosition: fixed layout */
#define UP_MARKET 8
#define UP_USER 40
#define UP_SHARES_YES 72
#define UP_SHARES_NO 80
#define UP_TOTAL_INVESTED 88
#define UP_TRADES_COUNT 96
#define UP_LAST_TRADE_AT 100
#define UP_HAS_CLAIMED 108
#define UP_CLAIMED_AMOUNT 109
#define UP_RESERVED 117
#define UP_BUMP 181

/* VoteRecord: fixed layout; seeds ["vote", market, user, [vote_type]] */
#define VR_MARKET 8
#define VR_USER 40
#define VR_VOTE_TYPE 72
#define VR_VOTE 73
#define VR_VOTED_AT 74
#define VR_BUMP 82
#define VOTE_TYPE_PROPOSAL 0
#define VOTE_TYPE_DISPUTE 1

enum MarketState {
    STATE_PROPOSED = 0,
    STATE_APPROVED = 1,
    STATE_ACTIVE = 2,
    STATE_RESOLVING = 3,
    STATE_DISPUTED = 4,
    STATE_FINALIZED = 5,
    STATE_CANCELLED = 6,
};

/* MarketAccount has Option fields, so offsets move: it is decoded into this struct. */
typedef struct {
    u8 market_id[32];
    u8 creator[32];
    u8 state;
    u64 b_parameter;
    u64 initial_liquidity;
    u64 current_liquidity;
    u64 shares_yes;
    u64 shares_no;
    u64 total_volume;
    i64 created_at;
    i64 approved_at;
    i64 activated_at;
    i64 resolution_proposed_at;
    i64 resolved_at;
    i64 finalized_at;
    u8 resolver[32];
    bool has_proposed_outcome;
    bool proposed_outcome;
    bool has_final_outcome;
    bool final_outcome;
    u8 ipfs_evidence_hash[46];
    i64 dispute_initiated_at;
    u8 dispute_initiator[32];
    u64 accumulated_protocol_fees;
    u64 accumulated_resolver_fees;
    u64 accumulated_lp_fees;
    u32 proposal_likes;
    u32 proposal_dislikes;
    u32 proposal_total_votes;
    u32 resolution_agree;
    u32 resolution_disagree;
    u32 resolution_total_votes;
    u32 dispute_agree;
    u32 dispute_disagree;
    u32 dispute_total_votes;
    bool was_disputed;
    bool is_cancelled;
    bool has_cancelled_at;
    i64 cancelled_at;
    bool is_locked;
    u8 reserved[119];
    u8 bump;
} Market;

static bool market_decode(const u8 *data, u64 len, Market *m) {
    Reader r = {data + 8, data + len, true};
    r_bytes(&r, m->market_id, 32);
    r_bytes(&r, m->creator, 32);
    m->state = r_u8(&r);
    if (m->state > STATE_CANCELLED) return false;
    m->b_parameter = r_u64(&r);
    m->initial_liquidity = r_u64(&r);
    m->current_liquidity = r_u64(&r);
    m->shares_yes = r_u64(&r);
    m->shares_no = r_u64(&r);
    m->total_volume = r_u64(&r);
    m->created_at = r_i64(&r);
    m->approved_at = r_i64(&r);
    m->activated_at = r_i64(&r);
    m->resolution_proposed_at = r_i64(&r);
    m->resolved_at = r_i64(&r);
    m->finalized_at = r_i64(&r);
    r_bytes(&r, m->resolver, 32);
    m->has_proposed_outcome = r_opt_tag(&r);
    m->proposed_outcome = m->has_proposed_outcome ? r_bool(&r) : false;
    m->has_final_outcome = r_opt_tag(&r);
    m->final_outcome = m->has_final_outcome ? r_bool(&r) : false;
    r_bytes(&r, m->ipfs_evidence_hash, 46);
    m->dispute_initiated_at = r_i64(&r);
    r_bytes(&r, m->dispute_initiator, 32);
    m->accumulated_protocol_fees = r_u64(&r);
    m->accumulated_resolver_fees = r_u64(&r);
    m->accumulated_lp_fees = r_u64(&r);
    m->proposal_likes = r_u32(&r);
    m->proposal_dislikes = r_u32(&r);
    m->proposal_total_votes = r_u32(&r);
    m->resolution_agree = r_u32(&r);
    m->resolution_disagree = r_u32(&r);
    m->resolution_total_votes = r_u32(&r);
    m->dispute_agree = r_u32(&r);
    m->dispute_disagree = r_u32(&r);
    m->dispute_total_votes = r_u32(&r);
    m->was_disputed = r_bool(&r);
    m->is_cancelled = r_bool(&r);
    m->has_cancelled_at = r_opt_tag(&r);
    m->cancelled_at = m->has_cancelled_at ? r_i64(&r) : 0;
    m->is_locked = r_bool(&r);
    r_bytes(&r, m->reserved, 119);
    m->bump = r_u8(&r);
    return r.ok;
}

static void market_encode(const Market *m, u8 *data) {
    Writer w = {data};
    w_u64(&w, DISC_MARKET_ACCOUNT);
    w_bytes(&w, m->market_id, 32);
    w_bytes(&w, m->creator, 32);
    w_u8(&w, m->state);
    w_u64(&w, m->b_parameter);
    w_u64(&w, m->initial_liquidity);
    w_u64(&w, m->current_liquidity);
    w_u64(&w, m->shares_yes);
    w_u64(&w, m->shares_no);
    w_u64(&w, m->total_volume);
    w_i64(&w, m->created_at);
    w_i64(&w, m->approved_at);
    w_i64(&w, m->activated_at);
    w_i64(&w, m->resolution_proposed_at);
    w_i64(&w, m->resolved_at);
    w_i64(&w, m->finalized_at);
    w_bytes(&w, m->resolver, 32);
    w_opt_bool(&w, m->has_proposed_outcome, m->proposed_outcome);
    w_opt_bool(&w, m->has_final_outcome, m->final_outcome);
    w_bytes(&w, m->ipfs_evidence_hash, 46);
    w_i64(&w, m->dispute_initiated_at);
    w_bytes(&w, m->dispute_initiator, 32);
    w_u64(&w, m->accumulated_protocol_fees);
    w_u64(&w, m->accumulated_resolver_fees);
    w_u64(&w, m->accumulated_lp_fees);
    w_u32(&w, m->proposal_likes);
    w_u32(&w, m->proposal_dislikes);
    w_u32(&w, m->proposal_total_votes);
    w_u32(&w, m->resolution_agree);
    w_u32(&w, m->resolution_disagree);
    w_u32(&w, m->resolution_total_votes);
    w_u32(&w, m->dispute_agree);
    w_u32(&w, m->dispute_disagree);
    w_u32(&w, m->dispute_total_votes);
    w_u8(&w, m->was_disputed);
    w_u8(&w, m->is_cancelled);
    w_opt_i64(&w, m->has_cancelled_at, m->cancelled_at);
    w_u8(&w, m->is_locked);
    w_bytes(&w, m->reserved, 119);
    w_u8(&w, m->bump);
}

#endif
