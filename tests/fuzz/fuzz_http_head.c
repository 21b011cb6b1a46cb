/*
 * fuzz_http_head.c --
 *
 *	libFuzzer harness for TtoHeadParse / TtoHeadRequestFree, the
 *	parser of whatever reaches the loopback redirect listener (a
 *	browser, a port scanner, a hostile local process).  The input is the
 *	raw bytes received so far, as ttoauth2UnixNet.c hands them over.
 *
 *	Besides "no crash, no leak, no UB", every result is compared with an
 *	independent reference model of the documented grammar (below), and:
 *
 *	- TTO_HEAD_OK: path non-NULL and starting with '/', method 1..15
 *	  uppercase ASCII letters, complete == 1, every query name/value
 *	  non-NULL; the same result from the head alone (trailing bytes do
 *	  not matter) and TTO_HEAD_INCOMPLETE from the head minus its last
 *	  byte (a head that arrives in pieces is never refused early).
 *	- TTO_HEAD_INCOMPLETE: there is no blank line in the input.
 *	- not OK: the request is empty (path NULL, no pairs) and freeing it
 *	  is harmless; TtoHeadRequestFree may be called twice.
 *	- TtoHttpReply with the decoded path as body announces the right
 *	  Content-Length.
 */

#include "fuzz_common.h"

/*
 * The reference model.
 */

typedef struct {
    TtoHeadStatus status;
    char method[16];
    char *path;
    size_t pathLen;
    int nPairs;
    char **names;
    char **values;
} RefRequest;

static int
RefHex(
    uint8_t c)
{
    static const char digits[] = "0123456789abcdef";
    const char *p;

    if (c >= 'A' && c <= 'F') {
	c = (uint8_t) (c - 'A' + 'a');
    }
    p = (c != 0) ? strchr(digits, c) : NULL;
    return p ? (int) (p - digits) : -1;
}

/* Percent-decode into a malloc'ed buffer; returns the length. */
static size_t
RefDecode(
    const uint8_t *s,
    size_t len,
    int plusIsSpace,
    char **outPtr)
{
    char *out = malloc(len + 1);
    size_t i = 0, o = 0;

    while (i < len) {
	if (s[i] == '%' && i + 2 < len && RefHex(s[i+1]) >= 0
		&& RefHex(s[i+2]) >= 0) {
	    out[o++] = (char) (RefHex(s[i+1]) * 16 + RefHex(s[i+2]));
	    i += 3;
	} else if (s[i] == '+' && plusIsSpace) {
	    out[o++] = ' ';
	    i++;
	} else {
	    out[o++] = (char) s[i++];
	}
    }
    out[o] = '\0';
    *outPtr = out;
    return o;
}

static void
RefFree(
    RefRequest *ref)
{
    int i;

    free(ref->path);
    for (i = 0; i < ref->nPairs; i++) {
	free(ref->names[i]);
	free(ref->values[i]);
    }
    free(ref->names);
    free(ref->values);
    memset(ref, 0, sizeof(*ref));
}

static const uint8_t *
Find(
    const uint8_t *hay,
    size_t hayLen,
    const char *needle)
{
    return memmem(hay, hayLen, needle, strlen(needle));
}

/* Length of the head with its blank line, 0 when there is none yet. */
static size_t
RefHeadEnd(
    const uint8_t *buf,
    size_t len)
{
    const uint8_t *lf = Find(buf, len, "\n\n");
    const uint8_t *crlf = Find(buf, len, "\n\r\n");

    if (lf && (!crlf || lf < crlf)) {
	return (size_t) (lf - buf) + 2;
    }
    if (crlf) {
	return (size_t) (crlf - buf) + 3;
    }
    return 0;
}

static int
RefBadByte(
    uint8_t c,
    int del)
{
    if (c == '\r' || c == '\n' || c == '\t') {
	return 0;
    }
    return c < 32 || (del && c == 127);
}

