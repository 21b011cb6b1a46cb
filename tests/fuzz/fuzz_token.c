/*
 * fuzz_token.c --
 *
 *	libFuzzer harness for TtoTokenClassify: what a token endpoint's
 *	answer means, for both provider profiles (TTO_PROVIDER_TIKTOKSHOP and
 *	TTO_PROVIDER_RFC6749).  Input: when the first line is a decimal
 *	number ("200", "-1", "302"), it is the HTTP status and the rest is
 *	the body; otherwise the status is 200 and the whole input is the
 *	body.  Invariants (abort() when violated), for each provider:
 *
 *	- ok is 0 or 1; httpStatus is the status; body is left alone;
 *	  the same call twice gives the same result.
 *	- ok: accessToken non-NULL and non-empty, tokenType non-NULL,
 *	  refreshToken NULL or non-empty, no error fields; the status is 200
 *	  (tiktokshop) or 2xx (rfc6749); no token appears in the body
 *	  followed by a raw NUL byte, and turning every \u0000 escape of
 *	  the body into \u0001 gives the same tokens: either would mean a
 *	  token cut short in cJSON's C strings; the body is JSON by RFC 8259
 *	  (TtoJsonParse accepts it).
 *	- failure: errorKind is "HTTP", "TOKEN" or "JSON" and failureInfo is
 *	  non-NULL, non-empty, and free of control characters (it reaches
 *	  error messages and logs), as are the -errorcode words; no token
 *	  fields, expiries -1; HTTP failures carry the status as first word,
 *	  JSON failures no words, TOKEN failures two words.
 *	- a 3xx is never ok.
 *	- after TtoScrub with the request's secrets (what TtoTokenRequestRun
 *	  does), no failure text contains one of them.
 */

#include "fuzz_common.h"
#include <cjson/cJSON.h>

#define NOW ((time_t) 1700000000)

static const char *const secrets[5] = {
    "tts-client-secret-4f2a9c", "ROW_authcode_7Yc1QkX0", "ROW_refresh_Q2ZlNDk",
    "pkce-verifier-0123456789abcdefghijklmnopqrstu", NULL
};

static int
Printable(
    const char *s)
{
    for (; s && *s; s++) {
	unsigned char c = (unsigned char) *s;

	if (c < 32 || c == 127) {
	    return 0;
	}
    }
    return 1;
}

