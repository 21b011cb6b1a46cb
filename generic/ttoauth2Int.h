/*
 * ttoauth2Int.h --
 *
 *	Internal declarations shared by the files of the ttoauth2 extension.
 *	Nothing here is public: Ttoauth2_Init is the only exported symbol.
 *
 *	Threading rule: a flow worker never touches a Tcl_Obj or an interp of
 *	another thread (it has a bare interp of its own, for its notifier and
 *	Tcl's error reports, and its own channels).  Everything that crosses
 *	threads is a plain C string allocated with ckalloc (Tcl's allocator is
 *	thread-safe) or a fixed-size value, guarded by the flow's Tcl_Mutex.
 */

#ifndef TTOAUTH2INT_H
#define TTOAUTH2INT_H

#include <limits.h>
#include <stddef.h>
#include <time.h>
#include <tcl.h>

#ifndef TCL_THREADS
#   error "ttoauth2 must be compiled with -DTCL_THREADS=1 (its mutexes are no-ops otherwise)"
#endif

#ifndef MODULE_SCOPE
#   define MODULE_SCOPE extern __attribute__((__visibility__("hidden")))
#endif

/*
 * Tcl 8.6 / 9.0 compatibility.  Lengths and argument counts are Tcl_Size:
 * int on Tcl 8.6, ptrdiff_t on Tcl 9.  Commands are made with
 * Tcl_CreateObjCommand2, whose procedures take a Tcl_Size objc; on 8.6
 * that is Tcl_CreateObjCommand, whose procedures take an int.
 */
#ifndef TCL_SIZE_MAX
typedef int Tcl_Size;
#   define TCL_SIZE_MAX INT_MAX
#endif
#if TCL_MAJOR_VERSION < 9
#   ifndef Tcl_CreateObjCommand2
#	define Tcl_CreateObjCommand2 Tcl_CreateObjCommand
#   endif
#endif

#ifndef PACKAGE_VERSION
#   define PACKAGE_VERSION "1.0"
#endif

/* Limits of the loopback listener. */
#define TTO_MAX_REQUEST_HEAD	16384	/* bytes of a request head */
#define TTO_CONN_DEADLINE_MS	5000	/* per connection, from accept */
#define TTO_MAX_CONNECTIONS	64	/* served at once; a new client takes
					 * the slot of the oldest incomplete */

typedef struct TtoNet TtoNet;	/* listening channels + connections */
typedef struct TtoCurl TtoCurl;	/* a reusable libcurl handle */

/*
 * Provider profiles and grants.
 */

typedef enum {
    TTO_PROVIDER_AUTO = 0,
    TTO_PROVIDER_TIKTOKSHOP,
    TTO_PROVIDER_RFC6749
} TtoProvider;

typedef enum {
    TTO_GRANT_CODE = 0,		/* exchange an authorization code */
    TTO_GRANT_REFRESH		/* use a refresh token */
} TtoGrant;

/*
 * An ordered list of name/value pairs (query parameters, extra params).
 * Strings are ckalloc'ed, NUL-terminated, owned by the list.
 */

typedef struct {
    char *name;
    char *value;
} TtoPair;

typedef struct {
    TtoPair *items;
    int count;
    int capacity;
} TtoPairs;

/* ttoauth2Url.c */
MODULE_SCOPE char *	TtoStrDup(const char *s);
MODULE_SCOPE int	TtoAsciiCaseEqual(const char *a, const char *b, size_t n);
MODULE_SCOPE void	TtoCurlSafeBase(void *curl, const char *url,
			    char *errbuf, long timeoutMs, const char *caFile,
			    const char *proxy, const char *userAgent);
MODULE_SCOPE int	TtoGetSubcommand(Tcl_Interp *interp, Tcl_Size objc,
			    Tcl_Obj *const objv[], int at,
			    const char *const *table, const char *what,
			    const char *usage, int *indexPtr);
MODULE_SCOPE int	TtoFail(Tcl_Interp *interp, const char *kind,
			    const char *word, const char *msg);
MODULE_SCOPE void	TtoWipe(void *mem, size_t len);
MODULE_SCOPE void	TtoSecretFree(char *s);
MODULE_SCOPE void	TtoSecretFreeN(char *s, size_t len);
MODULE_SCOPE void	TtoWipeDString(Tcl_DString *dsPtr);
MODULE_SCOPE void	TtoAppendUtf8(Tcl_DString *dsPtr, Tcl_Obj *objPtr);
MODULE_SCOPE int	TtoErrnoError(Tcl_Interp *interp, const char *what,
			    const char *path, int err, const char *kind,
			    const char *word);
