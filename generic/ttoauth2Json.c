/*
 * ttoauth2Json.c --
 *
 *	JSON for ttoauth2, on cJSON: the [ttoauth2 json parse|get|raw|pretty]
 *	commands and the helpers the token and store code use.
 *
 *	cJSON builds every tree.  Before it, a strict checker (Check) reads
 *	the text for what cJSON lets through: the grammar of RFC 8259,
 *	numbers as it writes them (cJSON takes 01, +1, .5, 1.), raw control
 *	characters (cJSON takes every byte <= 32 for white space), text after
 *	the value, nesting deeper than TTO_JSON_MAX_DEPTH.  It reports the
 *	first error and its byte offset, never the text (it may hold secrets).
 *
 *	cJSON holds a string as a C string, which \u0000 would cut short, so
 *	Check hands cJSON the text with each \u0000 written as C0 80, Tcl's
 *	own form of NUL: strings stay whole, and a NUL shows as those bytes.
 *	cJSON holds a number as a double; where that would lose what the text
 *	says, the code reads the text beside the tree.  cJSON keeps every
 *	member (duplicates too) in text order, so a cursor stepping through
 *	the tokens of the text (Token, SkipValue) stays in step with a walk of
 *	the tree.  That gives integers beyond 2^53 digit for digit, [json raw]
 *	the value as written, and a re-indenter (TtoJsonPretty) that copies
 *	strings and numbers byte for byte, so token files keep what servers
 *	sent.
 *
 *	Paths (Chilkat style): "key", ".key" and "[N]" steps, e.g.
 *	"data.granted_scopes[2]"; a key runs to the next '.' or '['; the empty
 *	path is the whole value; of duplicate keys the last one wins.
 *
 *	cJSON's parser writes a process-wide error record, so parses are
 *	serialized (ParseLocked).
 */

#include "ttoauth2Int.h"
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define IS_DIGIT(c)	((c) >= '0' && (c) <= '9')
#define IS_SPACE(c)	((c) == ' ' || (c) == '\t' || (c) == '\n' || (c) == '\r')
#define IS_DELIM(c)	(IS_SPACE(c) || (c) == ',' || (c) == ':' || (c) == '"' \
	|| (c) == '{' || (c) == '}' || (c) == '[' || (c) == ']')
#define SPECIAL(c)	((unsigned char) (c) < 0x20 || (c) == '"' \
	|| (c) == '\\')
#define NUL_UTF8	"\xC0\x80"	/* how cJSON's strings here hold NUL */
#define ONES		0x0101010101010101ULL
#define HIGHS		0x8080808080808080ULL

typedef struct {
    const char *p, *end;	/* the rest of the text */
    int all;			/* Token returns ',' and ':' too */
} Cursor;

typedef struct {
    const char *key;		/* NULL: an index step */
    size_t keyLen;
    size_t index;		/* SIZE_MAX when too large */
} PathStep;

enum { VALUE = 1, KEY = 2, COLON = 4, NEXT = 8, CLOSE = 16 };	/* Check */

TCL_DECLARE_MUTEX(cjsonMutex)

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

/* A cursor on a text, past a leading UTF-8 byte order mark. */

static void
CursorInit(
    Cursor *c,
    const char *text,
    size_t len,
    int all)
{
    c->p = text + ((len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) ? 3 : 0);
    c->end = text + len;
    c->all = all;
}

/* Eight bytes at a time: whether any is SPECIAL, or not in 1..127. */

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
    if (q > d && q < end && *q == '.') {
	d = ++q;
	q = Digits(q, end);
    }
    if (q > d && q < end && (*q == 'e' || *q == 'E')) {
	d = (q += 1 + (q + 1 < end && (q[1] == '+' || q[1] == '-')));
	q = Digits(q, end);
    }
    return q > d && q == end;
}

/* Whether p, a '\\' before end, starts an escape that cJSON reads right
 * (it takes a bad hex digit for 0: "\u12G4" would be a NUL). */

static int
EscapeOk(
    const char *p,
    const char *end)
{
    int i = 2;

    if (p + 1 < end && p[1] == 'u') {
	while (i < 6 && p + i < end && isxdigit((unsigned char) p[i])) {
	    i++;
	}
	return i == 6;
    }
    return p + 1 < end && p[1] != '\0' && strchr("\"\\/bfnrt", p[1]);
}

