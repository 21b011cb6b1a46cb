/*
 * ttoauth2Request.c --
 *
 *	The request method: a call to the API the token is for.
 *
 *	$o request method url ?-query dict? ?-body text? ?-headers dict?
 *		?-timeout ms? ?-command cmd?
 *
 *	tiktokshop  url may be a path under -apibaseurl; the query gains
 *		    app_key, timestamp, shop_cipher (-shopcipher, unless the
 *		    query has one) and sign (ttoauth2Sign.c, the one signing
 *		    routine); the token goes in x-tts-access-token; a body is
 *		    sent as application/json.  An answer with "code" 105002
 *		    (access token expired) is followed by one refresh and one
 *		    retry.
 *	rfc6749	    Authorization: Bearer TOKEN; a 401 whose WWW-Authenticate
 *		    says error="invalid_token" is followed by one refresh and
 *		    one retry.
 *
 *	The sync form runs on the thread's libcurl handle (the one refresh
 *	uses), so connections are kept alive from one request to the next.
 *	Redirects are never followed (a 3xx is returned with its headers);
 *	TLS verification is always on.  No error message names the app
 *	secret, a token or a request's sign: URLs in messages are shown
 *	without the sign, access_token and secret parameters, and every
 *	message is scrubbed of those values besides.
 *
 *	The object side (its options, its refresh under the store's lock)
 *	is reached through the small hooks in ttoauth2.c: TtoObjectApiConfig,
 *	TtoObjectRefresh, TtoThreadCurl.
 */

#include "ttoauth2Int.h"
#include <string.h>
#include <stdio.h>
#include <time.h>
#include <curl/curl.h>
#include <cjson/cJSON.h>

#define TTO_MAX_API_BODY	(64 * 1024 * 1024)	/* answers we keep */
#define TTO_MAX_API_HEADERS	(256 * 1024)
#define TTO_VALID_WITHIN	60	/* seconds a token must still last */

/*
 * What the script asked for, as UTF-8 C strings.
 */

typedef struct {
    char method[24];
    Tcl_DString url;		/* absolute URL as given or joined */
    TtoPairs query;		/* -query, in dict order */
    Tcl_DString body;		/* UTF-8 bytes of -body */
    int hasBody;
    TtoPairs headers;		/* -headers */
    long timeoutMs;
} ApiCall;

/*
 * One answer.
 */

struct TtoApiAnswer {
    TtoBodyBuffer buf;		/* the body, at most TTO_MAX_API_BODY */
    TtoPairs headers;		/* of the last response, names lower case */
    size_t headerBytes;
    long status;
};
typedef TtoApiAnswer ApiAnswer;

static void	AnswerFree(ApiAnswer *ans);
static void	AnswerInit(ApiAnswer *ans);
static Tcl_Obj *AnswerDict(const ApiAnswer *ans, TtoProvider provider,
		    long long *codePtr);
static int	Build(Tcl_Interp *interp, const ApiCall *call,
		    const TtoApiConfig *cfg, Tcl_DString *urlPtr,
		    Tcl_DString *shownPtr, char sign[65]);
static Tcl_Obj *TextObj(const char *bytes, size_t len);
static int	NeedsRefresh(const ApiAnswer *ans, TtoProvider provider,
		    long long code);
static int	ParseCall(Tcl_Interp *interp, const TtoApiConfig *cfg,
		    Tcl_Size objc, Tcl_Obj *const objv[], ApiCall *call,
		    Tcl_Obj **commandPtr);
static int	Perform(Tcl_Interp *interp, const ApiCall *call,
		    const TtoApiConfig *cfg, ApiAnswer *ans);

/*
 *----------------------------------------------------------------------
 *
 * Small helpers --
 *
 *----------------------------------------------------------------------
 */



/*
 * Valid UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF)?
 */

static int
IsUtf8(
    const unsigned char *s,
    size_t len)
{
    size_t i = 0;

    while (i < len) {
	unsigned char c = s[i];
	size_t n, k;
	unsigned long cp;

	if (c < 0x80) {
	    i++;
	    continue;
	} else if (c >= 0xC2 && c <= 0xDF) {
	    n = 1; cp = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
	    n = 2; cp = c & 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
	    n = 3; cp = c & 0x07;
	} else {
	    return 0;
	}
	if (i + n >= len) {
	    return 0;
	}
	for (k = 1; k <= n; k++) {
	    if ((s[i + k] & 0xC0) != 0x80) {
		return 0;
	    }
	    cp = (cp << 6) | (s[i + k] & 0x3F);
	}
	if ((n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)))
		|| (n == 3 && (cp < 0x10000 || cp > 0x10FFFF))) {
	    return 0;
	}
	i += n + 1;
    }
    return 1;
}

/*
 * An answer's bytes as a Tcl value: text when they are UTF-8, else the
 * bytes themselves (a byte array: one character per byte).
 */

static Tcl_Obj *
TextObj(
    const char *bytes,
    size_t len)
{
    Tcl_DString ds;
    Tcl_Obj *result;
    Tcl_Encoding utf8;
    size_t i;

    for (i = 0; i < len && (unsigned char) bytes[i] != 0
	    && (unsigned char) bytes[i] < 0x80; i++) {
	/* ASCII without NUL reads the same in Tcl's form: no conversion. */
    }
    if (i == len) {
	return Tcl_NewStringObj(bytes, (Tcl_Size) len);
    }
    if (!IsUtf8((const unsigned char *) bytes, len)) {
	return Tcl_NewByteArrayObj((const unsigned char *) bytes,
		(Tcl_Size) len);
    }
    utf8 = Tcl_GetEncoding(NULL, "utf-8");
    Tcl_ExternalToUtfDString(utf8, bytes, (Tcl_Size) len, &ds);
    Tcl_FreeEncoding(utf8);
    result = Tcl_NewStringObj(Tcl_DStringValue(&ds), Tcl_DStringLength(&ds));
    Tcl_DStringFree(&ds);
    return result;
}


/*
 *----------------------------------------------------------------------
 *
 * ParseCall --
 *
 *	Checks the method's arguments and turns them into an ApiCall.
 *
 * Results:
 *	TCL_OK, or an error ({TTOAUTH2 OPTION ...}); nothing is sent.
 *
 * Side effects:
 *	Fills *call (free with CallFree).
 *
 *----------------------------------------------------------------------
 */

static void
CallInit(
    ApiCall *call)
{
    memset(call, 0, sizeof(*call));
    Tcl_DStringInit(&call->url);
    Tcl_DStringInit(&call->body);
}

static void
CallFree(
    ApiCall *call)
{
    Tcl_DStringFree(&call->url);
    TtoWipeDString(&call->body);
    TtoPairsFree(&call->query);
    TtoPairsFree(&call->headers);
}