MODULE_SCOPE void	TtoPairsAdd(TtoPairs *pairs, const char *name,
			    size_t nameLen, const char *value, size_t valueLen);
MODULE_SCOPE void	TtoPairsSet(TtoPairs *pairs, const char *name,
			    const char *value);
MODULE_SCOPE const char *TtoPairsGet(const TtoPairs *pairs, const char *name);
MODULE_SCOPE void	TtoPairsCopy(TtoPairs *dst, const TtoPairs *src);
MODULE_SCOPE void	TtoPairsFree(TtoPairs *pairs);
MODULE_SCOPE void	TtoUrlEncode(Tcl_DString *dsPtr, const char *s,
			    size_t len);
MODULE_SCOPE void	TtoUrlDecode(Tcl_DString *dsPtr, const char *s,
			    size_t len, int plusIsSpace);
MODULE_SCOPE void	TtoQueryParse(TtoPairs *pairs, const char *query,
			    size_t len);
MODULE_SCOPE void	TtoQueryAppend(Tcl_DString *dsPtr, int *firstPtr,
			    const char *name, const char *value);
MODULE_SCOPE void	TtoBase64Encode(Tcl_DString *dsPtr,
			    const unsigned char *data, size_t len, int urlSafe);
MODULE_SCOPE void	TtoScrub(char *text, const char *const *secrets,
			    int count);

/* ttoauth2Random.c */
MODULE_SCOPE int	TtoRandomToken(Tcl_DString *dsPtr, size_t octets);
MODULE_SCOPE int	TtoPkceChallenge(Tcl_DString *dsPtr,
			    const char *verifier, const char *method);

/* ttoauth2Sign.c: [ttoauth2 tiktokshop sign|verifyWebhook]. */
MODULE_SCOPE int	TtoTiktokshopSubcmd(Tcl_Interp *interp, Tcl_Size objc,
			    Tcl_Obj *const objv[]);

/*
 * ttoauth2Json.c: JSON on cJSON.  The JSON text handed in may contain any
 * bytes; none of these functions crash on malformed input.
 */

#define TTO_JSON_MAX_DEPTH	1000	/* containers nested at most this deep */

typedef struct cJSON cJSON;

typedef struct {
    int index;			/* member to replace, or -1: add one */
    const char *name;		/* name of an added member (plain ASCII) */
    const char *json;		/* the value, as JSON text */
} TtoJsonEdit;

MODULE_SCOPE int	TtoJsonSubcmd(Tcl_Interp *interp, Tcl_Size objc,
			    Tcl_Obj *const objv[]);
MODULE_SCOPE cJSON *	TtoJsonParse(const char *text, size_t len,
			    size_t *offPtr, const char **whyPtr);
MODULE_SCOPE int	TtoJsonHasNul(const cJSON *obj,
			    const char *const *names);
MODULE_SCOPE int	TtoJsonWide(const cJSON *item, long long *valuePtr);
MODULE_SCOPE int	TtoJsonPretty(const char *text, size_t len,
			    int target, const TtoJsonEdit *edits, int nEdits,
			    Tcl_DString *out);

/*
 * The configuration a flow or a refresh runs with: a snapshot of the
 * object's options taken when it starts (TtoConfigNew, ttoauth2.c),
 * never changed afterwards, owned by the flow or refresh and freed once
 * (TtoConfigFree).  Strings are ckalloc'ed and never NULL ("" = unset).
 */

typedef struct {
    TtoProvider provider;	/* resolved: never AUTO */
    char *clientId;
    char *clientSecret;
    char *authorizationEndpoint;
    char *tokenEndpoint;
    char *refreshEndpoint;	/* derived (TtoProviderRefreshEndpoint) */
    char *scope;
    char *resource;
    char *codeChallengeMethod;
    char *caFile;
    char *proxy;
    char *userAgent;
    char *tokenFile;		/* a flow saves here on success */
    char *redirectPath;
    char *allowHtml;
    char *denyHtml;
    TtoPairs authParams;	/* addAuthQueryParam */
    TtoPairs tokenParams;	/* addTokenQueryParam */
    TtoPairs refreshParams;	/* addRefreshQueryParam */
    int useBasicAuth;
    int pkce;			/* a flow sends a PKCE challenge */
    long timeoutMs;
    long authTimeoutMs;		/* 0: no limit */
} TtoConfig;

