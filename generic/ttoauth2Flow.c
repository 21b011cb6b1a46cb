/*
 * ttoauth2Flow.c --
 *
 *	One authorization-code flow: the background thread that serves the
 *	loopback port until the browser's redirect arrives, checks it, runs
 *	the token exchange, answers the browser, closes the port and records
 *	the outcome as a flow state (0..5, as Chilkat's AuthFlowState).
 *
 *	Ownership: the Tcl thread creates the flow, fills its configuration,
 *	binds and starts it.  From then on the flow thread alone writes the
 *	results; the Tcl thread reads only the state (under the mutex) until
 *	threadDone, and everything after joining.  The one way to end a flow
 *	early is TtoFlowCancel, which sets the cancel flag, wakes whatever the
 *	thread waits on (poll or libcurl), and joins.
 *
 *	Every live flow is on a process-wide list so that an exit of the
 *	process can stop all threads before Tcl finalizes its allocator.
 */

#include "ttoauth2Int.h"
#include <string.h>
#include <stdio.h>
#include <cjson/cJSON.h>

typedef struct FlowEvent {
    Tcl_Event header;
    TtoFlow *flow;
} FlowEvent;

typedef struct FlowLink {
    TtoFlow *flow;
    struct FlowLink *next;
} FlowLink;

static int FlowEventProc(Tcl_Event *evPtr, int flags);

TCL_DECLARE_MUTEX(flowListMutex)
static FlowLink *flowList = NULL;

static void
FreeString(
    char **sPtr)
{
    if (*sPtr) {
	memset(*sPtr, 0, strlen(*sPtr));
	ckfree(*sPtr);
	*sPtr = NULL;
    }
}