/*
 * Moves a call into dst (initialized here), leaving src empty: the
 * DStrings' text is copied (a DString may point into itself), the pair
 * lists change hands.
 */

static void
CallMove(
    ApiCall *dst,
    ApiCall *src)
{
    CallInit(dst);
    memcpy(dst->method, src->method, sizeof(dst->method));
    Tcl_DStringAppend(&dst->url, Tcl_DStringValue(&src->url),
	    Tcl_DStringLength(&src->url));
    Tcl_DStringAppend(&dst->body, Tcl_DStringValue(&src->body),
	    Tcl_DStringLength(&src->body));
    dst->hasBody = src->hasBody;
    dst->timeoutMs = src->timeoutMs;
    dst->query = src->query;
    dst->headers = src->headers;
    memset(&src->query, 0, sizeof(src->query));
    memset(&src->headers, 0, sizeof(src->headers));
}

/* Adds a dict's entries as UTF-8 pairs; refuses NUL, and CR/LF in headers. */
static int
DictPairs(
    Tcl_Interp *interp,
    Tcl_Obj *dict,
    const char *option,
    int isHeader,
    TtoPairs *pairs)
{
    Tcl_DictSearch search;
    Tcl_Obj *key, *value;
    int done;
    char msg[200];

    if (Tcl_DictObjFirst(NULL, dict, &search, &key, &value, &done)
	    != TCL_OK) {
	snprintf(msg, sizeof(msg), "bad value for %s: must be a dict of "
		"names and values", option);
	return TtoFail(interp, "OPTION", option, msg);
    }
    for (; !done; Tcl_DictObjNext(&search, &key, &value, &done)) {
	Tcl_DString k, v;
	const char *bad = NULL;
	Tcl_Size i;

	Tcl_DStringInit(&k);
	Tcl_DStringInit(&v);
	TtoAppendUtf8(&k, key);
	TtoAppendUtf8(&v, value);
	if (Tcl_DStringLength(&k) == 0) {
	    bad = "a name cannot be empty";
	} else if (memchr(Tcl_DStringValue(&k), 0,
		(size_t) Tcl_DStringLength(&k)) || memchr(Tcl_DStringValue(&v),
		0, (size_t) Tcl_DStringLength(&v))) {
	    bad = "a name or value cannot contain a NUL character";
	} else if (isHeader) {
	    for (i = 0; i < Tcl_DStringLength(&k) && !bad; i++) {
		unsigned char c = (unsigned char) Tcl_DStringValue(&k)[i];

		if (c <= ' ' || c == ':' || c >= 127) {
		    bad = "a header name must be a token (no blanks, colons "
			    "or control characters)";
		}
	    }
	    for (i = 0; i < Tcl_DStringLength(&v) && !bad; i++) {
		unsigned char c = (unsigned char) Tcl_DStringValue(&v)[i];

		if (c == '\r' || c == '\n') {
		    bad = "a header value cannot contain a line break";
		}
	    }
	}
	if (bad == NULL) {
	    TtoPairsAdd(pairs, Tcl_DStringValue(&k),
		    (size_t) Tcl_DStringLength(&k), Tcl_DStringValue(&v),
		    (size_t) Tcl_DStringLength(&v));
	}
	Tcl_DStringFree(&k);
	TtoWipeDString(&v);
	if (bad) {
	    Tcl_DictObjDone(&search);
	    snprintf(msg, sizeof(msg), "bad value for %s: %s", option, bad);
	    return TtoFail(interp, "OPTION", option, msg);
	}
    }
    Tcl_DictObjDone(&search);
    return TCL_OK;
}

static int
ParseCall(
    Tcl_Interp *interp,
    const TtoApiConfig *cfg,
    Tcl_Size objc,
    Tcl_Obj *const objv[],
    ApiCall *call,
    Tcl_Obj **commandPtr)
{
    static const char *const options[] = {
	"-body", "-command", "-headers", "-query", "-timeout", NULL
    };
    enum { O_BODY, O_COMMAND, O_HEADERS, O_QUERY, O_TIMEOUT };
    const char *method = Tcl_GetString(objv[2]);
    const char *url;
    Tcl_Size i, len, n;
    Tcl_WideInt w;

    *commandPtr = NULL;
    len = (Tcl_Size) strlen(method);
    if (len == 0 || len >= (Tcl_Size) sizeof(call->method)) {
	goto badMethod;
    }
    for (i = 0; i < len; i++) {
	char c = method[i];

	if (c >= 'a' && c <= 'z') {
	    c = (char) (c - 'a' + 'A');
	} else if (c < 'A' || c > 'Z') {
	    goto badMethod;
	}
	call->method[i] = c;
    }
    call->method[len] = '\0';

    url = Tcl_GetString(objv[3]);
    if (url[0] == '/') {
	const char *base = cfg->apiBaseUrl;
	size_t baseLen = strlen(base);

	while (baseLen > 0 && base[baseLen - 1] == '/') {
	    baseLen--;
	}
	if (baseLen == 0) {
	    return TtoFail(interp, "OPTION", "-apibaseurl", "the url is "
		    "a path, but -apibaseurl is empty");
	}
	Tcl_DStringAppend(&call->url, base, (Tcl_Size) baseLen);
    } else if (strncmp(url, "https://", 8) != 0
	    && strncmp(url, "http://", 7) != 0) {
	return TtoFail(interp, "OPTION", "url", "the url must be an "
		"https:// or http:// URL, or a path beginning with / under "
		"-apibaseurl");
    }
    Tcl_DStringAppend(&call->url, url, -1);
    for (url = Tcl_DStringValue(&call->url); *url; url++) {
	if ((unsigned char) *url <= ' ' || *url == 127 || *url == '#') {
	    return TtoFail(interp, "OPTION", "url", "the url cannot "
		    "contain spaces, control characters or a fragment (#): "
		    "give query values with -query");
	}
    }

    call->timeoutMs = cfg->timeoutMs;
    if ((objc - 4) % 2) {
	int last;

	if (Tcl_GetIndexFromObj(interp, objv[objc - 1], options, "option", 0,
		&last) == TCL_OK) {
	    char msg[80];

	    snprintf(msg, sizeof(msg), "value for \"%s\" missing",
		    options[last]);
	    return TtoFail(interp, "OPTION", options[last], msg);
	}
	return TCL_ERROR;		/* Tcl's {TCL LOOKUP INDEX option ...} */
    }
    for (i = 4; i < objc; i += 2) {
	int opt;

	if (Tcl_GetIndexFromObj(interp, objv[i], options, "option", 0, &opt)
		!= TCL_OK) {
	    return TCL_ERROR;
	}
	switch (opt) {
	case O_BODY:
	    Tcl_DStringSetLength(&call->body, 0);
	    TtoAppendUtf8(&call->body, objv[i + 1]);
	    call->hasBody = 1;
	    break;
	case O_COMMAND:
	    if (Tcl_ListObjLength(NULL, objv[i + 1], &n) != TCL_OK) {
		return TtoFail(interp, "OPTION", "-command", "bad value "
			"for -command: must be a valid Tcl list (a command "
			"prefix)");
	    }
	    *commandPtr = (n > 0) ? objv[i + 1] : NULL;
	    break;
	case O_HEADERS:
	    TtoPairsFree(&call->headers);
	    if (DictPairs(interp, objv[i + 1], "-headers", 1, &call->headers)
		    != TCL_OK) {
		return TCL_ERROR;
	    }
	    break;
	case O_QUERY:
	    TtoPairsFree(&call->query);
	    if (DictPairs(interp, objv[i + 1], "-query", 0, &call->query)
		    != TCL_OK) {
		return TCL_ERROR;
	    }
	    break;
	case O_TIMEOUT:
	    if (Tcl_GetWideIntFromObj(NULL, objv[i + 1], &w) != TCL_OK
		    || w < 0 || w > 0x7fffffff) {
		return TtoFail(interp, "OPTION", "-timeout", "bad value "
			"for -timeout: must be a number of milliseconds, 0 "
			"or more");
	    }
	    call->timeoutMs = (long) w;
	    break;
	}
    }
    return TCL_OK;

  badMethod:
    return TtoFail(interp, "OPTION", "method", "the method must be an "
	    "HTTP method name such as GET or POST (letters only)");
}