/*
 * A token request: the configuration and what this grant adds.  The
 * endpoint and extra parameters follow from the grant (the token or the
 * refresh endpoint; addTokenQueryParam or addRefreshQueryParam).
 */

typedef struct {
    const TtoConfig *cfg;
    TtoGrant grant;
    const char *code;		/* TTO_GRANT_CODE */
    const char *redirectUri;	/* TTO_GRANT_CODE, rfc6749 */
    const char *codeVerifier;	/* TTO_GRANT_CODE, may be NULL */
    const char *refreshToken;	/* TTO_GRANT_REFRESH */
    volatile int *cancelPtr;	/* non-zero aborts the transfer, or NULL */
} TtoTokenRequest;

/* The second word of a failed token request's -errorcode (API.md). */
typedef enum {
    TTO_ERR_NONE = 0, TTO_ERR_HTTP, TTO_ERR_TOKEN, TTO_ERR_JSON,
    TTO_ERR_CANCELLED
} TtoErrorKind;

/* A refusal's last -errorcode word: what the script can do (API.md). */
typedef enum {
    TTO_ADVICE_NONE = 0,
    TTO_ADVICE_REAUTHORIZE,	/* the grant is dead */
    TTO_ADVICE_RETRY,		/* try later */
    TTO_ADVICE_REJECTED		/* anything else */
} TtoAdvice;

typedef struct {
    int ok;			/* 1: tokens below are valid */
    long httpStatus;		/* 0 when no response came */
    char *body;			/* response body as received, or NULL */
    size_t bodyLen;
    char *accessToken;
    char *refreshToken;		/* NULL: the response carried none */
    char *tokenType;
    long long expiresAt;	/* Unix seconds, -1 unknown */
    long long refreshExpiresAt;	/* Unix seconds, -1 unknown */
    TtoProvider provider;	/* the profile the answer was read as */
    /* On failure: */
    TtoErrorKind errorKind;
    char *errorWords[2];	/* further words of -errorcode, may be NULL:
				 * HTTP status or libcurl name and message;
				 * TOKEN code and message */
    TtoAdvice advice;		/* TOKEN: the word after them */
    char *failureInfo;		/* human readable, never a secret */
} TtoTokenResult;

/*
 * ttoauth2Provider.c: what differs between the providers, and the token
 * answers' and files' shape.
 */

MODULE_SCOPE const char *TtoErrorKindName(TtoErrorKind kind);
MODULE_SCOPE const char *TtoAdviceName(TtoAdvice advice);
MODULE_SCOPE const char *TtoProviderName(TtoProvider provider);
MODULE_SCOPE TtoProvider TtoProviderResolve(const char *choice,
			    const char *tokenEndpoint,
			    const char *refreshEndpoint);
MODULE_SCOPE int	TtoProviderPkceDefault(TtoProvider provider);
MODULE_SCOPE void	TtoProviderRefreshEndpoint(TtoProvider provider,
			    const char *explicit, const char *token,
			    Tcl_DString *dsPtr);
MODULE_SCOPE const char *TtoProviderFlowCheck(const TtoConfig *cfg,
			    int listenPort, const char **kindPtr,
			    const char **wordPtr);
MODULE_SCOPE void	TtoProviderAuthorizeUrl(const TtoConfig *cfg,
			    const char *redirectUri, const char *state,
			    const char *verifier, Tcl_DString *urlPtr);
MODULE_SCOPE int	TtoProviderTokenWire(const TtoTokenRequest *req,
			    Tcl_DString *urlPtr, Tcl_DString *formPtr,
			    Tcl_DString *basicPtr);
MODULE_SCOPE void	TtoTokenClassify(TtoProvider provider, long status,
			    const char *body, size_t len, time_t now,
			    TtoTokenResult *res);
MODULE_SCOPE void	TtoTokenFail(TtoTokenResult *res, TtoErrorKind kind,
			    const char *word0, const char *word1,
			    const char *info);
MODULE_SCOPE void	TtoTokenResultFree(TtoTokenResult *res);
MODULE_SCOPE void	TtoConfigFree(TtoConfig *cfg);

/*
 * ttoauth2Token.c: token endpoint requests over libcurl, and the pool of
 * libcurl handles they (and API requests) run on.
 */

