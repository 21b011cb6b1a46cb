/*
 * ttoauth2Flow.c --
 *
 *	One authorization-code flow: the background thread that serves the
 *	loopback port until the browser's redirect arrives, checks it, runs
 *	the token exchange, answers the browser, closes the port and records
 *	the outcome as a flow state (TtoAuthState: 0..5, as Chilkat's
 *	AuthFlowState).
 *
 *	Ownership: the Tcl thread creates the flow with a configuration
 *	snapshot (TtoConfig, the flow's to free); TtoFlowBind hands it to a
 *	worker thread, which opens the listener (channels belong to the
 *	thread that opens them), reports the port and serves.  From then on
 *	the worker alone writes the results; the Tcl thread reads only the
 *	state (under the mutex) until the final state, and the results
 *	after.  The one way to end a flow early is TtoFlowCancel, which sets
 *	the cancel flag, wakes whatever the worker waits on (its event loop
 *	or libcurl), and waits for the final state.
 *
 *	Every live flow is on a process-wide list so that an exit of the
 *	process can stop all threads before Tcl finalizes its allocator.
 */

#include "ttoauth2Int.h"
#include <errno.h>
#include <string.h>
#include <stdio.h>
#include <cjson/cJSON.h>

struct TtoFlow {
    /* Configuration: written by the Tcl thread before TtoFlowBind. */
    TtoConfig *cfg;		/* the object's, when startAuth ran */
    char *stateParam;
    char *verifier;		/* PKCE verifier, NULL without PKCE */
    char *redirectUri;		/* the worker's, once bound */
    const char *host;		/* TtoFlowBind's arguments, for the worker */
    int families;
    int portFrom;
    int portTo;
    int port;			/* bound port */
    Tcl_ThreadId owner;		/* the thread of the object's interp */
    void (*doneProc)(void *clientData);	/* run in owner via its queue */
    void *doneData;

    /* Shared: guarded by mutex. */
    Tcl_Mutex mutex;
    Tcl_Condition cond;
    TtoAuthState state;
    int threadDone;		/* the worker will touch nothing more */
    int orphan;			/* owner gone: the worker frees the flow */
    volatile int cancel;	/* TtoCancelSet / TtoCancelRequested */
    int bindDone;		/* the worker has tried to bind */
    int bindErrno;		/* ... and failed for this reason, or 0 */
    TtoNet *net;		/* NULL once closed */
    TtoCurl *http;		/* NULL once handed back to the pool */
    int pasted;			/* TtoFlowPaste handed the redirect over */
    TtoPairs pastedParams;	/* ... with these parameters */

    /* Tcl thread only. */
    int started;		/* bound and serving (TtoFlowBind) */

    /* Results: written by the worker before the final state is set. */
    TtoFlowOutcome out;
    int rejectedPath;		/* requests rejected, by reason (worker) */
    int rejectedMethod;
    int rejectedState;
    int rejectedNoCode;
};

typedef struct FlowEvent {
    Tcl_Event header;
    TtoFlow *flow;
} FlowEvent;

typedef struct FlowLink {
    TtoFlow *flow;
    struct FlowLink *next;
} FlowLink;

static int FlowEventProc(Tcl_Event *evPtr, int flags);
static void Unlist(TtoFlow *flow);

/*
 * What RequestCancel stops: a flow that has not ended yet, also one that
 * has ended but is still closing the browser's connection gracefully, or
 * only such a flow whose object is gone.
 */

#define CANCEL_RUNNING	0
#define CANCEL_ANY	1
#define CANCEL_ORPHAN	2

TCL_DECLARE_MUTEX(flowListMutex)
static FlowLink *flowList = NULL;

