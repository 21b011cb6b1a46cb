/*
 * ttoauth2Json.c --
 *
 *	JSON for ttoauth2, on cJSON: the [ttoauth2 json parse|get|raw|pretty]
 *	commands and the helpers the token and store code use.
 *
 *	cJSON builds the tree; a few checks of our own make it strict
 *	(TtoJsonParse): nothing but white space after the value (cJSON stops
 *	after the first value), no raw control character in a string or
 *	between tokens (cJSON takes every byte <= 32 for white space), numbers
 *	as RFC 8259 writes them (cJSON takes 01, +1, .5, 1.), nesting at most
 *	TTO_JSON_MAX_DEPTH levels whatever limit cJSON was built with.
 *
 *	cJSON keeps a number only as a double and a string only as a C
 *	string.  Where that would lose what the text says, the code here
 *	reads the text beside the tree: cJSON keeps every member (duplicates
 *	too) in text order, so a cursor walking the text token by token stays
 *	in step with a walk of the tree (Token, SkipValue).  That gives
 *	integers beyond 2^53 digit for digit, strings holding \u0000 whole,
 *	[json raw] the value as written, and a re-indenter (TtoJsonPretty)
 *	that copies every string and number byte for byte.
 *
 *	Paths (Chilkat style): steps "key", ".key" and "[N]", e.g.
 *	"data.granted_scopes[2]"; a key runs up to the next '.' or '['; the
 *	empty path is the whole value.  Duplicate keys: the last one wins.
 *
 *	cJSON's parser writes a process-wide error record on every call, so
 *	calls are serialized (ParseLocked).  No error message here quotes the
 *	JSON text: it may hold secrets.
 */

#include "ttoauth2Int.h"
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IS_DIGIT(c)	((c) >= '0' && (c) <= '9')
#define IS_SPACE(c)	((c) == ' ' || (c) == '\t' || (c) == '\n' || (c) == '\r')
#define IS_DELIM(c)	(IS_SPACE(c) || (c) == ',' || (c) == ':' || (c) == '"' \
	|| (c) == '{' || (c) == '}' || (c) == '[' || (c) == ']')

typedef struct {
    const char *p, *end;
} Cursor;

typedef struct {
    int isIndex;
    const char *key;
    size_t keyLen;
    size_t index;		/* SIZE_MAX when too large */
} PathStep;

TCL_DECLARE_MUTEX(cjsonMutex)

/* A cursor on a text, past a leading UTF-8 byte order mark. */

static void
CursorInit(
    Cursor *c,
    const char *text,
    size_t len)
{
    c->p = text;
    c->end = text + len;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
	c->p += 3;
    }
}

static cJSON *
ParseLocked(
    const char *text,
    size_t len,
    const char **endPtr)
{
    cJSON *root;

    Tcl_MutexLock(&cjsonMutex);
    root = cJSON_ParseWithLengthOpts(text, len, endPtr, 0);
    Tcl_MutexUnlock(&cjsonMutex);
    return root;
}

/*
 * The next token of a text: a string with its quotes, a number or
 * literal, or one of {}[],: (Token skips ',' and ':' too).  Returns its
 * length, 0 at the end.  Safe on any bytes.
 */

static size_t
RawToken(
    Cursor *c,
    const char **startPtr)
{
    const char *p = c->p, *s;

    while (p < c->end && IS_SPACE(*p)) {
	p++;
    }
    s = *startPtr = p;
    if (p >= c->end) {
	c->p = p;
	return 0;
    }
    if (*p == '"') {
	const char *q;

	do {				/* to a '"' after an even run of '\\' */
	    p = memchr(p + 1, '"', (size_t) (c->end - p - 1));
	    for (q = p; q && q[-1] == '\\'; q--) {
	    }
	} while (p && (p - q) % 2);
	p = p ? p + 1 : c->end;
    } else if (strchr("{}[],:", *p)) {
	p++;
    } else {
	while (p < c->end && !IS_DELIM(*p)) {
	    p++;
	}
	p += (p == s);			/* a stray byte is a token */
    }
    c->p = p;
    return (size_t) (p - s);
}

static size_t
Token(
    Cursor *c,
    const char **startPtr)
{
    size_t n;

    while ((n = RawToken(c, startPtr)) == 1
	    && (**startPtr == ',' || **startPtr == ':')) {
    }
    return n;
}

