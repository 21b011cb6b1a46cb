/*
 * fuzz_alloc.c --
 *
 *	ckalloc and friends for the fuzzers: plain malloc/free, so that
 *	AddressSanitizer sees the exact bounds of every buffer ttoauth2
 *	allocates and LeakSanitizer sees every one it forgets.  The extension
 *	sources are compiled with -DTcl_Alloc=TtoFuzzAlloc etc. (run.sh);
 *	this file must not include tcl.h, so the names are not renamed here.
 *
 *	Only ttoauth2's own ckalloc/ckfree calls land here; everything
 *	libtcl allocates is freed by libtcl, and ttoauth2 never frees memory
 *	that Tcl allocated (or the reverse) in the fuzzed code.
 */

#include <stdio.h>
#include <stdlib.h>

char *TtoFuzzAlloc(unsigned int size);
void TtoFuzzFree(char *ptr);
char *TtoFuzzRealloc(char *ptr, unsigned int size);
char *TtoFuzzAttemptAlloc(unsigned int size);
char *TtoFuzzAttemptRealloc(char *ptr, unsigned int size);

char *
TtoFuzzAlloc(
    unsigned int size)
{
    char *p = malloc(size ? size : 1);

    if (p == NULL) {
	fprintf(stderr, "ckalloc(%u) failed\n", size);
	abort();			/* Tcl_Alloc panics */
    }
    return p;
}

void
TtoFuzzFree(
    char *ptr)
{
    free(ptr);
}

char *
TtoFuzzRealloc(
    char *ptr,
    unsigned int size)
{
    char *p = realloc(ptr, size ? size : 1);

    if (p == NULL) {
	fprintf(stderr, "ckrealloc(%u) failed\n", size);
	abort();
    }
    return p;
}

char *
TtoFuzzAttemptAlloc(
    unsigned int size)
{
    return malloc(size ? size : 1);
}

char *
TtoFuzzAttemptRealloc(
    char *ptr,
    unsigned int size)
{
    return realloc(ptr, size ? size : 1);
}

/*
 * What the linked sources reference but no harness reaches: a cancel flag
 * (ttoauth2Listen.c), the PKCE challenge (ttoauth2Random.c) and the
 * HMAC of TikTok Shop's signatures (the platform layer), which would pull
 * in the listener and the platform layer.
 */

typedef struct Tcl_DString Tcl_DString;
int TtoCancelRequested(volatile int *flagPtr);
int TtoPkceChallenge(Tcl_DString *dsPtr, const char *verifier,
	const char *method);
int TtoHmacSha256(const void *key, size_t keyLen, const void *msg,
	size_t msgLen, unsigned char out[32]);

int
TtoCancelRequested(
    volatile int *flagPtr)
{
    return flagPtr != NULL && *flagPtr != 0;
}

int
TtoPkceChallenge(
    Tcl_DString *dsPtr,
    const char *verifier,
    const char *method)
{
    abort();
}

int
TtoHmacSha256(const void *key, size_t keyLen, const void *msg,
	size_t msgLen, unsigned char out[32])
{
    abort();
}
