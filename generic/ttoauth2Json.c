/*
 * ttoauth2Json.c --
 *
 *	JSON for ttoauth2: the [ttoauth2 json parse|get|pretty] commands and
 *	the cJSON helpers the token code uses (path lookup, conversion to Tcl
 *	values, wide integers, pretty printing).
 *
 *	Two readers live here, on purpose:
 *
 *	- The Tcl commands and TtoJsonPretty use a small validating scanner of
 *	  their own (JsonScan below) that works directly on the UTF-8 text.
 *	  cJSON keeps a number only as a double and a string only as a C
 *	  string, so it cannot give back 9007199254740993 or a "\u0000"
 *	  exactly; the scanner sees the literal text, so integers of any size
 *	  come back digit for digit, strings may hold NUL, and the pretty
 *	  printer copies every number and string exactly as written.  It also
 *	  reports the byte offset where the text stopped being JSON, builds
 *	  Tcl values straight from the text (no intermediate tree), and for
 *	  [json get] only builds the value at the path.
 *
 *	- TtoJsonPath, TtoJsonToTcl and TtoJsonWide work on a cJSON tree the
 *	  caller parsed (the token code does that in the flow thread).
 *
 *	Conventions shared by both, so that [json get] and TtoJsonPath agree:
 *
 *	- Path syntax (Chilkat style): steps "key", ".key" and "[N]", e.g.
 *	  "data.granted_scopes[2]", "a[0][1].b", "[3]".  A key is one or more
 *	  bytes up to the next '.' or '[' (so '-', ']', spaces and non-ASCII
 *	  are fine; '.' and '[' cannot be addressed).  The empty path is the
 *	  whole value.  Anything else ("a..b", ".a", "a.", "a[x]", "a[0]b",
 *	  "a[-1]") is malformed.
 *	- Duplicate object keys: the last one wins.  [json parse] keeps the
 *	  dict position of the first occurrence with the value of the last
 *	  (what Tcl's dict does), [json get] and TtoJsonPath return the last.
 *	- Containers may nest at most JSON_MAX_DEPTH (1000) levels, the same
 *	  limit as cJSON's parser, so the recursion here is bounded.
 *
 *	Values from [json parse] and [json get]: object -> dict (key order
 *	kept), array -> list, string -> string (any character, NUL included),
 *	true/false -> 1/0, null -> "", numbers as NumberSpanToObj explains
 *	(integers exact at any size, doubles correctly rounded).
 *
 *	[json pretty] and TtoJsonPretty: two spaces per level, one member or
 *	element per line, "key": value, {} and [] when empty, no trailing
 *	newline; strings, numbers and duplicate keys exactly as written.
 *
 *	Text from Tcl is handed to the scanner as UTF-8 (Tcl's internal form
 *	differs for NUL and characters beyond U+FFFF), and strings come back
 *	through Tcl's utf-8 encoding unless they are already in Tcl's form.
 *	Error offsets count bytes of that UTF-8 text.
 *
 *	Nothing in this file puts the JSON text (which may contain secrets)
 *	into an error message.
 */

#include "ttoauth2Int.h"
#include <cjson/cJSON.h>
#include <limits.h>
#include <float.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define JSON_MAX_DEPTH	1000	/* containers nested at most this deep */
#define JSON_BUF_LIMIT	((size_t) INT_MAX - 1)	/* largest JsonBuf */
#define JSON_INDENT	2	/* spaces per level in pretty output */
#define KEY_CACHE_SIZE	64	/* slots of the parser's key cache */
#define KEY_CACHE_MAXLEN 64	/* longer keys are not cached */

/*
 * A growable byte buffer that only uses attemptckalloc, so the pretty
 * printer can run in any thread and fails cleanly instead of panicking
 * when the output would be absurdly large.
 */

typedef struct {
    char *data;			/* ckalloc'ed; one spare byte for a NUL */
    size_t len;
    size_t cap;
    int failed;			/* an allocation failed or hit the limit */
    int discard;		/* validate only: keep no output */
} JsonBuf;

/*
 * The scanner's position in a text and its first error.
 */

typedef struct {
    const unsigned char *start;	/* first byte of the text */
    const unsigned char *p;	/* next byte to read */
    const unsigned char *end;	/* one past the last byte */
    const char *message;	/* static text of the error, or NULL */
    size_t errorOffset;		/* byte offset of the error from start */
    int noMemory;		/* the error is memory, not syntax */
} JsonScan;

/*
 * A string or number as it appears in the text.
 */

#define STR_ESCAPES	1	/* contains a backslash escape */
#define STR_NONASCII	2	/* contains a byte >= 0x80 */

typedef struct {
    const unsigned char *start;	/* string: after the opening quote */
    const unsigned char *end;	/* string: at the closing quote */
    int flags;			/* STR_* for strings; 1 = integral number */
} JsonSpan;

/*
 * One step of a path.
 */

typedef struct {
    int isIndex;
    const char *key;		/* key step: bytes of the key */
    size_t keyLen;
    size_t index;		/* index step; SIZE_MAX when too large */
} PathStep;

#define PATH_END	0
#define PATH_STEP	1
#define PATH_BAD	(-1)

/*
 * State of one [json parse] or [json get]: building Tcl values.
 */

typedef struct {
    JsonScan scan;
    int depth;			/* containers open right now */
    Tcl_Encoding utf8;		/* fetched when first needed */
    JsonBuf scratch;		/* decoded strings */
    Tcl_Obj *trueObj;		/* shared values, created when needed */
    Tcl_Obj *falseObj;
    Tcl_Obj *nullObj;
    Tcl_Obj *keys[KEY_CACHE_SIZE];	/* recent plain object keys */
} JsonParser;

/*
 * Forward declarations.
 */

static int		BufReserve(JsonBuf *b, size_t more);
static void		BufAppend(JsonBuf *b, const void *data, size_t len);
static void		BufNewline(JsonBuf *b, int depth);
static void		BufFree(JsonBuf *b);
static void		ScanInit(JsonScan *s, const char *text, size_t len);
static int		ScanFail(JsonScan *s, const unsigned char *where,
			    const char *message);
static void		SkipSpace(JsonScan *s);
static int		ScanString(JsonScan *s, JsonSpan *span);
static int		ScanNumber(JsonScan *s, JsonSpan *span);
static int		ScanLiteral(JsonScan *s, const char *word,
			    size_t len);
static unsigned		Hex4(const unsigned char *p);
static size_t		DecodeString(const JsonSpan *span, char *out);
static int		Utf8IsTclNative(const unsigned char *p, size_t len);
static int		PathNext(const char **pPtr, const char *end,
			    int first, PathStep *stepPtr);
static int		PrettyValue(JsonScan *s, JsonBuf *out, int depth);
static int		JsonValid(const char *text, size_t len);
static char *		PrettyText(const char *text, size_t len,
			    JsonScan *s, size_t *lenPtr);
static Tcl_Obj *	Utf8ToObj(Tcl_Encoding *encPtr, const char *bytes,
			    size_t len);
static Tcl_Obj *	StringSpanToObj(JsonParser *jp,
			    const JsonSpan *span);
static Tcl_Obj *	NumberSpanToObj(const JsonSpan *span);
static Tcl_Obj *	SharedLiteral(Tcl_Obj **slotPtr, const char *text);
static Tcl_Obj *	KeySpanToObj(JsonParser *jp, const JsonSpan *span);
static int		KeyMatches(JsonParser *jp, const JsonSpan *key,
			    const PathStep *step);
static void		DropObj(Tcl_Obj **objPtrPtr);
static int		ParseValue(JsonParser *jp, const PathStep *steps,
			    size_t nSteps, Tcl_Obj **resultPtr);
static int		ParseContainer(JsonParser *jp, const PathStep *steps,
			    size_t nSteps, Tcl_Obj **resultPtr);
static int		ParseDocument(JsonParser *jp, const char *text,
			    size_t len, const PathStep *steps, size_t nSteps,
			    Tcl_Obj **resultPtr);
static void		ParserFree(JsonParser *jp);
static const char *	TextFromObj(Tcl_Obj *objPtr, Tcl_Encoding *encPtr,
			    Tcl_DString *dsPtr, size_t *lenPtr);
static void		SetScanError(Tcl_Interp *interp, const JsonScan *s);
static Tcl_Obj *	CJsonToTcl(const cJSON *item, Tcl_Encoding *encPtr,
			    int depth);