/*
 *----------------------------------------------------------------------
 *
 * Build --
 *
 *	The URL to send: the url's own query, then -query, and for
 *	tiktokshop the common parameters and the sign.  *shownPtr gets the
 *	same URL without the values of sign, access_token, app_secret and
 *	client_secret, for messages.
 *
 * Results:
 *	TCL_OK, or an error (the platform's HMAC failed).
 *
 * Side effects:
 *	Fills the DStrings and sign ("" for rfc6749).
 *
 *----------------------------------------------------------------------
 */

static int
Hidden(
    const char *name)
{
    return strcmp(name, "sign") == 0 || strcmp(name, "access_token") == 0
	    || strcmp(name, "app_secret") == 0
	    || strcmp(name, "client_secret") == 0;
}

static int
Build(
    Tcl_Interp *interp,
    const ApiCall *call,
    const TtoApiConfig *cfg,
    Tcl_DString *urlPtr,
    Tcl_DString *shownPtr,
    char sign[65])
{
    const char *url = Tcl_DStringValue(&call->url);
    const char *hostStart = strstr(url, "://") + 3;
    const char *pathStart = hostStart + strcspn(hostStart, "/?");
    const char *q = strchr(pathStart, '?');
    size_t pathLen = q ? (size_t) (q - pathStart) : strlen(pathStart);
    TtoPairs all = {NULL, 0, 0};
    int i, first = 1, firstShown = 1;

    if (q) {
	TtoQueryParse(&all, q + 1, strlen(q + 1));
    }
    for (i = 0; i < call->query.count; i++) {
	TtoPairsAdd(&all, call->query.items[i].name,
		strlen(call->query.items[i].name), call->query.items[i].value,
		strlen(call->query.items[i].value));
    }

    if (TtoProviderApiSign(cfg, pathStart, pathLen, &all, call->hasBody
	    ? Tcl_DStringValue(&call->body) : NULL,
	    (size_t) Tcl_DStringLength(&call->body), sign) != 0) {
	TtoPairsFree(&all);
	return TtoFail(interp, "STATE", "CRYPTO", "HMAC-SHA256 failed");
    }

    Tcl_DStringAppend(urlPtr, url, (Tcl_Size) (pathStart - url + pathLen));
    Tcl_DStringAppend(shownPtr, url, (Tcl_Size) (pathStart - url + pathLen));
    if (pathLen == 0) {
	Tcl_DStringAppend(urlPtr, "/", 1);
	Tcl_DStringAppend(shownPtr, "/", 1);
    }
    for (i = 0; i < all.count; i++) {
	Tcl_DStringAppend(urlPtr, first ? "?" : "", -1);
	TtoQueryAppend(urlPtr, &first, all.items[i].name, all.items[i].value);
	if (!Hidden(all.items[i].name)) {
	    Tcl_DStringAppend(shownPtr, firstShown ? "?" : "", -1);
	    TtoQueryAppend(shownPtr, &firstShown, all.items[i].name,
		    all.items[i].value);
	}
    }
    TtoPairsFree(&all);
    return TCL_OK;
}

/*
 *----------------------------------------------------------------------
 *
 * Perform --
 *
 *	Sends one request on the thread's libcurl handle and collects the
 *	answer (the last response's status, headers and body).
 *
 * Results:
 *	TCL_OK with *ans filled, or {TTOAUTH2 HTTP name message} for a
 *	transport failure; the message shows the URL without secrets.
 *
 * Side effects:
 *	Network traffic; the connection is kept for the next request.
 *
 *----------------------------------------------------------------------
 */

static size_t
HeaderLine(
    char *data,
    size_t size,
    size_t nmemb,
    void *userdata)
{
    ApiAnswer *ans = userdata;
    size_t len = size * nmemb, nameLen, i;
    const char *colon, *value, *end;
    char *lower;

    ans->headerBytes += len;
    if (ans->headerBytes > TTO_MAX_API_HEADERS) {
	ans->buf.tooLarge = 1;
	return 0;
    }
    if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
	/* A new response (after a 1xx): its headers replace those before. */
	TtoPairsFree(&ans->headers);
	return len;
    }
    colon = memchr(data, ':', len);
    if (colon == NULL || colon == data) {
	return len;			/* the blank line, or not a field */
    }
    nameLen = (size_t) (colon - data);
    value = colon + 1;
    end = data + len;
    while (value < end && (*value == ' ' || *value == '\t')) {
	value++;
    }
    while (end > value && (end[-1] == '\r' || end[-1] == '\n'
	    || end[-1] == ' ' || end[-1] == '\t')) {
	end--;
    }
    lower = ckalloc(nameLen + 1);
    for (i = 0; i < nameLen; i++) {
	char c = data[i];

	lower[i] = (c >= 'A' && c <= 'Z') ? (char) (c - 'A' + 'a') : c;
    }
    lower[nameLen] = '\0';
    TtoPairsAdd(&ans->headers, lower, nameLen, value, (size_t) (end - value));
    ckfree(lower);
    return len;
}