/* A response body as libcurl delivers it (TtoCurlWriteBody). */
typedef struct {
    Tcl_DString body;
    size_t limit;		/* more is refused */
    int tooLarge;		/* ... and was */
} TtoBodyBuffer;

MODULE_SCOPE size_t	TtoCurlWriteBody(char *data, size_t size,
			    size_t nmemb, void *userdata);
MODULE_SCOPE TtoCurl *	TtoCurlNew(void);
MODULE_SCOPE void	TtoCurlFree(TtoCurl *http);
MODULE_SCOPE void	TtoCurlWake(TtoCurl *http);
MODULE_SCOPE TtoCurl *	TtoCurlAcquire(void);
MODULE_SCOPE void	TtoCurlRelease(TtoCurl *http);
MODULE_SCOPE void	TtoCurlPoolFree(void);
MODULE_SCOPE void	TtoTokenRequestRun(TtoCurl *http,
			    const TtoTokenRequest *req, TtoTokenResult *res);
MODULE_SCOPE const char *TtoCurlVersion(void);
MODULE_SCOPE void *	TtoCurlEasy(TtoCurl *http);
MODULE_SCOPE int	TtoCurlPerform(TtoCurl *http,
			    volatile int *cancelPtr);
MODULE_SCOPE const char *TtoCurlErrorName(int code);
MODULE_SCOPE const char *TtoTlsBackend(void);

/*
 * A token request made asynchronously (ttoauth2Async.c): the request's
 * strings are copied, so the caller's may change or go meanwhile.
 * TtoTokenXferNew prepares a libcurl easy handle (TtoTokenXferEasy) for
 * the engine; TtoTokenXferFinish classifies the answer (plain C, any
 * thread) once the engine reports the transfer's CURLcode.
 */

typedef struct TtoTokenXfer TtoTokenXfer;

MODULE_SCOPE TtoTokenXfer *TtoTokenXferNew(const TtoTokenRequest *req);
MODULE_SCOPE void *	TtoTokenXferEasy(TtoTokenXfer *xfer);
MODULE_SCOPE void	TtoTokenXferFinish(TtoTokenXfer *xfer, int curlCode,
			    TtoTokenResult *res);
MODULE_SCOPE void	TtoTokenXferFree(TtoTokenXfer *xfer);

/*
 * ttoauth2Async.c: the asynchronous engine (one process-wide worker
 * thread driving one libcurl multi handle).  A job is a prepared libcurl
 * easy handle (the caller's; the engine never frees it) and three procs:
 *
 *   finishProc(data, curlCode)  in the worker thread when the transfer
 *                               ends: plain C only (no Tcl_Obj, no interp)
 *   doneProc(data)              afterwards, in the submitting thread,
 *                               from its event loop
 *   freeProc(data)              instead of both, when the job was
 *                               cancelled; in the worker thread or the
 *                               submitting thread: plain C only
 *
 * Exactly one of doneProc and freeProc is called for every submitted
 * job.  TtoAsyncCancel (submitting thread only): after it returns,
 * finishProc and doneProc are never called for the job; freeProc has
 * run or runs soon in the worker.  TtoAsyncStop joins the worker (every
 * job must have ended or been cancelled).
 */

typedef struct TtoAsyncJob TtoAsyncJob;
typedef void (TtoAsyncFinishProc)(void *data, int curlCode);
typedef void (TtoAsyncProc)(void *data);

MODULE_SCOPE TtoAsyncJob *TtoAsyncSubmit(void *easy,
			    TtoAsyncFinishProc *finishProc,
			    TtoAsyncProc *doneProc, TtoAsyncProc *freeProc,
			    void *data);
MODULE_SCOPE void	TtoAsyncCancel(TtoAsyncJob *job);
MODULE_SCOPE void	TtoAsyncStop(void);

/*
 * ttoauth2.c: the one decision piece (TOKENS.md section 2).  obj is the
 * clientData of an object command (ttoauth2 new).
 *
 *   TTO_OBTAIN_VALID    validAccessToken: the token if it stays valid for
 *                       `within` more seconds, else the store's (same
 *                       grant, valid), else a refresh
 *   TTO_OBTAIN_REFRESH  refresh: a new token, or the one another process
 *                       stored after spending our refresh token
 *
 * With doneProc NULL: synchronous; TCL_OK with the access token as the
 * interp's result, or TCL_ERROR with the error (the object unchanged).
 * With doneProc: returns at once, TCL_OK (started) or TCL_ERROR (could
 * not start: BUSY, STATE...); later doneProc(clientData, interp, code)
 * runs from the event loop with the interp's result and return options
 * as the synchronous call would have left them.  If the object is
 * destroyed first, doneProc(clientData, NULL, TCL_ERROR) is called at
 * once from the destroy so the caller can free clientData (it must not
 * run scripts then).
 */

