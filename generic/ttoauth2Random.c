/*
 * ttoauth2Random.c --
 *
 *	Unguessable values for a flow: the state parameter and the PKCE
 *	code verifier (RFC 7636) with its challenge.  Randomness comes from
 *	the operating system's CSPRNG (TtoOsRandom) and SHA-256 from the
 *	system's crypto library (TtoSha256: libcrypto on Unix, BCrypt on
 *	Windows), both in the platform layer.  No hand-written cryptography.
 */

#include "ttoauth2Int.h"
#include <string.h>

/*
 *----------------------------------------------------------------------
 *
 * TtoRandomToken --
 *
 *	Appends octets random bytes, base64url-encoded without padding:
 *	32 octets give the 43-character verifier RFC 7636 section 4.1
 *	recommends; 16 or more give a state of at least 128 bits.
 *
 * Results:
 *	0 on success, -1 if the OS randomness source failed (nothing is
 *	appended then: a flow must never run with a weak state).
 *
 *----------------------------------------------------------------------
 */

int
TtoRandomToken(
    Tcl_DString *dsPtr,
    size_t octets)
{
    unsigned char buf[64];

    if (octets > sizeof(buf) || TtoOsRandom(buf, octets) != 0) {
	return -1;
    }
    TtoBase64Encode(dsPtr, buf, octets, 1);
    memset(buf, 0, sizeof(buf));
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoPkceChallenge --
 *
 *	Appends the code_challenge for a verifier: for "S256",
 *	BASE64URL(SHA256(ASCII(verifier))); for "plain", the verifier.
 *
 * Results:
 *	0 on success, -1 if SHA-256 failed or the method is unknown.
 *
 *----------------------------------------------------------------------
 */

int
TtoPkceChallenge(
    Tcl_DString *dsPtr,
    const char *verifier,
    const char *method)
{
    unsigned char digest[32];

    if (strcmp(method, "plain") == 0) {
	Tcl_DStringAppend(dsPtr, verifier, -1);
	return 0;
    }
    if (strcmp(method, "S256") != 0) {
	return -1;
    }
    if (TtoSha256(verifier, strlen(verifier), digest) != 0) {
	return -1;
    }
    TtoBase64Encode(dsPtr, digest, sizeof(digest), 1);
    return 0;
}