TtoFlow *
TtoFlowNew(void)
{
    TtoFlow *flow = ckalloc(sizeof(TtoFlow));

    memset(flow, 0, sizeof(TtoFlow));
    flow->result.expiresAt = flow->result.refreshExpiresAt = -1;
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
 * TtoFlowBind --
 *
 *	Binds the loopback port(s) in the caller's thread, so that a port
 *	in use is reported by startAuth itself.
 *
 * Results:
 *	0 with flow->port set, or -1 with *errnoPtr.
 *
 *----------------------------------------------------------------------
 */

int
TtoFlowBind(
    TtoFlow *flow,
    int portFrom,
    int portTo,
    int *errnoPtr)
{
    return TtoNetOpen(portFrom, portTo, &flow->net, &flow->port, errnoPtr);
}

static void
SetState(
    TtoFlow *flow,
    int state)
{
    Tcl_MutexLock(&flow->mutex);
    flow->state = state;
    Tcl_ConditionNotify(&flow->cond);
    Tcl_MutexUnlock(&flow->mutex);
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
    const TtoHttpRequest *req,
    Tcl_DString *replyPtr)
{
    TtoFlow *flow = clientData;
    const char *state, *code, *error;

    if (strcmp(req->path, flow->redirectPath) != 0) {
	TtoHttpReply(replyPtr, 404, "Not Found",
		"<!doctype html><title>Not found</title><p>Not found.</p>");
	return TTO_CONN_REPLY;
    }
    if (strcmp(req->method, "GET") != 0) {
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
	TtoHttpReply(replyPtr, 400, "Bad Request",
		"<!doctype html><title>Bad request</title><p>This is not the "
		"authorization response this application is waiting for.</p>");
	return TTO_CONN_REPLY;
    }
    TtoPairsCopy(&flow->redirectParams, &req->query);
    SetState(flow, 2);
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
 *	The final state: 3 or 5.
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
    req.provider = flow->provider;
    req.grant = TTO_GRANT_CODE;
    req.endpoint = flow->endpoint;
    req.clientId = flow->clientId;
    req.clientSecret = flow->clientSecret;
    req.code = code;
    req.redirectUri = flow->redirectUri;
    req.codeVerifier = flow->verifier;
    req.resource = flow->resource;
    req.extra = &flow->extra;
    req.useBasicAuth = flow->useBasicAuth;
    req.timeoutMs = flow->timeoutMs;
    req.caFile = flow->caFile;
    req.proxy = flow->proxy;
    req.userAgent = flow->userAgent;
    req.cancelPtr = &flow->cancel;

    TtoTokenRequestRun(flow->http, &req, &flow->result);
    if (flow->result.body) {
	flow->response = TtoStrDup(flow->result.body);
    }
    if (!flow->result.ok) {
	flow->failureInfo = TtoStrDup(flow->result.failureInfo
		? flow->result.failureInfo : "token request failed");
	return 5;
    }
    if (flow->tokenFile) {
	memset(&snap, 0, sizeof(snap));
	snap.provider = flow->provider;
	snap.body = flow->result.body;
	snap.bodyLen = flow->result.bodyLen;
	snap.accessToken = flow->result.accessToken;
	snap.refreshToken = flow->result.refreshToken;
	snap.tokenType = flow->result.tokenType;
	snap.expiresAt = flow->result.expiresAt;
	snap.refreshExpiresAt = flow->result.refreshExpiresAt;
	if (TtoStoreSave(flow->tokenFile, &snap, 1, &err) != 0) {
	    snprintf(why, sizeof(why), "%s", Tcl_ErrnoMsg(err));
	    flow->saveError = TtoStrDup(why);
	}
    }
    return 3;
}

/*
 *----------------------------------------------------------------------
 *
 * FlowThread --
 *
 *	The body of the flow thread.
 *
 *----------------------------------------------------------------------
 */

static Tcl_ThreadCreateType
FlowThread(
    ClientData clientData)
{
    TtoFlow *flow = clientData;
    long long deadline = 0;
    int served, final = 5;
    const char *page = NULL;
    Tcl_DString reply;
    FlowEvent *event;
    char info[200];

    if (flow->authTimeoutMs > 0) {
	deadline = TtoNowMs() + flow->authTimeoutMs;
    }
    served = TtoNetServe(flow->net, deadline, &flow->cancel,
	    RedirectRequest, flow);
    switch (served) {
    case TTO_SERVE_HELD: {
	const char *error = TtoPairsGet(&flow->redirectParams, "error");
	const char *code = TtoPairsGet(&flow->redirectParams, "code");

	if (error != NULL) {
	    /* TikTok sends code=null&error=auth_denied: error wins. */
	    flow->response = ParamsJson(&flow->redirectParams);
	    final = 4;
	} else if (code == NULL || *code == '\0') {
	    flow->failureInfo = TtoStrDup("the redirect carried an empty code");
	    final = 5;
	} else {
	    final = ExchangeCode(flow, code);
	}
	page = (final == 3) ? flow->allowHtml : flow->denyHtml;
	Tcl_DStringInit(&reply);
	if (final == 3) {
	    TtoHttpReply(&reply, 200, "OK", page);
	} else {
	    TtoHttpReply(&reply, final == 4 ? 403 : 502,
		    final == 4 ? "Forbidden" : "Bad Gateway", page);
	}
	TtoNetSendHeld(flow->net, Tcl_DStringValue(&reply),
		(size_t) Tcl_DStringLength(&reply), 2000);
	Tcl_DStringFree(&reply);
	if (final == 5 && flow->result.errorKind
		&& strcmp(flow->result.errorKind, "CANCELLED") == 0) {
	    FreeString(&flow->failureInfo);
	    flow->failureInfo = TtoStrDup("cancelled");
	}
	break;
    }
    case TTO_SERVE_TIMEOUT:
	snprintf(info, sizeof(info), "timed out after %ld ms waiting for the "
		"browser's redirect", flow->authTimeoutMs);
	flow->failureInfo = TtoStrDup(info);
	break;
    case TTO_SERVE_CANCELLED:
	flow->failureInfo = TtoStrDup("cancelled");
	break;
    default:
	flow->failureInfo = TtoStrDup("the redirect listener failed");
	break;
    }

    Tcl_MutexLock(&flow->mutex);
    TtoNetClose(flow->net);
    flow->net = NULL;
    flow->state = final;
    Tcl_ConditionNotify(&flow->cond);
    Tcl_MutexUnlock(&flow->mutex);

    /* Tell the owner thread; TtoFlowFree removes it if still queued. */
    if (flow->doneProc) {
	event = (FlowEvent *) ckalloc(sizeof(FlowEvent));
	event->header.proc = FlowEventProc;
	event->flow = flow;
	Tcl_ThreadQueueEvent(flow->owner, (Tcl_Event *) event,
		TCL_QUEUE_TAIL);
	Tcl_ThreadAlert(flow->owner);
    }

    Tcl_MutexLock(&flow->mutex);
    flow->threadDone = 1;
    Tcl_ConditionNotify(&flow->cond);
    Tcl_MutexUnlock(&flow->mutex);

    /*
     * Release this thread's Tcl allocator cache and thread data, then
     * return normally.  Tcl_ExitThread would end the thread with
     * pthread_exit from inside this frame, which unwinds without
     * unpoisoning its locals (AddressSanitizer then trips over them).
     */
    Tcl_FinalizeThread();
    TCL_THREAD_CREATE_RETURN;
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
 * TtoFlowStart --
 *
 *	Starts the flow thread on a bound flow.
 *
 * Results:
 *	0, or -1 if no thread could be created (the port is closed then).
 *
 *----------------------------------------------------------------------
 */

int
TtoFlowStart(
    TtoFlow *flow)
{
    FlowLink *link;

    flow->http = TtoHttpAcquire();
    if (flow->http == NULL) {
	TtoNetClose(flow->net);
	flow->net = NULL;
	return -1;
    }
    flow->state = 1;
    if (Tcl_CreateThread(&flow->thread, FlowThread, flow,
	    TCL_THREAD_STACK_DEFAULT, TCL_THREAD_JOINABLE) != TCL_OK) {
	TtoNetClose(flow->net);
	flow->net = NULL;
	flow->state = 0;
	return -1;
    }
    flow->started = 1;
    link = ckalloc(sizeof(FlowLink));
    link->flow = flow;
    Tcl_MutexLock(&flowListMutex);
    link->next = flowList;
    flowList = link;
    Tcl_MutexUnlock(&flowListMutex);
    return 0;
}

int
TtoFlowState(
    TtoFlow *flow)
{
    int state;

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
 *	Blocks on the flow's condition variable until the flow ends (state
 *	3, 4 or 5) or ms milliseconds pass (ms < 0: no limit).
 *
 * Results:
 *	The state.
 *
 *----------------------------------------------------------------------
 */

int
TtoFlowWait(
    TtoFlow *flow,
    long long ms)
{
    long long deadline = (ms >= 0) ? TtoNowMs() + ms : 0;
    int state;

    Tcl_MutexLock(&flow->mutex);
    while (flow->started && flow->state > 0 && flow->state < 3) {
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
 *	Ends a running flow at once: the thread sees the flag as soon as
 *	poll or libcurl wakes, closes the port and exits; we join it.  A
 *	flow that already ended is left as it is.
 *
 *----------------------------------------------------------------------
 */

static void
RequestCancel(
    TtoFlow *flow)
{
    Tcl_MutexLock(&flow->mutex);
    if (!flow->threadDone) {
	__atomic_store_n(&flow->cancel, 1, __ATOMIC_RELEASE);
	if (flow->net) {
	    TtoNetWake(flow->net);
	}
	TtoHttpWake(flow->http);
    }
    Tcl_MutexUnlock(&flow->mutex);
}

void
TtoFlowCancel(
    TtoFlow *flow)
{
    if (!flow->started) {
	return;
    }
    RequestCancel(flow);
    TtoFlowJoin(flow);
}

/*
 * Joins the flow thread exactly once, whichever of the owner and the
 * exit handler gets there first; the other waits for it.
 */

static void
JoinOnce(
    TtoFlow *flow)
{
    int result;

    Tcl_MutexLock(&flow->mutex);
    if (flow->joining) {
	while (!flow->joined) {
	    Tcl_Time slice = {0, 20000};
	    Tcl_ConditionWait(&flow->cond, &flow->mutex, &slice);
	}
	Tcl_MutexUnlock(&flow->mutex);
	return;
    }
    flow->joining = 1;
    Tcl_MutexUnlock(&flow->mutex);
    Tcl_JoinThread(flow->thread, &result);
    Tcl_MutexLock(&flow->mutex);
    flow->joined = 1;
    Tcl_ConditionNotify(&flow->cond);
    Tcl_MutexUnlock(&flow->mutex);
}

void
TtoFlowJoin(
    TtoFlow *flow)
{
    FlowLink **linkPtr, *link;

    if (!flow->started) {
	return;
    }
    JoinOnce(flow);
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

/*
 *----------------------------------------------------------------------
 *
 * TtoFlowFree --
 *
 *	Cancels (if running), joins, drops a queued completion event and
 *	frees everything.  Must run in the owner thread.
 *
 *----------------------------------------------------------------------
 */

void
TtoFlowFree(
    TtoFlow *flow)
{
    char **strings[] = {
	&flow->stateParam, &flow->verifier, &flow->redirectUri,
	&flow->redirectPath, &flow->allowHtml, &flow->denyHtml,
	&flow->endpoint, &flow->clientId, &flow->clientSecret,
	&flow->resource, &flow->caFile, &flow->proxy, &flow->userAgent,
	&flow->tokenFile, &flow->response, &flow->failureInfo,
	&flow->saveError
    };
    size_t i;

    TtoFlowCancel(flow);
    if (flow->net) {
	TtoNetClose(flow->net);		/* bound but never started */
	flow->net = NULL;
    }
    Tcl_DeleteEvents(FlowEventMatch, flow);
    TtoHttpRelease(flow->http);
    for (i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
	FreeString(strings[i]);
    }
    TtoPairsFree(&flow->extra);
    TtoPairsFree(&flow->redirectParams);
    TtoTokenResultFree(&flow->result);
    Tcl_ConditionFinalize(&flow->cond);
    Tcl_MutexFinalize(&flow->mutex);
    ckfree(flow);
}

/*
 *----------------------------------------------------------------------
 *
 * TtoFlowExitAll --
 *
 *	Process exit handler: stops and joins every running flow thread, so
 *	that `exit` during a flow neither hangs nor crashes in Tcl_Finalize.
 *	A cancelled thread ends within one poll or libcurl wake-up.
 *
 *----------------------------------------------------------------------
 */

void
TtoFlowExitAll(void)
{
    FlowLink *link;

    /*
     * Holding the list mutex keeps every listed flow alive: an owner
     * must take it (in TtoFlowJoin) before it can free its flow.
     */

    Tcl_MutexLock(&flowListMutex);
    for (link = flowList; link; link = link->next) {
	RequestCancel(link->flow);
    }
    for (link = flowList; link; link = link->next) {
	JoinOnce(link->flow);
    }
    Tcl_MutexUnlock(&flowListMutex);
}