static int		JsonParseCmd(Tcl_Interp *interp, Tcl_Obj *textObj);
static int		JsonGetCmd(Tcl_Interp *interp, Tcl_Obj *textObj,
			    Tcl_Obj *pathObj, Tcl_Obj *defaultObj);
static int		JsonPrettyCmd(Tcl_Interp *interp, Tcl_Obj *textObj);

/*
 *----------------------------------------------------------------------
 *
 * BufReserve --
 *
 *	Makes room for 'more' bytes after the current contents.
 *
 * Results:
 *	1 when the room is there, 0 when the buffer has failed (memory, or
 *	the result would exceed JSON_BUF_LIMIT).
 *
 * Side effects:
 *	May reallocate b->data; sets b->failed on failure.
 *
 *----------------------------------------------------------------------
 */

static int
BufReserve(
    JsonBuf *b,
    size_t more)
{
    size_t need, cap;
    char *data;

    if (b->failed) {
	return 0;
    }
    if (more > JSON_BUF_LIMIT - b->len) {
	b->failed = 1;
	return 0;
    }
    need = b->len + more;
    if (need <= b->cap) {
	return 1;
    }
    cap = (b->cap < 256) ? 256 : b->cap;
    while (cap < need) {
	cap = (cap > JSON_BUF_LIMIT / 2) ? JSON_BUF_LIMIT : cap * 2;
    }
    if (b->data == NULL) {
	data = attemptckalloc((unsigned) (cap + 1));
    } else {
	data = attemptckrealloc(b->data, (unsigned) (cap + 1));
    }
    if (data == NULL) {
	b->failed = 1;
	return 0;
    }
    b->data = data;
    b->cap = cap;
    return 1;
}

/*
 *----------------------------------------------------------------------
 *
 * BufAppend, BufNewline --
 *
 *	Append bytes; append a newline and the indentation of a level.
 *
 * Results:
 *	None (a failure is remembered in b->failed).
 *
 * Side effects:
 *	Grows the buffer.
 *
 *----------------------------------------------------------------------
 */

static void
BufAppend(
    JsonBuf *b,
    const void *data,
    size_t len)
{
    if (b->discard) {
	return;
    }
    if (len > 0 && BufReserve(b, len)) {
	memcpy(b->data + b->len, data, len);
	b->len += len;
    }
}

static void
BufNewline(
    JsonBuf *b,
    int depth)
{
    size_t n = 1 + (size_t) depth * JSON_INDENT;

    if (b->discard) {
	return;
    }
    if (BufReserve(b, n)) {
	b->data[b->len] = '\n';
	memset(b->data + b->len + 1, ' ', n - 1);
	b->len += n;
    }
}

/*
 *----------------------------------------------------------------------
 *
 * BufFree --
 *
 *	Releases a buffer's memory.
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	The buffer is empty again and may be reused.
 *
 *----------------------------------------------------------------------
 */

static void
BufFree(
    JsonBuf *b)
{
    if (b->data != NULL) {
	ckfree(b->data);
    }
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = 0;
}

/*
 *----------------------------------------------------------------------
 *
 * ScanInit --
 *
 *	Points a scanner at a text.  A leading UTF-8 byte order mark is
 *	skipped (RFC 8259 allows a parser to ignore it).
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Initializes *s.
 *
 *----------------------------------------------------------------------
 */

static void
ScanInit(
    JsonScan *s,
    const char *text,
    size_t len)
{
    static const char empty[1] = "";

    if (text == NULL) {
	text = empty;
	len = 0;
    }
    s->start = s->p = (const unsigned char *) text;
    s->end = s->start + len;
    s->message = NULL;
    s->errorOffset = 0;
    s->noMemory = 0;
    if (len >= 3 && s->p[0] == 0xEF && s->p[1] == 0xBB && s->p[2] == 0xBF) {
	s->p += 3;
    }
}

/*
 *----------------------------------------------------------------------
 *
 * ScanFail --
 *
 *	Records the first error of a scan.
 *
 * Results:
 *	Always 0, so callers can "return ScanFail(...)".
 *
 * Side effects:
 *	Sets s->message and s->errorOffset unless already set.
 *
 *----------------------------------------------------------------------
 */

static int
ScanFail(
    JsonScan *s,
    const unsigned char *where,
    const char *message)
{
    if (s->message == NULL) {
	s->message = message;
	s->errorOffset = (size_t) (where - s->start);
    }
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * SkipSpace --
 *
 *	Skips JSON whitespace (space, tab, LF, CR; nothing else).
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Advances s->p.
 *
 *----------------------------------------------------------------------
 */

static void
SkipSpace(
    JsonScan *s)
{
    const unsigned char *p = s->p, *end = s->end;

    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) {
	p++;
    }
    s->p = p;
}

/*
 *----------------------------------------------------------------------
 *
 * ScanString --
 *
 *	Validates a string token; s->p is at its opening quote.  Every
 *	escape is checked here (including the four hex digits of \u), so
 *	DecodeString cannot fail later.  Raw control characters (including
 *	NUL) are rejected as RFC 8259 requires; other bytes pass through.
 *
 * Results:
 *	1 with *span set (contents between the quotes, STR_* flags), or 0
 *	on error.
 *
 * Side effects:
 *	Advances s->p past the closing quote; records an error.
 *
 *----------------------------------------------------------------------
 */

static int
ScanString(
    JsonScan *s,
    JsonSpan *span)
{
    const unsigned char *p = s->p + 1, *end = s->end;
    int flags = 0, i;

    span->start = span->end = p;
    span->flags = 0;
    for (;;) {
	unsigned c;

	if (p >= end) {
	    return ScanFail(s, p, "unterminated string");
	}
	c = *p;
	if (c == '"') {
	    break;
	}
	if (c == '\\') {
	    flags |= STR_ESCAPES;
	    if (end - p < 2) {
		return ScanFail(s, end, "unterminated string");
	    }
	    switch (p[1]) {
	    case '"': case '\\': case '/':
	    case 'b': case 'f': case 'n': case 'r': case 't':
		p += 2;
		continue;
	    case 'u':
		if (end - p < 6) {
		    return ScanFail(s, p, "truncated \\u escape in string");
		}
		for (i = 2; i < 6; i++) {
		    c = p[i];
		    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')
			    || (c >= 'A' && c <= 'F'))) {
			return ScanFail(s, p, "invalid \\u escape in string");
		    }
		}
		p += 6;
		continue;
	    default:
		return ScanFail(s, p, "invalid escape in string");
	    }
	}
	if (c < 0x20) {
	    return ScanFail(s, p, "control character in string");
	}
	if (c >= 0x80) {
	    flags |= STR_NONASCII;
	}
	p++;
    }
    span->end = p;
    span->flags = flags;
    s->p = p + 1;
    return 1;
}

/*
 *----------------------------------------------------------------------
 *
 * ScanNumber --
 *
 *	Validates a number token with RFC 8259's grammar:
 *	-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
 *
 * Results:
 *	1 with *span set (the literal; flags 1 when it has neither a
 *	fraction nor an exponent), or 0 on error.
 *
 * Side effects:
 *	Advances s->p past the number; records an error.
 *
 *----------------------------------------------------------------------
 */

#define IS_DIGIT(c)	((c) >= '0' && (c) <= '9')

static int
ScanNumber(
    JsonScan *s,
    JsonSpan *span)
{
    const unsigned char *p = s->p, *end = s->end;
    int integral = 1;

    span->start = span->end = p;
    span->flags = 0;
    if (p < end && *p == '-') {
	p++;
    }
    if (p >= end || !IS_DIGIT(*p)) {
	return ScanFail(s, p, "invalid number");
    }
    if (*p == '0') {
	p++;
    } else {
	while (p < end && IS_DIGIT(*p)) {
	    p++;
	}
    }
    if (p < end && *p == '.') {
	integral = 0;
	p++;
	if (p >= end || !IS_DIGIT(*p)) {
	    return ScanFail(s, p, "expected a digit after '.' in number");
	}
	while (p < end && IS_DIGIT(*p)) {
	    p++;
	}
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
	integral = 0;
	p++;
	if (p < end && (*p == '+' || *p == '-')) {
	    p++;
	}
	if (p >= end || !IS_DIGIT(*p)) {
	    return ScanFail(s, p, "expected a digit in exponent of number");
	}
	while (p < end && IS_DIGIT(*p)) {
	    p++;
	}
    }
    span->end = p;
    span->flags = integral;
    s->p = p;
    return 1;
}

