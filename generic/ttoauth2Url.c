/*
 * ttoauth2Url.c --
 *
 *	URL and query codec: percent-encoding (RFC 3986), query strings,
 *	ordered name/value lists, base64, and scrubbing secrets out of text;
 *	and the small helpers every file uses (errors, wiping secrets).
 *	Everything here is plain C over ckalloc memory, so both the Tcl
 *	thread and the flow thread use it.
 */

#include "ttoauth2Int.h"
#include <errno.h>
#include <string.h>

/*
 *----------------------------------------------------------------------
 *
 * TtoErrnoError --
 *
 *	The error of a failed file operation: "cannot WHAT "PATH": reason",
 *	with -errorcode {TTOAUTH2 KIND WORD ERRNO-NAME} (e.g. {TTOAUTH2 IO
 *	path ENOENT} or {TTOAUTH2 STORE file EACCES}).
 *
 * Results:
 *	TCL_ERROR.
 *
 * Side effects:
 *	Sets the interp's result and error code; sets errno to err.
 *
 *----------------------------------------------------------------------
 */

int
TtoErrnoError(
    Tcl_Interp *interp,
    const char *what,
    const char *path,
    int err,
    const char *kind,
    const char *word)
{
    Tcl_SetObjResult(interp, Tcl_ObjPrintf("cannot %s \"%s\": %s", what,
	    path, Tcl_ErrnoMsg(err)));
    errno = err;
    Tcl_SetErrorCode(interp, "TTOAUTH2", kind, word, Tcl_ErrnoId(),
	    (char *) NULL);
    return TCL_ERROR;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoWipe, TtoSecretFree, TtoSecretFreeN --
 *
 *	Overwrite memory that may hold a secret with zeros (memset called
 *	through a volatile pointer, so that the compiler cannot drop it as
 *	a dead store before a free), and for the Free forms then ckfree
 *	it: a NUL terminated string (its strlen bytes) or len bytes.  NULL
 *	is allowed.
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Zeroes the memory; the Free forms free it.
 *
 *----------------------------------------------------------------------
 */

/* memset through a volatile pointer: the compiler cannot know what it
 * calls, so it cannot drop the call as a dead store. */
static void *(*volatile wipeMemset)(void *, int, size_t) = memset;

void
TtoWipe(
    void *mem,
    size_t len)
{
    if (mem != NULL && len > 0) {
	wipeMemset(mem, 0, len);
    }
}

void
TtoSecretFreeN(
    char *s,
    size_t len)
{
    if (s) {
	TtoWipe(s, len);
	ckfree(s);
    }
}

void
TtoSecretFree(
    char *s)
{
    if (s) {
	TtoSecretFreeN(s, strlen(s));
    }
}

/*
 *----------------------------------------------------------------------
 *
 * TtoFail --
 *
 *	Leaves an error with -errorcode {TTOAUTH2 kind word}.
 *
 * Results:
 *	TCL_ERROR.
 *
 * Side effects:
 *	Sets the interp's result and error code.
 *
 *----------------------------------------------------------------------
 */

int
TtoFail(
    Tcl_Interp *interp,
    const char *kind,
    const char *word,
    const char *msg)
{
    Tcl_SetObjResult(interp, Tcl_NewStringObj(msg, -1));
    Tcl_SetErrorCode(interp, "TTOAUTH2", kind, word, (char *) NULL);
    return TCL_ERROR;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoWipeDString --
 *
 *	Overwrites a DString's bytes (it may hold a secret), then frees it.
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Frees the DString's memory.
 *
 *----------------------------------------------------------------------
 */

void
TtoWipeDString(
    Tcl_DString *dsPtr)
{
    TtoWipe(Tcl_DStringValue(dsPtr), (size_t) Tcl_DStringLength(dsPtr));
    Tcl_DStringFree(dsPtr);
}

/*
 *----------------------------------------------------------------------
 *
 * TtoAppendUtf8 --
 *
 *	Appends a value's string as UTF-8 bytes to a DString.
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Grows the DString.
 *
 *----------------------------------------------------------------------
 */

void
TtoAppendUtf8(
    Tcl_DString *dsPtr,
    Tcl_Obj *objPtr)
{
    Tcl_Size len, i;
    const char *s = Tcl_GetStringFromObj(objPtr, &len);
    Tcl_Encoding utf8;
    Tcl_DString ds;

    for (i = 0; i < len && (unsigned char) s[i] < 0x80; i++) {
	/* ASCII is the same in both forms: the common case, no copy. */
    }
    if (i == len) {
	Tcl_DStringAppend(dsPtr, s, len);
	return;
    }
    utf8 = Tcl_GetEncoding(NULL, "utf-8");
    Tcl_UtfToExternalDString(utf8, s, len, &ds);
    Tcl_FreeEncoding(utf8);
    Tcl_DStringAppend(dsPtr, Tcl_DStringValue(&ds), Tcl_DStringLength(&ds));
    TtoWipeDString(&ds);
}

/*
 *----------------------------------------------------------------------
 *
 * TtoAsciiCaseEqual --
 *
 *	Whether the n bytes at a and b are equal but for the case of ASCII
 *	letters (host names compare so; no locale, no Unicode folding,
 *	which would take the Kelvin sign for a "k").
 *
 * Results:
 *	1 or 0.
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

int
TtoAsciiCaseEqual(
    const char *a,
    const char *b,
    size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
	unsigned char ca = (unsigned char) a[i], cb = (unsigned char) b[i];

	if (ca >= 'A' && ca <= 'Z') {
	    ca = (unsigned char) (ca - 'A' + 'a');
	}
	if (cb >= 'A' && cb <= 'Z') {
	    cb = (unsigned char) (cb - 'A' + 'a');
	}
	if (ca != cb) {
	    return 0;
	}
    }
    return 1;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoGetSubcommand --
 *
 *	The subcommand word objv[at] of a command (its unique abbreviations
 *	accepted), as an index into table; usage is the wrong-args text
 *	after objv[0..at-1] when the word is missing.
 *
 * Results:
 *	TCL_OK with *indexPtr, or TCL_ERROR with Tcl's own error ({TCL
 *	WRONGARGS} or {TCL LOOKUP INDEX what ...}).
 *
 * Side effects:
 *	Sets the interp's result on error.
 *
 *----------------------------------------------------------------------
 */

int
TtoGetSubcommand(
    Tcl_Interp *interp,
    Tcl_Size objc,
    Tcl_Obj *const objv[],
    int at,
    const char *const *table,
    const char *what,
    const char *usage,
    int *indexPtr)
{
    if (objc <= at) {
	Tcl_WrongNumArgs(interp, at, objv, usage);
	return TCL_ERROR;
    }
    return Tcl_GetIndexFromObj(interp, objv[at], table, what, 0, indexPtr);
}

/*
 *----------------------------------------------------------------------
 *
 * TtoStrDup --
 *
 *	A ckalloc'ed copy of s, or NULL for NULL.
 *
 * Results:
 *	The copy (ckfree it), or NULL.
 *
 * Side effects:
 *	Allocates memory.
 *
 *----------------------------------------------------------------------
 */

char *
TtoStrDup(
    const char *s)
{
    size_t len;
    char *copy;

    if (s == NULL) {
	return NULL;
    }
    len = strlen(s);
    copy = ckalloc(len + 1);
    memcpy(copy, s, len + 1);
    return copy;
}

static char *
DupN(
    const char *s,
    size_t len)
{
    char *copy = ckalloc(len + 1);

    memcpy(copy, s, len);
    copy[len] = '\0';
    return copy;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoPairsAdd, TtoPairsSet, TtoPairsGet, TtoPairsCopy, TtoPairsFree --
 *
 *	An ordered list of name/value pairs.  Order matters: providers and
 *	tests compare query strings, and users expect parameters in the
 *	order they added them.
 *
 * Results:
 *	TtoPairsGet returns the first value for a name, or NULL.
 *
 * Side effects:
 *	Memory is allocated and freed.
 *
 *----------------------------------------------------------------------
 */

void
TtoPairsAdd(
    TtoPairs *pairs,
    const char *name,
    size_t nameLen,
    const char *value,
    size_t valueLen)
{
    if (pairs->count == pairs->capacity) {
	pairs->capacity = pairs->capacity ? 2 * pairs->capacity : 8;
	pairs->items = ckrealloc(pairs->items,
		pairs->capacity * sizeof(TtoPair));
    }
    pairs->items[pairs->count].name = DupN(name, nameLen);
    pairs->items[pairs->count].value = DupN(value, valueLen);
    pairs->count++;
}

void
TtoPairsSet(
    TtoPairs *pairs,
    const char *name,
    const char *value)
{
    int i;

    for (i = 0; i < pairs->count; i++) {
	if (strcmp(pairs->items[i].name, name) == 0) {
	    ckfree(pairs->items[i].value);
	    pairs->items[i].value = DupN(value, strlen(value));
	    return;
	}
    }
    TtoPairsAdd(pairs, name, strlen(name), value, strlen(value));
}

const char *
TtoPairsGet(
    const TtoPairs *pairs,
    const char *name)
{
    int i;

    for (i = 0; i < pairs->count; i++) {
	if (strcmp(pairs->items[i].name, name) == 0) {
	    return pairs->items[i].value;
	}
    }
    return NULL;
}

void
TtoPairsCopy(
    TtoPairs *dst,
    const TtoPairs *src)
{
    int i;

    for (i = 0; i < src->count; i++) {
	TtoPairsAdd(dst, src->items[i].name, strlen(src->items[i].name),
		src->items[i].value, strlen(src->items[i].value));
    }
}

void
TtoPairsFree(
    TtoPairs *pairs)
{
    int i;

    for (i = 0; i < pairs->count; i++) {
	TtoSecretFree(pairs->items[i].name);	/* a value may be a secret */
	TtoSecretFree(pairs->items[i].value);
    }
    if (pairs->items) {
	ckfree(pairs->items);
    }
    pairs->items = NULL;
    pairs->count = pairs->capacity = 0;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoUrlEncode --
 *
 *	Appends s percent-encoded: everything but RFC 3986's unreserved
 *	characters becomes %XX.  This is valid both in a URL query and in an
 *	application/x-www-form-urlencoded body, and is the encoding RFC 6749
 *	section 2.3.1 asks for before Basic authentication.
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Appends to *dsPtr.
 *
 *----------------------------------------------------------------------
 */

void
TtoUrlEncode(
    Tcl_DString *dsPtr,
    const char *s,
    size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i, run = 0;
    char esc[3];

    for (i = 0; i < len; i++) {
	unsigned char c = (unsigned char) s[i];

	if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
		|| (c >= '0' && c <= '9') || c == '-' || c == '.'
		|| c == '_' || c == '~') {
	    continue;
	}
	Tcl_DStringAppend(dsPtr, s + run, (Tcl_Size) (i - run));
	esc[0] = '%';
	esc[1] = hex[c >> 4];
	esc[2] = hex[c & 15];
	Tcl_DStringAppend(dsPtr, esc, 3);
	run = i + 1;
    }
    Tcl_DStringAppend(dsPtr, s + run, (Tcl_Size) (len - run));
}

static int
HexValue(
    int c)
{
    if (c >= '0' && c <= '9') {
	return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
	return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
	return c - 'A' + 10;
    }
    return -1;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoUrlDecode --
 *
 *	Appends the percent-decoded form of s.  A '%' not followed by two
 *	hex digits is kept as it is (browsers send such URLs; rejecting
 *	them would only make a junk request look different from a wrong
 *	one).  With plusIsSpace, '+' decodes to a space, as in query
 *	strings.  The result may contain any byte, NUL included: callers
 *	treat it as counted bytes.
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Appends to *dsPtr.
 *
 *----------------------------------------------------------------------
 */

void
TtoUrlDecode(
    Tcl_DString *dsPtr,
    const char *s,
    size_t len,
    int plusIsSpace)
{
    size_t i, start = 0;

    for (i = 0; i < len; i++) {
	char c = s[i];
	int hi, lo;

	if (c == '%' && len - i >= 3
		&& (hi = HexValue((unsigned char) s[i+1])) >= 0
		&& (lo = HexValue((unsigned char) s[i+2])) >= 0) {
	    char byte = (char) (hi * 16 + lo);

	    Tcl_DStringAppend(dsPtr, s + start, (Tcl_Size) (i - start));
	    Tcl_DStringAppend(dsPtr, &byte, 1);
	    i += 2;
	    start = i + 1;
	} else if (c == '+' && plusIsSpace) {
	    Tcl_DStringAppend(dsPtr, s + start, (Tcl_Size) (i - start));
	    Tcl_DStringAppend(dsPtr, " ", 1);
	    start = i + 1;
	}
    }
    Tcl_DStringAppend(dsPtr, s + start, (Tcl_Size) (len - start));
}

/*
 *----------------------------------------------------------------------
 *
 * TtoQueryParse --
 *
 *	Splits a query string (no leading '?', may be empty) into decoded
 *	name/value pairs appended to pairs.  A field without '=' has the
 *	value "".  Empty fields ("a=1&&b=2") are skipped.  A decoded NUL
 *	ends the name or value there: no OAuth parameter legitimately
 *	contains one, and C strings cannot carry it further.
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Appends to pairs.
 *
 *----------------------------------------------------------------------
 */

void
TtoQueryParse(
    TtoPairs *pairs,
    const char *query,
    size_t len)
{
    size_t pos = 0;

    while (pos < len) {
	const char *field = query + pos;
	const char *amp = memchr(field, '&', len - pos);
	size_t fieldLen = amp ? (size_t) (amp - field) : len - pos;
	const char *eq = memchr(field, '=', fieldLen);
	size_t nameLen = eq ? (size_t) (eq - field) : fieldLen;
	Tcl_DString name, value;

	pos += fieldLen + 1;
	if (fieldLen == 0) {
	    continue;
	}
	Tcl_DStringInit(&name);
	Tcl_DStringInit(&value);
	TtoUrlDecode(&name, field, nameLen, 1);
	if (eq) {
	    TtoUrlDecode(&value, eq + 1, fieldLen - nameLen - 1, 1);
	}
	TtoPairsAdd(pairs, Tcl_DStringValue(&name),
		strlen(Tcl_DStringValue(&name)), Tcl_DStringValue(&value),
		strlen(Tcl_DStringValue(&value)));
	Tcl_DStringFree(&name);
	Tcl_DStringFree(&value);
    }
}

/*
 *----------------------------------------------------------------------
 *
 * TtoQueryAppend --
 *
 *	Appends "name=value" (both encoded) to a query string or form body,
 *	preceded by '&' unless *firstPtr is set (which it then clears).
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Appends to *dsPtr; clears *firstPtr.
 *
 *----------------------------------------------------------------------
 */

void
TtoQueryAppend(
    Tcl_DString *dsPtr,
    int *firstPtr,
    const char *name,
    const char *value)
{
    if (!*firstPtr) {
	Tcl_DStringAppend(dsPtr, "&", 1);
    }
    *firstPtr = 0;
    TtoUrlEncode(dsPtr, name, strlen(name));
    Tcl_DStringAppend(dsPtr, "=", 1);
    TtoUrlEncode(dsPtr, value, strlen(value));
}

/*
 *----------------------------------------------------------------------
 *
 * TtoBase64Encode --
 *
 *	Appends base64 (RFC 4648 section 4) or, with urlSafe, base64url
 *	without padding (section 5, as PKCE and our state strings use).
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Appends to *dsPtr.
 *
 *----------------------------------------------------------------------
 */

void
TtoBase64Encode(
    Tcl_DString *dsPtr,
    const unsigned char *data,
    size_t len,
    int urlSafe)
{
    const char *alphabet = urlSafe
	    ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	    : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i;
    char out[4];

    for (i = 0; i + 2 < len; i += 3) {
	unsigned long v = ((unsigned long) data[i] << 16)
		| ((unsigned long) data[i+1] << 8) | data[i+2];

	out[0] = alphabet[(v >> 18) & 63];
	out[1] = alphabet[(v >> 12) & 63];
	out[2] = alphabet[(v >> 6) & 63];
	out[3] = alphabet[v & 63];
	Tcl_DStringAppend(dsPtr, out, 4);
    }
    if (i < len) {
	unsigned long v = (unsigned long) data[i] << 16;
	int n = 2;

	if (i + 1 < len) {
	    v |= (unsigned long) data[i+1] << 8;
	    n = 3;
	}
	out[0] = alphabet[(v >> 18) & 63];
	out[1] = alphabet[(v >> 12) & 63];
	out[2] = alphabet[(v >> 6) & 63];
	out[3] = '=';
	if (n == 2) {
	    out[2] = '=';
	}
	Tcl_DStringAppend(dsPtr, out, urlSafe ? n : 4);
    }
}

/*
 *----------------------------------------------------------------------
 *
 * TtoScrub --
 *
 *	Overwrites, in place, every occurrence of each of the count strings
 *	of secrets (NULL entries are skipped) in text with '*'.  A defence in
 *	depth for text that came from a server (an error description that
 *	echoes a parameter) before it reaches failureInfo or an error.
 *	Secrets shorter than 4 bytes are skipped: masking "a" everywhere
 *	would destroy the message and protect nothing.
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Changes text in place.
 *
 *----------------------------------------------------------------------
 */

void
TtoScrub(
    char *text,
    const char *const *secrets,
    int count)
{
    size_t textLen;
    char *copy;
    int i;

    if (text == NULL) {
	return;
    }

    /*
     * Search an untouched copy and mask the real text: masking in place
     * and searching again would loop for ever on a secret of '*'s, and
     * would miss a secret that overlaps one masked before it.
     */

    textLen = strlen(text);
    copy = ckalloc(textLen + 1);
    memcpy(copy, text, textLen + 1);
    for (i = 0; i < count; i++) {
	const char *secret = secrets[i], *p, *hit;
	size_t len;

	if (secret == NULL) {
	    continue;
	}
	len = strlen(secret);
	if (len < 4) {
	    continue;
	}
	for (p = copy; (hit = strstr(p, secret)) != NULL; p = hit + 1) {
	    memset(text + (hit - copy), '*', len);
	}
    }
    TtoSecretFreeN(copy, textLen);
}