static void
AnswerInit(
    ApiAnswer *ans)
{
    memset(ans, 0, sizeof(*ans));
    Tcl_DStringInit(&ans->buf.body);
    ans->buf.limit = TTO_MAX_API_BODY;
}

static void
AnswerFree(
    ApiAnswer *ans)
{
    Tcl_DStringFree(&ans->buf.body);
    TtoPairsFree(&ans->headers);
    ans->status = 0;
    ans->buf.tooLarge = 0;
    ans->headerBytes = 0;
}

/* Header names equal but for ASCII case? */
static int
NameIs(
    const char *a,
    const char *b)
{
    while (*a && *b) {
	char ca = (*a >= 'A' && *a <= 'Z') ? (char) (*a - 'A' + 'a') : *a;
	char cb = (*b >= 'A' && *b <= 'Z') ? (char) (*b - 'A' + 'a') : *b;

	if (ca != cb) {
	    return 0;
	}
	a++;
	b++;
    }
    return *a == '\0' && *b == '\0';
}

/* The caller's header of that name (case-insensitive), or NULL. */
static const char *
CallerHeader(
    const ApiCall *call,
    const char *name)
{
    int i;

    for (i = 0; i < call->headers.count; i++) {
	if (NameIs(call->headers.items[i].name, name)) {
	    return call->headers.items[i].value;
	}
    }
    return NULL;
}

/*
 * One request ready to send, in plain C (owned copies, no Tcl_Obj), so
 * that it can be handed to another thread: what TtoApiSetup puts on a
 * libcurl easy handle and TtoApiFinish reads back.
 */

struct TtoApiRequest {
    char method[24];
    int hasBody;
    Tcl_DString url;		/* signed: holds the sign */
    Tcl_DString shown;		/* for messages: no secrets */
    Tcl_DString body;		/* UTF-8 bytes */
    TtoPairs headerLines;	/* "Name: value" lines in .name */
    long timeoutMs;
    char *caFile, *proxy, *userAgent;
    char *secrets[3];		/* scrubbed from messages */
    struct curl_slist *slist;	/* while set up on a handle */
    char errbuf[CURL_ERROR_SIZE];
};

/*
 *----------------------------------------------------------------------
 *
 * Prepare --
 *
 *	Makes the TtoApiRequest of a call: the signed URL, the header lines
 *	(ours unless the caller gave one of that name; the token's always
 *	ours), the body.
 *
 * Results:
 *	The request (free with TtoApiRequestFree), or NULL with an error in
 *	the interp.
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

static void
AddLine(
    TtoApiRequest *req,
    const char *name,
    const char *sep,
    const char *value)
{
    Tcl_DString line;

    Tcl_DStringInit(&line);
    Tcl_DStringAppend(&line, name, -1);
    Tcl_DStringAppend(&line, sep, -1);
    Tcl_DStringAppend(&line, value, -1);
    TtoPairsAdd(&req->headerLines, Tcl_DStringValue(&line),
	    (size_t) Tcl_DStringLength(&line), "", 0);
    TtoWipeDString(&line);
}

static TtoApiRequest *
Prepare(
    Tcl_Interp *interp,
    const ApiCall *call,
    const TtoApiConfig *cfg)
{
    TtoApiRequest *req = ckalloc(sizeof(TtoApiRequest));
    const char *tokenPrefix;
    const char *tokenHeader = TtoProviderApiHeader(cfg->provider,
	    &tokenPrefix);
    Tcl_DString auth;
    char sign[65];
    int i;

    memset(req, 0, sizeof(*req));
    memcpy(req->method, call->method, sizeof(req->method));
    Tcl_DStringInit(&req->url);
    Tcl_DStringInit(&req->shown);
    Tcl_DStringInit(&req->body);
    if (Build(interp, call, cfg, &req->url, &req->shown, sign) != TCL_OK) {
	TtoApiRequestFree(req);
	return NULL;
    }
    req->hasBody = call->hasBody;
    Tcl_DStringAppend(&req->body, Tcl_DStringValue(&call->body),
	    Tcl_DStringLength(&call->body));
    req->timeoutMs = call->timeoutMs;
    req->caFile = TtoStrDup(cfg->caFile);
    req->proxy = TtoStrDup(cfg->proxy);
    req->userAgent = TtoStrDup(*cfg->userAgent ? cfg->userAgent
	    : "ttoauth2/" PACKAGE_VERSION);
    req->secrets[0] = TtoStrDup(cfg->clientSecret);
    req->secrets[1] = TtoStrDup(cfg->accessToken);
    req->secrets[2] = TtoStrDup(sign);
    memset(sign, 0, sizeof(sign));

    if (CallerHeader(call, "accept") == NULL) {
	AddLine(req, "Accept", ": ", "application/json");
    }
    if (call->hasBody && CallerHeader(call, "content-type") == NULL
	    && TtoProviderApiJsonBody(cfg->provider)) {
	AddLine(req, "Content-Type", ": ", "application/json");
    }
    AddLine(req, "Expect", ":", "");
    for (i = 0; i < call->headers.count; i++) {
	const char *name = call->headers.items[i].name;
	const char *value = call->headers.items[i].value;

	if (NameIs(name, tokenHeader)) {
	    continue;			/* the token header is always ours */
	}
	/* "Name;" sends a header with an empty value; "Name:" removes it. */
	AddLine(req, name, *value ? ": " : ";", value);
    }
    Tcl_DStringInit(&auth);
    Tcl_DStringAppend(&auth, tokenPrefix, -1);
    Tcl_DStringAppend(&auth, cfg->accessToken, -1);
    AddLine(req, tokenHeader, ": ", Tcl_DStringValue(&auth));
    TtoWipeDString(&auth);
    return req;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoApiRequestFree --
 *
 *	Frees a request, wiping what held a secret.
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Frees memory.
 *
 *----------------------------------------------------------------------
 */

void
TtoApiRequestFree(
    TtoApiRequest *req)
{
    int i;

    if (req == NULL) {
	return;
    }
    if (req->slist) {
	curl_slist_free_all(req->slist);
    }
    TtoWipeDString(&req->url);
    Tcl_DStringFree(&req->shown);
    TtoWipeDString(&req->body);
    TtoPairsFree(&req->headerLines);
    for (i = 0; i < 3; i++) {
	TtoSecretFree(req->secrets[i]);
    }
    ckfree(req->caFile);
    ckfree(req->proxy);
    ckfree(req->userAgent);
    ckfree(req);
}

/*
 *----------------------------------------------------------------------
 *
 * TtoApiAnswerNew, TtoApiAnswerFree --
 *
 *	The answer a request fills (plain C, like the request).
 *
 * Results:
 *	TtoApiAnswerNew: an empty answer.
 *
 * Side effects:
 *	Allocates / frees memory.
 *
 *----------------------------------------------------------------------
 */