/*
 *----------------------------------------------------------------------
 *
 * ScanLiteral --
 *
 *	Matches one of the words true, false, null at s->p.
 *
 * Results:
 *	1 if the word is there, else 0 with an error recorded.
 *
 * Side effects:
 *	Advances s->p past the word.
 *
 *----------------------------------------------------------------------
 */

static int
ScanLiteral(
    JsonScan *s,
    const char *word,
    size_t len)
{
    if ((size_t) (s->end - s->p) < len || memcmp(s->p, word, len) != 0) {
	return ScanFail(s, s->p, "invalid literal");
    }
    s->p += len;
    return 1;
}

/*
 *----------------------------------------------------------------------
 *
 * Hex4 --
 *
 *	Value of four hex digits that ScanString has checked.
 *
 * Results:
 *	0..0xFFFF.
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

static unsigned
Hex4(
    const unsigned char *p)
{
    unsigned v = 0;
    int i;

    for (i = 0; i < 4; i++) {
	unsigned c = p[i];

	v <<= 4;
	if (c >= '0' && c <= '9') {
	    v |= c - '0';
	} else if (c >= 'a' && c <= 'f') {
	    v |= c - 'a' + 10;
	} else {
	    v |= c - 'A' + 10;
	}
    }
    return v;
}

/*
 *----------------------------------------------------------------------
 *
 * DecodeString --
 *
 *	Decodes the contents of a string validated by ScanString into
 *	UTF-8.  \u0000 becomes a NUL byte; a surrogate pair becomes one
 *	4-byte character; a lone surrogate, which no UTF-8 text can hold,
 *	becomes U+FFFD.  Raw bytes are copied unchanged.
 *
 * Results:
 *	The number of bytes written to out, which needs room for
 *	span->end - span->start bytes (decoding never grows the text).
 *
 * Side effects:
 *	Writes to out.
 *
 *----------------------------------------------------------------------
 */

static size_t
DecodeString(
    const JsonSpan *span,
    char *out)
{
    const unsigned char *p = span->start, *end = span->end;
    unsigned char *o = (unsigned char *) out;

    while (p < end) {
	const unsigned char *bs = memchr(p, '\\', (size_t) (end - p));
	unsigned cp;

	if (bs == NULL) {
	    bs = end;
	}
	if (bs > p) {
	    memcpy(o, p, (size_t) (bs - p));
	    o += bs - p;
	    p = bs;
	    continue;
	}

	/* p is at a backslash; ScanString checked what follows. */
	switch (p[1]) {
	case 'b': *o++ = '\b'; p += 2; continue;
	case 'f': *o++ = '\f'; p += 2; continue;
	case 'n': *o++ = '\n'; p += 2; continue;
	case 'r': *o++ = '\r'; p += 2; continue;
	case 't': *o++ = '\t'; p += 2; continue;
	case 'u': break;
	default: *o++ = p[1]; p += 2; continue;	/* " \ / */
	}
	cp = Hex4(p + 2);
	p += 6;
	if (cp >= 0xD800 && cp <= 0xDBFF && end - p >= 6 && p[0] == '\\'
		&& p[1] == 'u') {
	    unsigned lo = Hex4(p + 2);

	    if (lo >= 0xDC00 && lo <= 0xDFFF) {
		cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
		p += 6;
	    }
	}
	if (cp >= 0xD800 && cp <= 0xDFFF) {
	    cp = 0xFFFD;
	}
	if (cp < 0x80) {
	    *o++ = (unsigned char) cp;
	} else if (cp < 0x800) {
	    *o++ = (unsigned char) (0xC0 | (cp >> 6));
	    *o++ = (unsigned char) (0x80 | (cp & 0x3F));
	} else if (cp < 0x10000) {
	    *o++ = (unsigned char) (0xE0 | (cp >> 12));
	    *o++ = (unsigned char) (0x80 | ((cp >> 6) & 0x3F));
	    *o++ = (unsigned char) (0x80 | (cp & 0x3F));
	} else {
	    *o++ = (unsigned char) (0xF0 | (cp >> 18));
	    *o++ = (unsigned char) (0x80 | ((cp >> 12) & 0x3F));
	    *o++ = (unsigned char) (0x80 | ((cp >> 6) & 0x3F));
	    *o++ = (unsigned char) (0x80 | (cp & 0x3F));
	}
    }
    return (size_t) ((char *) o - out);
}

/*
 *----------------------------------------------------------------------
 *
 * Utf8IsTclNative --
 *
 *	Tells whether UTF-8 bytes are already in Tcl's internal form, so a
 *	Tcl_Obj can be made from them without Tcl_ExternalToUtfDString:
 *	true when there is no NUL (Tcl stores it as C0 80), no 4-byte
 *	character (Tcl 8.6 stores those as surrogate pairs), and every
 *	sequence is well formed.
 *
 * Results:
 *	1 if the bytes can be used as they are, else 0.
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

static int
Utf8IsTclNative(
    const unsigned char *p,
    size_t len)
{
    const unsigned char *end = p + len;

    while (p < end) {
	unsigned c = *p;

	if (c < 0x80) {
	    if (c == 0) {
		return 0;
	    }
	    p++;
	} else if (c >= 0xC2 && c <= 0xDF) {
	    if (end - p < 2 || (p[1] & 0xC0) != 0x80) {
		return 0;
	    }
	    p += 2;
	} else if (c >= 0xE0 && c <= 0xEF) {
	    if (end - p < 3 || (p[1] & 0xC0) != 0x80
		    || (p[2] & 0xC0) != 0x80
		    || (c == 0xE0 && p[1] < 0xA0)	/* overlong */
		    || (c == 0xED && p[1] >= 0xA0)) {	/* surrogate */
		return 0;
	    }
	    p += 3;
	} else {
	    return 0;
	}
    }
    return 1;
}

/*
 *----------------------------------------------------------------------
 *
 * PathNext --
 *
 *	Reads the next step of a path (syntax at the top of this file).
 *	Works on a counted string, so it is safe on any bytes.
 *
 * Results:
 *	PATH_STEP with *stepPtr filled, PATH_END at the end of the path, or
 *	PATH_BAD when the path is malformed.
 *
 * Side effects:
 *	Advances *pPtr.
 *
 *----------------------------------------------------------------------
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
	return PATH_END;
    }
    if (*p == '[') {
	size_t index = 0;
	const char *digits = ++p;

	while (p < end && IS_DIGIT(*p)) {
	    size_t d = (size_t) (*p - '0');

	    /* An index this large cannot exist: saturate, never wrap. */
	    index = (index > (SIZE_MAX - d) / 10) ? SIZE_MAX : index * 10 + d;
	    p++;
	}
	if (p == digits || p >= end || *p != ']') {
	    return PATH_BAD;
	}
	stepPtr->isIndex = 1;
	stepPtr->index = index;
	stepPtr->key = NULL;
	stepPtr->keyLen = 0;
	*pPtr = p + 1;
	return PATH_STEP;
    }
    if (*p == '.') {
	if (first) {
	    return PATH_BAD;
	}
	p++;
    } else if (!first) {
	return PATH_BAD;		/* e.g. "a[0]b" */
    }
    key = p;
    while (p < end && *p != '.' && *p != '[') {
	p++;
    }
    if (p == key) {
	return PATH_BAD;		/* empty key: "a..b", "a.", "a.[0]" */
    }
    stepPtr->isIndex = 0;
    stepPtr->key = key;
    stepPtr->keyLen = (size_t) (p - key);
    stepPtr->index = 0;
    *pPtr = p;
    return PATH_STEP;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoJsonPath --
 *
 *	Finds the item at a Chilkat-style path in a cJSON tree.  Keys are
 *	compared byte for byte; with duplicate keys the last one wins.
 *
 * Results:
 *	The item, or NULL when root or path is NULL, the path is malformed,
 *	or nothing is there.  The empty path gives root.
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

