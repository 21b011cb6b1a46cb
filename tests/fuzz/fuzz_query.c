/*
 * fuzz_query.c --
 *
 *	libFuzzer harness for the URL/query codec of ttoauth2Url.c.  The
 *	whole input is a query string (no leading '?') as it arrives in a
 *	redirect, or any other bytes.  Checked on every input:
 *
 *	- TtoQueryParse agrees with an independent reference model (split
 *	  on '&', skip empty fields, split at the first '=', decode with
 *	  '+' as space, a decoded NUL ends the name or value).
 *	- Round trip: the pairs re-encoded with TtoQueryAppend consist only
 *	  of unreserved characters, %XX, '=' and '&', and parse back to the
 *	  same pairs.
 *	- TtoUrlDecode (both modes) agrees with the reference and never
 *	  grows the text; TtoUrlDecode(TtoUrlEncode(x)) == x for any bytes,
 *	  NUL included, and the encoding uses only unreserved bytes and %XX.
 *	- TtoPairsCopy copies exactly, TtoPairsGet returns the first value
 *	  of a name, TtoPairsSet replaces it in place.
 *	- TtoBase64Encode agrees with OpenSSL's EVP_EncodeBlock (standard)
 *	  and with its base64url transformation (no padding).
 *	- TtoScrub, with the values of the first pairs as secrets (what a
 *	  redirect's code would be) over the decoded text: terminates, keeps
 *	  the length, only writes '*', and leaves no occurrence of a secret
 *	  of 4 bytes or more that has no '*' in it.
 */

#include "fuzz_common.h"
#include <openssl/evp.h>

typedef struct {
    int count;
    char **names;
    char **values;
} RefPairs;

static int
RefHex(
    uint8_t c)
{
    if (c >= '0' && c <= '9') {
	return c - '0';
    }
    c |= 0x20;				/* ASCII lower case */
    if (c >= 'a' && c <= 'f') {
	return c - 'a' + 10;
    }
    return -1;
}

/* Reference percent-decoding into malloc'ed bytes; returns the length. */
static size_t
RefDecode(
    const uint8_t *s,
    size_t len,
    int plusIsSpace,
    char **outPtr)
{
    char *out = malloc(len + 1);
    size_t i, o = 0;

    for (i = 0; i < len; i++) {
	if (s[i] == '%' && len - i > 2 && RefHex(s[i+1]) >= 0
		&& RefHex(s[i+2]) >= 0) {
	    out[o++] = (char) ((RefHex(s[i+1]) << 4) | RefHex(s[i+2]));
	    i += 2;
	} else {
	    out[o++] = (s[i] == '+' && plusIsSpace) ? ' ' : (char) s[i];
	}
    }
    out[o] = '\0';
    *outPtr = out;
    return o;
}

static void
RefQuery(
    const uint8_t *q,
    size_t len,
    RefPairs *ref)
{
    size_t start = 0, i;

    memset(ref, 0, sizeof(*ref));
    for (i = 0; i <= len; i++) {
	if (i < len && q[i] != '&') {
	    continue;
	}
	if (i > start) {
	    size_t eq = start;
	    char *name, *value;

	    while (eq < i && q[eq] != '=') {
		eq++;
	    }
	    RefDecode(q + start, eq - start, 1, &name);
	    if (eq < i) {
		RefDecode(q + eq + 1, i - eq - 1, 1, &value);
	    } else {
		value = calloc(1, 1);
	    }
	    ref->names = realloc(ref->names, (ref->count + 1) * sizeof(char *));
	    ref->values = realloc(ref->values,
		    (ref->count + 1) * sizeof(char *));
	    ref->names[ref->count] = name;
	    ref->values[ref->count] = value;
	    ref->count++;
	}
	start = i + 1;
    }
}

static void
RefFree(
    RefPairs *ref)
{
    int i;

    for (i = 0; i < ref->count; i++) {
	free(ref->names[i]);
	free(ref->values[i]);
    }
    free(ref->names);
    free(ref->values);
}

static int
Unreserved(
    unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
	    || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'
	    || c == '~';
}

/* Every byte unreserved, or %XX with upper-case hex; '=' '&' if allowed. */
static void
CheckEncoded(
    const char *s,
    size_t len,
    int allowSeparators)
{
    size_t i;

    for (i = 0; i < len; i++) {
	unsigned char c = (unsigned char) s[i];

	if (Unreserved(c) || (allowSeparators && (c == '=' || c == '&'))) {
	    continue;
	}
	FUZZ_CHECK(c == '%' && i + 2 < len
		&& strchr("0123456789ABCDEF", s[i+1]) && s[i+1] != '\0'
		&& strchr("0123456789ABCDEF", s[i+2]) && s[i+2] != '\0',
		"byte 0x%02x at %zu of an encoded text", c, i);
	i += 2;
    }
}