static void
SkipValue(
    Cursor *c)
{
    const char *t;
    int depth = 0;

    do {
	if (Token(c, &t) == 0) {
	    return;
	}
	depth += (*t == '{' || *t == '[') - (*t == '}' || *t == ']');
    } while (depth > 0);
}

/*
 * The checks cJSON does not make, on any text: control bytes, numbers,
 * depth, unterminated strings, text after the value.  Returns NULL or the
 * reason, with its offset.
 */

static const char *
Digits(
    const char *q,
    const char *end)
{
    while (q < end && IS_DIGIT(*q)) {
	q++;
    }
    return q;
}

/* RFC 8259: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)? */

static int
NumberOk(
    const char *q,
    const char *end)
{
    const char *d = (q += (*q == '-'));

    q = (q < end && *q == '0') ? q + 1 : Digits(q, end);
    if (q == d) {
	return 0;
    }
    if (q < end && *q == '.') {
	d = ++q;
	if ((q = Digits(q, end)) == d) {
	    return 0;
	}
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
	q += 1 + (q + 1 < end && (q[1] == '+' || q[1] == '-'));
	d = q;
	if ((q = Digits(q, end)) == d) {
	    return 0;
	}
    }
    return q == end;
}

/* Bytes that end a run of plain string content. */

static const unsigned char special[256] = {
    1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
    0,0,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1
};

/*
 * Eight bytes at a time: whether any is >= 0x80 (Wide8) or ends plain
 * string content (Special8: '"', '\\' or < 0x20).  Exact, word-wise.
 */

#define ONES	0x0101010101010101ULL
#define HIGHS	0x8080808080808080ULL

static uint64_t
Load8(
    const char *p)
{
    uint64_t v;

    memcpy(&v, p, 8);
    return v;
}

static int
Special8(
    const char *p)
{
    uint64_t v = Load8(p), a = v ^ (ONES * '"'), b = v ^ (ONES * '\\');

    return ((((a - ONES) & ~a) | ((b - ONES) & ~b) | ((v - ONES * 0x20) & ~v))
	    & HIGHS) != 0;
}

static const char unterminated[] = "unterminated string";
static const char endOfInput[] = "unexpected end of input";

static const char *
Check(
    const char *text,
    size_t len,
    size_t *offPtr,
    Tcl_DString *skel)		/* or NULL */
{
    Cursor c = {text, text + len};
    const char *t, *q, *copied = text;
    size_t n;
    int depth = 0, values = 0, i, escapes;

    for (;;) {
	while (c.p < c.end && IS_SPACE(*c.p)) {
	    c.p++;
	}
	n = (c.p < c.end && *c.p == '"') ? (size_t) ((t = c.p) != NULL)
		: RawToken(&c, &t);
	if (n == 0) {
	    break;
	}
	*offPtr = (size_t) (t - text);
	if (depth == 0 && values > 0) {
	    return "unexpected data after the JSON value";
	}
	if (*t == '{' || *t == '[') {
	    if (++depth > TTO_JSON_MAX_DEPTH) {
		return "nested deeper than 1000 levels";
	    }
	} else if (*t == '}' || *t == ']') {
	    values += (--depth == 0);
	} else if (*t == '"') {
	    for (q = t + 1, escapes = 0; q < c.end && *q != '"'; q += 2) {
		while (q + 8 <= c.end && !Special8(q)) {
		    q += 8;
		}
		while (q < c.end && !special[(unsigned char) *q]) {
		    q++;
		}
		if (q >= c.end || *q == '"') {
		    break;
		}
		*offPtr = (size_t) (q - text);
		if ((unsigned char) *q < 0x20) {
		    return "control character in string";
		}
		escapes = 1;
		if (q + 1 >= c.end || strchr("\"\\/bfnrtu", q[1]) == NULL
			|| q[1] == '\0') {
		    return "invalid escape in string";
		}
		if (q[1] == 'u') {
		    /* cJSON reads a bad hex digit as 0: "\u12G4" is a NUL */
		    for (i = 2; i < 6; i++) {
			if (q + i >= c.end || !isxdigit((unsigned char) q[i])) {
			    return "invalid escape in string";
			}
		    }
		}
	    }
	    if (q >= c.end) {
		*offPtr = len;
		return unterminated;
	    }
	    c.p = q + 1;
	    values += (depth == 0);
	    if (skel && !escapes && q > t + 1) {
		Tcl_DStringAppend(skel, copied, (Tcl_Size) (t + 1 - copied));
		copied = q;
	    }
	} else if (*t == '-' || IS_DIGIT(*t)) {
	    if (!NumberOk(t, t + n)) {
		return "invalid number";
	    }
	    values += (depth == 0);
	} else if (*t == '+' || *t == '.') {
	    return "invalid number";
	} else if (*t != ',' && *t != ':') {
	    if (!((n == 4 && (memcmp(t, "true", 4) == 0
		    || memcmp(t, "null", 4) == 0))
		    || (n == 5 && memcmp(t, "false", 5) == 0))) {
		return "unexpected character";
	    }
	    values += (depth == 0);
	}
    }
    if (depth > 0 || values == 0) {
	*offPtr = len;
	return endOfInput;
    }
    if (skel) {
	Tcl_DStringAppend(skel, copied, (Tcl_Size) (c.end - copied));
    }
    return NULL;
}