const cJSON *
TtoJsonPath(
    const cJSON *root,
    const char *path)
{
    const char *p, *end;
    const cJSON *item = root;
    PathStep step;
    int first = 1, r;

    if (root == NULL || path == NULL) {
	return NULL;
    }
    p = path;
    end = path + strlen(path);
    while ((r = PathNext(&p, end, first, &step)) == PATH_STEP) {
	const cJSON *child, *found = NULL;

	first = 0;
	if (step.isIndex) {
	    size_t i = 0;

	    if (!cJSON_IsArray(item)) {
		return NULL;
	    }
	    for (child = item->child; child != NULL; child = child->next) {
		if (i++ == step.index) {
		    found = child;
		    break;
		}
	    }
	} else {
	    if (!cJSON_IsObject(item)) {
		return NULL;
	    }
	    for (child = item->child; child != NULL; child = child->next) {
		if (child->string != NULL
			&& strlen(child->string) == step.keyLen
			&& memcmp(child->string, step.key, step.keyLen) == 0) {
		    found = child;		/* keep going: last one wins */
		}
	    }
	}
	if (found == NULL) {
	    return NULL;
	}
	item = found;
    }
    return (r == PATH_END) ? item : NULL;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoJsonWide --
 *
 *	Reads an integer from a cJSON item: a number whose value is
 *	integral and fits a long long, or a string of decimal digits with
 *	an optional leading '-' (some providers send "3600").  cJSON holds
 *	numbers as doubles, so numbers are exact up to 2^53; digit strings
 *	are exact over the whole range.
 *
 * Results:
 *	1 with *valuePtr set, else 0 (*valuePtr untouched).
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

int
TtoJsonWide(
    const cJSON *item,
    long long *valuePtr)
{
    if (item == NULL) {
	return 0;
    }
    if (cJSON_IsNumber(item)) {
	double d = item->valuedouble;

	/* The bounds are exact powers of two; NaN fails both tests. */
	if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) {
	    return 0;
	}
	if ((double) (long long) d != d) {
	    return 0;
	}
	*valuePtr = (long long) d;
	return 1;
    }
    if (cJSON_IsString(item) && item->valuestring != NULL) {
	const char *p = item->valuestring;
	unsigned long long v = 0, limit = (unsigned long long) LLONG_MAX;
	int negative = 0;

	if (*p == '-') {
	    negative = 1;
	    limit++;
	    p++;
	}
	if (!IS_DIGIT(*p)) {
	    return 0;
	}
	for (; *p != '\0'; p++) {
	    unsigned d;

	    if (!IS_DIGIT(*p)) {
		return 0;
	    }
	    d = (unsigned) (*p - '0');
	    if (v > (limit - d) / 10) {
		return 0;
	    }
	    v = v * 10 + d;
	}
	if (!negative) {
	    *valuePtr = (long long) v;
	} else if (v == (unsigned long long) LLONG_MAX + 1) {
	    *valuePtr = LLONG_MIN;
	} else {
	    *valuePtr = -(long long) v;
	}
	return 1;
    }
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * PrettyValue --
 *
 *	Validates one value and writes it re-indented: JSON_INDENT spaces
 *	per level, one member or element per line, "key": value, empty
 *	containers as {} and [].  Strings, numbers and literals are copied
 *	byte for byte as written, so the content cannot change.
 *
 * Results:
 *	1 on success, 0 on a syntax error (recorded in *s).
 *
 * Side effects:
 *	Appends to *out; advances s->p.
 *
 *----------------------------------------------------------------------
 */

static int
PrettyValue(
    JsonScan *s,
    JsonBuf *out,
    int depth)
{
    const unsigned char *token;
    JsonSpan span;

    SkipSpace(s);
    if (s->p >= s->end) {
	return ScanFail(s, s->p, "unexpected end of input");
    }
    token = s->p;
    switch (*token) {
    case '{':
    case '[': {
	int isObject = (*token == '{');
	unsigned char close = isObject ? '}' : ']';

	if (depth >= JSON_MAX_DEPTH) {
	    return ScanFail(s, token, "nested deeper than 1000 levels");
	}
	s->p++;
	BufAppend(out, token, 1);
	SkipSpace(s);
	if (s->p < s->end && *s->p == close) {
	    s->p++;
	    BufAppend(out, &close, 1);
	    return 1;
	}
	for (;;) {
	    BufNewline(out, depth + 1);
	    if (isObject) {
		SkipSpace(s);
		if (s->p >= s->end) {
		    return ScanFail(s, s->p, "unexpected end of input");
		}
		if (*s->p != '"') {
		    return ScanFail(s, s->p, "expected a string as object key");
		}
		token = s->p;
		if (!ScanString(s, &span)) {
		    return 0;
		}
		BufAppend(out, token, (size_t) (s->p - token));
		SkipSpace(s);
		if (s->p >= s->end || *s->p != ':') {
		    return ScanFail(s, s->p, "expected ':' after object key");
		}
		s->p++;
		BufAppend(out, ": ", 2);
	    }
	    if (!PrettyValue(s, out, depth + 1)) {
		return 0;
	    }
	    SkipSpace(s);
	    if (s->p < s->end && *s->p == ',') {
		s->p++;
		BufAppend(out, ",", 1);
		continue;
	    }
	    if (s->p < s->end && *s->p == close) {
		s->p++;
		break;
	    }
	    return ScanFail(s, s->p, isObject ? "expected ',' or '}' in object"
		    : "expected ',' or ']' in array");
	}
	BufNewline(out, depth);
	BufAppend(out, &close, 1);
	return 1;
    }
    case '"':
	if (!ScanString(s, &span)) {
	    return 0;
	}
	break;
    case 't':
	if (!ScanLiteral(s, "true", 4)) {
	    return 0;
	}
	break;
    case 'f':
	if (!ScanLiteral(s, "false", 5)) {
	    return 0;
	}
	break;
    case 'n':
	if (!ScanLiteral(s, "null", 4)) {
	    return 0;
	}
	break;
    default:
	if (*token != '-' && !IS_DIGIT(*token)) {
	    return ScanFail(s, token, "unexpected character");
	}
	if (!ScanNumber(s, &span)) {
	    return 0;
	}
	break;
    }
    BufAppend(out, token, (size_t) (s->p - token));
    return 1;
}

/*
 *----------------------------------------------------------------------
 *
 * PrettyText --
 *
 *	Pretty-prints a whole UTF-8 JSON text (see PrettyValue).  The
 *	result has no trailing newline.
 *
 * Results:
 *	A ckalloc'ed NUL-terminated string with its length in *lenPtr, or
 *	NULL with the reason in *s (s->noMemory when the output could not
 *	be allocated).
 *
 * Side effects:
 *	Allocates memory (attemptckalloc only: any thread).
 *
 *----------------------------------------------------------------------
 */

static char *
PrettyText(
    const char *text,
    size_t len,
    JsonScan *s,
    size_t *lenPtr)
{
    JsonBuf out = {NULL, 0, 0, 0, 0};

    ScanInit(s, text, len);
    if (!PrettyValue(s, &out, 0)) {
	BufFree(&out);
	return NULL;
    }
    SkipSpace(s);
    if (s->p < s->end) {
	ScanFail(s, s->p, "unexpected data after the JSON value");
	BufFree(&out);
	return NULL;
    }
    if (!BufReserve(&out, 1)) {
	s->noMemory = 1;
	ScanFail(s, s->p, "not enough memory");
	BufFree(&out);
	return NULL;
    }
    out.data[out.len] = '\0';
    *lenPtr = out.len;
    return out.data;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoJsonPretty --
 *
 *	Pretty-prints UTF-8 JSON text for people and files (saveToken).
 *	Safe to call from any thread: no interp, no Tcl_Obj.
 *
 * Results:
 *	A ckalloc'ed NUL-terminated string, or NULL if the text is not
 *	JSON (or the output could not be allocated).
 *
 * Side effects:
 *	Allocates memory; the caller ckfree's it.
 *
 *----------------------------------------------------------------------
 */

char *
TtoJsonPretty(
    const char *text,
    size_t len)
{
    JsonScan s;
    size_t outLen;

    return PrettyText(text, len, &s, &outLen);
}

/*
 *----------------------------------------------------------------------
 *
 * JsonValid --
 *
 *	Whether text is exactly one strict JSON value (what "json parse"
 *	accepts), checked by the pretty-printer's scanner with its output
 *	thrown away: no allocation, whatever the input.
 *
 *----------------------------------------------------------------------
 */

static int
JsonValid(
    const char *text,
    size_t len)
{
    JsonScan s;
    JsonBuf out = {NULL, 0, 0, 0, 1};

    ScanInit(&s, text, len);
    if (!PrettyValue(&s, &out, 0)) {
	return 0;
    }
    SkipSpace(&s);
    return s.p >= s.end;
}

/*
 *----------------------------------------------------------------------
 *
 * Utf8ToObj --
 *
 *	Makes a Tcl string from UTF-8 bytes.  Bytes already in Tcl's
 *	internal form are used directly; otherwise (NUL, 4-byte characters,
 *	odd bytes) they go through Tcl's "utf-8" encoding.
 *
 * Results:
 *	A new Tcl_Obj (refcount 0).
 *
 * Side effects:
 *	May fetch the utf-8 encoding into *encPtr (caller frees it).
 *
 *----------------------------------------------------------------------
 */

static Tcl_Obj *
Utf8ToObj(
    Tcl_Encoding *encPtr,
    const char *bytes,
    size_t len)
{
    Tcl_DString ds;
    Tcl_Obj *objPtr;

    if (Utf8IsTclNative((const unsigned char *) bytes, len)) {
	return Tcl_NewStringObj(bytes, (Tcl_Size) len);
    }
    if (*encPtr == NULL) {
	*encPtr = Tcl_GetEncoding(NULL, "utf-8");
    }
    Tcl_ExternalToUtfDString(*encPtr, bytes, (Tcl_Size) len, &ds);
    objPtr = Tcl_NewStringObj(Tcl_DStringValue(&ds), Tcl_DStringLength(&ds));
    Tcl_DStringFree(&ds);
    return objPtr;
}

/*
 *----------------------------------------------------------------------
 *
 * StringSpanToObj --
 *
 *	Makes the Tcl value of a scanned JSON string.
 *
 * Results:
 *	A new Tcl_Obj (refcount 0), or NULL when memory for decoding could
 *	not be had (error recorded in jp->scan).
 *
 * Side effects:
 *	Uses jp->scratch.
 *
 *----------------------------------------------------------------------
 */

static Tcl_Obj *
StringSpanToObj(
    JsonParser *jp,
    const JsonSpan *span)
{
    size_t len = (size_t) (span->end - span->start);

    if (span->flags == 0) {
	return Tcl_NewStringObj((const char *) span->start, (Tcl_Size) len);
    }
    if (!(span->flags & STR_ESCAPES)) {
	return Utf8ToObj(&jp->utf8, (const char *) span->start, len);
    }
    jp->scratch.len = 0;
    if (!BufReserve(&jp->scratch, len)) {
	jp->scan.noMemory = 1;
	ScanFail(&jp->scan, span->start, "not enough memory");
	return NULL;
    }
    len = DecodeString(span, jp->scratch.data);
    return Utf8ToObj(&jp->utf8, jp->scratch.data, len);
}

/*
 *----------------------------------------------------------------------
 *
 * NumberSpanToObj --
 *
 *	Makes the Tcl value of a scanned JSON number, exact in every case:
 *
 *	- A literal without fraction or exponent is an integer: a wide
 *	  integer when it fits 64 bits (-0 gives 0), otherwise its digits as
 *	  written (which Tcl reads as a bignum).
 *	- Any other literal whose digits (leading zeros aside) form an
 *	  integer M <= 2^53 and whose decimal exponent E is within +-22 is
 *	  a double, computed as M * 10^E or M / 10^-E: both operands are
 *	  exact doubles, so the one IEEE operation rounds correctly
 *	  (Clinger's fast path), with no strtod and so no locale.  Tcl shows
 *	  it in its shortest round-trip form: 1.50 -> 1.5, 1e3 -> 1000.0.
 *	  This covers the numbers APIs send (prices, rates, coordinates).
 *	- Any other literal (more than 15-16 significant digits, or a large
 *	  exponent such as 1e400) keeps its text as written: Tcl reads it as
 *	  a double when it is used as one, correctly rounded, and nothing is
 *	  lost in the meantime.  Serializers print doubles in their shortest
 *	  round-trip form, so this text is normally what Tcl would show.
 *
 * Results:
 *	A new Tcl_Obj (refcount 0).
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

#define TWO_POW_53	9007199254740992ULL

static Tcl_Obj *
NumberSpanToObj(
    const JsonSpan *span)
{
    const unsigned char *p = span->start, *end = span->end;
    unsigned long long v = 0;
    int negative = 0;

    if (*p == '-') {
	negative = 1;
	p++;
    }
    if (span->flags) {
	for (; p < end; p++) {
	    unsigned digit = (unsigned) (*p - '0');

	    if (v > (ULLONG_MAX - digit) / 10) {
		goto literal;
	    }
	    v = v * 10 + digit;
	}
	if (!negative) {
	    if (v > (unsigned long long) LLONG_MAX) {
		goto literal;
	    }
	    return Tcl_NewWideIntObj((Tcl_WideInt) v);
	}
	if (v > (unsigned long long) LLONG_MAX + 1) {
	    goto literal;
	}
	if (v == (unsigned long long) LLONG_MAX + 1) {
	    return Tcl_NewWideIntObj((Tcl_WideInt) LLONG_MIN);
	}
	return Tcl_NewWideIntObj(-(Tcl_WideInt) v);
    }

#if defined(FLT_EVAL_METHOD) && (FLT_EVAL_METHOD == 0)
    {
	/* Powers of ten that are exact doubles. */
	static const double exact10[] = {
	    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22
	};
	int exp10 = 0, expValue = 0, expNegative = 0;
	double d;

	for (; p < end && IS_DIGIT(*p); p++) {
	    unsigned digit = (unsigned) (*p - '0');

	    if (v > (TWO_POW_53 - digit) / 10) {
		goto literal;
	    }
	    v = v * 10 + digit;
	}
	if (p < end && *p == '.') {
	    for (p++; p < end && IS_DIGIT(*p); p++) {
		unsigned digit = (unsigned) (*p - '0');

		if (v > (TWO_POW_53 - digit) / 10) {
		    goto literal;
		}
		v = v * 10 + digit;
		exp10--;
	    }
	}
	if (p < end) {			/* 'e' or 'E' */
	    p++;
	    if (*p == '+' || *p == '-') {
		expNegative = (*p == '-');
		p++;
	    }
	    for (; p < end; p++) {
		if (expValue < 100000) {
		    expValue = expValue * 10 + (*p - '0');
		}
	    }
	    exp10 += expNegative ? -expValue : expValue;
	}
	if (v == 0) {
	    d = 0.0;
	} else if (exp10 >= 0 && exp10 <= 22) {
	    d = (double) v * exact10[exp10];
	} else if (exp10 < 0 && exp10 >= -22) {
	    d = (double) v / exact10[-exp10];
	} else {
	    goto literal;
	}
	return Tcl_NewDoubleObj(negative ? -d : d);
    }
#endif

  literal:
    return Tcl_NewStringObj((const char *) span->start,
	    (Tcl_Size) (span->end - span->start));
}