static void
RefParse(
    const uint8_t *buf,
    size_t len,
    RefRequest *ref)
{
    size_t head = RefHeadEnd(buf, len), i, lineLen, nSpaces = 0;
    size_t sp[2] = {0, 0}, methodLen, targetLen, pathLen;
    const uint8_t *target, *query;
    char *path;

    memset(ref, 0, sizeof(*ref));
    ref->status = TTO_HEAD_BAD;
    if (head == 0) {
	for (i = 0; i < len; i++) {
	    if (RefBadByte(buf[i], 0)) {
		return;
	    }
	}
	ref->status = TTO_HEAD_INCOMPLETE;
	return;
    }
    for (i = 0; i < head; i++) {
	if (RefBadByte(buf[i], 1)) {
	    return;
	}
    }

    /* The request line: exactly "METHOD SP TARGET SP HTTP/1.[01]". */
    lineLen = (size_t) ((const uint8_t *) memchr(buf, '\n', head) - buf);
    if (lineLen > 0 && buf[lineLen - 1] == '\r') {
	lineLen--;
    }
    if (lineLen < 9 || (memcmp(buf + lineLen - 9, " HTTP/1.0", 9) != 0
	    && memcmp(buf + lineLen - 9, " HTTP/1.1", 9) != 0)) {
	return;
    }
    for (i = 0; i < lineLen; i++) {
	if (buf[i] == ' ') {
	    if (nSpaces < 2) {
		sp[nSpaces] = i;
	    }
	    nSpaces++;
	}
    }
    if (nSpaces != 2) {
	return;
    }
    methodLen = sp[0];
    if (methodLen < 1 || methodLen > 15) {
	return;
    }
    for (i = 0; i < methodLen; i++) {
	if (buf[i] < 'A' || buf[i] > 'Z') {
	    return;
	}
    }
    target = buf + sp[0] + 1;
    targetLen = sp[1] - sp[0] - 1;
    if (targetLen == 0 || target[0] != '/'
	    || memchr(target, '#', targetLen) != NULL) {
	return;
    }
    query = memchr(target, '?', targetLen);
    pathLen = query ? (size_t) (query - target) : targetLen;
    ref->pathLen = RefDecode(target, pathLen, 0, &path);
    if (memchr(path, '\0', ref->pathLen) != NULL) {
	free(path);
	ref->pathLen = 0;
	return;
    }
    ref->path = path;
    memcpy(ref->method, buf, methodLen);
    ref->method[methodLen] = '\0';

    if (query) {
	const uint8_t *q = query + 1, *qEnd = target + targetLen;

	while (q <= qEnd) {
	    const uint8_t *amp = memchr(q, '&', (size_t) (qEnd - q));
	    const uint8_t *fieldEnd = amp ? amp : qEnd;
	    const uint8_t *eq;
	    char *name, *value;

	    if (fieldEnd > q) {
		eq = memchr(q, '=', (size_t) (fieldEnd - q));
		RefDecode(q, (size_t) ((eq ? eq : fieldEnd) - q), 1, &name);
		if (eq) {
		    RefDecode(eq + 1, (size_t) (fieldEnd - eq - 1), 1, &value);
		} else {
		    value = calloc(1, 1);
		}
		ref->names = realloc(ref->names,
			(ref->nPairs + 1) * sizeof(char *));
		ref->values = realloc(ref->values,
			(ref->nPairs + 1) * sizeof(char *));
		ref->names[ref->nPairs] = name;	/* C strings: end at a NUL */
		ref->values[ref->nPairs] = value;
		ref->nPairs++;
	    }
	    if (!amp) {
		break;
	    }
	    q = amp + 1;
	}
    }
    ref->status = TTO_HEAD_OK;
}

static const char *
StatusName(
    TtoHeadStatus s)
{
    return s == TTO_HEAD_OK ? "OK" : s == TTO_HEAD_BAD ? "BAD"
	    : s == TTO_HEAD_INCOMPLETE ? "INCOMPLETE" : "???";
}

/* Two parses of the same head must agree on everything. */
static void
CheckSame(
    const TtoHeadRequest *a,
    const TtoHeadRequest *b)
{
    int i;

    FUZZ_CHECK(strcmp(a->method, b->method) == 0, "method %s vs %s",
	    a->method, b->method);
    FUZZ_CHECK(strcmp(a->path, b->path) == 0, "path differs");
    FUZZ_CHECK(a->query.count == b->query.count, "pair count %d vs %d",
	    a->query.count, b->query.count);
    for (i = 0; i < a->query.count; i++) {
	FUZZ_CHECK(strcmp(a->query.items[i].name, b->query.items[i].name) == 0
		&& strcmp(a->query.items[i].value,
		b->query.items[i].value) == 0, "pair %d differs", i);
    }
}

static void
CheckEmpty(
    const TtoHeadRequest *req,
    const char *when)
{
    FUZZ_CHECK(req->path == NULL && req->query.count == 0
	    && req->query.items == NULL && req->complete == 0,
	    "request not empty %s", when);
}