/*
 * The next token: a string with its quotes, a number or literal, one of
 * {}[] and (with c->all) , and :.  Returns its length, 0 at the end.
 * Safe on any bytes.
 */

static size_t
Token(
    Cursor *c,
    const char **startPtr)
{
    const char *p = c->p, *s, *q;

    while (p < c->end && (IS_SPACE(*p)
	    || (!c->all && (*p == ',' || *p == ':')))) {
	p++;
    }
    s = *startPtr = p;
    if (p < c->end && *p == '"') {
	do {				/* to a '"' after an even run of '\\' */
	    p = memchr(p + 1, '"', (size_t) (c->end - p - 1));
	    for (q = p; q && q[-1] == '\\'; q--) {
	    }
	} while (p && (p - q) % 2);
	p = p ? p + 1 : c->end;
    } else if (p < c->end && IS_DELIM(*p)) {
	p++;
    } else {
	while (p < c->end && !IS_DELIM(*p)) {
	    p++;
	}
    }
    c->p = p;
    return (size_t) (p - s);
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
 * Reads the rest of a text strictly.  Returns NULL or the reason for the
 * first error, with its offset from text.  If the text has \u0000,
 * leaves in fixed the text with each written as NUL_UTF8; with skeleton
 * set, the text with strings that have no escape emptied (for callers
 * that read them from the text; cJSON parses that much faster).
 */

static const char *
Check(
    Cursor *c,
    const char *text,
    size_t *offPtr,
    Tcl_DString *fixed,
    int skeleton)
{
    char open[TTO_JSON_MAX_DEPTH];	/* '{' or '[' at each level */
    const char *t, *q, *e, *why, *copied = c->p;
    size_t n;
    int depth = 0, want = VALUE, kind, plain;

    while ((n = Token(c, &t)) > 0) {
	*offPtr = (size_t) (t - text);
	if (want == 0) {
	    return "unexpected data after the JSON value";
	}
	kind = (*t == ',') ? NEXT : (*t == ':') ? COLON
		: (*t == '}' || *t == ']') ? CLOSE : (*t == '"') ? VALUE | KEY
		: VALUE;
	why = NULL;
	plain = 1;
	q = t;
	if (*t == '"') {
	    for (q++, e = t + n; ; q += 2) {
		while (q + 8 <= e && !Special8(q)) {
		    q += 8;
		}
		while (q < e && !SPECIAL(*q)) {
		    q++;
		}
		if (q < e && *q == '"') {
		    break;
		}
		plain = 0;
		if (q == e || *q != '\\' || !EscapeOk(q, e)) {
		    why = (q == e) ? "unterminated string" : (*q == '\\')
			    ? "invalid escape in string"
			    : "control character in string";
		    break;
		}
		if (e - q >= 6 && memcmp(q, "\\u0000", 6) == 0) {
		    Tcl_DStringAppend(fixed, copied, (Tcl_Size) (q - copied));
		    Tcl_DStringAppend(fixed, NUL_UTF8, 2);
		    copied = q + 6;
		}
	    }
	} else if (*t == '-' || *t == '+' || *t == '.' || IS_DIGIT(*t)) {
	    why = NumberOk(t, t + n) ? NULL : "invalid number";
	} else if (!IS_DELIM(*t) && (n < 4 || n > 5 || memcmp(t,
		(n == 5) ? "false" : (*t == 't') ? "true" : "null", n) != 0)) {
	    why = "unexpected character";
	}
	if (why && (q == t || (want & kind))) {
	    *offPtr = (size_t) (q - text);	/* the first error */
	    return why;
	}
	if (!(want & kind) || (kind == CLOSE && *t != open[depth - 1] + 2)) {
	    return "unexpected character";
	}
	switch (*t) {
	case '{': case '[':
	    if (depth == TTO_JSON_MAX_DEPTH) {
		return "nested deeper than 1000 levels";
	    }
	    open[depth++] = *t;
	    want = (*t == '{' ? KEY : VALUE) | CLOSE;
	    continue;
	case ',': case ':':
	    want = (*t == ',' && open[depth - 1] == '{') ? KEY : VALUE;
	    continue;
	case '}': case ']':
	    depth--;
	    break;
	case '"':
	    if (skeleton && plain && n > 2) {
		Tcl_DStringAppend(fixed, copied, (Tcl_Size) (t + 1 - copied));
		copied = t + n - 1;
	    }
	    if (want & KEY) {
		want = COLON;
		continue;
	    }
	}
	want = depth ? NEXT | CLOSE : 0;
    }
    if (want) {
	*offPtr = (size_t) (c->end - text);
	return "unexpected end of input";
    }
    if (Tcl_DStringLength(fixed) > 0) {
	Tcl_DStringAppend(fixed, copied, (Tcl_Size) (c->end - copied));
    }
    return NULL;
}

/* TtoJsonParse's work; skeleton as for Check. */

static cJSON *
Parse(
    const char *text,
    size_t len,
    size_t *offPtr,
    const char **whyPtr,
    int skeleton)
{
    Cursor c;
    Tcl_DString fixed;
    const char *start, *end = text;
    cJSON *root = NULL;

    CursorInit(&c, text, len, 1);
    start = c.p;
    Tcl_DStringInit(&fixed);
    *whyPtr = Check(&c, text, offPtr, &fixed, skeleton);
    if (*whyPtr == NULL && Tcl_DStringLength(&fixed) > 0) {
	root = ParseLocked(Tcl_DStringValue(&fixed),
		(size_t) Tcl_DStringLength(&fixed), NULL);
    }
    if (*whyPtr == NULL && root == NULL) {	/* what cJSON refuses, where */
	root = ParseLocked(start, len - (size_t) (start - text), &end);
	*whyPtr = root ? NULL : "unexpected character";
	*offPtr = (size_t) (end - text);
    }
    Tcl_DStringFree(&fixed);
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
 *	The cJSON tree (free with cJSON_Delete), with NUL as NUL_UTF8 in
 *	its strings; or NULL with, when the pointers are not NULL, the
 *	byte offset of the error and a static reason.
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
    size_t off;
    const char *why;

    return Parse(text, len, offPtr ? offPtr : &off, whyPtr ? whyPtr : &why,
	    0);
}

/*
 *----------------------------------------------------------------------
 *
 * TtoJsonHasNul --
 *
 *	Whether a member of obj (from TtoJsonParse) named in names, up to
 *	a NUL in its name, has a NUL in its name or string value: read as
 *	C strings, "access_token\u0000x" would be "access_token" and a
 *	token would be cut short.
 *
 * Results:
 *	1 or 0.
 *
 *----------------------------------------------------------------------
 */

int
TtoJsonHasNul(
    const cJSON *obj,
    const char *const *names)
{
    const cJSON *child;
    const char *nul;
    size_t n;
    int i;

    for (child = obj->child; child; child = child->next) {
	if (child->string == NULL) {
	    continue;
	}
	nul = strstr(child->string, NUL_UTF8);
	n = nul ? (size_t) (nul - child->string) : strlen(child->string);
	for (i = 0; names[i]; i++) {
	    if (strlen(names[i]) == n && memcmp(names[i], child->string, n) == 0
		    && (nul || (cJSON_IsString(child)
		    && strstr(child->valuestring, NUL_UTF8)))) {
		return 1;
	    }
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
    double d = cJSON_IsNumber(item) ? item->valuedouble : NAN;
    char *end;
    long long v = 0;
    int ok;

    if (s != NULL && IS_DIGIT(s[*s == '-'])) {
	errno = 0;
	v = strtoll(s, &end, 10);
	ok = (errno == 0 && *end == '\0');
    } else {
	/* The bounds are exact powers of two; NaN fails both tests. */
	ok = (d >= -9223372036854775808.0 && d < 9223372036854775808.0
		&& (double) (long long) d == d);
	v = ok ? (long long) d : 0;
    }
    if (ok) {
	*valuePtr = v;
    }
    return ok;
}

/* Appends s to ds, then with indent >= 0 a newline and indent levels of
 * two spaces; 0 when ds would grow too large. */

static int
Put(
    Tcl_DString *ds,
    const char *s,
    size_t n,
    int indent)
{
    if (n + 2 * (size_t) (indent + 1) > (size_t) (TCL_SIZE_MAX / 2)
	    - (size_t) Tcl_DStringLength(ds)) {
	return 0;
    }
    Tcl_DStringAppend(ds, s, (Tcl_Size) n);
    Tcl_DStringAppend(ds, "\n", indent >= 0);
    while (indent-- > 0) {
	Tcl_DStringAppend(ds, "  ", 2);
    }
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

int
TtoJsonPretty(
    const char *text,
    size_t len,
    int target,
    const TtoJsonEdit *edits,
    int nEdits,
    Tcl_DString *out)
{
    Cursor c;
    const char *t;
    size_t n;
    int depth = 0, ok = 1, member = -1, top = -1, i, here, in = 0;
    int fresh = 0;			/* after '{' or '[' */

    CursorInit(&c, text, len, 1);
    while (ok && (n = Token(&c, &t)) > 0) {
	here = (in && depth == (target >= 0 ? 2 : 1));	/* the object edited */
	if (fresh && *t != '}' && *t != ']') {
	    ok = Put(out, "", 0, depth);
	    fresh = 0;
	}
	switch (*t) {
	case '{': case '[':
	    in |= (*t == '{' && depth == (target >= 0)
		    && (target < 0 || top == target));
	    ok = ok && Put(out, t, 1, -1);
	    depth++;
	    fresh = 1;
	    break;
	case '}': case ']':
	    for (i = 0; here && i < nEdits; i++) {
		const char *name = edits[i].name, *json = edits[i].json;

		if (edits[i].index < 0) {
		    ok = ok && Put(out, ",", !fresh, depth)
			    && Put(out, "\"", 1, -1)
			    && Put(out, name, strlen(name), -1)
			    && Put(out, "\": ", 3, -1)
			    && Put(out, json, strlen(json), -1);
		    fresh = 0;
		}
	    }
	    in &= !here;
	    ok = ok && (fresh || Put(out, "", 0, depth - 1))
		    && Put(out, t, 1, -1);
	    depth--;
	    fresh = 0;
	    break;
	case ',':
	    ok = ok && Put(out, ",", 1, depth);
	    break;
	case ':':
	    ok = ok && Put(out, ": ", 2, -1);
	    top += (depth == 1);
	    member += here;
	    for (i = 0; here && i < nEdits && edits[i].index != member; i++) {
	    }
	    if (here && i < nEdits) {
		ok = ok && Put(out, edits[i].json, strlen(edits[i].json), -1);
		SkipValue(&c);
	    }
	    break;
	default:
	    ok = ok && Put(out, t, n, -1);
	}
    }
    return ok;
}

/*
 * Tcl values.  Strings are UTF-8 in JSON and cJSON; Tcl's own form
 * differs for NUL and (8.6) for characters beyond U+FFFF, so anything not
 * plain ASCII (bytes 1 to 127) goes through Tcl's utf-8 encoding, which
 * also reads NUL_UTF8 as NUL.
 */

static int
Ascii(
    const char *s,
    size_t len)
{
    size_t i = 0;

    while (i + 8 <= len && !((Load8(s + i) | (Load8(s + i) - ONES)) & HIGHS)) {
	i += 8;
    }
    while (i < len && (unsigned char) s[i] - 1u < 0x7Fu) {
	i++;
    }
    return i == len;
}

static Tcl_Obj *
Utf8ToObj(
    Tcl_Encoding *utf8Ptr,	/* fetched when first needed */
    const char *bytes,
    size_t len)
{
    Tcl_DString ds;
    Tcl_Obj *objPtr;

    if (Ascii(bytes, len)) {
	return Tcl_NewStringObj(bytes, (Tcl_Size) len);
    }
    *utf8Ptr = *utf8Ptr ? *utf8Ptr : Tcl_GetEncoding(NULL, "utf-8");
    Tcl_ExternalToUtfDString(*utf8Ptr, bytes, (Tcl_Size) len, &ds);
    objPtr = Tcl_NewStringObj(Tcl_DStringValue(&ds), Tcl_DStringLength(&ds));
    Tcl_DStringFree(&ds);
    return objPtr;
}

/* The UTF-8 form of a Tcl string, in ds (initialized here) if not ASCII;
 * with nul set (a path), each NUL in it as NUL_UTF8. */

static const char *
TextFromObj(
    Tcl_Encoding *utf8Ptr,
    Tcl_Obj *objPtr,
    int nul,
    Tcl_DString *ds,
    size_t *lenPtr)
{
    Tcl_Size len, i;
    const char *s = Tcl_GetStringFromObj(objPtr, &len);
    Tcl_DString raw;

    Tcl_DStringInit(ds);
    *lenPtr = (size_t) len;
    if (!Ascii(s, (size_t) len)) {
	*utf8Ptr = *utf8Ptr ? *utf8Ptr : Tcl_GetEncoding(NULL, "utf-8");
	s = Tcl_UtfToExternalDString(*utf8Ptr, s, len, nul ? &raw : ds);
	for (i = 0; nul && i < Tcl_DStringLength(&raw); i++) {
	    Tcl_DStringAppend(ds, s[i] ? s + i : NUL_UTF8, s[i] ? 1 : 2);
	}
	if (nul) {
	    Tcl_DStringFree(&raw);
	}
	s = Tcl_DStringValue(ds);
	*lenPtr = (size_t) Tcl_DStringLength(ds);
    }
    return s;
}

/* A string token t (n bytes with its quotes) as a Tcl value: from the
 * text when it has no escape, else from cJSON's value. */

static Tcl_Obj *
StringObj(
    Tcl_Encoding *utf8Ptr,
    const char *value,
    const char *t,
    size_t n)
{
    if (memchr(t, '\\', n) == NULL || value == NULL) {
	return Utf8ToObj(utf8Ptr, t + 1, n - 2);
    }
    return Utf8ToObj(utf8Ptr, value, strlen(value));
}

/*
 * Converts item, whose text starts at the cursor, and moves the cursor
 * past it: object -> dict (order kept, the last duplicate's value),
 * array -> list, true/false -> 1/0, null -> "".  Numbers: integers
 * within 2^53 as Tcl integers; other integers as their text, which Tcl
 * reads as an exact wide or big integer; other numbers as cJSON's
 * double, or their text when that is not finite (1e400: Tcl reads Inf).
 */

static Tcl_Obj *
ToTcl(
    Tcl_Encoding *utf8Ptr,
    const cJSON *item,
    Cursor *c)
{
    const cJSON *child;
    const char *t;
    size_t n = Token(c, &t), i;
    double d = item->valuedouble;
    Tcl_Obj *objPtr, *keyObj;

    if (cJSON_IsObject(item) || cJSON_IsArray(item)) {
	objPtr = cJSON_IsObject(item) ? Tcl_NewDictObj()
		: Tcl_NewListObj(0, NULL);
	for (child = item->child; child; child = child->next) {
	    if (cJSON_IsArray(item)) {
		Tcl_ListObjAppendElement(NULL, objPtr, ToTcl(utf8Ptr, child, c));
		continue;
	    }
	    n = Token(c, &t);
	    keyObj = StringObj(utf8Ptr, child->string, t, n);
	    Tcl_IncrRefCount(keyObj);
	    Tcl_DictObjPut(NULL, objPtr, keyObj, ToTcl(utf8Ptr, child, c));
	    Tcl_DecrRefCount(keyObj);
	}
	Token(c, &t);
	return objPtr;
    }
    if (cJSON_IsString(item)) {
	return StringObj(utf8Ptr, item->valuestring, t, n);
    }
    if (!cJSON_IsNumber(item)) {
	return cJSON_IsBool(item) ? Tcl_NewWideIntObj(cJSON_IsTrue(item))
		: Tcl_NewObj();
    }
    for (i = 0; i < n && t[i] != '.' && t[i] != 'e' && t[i] != 'E'; i++) {
    }
    if (i == n && d > -9007199254740992.0 && d < 9007199254740992.0) {
	return Tcl_NewWideIntObj((Tcl_WideInt) d);
    }
    return (i == n || !isfinite(d)) ? Tcl_NewStringObj(t, (Tcl_Size) n)
	    : Tcl_NewDoubleObj(d);
}

/* One step of a path.  Returns 1 (a step), 0 (end), -1 (malformed). */

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

	stepPtr->key = NULL;
	stepPtr->index = 0;
	for (; p < end && IS_DIGIT(*p); p++) {
	    size_t d = (size_t) (*p - '0'), i = stepPtr->index;

	    stepPtr->index = (i > (SIZE_MAX - d) / 10) ? SIZE_MAX : i * 10 + d;
	}
	*pPtr = p + 1;
	return (p == digits || p >= end || *p != ']') ? -1 : 1;
    }
    if ((*p == '.') == first) {
	return -1;			/* ".a" or "a[0]b" */
    }
    key = (p += !first);
    while (p < end && *p != '.' && *p != '[') {
	p++;
    }
    stepPtr->key = key;
    stepPtr->keyLen = (size_t) (p - key);
    *pPtr = p;
    return (p == key) ? -1 : 1;		/* "a..b", "a.", "a.[0]" */
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
    const char *t, *s;
    size_t i, n;
    int first = 1;

    for (; item && PathNext(&path, end, first, &step) == 1; first = 0) {
	if (step.key ? !cJSON_IsObject(item) : !cJSON_IsArray(item)) {
	    return NULL;
	}
	Token(c, &t);			/* '{' or '[' */
	for (child = item->child, i = 0, found = NULL; child;
		child = child->next, i++) {
	    if (step.key) {
		n = Token(c, &t);	/* the name: from the text or cJSON */
		s = memchr(t, '\\', n) ? child->string : t + 1;
		n = memchr(t, '\\', n) ? strlen(s) : n - 2;
		if (n == step.keyLen && memcmp(s, step.key, n) == 0) {
		    found = child;	/* the last of duplicates */
		    at = *c;
		}
	    } else if (i == step.index) {
		found = child;
		at = *c;
		break;
	    }
	    SkipValue(c);
	}
	item = found;
	*c = at;
    }
    return item;
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
    Tcl_Encoding utf8 = NULL;
    Tcl_DString textDs, pathDs, out;
    const char *text, *path = "", *why, *kind = "PARSE", *p;
    size_t len, pathLen = 0, off;
    PathStep step;
    cJSON *root = NULL;
    const cJSON *item;
    Tcl_Obj *result = NULL, *msg = NULL;
    Cursor c;
    int index, r;

    if (objc < 3) {
	Tcl_WrongNumArgs(interp, 2, objv, "subcommand ?arg ...?");
	return TCL_ERROR;
    }
    if (Tcl_GetIndexFromObjStruct(interp, objv[2], subcmds,
	    sizeof(char *), "subcommand", 0, &index) != TCL_OK) {
	return TCL_ERROR;
    }
    if ((index % 3) ? objc != 4 : (objc != 5 && objc != 6)) {
	Tcl_WrongNumArgs(interp, 3, objv,
		(index % 3) ? "text" : "text path ?default?");
	return TCL_ERROR;
    }
    Tcl_DStringInit(&pathDs);
    Tcl_DStringInit(&out);
    if (objc >= 5) {
	path = TextFromObj(&utf8, objv[4], 1, &pathDs, &pathLen);
    }
    for (p = path; (r = PathNext(&p, path + pathLen, p == path,
	    &step)) == 1; ) {
    }
    text = TextFromObj(&utf8, objv[3], 0, &textDs, &len);
    CursorInit(&c, text, len, 0);
    if (r < 0) {
	kind = "BADPATH";
	msg = Tcl_ObjPrintf("malformed JSON path \"%s\": use key, .key and "
		"[index] steps", Tcl_GetString(objv[4]));
    } else if ((root = Parse(text, len, &off, &why, 1)) == NULL) {
	msg = Tcl_ObjPrintf("invalid JSON at byte offset %lu: %s",
		(unsigned long) off, why);
    } else if (index == JSON_PRETTY) {
	if (TtoJsonPretty(text, len, -1, NULL, 0, &out)) {
	    result = Utf8ToObj(&utf8, Tcl_DStringValue(&out),
		    (size_t) Tcl_DStringLength(&out));
	} else {
	    msg = Tcl_NewStringObj("the JSON text is too large", -1);
	}
    } else if ((item = Navigate(root, &c, path, path + pathLen)) == NULL) {
	kind = "NOPATH";
	result = (objc == 6) ? objv[5] : NULL;
	msg = result ? NULL : Tcl_ObjPrintf("no value at \"%s\" in JSON",
		Tcl_GetString(objv[4]));
    } else if (index == JSON_RAW) {
	Token(&c, &p);
	c.p = p;
	SkipValue(&c);
	result = Utf8ToObj(&utf8, p, (size_t) (c.p - p));
    } else {
	result = ToTcl(&utf8, item, &c);
    }
    cJSON_Delete(root);
    Tcl_DStringFree(&textDs);
    Tcl_DStringFree(&pathDs);
    Tcl_DStringFree(&out);
    if (utf8) {
	Tcl_FreeEncoding(utf8);
    }
    if (msg) {
	Tcl_SetObjResult(interp, msg);
	Tcl_SetErrorCode(interp, "TTOAUTH2", "JSON", kind,
		(*kind == 'P') ? NULL : Tcl_GetString(objv[4]), NULL);
	return TCL_ERROR;
    }
    Tcl_SetObjResult(interp, result);
    return TCL_OK;
}