/*
 *----------------------------------------------------------------------
 *
 * SharedLiteral --
 *
 *	The values of true, false and null are made once per parse and
 *	shared, which saves an allocation per occurrence.
 *
 * Results:
 *	The shared Tcl_Obj.
 *
 * Side effects:
 *	Creates it in *slotPtr (holding a reference) the first time.
 *
 *----------------------------------------------------------------------
 */

static Tcl_Obj *
SharedLiteral(
    Tcl_Obj **slotPtr,
    const char *text)
{
    if (*slotPtr == NULL) {
	*slotPtr = Tcl_NewStringObj(text, -1);
	Tcl_IncrRefCount(*slotPtr);
    }
    return *slotPtr;
}

/*
 *----------------------------------------------------------------------
 *
 * KeySpanToObj --
 *
 *	Makes the Tcl value of an object key.  An array of records repeats
 *	the same keys, so short plain-ASCII keys are looked up in a small
 *	cache first and the dicts share one Tcl_Obj per key: fewer
 *	allocations, less memory, faster parsing.
 *
 * Results:
 *	A Tcl_Obj (refcount 0 when new, else held by the cache), or NULL
 *	when memory for decoding could not be had.
 *
 * Side effects:
 *	May replace a cache slot.
 *
 *----------------------------------------------------------------------
 */

