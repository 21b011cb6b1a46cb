/*
 * ttoauth2Token.c --
 *
 *	Requests to the token endpoint (code exchange and refresh) with
 *	libcurl, and the one place that knows each provider's wire format:
 *
 *	tiktokshop  GET endpoint?app_key=&app_secret=&auth_code=
 *			&grant_type=authorized_code		 (exchange)
 *		    GET endpoint?app_key=&app_secret=&refresh_token=
 *			&grant_type=refresh_token		 (refresh)
 *		    success: HTTP 200 and "code": 0; tokens in "data";
 *		    *_expire_in are absolute Unix times.
 *	rfc6749	    POST application/x-www-form-urlencoded (section 4.1.3 /
 *		    section 6), client credentials in the body or HTTP Basic
 *		    (section 2.3.1); errors per section 5.2; expires_in is
 *		    relative to receipt.
 *
 *	Runs in the flow thread and in the Tcl thread (refresh): plain C,
 *	no Tcl_Obj.  Never follows redirects, always verifies TLS.
 */

#include "ttoauth2Int.h"
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <curl/curl.h>
#include <cjson/cJSON.h>

#define TTO_MAX_BODY	(1024 * 1024)	/* a token response is < 10 KB */

struct TtoCurl {
    CURL *curl;
    CURLM *multi;		/* owns the connection cache; wakeable */
};

typedef struct {
    Tcl_DString body;
    int tooLarge;
} BodyBuffer;

/*
 *----------------------------------------------------------------------
 *
 * TtoCurlNew, TtoCurlFree --
 *
 *	A libcurl easy handle kept between requests, so that refreshes of
 *	one object reuse the connection to the token endpoint.
 *
 *----------------------------------------------------------------------
 */

/*
 * libcurl's process-wide setup runs on the first request, not at load:
 * it initialises OpenSSL, which a script that only parses JSON or reads
 * token files never needs.  curl_global_init is thread-safe in the
 * libcurl versions configure accepts, but it is guarded all the same.
 */

TCL_DECLARE_MUTEX(curlInitMutex)
static int curlInitialized = 0;

static int
CurlInit(void)
{
    int ok;

    Tcl_MutexLock(&curlInitMutex);
    if (!curlInitialized
	    && curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK) {
	curlInitialized = 1;
    }
    ok = curlInitialized;
    Tcl_MutexUnlock(&curlInitMutex);
    return ok;
}

/*
 * Idle handles kept for the next flow, so that a flow reuses the
 * connection (and TLS session) to the token endpoint that the last one
 * opened instead of a new handshake each time.  Handles are handed out
 * whole, never shared: libcurl's shared connection cache is not safe
 * across threads.
 */

#define TTO_CURL_POOL	4

TCL_DECLARE_MUTEX(poolMutex)
static TtoCurl *pool[TTO_CURL_POOL];
static int poolCount = 0;

TtoCurl *
TtoCurlAcquire(void)
{
    TtoCurl *http = NULL;

    Tcl_MutexLock(&poolMutex);
    if (poolCount > 0) {
	http = pool[--poolCount];
    }
    Tcl_MutexUnlock(&poolMutex);
    return http ? http : TtoCurlNew();
}

void
TtoCurlRelease(
    TtoCurl *http)
{
    if (http == NULL) {
	return;
    }
    Tcl_MutexLock(&poolMutex);
    if (poolCount < TTO_CURL_POOL) {
	pool[poolCount++] = http;
	http = NULL;
    }
    Tcl_MutexUnlock(&poolMutex);
    TtoCurlFree(http);
}

void
TtoCurlPoolFree(void)
{
    Tcl_MutexLock(&poolMutex);
    while (poolCount > 0) {
	TtoCurlFree(pool[--poolCount]);
    }
    Tcl_MutexUnlock(&poolMutex);
}

