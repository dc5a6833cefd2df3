/* Fixed-width integer names shared by the SBF programs and the host build of the math
 * (no libc on SBF: these are the only types the sources use). */
#ifndef ZMART_TYPES_H
#define ZMART_TYPES_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long u64;
typedef long i64;
typedef int i32;
typedef _Bool bool;
#define true 1
#define false 0
#define NULL ((void *)0)

#endif
