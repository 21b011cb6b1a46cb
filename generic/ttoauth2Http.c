/*
 * ttoauth2Http.c --
 *
 *	The HTTP side of the redirect listener: parsing a request head that
 *	a browser (or anything else) sent to the loopback port, and building
 *	the small replies we send back.  No sockets here, so the parser can
 *	be fuzzed on its own.  The parser is deliberately strict about
 *	structure and lenient about nothing else: anything that is not a
 *	plain HTTP/1.x request line followed by header lines is "bad".
 */

#include "ttoauth2Int.h"
#include <string.h>
#include <stdio.h>

/*
 *----------------------------------------------------------------------
 *
 * FindHeadEnd --
 *
 *	Finds the blank line that ends a request head.  Accepts CRLFCRLF
 *	and, as many servers do, a bare LFLF.
 *
 * Results:
 *	Length of the head including the blank line, or 0 if incomplete.
 *
 *----------------------------------------------------------------------
 */

static size_t
FindHeadEnd(
    const char *buf,
    size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
	if (buf[i] != '\n') {
	    continue;
	}
	if (i + 1 < len && buf[i+1] == '\n') {
	    return i + 2;
	}
	if (i + 2 < len && buf[i+1] == '\r' && buf[i+2] == '\n') {
	    return i + 3;
	}
    }
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoHeadParse --
 *
 *	Parses the request line of a complete request head:
 *	METHOD SP TARGET SP HTTP/1.x.  The target must be origin-form
 *	("/path?query"); the path is percent-decoded, the query split into
 *	decoded pairs.  Header lines are checked only for shape (no NUL, no
 *	bare control characters), since the redirect needs none of them.
 *
 * Results:
 *	TTO_HEAD_INCOMPLETE until a blank line arrives, then TTO_HEAD_OK
 *	with *req filled (free with TtoHeadRequestFree) or TTO_HEAD_BAD.
 *
 *----------------------------------------------------------------------
 */

TtoHeadStatus
TtoHeadParse(
    const char *buf,
    size_t len,
    TtoHeadRequest *req)
{
    size_t headLen = FindHeadEnd(buf, len);
    const char *lineEnd, *sp1, *sp2, *target, *query;
    size_t lineLen, methodLen, targetLen, pathLen, i;
    Tcl_DString path;

    memset(req, 0, sizeof(*req));
    if (headLen == 0) {
	/* A NUL or other binary junk can be refused before the end. */
	for (i = 0; i < len; i++) {
	    unsigned char c = (unsigned char) buf[i];
	    if (c == 0 || (c < 32 && c != '\r' && c != '\n' && c != '\t')) {
		return TTO_HEAD_BAD;
	    }
	}
	return TTO_HEAD_INCOMPLETE;
    }
    for (i = 0; i < headLen; i++) {
	unsigned char c = (unsigned char) buf[i];
	if (c == 0 || (c < 32 && c != '\r' && c != '\n' && c != '\t')
		|| c == 127) {
	    return TTO_HEAD_BAD;
	}
    }

    lineEnd = memchr(buf, '\n', headLen);
    lineLen = (size_t) (lineEnd - buf);
    if (lineLen > 0 && buf[lineLen - 1] == '\r') {
	lineLen--;
    }
    sp1 = memchr(buf, ' ', lineLen);
    if (sp1 == NULL) {
	return TTO_HEAD_BAD;		/* HTTP/0.9 "GET /" or junk */
    }
    methodLen = (size_t) (sp1 - buf);
    if (methodLen == 0 || methodLen >= sizeof(req->method)) {
	return TTO_HEAD_BAD;
    }
    for (i = 0; i < methodLen; i++) {
	if (buf[i] < 'A' || buf[i] > 'Z') {
	    return TTO_HEAD_BAD;
	}
    }
    target = sp1 + 1;
    sp2 = memchr(target, ' ', lineLen - (size_t) (target - buf));
    if (sp2 == NULL) {
	return TTO_HEAD_BAD;
    }
    targetLen = (size_t) (sp2 - target);
    if (lineLen - (size_t) (sp2 + 1 - buf) != 8
	    || strncmp(sp2 + 1, "HTTP/1.", 7) != 0
	    || (sp2[8] != '0' && sp2[8] != '1')) {
	return TTO_HEAD_BAD;
    }
    if (targetLen == 0 || target[0] != '/') {
	return TTO_HEAD_BAD;
    }

    memcpy(req->method, buf, methodLen);
    req->method[methodLen] = '\0';
    query = memchr(target, '?', targetLen);
    pathLen = query ? (size_t) (query - target) : targetLen;
    if (memchr(target, '#', targetLen) != NULL) {
	return TTO_HEAD_BAD;		/* browsers never send fragments */
    }

    Tcl_DStringInit(&path);
    TtoUrlDecode(&path, target, pathLen, 0);
    if (strlen(Tcl_DStringValue(&path)) != (size_t) Tcl_DStringLength(&path)) {
	Tcl_DStringFree(&path);		/* %00 in the path */
	return TTO_HEAD_BAD;
    }
    req->path = ckalloc(Tcl_DStringLength(&path) + 1);
    memcpy(req->path, Tcl_DStringValue(&path), Tcl_DStringLength(&path) + 1);
    Tcl_DStringFree(&path);
    if (query) {
	TtoQueryParse(&req->query, query + 1, targetLen - pathLen - 1);
    }
    req->complete = 1;
    return TTO_HEAD_OK;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoHeadRequestFree --
 *
 *	Frees what TtoHeadParse put in a request (may be called twice).
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Frees memory; the request is empty.
 *
 *----------------------------------------------------------------------
 */

void
TtoHeadRequestFree(
    TtoHeadRequest *req)
{
    if (req->path) {
	ckfree(req->path);
	req->path = NULL;
    }
    TtoPairsFree(&req->query);
    req->complete = 0;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoHttpReply --
 *
 *	Builds a complete HTTP/1.1 response with an HTML body.  Every reply
 *	closes the connection, is never cached (it may be the page that
 *	follows a token exchange), and forbids the page from loading
 *	anything (no third-party resources, no referrer leaking the code).
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Appends the response to *dsPtr.
 *
 *----------------------------------------------------------------------
 */

void
TtoHttpReply(
    Tcl_DString *dsPtr,
    int status,
    const char *reason,
    const char *html)
{
    char line[160];
    size_t bodyLen = strlen(html);

    snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", status, reason);
    Tcl_DStringAppend(dsPtr, line, -1);
    Tcl_DStringAppend(dsPtr,
	    "Content-Type: text/html; charset=utf-8\r\n"
	    "Cache-Control: no-store\r\n"
	    "Pragma: no-cache\r\n"
	    "Referrer-Policy: no-referrer\r\n"
	    "X-Content-Type-Options: nosniff\r\n"
	    "Content-Security-Policy: default-src 'none'; "
		"style-src 'unsafe-inline'\r\n"
	    "Connection: close\r\n", -1);
    snprintf(line, sizeof(line), "Content-Length: %lu\r\n\r\n",
	    (unsigned long) bodyLen);
    Tcl_DStringAppend(dsPtr, line, -1);
    Tcl_DStringAppend(dsPtr, html, (Tcl_Size) bodyLen);
}