/*
 * TtoJsonParse's work.  With skeleton set the tree's strings that have
 * no escape are empty: cJSON parses the text with their contents left
 * out (what is left is JSON exactly when the text is, as Check has seen
 * those contents), which is much faster for long tokens, for callers
 * that read such strings from the text.
 */

static cJSON *
Parse(
    const char *text,
    size_t len,
    size_t *offPtr,
    const char **whyPtr,
    int skeleton)
{
    const char *end = NULL, *why;
    size_t off = 0, checkOff = 0, skip = 0;
    cJSON *root = NULL;
    Tcl_DString skel;

    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
	skip = 3;
    }
    Tcl_DStringInit(&skel);
    why = Check(text + skip, len - skip, &checkOff,
	    skeleton ? &skel : NULL);
    if (why == NULL && skeleton) {
	root = ParseLocked(Tcl_DStringValue(&skel),
		(size_t) Tcl_DStringLength(&skel), &end);
	while (root && end < Tcl_DStringValue(&skel) + Tcl_DStringLength(&skel)
		&& IS_SPACE(*end)) {
	    end++;
	}
	if (root && end == Tcl_DStringValue(&skel) + Tcl_DStringLength(&skel)) {
	    Tcl_DStringFree(&skel);
	    return root;
	}
	cJSON_Delete(root);		/* the text says why: read it whole */
	root = NULL;
	end = NULL;
    }
    Tcl_DStringFree(&skel);
    if (len > skip) {
	root = ParseLocked(text + skip, len - skip, &end);
    }
    if (root == NULL) {
	off = end ? (size_t) (end - text - skip) : 0;
	if (why == NULL || (checkOff > off && why != unterminated
		&& !(why == endOfInput && off + 1 >= len - skip))) {
	    why = "unexpected character";
	    checkOff = off;
	}
    } else {
	while (end < text + len && IS_SPACE(*end)) {
	    end++;
	}
	if (why == NULL && end < text + len) {
	    why = "unexpected data after the JSON value";
	    checkOff = (size_t) (end - text - skip);
	}
	if (why != NULL) {
	    cJSON_Delete(root);
	    root = NULL;
	}
    }
    if (root == NULL) {
	if (offPtr) {
	    *offPtr = checkOff + skip;
	}
	if (whyPtr) {
	    *whyPtr = why;
	}
    }
    return root;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoJsonParse --
 *
 *	Parses one JSON value that must fill the whole text (white space
 *	around it and a leading UTF-8 byte order mark aside), strictly.
 *
 * Results:
 *	The cJSON tree (free with cJSON_Delete), or NULL with, when the
 *	pointers are not NULL, the byte offset of the error and a static
 *	reason.
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

cJSON *
TtoJsonParse(
    const char *text,
    size_t len,
    size_t *offPtr,
    const char **whyPtr)
{
    return Parse(text, len, offPtr, whyPtr, 0);
}

/*
 *----------------------------------------------------------------------
 *
 * TtoJsonHasNul --
 *
 *	Whether a member of obj (the root, or a member value of the root)
 *	named in names has \u0000 in its name or string value: cJSON ends
 *	its C strings there, so "access_token\u0000x" would read as
 *	"access_token" and a token would be cut short.  text must be what
 *	root was parsed from.
 *
 * Results:
 *	1 or 0.
 *
 *----------------------------------------------------------------------
 */