TtoCurl *
TtoCurlNew(void)
{
    TtoCurl *http;

    if (!CurlInit()) {
	return NULL;
    }
    http = ckalloc(sizeof(TtoCurl));

    http->curl = curl_easy_init();
    http->multi = curl_multi_init();
    if (http->curl == NULL || http->multi == NULL) {
	TtoCurlFree(http);
	return NULL;
    }
    return http;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoCurlWake --
 *
 *	Interrupts a request running in another thread so that it sees its
 *	cancel flag at once instead of at libcurl's next progress tick.
 *
 *----------------------------------------------------------------------
 */

void
TtoCurlWake(
    TtoCurl *http)
{
    if (http && http->multi) {
	curl_multi_wakeup(http->multi);
    }
}

void
TtoCurlFree(
    TtoCurl *http)
{
    if (http) {
	if (http->multi) {
	    curl_multi_cleanup(http->multi);
	}
	if (http->curl) {
	    curl_easy_cleanup(http->curl);
	}
	ckfree(http);
    }
}

const char *
TtoCurlVersion(void)
{
    return curl_version_info(CURLVERSION_NOW)->version;
}

const char *
TtoTlsBackend(void)
{
    const char *ssl = curl_version_info(CURLVERSION_NOW)->ssl_version;

    return ssl ? ssl : "none";
}

static size_t
WriteBody(
    char *data,
    size_t size,
    size_t nmemb,
    void *userdata)
{
    BodyBuffer *buf = userdata;
    size_t len = size * nmemb;

    if ((size_t) Tcl_DStringLength(&buf->body) + len > TTO_MAX_BODY) {
	buf->tooLarge = 1;
	return 0;			/* makes libcurl fail the transfer */
    }
    Tcl_DStringAppend(&buf->body, data, (Tcl_Size) len);
    return len;
}

static int
Progress(
    void *clientp,
    curl_off_t dltotal,
    curl_off_t dlnow,
    curl_off_t ultotal,
    curl_off_t ulnow)
{
    volatile int *cancelPtr = clientp;

    return TtoCancelRequested(cancelPtr) ? 1 : 0;
}

static void
SetFailure(
    TtoTokenResult *res,
    const char *kind,
    const char *word0,
    const char *word1,
    const char *info)
{
    res->ok = 0;
    res->errorKind = kind;
    res->errorWords[0] = TtoStrDup(word0);
    res->errorWords[1] = TtoStrDup(word1);
    res->failureInfo = TtoStrDup(info);
}

/*
 * The symbolic names of the libcurl errors a token request meets in
 * practice, so that -errorcode can be matched without magic numbers.
 */

static const char *
CurlErrorName(
    CURLcode code)
{
    switch (code) {
    case CURLE_UNSUPPORTED_PROTOCOL:	return "UNSUPPORTED_PROTOCOL";
    case CURLE_URL_MALFORMAT:		return "URL_MALFORMAT";
    case CURLE_COULDNT_RESOLVE_PROXY:	return "COULDNT_RESOLVE_PROXY";
    case CURLE_COULDNT_RESOLVE_HOST:	return "COULDNT_RESOLVE_HOST";
    case CURLE_COULDNT_CONNECT:		return "COULDNT_CONNECT";
    case CURLE_WEIRD_SERVER_REPLY:	return "WEIRD_SERVER_REPLY";
    case CURLE_HTTP2:			return "HTTP2";
    case CURLE_PARTIAL_FILE:		return "PARTIAL_FILE";
    case CURLE_WRITE_ERROR:		return "WRITE_ERROR";
    case CURLE_OPERATION_TIMEDOUT:	return "OPERATION_TIMEDOUT";
    case CURLE_SSL_CONNECT_ERROR:	return "SSL_CONNECT_ERROR";
    case CURLE_ABORTED_BY_CALLBACK:	return "ABORTED_BY_CALLBACK";
    case CURLE_GOT_NOTHING:		return "GOT_NOTHING";
    case CURLE_SEND_ERROR:		return "SEND_ERROR";
    case CURLE_RECV_ERROR:		return "RECV_ERROR";
    case CURLE_SSL_CERTPROBLEM:		return "SSL_CERTPROBLEM";
    case CURLE_SSL_CIPHER:		return "SSL_CIPHER";
    case CURLE_PEER_FAILED_VERIFICATION: return "PEER_FAILED_VERIFICATION";
    case CURLE_SSL_CACERT_BADFILE:	return "SSL_CACERT_BADFILE";
    case CURLE_TOO_MANY_REDIRECTS:	return "TOO_MANY_REDIRECTS";
    case CURLE_BAD_CONTENT_ENCODING:	return "BAD_CONTENT_ENCODING";
    default:				return NULL;
    }
}

/*
 *----------------------------------------------------------------------
 *
 * Perform --
 *
 *	Runs the prepared easy handle through the handle's multi stack, so
 *	that TtoCurlWake can interrupt the wait and a cancel is seen at
 *	once.  Timeouts are libcurl's (CURLOPT_TIMEOUT_MS).
 *
 *----------------------------------------------------------------------
 */

static CURLcode
Perform(
    TtoCurl *http,
    volatile int *cancelPtr)
{
    CURLcode rc = CURLE_OK;
    CURLMsg *msg;
    int running = 1, left, done = 0;

    if (curl_multi_add_handle(http->multi, http->curl) != CURLM_OK) {
	return CURLE_FAILED_INIT;
    }
    while (!done) {
	if (curl_multi_perform(http->multi, &running) != CURLM_OK) {
	    rc = CURLE_OUT_OF_MEMORY;
	    break;
	}
	while ((msg = curl_multi_info_read(http->multi, &left)) != NULL) {
	    if (msg->msg == CURLMSG_DONE && msg->easy_handle == http->curl) {
		rc = msg->data.result;
		done = 1;
	    }
	}
	if (done) {
	    break;
	}
	if (TtoCancelRequested(cancelPtr)) {
	    rc = CURLE_ABORTED_BY_CALLBACK;
	    break;
	}
	if (curl_multi_poll(http->multi, NULL, 0, 1000, NULL) != CURLM_OK) {
	    rc = CURLE_OUT_OF_MEMORY;
	    break;
	}
    }
    curl_multi_remove_handle(http->multi, http->curl);
    return rc;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoCurlEasy, TtoCurlPerform, TtoCurlErrorName --
 *
 *	For other requests on the same handle (ttoauth2Request.c): the
 *	libcurl easy handle (a CURL *), the wakeable perform loop above (a
 *	CURLcode), and the symbolic name of a libcurl error (or NULL).
 *
 * Results:
 *	As said.
 *
 * Side effects:
 *	TtoCurlPerform: the transfer the easy handle is set up for.
 *
 *----------------------------------------------------------------------
 */

void *
TtoCurlEasy(
    TtoCurl *http)
{
    return http->curl;
}

int
TtoCurlPerform(
    TtoCurl *http,
    volatile int *cancelPtr)
{
    return (int) Perform(http, cancelPtr);
}

const char *
TtoCurlErrorName(
    int code)
{
    return CurlErrorName((CURLcode) code);
}

/*
 *----------------------------------------------------------------------
 *
 * BuildRequest --
 *
 *	Writes the URL (and for rfc6749 the form body and Basic header
 *	credentials) of a token request.  This is where the provider
 *	profiles' wire formats live.
 *
 *----------------------------------------------------------------------
 */

static void
BuildRequest(
    const TtoTokenRequest *req,
    Tcl_DString *urlPtr,
    Tcl_DString *formPtr,
    Tcl_DString *basicPtr)
{
    int first = 1, i;
    const char *id = req->clientId ? req->clientId : "";
    const char *secret = req->clientSecret ? req->clientSecret : "";

    Tcl_DStringAppend(urlPtr, req->endpoint, -1);
    if (req->provider == TTO_PROVIDER_TIKTOKSHOP) {
	size_t endLen = strlen(req->endpoint);

	if (strchr(req->endpoint, '?') == NULL) {
	    Tcl_DStringAppend(urlPtr, "?", 1);
	} else if (endLen > 0 && req->endpoint[endLen - 1] != '?'
		&& req->endpoint[endLen - 1] != '&') {
	    first = 0;			/* endpoint has parameters already */
	}
	TtoQueryAppend(urlPtr, &first, "app_key", id);
	TtoQueryAppend(urlPtr, &first, "app_secret", secret);
	if (req->grant == TTO_GRANT_CODE) {
	    TtoQueryAppend(urlPtr, &first, "auth_code", req->code);
	    TtoQueryAppend(urlPtr, &first, "grant_type", "authorized_code");
	} else {
	    TtoQueryAppend(urlPtr, &first, "refresh_token", req->refreshToken);
	    TtoQueryAppend(urlPtr, &first, "grant_type", "refresh_token");
	}
	for (i = 0; req->extra && i < req->extra->count; i++) {
	    TtoQueryAppend(urlPtr, &first, req->extra->items[i].name,
		    req->extra->items[i].value);
	}
	return;
    }

    if (req->grant == TTO_GRANT_CODE) {
	TtoQueryAppend(formPtr, &first, "grant_type", "authorization_code");
	TtoQueryAppend(formPtr, &first, "code", req->code);
	TtoQueryAppend(formPtr, &first, "redirect_uri", req->redirectUri);
	if (req->codeVerifier && *req->codeVerifier) {
	    TtoQueryAppend(formPtr, &first, "code_verifier", req->codeVerifier);
	}
    } else {
	TtoQueryAppend(formPtr, &first, "grant_type", "refresh_token");
	TtoQueryAppend(formPtr, &first, "refresh_token", req->refreshToken);
	if (req->scope && *req->scope) {
	    TtoQueryAppend(formPtr, &first, "scope", req->scope);
	}
    }
    if (req->resource && *req->resource) {
	TtoQueryAppend(formPtr, &first, "resource", req->resource);
    }
    if (req->useBasicAuth && *secret) {
	/* RFC 6749 2.3.1: form-encode id and secret, then Basic. */
	Tcl_DString pair;

	Tcl_DStringInit(&pair);
	TtoUrlEncode(&pair, id, strlen(id));
	Tcl_DStringAppend(&pair, ":", 1);
	TtoUrlEncode(&pair, secret, strlen(secret));
	Tcl_DStringAppend(basicPtr, "Authorization: Basic ", -1);
	TtoBase64Encode(basicPtr, (unsigned char *) Tcl_DStringValue(&pair),
		(size_t) Tcl_DStringLength(&pair), 0);
	TtoWipeDString(&pair);
    } else {
	/* Public clients (no secret) identify themselves with client_id. */
	TtoQueryAppend(formPtr, &first, "client_id", id);
	if (*secret) {
	    TtoQueryAppend(formPtr, &first, "client_secret", secret);
	}
    }
    for (i = 0; req->extra && i < req->extra->count; i++) {
	TtoQueryAppend(formPtr, &first, req->extra->items[i].name,
		req->extra->items[i].value);
    }
}

/*
 * One token transfer: what libcurl reads while it runs (the URL, form
 * and header texts) and what the answer is checked against afterwards
 * (the request's secrets, copied, so that the failure text can be
 * scrubbed of them in whatever thread the transfer ends).
 */

struct TtoTokenXfer {
    CURL *curl;
    int ownCurl;		/* curl is ours (async), not a TtoCurl's */
    TtoProvider provider;
    Tcl_DString url, form, basic;
    struct curl_slist *headers;
    BodyBuffer buf;
    char errbuf[CURL_ERROR_SIZE];
    char *secrets[4];		/* secret, code, refresh token, verifier */
    volatile int *cancelPtr;
    int finished;		/* XferFinish has run */
};

/*
 * Prepares xfer->curl for the request (reset first: a handle is reused).
 */

static void
XferSetup(
    TtoTokenXfer *x,
    const TtoTokenRequest *req)
{
    CURL *curl = x->curl;

    x->provider = req->provider;
    Tcl_DStringInit(&x->url);
    Tcl_DStringInit(&x->form);
    Tcl_DStringInit(&x->basic);
    Tcl_DStringInit(&x->buf.body);
    x->buf.tooLarge = 0;
    x->errbuf[0] = '\0';
    x->headers = NULL;
    x->cancelPtr = req->cancelPtr;
    x->secrets[0] = TtoStrDup(req->clientSecret);
    x->secrets[1] = TtoStrDup(req->code);
    x->secrets[2] = TtoStrDup(req->refreshToken);
    x->secrets[3] = TtoStrDup(req->codeVerifier);

    BuildRequest(req, &x->url, &x->form, &x->basic);

    TtoCurlSafeBase(curl, Tcl_DStringValue(&x->url), x->errbuf);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, WriteBody);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &x->buf);
    if (req->cancelPtr) {
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, Progress);
	curl_easy_setopt(curl, CURLOPT_XFERINFODATA, (void *) req->cancelPtr);
    }
    if (req->timeoutMs > 0) {
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, req->timeoutMs);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, req->timeoutMs);
    }
    if (req->caFile && *req->caFile) {
	curl_easy_setopt(curl, CURLOPT_CAINFO, req->caFile);
    }
    if (req->proxy && *req->proxy) {
	curl_easy_setopt(curl, CURLOPT_PROXY, req->proxy);
    }
    curl_easy_setopt(curl, CURLOPT_USERAGENT,
	    (req->userAgent && *req->userAgent) ? req->userAgent
	    : "ttoauth2/" PACKAGE_VERSION);
    /* "": offer (and decode) every encoding this libcurl was built with. */
    curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
    x->headers = curl_slist_append(x->headers, "Accept: application/json");
    if (Tcl_DStringLength(&x->basic) > 0) {
	x->headers = curl_slist_append(x->headers,
		Tcl_DStringValue(&x->basic));
    }
    if (req->provider == TTO_PROVIDER_RFC6749) {
	x->headers = curl_slist_append(x->headers,
		"Content-Type: application/x-www-form-urlencoded");
	curl_easy_setopt(curl, CURLOPT_POST, 1L);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS,
		Tcl_DStringValue(&x->form));
	curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE,
		(long) Tcl_DStringLength(&x->form));
    } else {
	curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, x->headers);
}