TtoApiAnswer *
TtoApiAnswerNew(void)
{
    TtoApiAnswer *ans = ckalloc(sizeof(TtoApiAnswer));

    AnswerInit(ans);
    return ans;
}

void
TtoApiAnswerFree(
    TtoApiAnswer *ans)
{
    if (ans) {
	AnswerFree(ans);
	ckfree(ans);
    }
}

/*
 *----------------------------------------------------------------------
 *
 * TtoApiSetup --
 *
 *	Puts a request on a libcurl easy handle (any thread's: the thread's
 *	own for the sync form, the async engine's otherwise); the answer
 *	collects the last response's status, headers and body.  The handle
 *	is reset first, so its connection cache is all that carries over.
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Sets options on the handle; until TtoApiFinish, the handle points
 *	into req and ans.
 *
 *----------------------------------------------------------------------
 */

void
TtoApiSetup(
    void *handle,
    TtoApiRequest *req,
    TtoApiAnswer *ans)
{
    CURL *curl = handle;
    int i;

    req->errbuf[0] = '\0';
    TtoCurlSafeBase(curl, Tcl_DStringValue(&req->url), req->errbuf,
	    req->timeoutMs, req->caFile, req->proxy, req->userAgent);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, TtoCurlWriteBody);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &ans->buf);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, HeaderLine);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, ans);

    if (req->hasBody) {
	curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
		(curl_off_t) Tcl_DStringLength(&req->body));
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS,
		Tcl_DStringValue(&req->body));
	if (strcmp(req->method, "POST") != 0) {
	    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req->method);
	}
    } else if (strcmp(req->method, "GET") == 0) {
	curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(req->method, "HEAD") == 0) {
	curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    } else {
	if (strcmp(req->method, "POST") == 0) {
	    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t) 0);
	    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
	}
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req->method);
    }
    if (req->slist) {
	curl_slist_free_all(req->slist);
	req->slist = NULL;
    }
    for (i = 0; i < req->headerLines.count; i++) {
	req->slist = curl_slist_append(req->slist,
		req->headerLines.items[i].name);
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, req->slist);
}

/*
 *----------------------------------------------------------------------
 *
 * TtoApiFinish --
 *
 *	Reads back the outcome of a transfer set up with TtoApiSetup and
 *	clears the handle of every pointer into req (and so of every
 *	credential).
 *
 * Results:
 *	0 when an answer came (ans->status and the rest filled); else -1
 *	with *namePtr the libcurl error's name (or TOO_LARGE) and *infoPtr
 *	a ckalloc'ed message "request METHOD URL failed: ..." scrubbed of
 *	every secret of the request.
 *
 * Side effects:
 *	Resets pointers on the handle; frees the header list.
 *
 *----------------------------------------------------------------------
 */

int
TtoApiFinish(
    void *handle,
    int curlCode,
    TtoApiRequest *req,
    TtoApiAnswer *ans,
    const char **namePtr,
    char **infoPtr)
{
    CURL *curl = handle;
    CURLcode rc = (CURLcode) curlCode;
    int result = 0;

    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &ans->status);
    *namePtr = NULL;
    *infoPtr = NULL;
    if (rc != CURLE_OK) {
	char info[CURL_ERROR_SIZE + 100];
	const char *name = TtoCurlErrorName((int) rc);
	Tcl_DString msg;

	if (ans->buf.tooLarge) {
	    name = "TOO_LARGE";
	    snprintf(info, sizeof(info), "the answer is larger than %d MiB",
		    TTO_MAX_API_BODY / (1024 * 1024));
	} else {
	    snprintf(info, sizeof(info), "%s%s%s", curl_easy_strerror(rc),
		    req->errbuf[0] ? ": " : "", req->errbuf);
	}
	*namePtr = name;
	Tcl_DStringInit(&msg);
	Tcl_DStringAppend(&msg, "request ", -1);
	Tcl_DStringAppend(&msg, req->method, -1);
	Tcl_DStringAppend(&msg, " ", 1);
	Tcl_DStringAppend(&msg, Tcl_DStringValue(&req->shown), -1);
	Tcl_DStringAppend(&msg, " failed: ", -1);
	Tcl_DStringAppend(&msg, info, -1);
	*infoPtr = TtoStrDup(Tcl_DStringValue(&msg));
	Tcl_DStringFree(&msg);
	TtoScrub(*infoPtr, (const char *const *) req->secrets, 3);
	result = -1;
    }

    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, NULL);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, NULL);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, NULL);
    curl_easy_setopt(curl, CURLOPT_URL, NULL);
    if (req->slist) {
	curl_slist_free_all(req->slist);
	req->slist = NULL;
    }
    return result;
}

/*
 *----------------------------------------------------------------------
 *
 * Perform --
 *
 *	The sync form: one request on the thread's libcurl handle.
 *
 * Results:
 *	TCL_OK with *ans filled, or {TTOAUTH2 HTTP name message} for a
 *	transport failure; the message shows the URL without secrets.
 *
 * Side effects:
 *	Network traffic; the connection is kept for the next request.
 *
 *----------------------------------------------------------------------
 */

static int
Perform(
    Tcl_Interp *interp,
    const ApiCall *call,
    const TtoApiConfig *cfg,
    ApiAnswer *ans)
{
    TtoCurl *http = TtoThreadCurl();
    TtoApiRequest *req;
    const char *name;
    char *info, numName[32];
    int rc;

    if (http == NULL) {
	return TtoFail(interp, "HTTP", "INIT", "cannot create a libcurl "
		"handle");
    }
    if ((req = Prepare(interp, call, cfg)) == NULL) {
	return TCL_ERROR;
    }
    TtoApiSetup(TtoCurlEasy(http), req, ans);
    rc = TtoCurlPerform(http, NULL);
    if (TtoApiFinish(TtoCurlEasy(http), rc, req, ans, &name, &info) != 0) {
	if (name == NULL) {
	    snprintf(numName, sizeof(numName), "CURLE_%d", rc);
	    name = numName;
	}
	Tcl_SetObjResult(interp, Tcl_NewStringObj(info, -1));
	Tcl_SetErrorCode(interp, "TTOAUTH2", "HTTP", name, ans->buf.tooLarge ? ""
		: curl_easy_strerror((CURLcode) rc), (char *) NULL);
	ckfree(info);
	TtoApiRequestFree(req);
	return TCL_ERROR;
    }
    TtoApiRequestFree(req);
    return TCL_OK;
}