typedef struct TtoObject TtoObject;
typedef enum {
    TTO_OBTAIN_VALID = 0,
    TTO_OBTAIN_REFRESH
} TtoObtainMode;
typedef void (TtoObtainDoneProc)(void *clientData, Tcl_Interp *interp,
			    int code);

MODULE_SCOPE int	TtoTokenObtain(Tcl_Interp *interp, TtoObject *obj,
			    TtoObtainMode mode, long long within,
			    TtoObtainDoneProc *doneProc, void *clientData);

/*
 * ttoauth2.c: what the request method (ttoauth2Request.c) needs of an
 * object.  The strings point into the object's option values: valid until
 * the object's tokens or options next change (fetch again after a refresh).
 */


typedef struct {
    TtoProvider provider;	/* resolved: never AUTO */
    const char *clientId;
    const char *clientSecret;
    const char *accessToken;
    const char *refreshToken;
    long long expiresAt;	/* -1 unknown */
    const char *apiBaseUrl;
    const char *shopCipher;
    const char *caFile;
    const char *proxy;
    const char *userAgent;
    long timeoutMs;
} TtoApiConfig;

MODULE_SCOPE void	TtoObjectApiConfig(TtoObject *obj, TtoApiConfig *cfg);
MODULE_SCOPE int	TtoObjectRefresh(Tcl_Interp *interp, TtoObject *obj);
MODULE_SCOPE TtoCurl *	TtoThreadCurl(void);

/* ttoauth2Provider.c: the provider's part of an API request. */
MODULE_SCOPE int	TtoTiktokshopSign(const char *secret,
			    size_t secretLen, const char *path,
			    size_t pathLen, const TtoPairs *params,
			    const char *body, size_t bodyLen, char out[65]);
MODULE_SCOPE int	TtoTiktokshopWebhookMac(const char *appKey,
			    size_t appKeyLen, const char *secret,
			    size_t secretLen, const char *body,
			    size_t bodyLen, unsigned char mac[32]);
MODULE_SCOPE const char *TtoProviderApiCheck(const TtoApiConfig *cfg);
MODULE_SCOPE int	TtoProviderApiSign(const TtoApiConfig *cfg,
			    const char *path, size_t pathLen,
			    TtoPairs *params, const char *body,
			    size_t bodyLen, char sign[65]);
MODULE_SCOPE const char *TtoProviderApiHeader(TtoProvider provider,
			    const char **prefixPtr);
MODULE_SCOPE int	TtoProviderApiJsonBody(TtoProvider provider);
MODULE_SCOPE int	TtoProviderApiCode(TtoProvider provider,
			    const char *body, size_t len, long long *codePtr,
			    const char **messagePtr, cJSON **rootPtr);
MODULE_SCOPE int	TtoProviderApiExpired(TtoProvider provider,
			    long status, const char *wwwAuthenticate,
			    long long code);

/*
 * ttoauth2Request.c.  A prepared API request and its answer are plain C
 * (no Tcl_Obj), so that the async engine can run them: TtoApiSetup puts
 * the request on any libcurl easy handle (passed as void *), the engine
 * performs it, TtoApiFinish reads the outcome back and clears the handle.
 */

typedef struct TtoApiRequest TtoApiRequest;
typedef struct TtoApiAnswer TtoApiAnswer;

MODULE_SCOPE int	TtoRequestMethod(Tcl_Interp *interp, TtoObject *obj,
			    Tcl_Size objc, Tcl_Obj *const objv[]);
MODULE_SCOPE void	TtoRequestObjectGone(TtoObject *obj);
MODULE_SCOPE Tcl_Obj *	TtoErrorDict(Tcl_Obj *errorCode, Tcl_Obj *message);
MODULE_SCOPE void	TtoApiRequestFree(TtoApiRequest *req);
MODULE_SCOPE TtoApiAnswer *TtoApiAnswerNew(void);
MODULE_SCOPE void	TtoApiAnswerFree(TtoApiAnswer *ans);
MODULE_SCOPE void	TtoApiSetup(void *curl, TtoApiRequest *req,
			    TtoApiAnswer *ans);
