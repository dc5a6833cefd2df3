/* Error codes, names and messages from zmart_core's IDL (custom errors start at 6000) plus
 * the Anchor framework errors the stand-in can raise. Each failure logs Anchor's line
 * ("AnchorError occurred. Error Code: ...") and returns the code as ProgramError::Custom. */
#ifndef ZMART_ERRORS_H
#define ZMART_ERRORS_H

#include "sbf.h"

#define ZMART_ERRORS(X)                                                                    \
    X(InstructionFallbackNotFound, 101, "Fallback functions are not supported")            \
    X(InstructionDidNotDeserialize, 102,                                                   \
      "The program could not deserialize the given instruction")                           \
    X(AccountNotEnoughKeys, 3005, "Not enough account keys given to the instruction")      \
    X(AlreadyInitialized, 6003, "Global config already initialized")                       \
    X(InvalidGlobalConfig, 6005, "Invalid global config: must be canonical PDA")           \
    X(InvalidStateTransition, 6006, "Invalid state transition")                            \
    X(InvalidMarketState, 6007, "Market not in required state")                            \
    X(ProtocolPaused, 6010, "Protocol is paused")                                          \
    X(CannotCancelMarket, 6011, "Cannot cancel market in current state")                   \
    X(MarketAlreadyCancelled, 6012, "Market is already cancelled")                         \
    X(ZeroAmount, 6013, "Trading amount must be greater than zero")                        \
    X(InsufficientShares, 6014, "Insufficient shares to sell")                             \
    X(SlippageExceeded, 6015, "Slippage tolerance exceeded")                               \
    X(InsufficientLiquidity, 6016, "Insufficient liquidity")                               \
    X(TradeTooSmall, 6018, "Trade amount below minimum (0.00001 SOL)")                     \
    X(DisputePeriodEnded, 6020, "Dispute period ended")                                    \
    X(NoVotesRecorded, 6024, "No votes recorded")                                          \
    X(InsufficientVotes, 6025, "Insufficient votes to meet threshold")                     \
    X(DisputePeriodNotEnded, 6027, "Dispute period not ended")                             \
    X(AlreadyDisputed, 6028, "Already disputed")                                           \
    X(Unauthorized, 6029, "Unauthorized")                                                  \
    X(OverflowError, 6033, "Arithmetic overflow")                                          \
    X(InvalidInput, 6040, "Invalid input value")                                           \
    X(InvalidBParameter, 6042, "Invalid LMSR b parameter")                                 \
    X(InvalidMarketId, 6043, "Invalid market ID")                                          \
    X(AlreadyVoted, 6050, "User already voted")                                            \
    X(InvalidStateForVoting, 6051, "Invalid state for voting")

#define ZMART_DEFINE_FAIL(name, code, message)                                             \
    static u64 __attribute__((noinline, unused)) fail_##name(void) {                      \
        LOG("AnchorError occurred. Error Code: " #name ". Error Number: " #code            \
            ". Error Message: " message ".");                                              \
        return code;                                                                       \
    }

ZMART_ERRORS(ZMART_DEFINE_FAIL)

/* `return FAIL(Unauthorized);` */
#define FAIL(name) fail_##name()

#endif
