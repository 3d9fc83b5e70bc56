#ifndef SWITCHYARD_CHIREDIS_SHIM_H
#define SWITCHYARD_CHIREDIS_SHIM_H

#include <hiredis/hiredis.h>

/*
 * hiredis 1.x added RESP3 reply types and a dedicated timeout error; 0.14 (Debian
 * bookworm) has neither. Defining the missing constants with 1.x's values lets the Swift
 * wrapper compile against both: with 0.14 these types are simply never produced, and
 * REDIS_ERR_TIMEOUT (6) is unused by 0.14, which reports timeouts as REDIS_ERR_IO.
 */
#ifndef REDIS_REPLY_DOUBLE
#define REDIS_REPLY_DOUBLE 7
#endif
#ifndef REDIS_REPLY_BOOL
#define REDIS_REPLY_BOOL 8
#endif
#ifndef REDIS_REPLY_MAP
#define REDIS_REPLY_MAP 9
#endif
#ifndef REDIS_REPLY_SET
#define REDIS_REPLY_SET 10
#endif
#ifndef REDIS_REPLY_ATTR
#define REDIS_REPLY_ATTR 11
#endif
#ifndef REDIS_REPLY_PUSH
#define REDIS_REPLY_PUSH 12
#endif
#ifndef REDIS_REPLY_BIGNUM
#define REDIS_REPLY_BIGNUM 13
#endif
#ifndef REDIS_REPLY_VERB
#define REDIS_REPLY_VERB 14
#endif
#ifndef REDIS_ERR_TIMEOUT
#define REDIS_ERR_TIMEOUT 6
#endif

#endif