/*
 * Classifies the end of a transfer into *res and wipes what the transfer
 * held (the handle is left without pointers into x).
 */

static void
XferFinish(
    TtoTokenXfer *x,
    CURLcode rc,
    TtoTokenResult *res)
{
    CURL *curl = x->curl;
    long status = 0;
    const char *secrets[5];
    int i;

    memset(res, 0, sizeof(*res));
    res->expiresAt = res->refreshExpiresAt = -1;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);

    if (rc != CURLE_OK) {
	char info[CURL_ERROR_SIZE + 200];
	const char *name = CurlErrorName(rc);
	char numName[32];

	if (name == NULL) {
	    snprintf(numName, sizeof(numName), "CURLE_%d", (int) rc);
	    name = numName;
	}
	if (rc == CURLE_ABORTED_BY_CALLBACK
		&& TtoCancelRequested(x->cancelPtr)) {
	    SetFailure(res, "CANCELLED", NULL, NULL,
		    "cancelled during the token request");
	} else if (x->buf.tooLarge) {
	    SetFailure(res, "HTTP", "TOO_LARGE", NULL,
		    "token endpoint sent more than 1 MiB; not a token response");
	} else {
	    snprintf(info, sizeof(info), "token request failed: %s%s%s",
		    curl_easy_strerror(rc), x->errbuf[0] ? ": " : "",
		    x->errbuf);
	    SetFailure(res, "HTTP", name, curl_easy_strerror(rc), info);
	}
	res->httpStatus = status;
    } else {
	res->body = ckalloc((size_t) Tcl_DStringLength(&x->buf.body) + 1);
	memcpy(res->body, Tcl_DStringValue(&x->buf.body),
		(size_t) Tcl_DStringLength(&x->buf.body) + 1);
	res->bodyLen = (size_t) Tcl_DStringLength(&x->buf.body);
	TtoTokenClassify(x->provider, status, res->body, res->bodyLen,
		time(NULL), res);
    }

    /* Nothing the server or libcurl said may carry a secret onwards. */
    for (i = 0; i < 4; i++) {
	secrets[i] = x->secrets[i];
    }
    secrets[4] = res->accessToken;
    TtoScrub(res->failureInfo, secrets, 5);
    TtoScrub(res->errorWords[0], secrets, 5);
    TtoScrub(res->errorWords[1], secrets, 5);

    /* Don't leave credentials in libcurl's handle or our buffers. */
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, NULL);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(curl, CURLOPT_URL, NULL);
    curl_slist_free_all(x->headers);
    x->headers = NULL;
    TtoWipeDString(&x->url);
    TtoWipeDString(&x->form);
    TtoWipeDString(&x->basic);
    TtoWipeDString(&x->buf.body);
    for (i = 0; i < 4; i++) {
	TtoSecretFree(x->secrets[i]);
	x->secrets[i] = NULL;
    }
}