int
LLVMFuzzerTestOneInput(
    const uint8_t *data,
    size_t size)
{
    const char *buf = (const char *) data;
    TtoHeadRequest req, again;
    TtoHeadStatus status, status2;
    RefRequest ref;
    size_t head, i;

    status = TtoHeadParse(buf, size, &req);
    RefParse(data, size, &ref);
    FUZZ_CHECK(status == ref.status, "parser says %s, reference says %s",
	    StatusName(status), StatusName(ref.status));
    head = RefHeadEnd(data, size);

    if (status != TTO_HEAD_OK) {
	CheckEmpty(&req, StatusName(status));
	if (status == TTO_HEAD_INCOMPLETE) {
	    FUZZ_CHECK(head == 0, "INCOMPLETE although a blank line ends "
		    "the head at %zu", head);
	}
	TtoHeadRequestFree(&req);
	TtoHeadRequestFree(&req);
	RefFree(&ref);
	return 0;
    }

    /* Structure of a good request. */
    FUZZ_CHECK(req.complete == 1, "OK without complete");
    FUZZ_CHECK(req.path != NULL && req.path[0] == '/',
	    "OK without a path starting with '/'");
    FUZZ_CHECK(req.method[0] != '\0', "OK with an empty method");
    for (i = 0; req.method[i] != '\0'; i++) {
	FUZZ_CHECK(i < sizeof(req.method) - 1, "method not terminated");
	FUZZ_CHECK(req.method[i] >= 'A' && req.method[i] <= 'Z',
		"method byte 0x%02x", (unsigned char) req.method[i]);
    }
    FUZZ_CHECK(req.query.count >= 0 && req.query.count <= req.query.capacity
	    && (req.query.count == 0 || req.query.items != NULL),
	    "bad pair list %d/%d", req.query.count, req.query.capacity);
    for (i = 0; i < (size_t) req.query.count; i++) {
	FUZZ_CHECK(req.query.items[i].name != NULL
		&& req.query.items[i].value != NULL, "NULL in pair %zu", i);
    }

    /* Against the reference. */
    FUZZ_CHECK(strcmp(req.method, ref.method) == 0, "method %s, reference %s",
	    req.method, ref.method);
    FUZZ_CHECK(strlen(req.path) == ref.pathLen
	    && memcmp(req.path, ref.path, ref.pathLen) == 0,
	    "path \"%s\", reference \"%s\"", req.path, ref.path);
    FUZZ_CHECK(req.query.count == ref.nPairs, "%d pairs, reference %d",
	    req.query.count, ref.nPairs);
    for (i = 0; i < (size_t) ref.nPairs; i++) {
	FUZZ_CHECK(strcmp(req.query.items[i].name, ref.names[i]) == 0,
		"pair %zu name \"%s\", reference \"%s\"", i,
		req.query.items[i].name, ref.names[i]);
	FUZZ_CHECK(strcmp(req.query.items[i].value, ref.values[i]) == 0,
		"pair %zu value \"%s\", reference \"%s\"", i,
		req.query.items[i].value, ref.values[i]);
    }
    RefFree(&ref);

    /* Only the head counts; a head in pieces is not refused early. */
    FUZZ_CHECK(head > 0 && head <= size, "OK but head end %zu", head);
    status2 = TtoHeadParse(buf, head, &again);
    FUZZ_CHECK(status2 == TTO_HEAD_OK, "head alone gives %s",
	    StatusName(status2));
    CheckSame(&req, &again);
    TtoHeadRequestFree(&again);
    status2 = TtoHeadParse(buf, head - 1, &again);
    FUZZ_CHECK(status2 == TTO_HEAD_INCOMPLETE,
	    "head minus its last byte gives %s", StatusName(status2));
    TtoHeadRequestFree(&again);

    /* A reply carrying the path as its body. */
    {
	Tcl_DString reply;
	char want[64];
	const char *sep;
	size_t pathLen = strlen(req.path);

	Tcl_DStringInit(&reply);
	TtoHttpReply(&reply, 404, "Not Found", req.path);
	snprintf(want, sizeof(want), "Content-Length: %lu\r\n\r\n",
		(unsigned long) pathLen);
	sep = strstr(Tcl_DStringValue(&reply), want);
	FUZZ_CHECK(sep != NULL && (size_t) Tcl_DStringLength(&reply)
		== (size_t) (sep - Tcl_DStringValue(&reply)) + strlen(want)
		+ pathLen, "reply length does not match Content-Length");
	Tcl_DStringFree(&reply);
    }

    TtoHeadRequestFree(&req);
    CheckEmpty(&req, "after TtoHeadRequestFree");
    TtoHeadRequestFree(&req);
    return 0;
}
