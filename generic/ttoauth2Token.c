/*
 * ttoauth2Token.c --
 *
 *	Requests to the token endpoint (code exchange and refresh) over
 *	libcurl, synchronous (TtoTokenRequestRun) or for the async engine
 *	(TtoTokenXfer*), and the pool of libcurl handles they and the API
 *	requests run on (TtoCurl*).  What goes on the wire and what an
 *	answer means is the provider's (ttoauth2Provider.c).
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


/*
 *----------------------------------------------------------------------
 *
 * TtoCurlNew, TtoCurlFree --
 *
 *	A libcurl easy handle kept between requests, so that refreshes of
 *	one object reuse the connection to the token endpoint; its multi
 *	handle makes a transfer wakeable (TtoCurlWake).
 *
 * Results:
 *	TtoCurlNew: the handle, or NULL when libcurl cannot make one.
 *
 * Side effects:
 *	Initializes libcurl on first use; allocates or frees.
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

/*
 *----------------------------------------------------------------------
 *
 * TtoCurlAcquire, TtoCurlRelease, TtoCurlPoolFree --
 *
 *	A handle from the pool (or a new one), a handle back to it (freed
 *	when the pool is full), and the pool emptied (the last object went).
 *
 * Results:
 *	TtoCurlAcquire: the handle, or NULL when libcurl cannot make one.
 *
 * Side effects:
 *	Takes, keeps or frees handles.
 *
 *----------------------------------------------------------------------
 */

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
 * Results:
 *	None.
 *
 * Side effects:
 *	Wakes the handle's multi poll.
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

/*
 *----------------------------------------------------------------------
 *
 * TtoCurlVersion, TtoTlsBackend --
 *
 *	libcurl's version and its TLS library (for ttoauth2 version).
 *
 * Results:
 *	Static strings.
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

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

/*
 *----------------------------------------------------------------------
 *
 * TtoCurlWriteBody --
 *
 *	libcurl's write callback for every request: collects the body in a
 *	TtoBodyBuffer, up to its limit.
 *
 * Results:
 *	The bytes taken; 0 (libcurl fails the transfer) past the limit.
 *
 * Side effects:
 *	Grows the buffer; sets its tooLarge flag past the limit.
 *
 *----------------------------------------------------------------------
 */

size_t
TtoCurlWriteBody(
    char *data,
    size_t size,
    size_t nmemb,
    void *userdata)
{
    TtoBodyBuffer *buf = userdata;
    size_t len = size * nmemb;

    if ((size_t) Tcl_DStringLength(&buf->body) + len > buf->limit) {
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
    TtoBodyBuffer buf;
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

    const TtoConfig *cfg = req->cfg;
    int post;

    Tcl_DStringInit(&x->url);
    Tcl_DStringInit(&x->form);
    Tcl_DStringInit(&x->basic);
    Tcl_DStringInit(&x->buf.body);
    x->buf.tooLarge = 0;
    x->buf.limit = TTO_MAX_BODY;
    x->errbuf[0] = '\0';
    x->headers = NULL;
    x->cancelPtr = req->cancelPtr;
    x->secrets[0] = TtoStrDup(cfg->clientSecret);
    x->secrets[1] = TtoStrDup(req->code);
    x->secrets[2] = TtoStrDup(req->refreshToken);
    x->secrets[3] = TtoStrDup(req->codeVerifier);

    post = TtoProviderTokenWire(req, &x->url, &x->form, &x->basic);
    x->provider = cfg->provider;

    TtoCurlSafeBase(curl, Tcl_DStringValue(&x->url), x->errbuf,
	    cfg->timeoutMs, cfg->caFile, cfg->proxy, cfg->userAgent);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, TtoCurlWriteBody);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &x->buf);
    if (req->cancelPtr) {
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, Progress);
	curl_easy_setopt(curl, CURLOPT_XFERINFODATA, (void *) req->cancelPtr);
    }
    x->headers = curl_slist_append(x->headers, "Accept: application/json");
    if (Tcl_DStringLength(&x->basic) > 0) {
	x->headers = curl_slist_append(x->headers,
		Tcl_DStringValue(&x->basic));
    }
    if (post) {
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
	    TtoTokenFail(res, TTO_ERR_CANCELLED, NULL, NULL,
		    "cancelled during the token request");
	} else if (x->buf.tooLarge) {
	    TtoTokenFail(res, TTO_ERR_HTTP, "TOO_LARGE", NULL,
		    "token endpoint sent more than 1 MiB; not a token response");
	} else {
	    snprintf(info, sizeof(info), "token request failed: %s%s%s",
		    curl_easy_strerror(rc), x->errbuf[0] ? ": " : "",
		    x->errbuf);
	    TtoTokenFail(res, TTO_ERR_HTTP, name, curl_easy_strerror(rc), info);
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
 *----------------------------------------------------------------------
 *
 * TtoCurlSafeBase --
 *
 *	Resets a libcurl handle and sets what every request of ttoauth2
 *	has: the URL, HTTP(S) only, no signals, no redirects followed, TLS
 *	peer and host verification on, the error buffer, and the object's
 *	-timeout (0: none), -cafile, -proxy and -useragent ("": libcurl's
 *	default, ttoauth2's user agent); every encoding libcurl decodes
 *	is offered.
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
    char *errbuf,
    long timeoutMs,
    const char *caFile,
    const char *proxy,
    const char *userAgent)
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
    if (timeoutMs > 0) {
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeoutMs);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, timeoutMs);
    }
    if (caFile && *caFile) {
	curl_easy_setopt(curl, CURLOPT_CAINFO, caFile);
    }
    if (proxy && *proxy) {
	curl_easy_setopt(curl, CURLOPT_PROXY, proxy);
    }
    curl_easy_setopt(curl, CURLOPT_USERAGENT, (userAgent && *userAgent)
	    ? userAgent : "ttoauth2/" PACKAGE_VERSION);
    curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
}