static int
SameString(
    const char *a,
    const char *b)
{
    return (a == NULL && b == NULL)
	    || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void
CheckSame(
    const TtoTokenResult *a,
    const TtoTokenResult *b)
{
    FUZZ_CHECK(a->ok == b->ok && a->httpStatus == b->httpStatus
	    && SameString(a->accessToken, b->accessToken)
	    && SameString(a->refreshToken, b->refreshToken)
	    && SameString(a->tokenType, b->tokenType)
	    && a->expiresAt == b->expiresAt
	    && a->refreshExpiresAt == b->refreshExpiresAt
	    && a->errorKind == b->errorKind && a->advice == b->advice
	    && SameString(a->errorWords[0], b->errorWords[0])
	    && SameString(a->errorWords[1], b->errorWords[1])
	    && SameString(a->failureInfo, b->failureInfo),
	    "TtoTokenClassify is not deterministic");
}

static void
Check(
    TtoProvider provider,
    long status,
    const char *body,
    size_t len)
{
    const char *name = provider == TTO_PROVIDER_TIKTOKSHOP
	    ? "tiktokshop" : "rfc6749";
    TtoTokenResult res, res2;
    int i;

    memset(&res, 0, sizeof(res));
    TtoTokenClassify(provider, status, body, len, NOW, &res);
    memset(&res2, 0, sizeof(res2));
    TtoTokenClassify(provider, status, body, len, NOW, &res2);
    CheckSame(&res, &res2);
    TtoTokenResultFree(&res2);

    FUZZ_CHECK(res.ok == 0 || res.ok == 1, "%s: ok = %d", name, res.ok);
    FUZZ_CHECK(res.httpStatus == status, "%s: httpStatus %ld for %ld", name,
	    res.httpStatus, status);
    FUZZ_CHECK(res.body == NULL && res.bodyLen == 0, "%s: body touched",
	    name);

    if (res.ok) {
	FUZZ_CHECK(res.accessToken != NULL && res.accessToken[0] != '\0',
		"%s: ok without an access token", name);
	FUZZ_CHECK(res.tokenType != NULL, "%s: ok without a token type", name);
	FUZZ_CHECK(res.refreshToken == NULL || res.refreshToken[0] != '\0',
		"%s: empty refresh token", name);
	FUZZ_CHECK(res.errorKind == TTO_ERR_NONE && res.failureInfo == NULL
		&& res.errorWords[0] == NULL && res.errorWords[1] == NULL,
		"%s: ok with error fields", name);
	if (provider == TTO_PROVIDER_TIKTOKSHOP) {
	    FUZZ_CHECK(status == 200, "tiktokshop: ok with HTTP %ld", status);
	} else {
	    FUZZ_CHECK(status >= 200 && status < 300, "rfc6749: ok with "
		    "HTTP %ld", status);
	}
	/*
	 * No token cut short: a raw NUL byte would end cJSON's C string
	 * (the strict checks refuse control bytes in strings); for a
	 * \u0000 escape, the same body with every \u0000 made \u0001
	 * must give the same tokens (it would not if one held a NUL).
	 */
	FUZZ_CHECK(memmem(body, len, res.accessToken,
		strlen(res.accessToken) + 1) == NULL,
		"%s: the access token is followed by a raw NUL byte in "
		"the body: cut short", name);
	FUZZ_CHECK(res.refreshToken == NULL || memmem(body, len,
		res.refreshToken, strlen(res.refreshToken) + 1) == NULL,
		"%s: the refresh token is followed by a raw NUL byte in "
		"the body: cut short", name);
	{
	    char *copy = malloc(len + 1);
	    size_t i;
	    int changed = 0;
	    TtoTokenResult res3;

	    memcpy(copy, body, len);
	    for (i = 0; i + 5 < len; i++) {
		if (copy[i] == '\\') {
		    if (memcmp(copy + i + 1, "u0000", 5) == 0) {
			copy[i + 5] = '1';
			changed = 1;
		    }
		    i++;
		}
	    }
	    if (changed) {
		memset(&res3, 0, sizeof(res3));
		TtoTokenClassify(provider, status, copy, len, NOW, &res3);
		FUZZ_CHECK(res3.ok && strcmp(res3.accessToken,
			res.accessToken) == 0 && SameString(res3.refreshToken,
			res.refreshToken), "%s: a token held \\u0000", name);
		TtoTokenResultFree(&res3);
	    }
	    free(copy);
	}
	/* The body is JSON by RFC 8259 (TtoJsonParse's strict checks). */
	{
	    cJSON *root = TtoJsonParse(body, len, NULL, NULL);

	    FUZZ_CHECK(root != NULL, "%s: ok although the body is not JSON",
		    name);
	    cJSON_Delete(root);
	}
    } else {
	const char *k = TtoErrorKindName(res.errorKind);

	FUZZ_CHECK(k != NULL && (strcmp(k, "HTTP") == 0
		|| strcmp(k, "TOKEN") == 0 || strcmp(k, "JSON") == 0),
		"%s: errorKind %s", name, k ? k : "NULL");
	FUZZ_CHECK(res.failureInfo != NULL && res.failureInfo[0] != '\0',
		"%s: failure without failureInfo", name);
	FUZZ_CHECK(Printable(res.failureInfo) && Printable(res.errorWords[0])
		&& Printable(res.errorWords[1]),
		"%s: control character in the failure text", name);
	FUZZ_CHECK(res.accessToken == NULL && res.refreshToken == NULL
		&& res.tokenType == NULL, "%s: failure with tokens", name);
	FUZZ_CHECK(res.expiresAt == -1 && res.refreshExpiresAt == -1,
		"%s: failure with expiries", name);
	if (strcmp(k, "HTTP") == 0) {
	    char word[32];

	    snprintf(word, sizeof(word), "%ld", status);
	    FUZZ_CHECK(res.errorWords[0] != NULL
		    && strcmp(res.errorWords[0], word) == 0
		    && res.errorWords[1] == NULL,
		    "%s: HTTP failure words", name);
	} else if (strcmp(k, "JSON") == 0) {
	    FUZZ_CHECK(res.errorWords[0] == NULL && res.errorWords[1] == NULL,
		    "%s: JSON failure with words", name);
	} else {
	    FUZZ_CHECK(res.errorWords[0] != NULL && res.errorWords[1] != NULL,
		    "%s: TOKEN failure without words", name);
	}
    }
    if (status >= 300 && status < 400) {
	FUZZ_CHECK(!res.ok, "%s: ok with a redirect %ld", name, status);
    }

    /* What TtoTokenRequestRun does next. */
    TtoScrub(res.failureInfo, secrets, 5);
    TtoScrub(res.errorWords[0], secrets, 5);
    TtoScrub(res.errorWords[1], secrets, 5);
    for (i = 0; i < 4; i++) {
	FUZZ_CHECK((res.failureInfo == NULL
		|| strstr(res.failureInfo, secrets[i]) == NULL)
		&& (res.errorWords[0] == NULL
		|| strstr(res.errorWords[0], secrets[i]) == NULL)
		&& (res.errorWords[1] == NULL
		|| strstr(res.errorWords[1], secrets[i]) == NULL),
		"%s: secret %d left in the failure text", name, i);
    }

    TtoTokenResultFree(&res);
    FUZZ_CHECK(res.accessToken == NULL && res.failureInfo == NULL
	    && res.errorWords[0] == NULL, "TtoTokenResultFree left pointers");
    TtoTokenResultFree(&res);
}

int
LLVMFuzzerTestOneInput(
    const uint8_t *data,
    size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size < 22 ? size : 22);
    const char *body = (const char *) data;
    size_t len = size;
    long status = 200;

    if (nl != NULL && nl > data) {
	const uint8_t *p = data;
	int negative = 0;
	long long v = 0;

	if (*p == '-') {
	    negative = 1;
	    p++;
	}
	if (p < nl) {
	    for (; p < nl && *p >= '0' && *p <= '9'; p++) {
		v = (v > 100000000000000000LL) ? v : v * 10 + (*p - '0');
	    }
	    if (p == nl) {
		status = (long) (negative ? -v : v);
		body = (const char *) nl + 1;
		len = size - (size_t) (nl + 1 - data);
	    }
	}
    }
    Check(TTO_PROVIDER_TIKTOKSHOP, status, body, len);
    Check(TTO_PROVIDER_RFC6749, status, body, len);
    return 0;
}