MODULE_SCOPE int	TtoApiFinish(void *curl, int curlCode,
			    TtoApiRequest *req, TtoApiAnswer *ans,
			    const char **namePtr, char **infoPtr);

/*
 * ttoauth2Http.c: the redirect listener's HTTP side (parsing a request
 * head and building replies), independent of sockets.
 */

typedef struct {
    char method[16];
    char *path;			/* decoded path, no query */
    TtoPairs query;		/* decoded query parameters */
    int complete;		/* 1: a whole head was parsed */
} TtoHeadRequest;

typedef enum {
    TTO_HEAD_INCOMPLETE = 0,	/* need more bytes */
    TTO_HEAD_OK,		/* parsed */
    TTO_HEAD_BAD		/* not HTTP we accept */
} TtoHeadStatus;

MODULE_SCOPE TtoHeadStatus TtoHeadParse(const char *buf, size_t len,
			    TtoHeadRequest *req);
MODULE_SCOPE void	TtoHeadRequestFree(TtoHeadRequest *req);
MODULE_SCOPE void	TtoHttpReply(Tcl_DString *dsPtr, int status,
			    const char *reason, const char *html);

/*
 * ttoauth2Store.c: token files.  Plain C (the flow thread saves too).
 */

typedef struct {
    TtoProvider provider;	/* the shape to write */
    const char *body;		/* last token response, or NULL */
    size_t bodyLen;
    const char *accessToken;
    const char *refreshToken;
    const char *tokenType;
    long long expiresAt;	/* -1 unknown */
    long long refreshExpiresAt;
    /* The grant stamp ("ttoauth2" member); NULL or "": not written. */
    const char *stampClientId;
    const char *stampEndpoint;
} TtoTokenSnapshot;

MODULE_SCOPE char *	TtoStoreFormat(const TtoTokenSnapshot *snap);
MODULE_SCOPE int	TtoStoreSave(const char *path,
			    const TtoTokenSnapshot *snap, int lock,
			    int *errnoPtr);
MODULE_SCOPE int	TtoStoreParse(const char *text, size_t len,
			    time_t receivedAt, TtoProvider *providerPtr,
			    TtoTokenResult *res);

/*
 * ttoauth2Flow.c: one authorization-code flow, run by a background
 * worker thread (kept for the next flow).  The Tcl thread fills the
 * configuration, binds, starts; then only reads the state (under the
 * mutex) until the flow has ended (TTO_AUTH_SUCCEEDED or after), when
 * the outcome is read without locking: the worker writes it before it
 * publishes the final state and never again.  The flow is private to
 * ttoauth2Flow.c.
 */

typedef struct TtoFlow TtoFlow;

/* A flow's state: authFlowState's numbers (API.md, as Chilkat's). */
typedef enum {
    TTO_AUTH_IDLE = 0,		/* no flow started */
    TTO_AUTH_WAITING = 1,	/* for the browser's redirect */
    TTO_AUTH_EXCHANGING = 2,	/* redirect received; token request */
    TTO_AUTH_SUCCEEDED = 3,	/* tokens obtained */
    TTO_AUTH_DENIED = 4,	/* the redirect carried an error */
    TTO_AUTH_FAILED = 5		/* cancelled, timed out, refused... */
} TtoAuthState;

/* What an ended flow leaves for the object (TtoFlowOutcomeGet). */
typedef struct {
    TtoProvider provider;	/* the profile the flow ran */
    TtoPairs redirectParams;
    TtoTokenResult result;	/* the token request's */
    char *response;		/* accessTokenResponse text, or NULL */
    char *failureInfo;		/* or NULL */
    char *saveError;		/* the -tokenfile save failed: why */
} TtoFlowOutcome;

MODULE_SCOPE TtoFlow *	TtoFlowNew(TtoConfig *cfg, const char *state,
			    const char *verifier,
			    void (*doneProc)(void *clientData), void *doneData);
MODULE_SCOPE int	TtoFlowBind(TtoFlow *flow, const char *host,
			    int families, int portFrom, int portTo,
			    int *errnoPtr);
MODULE_SCOPE const char *TtoFlowAuthorizeUrl(TtoFlow *flow,
			    Tcl_DString *urlPtr);