/*
 *----------------------------------------------------------------------
 *
 * TtoTokenRequestRun --
 *
 *	Performs one token request and classifies the answer.
 *
 * Results:
 *	*res is filled (free with TtoTokenResultFree): res->ok with the
 *	tokens, or the error kind, -errorcode words and failureInfo.  The
 *	failure text is scrubbed of every secret of the request.
 *
 * Side effects:
 *	Network traffic; the handle keeps the connection for reuse.
 *
 *----------------------------------------------------------------------
 */

void
TtoTokenRequestRun(
    TtoCurl *http,
    const TtoTokenRequest *req,
    TtoTokenResult *res)
{
    TtoTokenXfer x;
    CURLcode rc;

    memset(&x, 0, sizeof(x));
    x.curl = http->curl;
    XferSetup(&x, req);
    rc = Perform(http, req->cancelPtr);
    XferFinish(&x, rc, res);
}

/*
 *----------------------------------------------------------------------
 *
 * TtoTokenXferNew, TtoTokenXferEasy, TtoTokenXferFinish, TtoTokenXferFree --
 *
 *	A token request for the async engine: its own easy handle,
 *	prepared with copies of everything the transfer reads.
 *
 * Results:
 *	TtoTokenXferNew: the transfer, or NULL when libcurl cannot make a
 *	handle.  TtoTokenXferFinish: *res as from TtoTokenRequestRun.
 *
 * Side effects:
 *	TtoTokenXferFinish wipes the request's texts; Free frees all.
 *
 *----------------------------------------------------------------------
 */