static void
FreeString(
    char **sPtr)
{
    TtoSecretFree(*sPtr);
    *sPtr = NULL;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoFlowNew --
 *
 *	A new flow for the configuration cfg (taken: the flow frees it),
 *	with its state parameter and PKCE verifier (NULL: none).  doneProc
 *	runs in this thread's event loop when the flow ends.
 *
 * Results:
 *	The flow, not yet bound (TtoFlowBind) nor started.
 *
 * Side effects:
 *	Allocates memory.
 *
 *----------------------------------------------------------------------
 */

TtoFlow *
TtoFlowNew(
    TtoConfig *cfg,
    const char *state,
    const char *verifier,
    void (*doneProc)(void *clientData),
    void *doneData)
{
    TtoFlow *flow = ckalloc(sizeof(TtoFlow));

    memset(flow, 0, sizeof(TtoFlow));
    flow->cfg = cfg;
    flow->stateParam = TtoStrDup(state);
    flow->verifier = TtoStrDup(verifier);
    flow->doneProc = doneProc;
    flow->doneData = doneData;
    flow->out.provider = cfg->provider;
    flow->out.result.expiresAt = flow->out.result.refreshExpiresAt = -1;
    flow->owner = Tcl_GetCurrentThread();

    /*
     * Tcl creates a mutex on its first lock, with an unlocked check
     * first; doing that here, before the flow thread exists, keeps that
     * check from racing with the thread's first lock.
     */
    Tcl_MutexLock(&flow->mutex);
    Tcl_MutexUnlock(&flow->mutex);
    return flow;
}

/*
 *----------------------------------------------------------------------
 *
 * RedirectRequest --
 *
 *	Called by the listener for every complete request head.  Only a GET
 *	for the redirect path that carries this flow's state and a code or
 *	an error is the redirect; everything else gets a small error page
 *	and the flow keeps waiting, so a scanner, a favicon fetch or a
 *	forged redirect can neither end nor hijack the flow.
 *
 *----------------------------------------------------------------------
 */

static TtoConnAction
RedirectRequest(
    void *clientData,
    const TtoHeadRequest *req,
    Tcl_DString *replyPtr)
{
    TtoFlow *flow = clientData;
    const char *state, *code, *error;

    if (strcmp(req->path, flow->cfg->redirectPath) != 0) {
	flow->rejectedPath++;
	TtoHttpReply(replyPtr, 404, "Not Found",
		"<!doctype html><title>Not found</title><p>Not found.</p>");
	return TTO_CONN_REPLY;
    }
    if (strcmp(req->method, "GET") != 0) {
	flow->rejectedMethod++;
	TtoHttpReply(replyPtr, 405, "Method Not Allowed",
		"<!doctype html><title>Not allowed</title>"
		"<p>Only GET is accepted here.</p>");
	return TTO_CONN_REPLY;
    }
    state = TtoPairsGet(&req->query, "state");
    code = TtoPairsGet(&req->query, "code");
    error = TtoPairsGet(&req->query, "error");
    if (state == NULL || strcmp(state, flow->stateParam) != 0
	    || (code == NULL && error == NULL)) {
	if (state == NULL || strcmp(state, flow->stateParam) != 0) {
	    flow->rejectedState++;
	} else {
	    flow->rejectedNoCode++;
	}
	TtoHttpReply(replyPtr, 400, "Bad Request",
		"<!doctype html><title>Bad request</title><p>This is not the "
		"authorization response this application is waiting for.</p>");
	return TTO_CONN_REPLY;
    }
    Tcl_MutexLock(&flow->mutex);
    if (flow->pasted) {
	/* completeAuth got there first: that redirect is the one. */
	Tcl_MutexUnlock(&flow->mutex);
	TtoHttpReply(replyPtr, 409, "Conflict",
		"<!doctype html><title>Already done</title><p>This "
		"authorization was completed already.</p>");
	return TTO_CONN_REPLY;
    }
    TtoPairsCopy(&flow->out.redirectParams, &req->query);
    flow->state = TTO_AUTH_EXCHANGING;
    Tcl_ConditionNotify(&flow->cond);
    Tcl_MutexUnlock(&flow->mutex);
    return TTO_CONN_HOLD;
}

/*
 * The redirect's parameters as a JSON object: what accessTokenResponse
 * holds after a denial.  The code (there is none on a denial, or the
 * string "null" from TikTok) is left out all the same.
 */

static char *
ParamsJson(
    const TtoPairs *params)
{
    cJSON *obj = cJSON_CreateObject();
    char *text, *copy;
    int i;

    for (i = 0; obj && i < params->count; i++) {
	if (strcmp(params->items[i].name, "code") == 0
		&& strcmp(params->items[i].value, "null") != 0) {
	    continue;
	}
	if (cJSON_GetObjectItemCaseSensitive(obj, params->items[i].name)) {
	    continue;
	}
	cJSON_AddStringToObject(obj, params->items[i].name,
		params->items[i].value);
    }
    text = obj ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    copy = TtoStrDup(text ? text : "{}");
    if (text) {
	cJSON_free(text);
    }
    return copy;
}

/*
 *----------------------------------------------------------------------
 *
 * ExchangeCode --
 *
 *	The token exchange of a received redirect.
 *
 * Results:
 *	The final state: TTO_AUTH_SUCCEEDED or TTO_AUTH_FAILED.
 *
 *----------------------------------------------------------------------
 */

static int
ExchangeCode(
    TtoFlow *flow,
    const char *code)
{
    TtoTokenRequest req;
    TtoTokenSnapshot snap;
    int err = 0;
    char why[300];

    memset(&req, 0, sizeof(req));
    req.cfg = flow->cfg;
    req.grant = TTO_GRANT_CODE;
    req.code = code;
    req.redirectUri = flow->redirectUri;
    req.codeVerifier = flow->verifier;
    req.cancelPtr = &flow->cancel;

    TtoTokenRequestRun(flow->http, &req, &flow->out.result);
    if (flow->out.result.body) {
	flow->out.response = TtoStrDup(flow->out.result.body);
    }
    if (!flow->out.result.ok) {
	flow->out.failureInfo = TtoStrDup(flow->out.result.failureInfo
		? flow->out.result.failureInfo : "token request failed");
	return TTO_AUTH_FAILED;
    }
    if (*flow->cfg->tokenFile) {
	memset(&snap, 0, sizeof(snap));
	snap.provider = flow->cfg->provider;
	snap.body = flow->out.result.body;
	snap.bodyLen = flow->out.result.bodyLen;
	snap.accessToken = flow->out.result.accessToken;
	snap.refreshToken = flow->out.result.refreshToken;
	snap.tokenType = flow->out.result.tokenType;
	snap.expiresAt = flow->out.result.expiresAt;
	snap.refreshExpiresAt = flow->out.result.refreshExpiresAt;
	snap.stampClientId = flow->cfg->clientId;
	snap.stampEndpoint = flow->cfg->tokenEndpoint;
	if (TtoStoreSave(flow->cfg->tokenFile, &snap, 1, &err) != 0) {
	    snprintf(why, sizeof(why), "%s", Tcl_ErrnoMsg(err));
	    flow->out.saveError = TtoStrDup(why);
	}
    }
    return TTO_AUTH_SUCCEEDED;
}

/*
 *----------------------------------------------------------------------
 *
 * RunFlow --
 *
 *	One flow, run by a worker: serve the port until the redirect, do
 *	the exchange, answer the browser, then publish the final state.
 *	Publishing comes as early as it safely can, since a script (or a
 *	-command callback) waits for it: the results are complete, the
 *	libcurl handle is back in the pool, the port is closed and the
 *	page is handed to the kernel.  Only the graceful close of the
 *	browser's connection comes after, while the script goes on.
 *
 *----------------------------------------------------------------------
 */

static void FreeFlow(TtoFlow *flow);

/*
 * Appends text from the redirect (anyone's input) to failureInfo: at
 * most 200 bytes, cut before a UTF-8 character, control characters as
 * spaces.
 */

static void
AppendShort(
    Tcl_DString *dsPtr,
    const char *text)
{
    size_t i, n = strlen(text);

    if (n > 200) {
	n = 200;
	while (n > 0 && (text[n] & 0xC0) == 0x80) {
	    n--;
	}
    }
    for (i = 0; i < n; i++) {
	unsigned char c = (unsigned char) text[i];
	char ch = (c < 0x20 || c == 0x7f) ? ' ' : text[i];

	Tcl_DStringAppend(dsPtr, &ch, 1);
    }
    if (n < strlen(text)) {
	Tcl_DStringAppend(dsPtr, "...", 3);
    }
}

/* RunFlow's outcome for a redirect handed over by TtoFlowPaste. */
#define SERVE_PASTED	100

/*
 * What failureInfo says after a timeout: the requests that came and were
 * rejected, by reason, so that a redirect with a wrong state or to a
 * wrong path does not look like no redirect at all.
 */

static char *
RejectedInfo(
    TtoFlow *flow,
    const char *head)
{
    Tcl_DString ds;
    char buf[120];
    const char *sep = ": ";
    int total = flow->rejectedPath + flow->rejectedMethod
	    + flow->rejectedState + flow->rejectedNoCode;
    char *text;

    Tcl_DStringInit(&ds);
    Tcl_DStringAppend(&ds, head, -1);
    if (total == 0) {
	Tcl_DStringAppend(&ds, "; no request reached the redirect URI", -1);
    } else {
	snprintf(buf, sizeof(buf), "; %d request%s rejected", total,
		total == 1 ? " was" : "s were");
	Tcl_DStringAppend(&ds, buf, -1);
#define REASON(n, what) \
	if ((n) > 0) {							\
	    snprintf(buf, sizeof(buf), "%s%d %s", sep, (n), (what));	\
	    Tcl_DStringAppend(&ds, buf, -1);				\
	    sep = ", ";							\
	}
	REASON(flow->rejectedState, "with a missing or wrong state")
	REASON(flow->rejectedNoCode, "with neither code nor error")
	REASON(flow->rejectedPath, "for a wrong path")
	REASON(flow->rejectedMethod, "not a GET")
#undef REASON
    }
    text = TtoStrDup(Tcl_DStringValue(&ds));
    Tcl_DStringFree(&ds);
    return text;
}

static void
RunFlow(
    TtoFlow *flow)
{
    long long deadline = 0;
    int served, orphan, pasted;
    TtoAuthState final = TTO_AUTH_FAILED;
    const char *page = NULL;
    Tcl_DString reply;
    FlowEvent *event;
    TtoCurl *http;
    TtoNet *net;
    char info[200];

    if (flow->cfg->authTimeoutMs > 0) {
	deadline = TtoNowMs() + flow->cfg->authTimeoutMs;
    }
    served = TtoNetServe(flow->net, deadline, RedirectRequest, flow);

    /*
     * Nothing more is served: close the port and every other client
     * before the token exchange, so that nothing new can reach it.
     */

    TtoNetCloseListeners(flow->net);

    /*
     * A redirect handed over by completeAuth or exchangeCodeForToken
     * (TtoFlowPaste) wins over whatever else ended the wait, except a
     * real cancel, which the exchange then sees.
     */

    Tcl_MutexLock(&flow->mutex);
    pasted = flow->pasted;
    Tcl_MutexUnlock(&flow->mutex);
    if (pasted) {
	TtoCancelSwap(&flow->cancel, 2, 0);
	TtoPairsFree(&flow->out.redirectParams);
	TtoPairsCopy(&flow->out.redirectParams, &flow->pastedParams);
	served = SERVE_PASTED;
    }
    switch (served) {
    case SERVE_PASTED:
    case TTO_SERVE_HELD: {
	const char *error = TtoPairsGet(&flow->out.redirectParams, "error");
	const char *code = TtoPairsGet(&flow->out.redirectParams, "code");

	if (error != NULL) {
	    /* TikTok sends code=null&error=auth_denied: error wins. */
	    const char *desc = TtoPairsGet(&flow->out.redirectParams,
		    "error_description");
	    Tcl_DString why;

	    flow->out.response = ParamsJson(&flow->out.redirectParams);
	    Tcl_DStringInit(&why);
	    Tcl_DStringAppend(&why, "the provider denied access: error=", -1);
	    AppendShort(&why, error);
	    if (desc != NULL && *desc != '\0') {
		Tcl_DStringAppend(&why, " (", -1);
		AppendShort(&why, desc);
		Tcl_DStringAppend(&why, ")", -1);
	    }
	    flow->out.failureInfo = TtoStrDup(Tcl_DStringValue(&why));
	    Tcl_DStringFree(&why);
	    final = TTO_AUTH_DENIED;
	} else if (code == NULL || *code == '\0') {
	    flow->out.failureInfo = TtoStrDup("the redirect carried an empty code");
	    final = TTO_AUTH_FAILED;
	} else {
	    final = ExchangeCode(flow, code);
	}
	if (final == TTO_AUTH_FAILED
		&& flow->out.result.errorKind == TTO_ERR_CANCELLED) {
	    FreeString(&flow->out.failureInfo);
	    flow->out.failureInfo = TtoStrDup("cancelled");
	}
	if (served == SERVE_PASTED) {
	    break;		/* no browser waits on this port */
	}
	page = (final == TTO_AUTH_SUCCEEDED) ? flow->cfg->allowHtml : flow->cfg->denyHtml;
	Tcl_DStringInit(&reply);
	if (final == TTO_AUTH_SUCCEEDED) {
	    TtoHttpReply(&reply, 200, "OK", page);
	} else {
	    TtoHttpReply(&reply, final == TTO_AUTH_DENIED ? 403 : 502,
		    final == TTO_AUTH_DENIED ? "Forbidden" : "Bad Gateway", page);
	}
	TtoNetSendHeld(flow->net, Tcl_DStringValue(&reply),
		(size_t) Tcl_DStringLength(&reply), 2000);
	Tcl_DStringFree(&reply);
	break;
    }
    case TTO_SERVE_TIMEOUT:
	snprintf(info, sizeof(info), "timed out after %ld ms waiting for the "
		"browser's redirect", flow->cfg->authTimeoutMs);
	flow->out.failureInfo = RejectedInfo(flow, info);
	break;
    default:
	flow->out.failureInfo = TtoStrDup("cancelled");
	break;
    }

    /*
     * The port is free again before anyone can see the flow ended (a
     * startAuth right after must be able to bind it).
     */

    TtoNetSettle(flow->net);

    /*
     * Publish.  The completion event is queued under the mutex: an owner
     * that sees the final state may orphan the flow and delete its
     * events at once, and must find this one queued already.
     */

    Tcl_MutexLock(&flow->mutex);
    http = flow->http;
    flow->http = NULL;		/* RequestCancel must not wake it now */
    Tcl_MutexUnlock(&flow->mutex);
    TtoCurlRelease(http);	/* before publishing: the next flow reuses it */

    Tcl_MutexLock(&flow->mutex);
    flow->state = final;
    if (flow->doneProc) {
	event = (FlowEvent *) ckalloc(sizeof(FlowEvent));
	event->header.proc = FlowEventProc;
	event->flow = flow;
	Tcl_ThreadQueueEvent(flow->owner, (Tcl_Event *) event,
		TCL_QUEUE_TAIL);
	Tcl_ThreadAlert(flow->owner);
    }
    Tcl_ConditionNotify(&flow->cond);
    Tcl_MutexUnlock(&flow->mutex);

    /* The graceful close; a cancel or an exit cuts it short. */
    TtoNetFinishHeld(flow->net);

    Tcl_MutexLock(&flow->mutex);
    net = flow->net;
    flow->net = NULL;
    TtoNetClose(net);		/* under the mutex: RequestCancel wakes it */
    flow->threadDone = 1;
    orphan = flow->orphan;
    Tcl_ConditionNotify(&flow->cond);
    Tcl_MutexUnlock(&flow->mutex);
    if (orphan) {
	FreeFlow(flow);
    }
}

/*
 *----------------------------------------------------------------------
 *
 * Workers --
 *
 *	Flows run on worker threads that stay for the next flow: creating,
 *	finalizing and joining a thread per flow cost more than the rest
 *	of a flow's own work.  A flow goes to an idle worker if there is
 *	one, else to a new worker.  After its flow a worker waits for the
 *	next one if fewer than MAX_IDLE_WORKERS are idle, else it retires
 *	(it is joined by the next TtoFlowBind or TtoFlowWorkersStop).
 *	TtoFlowWorkersStop ends and joins them all: when the last object
 *	of the process goes, and at exit.
 *
 *	Each worker has a bare interp of its own: creating it sets up the
 *	thread's Tcl notifier, which the listener's channels, timers and
 *	TtoNetWake's events need, and Tcl's socket calls report their
 *	errors through it.
 *
 *----------------------------------------------------------------------
 */

#define MAX_IDLE_WORKERS 2

typedef struct Worker {
    Tcl_ThreadId thread;
    Tcl_Condition cond;		/* job or quit set (workerMutex) */
    TtoFlow *job;		/* the flow to run, or NULL */
    int quit;			/* end after the current job */
    struct Worker *next;	/* in workers, idleWorkers or retired */
    struct Worker *nextIdle;
} Worker;

TCL_DECLARE_MUTEX(workerMutex)
static Worker *workers = NULL;		/* live, busy or idle */
static Worker *idleWorkers = NULL;	/* the idle ones among them */
static int idleCount = 0;
static Worker *retired = NULL;		/* ended or ending: join them */
static int shuttingDown = 0;		/* exit: start nothing more */

static void
Unlink(
    Worker **listPtr,
    Worker *w)
{
    for (; *listPtr; listPtr = &(*listPtr)->next) {
	if (*listPtr == w) {
	    *listPtr = w->next;
	    return;
	}
    }
}

/*
 *----------------------------------------------------------------------
 *
 * RunJob --
 *
 *	A worker's part of one flow: open the listener, report the outcome
 *	to TtoFlowBind and, bound, serve at once (RunFlow): the browser can
 *	only come once startAuth has returned the URL, and the worker is
 *	then already waiting for it.  After a failed bind the worker touches
 *	the flow no more: its owner frees it.
 *
 *----------------------------------------------------------------------
 */

static void
RunJob(
    TtoFlow *flow,
    Tcl_Interp *interp)
{
    TtoNet *net = NULL;
    int port = 0, err = 0, rc;
    char portText[16];
    Tcl_DString uri;

    rc = TtoNetOpen(interp, flow->families, flow->portFrom, flow->portTo,
	    &flow->cancel, &net, &port, &err);
    if (rc == 0) {
	/* http://host:port/path: where the browser is sent back to. */
	snprintf(portText, sizeof(portText), ":%d", port);
	Tcl_DStringInit(&uri);
	Tcl_DStringAppend(&uri, "http://", -1);
	Tcl_DStringAppend(&uri, flow->host, -1);
	Tcl_DStringAppend(&uri, portText, -1);
	Tcl_DStringAppend(&uri, flow->cfg->redirectPath, -1);
	flow->redirectUri = TtoStrDup(Tcl_DStringValue(&uri));
	Tcl_DStringFree(&uri);
    }
    Tcl_MutexLock(&flow->mutex);
    flow->bindDone = 1;
    if (rc != 0) {
	flow->bindErrno = err ? err : EINVAL;
	flow->threadDone = 1;
	Tcl_ConditionNotify(&flow->cond);
	Tcl_MutexUnlock(&flow->mutex);
	return;
    }
    flow->net = net;
    flow->port = port;
    flow->state = TTO_AUTH_WAITING;
    Tcl_ConditionNotify(&flow->cond);
    Tcl_MutexUnlock(&flow->mutex);
    RunFlow(flow);
}

static Tcl_ThreadCreateType
WorkerThread(
    ClientData clientData)
{
    Worker *w = clientData;
    Tcl_Interp *interp;
    TtoFlow *flow;

    /*
     * The port's -sockname needs no reverse DNS lookup: Tcl skips it
     * when this variable exists.
     */

    interp = Tcl_CreateInterp();
    Tcl_SetVar2(interp, "::tcl::unsupported::noReverseDNS", NULL, "1",
	    TCL_GLOBAL_ONLY);

    /*
     * Tcl creates a mutex on its first lock, after an unlocked check.
     * Servicing the (empty) event queue locks this thread's queue mutex
     * once now, before any other thread can queue an event here
     * (TtoNetWake, only once a flow is bound), so that check cannot race.
     */

    Tcl_ServiceEvent(TCL_ALL_EVENTS);

    Tcl_MutexLock(&workerMutex);
    for (;;) {
	while (w->job == NULL && !w->quit) {
	    Tcl_ConditionWait(&w->cond, &workerMutex, NULL);
	}
	flow = w->job;
	if (flow == NULL) {
	    break;			/* quit: the stopper joins us */
	}
	Tcl_MutexUnlock(&workerMutex);
	RunJob(flow, interp);
	Tcl_MutexLock(&workerMutex);
	w->job = NULL;
	if (w->quit) {
	    break;
	}
	if (idleCount >= MAX_IDLE_WORKERS) {
	    Unlink(&workers, w);
	    w->next = retired;
	    retired = w;
	    break;
	}
	w->nextIdle = idleWorkers;
	idleWorkers = w;
	idleCount++;
    }
    Tcl_MutexUnlock(&workerMutex);

    /*
     * Release the interp and this thread's notifier; TtoThreadExit
     * releases its Tcl allocator cache and thread data and ends the
     * thread the way the platform needs.
     */

    Tcl_DeleteInterp(interp);
    TtoThreadExit();
    TCL_THREAD_CREATE_RETURN;
}

/* Joins and frees a list of workers that were told to end. */
static void
JoinWorkers(
    Worker *list)
{
    Worker *w;
    int result;

    while (list) {
	w = list;
	list = w->next;
	Tcl_JoinThread(w->thread, &result);
	Tcl_ConditionFinalize(&w->cond);
	ckfree(w);
    }
}

/*
 * Hands a flow to a worker.  Returns 0, or -1 if no thread could be made
 * (or the process is exiting).
 */

static int
Dispatch(
    TtoFlow *flow)
{
    Worker *w, *done;
    int ok = 1;

    Tcl_MutexLock(&workerMutex);
    done = retired;
    retired = NULL;
    if (shuttingDown) {
	ok = 0;
    } else if (idleWorkers != NULL) {
	w = idleWorkers;
	idleWorkers = w->nextIdle;
	idleCount--;
	w->job = flow;
	Tcl_ConditionNotify(&w->cond);
    } else {
	w = ckalloc(sizeof(Worker));
	memset(w, 0, sizeof(Worker));
	w->job = flow;
	if (Tcl_CreateThread(&w->thread, WorkerThread, w,
		TCL_THREAD_STACK_DEFAULT, TCL_THREAD_JOINABLE) != TCL_OK) {
	    ckfree(w);
	    ok = 0;
	} else {
	    w->next = workers;
	    workers = w;
	}
    }
    Tcl_MutexUnlock(&workerMutex);
    JoinWorkers(done);
    return ok ? 0 : -1;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoFlowBind --
 *
 *	Starts the flow: hands it to a worker, which opens the loopback
 *	port on the addresses of families (TTO_NET_V4, TTO_NET_V6) and,
 *	bound, serves it at once (state 1), and waits for the bind's
 *	outcome, so that a port in use is reported by startAuth itself.
 *	host is the redirect URI's host (-localhost), kept by the caller
 *	until this returns.
 *
 * Results:
 *	0 with the flow running; -1 with *errnoPtr (and Tcl's errno) set
 *	when the port cannot be bound; -2 when no worker thread could be
 *	started (or no libcurl handle made).
 *
 * Side effects:
 *	Puts the flow on the process-wide list.
 *
 *----------------------------------------------------------------------
 */

int
TtoFlowBind(
    TtoFlow *flow,
    const char *host,
    int families,
    int portFrom,
    int portTo,
    int *errnoPtr)
{
    FlowLink *link;
    int err;

    flow->http = TtoCurlAcquire();	/* its token request's */
    if (flow->http == NULL) {
	return -2;
    }
    flow->host = host;
    flow->families = families;
    flow->portFrom = portFrom;
    flow->portTo = portTo;

    /* Listed first: an exit must find (and cancel) a flow being bound. */
    link = ckalloc(sizeof(FlowLink));
    link->flow = flow;
    Tcl_MutexLock(&flowListMutex);
    link->next = flowList;
    flowList = link;
    Tcl_MutexUnlock(&flowListMutex);
    if (Dispatch(flow) != 0) {
	return -2;
    }
    Tcl_MutexLock(&flow->mutex);
    while (!flow->bindDone) {
	Tcl_ConditionWait(&flow->cond, &flow->mutex, NULL);
    }
    err = flow->bindErrno;
    Tcl_MutexUnlock(&flow->mutex);
    flow->host = NULL;
    if (err != 0) {
	*errnoPtr = err;
	Tcl_SetErrno(err);
	return -1;
    }
    flow->started = 1;
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * FlowEventProc --
 *
 *	Runs in the owner thread's event loop when a flow has ended: hands
 *	over to the object (which runs -command).
 *
 *----------------------------------------------------------------------
 */

static int
FlowEventProc(
    Tcl_Event *evPtr,
    int flags)
{
    TtoFlow *flow = ((FlowEvent *) evPtr)->flow;

    if (!(flags & TCL_FILE_EVENTS)) {
	return 0;
    }
    if (flow->doneProc) {
	flow->doneProc(flow->doneData);
    }
    return 1;
}

static int
FlowEventMatch(
    Tcl_Event *evPtr,
    ClientData clientData)
{
    return evPtr->proc == FlowEventProc
	    && ((FlowEvent *) evPtr)->flow == (TtoFlow *) clientData;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoFlowAuthorizeUrl --
 *
 *	For a running flow: its redirect URI (http://host:port/path, host
 *	as -localhost says) and the authorize URL the browser is sent to.
 *
 * Results:
 *	The redirect URI (the flow's); the URL is appended to *urlPtr.
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

const char *
TtoFlowAuthorizeUrl(
    TtoFlow *flow,
    Tcl_DString *urlPtr)
{
    TtoProviderAuthorizeUrl(flow->cfg, flow->redirectUri, flow->stateParam,
	    flow->verifier, urlPtr);
    return flow->redirectUri;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoFlowStarted, TtoFlowState, TtoFlowStateParam, TtoFlowOutcomeGet --
 *
 *	What the object reads of its flow: whether TtoFlowBind started it, the
 *	state (under the mutex), the state parameter the redirect must
 *	carry, and once the flow has ended (TtoFlowState says so) its
 *	outcome, which the worker no longer touches then.
 *
 * Results:
 *	As said.
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

int
TtoFlowStarted(
    TtoFlow *flow)
{
    return flow != NULL && flow->started;
}

const char *
TtoFlowStateParam(
    TtoFlow *flow)
{
    return flow->stateParam;
}

const TtoFlowOutcome *
TtoFlowOutcomeGet(
    TtoFlow *flow)
{
    return &flow->out;
}

TtoAuthState
TtoFlowState(
    TtoFlow *flow)
{
    TtoAuthState state;

    Tcl_MutexLock(&flow->mutex);
    state = flow->state;
    Tcl_MutexUnlock(&flow->mutex);
    return state;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoFlowWait --
 *
 *	Blocks on the flow's condition variable until the flow ends
 *	(TTO_AUTH_SUCCEEDED or after) or ms milliseconds pass (ms < 0: no
 *	limit).
 *
 * Results:
 *	The state.
 *
 *----------------------------------------------------------------------
 */

TtoAuthState
TtoFlowWait(
    TtoFlow *flow,
    long long ms)
{
    long long deadline = (ms >= 0) ? TtoNowMs() + ms : 0;
    TtoAuthState state;

    Tcl_MutexLock(&flow->mutex);
    while (flow->started && flow->state > TTO_AUTH_IDLE
	    && flow->state < TTO_AUTH_SUCCEEDED) {
	Tcl_Time slice;
	long long left = 1000;

	if (ms >= 0) {
	    left = deadline - TtoNowMs();
	    if (left <= 0) {
		break;
	    }
	    if (left > 1000) {
		left = 1000;
	    }
	}
	slice.sec = (long) (left / 1000);
	slice.usec = (long) ((left % 1000) * 1000);
	Tcl_ConditionWait(&flow->cond, &flow->mutex, &slice);
    }
    state = flow->state;
    Tcl_MutexUnlock(&flow->mutex);
    return state;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoFlowCancel --
 *
 *	Ends a running flow at once: the worker sees the flag as soon as
 *	its event loop or libcurl wakes, closes the port and publishes
 *	state 5; we wait for that.  A flow that already ended is left as it
 *	is.
 *
 *----------------------------------------------------------------------
 */

static void
RequestCancel(
    TtoFlow *flow,
    int how)
{
    Tcl_MutexLock(&flow->mutex);
    if (!flow->threadDone && (how == CANCEL_ANY
	    || (how == CANCEL_RUNNING && flow->state < TTO_AUTH_SUCCEEDED)
	    || (how == CANCEL_ORPHAN && flow->orphan))) {
	TtoCancelSet(&flow->cancel);
	if (flow->net) {
	    TtoNetWake(flow->net);	/* its event loop */
	}
	TtoCurlWake(flow->http);	/* NULL once the exchange is over */
    }
    Tcl_MutexUnlock(&flow->mutex);
}

/* Waits, under the flow's mutex, until done says the worker got there. */
#define WAIT_FOR(flow, done) \
    do {								\
	Tcl_MutexLock(&(flow)->mutex);					\
	while (!(done)) {						\
	    Tcl_Time slice = {0, 100000};				\
	    Tcl_ConditionWait(&(flow)->cond, &(flow)->mutex, &slice);	\
	}								\
	Tcl_MutexUnlock(&(flow)->mutex);				\
    } while (0)

/*
 *----------------------------------------------------------------------
 *
 * TtoFlowCancel --
 *
 *	Ends a running flow (state TTO_AUTH_FAILED, failureInfo
 *	"cancelled") and waits until the worker has published it.
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Wakes the worker's event loop or libcurl transfer.
 *
 *----------------------------------------------------------------------
 */

void
TtoFlowCancel(
    TtoFlow *flow)
{
    if (!flow->started) {
	return;
    }
    RequestCancel(flow, CANCEL_RUNNING);
    WAIT_FOR(flow, flow->state >= TTO_AUTH_SUCCEEDED);
}

/*
 *----------------------------------------------------------------------
 *
 * TtoFlowPaste --
 *
 *	Hands a running flow the redirect's parameters the user got some
 *	other way (completeAuth, exchangeCodeForToken): the worker stops
 *	serving, closes the port and goes on as for a redirect that came
 *	to it.  The caller has checked the parameters.
 *
 * Results:
 *	0, or -1 if the flow is not waiting for its redirect any more (one
 *	came, or it ended).
 *
 * Side effects:
 *	State 2; wakes the worker.
 *
 *----------------------------------------------------------------------
 */

int
TtoFlowPaste(
    TtoFlow *flow,
    const TtoPairs *params)
{
    if (!flow->started) {
	return -1;
    }
    Tcl_MutexLock(&flow->mutex);
    if (flow->state != TTO_AUTH_WAITING || flow->pasted || flow->threadDone) {
	Tcl_MutexUnlock(&flow->mutex);
	return -1;
    }
    TtoPairsCopy(&flow->pastedParams, params);
    flow->pasted = 1;
    flow->state = TTO_AUTH_EXCHANGING;
    TtoCancelSwap(&flow->cancel, 0, 2);
    if (flow->net) {
	TtoNetWake(flow->net);
    }
    Tcl_MutexUnlock(&flow->mutex);
    return 0;
}

/* Takes a flow off the process-wide list. */
static void
Unlist(
    TtoFlow *flow)
{
    FlowLink **linkPtr, *link;

    Tcl_MutexLock(&flowListMutex);
    for (linkPtr = &flowList; *linkPtr; linkPtr = &(*linkPtr)->next) {
	if ((*linkPtr)->flow == flow) {
	    link = *linkPtr;
	    *linkPtr = link->next;
	    ckfree(link);
	    break;
	}
    }
    Tcl_MutexUnlock(&flowListMutex);
}

/* Frees a flow nobody references any more (no thread, no event). */
static void
FreeFlow(
    TtoFlow *flow)
{
    char **strings[] = {
	&flow->stateParam, &flow->verifier, &flow->redirectUri,
	&flow->out.response, &flow->out.failureInfo, &flow->out.saveError
    };
    size_t i;

    Unlist(flow);
    TtoCurlRelease(flow->http);
    for (i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
	FreeString(strings[i]);
    }
    TtoConfigFree(flow->cfg);
    TtoPairsFree(&flow->out.redirectParams);
    TtoPairsFree(&flow->pastedParams);
    TtoTokenResultFree(&flow->out.result);
    Tcl_ConditionFinalize(&flow->cond);
    Tcl_MutexFinalize(&flow->mutex);
    ckfree(flow);
}

/*
 *----------------------------------------------------------------------
 *
 * TtoFlowFree --
 *
 *	Lets go of a flow: cancels it if it is running, drops a queued
 *	completion event and frees everything.  A flow that has ended but
 *	whose worker is still closing the browser's connection gracefully
 *	is left to the worker, which frees it when done, so that neither
 *	the page nor the caller waits.  Must run in the owner thread.
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Cancels and joins or orphans the flow; frees it (or leaves that
 *	to its worker).
 *
 *----------------------------------------------------------------------
 */

void
TtoFlowFree(
    TtoFlow *flow)
{
    int orphaned = 0;

    if (flow->started) {
	RequestCancel(flow, CANCEL_RUNNING);	/* no-op once it has ended */
	WAIT_FOR(flow, flow->state >= TTO_AUTH_SUCCEEDED);
	Tcl_MutexLock(&flow->mutex);
	if (!flow->threadDone) {
	    flow->orphan = orphaned = 1;
	    flow->doneProc = NULL;
	}
	Tcl_MutexUnlock(&flow->mutex);
    }
    Tcl_DeleteEvents(FlowEventMatch, flow);
    if (!orphaned) {
	FreeFlow(flow);
    }
}

/*
 *----------------------------------------------------------------------
 *
 * TtoFlowWorkersStop --
 *
 *	Ends and joins every worker thread.  Flows still running are
 *	cancelled first (at exit; when the last object goes only orphans,
 *	ending their graceful closes, can be left).  Called when the last
 *	object of the process is deleted and from the exit handler.
 *
 *----------------------------------------------------------------------
 */

static void
StopWorkers(
    int all)
{
    FlowLink *link;
    Worker *w, *list;

    /*
     * Holding the list mutex keeps every listed flow alive: its owner
     * or its worker must take it (in Unlist) before freeing it.
     */

    Tcl_MutexLock(&flowListMutex);
    for (link = flowList; link; link = link->next) {
	RequestCancel(link->flow, all ? CANCEL_ANY : CANCEL_ORPHAN);
    }
    Tcl_MutexUnlock(&flowListMutex);

    Tcl_MutexLock(&workerMutex);
    if (all) {
	shuttingDown = 1;
    }
    for (w = workers; w; w = w->next) {
	w->quit = 1;
	Tcl_ConditionNotify(&w->cond);
    }
    list = workers;
    workers = NULL;
    idleWorkers = NULL;
    idleCount = 0;
    if (list) {
	for (w = list; w->next; w = w->next) {
	    /* find the end */
	}
	w->next = retired;
    } else {
	list = retired;
    }
    retired = NULL;
    Tcl_MutexUnlock(&workerMutex);
    JoinWorkers(list);
}

/*
 *----------------------------------------------------------------------
 *
 * TtoFlowWorkersStop --
 *
 *	Joins the idle worker threads (the last object went).
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Ends threads.
 *
 *----------------------------------------------------------------------
 */

void
TtoFlowWorkersStop(void)
{
    StopWorkers(0);
}

/*
 *----------------------------------------------------------------------
 *
 * TtoFlowExitAll --
 *
 *	Process exit handler: stops every running flow and joins every
 *	worker, so that `exit` during a flow neither hangs nor crashes in
 *	Tcl_Finalize.  A cancelled flow ends within one event-loop or
 *	libcurl wake-up.
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Cancels every flow and joins every worker thread.
 *
 *----------------------------------------------------------------------
 */

void
TtoFlowExitAll(void)
{
    StopWorkers(1);
}