/*
 *----------------------------------------------------------------------
 *
 * AnswerDict --
 *
 *	The method's result: status, headers, body, and for tiktokshop code
 *	and message (from the JSON answer; "" when it has none).
 *
 *----------------------------------------------------------------------
 */

static Tcl_Obj *
AnswerDict(
    const ApiAnswer *ans,
    TtoProvider provider,
    long long *codePtr)
{
    Tcl_Obj *dict = Tcl_NewDictObj(), *headers = Tcl_NewDictObj();
    const char *message;
    cJSON *root;
    int i;

    *codePtr = 0;
    for (i = 0; i < ans->headers.count; i++) {
	Tcl_Obj *key = Tcl_NewStringObj(ans->headers.items[i].name, -1);
	Tcl_Obj *old, *value = TextObj(ans->headers.items[i].value,
		strlen(ans->headers.items[i].value));

	Tcl_IncrRefCount(key);
	if (Tcl_DictObjGet(NULL, headers, key, &old) == TCL_OK && old) {
	    /* A repeated field: its values joined by ", " (RFC 9110 5.3). */
	    Tcl_Obj *joined = Tcl_DuplicateObj(old);

	    Tcl_AppendToObj(joined, ", ", 2);
	    Tcl_AppendObjToObj(joined, value);
	    Tcl_DecrRefCount(value);
	    value = joined;
	}
	Tcl_DictObjPut(NULL, headers, key, value);
	Tcl_DecrRefCount(key);
    }
    Tcl_DictObjPut(NULL, dict, Tcl_NewStringObj("status", -1),
	    Tcl_NewWideIntObj(ans->status));
    Tcl_DictObjPut(NULL, dict, Tcl_NewStringObj("headers", -1), headers);
    Tcl_DictObjPut(NULL, dict, Tcl_NewStringObj("body", -1),
	    TextObj(Tcl_DStringValue(&ans->buf.body),
	    (size_t) Tcl_DStringLength(&ans->buf.body)));
    if (TtoProviderApiCode(provider, Tcl_DStringValue(&ans->buf.body),
	    (size_t) Tcl_DStringLength(&ans->buf.body), codePtr, &message,
	    &root)) {
	Tcl_DictObjPut(NULL, dict, Tcl_NewStringObj("code", -1),
		*codePtr == -1 ? Tcl_NewObj()
		: Tcl_NewWideIntObj((Tcl_WideInt) *codePtr));
	Tcl_DictObjPut(NULL, dict, Tcl_NewStringObj("message", -1), message
		? TextObj(message, strlen(message)) : Tcl_NewObj());
	cJSON_Delete(root);
    }
    return dict;
}

/*
 * Does the answer say the access token is no longer good?  tiktokshop:
 * "code" 105002; rfc6749: 401 with WWW-Authenticate error="invalid_token"
 * (RFC 6750 3.1).
 */

static int
NeedsRefresh(
    const ApiAnswer *ans,
    TtoProvider provider,
    long long code)
{
    return TtoProviderApiExpired(provider, (long) ans->status,
	    TtoPairsGet(&ans->headers, "www-authenticate"), code);
}

/*
 *----------------------------------------------------------------------
 *
 * EnsureToken --
 *
 *	validAccessToken's fast path: the object's access token when it is
 *	non-empty and lasts TTO_VALID_WITHIN more seconds (or its expiry is
 *	unknown); otherwise validAccessToken itself (TtoTokenObtain: with a
 *	token store or -tokenfile it holds the key's lock, takes a good
 *	stored token, else refreshes once).
 *
 * Results:
 *	TCL_OK with *cfg current, or the refresh's error.
 *
 * Side effects:
 *	May refresh the object's tokens.
 *
 *----------------------------------------------------------------------
 */

static int
EnsureToken(
    Tcl_Interp *interp,
    TtoObject *obj,
    TtoApiConfig *cfg)
{
    long long now = (long long) time(NULL);

    if (*cfg->accessToken && (cfg->expiresAt < 0
	    || cfg->expiresAt > now + TTO_VALID_WITHIN)) {
	return TCL_OK;
    }
    if (*cfg->accessToken && *cfg->refreshToken == '\0') {
	return TCL_OK;		/* nothing to renew it with: try it as is */
    }
    if (TtoTokenObtain(interp, obj, TTO_OBTAIN_VALID, TTO_VALID_WITHIN,
	    NULL, NULL) != TCL_OK) {
	return TCL_ERROR;
    }
    Tcl_ResetResult(interp);
    TtoObjectApiConfig(obj, cfg);
    return TCL_OK;
}

/*
 *----------------------------------------------------------------------
 *
 * The asynchronous form (-command) --
 *
 *	The request is prepared in the interp's thread, performed by the
 *	async engine (ttoauth2Async.c) on an easy handle of its own (the
 *	engine's multi handle keeps the connections), and finished back in
 *	the interp's thread from the event loop, where a 105002 /
 *	invalid_token answer starts one refresh (TtoTokenObtain, under the
 *	store's lock, asynchronous too) and one retry.  The command is
 *	called with the object's name and a dict: status ok and answer (the
 *	dict the sync form returns), or status error, errorcode and message.
 *
 *	Lifetimes: an AsyncReq (Tcl side) lives until its command has been
 *	called, or its object is destroyed; an Xfer (plain C) is what the
 *	engine holds, freed by the engine's freeProc when cancelled.
 *
 *----------------------------------------------------------------------
 */

typedef struct AsyncReq AsyncReq;

typedef struct {
    CURL *easy;
    TtoApiRequest *req;
    TtoApiAnswer *ans;
    int rc;			/* TtoApiFinish's result */
    int curlCode;
    const char *errName;
    char *errInfo;
    AsyncReq *ar;		/* valid unless cancelled */
} Xfer;

struct AsyncReq {
    Tcl_Interp *interp;
    TtoObject *obj;
    Tcl_Obj *objName;
    Tcl_Obj *command;
    ApiCall call;
    int attempt;
    int obtaining;		/* waiting for TtoTokenObtain's doneProc */
    Xfer *xfer;			/* in the engine, or NULL */
    TtoAsyncJob *job;
    AsyncReq *prev, *next;	/* the thread's requests in flight */
};

typedef struct {
    AsyncReq *first;
} AsyncThreadData;

static Tcl_ThreadDataKey asyncKey;

static void
XferFree(
    void *data)
{
    Xfer *x = data;

    if (x->easy) {
	curl_easy_cleanup(x->easy);
    }
    TtoApiRequestFree(x->req);
    TtoApiAnswerFree(x->ans);
    if (x->errInfo) {
	ckfree(x->errInfo);
    }
    ckfree(x);
}

static void
XferFinish(
    void *data,
    int curlCode)
{
    Xfer *x = data;

    x->curlCode = curlCode;
    x->rc = TtoApiFinish(x->easy, curlCode, x->req, x->ans, &x->errName,
	    &x->errInfo);
}