TtoTokenXfer *
TtoTokenXferNew(
    const TtoTokenRequest *req)
{
    TtoTokenXfer *x;
    CURL *curl;

    if (!CurlInit() || (curl = curl_easy_init()) == NULL) {
	return NULL;
    }
    x = ckalloc(sizeof(TtoTokenXfer));
    memset(x, 0, sizeof(*x));
    x->curl = curl;
    x->ownCurl = 1;
    XferSetup(x, req);
    x->cancelPtr = NULL;		/* the engine cancels by removal */
    return x;
}

void *
TtoTokenXferEasy(
    TtoTokenXfer *x)
{
    return x->curl;
}

void
TtoTokenXferFinish(
    TtoTokenXfer *x,
    int curlCode,
    TtoTokenResult *res)
{
    XferFinish(x, (CURLcode) curlCode, res);
    x->finished = 1;
}

void
TtoTokenXferFree(
    TtoTokenXfer *x)
{
    TtoTokenResult res;

    if (x == NULL) {
	return;
    }
    if (!x->finished) {
	XferFinish(x, CURLE_ABORTED_BY_CALLBACK, &res);
	TtoTokenResultFree(&res);
    }
    if (x->ownCurl) {
	curl_easy_cleanup(x->curl);
    }
    ckfree(x);
}