static Tcl_Obj *
KeySpanToObj(
    JsonParser *jp,
    const JsonSpan *span)
{
    const unsigned char *p;
    size_t len = (size_t) (span->end - span->start);
    unsigned hash = 2166136261U;	/* FNV-1a */
    Tcl_Obj **slotPtr;
    const char *cached;
    Tcl_Size cachedLen;

    if (span->flags != 0 || len > KEY_CACHE_MAXLEN) {
	return StringSpanToObj(jp, span);
    }
    for (p = span->start; p < span->end; p++) {
	hash = (hash ^ *p) * 16777619U;
    }
    slotPtr = &jp->keys[(hash ^ (hash >> 16)) % KEY_CACHE_SIZE];
    if (*slotPtr != NULL) {
	cached = Tcl_GetStringFromObj(*slotPtr, &cachedLen);
	if ((size_t) cachedLen == len && memcmp(cached, span->start, len) == 0) {
	    return *slotPtr;
	}
	Tcl_DecrRefCount(*slotPtr);
    }
    *slotPtr = Tcl_NewStringObj((const char *) span->start, (Tcl_Size) len);
    Tcl_IncrRefCount(*slotPtr);
    return *slotPtr;
}

/*
 *----------------------------------------------------------------------
 *
 * DropObj --
 *
 *	Releases a value the parser made (refcount 0, or shared) and clears
 *	the pointer.
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	May free the object.
 *
 *----------------------------------------------------------------------
 */

static void
DropObj(
    Tcl_Obj **objPtrPtr)
{
    if (*objPtrPtr != NULL) {
	Tcl_IncrRefCount(*objPtrPtr);
	Tcl_DecrRefCount(*objPtrPtr);
	*objPtrPtr = NULL;
    }
}

/*
 *----------------------------------------------------------------------
 *
 * KeyMatches --
 *
 *	Compares an object key as decoded with a key step of a path.
 *
 * Results:
 *	1 if equal, 0 if not, -1 when memory ran out (error recorded).
 *
 * Side effects:
 *	May use jp->scratch.
 *
 *----------------------------------------------------------------------
 */

static int
KeyMatches(
    JsonParser *jp,
    const JsonSpan *key,
    const PathStep *step)
{
    size_t len = (size_t) (key->end - key->start);

    if (!(key->flags & STR_ESCAPES)) {
	return len == step->keyLen
		&& memcmp(key->start, step->key, len) == 0;
    }
    if (step->keyLen > len) {
	return 0;			/* decoding only shrinks */
    }
    jp->scratch.len = 0;
    if (!BufReserve(&jp->scratch, len)) {
	jp->scan.noMemory = 1;
	ScanFail(&jp->scan, key->start, "not enough memory");
	return -1;
    }
    len = DecodeString(key, jp->scratch.data);
    return len == step->keyLen && memcmp(jp->scratch.data, step->key, len) == 0;
}

/*
 *----------------------------------------------------------------------
 *
 * ParseValue --
 *
 *	Reads one JSON value at jp->scan.p, in one of three modes:
 *	- resultPtr == NULL: validate only;
 *	- nSteps == 0: build its Tcl value into *resultPtr;
 *	- nSteps > 0: follow the path, building only the value at its end
 *	  into *resultPtr (left NULL when the path leads nowhere).
 *	The whole value is validated in every mode.
 *
 * Results:
 *	1 on success, 0 on error (recorded in jp->scan; *resultPtr NULL and
 *	everything made on the way freed).
 *
 * Side effects:
 *	Advances the scanner.
 *
 *----------------------------------------------------------------------
 */

static int
ParseValue(
    JsonParser *jp,
    const PathStep *steps,
    size_t nSteps,
    Tcl_Obj **resultPtr)
{
    JsonScan *s = &jp->scan;
    int build = (resultPtr != NULL && nSteps == 0);
    JsonSpan span;

    SkipSpace(s);
    if (s->p >= s->end) {
	return ScanFail(s, s->p, "unexpected end of input");
    }
    switch (*s->p) {
    case '{':
    case '[':
	return ParseContainer(jp, steps, nSteps, resultPtr);
    case '"':
	if (!ScanString(s, &span)) {
	    return 0;
	}
	if (build && (*resultPtr = StringSpanToObj(jp, &span)) == NULL) {
	    return 0;
	}
	return 1;
    case 't':
	if (!ScanLiteral(s, "true", 4)) {
	    return 0;
	}
	if (build) {
	    *resultPtr = SharedLiteral(&jp->trueObj, "1");
	}
	return 1;
    case 'f':
	if (!ScanLiteral(s, "false", 5)) {
	    return 0;
	}
	if (build) {
	    *resultPtr = SharedLiteral(&jp->falseObj, "0");
	}
	return 1;
    case 'n':
	if (!ScanLiteral(s, "null", 4)) {
	    return 0;
	}
	if (build) {
	    *resultPtr = SharedLiteral(&jp->nullObj, "");
	}
	return 1;
    default:
	if (*s->p != '-' && !IS_DIGIT(*s->p)) {
	    return ScanFail(s, s->p, "unexpected character");
	}
	if (!ScanNumber(s, &span)) {
	    return 0;
	}
	if (build) {
	    *resultPtr = NumberSpanToObj(&span);
	}
	return 1;
    }
}

/*
 *----------------------------------------------------------------------
 *
 * ParseContainer --
 *
 *	ParseValue for an object (-> dict) or an array (-> list).
 *
 * Results:
 *	As ParseValue.
 *
 * Side effects:
 *	As ParseValue.
 *
 *----------------------------------------------------------------------
 */