static void
AsyncUnlink(
    AsyncReq *ar)
{
    AsyncThreadData *tsd = Tcl_GetThreadData(&asyncKey,
	    sizeof(AsyncThreadData));

    if (ar->prev) {
	ar->prev->next = ar->next;
    } else if (tsd->first == ar) {
	tsd->first = ar->next;
    }
    if (ar->next) {
	ar->next->prev = ar->prev;
    }
    ar->prev = ar->next = NULL;
}

static void
AsyncFree(
    AsyncReq *ar)
{
    AsyncUnlink(ar);
    CallFree(&ar->call);
    Tcl_DecrRefCount(ar->objName);
    Tcl_DecrRefCount(ar->command);
    Tcl_Release(ar->interp);
    ckfree(ar);
}

/* Calls the command with {status ok answer DICT} or an error dict; frees ar. */
static void
AsyncReport(
    AsyncReq *ar,
    Tcl_Obj *result)
{
    Tcl_Interp *interp = ar->interp;
    Tcl_Obj *cmd = Tcl_DuplicateObj(ar->command);
    int code;

    Tcl_IncrRefCount(cmd);
    Tcl_ListObjAppendElement(NULL, cmd, ar->objName);
    Tcl_ListObjAppendElement(NULL, cmd, result);
    Tcl_Preserve(interp);
    AsyncFree(ar);
    code = Tcl_EvalObjEx(interp, cmd, TCL_EVAL_GLOBAL);
    if (code != TCL_OK && code != TCL_BREAK && code != TCL_CONTINUE) {
	Tcl_BackgroundException(interp, code);
    }
    Tcl_DecrRefCount(cmd);
    Tcl_Release(interp);
}

/*
 *----------------------------------------------------------------------
 *
 * TtoErrorDict --
 *
 *	What a -command callback gets for a failure (refresh,
 *	validAccessToken, request): {status error errorcode EC message M}.
 *
 * Results:
 *	A new dict value.
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

Tcl_Obj *
TtoErrorDict(
    Tcl_Obj *errorCode,
    Tcl_Obj *message)
{
    Tcl_Obj *d = Tcl_NewDictObj();

    Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("status", -1),
	    Tcl_NewStringObj("error", -1));
    Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("errorcode", -1), errorCode);
    Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("message", -1), message);
    return d;
}

/* The interp's current error as an error dict (after TCL_ERROR). */
static Tcl_Obj *
InterpTtoErrorDict(
    Tcl_Interp *interp,
    int code)
{
    Tcl_Obj *options = Tcl_GetReturnOptions(interp, code), *ec = NULL;
    Tcl_Obj *key = Tcl_NewStringObj("-errorcode", -1), *d;

    Tcl_IncrRefCount(options);
    Tcl_IncrRefCount(key);
    Tcl_DictObjGet(NULL, options, key, &ec);
    d = TtoErrorDict(ec ? ec : Tcl_NewStringObj("TTOAUTH2 HTTP", -1),
	    Tcl_GetObjResult(interp));
    Tcl_DecrRefCount(key);
    Tcl_DecrRefCount(options);
    Tcl_ResetResult(interp);
    return d;
}

static void AsyncStart(AsyncReq *ar);

static void
AsyncObtained(
    void *clientData,
    Tcl_Interp *interp,
    int code)
{
    AsyncReq *ar = clientData;

    ar->obtaining = 0;
    if (interp == NULL) {
	AsyncFree(ar);			/* the object is gone */
	return;
    }
    if (code != TCL_OK) {
	AsyncReport(ar, InterpTtoErrorDict(interp, code));
	return;
    }
    Tcl_ResetResult(interp);
    AsyncStart(ar);
}

static void
XferDone(
    void *data)
{
    Xfer *x = data;
    AsyncReq *ar = x->ar;
    Tcl_Obj *answer, *d;
    long long code = 0;
    TtoApiConfig cfg;

    ar->xfer = NULL;
    ar->job = NULL;
    if (x->rc != 0) {
	char numName[32];
	const char *name = x->errName;
	Tcl_Obj *ec;

	if (name == NULL) {
	    snprintf(numName, sizeof(numName), "CURLE_%d", x->curlCode);
	    name = numName;
	}
	ec = Tcl_NewListObj(0, NULL);
	Tcl_ListObjAppendElement(NULL, ec, Tcl_NewStringObj("TTOAUTH2", -1));
	Tcl_ListObjAppendElement(NULL, ec, Tcl_NewStringObj("HTTP", -1));
	Tcl_ListObjAppendElement(NULL, ec, Tcl_NewStringObj(name, -1));
	Tcl_ListObjAppendElement(NULL, ec, Tcl_NewStringObj(x->ans->buf.tooLarge
		? "" : curl_easy_strerror((CURLcode) x->curlCode), -1));
	d = TtoErrorDict(ec, Tcl_NewStringObj(x->errInfo, -1));
	XferFree(x);
	AsyncReport(ar, d);
	return;
    }
    TtoObjectApiConfig(ar->obj, &cfg);
    answer = AnswerDict(x->ans, cfg.provider, &code);
    if (ar->attempt == 0 && NeedsRefresh(x->ans, cfg.provider, code)
	    && *cfg.refreshToken) {
	Tcl_DecrRefCount(answer);
	XferFree(x);
	ar->attempt = 1;
	ar->obtaining = 1;
	if (TtoTokenObtain(ar->interp, ar->obj, TTO_OBTAIN_REFRESH, 0,
		AsyncObtained, ar) != TCL_OK) {
	    ar->obtaining = 0;
	    AsyncReport(ar, InterpTtoErrorDict(ar->interp, TCL_ERROR));
	}
	return;
    }
    XferFree(x);
    d = Tcl_NewDictObj();
    Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("status", -1),
	    Tcl_NewStringObj("ok", -1));
    Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("answer", -1), answer);
    AsyncReport(ar, d);
}