/*
 * What a refusal of the token endpoint means for the script: REAUTHORIZE
 * when the grant is gone and only a new authorization helps (TikTok
 * 36004001 refresh token expired, 36004004 invalid auth code, 36004005
 * no such authorization; OAuth invalid_grant), RETRY when the server
 * asks to come back later (TikTok 36009002 rate limited; OAuth
 * temporarily_unavailable, slow_down), else REJECTED (the request or
 * the client's configuration is wrong).
 */

static const char *
Advice(
    const char *code)
{
    static const char *const reauthorize[] = {
	"36004001", "36004004", "36004005", "invalid_grant", NULL
    };
    static const char *const retry[] = {
	"36009002", "temporarily_unavailable", "slow_down", NULL
    };
    int i;

    for (i = 0; reauthorize[i]; i++) {
	if (strcmp(code, reauthorize[i]) == 0) {
	    return "REAUTHORIZE";
	}
    }
    for (i = 0; retry[i]; i++) {
	if (strcmp(code, retry[i]) == 0) {
	    return "RETRY";
	}
    }
    return "REJECTED";
}

static const char *
StringMember(
    const cJSON *obj,
    const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);

    return (cJSON_IsString(item) && item->valuestring) ? item->valuestring
	    : NULL;
}

/*
 * The members token answers are read by.  An answer with one of them
 * twice in the same object is refused: JSON readers disagree on which of
 * the two counts (cJSON takes the first, [ttoauth2 json get] and most
 * others the last), so the token kept could differ from the one a script
 * reads out of accessTokenResponse.
 */

static const char *const rootMembers[] = {
    "code", "message", "data", "error", "error_description",
    "access_token", "refresh_token", "token_type", "expires_at",
    "expires_in", "refresh_expires_at", "refresh_token_expires_in",
    "refresh_expires_in", NULL
};
static const char *const dataMembers[] = {
    "access_token", "refresh_token", "access_token_expire_in",
    "refresh_token_expire_in", NULL
};

static const char *
RepeatedMember(
    const cJSON *obj,
    const char *const *names)
{
    const cJSON *child;
    unsigned long seen = 0;	/* a bit per name */
    int i;

    if (!cJSON_IsObject(obj)) {
	return NULL;
    }
    for (child = obj->child; child != NULL; child = child->next) {
	if (child->string == NULL) {
	    continue;
	}
	for (i = 0; names[i] != NULL; i++) {
	    if (strcmp(child->string, names[i]) == 0) {
		if (seen & (1UL << i)) {
		    return names[i];
		}
		seen |= 1UL << i;
		break;
	    }
	}
    }
    return NULL;
}

/*
 * A short printable excerpt of a server-sent string for failureInfo:
 * bounded, control characters replaced.
 */

static void
Excerpt(
    char *dst,
    size_t dstLen,
    const char *src)
{
    size_t i;

    for (i = 0; src && src[i] && i + 1 < dstLen; i++) {
	unsigned char c = (unsigned char) src[i];
	dst[i] = (c < 32 || c == 127) ? ' ' : (char) c;
    }
    dst[i] = '\0';
}

/*
 *----------------------------------------------------------------------
 *
 * TtoCurlSafeBase --
 *
 *	Resets a libcurl handle and sets what every request of ttoauth2
 *	has: the URL, HTTP(S) only, no signals, no redirects followed, TLS
 *	peer and host verification on, and the error buffer.
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Changes the handle's options.
 *
 *----------------------------------------------------------------------
 */