static int
ParseContainer(
    JsonParser *jp,
    const PathStep *steps,
    size_t nSteps,
    Tcl_Obj **resultPtr)
{
    JsonScan *s = &jp->scan;
    int isObject = (*s->p == '{');
    unsigned char close = isObject ? '}' : ']';
    int build = (resultPtr != NULL && nSteps == 0);
    int navigate = (resultPtr != NULL && nSteps > 0
	    && steps[0].isIndex != isObject);
    Tcl_Obj *container = NULL;
    size_t index = 0;
    JsonSpan key;

    if (jp->depth >= JSON_MAX_DEPTH) {
	return ScanFail(s, s->p, "nested deeper than 1000 levels");
    }
    jp->depth++;
    s->p++;
    if (build) {
	container = isObject ? Tcl_NewDictObj() : Tcl_NewListObj(0, NULL);
    }

    SkipSpace(s);
    if (s->p < s->end && *s->p == close) {
	s->p++;
	goto done;
    }
    for (;;) {
	Tcl_Obj *value = NULL;
	int match = 0;

	if (isObject) {
	    SkipSpace(s);
	    if (s->p >= s->end) {
		ScanFail(s, s->p, "unexpected end of input");
		goto error;
	    }
	    if (*s->p != '"') {
		ScanFail(s, s->p, "expected a string as object key");
		goto error;
	    }
	    if (!ScanString(s, &key)) {
		goto error;
	    }
	    SkipSpace(s);
	    if (s->p >= s->end || *s->p != ':') {
		ScanFail(s, s->p, "expected ':' after object key");
		goto error;
	    }
	    s->p++;
	    if (navigate) {
		match = KeyMatches(jp, &key, &steps[0]);
		if (match < 0) {
		    goto error;
		}
	    }
	} else if (navigate) {
	    match = (index == steps[0].index);
	}

	if (build) {
	    if (!ParseValue(jp, NULL, 0, &value)) {
		goto error;
	    }
	    if (isObject) {
		Tcl_Obj *keyObj = KeySpanToObj(jp, &key);

		if (keyObj == NULL) {
		    DropObj(&value);
		    goto error;
		}
		/*
		 * The reference keeps keyObj alive through the put and frees
		 * it after when the dict already had that key.
		 */
		Tcl_IncrRefCount(keyObj);
		Tcl_DictObjPut(NULL, container, keyObj, value);
		Tcl_DecrRefCount(keyObj);
	    } else {
		Tcl_ListObjAppendElement(NULL, container, value);
	    }
	} else if (match) {
	    DropObj(resultPtr);		/* an earlier duplicate key */
	    if (!ParseValue(jp, steps + 1, nSteps - 1, resultPtr)) {
		goto error;
	    }
	} else if (!ParseValue(jp, NULL, 0, NULL)) {
	    goto error;
	}
	index++;

	SkipSpace(s);
	if (s->p < s->end && *s->p == ',') {
	    s->p++;
	    continue;
	}
	if (s->p < s->end && *s->p == close) {
	    s->p++;
	    break;
	}
	ScanFail(s, s->p, isObject ? "expected ',' or '}' in object"
		: "expected ',' or ']' in array");
	goto error;
    }

  done:
    jp->depth--;
    if (build) {
	*resultPtr = container;
    }
    return 1;

  error:
    jp->depth--;
    DropObj(&container);
    if (resultPtr != NULL) {
	DropObj(resultPtr);
    }
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * ParseDocument --
 *
 *	Parses a whole text: one value, whitespace around it.
 *
 * Results:
 *	1 on success with *resultPtr set (NULL if the path led nowhere),
 *	0 on error (in jp->scan).
 *
 * Side effects:
 *	Initializes jp->scan; see ParseValue.
 *
 *----------------------------------------------------------------------
 */

static int
ParseDocument(
    JsonParser *jp,
    const char *text,
    size_t len,
    const PathStep *steps,
    size_t nSteps,
    Tcl_Obj **resultPtr)
{
    ScanInit(&jp->scan, text, len);
    *resultPtr = NULL;
    if (!ParseValue(jp, steps, nSteps, resultPtr)) {
	return 0;
    }
    SkipSpace(&jp->scan);
    if (jp->scan.p < jp->scan.end) {
	ScanFail(&jp->scan, jp->scan.p, "unexpected data after the JSON value");
	DropObj(resultPtr);
	return 0;
    }
    return 1;
}

/*
 *----------------------------------------------------------------------
 *
 * ParserFree --
 *
 *	Releases what a parser holds (not the values it returned).
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Drops references, frees memory.
 *
 *----------------------------------------------------------------------
 */

static void
ParserFree(
    JsonParser *jp)
{
    int i;

    if (jp->trueObj != NULL) {
	Tcl_DecrRefCount(jp->trueObj);
    }
    if (jp->falseObj != NULL) {
	Tcl_DecrRefCount(jp->falseObj);
    }
    if (jp->nullObj != NULL) {
	Tcl_DecrRefCount(jp->nullObj);
    }
    for (i = 0; i < KEY_CACHE_SIZE; i++) {
	if (jp->keys[i] != NULL) {
	    Tcl_DecrRefCount(jp->keys[i]);
	}
    }
    if (jp->utf8 != NULL) {
	Tcl_FreeEncoding(jp->utf8);
    }
    BufFree(&jp->scratch);
}

/*
 *----------------------------------------------------------------------
 *
 * TextFromObj --
 *
 *	Gets the UTF-8 form of a Tcl string: its own bytes when they are
 *	ASCII, else converted by Tcl's "utf-8" encoding (which turns Tcl's
 *	C0 80 back into NUL and surrogate pairs into 4-byte characters).
 *
 * Results:
 *	The bytes, with their count in *lenPtr; valid until *dsPtr is
 *	freed and the object changes.
 *
 * Side effects:
 *	Initializes *dsPtr (always: the caller frees it); may fetch the
 *	encoding into *encPtr.
 *
 *----------------------------------------------------------------------
 */

static const char *
TextFromObj(
    Tcl_Obj *objPtr,
    Tcl_Encoding *encPtr,
    Tcl_DString *dsPtr,
    size_t *lenPtr)
{
    Tcl_Size len, i;
    const char *s = Tcl_GetStringFromObj(objPtr, &len);

    Tcl_DStringInit(dsPtr);
    for (i = 0; i < len; i++) {
	if ((unsigned char) s[i] >= 0x80) {
	    break;
	}
    }
    if (i == len) {
	*lenPtr = (size_t) len;
	return s;
    }
    if (*encPtr == NULL) {
	*encPtr = Tcl_GetEncoding(NULL, "utf-8");
    }
    Tcl_UtfToExternalDString(*encPtr, s, len, dsPtr);
    *lenPtr = (size_t) Tcl_DStringLength(dsPtr);
    return Tcl_DStringValue(dsPtr);
}

/*
 *----------------------------------------------------------------------
 *
 * SetScanError --
 *
 *	Leaves a scan error in the interp.  The message says where the
 *	text stopped being JSON (byte offset in its UTF-8 form) and why,
 *	but never quotes the text: it may hold secrets.
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Sets the interp result and -errorcode {TTOAUTH2 JSON PARSE}.
 *
 *----------------------------------------------------------------------
 */

static void
SetScanError(
    Tcl_Interp *interp,
    const JsonScan *s)
{
    char buf[160];

    if (s->noMemory) {
	snprintf(buf, sizeof(buf), "not enough memory for the JSON text");
    } else {
	snprintf(buf, sizeof(buf), "invalid JSON at byte offset %lu: %s",
		(unsigned long) s->errorOffset,
		s->message ? s->message : "syntax error");
    }
    Tcl_SetObjResult(interp, Tcl_NewStringObj(buf, -1));
    Tcl_SetErrorCode(interp, "TTOAUTH2", "JSON", "PARSE", NULL);
}

/*
 *----------------------------------------------------------------------
 *
 * CJsonToTcl, TtoJsonToTcl --
 *
 *	Converts a cJSON item as [json parse] converts text: object -> dict
 *	(order kept, last duplicate wins), array -> list, true/false ->
 *	1/0, null -> "".  A number whose double is integral and fits 64
 *	bits becomes a wide integer, else a double: cJSON kept no digits,
 *	so integers are exact up to 2^53 and "1.0" comes back as 1.
 *	Strings end at a NUL (cJSON's C strings).  Containers nested deeper
 *	than JSON_MAX_DEPTH (which cJSON's parser never builds) give "".
 *
 * Results:
 *	A new Tcl_Obj (refcount 0); "" for a NULL item.
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

static Tcl_Obj *
CJsonToTcl(
    const cJSON *item,
    Tcl_Encoding *encPtr,
    int depth)
{
    const cJSON *child;
    Tcl_Obj *objPtr;

    if (item == NULL) {
	return Tcl_NewObj();
    }
    if (cJSON_IsTrue(item)) {
	return Tcl_NewWideIntObj(1);
    }
    if (cJSON_IsFalse(item)) {
	return Tcl_NewWideIntObj(0);
    }
    if (cJSON_IsNumber(item)) {
	double d = item->valuedouble;

	if (d >= -9223372036854775808.0 && d < 9223372036854775808.0
		&& (double) (long long) d == d) {
	    return Tcl_NewWideIntObj((Tcl_WideInt) (long long) d);
	}
	return Tcl_NewDoubleObj(d);
    }
    if (cJSON_IsString(item) || cJSON_IsRaw(item)) {
	if (item->valuestring == NULL) {
	    return Tcl_NewObj();
	}
	return Utf8ToObj(encPtr, item->valuestring, strlen(item->valuestring));
    }
    if (cJSON_IsArray(item)) {
	if (depth >= JSON_MAX_DEPTH) {
	    return Tcl_NewObj();
	}
	objPtr = Tcl_NewListObj(0, NULL);
	for (child = item->child; child != NULL; child = child->next) {
	    Tcl_ListObjAppendElement(NULL, objPtr,
		    CJsonToTcl(child, encPtr, depth + 1));
	}
	return objPtr;
    }
    if (cJSON_IsObject(item)) {
	if (depth >= JSON_MAX_DEPTH) {
	    return Tcl_NewObj();
	}
	objPtr = Tcl_NewDictObj();
	for (child = item->child; child != NULL; child = child->next) {
	    const char *name = child->string ? child->string : "";
	    Tcl_Obj *keyObj = Utf8ToObj(encPtr, name, strlen(name));

	    Tcl_IncrRefCount(keyObj);
	    Tcl_DictObjPut(NULL, objPtr, keyObj,
		    CJsonToTcl(child, encPtr, depth + 1));
	    Tcl_DecrRefCount(keyObj);
	}
	return objPtr;
    }
    return Tcl_NewObj();		/* null, invalid */
}

Tcl_Obj *
TtoJsonToTcl(
    const cJSON *item)
{
    Tcl_Encoding utf8 = NULL;
    Tcl_Obj *objPtr = CJsonToTcl(item, &utf8, 0);

    if (utf8 != NULL) {
	Tcl_FreeEncoding(utf8);
    }
    return objPtr;
}