/* Prepares and submits the transfer with the object's current token. */
static void
AsyncStart(
    AsyncReq *ar)
{
    TtoApiConfig cfg;
    Xfer *x;

    TtoObjectApiConfig(ar->obj, &cfg);
    x = ckalloc(sizeof(Xfer));
    memset(x, 0, sizeof(*x));
    x->ar = ar;
    x->req = Prepare(ar->interp, &ar->call, &cfg);
    x->easy = curl_easy_init();
    if (x->req == NULL || x->easy == NULL) {
	Tcl_Obj *d = (x->req == NULL) ? InterpTtoErrorDict(ar->interp,
		TCL_ERROR) : TtoErrorDict(Tcl_NewStringObj("TTOAUTH2 HTTP INIT",
		-1), Tcl_NewStringObj("cannot create a libcurl handle", -1));

	XferFree(x);
	AsyncReport(ar, d);
	return;
    }
    x->ans = TtoApiAnswerNew();
    TtoApiSetup(x->easy, x->req, x->ans);
    ar->xfer = x;
    ar->job = TtoAsyncSubmit(x->easy, XferFinish, XferDone, XferFree, x);
    if (ar->job == NULL) {
	ar->xfer = NULL;
	XferFree(x);
	AsyncReport(ar, TtoErrorDict(Tcl_NewStringObj("TTOAUTH2 HTTP INIT", -1),
		Tcl_NewStringObj("cannot start an asynchronous request", -1)));
    }
}

/*
 *----------------------------------------------------------------------
 *
 * RequestAsync --
 *
 *	Starts an asynchronous request; takes over *call.
 *
 * Results:
 *	TCL_OK (started; the result is empty) or TCL_ERROR (could not
 *	start).
 *
 * Side effects:
 *	The command is called later from the event loop.
 *
 *----------------------------------------------------------------------
 */

static int
RequestAsync(
    Tcl_Interp *interp,
    TtoObject *obj,
    Tcl_Obj *nameObj,
    ApiCall *call,
    const TtoApiConfig *cfg,
    Tcl_Obj *command)
{
    AsyncThreadData *tsd = Tcl_GetThreadData(&asyncKey,
	    sizeof(AsyncThreadData));
    AsyncReq *ar = ckalloc(sizeof(AsyncReq));
    Tcl_Command token = Tcl_GetCommandFromObj(interp, nameObj);
    long long now = (long long) time(NULL);

    memset(ar, 0, sizeof(*ar));
    ar->interp = interp;
    Tcl_Preserve(interp);
    ar->obj = obj;
    ar->objName = Tcl_NewObj();
    if (token != NULL) {
	Tcl_GetCommandFullName(interp, token, ar->objName);
    } else {
	Tcl_AppendObjToObj(ar->objName, nameObj);
    }
    Tcl_IncrRefCount(ar->objName);
    ar->command = command;
    Tcl_IncrRefCount(command);
    CallMove(&ar->call, call);
    ar->next = tsd->first;
    if (ar->next) {
	ar->next->prev = ar;
    }
    tsd->first = ar;

    if (*cfg->accessToken && (cfg->expiresAt < 0
	    || cfg->expiresAt > now + TTO_VALID_WITHIN)) {
	AsyncStart(ar);
	return TCL_OK;
    }
    ar->obtaining = 1;
    if (TtoTokenObtain(interp, obj, TTO_OBTAIN_VALID, TTO_VALID_WITHIN,
	    AsyncObtained, ar) != TCL_OK) {
	AsyncFree(ar);
	return TCL_ERROR;
    }
    return TCL_OK;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoRequestObjectGone --
 *
 *	An object is being destroyed: its requests in flight are cancelled
 *	and forgotten (their commands are not called).  Those waiting for a
 *	token are freed by TtoTokenObtain's doneProc (interp NULL).
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Cancels engine jobs; frees memory.
 *
 *----------------------------------------------------------------------
 */

void
TtoRequestObjectGone(
    TtoObject *obj)
{
    AsyncThreadData *tsd = Tcl_GetThreadData(&asyncKey,
	    sizeof(AsyncThreadData));
    AsyncReq *ar = tsd->first, *next;

    for (; ar != NULL; ar = next) {
	next = ar->next;
	if (ar->obj != obj || ar->obtaining) {
	    continue;
	}
	if (ar->job) {
	    TtoAsyncCancel(ar->job);	/* the engine frees the Xfer */
	    ar->job = NULL;
	    ar->xfer = NULL;
	}
	AsyncFree(ar);
    }
}

/*
 *----------------------------------------------------------------------
 *
 * TtoRequestMethod --
 *
 *	$o request method url ?-query dict? ?-body text? ?-headers dict?
 *	?-timeout ms? ?-command cmd?
 *
 * Results:
 *	A Tcl result: the answer's dict (see AnswerDict), or an error:
 *	{TTOAUTH2 OPTION ...} for bad arguments, {TTOAUTH2 HTTP ...} for a
 *	transport failure, or the refresh's error.
 *
 * Side effects:
 *	Network traffic; may refresh (and save) the object's tokens once.
 *
 *----------------------------------------------------------------------
 */

int
TtoRequestMethod(
    Tcl_Interp *interp,
    TtoObject *obj,
    Tcl_Size objc,
    Tcl_Obj *const objv[])
{
    TtoApiConfig cfg;
    ApiCall call;
    ApiAnswer ans;
    Tcl_Obj *command, *result = NULL;
    long long code = 0;
    const char *why;
    int attempt, rc = TCL_ERROR;

    if (objc < 4) {
	Tcl_WrongNumArgs(interp, 2, objv, "method url ?-query dict? "
		"?-body text? ?-headers dict? ?-timeout ms? ?-command cmd?");
	return TCL_ERROR;
    }
    TtoObjectApiConfig(obj, &cfg);
    CallInit(&call);
    AnswerInit(&ans);
    if (ParseCall(interp, &cfg, objc, objv, &call, &command) != TCL_OK) {
	goto done;
    }
    if ((why = TtoProviderApiCheck(&cfg)) != NULL) {
	TtoFail(interp, "STATE", NULL, why);
	goto done;
    }
    if (command != NULL) {
	rc = RequestAsync(interp, obj, objv[0], &call, &cfg, command);
	goto done;
    }
    if (EnsureToken(interp, obj, &cfg) != TCL_OK) {
	goto done;
    }

    /* One try, and after a refresh one more. */
    for (attempt = 0; attempt < 2; attempt++) {
	AnswerFree(&ans);
	AnswerInit(&ans);
	if (Perform(interp, &call, &cfg, &ans) != TCL_OK) {
	    goto done;
	}
	if (result) {
	    Tcl_DecrRefCount(result);
	}
	result = AnswerDict(&ans, cfg.provider, &code);
	Tcl_IncrRefCount(result);
	if (attempt == 1 || !NeedsRefresh(&ans, cfg.provider, code)
		|| *cfg.refreshToken == '\0') {
	    break;
	}
	if (TtoObjectRefresh(interp, obj) != TCL_OK) {
	    goto done;
	}
	Tcl_ResetResult(interp);
	TtoObjectApiConfig(obj, &cfg);
    }
    Tcl_SetObjResult(interp, result);
    rc = TCL_OK;

  done:
    if (result) {
	Tcl_DecrRefCount(result);
    }
    AnswerFree(&ans);
    CallFree(&call);
    return rc;
}