void
TtoCurlSafeBase(
    void *handle,
    const char *url,
    char *errbuf)
{
    CURL *curl = handle;

    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS,
	    (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
}

/*
 *----------------------------------------------------------------------
 *
 * TtoTokenClassify --
 *
 *	Decides what a token endpoint's answer means.  Pure function of
 *	its inputs (the time is passed in), so it can be fuzzed.
 *
 * Results:
 *	Fills res: on success ok=1 and the tokens and expiries; otherwise
 *	errorKind "HTTP" (status), "TOKEN" (the provider said no) or
 *	"JSON" (an answer we cannot read), with failureInfo.  res->body is
 *	left alone.  With TTO_PROVIDER_AUTO (a token file) the answer's
 *	shape decides the profile, left in res->provider.
 *
 *----------------------------------------------------------------------
 */

void
TtoTokenClassify(
    TtoProvider provider,
    long status,
    const char *body,
    size_t len,
    time_t now,
    TtoTokenResult *res)
{
    cJSON *root = NULL;
    const cJSON *data, *code;
    const char *access, *refresh, *tokenType, *message;
    char info[600], statusWord[32], msg[300], err[120];
    long long value;

    res->ok = 0;
    res->httpStatus = status;
    res->expiresAt = res->refreshExpiresAt = -1;
    snprintf(statusWord, sizeof(statusWord), "%ld", status);

    if (body && len > 0) {
	root = TtoJsonParse(body, len, NULL, NULL);
    }
    if (provider == TTO_PROVIDER_AUTO) {
	/* A token file: its shape says the profile. */
	data = cJSON_GetObjectItemCaseSensitive(root, "data");
	provider = (cJSON_IsObject(data) && cJSON_GetObjectItemCaseSensitive(
		data, "access_token")) ? TTO_PROVIDER_TIKTOKSHOP
		: TTO_PROVIDER_RFC6749;
	if (!cJSON_IsObject(root)) {
	    SetFailure(res, "JSON", NULL, NULL, root ? "not a JSON object"
		    : "not valid JSON");
	    goto done;
	}
    }
    res->provider = provider;
    if (cJSON_IsObject(root) && (TtoJsonHasNul(body, len, root, root,
	    rootMembers) || (provider == TTO_PROVIDER_TIKTOKSHOP
	    && cJSON_IsObject(data = cJSON_GetObjectItemCaseSensitive(root,
	    "data")) && TtoJsonHasNul(body, len, root, data, dataMembers)))) {
	/*
	 * A member we read with a NUL in its name or value: cJSON's C
	 * strings would cut it there without a word.
	 */
	cJSON_Delete(root);
	SetFailure(res, "JSON", NULL, NULL, "token response contains a NUL "
		"character (\\u0000) in a string");
	return;
    }
    if (status >= 300 && status < 400) {
	snprintf(info, sizeof(info), "token endpoint answered HTTP %ld, a "
		"redirect; token requests never follow redirects", status);
	SetFailure(res, "HTTP", statusWord, NULL, info);
	goto done;
    }
    if (root) {
	const char *twice = RepeatedMember(root, rootMembers);

	if (twice == NULL && provider == TTO_PROVIDER_TIKTOKSHOP) {
	    twice = RepeatedMember(cJSON_GetObjectItemCaseSensitive(root,
		    "data"), dataMembers);
	}
	if (twice != NULL) {
	    snprintf(info, sizeof(info), "token response has the member "
		    "\"%s\" more than once", twice);
	    SetFailure(res, "JSON", NULL, NULL, info);
	    goto done;
	}
    }

    if (provider == TTO_PROVIDER_TIKTOKSHOP) {
	if (status != 200) {
	    snprintf(info, sizeof(info), "token endpoint answered HTTP %ld%s",
		    status, root ? "" : " with a body that is not JSON");
	    SetFailure(res, "HTTP", statusWord, NULL, info);
	    goto done;
	}
	if (!cJSON_IsObject(root)) {
	    SetFailure(res, "JSON", NULL, NULL, "token endpoint answered "
		    "HTTP 200 with a body that is not a JSON object");
	    goto done;
	}
	code = cJSON_GetObjectItemCaseSensitive(root, "code");
	if (!TtoJsonWide(code, &value)) {
	    SetFailure(res, "JSON", NULL, NULL, "token endpoint answered "
		    "JSON without a numeric \"code\" member");
	    goto done;
	}
	if (value != 0) {
	    char codeWord[32];

	    message = StringMember(root, "message");
	    Excerpt(msg, sizeof(msg), message ? message : "");
	    snprintf(codeWord, sizeof(codeWord), "%lld", value);
	    snprintf(info, sizeof(info), "TikTok Shop error %lld: %s", value,
		    message ? msg : "(no message)");
	    SetFailure(res, "TOKEN", codeWord, msg, info);
	    res->errorWords[2] = TtoStrDup(Advice(codeWord));
	    goto done;
	}
	data = cJSON_GetObjectItemCaseSensitive(root, "data");
	access = StringMember(data, "access_token");
	if (access == NULL || *access == '\0') {
	    SetFailure(res, "JSON", NULL, NULL, "token endpoint answered "
		    "\"code\": 0 without data.access_token");
	    goto done;
	}
	res->accessToken = TtoStrDup(access);
	refresh = StringMember(data, "refresh_token");
	res->refreshToken = (refresh && *refresh) ? TtoStrDup(refresh) : NULL;
	res->tokenType = TtoStrDup("");
	if (TtoJsonWide(cJSON_GetObjectItemCaseSensitive(data,
		"access_token_expire_in"), &value)) {
	    res->expiresAt = value;
	}
	if (TtoJsonWide(cJSON_GetObjectItemCaseSensitive(data,
		"refresh_token_expire_in"), &value)) {
	    res->refreshExpiresAt = value;
	}
	res->ok = 1;
	goto done;
    }

    /* RFC 6749 */
    if (cJSON_IsObject(root) && StringMember(root, "error")) {
	const char *desc = StringMember(root, "error_description");

	Excerpt(err, sizeof(err), StringMember(root, "error"));
	Excerpt(msg, sizeof(msg), desc ? desc : "");
	snprintf(info, sizeof(info), "token endpoint error %s (HTTP %ld)%s%s",
		err, status, desc ? ": " : "", msg);
	SetFailure(res, "TOKEN", err, msg, info);
	res->errorWords[2] = TtoStrDup(Advice(err));
	goto done;
    }
    if (status < 200 || status >= 300) {
	snprintf(info, sizeof(info), "token endpoint answered HTTP %ld%s",
		status, root ? "" : " with a body that is not JSON");
	SetFailure(res, "HTTP", statusWord, NULL, info);
	goto done;
    }
    if (!cJSON_IsObject(root)) {
	snprintf(info, sizeof(info), "token endpoint answered HTTP %ld with "
		"a body that is not a JSON object", status);
	SetFailure(res, "JSON", NULL, NULL, info);
	goto done;
    }
    access = StringMember(root, "access_token");
    if (access == NULL || *access == '\0') {
	SetFailure(res, "JSON", NULL, NULL,
		"token response has no access_token");
	goto done;
    }
    res->accessToken = TtoStrDup(access);
    refresh = StringMember(root, "refresh_token");
    res->refreshToken = (refresh && *refresh) ? TtoStrDup(refresh) : NULL;
    tokenType = StringMember(root, "token_type");
    res->tokenType = TtoStrDup(tokenType ? tokenType : "");
    if (TtoJsonWide(cJSON_GetObjectItemCaseSensitive(root, "expires_at"),
	    &value)) {
	res->expiresAt = value;		/* our own saved files */
    } else if (TtoJsonWide(cJSON_GetObjectItemCaseSensitive(root,
	    "expires_in"), &value) && value >= 0 && value < (1LL << 40)) {
	res->expiresAt = (long long) now + value;
    }
    if (TtoJsonWide(cJSON_GetObjectItemCaseSensitive(root,
	    "refresh_expires_at"), &value)) {
	res->refreshExpiresAt = value;
    } else if (TtoJsonWide(cJSON_GetObjectItemCaseSensitive(root,
	    "refresh_token_expires_in"), &value) && value >= 0
	    && value < (1LL << 40)) {
	res->refreshExpiresAt = (long long) now + value;
    } else if (TtoJsonWide(cJSON_GetObjectItemCaseSensitive(root,
	    "refresh_expires_in"), &value) && value >= 0
	    && value < (1LL << 40)) {
	res->refreshExpiresAt = (long long) now + value;
    }
    res->ok = 1;

  done:
    cJSON_Delete(root);
}

void
TtoTokenResultFree(
    TtoTokenResult *res)
{
    char **strings[] = {
	&res->body, &res->accessToken, &res->refreshToken, &res->tokenType,
	&res->errorWords[0], &res->errorWords[1], &res->errorWords[2],
	&res->failureInfo
    };
    size_t i;

    for (i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
	TtoSecretFree(*strings[i]);
	*strings[i] = NULL;
    }
    res->bodyLen = 0;
    res->ok = 0;
}