/*
 *----------------------------------------------------------------------
 *
 * JsonParseCmd --
 *
 *	[ttoauth2 json parse text]
 *
 * Results:
 *	A standard Tcl result: the Tcl value of the text.
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

static int
JsonParseCmd(
    Tcl_Interp *interp,
    Tcl_Obj *textObj)
{
    JsonParser jp;
    Tcl_DString ds;
    const char *text;
    size_t len;
    Tcl_Obj *resultObj;
    int ok;

    memset(&jp, 0, sizeof(jp));
    text = TextFromObj(textObj, &jp.utf8, &ds, &len);
    ok = ParseDocument(&jp, text, len, NULL, 0, &resultObj);
    if (ok) {
	Tcl_SetObjResult(interp, resultObj);
    } else {
	SetScanError(interp, &jp.scan);
    }
    Tcl_DStringFree(&ds);
    ParserFree(&jp);
    return ok ? TCL_OK : TCL_ERROR;
}

/*
 *----------------------------------------------------------------------
 *
 * JsonGetCmd --
 *
 *	[ttoauth2 json get text path ?default?]
 *
 * Results:
 *	A standard Tcl result: the value at the path, converted as by
 *	[json parse] (a JSON null gives ""), or the default when nothing is
 *	there.  Errors: {TTOAUTH2 JSON PARSE} (not JSON, checked first and
 *	even when a default is given), {TTOAUTH2 JSON BADPATH path} (the
 *	path is malformed, default or not), {TTOAUTH2 JSON NOPATH path}
 *	(nothing there and no default).
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

static int
JsonGetCmd(
    Tcl_Interp *interp,
    Tcl_Obj *textObj,
    Tcl_Obj *pathObj,
    Tcl_Obj *defaultObj)
{
    JsonParser jp;
    Tcl_DString textDs, pathDs;
    const char *text, *path, *p, *end;
    size_t len, pathLen, nSteps = 0;
    PathStep stackSteps[16], *steps = stackSteps, step;
    Tcl_Obj *resultObj = NULL, *codeObj;
    int r, code = TCL_ERROR;

    memset(&jp, 0, sizeof(jp));
    Tcl_DStringInit(&textDs);
    path = TextFromObj(pathObj, &jp.utf8, &pathDs, &pathLen);

    /* Count the steps, then collect them. */
    p = path;
    end = path + pathLen;
    while ((r = PathNext(&p, end, nSteps == 0, &step)) == PATH_STEP) {
	nSteps++;
    }
    if (r == PATH_BAD) {
	Tcl_SetObjResult(interp, Tcl_ObjPrintf(
		"malformed JSON path \"%s\": use key, .key and [index] steps",
		Tcl_GetString(pathObj)));
	codeObj = Tcl_NewStringObj("TTOAUTH2 JSON BADPATH", -1);
	Tcl_ListObjAppendElement(NULL, codeObj, pathObj);
	Tcl_SetObjErrorCode(interp, codeObj);
	goto done;
    }
    if (nSteps > sizeof(stackSteps) / sizeof(stackSteps[0])) {
	steps = (PathStep *) ckalloc((unsigned) (nSteps * sizeof(PathStep)));
    }
    p = path;
    for (len = 0; len < nSteps; len++) {
	PathNext(&p, end, len == 0, &steps[len]);
    }

    text = TextFromObj(textObj, &jp.utf8, &textDs, &len);
    if (!ParseDocument(&jp, text, len, steps, nSteps, &resultObj)) {
	SetScanError(interp, &jp.scan);
	goto done;
    }
    if (resultObj == NULL) {
	if (defaultObj != NULL) {
	    Tcl_SetObjResult(interp, defaultObj);
	    code = TCL_OK;
	    goto done;
	}
	Tcl_SetObjResult(interp, Tcl_ObjPrintf("no value at \"%s\" in JSON",
		Tcl_GetString(pathObj)));
	codeObj = Tcl_NewStringObj("TTOAUTH2 JSON NOPATH", -1);
	Tcl_ListObjAppendElement(NULL, codeObj, pathObj);
	Tcl_SetObjErrorCode(interp, codeObj);
	goto done;
    }
    Tcl_SetObjResult(interp, resultObj);
    code = TCL_OK;

  done:
    if (steps != stackSteps) {
	ckfree(steps);
    }
    Tcl_DStringFree(&textDs);
    Tcl_DStringFree(&pathDs);
    ParserFree(&jp);
    return code;
}

/*
 *----------------------------------------------------------------------
 *
 * JsonPrettyCmd --
 *
 *	[ttoauth2 json pretty text]
 *
 * Results:
 *	A standard Tcl result: the text re-indented (see PrettyValue), or
 *	an error {TTOAUTH2 JSON PARSE}.
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

static int
JsonPrettyCmd(
    Tcl_Interp *interp,
    Tcl_Obj *textObj)
{
    Tcl_Encoding utf8 = NULL;
    Tcl_DString ds;
    const char *text;
    char *out;
    size_t len, outLen;
    JsonScan s;
    int code = TCL_OK;

    text = TextFromObj(textObj, &utf8, &ds, &len);
    out = PrettyText(text, len, &s, &outLen);
    Tcl_DStringFree(&ds);
    if (out == NULL) {
	SetScanError(interp, &s);
	code = TCL_ERROR;
    } else {
	Tcl_SetObjResult(interp, Utf8ToObj(&utf8, out, outLen));
	ckfree(out);
    }
    if (utf8 != NULL) {
	Tcl_FreeEncoding(utf8);
    }
    return code;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoJsonSubcmd --
 *
 *	[ttoauth2 json parse|get|pretty ...]; objv[0] is "ttoauth2",
 *	objv[1] "json".
 *
 * Results:
 *	A standard Tcl result.
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
	"get", "parse", "pretty", NULL
    };
    enum { JSON_GET, JSON_PARSE, JSON_PRETTY };
    int index;

    if (objc < 3) {
	Tcl_WrongNumArgs(interp, 2, objv, "subcommand ?arg ...?");
	Tcl_SetErrorCode(interp, "TTOAUTH2", "USAGE", (char *) NULL);
	return TCL_ERROR;
    }
    if (Tcl_GetIndexFromObjStruct(interp, objv[2], subcmds,
	    sizeof(char *), "subcommand", 0, &index) != TCL_OK) {
	Tcl_SetErrorCode(interp, "TTOAUTH2", "USAGE", Tcl_GetString(objv[2]),
		(char *) NULL);
	return TCL_ERROR;
    }
    switch (index) {
    case JSON_GET:
	if (objc != 5 && objc != 6) {
	    Tcl_WrongNumArgs(interp, 3, objv, "text path ?default?");
	    Tcl_SetErrorCode(interp, "TTOAUTH2", "USAGE", (char *) NULL);
	    return TCL_ERROR;
	}
	return JsonGetCmd(interp, objv[3], objv[4], objc == 6 ? objv[5] : NULL);
    case JSON_PARSE:
	if (objc != 4) {
	    Tcl_WrongNumArgs(interp, 3, objv, "text");
	    Tcl_SetErrorCode(interp, "TTOAUTH2", "USAGE", (char *) NULL);
	    return TCL_ERROR;
	}
	return JsonParseCmd(interp, objv[3]);
    default:
	if (objc != 4) {
	    Tcl_WrongNumArgs(interp, 3, objv, "text");
	    Tcl_SetErrorCode(interp, "TTOAUTH2", "USAGE", (char *) NULL);
	    return TCL_ERROR;
	}
	return JsonPrettyCmd(interp, objv[3]);
    }
}

/*
 *----------------------------------------------------------------------
 *
 * TtoJsonParseStrict --
 *
 *	cJSON_ParseWithLength stops after the first value and ignores the
 *	rest; a token response or file with anything but white space after
 *	its JSON (an HTML error page appended by a proxy, two responses
 *	glued together) is not valid JSON and must not be believed.
 *
 * Results:
 *	The parsed tree (free with cJSON_Delete), or NULL.
 *
 *----------------------------------------------------------------------
 */

cJSON *
TtoJsonParseStrict(
    const char *text,
    size_t len)
{
    const char *end = NULL;
    cJSON *root;

    if (text == NULL || len == 0) {
	return NULL;
    }

    /*
     * cJSON is lenient too (raw control characters in strings, a raw NUL
     * that would cut a token short, numbers like 01): our own strict
     * scanner decides what is JSON, cJSON only builds the tree.
     */

    if (!JsonValid(text, len)) {
	return NULL;
    }
    root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (root == NULL) {
	return NULL;
    }
    while (end && end < text + len) {
	if (*end != ' ' && *end != '\t' && *end != '\n' && *end != '\r') {
	    cJSON_Delete(root);
	    return NULL;
	}
	end++;
    }
    return root;
}

/*
 * Local Variables:
 * mode: c
 * c-basic-offset: 4
 * fill-column: 78
 * End:
 */
