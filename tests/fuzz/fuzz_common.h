/*
 * fuzz_common.h --
 *
 *	Shared by the libFuzzer harnesses of tests/fuzz/: the invariant
 *	check macro, one-time Tcl initialisation and the "known bugs" switch.
 *
 *	The harnesses and the extension sources they test are compiled with
 *	-DTcl_Alloc=TtoFuzzAlloc (and the other four Tcl_*Alloc/Free names,
 *	see run.sh), so every ckalloc/ckfree of ttoauth2 goes through
 *	fuzz_alloc.c to plain malloc/free.  Tcl's own threaded allocator
 *	carves small blocks out of big chunks, which would hide overflows and
 *	leaks of the extension's buffers from AddressSanitizer and
 *	LeakSanitizer.  Memory that libtcl allocates itself (Tcl_DString
 *	buffers, Tcl_Obj) still comes from libtcl's allocator.
 */

#ifndef TTO_FUZZ_COMMON_H
#define TTO_FUZZ_COMMON_H

#include "ttoauth2Int.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * FUZZ_CHECK(cond, fmt, ...): abort() with a message when an invariant
 * does not hold.  libFuzzer then saves the input as a crash.
 */

#define FUZZ_CHECK(cond, ...)						\
    do {								\
	if (!(cond)) {							\
	    fprintf(stderr, "\n*** ttoauth2 fuzz invariant violated at "	\
		    "%s:%d: %s\n*** ", __FILE__, __LINE__, #cond);	\
	    fprintf(stderr, __VA_ARGS__);				\
	    fputc('\n', stderr);					\
	    abort();							\
	}								\
    } while (0)

/*
 * Once per process: Tcl's notion of the executable and encodings.  No
 * interp is needed for ckalloc or Tcl_DString.
 */

static inline void
FuzzTclInit(void)
{
    static int done = 0;

    if (!done) {
	done = 1;
	Tcl_FindExecutable(NULL);
    }
}

/*
 * The libFuzzer entry that sets Tcl up, for every harness that needs no
 * more (a harness with its own defines FUZZ_OWN_INITIALIZE first).
 */

#ifndef FUZZ_OWN_INITIALIZE
int
LLVMFuzzerInitialize(
    int *argcPtr,
    char ***argvPtr)
{
    (void) argcPtr;
    (void) argvPtr;
    FuzzTclInit();
    return 0;
}
#endif

/*
 * TTO_FUZZ_SKIP_KNOWN=1 in the environment makes the harnesses steer
 * around bugs that are already reported and not fixed yet (each use is
 * marked KNOWN BUG in the harness), so that a long run can look for new
 * ones.  Unset (the default, and always for the regression replay), the
 * harnesses exercise everything.
 */

static inline int
FuzzSkipKnown(void)
{
    static int value = -1;

    if (value < 0) {
	const char *s = getenv("TTO_FUZZ_SKIP_KNOWN");

	value = (s != NULL && *s != '\0' && strcmp(s, "0") != 0);
    }
    return value;
}

/* Counted-bytes helpers. */

static inline char *
FuzzDup(
    const uint8_t *data,
    size_t len)
{
    char *s = malloc(len + 1);

    if (s == NULL) {
	abort();
    }
    memcpy(s, data, len);
    s[len] = '\0';
    return s;
}

static inline int
FuzzIsAscii(
    const uint8_t *data,
    size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
	if (data[i] == 0 || data[i] >= 0x80) {
	    return 0;
	}
    }
    return 1;
}

#endif /* TTO_FUZZ_COMMON_H */
