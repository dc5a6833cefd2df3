/* Little-endian Borsh writer and reader over raw buffers. */
#ifndef ZMART_BORSH_H
#define ZMART_BORSH_H

#include "sbf.h"

typedef struct {
    u8 *p;
} Writer;

static void w_u8(Writer *w, u8 v) { *w->p++ = v; }
static void w_le(Writer *w, u64 v, int n) {
    for (int i = 0; i < n; i++) {
        *w->p++ = (u8)v;
        v >>= 8;
    }
}
static void w_u16(Writer *w, u16 v) { w_le(w, v, 2); }
static void w_u32(Writer *w, u32 v) { w_le(w, v, 4); }
static void w_u64(Writer *w, u64 v) { w_le(w, v, 8); }
static void w_i64(Writer *w, i64 v) { w_le(w, (u64)v, 8); }
static void w_bytes(Writer *w, const void *src, u64 n) {
    sol_memcpy_(w->p, src, n);
    w->p += n;
}
static void w_opt_bool(Writer *w, bool some, bool v) {
    w_u8(w, some);
    if (some) w_u8(w, v);
}
static void w_opt_i64(Writer *w, bool some, i64 v) {
    w_u8(w, some);
    if (some) w_i64(w, v);
}

/* Reader: `ok` turns false on a short buffer or a bad option/bool tag, never traps. */
typedef struct {
    const u8 *p;
    const u8 *end;
    bool ok;
} Reader;

static bool r_take(Reader *r, u64 n) {
    if (!r->ok || (u64)(r->end - r->p) < n) {
        r->ok = false;
        return false;
    }
    return true;
}
static u8 r_u8(Reader *r) { return r_take(r, 1) ? *r->p++ : 0; }
static u64 r_le(Reader *r, int n) {
    if (!r_take(r, n)) return 0;
    u64 v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | r->p[i];
    r->p += n;
    return v;
}
static u32 r_u32(Reader *r) { return (u32)r_le(r, 4); }
static u64 r_u64(Reader *r) { return r_le(r, 8); }
static i64 r_i64(Reader *r) { return (i64)r_le(r, 8); }
static bool r_bool(Reader *r) {
    u8 v = r_u8(r);
    if (v > 1) r->ok = false;
    return v == 1;
}
static void r_bytes(Reader *r, void *dst, u64 n) {
    if (!r_take(r, n)) return;
    sol_memcpy_(dst, r->p, n);
    r->p += n;
}
static bool r_opt_tag(Reader *r) { return r_bool(r); }

#endif