static void
CheckPairsEqual(
    const TtoPairs *a,
    const TtoPairs *b,
    const char *what)
{
    int i;

    FUZZ_CHECK(a->count == b->count, "%s: %d pairs vs %d", what, a->count,
	    b->count);
    for (i = 0; i < a->count; i++) {
	FUZZ_CHECK(strcmp(a->items[i].name, b->items[i].name) == 0,
		"%s: name %d differs", what, i);
	FUZZ_CHECK(strcmp(a->items[i].value, b->items[i].value) == 0,
		"%s: value %d differs", what, i);
    }
}

static void
CheckDecode(
    const uint8_t *data,
    size_t size,
    int plusIsSpace)
{
    Tcl_DString ds;
    char *want;
    size_t wantLen = RefDecode(data, size, plusIsSpace, &want);

    Tcl_DStringInit(&ds);
    TtoUrlDecode(&ds, (const char *) data, size, plusIsSpace);
    FUZZ_CHECK((size_t) Tcl_DStringLength(&ds) <= size,
	    "decoding grew %zu to %d bytes", size, Tcl_DStringLength(&ds));
    FUZZ_CHECK((size_t) Tcl_DStringLength(&ds) == wantLen
	    && memcmp(Tcl_DStringValue(&ds), want, wantLen) == 0,
	    "TtoUrlDecode(plusIsSpace=%d) differs from the reference",
	    plusIsSpace);
    free(want);
    Tcl_DStringFree(&ds);
}

static void
CheckEncodeRoundTrip(
    const uint8_t *data,
    size_t size)
{
    Tcl_DString enc, dec;

    Tcl_DStringInit(&enc);
    Tcl_DStringInit(&dec);
    TtoUrlEncode(&enc, (const char *) data, size);
    CheckEncoded(Tcl_DStringValue(&enc), (size_t) Tcl_DStringLength(&enc), 0);
    TtoUrlDecode(&dec, Tcl_DStringValue(&enc),
	    (size_t) Tcl_DStringLength(&enc), 1);
    FUZZ_CHECK((size_t) Tcl_DStringLength(&dec) == size
	    && memcmp(Tcl_DStringValue(&dec), data, size) == 0,
	    "decode(encode(x)) != x");
    Tcl_DStringFree(&enc);
    Tcl_DStringFree(&dec);
}

static void
CheckBase64(
    const uint8_t *data,
    size_t size)
{
    Tcl_DString ds;
    unsigned char *want = malloc(4 * ((size + 2) / 3) + 1);
    int wantLen = EVP_EncodeBlock(want, data, (int) size), i, n;

    Tcl_DStringInit(&ds);
    TtoBase64Encode(&ds, data, size, 0);
    FUZZ_CHECK(Tcl_DStringLength(&ds) == wantLen
	    && memcmp(Tcl_DStringValue(&ds), want, (size_t) wantLen) == 0,
	    "base64 differs from OpenSSL");
    Tcl_DStringSetLength(&ds, 0);
    TtoBase64Encode(&ds, data, size, 1);
    n = 0;
    for (i = 0; i < wantLen; i++) {
	if (want[i] == '=') {
	    continue;
	}
	want[n++] = want[i] == '+' ? '-' : want[i] == '/' ? '_' : want[i];
    }
    FUZZ_CHECK(Tcl_DStringLength(&ds) == n
	    && memcmp(Tcl_DStringValue(&ds), want, (size_t) n) == 0,
	    "base64url differs from OpenSSL + transformation");
    Tcl_DStringFree(&ds);
    free(want);
}