static int
HasNulEscape(
    const char *s,
    size_t n)
{
    size_t i;

    for (i = 0; i + 5 < n; i++) {
	if (s[i] == '\\') {
	    if (s[i + 1] == 'u' && memcmp(s + i + 2, "0000", 4) == 0) {
		return 1;
	    }
	    i++;
	}
    }
    return 0;
}

int
TtoJsonHasNul(
    const char *text,
    size_t len,
    const cJSON *root,
    const cJSON *obj,
    const char *const *names)
{
    Cursor c;
    const cJSON *child;
    const char *t;
    size_t n;
    int i;

    CursorInit(&c, text, len);
    Token(&c, &t);			/* the root's '{' */
    for (child = root->child; obj != root && child; child = child->next) {
	Token(&c, &t);			/* key */
	if (child == obj) {
	    Token(&c, &t);		/* '{' */
	    break;
	}
	SkipValue(&c);
    }
    for (child = obj->child; child; child = child->next) {
	int read = 0;

	n = Token(&c, &t);
	for (i = 0; names[i] && child->string; i++) {
	    read |= (strcmp(child->string, names[i]) == 0);
	}
	if (read && HasNulEscape(t, n)) {
	    return 1;
	}
	if (read && cJSON_IsString(child)) {
	    n = Token(&c, &t);
	    if (HasNulEscape(t, n)) {
		return 1;
	    }
	} else {
	    SkipValue(&c);
	}
    }
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoJsonWide --
 *
 *	Reads an integer: a JSON number that is integral and fits 64 bits
 *	(exact up to 2^53, as cJSON holds doubles), or a string of decimal
 *	digits (some providers quote their numbers).
 *
 * Results:
 *	1 with *valuePtr, or 0.
 *
 *----------------------------------------------------------------------
 */

int
TtoJsonWide(
    const cJSON *item,
    long long *valuePtr)
{
    const char *s = cJSON_IsString(item) ? item->valuestring : NULL;
    char *end;
    long long v;

    if (cJSON_IsNumber(item)) {
	double d = item->valuedouble;

	/* The bounds are exact powers of two; NaN fails both tests. */
	if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)
		|| (double) (long long) d != d) {
	    return 0;
	}
	*valuePtr = (long long) d;
	return 1;
    }
    if (s == NULL || !IS_DIGIT(s[*s == '-'])) {
	return 0;
    }
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0') {
	return 0;
    }
    *valuePtr = v;
    return 1;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoJsonPretty --
 *
 *	Re-indents a JSON text that TtoJsonParse accepted: two spaces per
 *	level, one member or element per line, "key": value, {} and [] when
 *	empty, no trailing newline.  Every string and number is copied byte
 *	for byte.  Edits change one object (the top-level object, or with
 *	target >= 0 the object value of its target'th member): an edit with
 *	index >= 0 replaces that member's value, one with index < 0 is a
 *	member added before the object's closing brace.  Edit values are
 *	JSON texts, copied as given.
 *
 * Results:
 *	1 with the text appended to *out (initialized by the caller), or 0
 *	if it would be too large.
 *
 *----------------------------------------------------------------------
 */

static int
Put(
    Tcl_DString *ds,
    const char *s,
    size_t n)
{
    if (n > (size_t) (TCL_SIZE_MAX / 2) - (size_t) Tcl_DStringLength(ds)) {
	return 0;
    }
    Tcl_DStringAppend(ds, s, (Tcl_Size) n);
    return 1;
}

static int
Newline(
    Tcl_DString *ds,
    int depth)
{
    int ok = Put(ds, "\n", 1);

    while (ok && depth-- > 0) {
	ok = Put(ds, "  ", 2);
    }
    return ok;
}

int
TtoJsonPretty(
    const char *text,
    size_t len,
    int target,
    const TtoJsonEdit *edits,
    int nEdits,
    Tcl_DString *out)
{
    Tcl_DString *ds = out;
    Cursor c, peek;
    const char *t, *u;
    size_t n;
    int depth = 0, ok = 1, member = -1, top = -1, i, items = 0;
    int tdepth = (target >= 0) ? 2 : 1, inTarget = 0, done = 0, appends = 0;

    for (i = 0; i < nEdits; i++) {
	appends |= (edits[i].index < 0);
    }
    CursorInit(&c, text, len);
    while (ok && (n = RawToken(&c, &t)) > 0) {
	switch (*t) {
	case '{': case '[': {
	    int enter = (!done && depth + 1 == tdepth && *t == '{'
		    && (target < 0 || top == target));
	    int empty;

	    peek = c;
	    empty = (RawToken(&peek, &u) == 1 && (*u == '}' || *u == ']'));
	    ok = Put(ds, t, 1);
	    if (empty && !(enter && appends)) {
		ok = ok && Put(ds, u, 1);
		c = peek;
		done |= enter;
		break;
	    }
	    depth++;
	    if (enter) {
		inTarget = 1;
	    }
	    if (!empty) {
		ok = ok && Newline(ds, depth);
	    }
	    break;
	}
	case '}': case ']':
	    if (inTarget && depth == tdepth) {
		for (i = 0; ok && i < nEdits; i++) {
		    if (edits[i].index < 0) {
			ok = (items == 0 || Put(ds, ",", 1))
			    && Newline(ds, depth) && Put(ds, "\"", 1)
			    && Put(ds, edits[i].name, strlen(edits[i].name))
			    && Put(ds, "\": ", 3)
			    && Put(ds, edits[i].json, strlen(edits[i].json));
			items++;
		    }
		}
		inTarget = 0;
		done = 1;
	    }
	    depth--;
	    ok = ok && Newline(ds, depth) && Put(ds, t, 1);
	    break;
	case ',':
	    ok = Put(ds, ",", 1) && Newline(ds, depth);
	    break;
	case ':':
	    ok = Put(ds, ": ", 2);
	    top += (depth == 1);
	    if (inTarget && depth == tdepth) {
		member++;
		for (i = 0; ok && i < nEdits; i++) {
		    if (edits[i].index == member) {
			ok = Put(ds, edits[i].json, strlen(edits[i].json));
			SkipValue(&c);
			break;
		    }
		}
	    }
	    break;
	default:
	    ok = Put(ds, t, n);
	    items += (inTarget && depth == tdepth);
	    break;
	}
    }
    return ok;
}

/*
 * Tcl values.  Strings are UTF-8 in JSON and cJSON; Tcl's internal form
 * differs for NUL and (8.6) for characters beyond U+FFFF, so anything
 * not plain ASCII goes through Tcl's utf-8 encoding.
 */

typedef struct {
    Tcl_Encoding utf8;		/* fetched when first needed */
    int ascii;			/* the last TextFromObj text is ASCII */
} Conv;

static Tcl_Obj *
Utf8ToObj(
    Conv *cv,
    const char *bytes,
    size_t len)
{
    Tcl_DString ds;
    Tcl_Obj *objPtr;
    size_t i;

    for (i = 0; i + 8 <= len && !((Load8(bytes + i) | (Load8(bytes + i)
	    - ONES)) & HIGHS); i += 8) {
    }
    for (; i < len && (unsigned char) bytes[i] - 1u < 0x7Fu; i++) {
    }
    if (i == len) {
	return Tcl_NewStringObj(bytes, (Tcl_Size) len);
    }
    if (cv->utf8 == NULL) {
	cv->utf8 = Tcl_GetEncoding(NULL, "utf-8");
    }
    Tcl_ExternalToUtfDString(cv->utf8, bytes, (Tcl_Size) len, &ds);
    objPtr = Tcl_NewStringObj(Tcl_DStringValue(&ds), Tcl_DStringLength(&ds));
    Tcl_DStringFree(&ds);
    return objPtr;
}

/*
 * The decoded bytes of a string token t (n bytes with its quotes), into
 * ds.  cJSON's value is right unless the text has \u0000, where its C
 * string ends: then cJSON decodes the pieces between the NULs.
 */

static void
StringBytes(
    const char *value,
    const char *t,
    size_t n,
    Tcl_DString *ds)
{
    const char *p = t + 1, *end = t + n - 1, *q;
    Tcl_DString piece;
    cJSON *item;

    Tcl_DStringInit(ds);
    if (memchr(t, '\\', n) == NULL) {
	Tcl_DStringAppend(ds, p, (Tcl_Size) (end - p));
	return;
    }
    if (!HasNulEscape(t, n)) {
	Tcl_DStringAppend(ds, value ? value : "", -1);
	return;
    }
    Tcl_DStringInit(&piece);
    while (p <= end) {
	for (q = p; q < end && !(q[0] == '\\' && q[1] == 'u'
		&& memcmp(q + 2, "0000", 4) == 0); q++) {
	    q += (*q == '\\');
	}
	Tcl_DStringSetLength(&piece, 0);
	Tcl_DStringAppend(&piece, "\"", 1);
	Tcl_DStringAppend(&piece, p, (Tcl_Size) (q - p));
	Tcl_DStringAppend(&piece, "\"", 1);
	item = ParseLocked(Tcl_DStringValue(&piece),
		(size_t) Tcl_DStringLength(&piece), NULL);
	if (item && item->valuestring) {
	    Tcl_DStringAppend(ds, item->valuestring, -1);
	}
	cJSON_Delete(item);
	if (q < end) {
	    Tcl_DStringAppend(ds, "", 1);	/* the NUL */
	}
	p = q + 6;
    }
    Tcl_DStringFree(&piece);
}

static Tcl_Obj *
StringObj(
    Conv *cv,
    const char *value,
    const char *t,
    size_t n)
{
    Tcl_DString ds;
    Tcl_Obj *objPtr;

    if (memchr(t, '\\', n) == NULL) {
	return cv->ascii ? Tcl_NewStringObj(t + 1, (Tcl_Size) n - 2)
		: Utf8ToObj(cv, t + 1, n - 2);
    }
    if (value != NULL && !HasNulEscape(t, n)) {
	return Utf8ToObj(cv, value, strlen(value));
    }
    StringBytes(value, t, n, &ds);
    objPtr = Utf8ToObj(cv, Tcl_DStringValue(&ds),
	    (size_t) Tcl_DStringLength(&ds));
    Tcl_DStringFree(&ds);
    return objPtr;
}

/*
 * A number: integers within 2^53 as Tcl integers; other integers as
 * their text, which Tcl reads as an exact wide or big integer; other
 * numbers as cJSON's double, or their text when that is not finite
 * (1e400, which Tcl reads as Inf).
 */

static Tcl_Obj *
NumberObj(
    const cJSON *item,
    const char *t,
    size_t n)
{
    double d = item->valuedouble;
    size_t i;

    for (i = 0; i < n && t[i] != '.' && t[i] != 'e' && t[i] != 'E'; i++) {
    }
    if (i == n && d > -9007199254740992.0 && d < 9007199254740992.0) {
	return Tcl_NewWideIntObj((Tcl_WideInt) d);
    }
    if (i == n || !isfinite(d)) {
	return Tcl_NewStringObj(t, (Tcl_Size) n);
    }
    return Tcl_NewDoubleObj(d);
}

/*
 * Converts item, whose text starts at the cursor, and moves the cursor
 * past it: object -> dict (order kept, the last duplicate's value),
 * array -> list, true/false -> 1/0, null -> "".
 */

static Tcl_Obj *
ToTcl(
    Conv *cv,
    const cJSON *item,
    Cursor *c)
{
    const cJSON *child;
    const char *t;
    size_t n = Token(c, &t);
    Tcl_Obj *objPtr, *keyObj;

    if (cJSON_IsObject(item)) {
	objPtr = Tcl_NewDictObj();
	for (child = item->child; child; child = child->next) {
	    n = Token(c, &t);
	    keyObj = StringObj(cv, child->string, t, n);
	    Tcl_IncrRefCount(keyObj);
	    Tcl_DictObjPut(NULL, objPtr, keyObj, ToTcl(cv, child, c));
	    Tcl_DecrRefCount(keyObj);
	}
	Token(c, &t);
	return objPtr;
    }
    if (cJSON_IsArray(item)) {
	objPtr = Tcl_NewListObj(0, NULL);
	for (child = item->child; child; child = child->next) {
	    Tcl_ListObjAppendElement(NULL, objPtr, ToTcl(cv, child, c));
	}
	Token(c, &t);
	return objPtr;
    }
    if (cJSON_IsString(item)) {
	return StringObj(cv, item->valuestring, t, n);
    }
    if (cJSON_IsNumber(item)) {
	return NumberObj(item, t, n);
    }
    if (cJSON_IsBool(item)) {
	return Tcl_NewWideIntObj(cJSON_IsTrue(item));
    }
    return Tcl_NewObj();
}

/*
 * One step of a path.  Returns 1 (a step), 0 (end), -1 (malformed).
 */

static int
PathNext(
    const char **pPtr,
    const char *end,
    int first,
    PathStep *stepPtr)
{
    const char *p = *pPtr, *key;

    if (p >= end) {
	return 0;
    }
    if (*p == '[') {
	const char *digits = ++p;

	stepPtr->isIndex = 1;
	stepPtr->index = 0;
	for (; p < end && IS_DIGIT(*p); p++) {
	    size_t d = (size_t) (*p - '0'), i = stepPtr->index;

	    stepPtr->index = (i > (SIZE_MAX - d) / 10) ? SIZE_MAX : i * 10 + d;
	}
	if (p == digits || p >= end || *p != ']') {
	    return -1;
	}
	*pPtr = p + 1;
	return 1;
    }
    if ((*p == '.') == first) {
	return -1;			/* ".a" or "a[0]b" */
    }
    key = (p += !first);
    while (p < end && *p != '.' && *p != '[') {
	p++;
    }
    if (p == key) {
	return -1;			/* "a..b", "a.", "a.[0]" */
    }
    stepPtr->isIndex = 0;
    stepPtr->key = key;
    stepPtr->keyLen = (size_t) (p - key);
    *pPtr = p;
    return 1;
}

/*
 * The value at a path (the last of duplicate keys), with *c moved to its
 * text; NULL if there is none.
 */

static const cJSON *
Navigate(
    const cJSON *item,
    Cursor *c,
    const char *path,
    const char *end)
{
    const cJSON *child, *found;
    Cursor at = *c;
    PathStep step;
    const char *t;
    size_t i, n;
    int first = 1;

    for (; PathNext(&path, end, first, &step) == 1; first = 0) {
	found = NULL;
	if (step.isIndex ? !cJSON_IsArray(item) : !cJSON_IsObject(item)) {
	    return NULL;
	}
	Token(c, &t);			/* '{' or '[' */
	for (child = item->child, i = 0; child; child = child->next, i++) {
	    if (step.isIndex && i == step.index) {
		found = child;
		at = *c;
		break;
	    } else if (!step.isIndex) {
		Tcl_DString key;

		n = Token(c, &t);
		StringBytes(child->string, t, n, &key);
		if ((size_t) Tcl_DStringLength(&key) == step.keyLen
			&& memcmp(Tcl_DStringValue(&key), step.key,
			step.keyLen) == 0) {
		    found = child;	/* the last of duplicates */
		    at = *c;
		}
		Tcl_DStringFree(&key);
	    }
	    SkipValue(c);
	}
	if (found == NULL) {
	    return NULL;
	}
	item = found;
	*c = at;
    }
    return item;
}

/*
 * The UTF-8 form of a Tcl string, in ds when it is not plain ASCII.
 */

static const char *
TextFromObj(
    Conv *cv,
    Tcl_Obj *objPtr,
    Tcl_DString *ds,
    size_t *lenPtr)
{
    Tcl_Size len, i;
    const char *s = Tcl_GetStringFromObj(objPtr, &len);

    Tcl_DStringInit(ds);
    for (i = 0; i + 8 <= len && !(Load8(s + i) & HIGHS); i += 8) {
    }
    for (; i < len && (unsigned char) s[i] < 0x80; i++) {
    }
    cv->ascii = (i == len);
    if (i == len) {
	*lenPtr = (size_t) len;
	return s;
    }
    if (cv->utf8 == NULL) {
	cv->utf8 = Tcl_GetEncoding(NULL, "utf-8");
    }
    Tcl_UtfToExternalDString(cv->utf8, s, len, ds);
    *lenPtr = (size_t) Tcl_DStringLength(ds);
    return Tcl_DStringValue(ds);
}

static int
Fail(
    Tcl_Interp *interp,
    const char *kind,
    Tcl_Obj *pathObj,
    Tcl_Obj *msgObj)
{
    Tcl_Obj *codeObj = Tcl_NewStringObj("TTOAUTH2 JSON", -1);

    Tcl_ListObjAppendElement(NULL, codeObj, Tcl_NewStringObj(kind, -1));
    if (pathObj) {
	Tcl_ListObjAppendElement(NULL, codeObj, pathObj);
    }
    Tcl_SetObjResult(interp, msgObj);
    Tcl_SetObjErrorCode(interp, codeObj);
    return TCL_ERROR;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoJsonSubcmd --
 *
 *	[ttoauth2 json parse text], [ttoauth2 json get text path ?default?],
 *	[ttoauth2 json raw text path ?default?], [ttoauth2 json pretty
 *	text]; objv[0] is "ttoauth2", objv[1] "json".  The whole text is
 *	checked first, default or not.
 *
 * Results:
 *	A standard Tcl result.  Errors {TTOAUTH2 JSON PARSE} (with the
 *	byte offset in the text's UTF-8 form and a reason, never the text),
 *	{TTOAUTH2 JSON BADPATH path}, {TTOAUTH2 JSON NOPATH path}; Tcl's
 *	own {TCL WRONGARGS} and {TCL LOOKUP INDEX subcommand word}.
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

int
TtoJsonSubcmd(
    Tcl_Interp *interp,
    Tcl_Size objc,
    Tcl_Obj *const objv[])
{
    static const char *const subcmds[] = {
	"get", "parse", "pretty", "raw", NULL
    };
    enum { JSON_GET, JSON_PARSE, JSON_PRETTY, JSON_RAW };
    static const char *const usage[] = {
	"text path ?default?", "text", "text", "text path ?default?"
    };
    Conv cv;
    Tcl_DString textDs, pathDs;
    const char *text, *path = "", *why, *p;
    size_t len, pathLen = 0, off;
    PathStep step;
    cJSON *root = NULL;
    const cJSON *item;
    Cursor c;
    int index, r, code = TCL_ERROR;

    if (objc < 3) {
	Tcl_WrongNumArgs(interp, 2, objv, "subcommand ?arg ...?");
	return TCL_ERROR;
    }
    if (Tcl_GetIndexFromObjStruct(interp, objv[2], subcmds,
	    sizeof(char *), "subcommand", 0, &index) != TCL_OK) {
	return TCL_ERROR;
    }
    if ((index == JSON_GET || index == JSON_RAW) ? (objc != 5 && objc != 6)
	    : objc != 4) {
	Tcl_WrongNumArgs(interp, 3, objv, usage[index]);
	return TCL_ERROR;
    }
    memset(&cv, 0, sizeof(cv));
    Tcl_DStringInit(&pathDs);
    if (objc >= 5) {
	path = TextFromObj(&cv, objv[4], &pathDs, &pathLen);
	for (p = path; (r = PathNext(&p, path + pathLen, p == path,
		&step)) == 1; ) {
	}
	if (r < 0) {
	    Tcl_DStringFree(&pathDs);
	    return Fail(interp, "BADPATH", objv[4], Tcl_ObjPrintf(
		    "malformed JSON path \"%s\": use key, .key and [index] "
		    "steps", Tcl_GetString(objv[4])));
	}
    }

    text = TextFromObj(&cv, objv[3], &textDs, &len);
    root = Parse(text, len, &off, &why, 1);	/* strings read from text */
    if (root == NULL) {
	Fail(interp, "PARSE", NULL, Tcl_ObjPrintf(
		"invalid JSON at byte offset %lu: %s", (unsigned long) off,
		why));
	goto done;
    }
    CursorInit(&c, text, len);
    if (index == JSON_PRETTY) {
	Tcl_DString out;

	Tcl_DStringInit(&out);
	if (TtoJsonPretty(text, len, -1, NULL, 0, &out)) {
	    Tcl_SetObjResult(interp, Utf8ToObj(&cv, Tcl_DStringValue(&out),
		    (size_t) Tcl_DStringLength(&out)));
	    code = TCL_OK;
	} else {
	    Fail(interp, "PARSE", NULL, Tcl_NewStringObj(
		    "the JSON text is too large", -1));
	}
	Tcl_DStringFree(&out);
	goto done;
    }
    item = Navigate(root, &c, path, path + pathLen);
    if (item == NULL && objc == 6) {
	Tcl_SetObjResult(interp, objv[5]);
    } else if (item == NULL) {
	Fail(interp, "NOPATH", objv[4], Tcl_ObjPrintf(
		"no value at \"%s\" in JSON", Tcl_GetString(objv[4])));
	goto done;
    } else if (index == JSON_RAW) {
	const char *start;

	Token(&c, &start);
	c.p = start;
	SkipValue(&c);
	Tcl_SetObjResult(interp, Utf8ToObj(&cv, start,
		(size_t) (c.p - start)));
    } else {
	Tcl_SetObjResult(interp, ToTcl(&cv, item, &c));
    }
    code = TCL_OK;

  done:
    cJSON_Delete(root);
    Tcl_DStringFree(&textDs);
    Tcl_DStringFree(&pathDs);
    if (cv.utf8) {
	Tcl_FreeEncoding(cv.utf8);
    }
    return code;
}