MODULE_SCOPE int	TtoFlowStarted(TtoFlow *flow);
MODULE_SCOPE const char *TtoFlowStateParam(TtoFlow *flow);
MODULE_SCOPE TtoAuthState TtoFlowState(TtoFlow *flow);
MODULE_SCOPE const TtoFlowOutcome *TtoFlowOutcomeGet(TtoFlow *flow);
MODULE_SCOPE TtoAuthState TtoFlowWait(TtoFlow *flow, long long ms);
MODULE_SCOPE void	TtoFlowCancel(TtoFlow *flow);
MODULE_SCOPE int	TtoFlowPaste(TtoFlow *flow, const TtoPairs *params);
MODULE_SCOPE void	TtoFlowFree(TtoFlow *flow);
MODULE_SCOPE void	TtoFlowExitAll(void);
MODULE_SCOPE void	TtoFlowWorkersStop(void);

/*
 * ttoauth2Listen.c: the loopback redirect listener on Tcl's channel layer.
 * Every TtoNet function but TtoNetWake runs in the worker thread that
 * opened the net; the cancel-flag accessors in any thread.
 */

typedef enum {
    TTO_CONN_REPLY = 0,		/* send *replyPtr, close, keep serving */
    TTO_CONN_HOLD		/* this is the redirect: keep it, stop */
} TtoConnAction;

typedef TtoConnAction (TtoRequestProc)(void *clientData,
			    const TtoHeadRequest *req, Tcl_DString *replyPtr);

/* TtoNetOpen families */
#define TTO_NET_V4	1	/* 127.0.0.1 */
#define TTO_NET_V6	2	/* ::1 */

/* TtoNetServe results */
#define TTO_SERVE_HELD		0	/* a connection was held */
#define TTO_SERVE_TIMEOUT	1	/* deadline passed */
#define TTO_SERVE_CANCELLED	2	/* *cancelPtr became non-zero */

MODULE_SCOPE int	TtoCancelRequested(volatile int *flagPtr);
MODULE_SCOPE void	TtoCancelSet(volatile int *flagPtr);
MODULE_SCOPE int	TtoCancelSwap(volatile int *flagPtr, int from, int to);
MODULE_SCOPE int	TtoNetOpen(Tcl_Interp *interp, int families,
			    int portFrom, int portTo, volatile int *cancelPtr,
			    TtoNet **netPtr, int *portPtr, int *errnoPtr);
MODULE_SCOPE void	TtoNetWake(TtoNet *net);
MODULE_SCOPE int	TtoNetServe(TtoNet *net, long long deadlineMs,
			    TtoRequestProc *proc, void *clientData);
MODULE_SCOPE int	TtoNetSendHeld(TtoNet *net, const char *data,
			    size_t len, long timeoutMs);
MODULE_SCOPE void	TtoNetFinishHeld(TtoNet *net);
MODULE_SCOPE void	TtoNetCloseListeners(TtoNet *net);
MODULE_SCOPE void	TtoNetSettle(TtoNet *net);
MODULE_SCOPE void	TtoNetClose(TtoNet *net);

/*
 * Platform layer (unix/ttoauth2UnixSys.c, win/ttoauth2WinSys.c).
 */

MODULE_SCOPE long long	TtoNowMs(void);
MODULE_SCOPE int	TtoOsRandom(unsigned char *buf, size_t len);
MODULE_SCOPE void	TtoThreadExit(void);
MODULE_SCOPE int	TtoSha256(const void *data, size_t len,
			    unsigned char out[32]);
MODULE_SCOPE int	TtoHmacSha256(const void *key, size_t keyLen,
			    const void *data, size_t len,
			    unsigned char out[32]);
MODULE_SCOPE int	TtoFileWriteAtomic(const char *path, const char *data,
			    size_t len, int *errnoPtr);
MODULE_SCOPE int	TtoFileRead(const char *path, char **dataPtr,
			    size_t *lenPtr, int *errnoPtr);
MODULE_SCOPE int	TtoFileLock(const char *path, void **lockPtr,
			    int *errnoPtr);
MODULE_SCOPE int	TtoFileTryLock(const char *path, void **lockPtr,
			    int *errnoPtr);
MODULE_SCOPE void	TtoFileUnlock(void *lock);
MODULE_SCOPE int	TtoFileCmdInit(Tcl_Interp *interp);
MODULE_SCOPE int	TtoPlatformInit(Tcl_Interp *interp);

#endif /* TTOAUTH2INT_H */