static void
CheckScrub(
    const uint8_t *data,
    size_t size,
    const TtoPairs *pairs)
{
    const char *secrets[3];
    char *text, *orig;
    size_t len, i;
    int n = 0, k;
    Tcl_DString ds;

    Tcl_DStringInit(&ds);
    TtoUrlDecode(&ds, (const char *) data, size, 1);
    text = strdup(Tcl_DStringValue(&ds));	/* up to a decoded NUL */
    Tcl_DStringFree(&ds);
    orig = strdup(text);
    len = strlen(text);
    for (k = 0; k < pairs->count && n < 3; k++) {
	const char *v = pairs->items[k].value;

	/*
	 * KNOWN BUG (reported): a secret of 4 or more bytes that is all
	 * '*' makes TtoScrub loop forever once the text contains it.
	 */
	if (FuzzSkipKnown() && strlen(v) >= 4 && strspn(v, "*") == strlen(v)) {
	    continue;
	}
	secrets[n++] = v;
    }
    if (n < 3 && (size & 1)) {
	secrets[n++] = NULL;		/* NULL entries are skipped */
    }
    TtoScrub(text, secrets, n);
    FUZZ_CHECK(strlen(text) == len, "TtoScrub changed the length");
    for (i = 0; i < len; i++) {
	FUZZ_CHECK(text[i] == orig[i] || text[i] == '*',
		"TtoScrub wrote 0x%02x", (unsigned char) text[i]);
    }
    for (k = 0; k < n; k++) {
	if (secrets[k] != NULL && strlen(secrets[k]) >= 4
		&& strchr(secrets[k], '*') == NULL) {
	    FUZZ_CHECK(strstr(text, secrets[k]) == NULL,
		    "secret %d still in the text after TtoScrub", k);
	}
    }
    TtoScrub(NULL, secrets, n);
    free(text);
    free(orig);
}

int
LLVMFuzzerTestOneInput(
    const uint8_t *data,
    size_t size)
{
    TtoPairs pairs = {NULL, 0, 0}, again = {NULL, 0, 0}, copy = {NULL, 0, 0};
    RefPairs ref;
    Tcl_DString q;
    int first = 1, i, j;

    /* Parse, against the reference. */
    TtoQueryParse(&pairs, (const char *) data, size);
    RefQuery(data, size, &ref);
    FUZZ_CHECK(pairs.count == ref.count, "%d pairs, reference %d",
	    pairs.count, ref.count);
    for (i = 0; i < ref.count; i++) {
	FUZZ_CHECK(strcmp(pairs.items[i].name, ref.names[i]) == 0,
		"name %d \"%s\", reference \"%s\"", i, pairs.items[i].name,
		ref.names[i]);
	FUZZ_CHECK(strcmp(pairs.items[i].value, ref.values[i]) == 0,
		"value %d \"%s\", reference \"%s\"", i, pairs.items[i].value,
		ref.values[i]);
    }
    RefFree(&ref);

    /* Re-encode and parse again. */
    Tcl_DStringInit(&q);
    for (i = 0; i < pairs.count; i++) {
	TtoQueryAppend(&q, &first, pairs.items[i].name, pairs.items[i].value);
    }
    CheckEncoded(Tcl_DStringValue(&q), (size_t) Tcl_DStringLength(&q), 1);
    TtoQueryParse(&again, Tcl_DStringValue(&q), (size_t) Tcl_DStringLength(&q));
    CheckPairsEqual(&pairs, &again, "re-encoded query");
    Tcl_DStringFree(&q);
    TtoPairsFree(&again);

    /* The pair list operations. */
    TtoPairsCopy(&copy, &pairs);
    CheckPairsEqual(&pairs, &copy, "TtoPairsCopy");
    for (i = 0; i < pairs.count; i++) {
	const char *got = TtoPairsGet(&pairs, pairs.items[i].name);

	for (j = 0; strcmp(pairs.items[j].name, pairs.items[i].name) != 0;
		j++) {
	    /* first pair with that name */
	}
	FUZZ_CHECK(got == pairs.items[j].value,
		"TtoPairsGet did not return the first value");
    }
    if (copy.count > 0) {
	int count = copy.count;
	const char *name = pairs.items[copy.count - 1].name;

	TtoPairsSet(&copy, name, "replaced");
	FUZZ_CHECK(copy.count == count, "TtoPairsSet of a known name added");
	FUZZ_CHECK(strcmp(TtoPairsGet(&copy, name), "replaced") == 0,
		"TtoPairsSet did not replace");
    }
    TtoPairsSet(&copy, "\x01never-a-name", "v");
    FUZZ_CHECK(strcmp(TtoPairsGet(&copy, "\x01never-a-name"), "v") == 0,
	    "TtoPairsSet of a new name");
    TtoPairsFree(&copy);
    TtoPairsFree(&copy);

    CheckDecode(data, size, 0);
    CheckDecode(data, size, 1);
    CheckEncodeRoundTrip(data, size);
    CheckBase64(data, size);
    CheckScrub(data, size, &pairs);

    TtoPairsFree(&pairs);
    return 0;
}
