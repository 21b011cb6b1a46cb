/*
 * ttoauth2Listen.c --
 *
 *	The loopback redirect listener, on Tcl's own channel layer, so that
 *	the same code serves every platform Tcl runs on.  A flow worker (a
 *	thread with its own Tcl notifier) opens two TCP server channels, one
 *	on 127.0.0.1 and one on ::1, on one port; Tcl accepts clients and
 *	calls ConnAccept; channel handlers read request heads and write
 *	replies; timer handlers end connections whose time is up.  Another
 *	thread ends a wait by setting the cancel flag and queueing an event
 *	to the worker (TtoNetWake).  Channels belong to the thread that
 *	made them: every function here but TtoNetWake and the cancel-flag
 *	accessors runs in the worker that opened the net.
 *
 *	Connection policy.  At most TTO_MAX_CONNECTIONS clients are served at
 *	once, each for at most TTO_CONN_DEADLINE_MS.  The listener never stops
 *	accepting: with every slot taken, a new client takes the slot of a
 *	connection whose reply is already out, else of the oldest one that
 *	has still not sent a whole request head.  A browser sends its whole
 *	head the moment it connects, so its request is read within a pass or
 *	two of the event loop, long before TTO_MAX_CONNECTIONS newer clients
 *	could make it the oldest; clients that send part of a head (or
 *	nothing) and wait, however many, only ever hold slots until newer
 *	clients come, which bounds what they can do to the redirect by the
 *	time Tcl takes to accept, not by the per-connection deadline.  The
 *	servers listen with the largest backlog the system allows (Tcl passes
 *	SOMAXCONN), so a burst of connections meets no dropped SYNs either.
 *	A new client's head is read at once on accept, unless the table is
 *	full (see ConnAccept): a browser's has usually arrived with the
 *	connect, so no notifier round trip comes between the redirect and
 *	its answer.
 *
 *	The HTTP side (parsing a head, building a reply) lives in
 *	ttoauth2Http.c; this file only moves bytes.
 */

#include "ttoauth2Int.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

#define LINGER_MS	  1000	/* after a reply: silence before we close */
#define LINGER_MAX_MS	  10000	/* ... and the longest graceful close */
#define EPHEMERAL_TRIES	  20	/* port 0: new OS-chosen ports to try */
#define DRAIN_CHUNK	  4096

typedef enum {
    CONN_FREE = 0,		/* slot unused */
    CONN_READING,		/* collecting a request head */
    CONN_SENDING,		/* a reply is queued in out */
    CONN_LINGERING		/* reply sent, write side shut: wait for EOF */
} ConnPhase;

typedef struct Conn {
    struct TtoNet *net;
    Tcl_Channel chan;
    ConnPhase phase;
    int mask;			/* the channel handler's mask, 0: none */
    long long accepted;		/* TtoNowMs() of the accept */
    Tcl_TimerToken timer;	/* the phase's deadline, or NULL */
    char *in;			/* TTO_MAX_REQUEST_HEAD + 2 bytes */
    size_t inLen;
    char *out;			/* the reply being sent */
    size_t outLen;
    size_t outDone;
} Conn;

/*
 * The held connection (the browser's redirect) after serving ended.
 */

typedef struct Held {
    Tcl_Channel chan;
    int mask;
    int ready;			/* the awaited event came */
} Held;

struct TtoNet {
    Tcl_Interp *interp;		/* the worker's, for Tcl's error reports */
    Tcl_ThreadId thread;	/* the worker */
    volatile int *cancelPtr;	/* the flow's cancel flag */
    Tcl_Channel listen[2];	/* 127.0.0.1, ::1 (NULL: none) */
    int port;
    int numConns;		/* slots not CONN_FREE */
    Conn conns[TTO_MAX_CONNECTIONS];
    TtoRequestProc *proc;	/* while serving: answers requests */
    void *clientData;
    int serving;		/* TtoNetServe runs */
    int outcome;		/* TTO_SERVE_*, -1 while undecided */
    int unsettled;		/* listeners closed, TtoNetSettle not run */
    Held held;
};

static void	ConnAccept(ClientData clientData, Tcl_Channel chan,
		    char *host, int port);
static void	ConnClose(Conn *conn);
static void	ConnExpire(ClientData clientData);
static void	ConnFlush(Conn *conn);
static void	ConnHandler(ClientData clientData, int mask);
static void	ConnLinger(Conn *conn);
static void	ConnQueue(Conn *conn, const char *data, size_t len);
static void	ConnRead(Conn *conn);
static void	ConnReplyStatus(Conn *conn, int status, const char *reason,
		    const char *html);
static void	ConnSetMask(Conn *conn, int mask);
static void	ConnSetTimer(Conn *conn, long long ms);
static int	EvictableConn(TtoNet *net);
static void	HeldHandler(ClientData clientData, int mask);
static void	NotifierSync(void);
static void	HeldSetMask(TtoNet *net, int mask);
static int	HeldWait(TtoNet *net, int mask, long long untilMs);
static void	Wakeup(ClientData clientData);

/*
 *----------------------------------------------------------------------
 *
 * TtoCancelRequested, TtoCancelSet --
 *
 *	Read and set a cancel flag that one thread sets and others read,
 *	under a mutex: plain C99 has no portable atomics, and a Tcl_Mutex
 *	makes the write visible to the reader on every platform (and to
 *	ThreadSanitizer).
 *
 * Results:
 *	TtoCancelRequested: non-zero when cancelling was asked for (0 for
 *	a NULL flag).
 *
 * Side effects:
 *	TtoCancelSet sets the flag.
 *
 *----------------------------------------------------------------------
 */

TCL_DECLARE_MUTEX(cancelMutex)

int
TtoCancelRequested(
    volatile int *flagPtr)
{
    int value;

    if (flagPtr == NULL) {
	return 0;
    }
    Tcl_MutexLock(&cancelMutex);
    value = *flagPtr;
    Tcl_MutexUnlock(&cancelMutex);
    return value;
}

void
TtoCancelSet(
    volatile int *flagPtr)
{
    Tcl_MutexLock(&cancelMutex);
    *flagPtr = 1;
    Tcl_MutexUnlock(&cancelMutex);
}

/*
 *----------------------------------------------------------------------
 *
 * TtoCancelSwap --
 *
 *	Sets the flag to "to" if it is "from": a flag that is not 0 also
 *	stops a wait for a reason other than a cancel (a pasted redirect
 *	sets 2, which a real cancel, 1, overrides).
 *
 * Results:
 *	The flag's value before.
 *
 * Side effects:
 *	May change the flag.
 *
 *----------------------------------------------------------------------
 */

int
TtoCancelSwap(
    volatile int *flagPtr,
    int from,
    int to)
{
    int value;

    Tcl_MutexLock(&cancelMutex);
    value = *flagPtr;
    if (value == from) {
	*flagPtr = to;
    }
    Tcl_MutexUnlock(&cancelMutex);
    return value;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoNetWake --
 *
 *	Makes the worker serving net return from its event loop wait, so
 *	that it sees the cancel flag the caller has just set.  Any thread may
 *	call it while the net exists.
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Queues an event (which does nothing) to the worker and alerts its
 *	notifier.  One left over after the flow is serviced in the worker's
 *	next wait, or freed when the worker ends.
 *
 *----------------------------------------------------------------------
 */

static int
WakeEventProc(
    Tcl_Event *evPtr,
    int flags)
{
    (void) evPtr;
    (void) flags;
    return 1;
}

void
TtoNetWake(
    TtoNet *net)
{
    Tcl_Event *evPtr;

    if (net == NULL) {
	return;
    }
    evPtr = (Tcl_Event *) ckalloc(sizeof(Tcl_Event));
    evPtr->proc = WakeEventProc;
    evPtr->nextPtr = NULL;
    Tcl_ThreadQueueEvent(net->thread, evPtr, TCL_QUEUE_TAIL);
    Tcl_ThreadAlert(net->thread);
}

static int
Cancelled(
    TtoNet *net)
{
    return TtoCancelRequested(net->cancelPtr);
}

/*
 *----------------------------------------------------------------------
 *
 * ListenOn --
 *
 *	Opens a TCP server channel on one loopback address (127.0.0.1 or
 *	::1) and the given port (0: the system chooses).  Tcl sets
 *	SO_REUSEADDR where it only lets a new listener reuse a port that
 *	connections of an earlier one keep in TIME_WAIT (never
 *	SO_REUSEPORT), IPV6_V6ONLY on ::1 so that its port is independent of
 *	127.0.0.1's, and the largest listen backlog the system allows.
 *
 * Results:
 *	The channel with *portPtr set to the bound port, or NULL with
 *	*errnoPtr set (0 when no errno says why: no such address here).
 *
 * Side effects:
 *	Opens a listening socket.
 *
 *----------------------------------------------------------------------
 */

static Tcl_Channel
ListenOn(
    TtoNet *net,
    int v6,
    int *portPtr,
    int *errnoPtr)
{
    Tcl_Channel chan;
    Tcl_DString ds;
    const char *text, *last;

    Tcl_SetErrno(0);
#if TCL_MAJOR_VERSION >= 9
    {
	/*
	 * Tcl 9.0's Tcl_OpenTcpServer passes its flags and backlog to
	 * Tcl_OpenTcpServerEx the wrong way round (every flag, SO_REUSEPORT
	 * included, and a backlog of 1): ask for what we want directly.
	 */

	char service[TCL_INTEGER_SPACE];

	snprintf(service, sizeof(service), "%d", *portPtr);
	chan = Tcl_OpenTcpServerEx(net->interp, service,
		v6 ? "::1" : "127.0.0.1", TCL_TCPSERVER_REUSEADDR, -1,
		ConnAccept, net);
    }
#else
    chan = Tcl_OpenTcpServer(net->interp, *portPtr, v6 ? "::1" : "127.0.0.1",
	    ConnAccept, net);
#endif
    if (chan == NULL) {
	*errnoPtr = Tcl_GetErrno();
	Tcl_ResetResult(net->interp);
	return NULL;
    }

    /*
     * Tcl accepts when the notifier has said the socket is readable, and
     * by then that may no longer hold (a client that connected and reset
     * at once, on systems that drop such a connection from the queue).
     * A non-blocking accept then finds nothing and returns; a blocking
     * one would hang the worker until the next client.
     */

    if (Tcl_SetChannelOption(NULL, chan, "-blocking", "0") != TCL_OK) {
	*errnoPtr = Tcl_GetErrno();
	Tcl_Close(NULL, chan);
	return NULL;
    }
    if (*portPtr == 0) {
	/* -sockname: {address hostname port} */
	Tcl_DStringInit(&ds);
	if (Tcl_GetChannelOption(net->interp, chan, "-sockname", &ds)
		!= TCL_OK) {
	    Tcl_DStringFree(&ds);
	    Tcl_ResetResult(net->interp);
	    Tcl_Close(NULL, chan);
	    *errnoPtr = EINVAL;
	    return NULL;
	}
	text = Tcl_DStringValue(&ds);
	last = strrchr(text, ' ');
	*portPtr = atoi(last ? last + 1 : text);
	Tcl_DStringFree(&ds);
    }
    return chan;
}

/*
 *----------------------------------------------------------------------
 *
 * BindLoopback --
 *
 *	Makes net listen on 127.0.0.1 (when want4) and on ::1 (when
 *	*useV6Ptr), both on one port.  port 0 lets the system choose the
 *	port on the first address; the second must then be free on that
 *	same port.  The first listens before the second is bound, so no
 *	other process can take the chosen port in between.
 *
 * Results:
 *	0 with net->listen[] and net->port set, or -1 with *errnoPtr set
 *	(EADDRINUSE: the port is taken on one of the addresses) and nothing
 *	left open, except: when parkPtr is not NULL and the port was free on
 *	127.0.0.1 but taken on ::1, the IPv4 channel is left listening in
 *	*parkPtr, for the caller to hold while it asks the system for
 *	another port (so it cannot be handed the same one again) and close
 *	afterwards.  With want4, *useV6Ptr is cleared when the host turns
 *	out to have no IPv6 loopback: the caller goes on with IPv4 only.
 *
 * Side effects:
 *	Opens up to two listening sockets.
 *
 *----------------------------------------------------------------------
 */

static int
BindLoopback(
    TtoNet *net,
    int port,
    int want4,
    int *useV6Ptr,
    int *errnoPtr,
    Tcl_Channel *parkPtr)
{
    Tcl_Channel chan4 = NULL, chan6 = NULL;

    if (want4) {
	chan4 = ListenOn(net, 0, &port, errnoPtr);
	if (chan4 == NULL) {
	    return -1;
	}
    }
    if (*useV6Ptr) {
	int err6 = 0;

	chan6 = ListenOn(net, 1, &port, &err6);
	if (chan6 == NULL) {
	    if (want4 && (err6 == 0 || err6 == EAFNOSUPPORT
		    || err6 == EADDRNOTAVAIL || err6 == EPROTONOSUPPORT)) {
		*useV6Ptr = 0;		/* no IPv6 here: IPv4 only */
	    } else {
		if (err6 == EADDRINUSE && parkPtr != NULL && chan4 != NULL) {
		    *parkPtr = chan4;
		} else if (chan4 != NULL) {
		    Tcl_Close(NULL, chan4);
		}
		*errnoPtr = err6 ? err6 : EADDRNOTAVAIL;
		return -1;
	    }
	}
    }
    net->listen[0] = chan4;
    net->listen[1] = chan6;
    net->port = port;
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoNetOpen --
 *
 *	Opens the redirect listener in the calling thread (a flow worker
 *	with a notifier; interp is its own, used for Tcl's error reports)
 *	on the loopback addresses of families (TTO_NET_V4: 127.0.0.1,
 *	TTO_NET_V6: ::1; with both, ::1 only where the host has IPv6), on
 *	one port, never any other address.  portFrom 0 takes a port the
 *	system chooses (retrying when ::1 is taken on it); with portTo >
 *	portFrom the first port of the range free on every address wins;
 *	otherwise only portFrom is tried.  cancelPtr is the flag the net's
 *	waits watch (TtoNetWake wakes them).
 *
 * Results:
 *	0 with *netPtr and *portPtr set, or -1 with *errnoPtr set:
 *	EADDRINUSE when the port (every port of the range) is taken, EINVAL
 *	for a port outside 0..65535, else the system's reason.
 *
 * Side effects:
 *	Opens the listening sockets.
 *
 *----------------------------------------------------------------------
 */

int
TtoNetOpen(
    Tcl_Interp *interp,
    int families,
    int portFrom,
    int portTo,
    volatile int *cancelPtr,
    TtoNet **netPtr,
    int *portPtr,
    int *errnoPtr)
{
    TtoNet *net;
    Tcl_Channel parked[EPHEMERAL_TRIES];
    int i, port, last, numParked = 0, err = 0, sawInUse = 0;
    int want4 = (families & TTO_NET_V4) != 0;
    int useV6 = (families & TTO_NET_V6) != 0;

    *netPtr = NULL;
    if (portFrom < 0 || portFrom > 65535 || portTo < 0 || portTo > 65535
	    || !(families & (TTO_NET_V4 | TTO_NET_V6))) {
	*errnoPtr = EINVAL;
	return -1;
    }

    net = (TtoNet *) ckalloc(sizeof(TtoNet));
    memset(net, 0, sizeof(TtoNet));
    net->interp = interp;
    net->thread = Tcl_GetCurrentThread();
    net->cancelPtr = cancelPtr;
    net->outcome = -1;

    if (portFrom == 0) {
	/*
	 * A port the system chose on 127.0.0.1 that turns out to be
	 * taken on ::1 stays parked (bound) until the end, so the next
	 * request cannot be answered with the same port.
	 */

	int rc = -1;

	for (i = 0; i < EPHEMERAL_TRIES; i++) {
	    Tcl_Channel park = NULL;

	    rc = BindLoopback(net, 0, want4, &useV6, &err, &park);
	    if (park != NULL) {
		parked[numParked++] = park;
	    }
	    if (rc == 0 || err != EADDRINUSE) {
		break;
	    }
	}
	while (numParked > 0) {
	    Tcl_Close(NULL, parked[--numParked]);
	}
	if (rc == 0) {
	    goto bound;
	}
	goto error;
    }

    last = (portTo > portFrom) ? portTo : portFrom;
    for (port = portFrom; port <= last; port++) {
	if (BindLoopback(net, port, want4, &useV6, &err, NULL) == 0) {
	    goto bound;
	}
	if (err == EADDRINUSE) {
	    sawInUse = 1;
	} else if (err != EACCES) {
	    /* Out of descriptors or memory: the next port won't help. */
	    goto error;
	}
    }
    if (sawInUse) {
	err = EADDRINUSE;
    }
    goto error;

  bound:
    *netPtr = net;
    *portPtr = net->port;
    return 0;

  error:
    ckfree((char *) net);
    *errnoPtr = err;
    return -1;
}

/*
 *----------------------------------------------------------------------
 *
 * ConnSetMask, ConnSetTimer --
 *
 *	Point a connection's channel handler at the events its phase waits
 *	for, and its timer at the phase's deadline (ms from now; < 0: none).
 *
 *----------------------------------------------------------------------
 */

static void
ConnSetMask(
    Conn *conn,
    int mask)
{
    if (conn->mask == mask) {
	return;
    }
    if (conn->mask != 0) {
	Tcl_DeleteChannelHandler(conn->chan, ConnHandler, conn);
    }
    conn->mask = mask;
    if (mask != 0) {
	Tcl_CreateChannelHandler(conn->chan, mask, ConnHandler, conn);
    }
}

static void
ConnSetTimer(
    Conn *conn,
    long long ms)
{
    if (conn->timer != NULL) {
	Tcl_DeleteTimerHandler(conn->timer);
	conn->timer = NULL;
    }
    if (ms >= 0) {
	conn->timer = Tcl_CreateTimerHandler((int) ms, ConnExpire, conn);
    }
}

/*
 *----------------------------------------------------------------------
 *
 * ConnClose --
 *
 *	Closes a client connection and frees its slot.
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Closes the channel, frees the buffers.
 *
 *----------------------------------------------------------------------
 */

static void
ConnClose(
    Conn *conn)
{
    TtoNet *net = conn->net;

    if (conn->phase == CONN_FREE) {
	return;
    }
    ConnSetMask(conn, 0);
    ConnSetTimer(conn, -1);
    if (conn->chan != NULL) {
	Tcl_Close(NULL, conn->chan);
    }
    if (conn->in != NULL) {
	ckfree(conn->in);
    }
    if (conn->out != NULL) {
	ckfree(conn->out);
    }
    memset(conn, 0, sizeof(Conn));
    conn->net = net;
    net->numConns--;
}

/*
 *----------------------------------------------------------------------
 *
 * ConnLinger --
 *
 *	After a whole reply went out: shuts the write side (the client sees
 *	the end of the reply at once) and keeps reading and discarding
 *	until the client closes or LINGER_MS pass.  Closing with unread
 *	input would make the kernel send a RST, which can destroy the reply
 *	before the client has read it.
 *
 *----------------------------------------------------------------------
 */

static void
ConnLinger(
    Conn *conn)
{
    if (conn->out != NULL) {
	ckfree(conn->out);
	conn->out = NULL;
    }
    (void) Tcl_CloseEx(NULL, conn->chan, TCL_CLOSE_WRITE);
    conn->phase = CONN_LINGERING;
    ConnSetMask(conn, TCL_READABLE);
    ConnSetTimer(conn, LINGER_MS);
}

/*
 *----------------------------------------------------------------------
 *
 * ConnFlush --
 *
 *	Sends as much of a queued reply as the socket takes now, straight
 *	to the socket (Tcl_WriteRaw: nothing is left in Tcl's buffers that a
 *	close would have to wait for), then lingers.
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Writes to the socket; may change the phase or close the
 *	connection.
 *
 *----------------------------------------------------------------------
 */

static void
ConnFlush(
    Conn *conn)
{
    while (conn->outDone < conn->outLen) {
	Tcl_Size n = Tcl_WriteRaw(conn->chan, conn->out + conn->outDone,
		(Tcl_Size) (conn->outLen - conn->outDone));

	if (n > 0) {
	    conn->outDone += (size_t) n;
	} else if (n == 0 || Tcl_GetErrno() == EAGAIN
		|| Tcl_GetErrno() == EWOULDBLOCK || Tcl_GetErrno() == EINTR) {
	    ConnSetMask(conn, TCL_WRITABLE);	/* wait for room */
	    return;
	} else {
	    ConnClose(conn);		/* the client is gone */
	    return;
	}
    }
    ConnLinger(conn);
}

/*
 *----------------------------------------------------------------------
 *
 * ConnQueue --
 *
 *	Queues a reply on a connection and starts sending it.  The request
 *	buffer is no longer needed.  The reply gets at least LINGER_MS to
 *	go out even when the request came just before the connection's
 *	deadline.
 *
 *----------------------------------------------------------------------
 */

static void
ConnQueue(
    Conn *conn,
    const char *data,
    size_t len)
{
    long long left = conn->accepted + TTO_CONN_DEADLINE_MS - TtoNowMs();

    if (conn->in != NULL) {
	ckfree(conn->in);
	conn->in = NULL;
	conn->inLen = 0;
    }
    conn->out = ckalloc(len ? len : 1);
    memcpy(conn->out, data, len);
    conn->outLen = len;
    conn->outDone = 0;
    conn->phase = CONN_SENDING;
    ConnSetMask(conn, 0);
    ConnSetTimer(conn, left > LINGER_MS ? left : LINGER_MS);
    ConnFlush(conn);
}

/*
 * Queues one of the listener's own error replies (400, 408, 431).
 */

static void
ConnReplyStatus(
    Conn *conn,
    int status,
    const char *reason,
    const char *html)
{
    Tcl_DString ds;

    Tcl_DStringInit(&ds);
    TtoHttpReply(&ds, status, reason, html);
    ConnQueue(conn, Tcl_DStringValue(&ds), (size_t) Tcl_DStringLength(&ds));
    Tcl_DStringFree(&ds);
}

/*
 *----------------------------------------------------------------------
 *
 * ConnHold --
 *
 *	Takes the redirect's connection out of the table and keeps it open
 *	as the held one, for TtoNetSendHeld, and ends serving.
 *
 *----------------------------------------------------------------------
 */

static void
ConnHold(
    Conn *conn)
{
    TtoNet *net = conn->net;

    if (net->held.chan != NULL) {
	Tcl_Close(NULL, net->held.chan);	/* cannot happen: serving ends */
    }
    ConnSetMask(conn, 0);
    net->held.chan = conn->chan;
    net->held.mask = 0;
    conn->chan = NULL;			/* ConnClose must not close it */
    ConnClose(conn);
    net->outcome = TTO_SERVE_HELD;
}

/*
 *----------------------------------------------------------------------
 *
 * ConnRead --
 *
 *	Reads what a client sent and, once its request head is complete,
 *	has the net's proc answer it.  A head that does not fit in
 *	TTO_MAX_REQUEST_HEAD bytes gets 431, one that is not HTTP 400.
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Reads from the channel, calls proc, queues a reply, holds the
 *	connection or closes it.
 *
 *----------------------------------------------------------------------
 */

static void
ConnRead(
    Conn *conn)
{
    TtoNet *net = conn->net;
    TtoHeadRequest req;
    TtoHeadStatus status;
    TtoConnAction action;
    Tcl_DString reply;
    size_t parseLen;
    Tcl_Size n;

    /*
     * The buffer holds one byte more than a head may have, so that "too
     * long" is seen as soon as that byte arrives (room is never 0 here).
     */

    n = Tcl_Read(conn->chan, conn->in + conn->inLen,
	    (Tcl_Size) (TTO_MAX_REQUEST_HEAD + 1 - conn->inLen));
    if (n < 0) {
	ConnClose(conn);
	return;
    }
    if (n == 0) {
	if (Tcl_Eof(conn->chan)) {
	    ConnClose(conn);		/* the client gave up */
	}
	return;
    }
    conn->inLen += (size_t) n;
    conn->in[conn->inLen] = '\0';

    /*
     * Only the first TTO_MAX_REQUEST_HEAD bytes may form the head; bytes
     * after a complete head (a body, a pipelined request) are ignored.
     */

    parseLen = conn->inLen;
    if (parseLen > TTO_MAX_REQUEST_HEAD) {
	parseLen = TTO_MAX_REQUEST_HEAD;
    }
    status = TtoHeadParse(conn->in, parseLen, &req);
    if (status != TTO_HEAD_OK) {
	TtoHeadRequestFree(&req);
	if (status == TTO_HEAD_BAD) {
	    ConnReplyStatus(conn, 400, "Bad Request", "<p>Bad request.</p>");
	} else if (conn->inLen > TTO_MAX_REQUEST_HEAD) {
	    ConnReplyStatus(conn, 431, "Request Header Fields Too Large",
		    "<p>Request header fields too large.</p>");
	}
	return;
    }

    Tcl_DStringInit(&reply);
    action = net->proc(net->clientData, &req, &reply);
    TtoHeadRequestFree(&req);
    if (action == TTO_CONN_HOLD) {
	Tcl_DStringFree(&reply);
	ConnHold(conn);
	return;
    }
    ConnQueue(conn, Tcl_DStringValue(&reply),
	    (size_t) Tcl_DStringLength(&reply));
    Tcl_DStringFree(&reply);
}

/*
 *----------------------------------------------------------------------
 *
 * ConnHandler --
 *
 *	The channel handler of a client connection.
 *
 *----------------------------------------------------------------------
 */

static void
ConnHandler(
    ClientData clientData,
    int mask)
{
    Conn *conn = clientData;
    char scratch[DRAIN_CHUNK];
    Tcl_Size n;

    switch (conn->phase) {
    case CONN_READING:
	if (conn->net->serving && (mask & TCL_READABLE)) {
	    ConnRead(conn);
	}
	break;
    case CONN_SENDING:
	if (mask & TCL_WRITABLE) {
	    ConnFlush(conn);
	}
	break;
    case CONN_LINGERING:
	if (mask & TCL_READABLE) {
	    n = Tcl_Read(conn->chan, scratch, (Tcl_Size) sizeof(scratch));
	    if (n < 0 || (n == 0 && Tcl_Eof(conn->chan))) {
		ConnClose(conn);	/* EOF: the reply arrived */
	    }
	}
	break;
    case CONN_FREE:
	break;
    }
}

/*
 *----------------------------------------------------------------------
 *
 * ConnExpire --
 *
 *	The timer of a connection whose time is up.  A client still sending
 *	its request gets 408 (queued like any reply, so it gets a bounded
 *	moment to go out); one that does not take its reply or does not
 *	close after it is closed.
 *
 *----------------------------------------------------------------------
 */

static void
ConnExpire(
    ClientData clientData)
{
    Conn *conn = clientData;

    conn->timer = NULL;			/* Tcl deletes a timer that fired */
    if (conn->phase == CONN_READING) {
	ConnReplyStatus(conn, 408, "Request Timeout",
		"<p>Request timeout.</p>");
    } else {
	ConnClose(conn);
    }
}

/*
 *----------------------------------------------------------------------
 *
 * EvictableConn --
 *
 *	With every slot taken, the connection that gives its slot to a new
 *	client (see the policy at the top): one lingering after its reply;
 *	else the oldest that has not completed its request head; else the
 *	oldest whose reply is still going out to a client that does not
 *	read.
 *
 * Results:
 *	The slot's index.
 *
 *----------------------------------------------------------------------
 */

static int
EvictableConn(
    TtoNet *net)
{
    int i, reading = -1, sending = -1;

    for (i = 0; i < TTO_MAX_CONNECTIONS; i++) {
	Conn *conn = &net->conns[i];

	switch (conn->phase) {
	case CONN_LINGERING:
	    return i;
	case CONN_READING:
	    if (reading < 0 || conn->accepted < net->conns[reading].accepted) {
		reading = i;
	    }
	    break;
	case CONN_SENDING:
	    if (sending < 0 || conn->accepted < net->conns[sending].accepted) {
		sending = i;
	    }
	    break;
	case CONN_FREE:
	    break;
	}
    }

    return (reading >= 0) ? reading : sending;
}

/*
 *----------------------------------------------------------------------
 *
 * ConnAccept --
 *
 *	Tcl's accept callback of both server channels: gives the new client
 *	a slot (taking one from another client when all are in use) or,
 *	when serving is over, closes it at once.
 *
 *----------------------------------------------------------------------
 */

static void
ConnAccept(
    ClientData clientData,
    Tcl_Channel chan,
    char *host,
    int port)
{
    TtoNet *net = clientData;
    long long now = TtoNowMs();
    Conn *conn = NULL;
    int i, crowded = 0;

    (void) host;
    (void) port;
    if (!net->serving
	    || Tcl_SetChannelOption(NULL, chan, "-blocking", "0") != TCL_OK
	    || Tcl_SetChannelOption(NULL, chan, "-translation", "binary")
		!= TCL_OK) {
	Tcl_Close(NULL, chan);
	return;
    }
    if (net->numConns >= TTO_MAX_CONNECTIONS) {
	ConnClose(&net->conns[EvictableConn(net)]);
	crowded = 1;
    }
    for (i = 0; i < TTO_MAX_CONNECTIONS; i++) {
	if (net->conns[i].phase == CONN_FREE) {
	    conn = &net->conns[i];
	    break;
	}
    }
    conn->net = net;
    conn->chan = chan;
    conn->phase = CONN_READING;
    conn->accepted = now;
    conn->in = ckalloc(TTO_MAX_REQUEST_HEAD + 2);
    conn->inLen = 0;
    net->numConns++;
    ConnSetTimer(conn, TTO_CONN_DEADLINE_MS);

    /*
     * A browser sends its whole head with the connect, so it is usually
     * here already: read it now, and wait for the channel to become
     * readable only if more is to come.  That saves the flow a round trip
     * through the notifier (with Tcl 8.6 on Unix, a second thread) per
     * redirect.  Not while the table is full: then connections come
     * faster than they are served (an attack), and a read per newcomer,
     * most of them attackers, would only slow the accepting down (under
     * Wine, where every socket call goes through one server process,
     * measured: the redirect 2.9 s -> 3.6 s behind 500 slowloris
     * connections); the browser's head is read when it is readable.
     */

    if (!crowded) {
	ConnRead(conn);
    }
    if (conn->phase == CONN_READING) {
	ConnSetMask(conn, TCL_READABLE);
    }
}

/*
 *----------------------------------------------------------------------
 *
 * TtoNetServe --
 *
 *	Runs the worker's event loop: accepts clients, answers each complete
 *	request through proc, until proc holds one (the redirect),
 *	*cancelPtr becomes non-zero (the canceller calls TtoNetWake after
 *	setting it), or deadlineMs (a TtoNowMs() time; 0: none) passes.
 *
 * Results:
 *	TTO_SERVE_HELD, TTO_SERVE_CANCELLED or TTO_SERVE_TIMEOUT.
 *
 * Side effects:
 *	Calls proc.  Connections still open when it returns stay in the
 *	net until TtoNetCloseListeners or TtoNetClose.
 *
 *----------------------------------------------------------------------
 */

static void
ServeTimeout(
    ClientData clientData)
{
    TtoNet *net = clientData;

    if (net->outcome < 0) {
	net->outcome = TTO_SERVE_TIMEOUT;
    }
}

int
TtoNetServe(
    TtoNet *net,
    long long deadlineMs,
    TtoRequestProc *proc,
    void *clientData)
{
    Tcl_TimerToken timer = NULL;
    int outcome;

    net->proc = proc;
    net->clientData = clientData;
    net->outcome = -1;
    net->serving = 1;
    if (deadlineMs > 0) {
	long long left = deadlineMs - TtoNowMs();

	timer = Tcl_CreateTimerHandler(left > 0 ? (int) left : 0,
		ServeTimeout, net);
    }
    while (net->outcome < 0) {
	if (Cancelled(net)) {
	    net->outcome = TTO_SERVE_CANCELLED;
	    break;
	}
	Tcl_DoOneEvent(TCL_ALL_EVENTS);
    }
    if (timer != NULL && net->outcome != TTO_SERVE_TIMEOUT) {
	Tcl_DeleteTimerHandler(timer);
    }
    net->serving = 0;
    outcome = net->outcome;
    return outcome;
}

/*
 *----------------------------------------------------------------------
 *
 * HeldWait --
 *
 *	Waits in the event loop until the held connection is ready for
 *	mask, the time untilMs comes, or the flow is cancelled (a cancel or
 *	an exit must not wait for a slow browser).
 *
 * Results:
 *	1 ready, 0 timed out or cancelled.
 *
 *----------------------------------------------------------------------
 */

static void
HeldHandler(
    ClientData clientData,
    int mask)
{
    TtoNet *net = clientData;

    net->held.ready = 1;
    HeldSetMask(net, 0);		/* level-triggered: once is enough */
}

static void
HeldSetMask(
    TtoNet *net,
    int mask)
{
    if (net->held.mask == mask) {
	return;
    }
    if (net->held.mask != 0) {
	Tcl_DeleteChannelHandler(net->held.chan, HeldHandler, net);
    }
    net->held.mask = mask;
    if (mask != 0) {
	Tcl_CreateChannelHandler(net->held.chan, mask, HeldHandler, net);
    }
}

static void
Wakeup(
    ClientData clientData)
{
    *(int *) clientData = 1;
}

static int
HeldWait(
    TtoNet *net,
    int mask,
    long long untilMs)
{
    Tcl_TimerToken timer;
    long long left = untilMs - TtoNowMs();
    int expired = 0;

    net->held.ready = 0;
    HeldSetMask(net, mask);
    timer = Tcl_CreateTimerHandler(left > 0 ? (int) left : 0, Wakeup,
	    &expired);
    while (!net->held.ready && !expired && !Cancelled(net)) {
	Tcl_DoOneEvent(TCL_ALL_EVENTS);
    }
    if (!expired) {
	Tcl_DeleteTimerHandler(timer);
    }
    HeldSetMask(net, 0);
    return net->held.ready;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoNetSendHeld --
 *
 *	Sends the page to the held connection (the browser's redirect),
 *	spending at most timeoutMs on it, and shuts down the write side so
 *	that the browser sees the end of the page at once.  The connection
 *	stays open (see TtoNetFinishHeld): closing it now, with input the
 *	browser may still send unread, would make the kernel send a RST,
 *	and a RST can destroy the page on its way.  A cancel meanwhile ends
 *	the wait at once.
 *
 * Results:
 *	1 if the whole page was handed to the system, else 0 (the
 *	connection is closed then).
 *
 * Side effects:
 *	Writes to the held connection; no-op without one.
 *
 *----------------------------------------------------------------------
 */

int
TtoNetSendHeld(
    TtoNet *net,
    const char *data,
    size_t len,
    long timeoutMs)
{
    long long until;
    size_t done = 0;

    if (net == NULL || net->held.chan == NULL) {
	return 0;
    }
    until = TtoNowMs() + (timeoutMs > 0 ? timeoutMs : 0);
    while (done < len) {
	Tcl_Size n = Tcl_WriteRaw(net->held.chan, data + done,
		(Tcl_Size) (len - done));

	if (n > 0) {
	    done += (size_t) n;
	} else if (n == 0 || Tcl_GetErrno() == EAGAIN
		|| Tcl_GetErrno() == EWOULDBLOCK || Tcl_GetErrno() == EINTR) {
	    if (!HeldWait(net, TCL_WRITABLE, until)) {
		break;
	    }
	} else {
	    break;
	}
    }
    if (done < len) {
	Tcl_Close(NULL, net->held.chan);	/* timed out or gone */
	net->held.chan = NULL;
	return 0;
    }
    (void) Tcl_CloseEx(NULL, net->held.chan, TCL_CLOSE_WRITE);
    return 1;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoNetFinishHeld --
 *
 *	The graceful close of the held connection after its page: reads
 *	and discards whatever the client still sends until it closes, it
 *	has been silent for LINGER_MS, or LINGER_MAX_MS have passed, then
 *	closes.  A cancel ends the wait at once.
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Closes the held connection; no-op without one.
 *
 *----------------------------------------------------------------------
 */

void
TtoNetFinishHeld(
    TtoNet *net)
{
    char scratch[DRAIN_CHUNK];
    long long start, until;
    Tcl_Size n;

    if (net == NULL || net->held.chan == NULL) {
	return;
    }
    start = TtoNowMs();
    until = start + LINGER_MS;
    for (;;) {
	n = Tcl_Read(net->held.chan, scratch, (Tcl_Size) sizeof(scratch));
	if (n > 0) {
	    until = TtoNowMs() + LINGER_MS;
	    if (until > start + LINGER_MAX_MS) {
		until = start + LINGER_MAX_MS;
	    }
	    continue;
	}
	if (n < 0 || Tcl_Eof(net->held.chan)) {
	    break;			/* EOF or error */
	}
	if (!HeldWait(net, TCL_READABLE, until)) {
	    break;
	}
    }
    Tcl_Close(NULL, net->held.chan);
    net->held.chan = NULL;
}

/*
 *----------------------------------------------------------------------
 *
 * NotifierSync --
 *
 *	Makes sure that the notifier no longer watches sockets this thread
 *	has closed.  Tcl 8.6's threaded Unix notifier watches every thread's
 *	descriptors in one select() of its own thread, and a select() keeps
 *	the sockets it waits on alive until it returns: a closed listener
 *	would hold its port until the notifier thread next goes round, and
 *	a startAuth right after a cancel could find the port taken.  A
 *	polling pass of the event loop waits until the notifier has gone
 *	through select() with this thread's current (emptied) set; other
 *	notifiers release closed sockets at once, and the pass costs them
 *	nothing.
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Services events already pending in this thread (there are none but
 *	left-over wake events once the net's handlers are gone).
 *
 *----------------------------------------------------------------------
 */

static void
NotifierSync(void)
{
    int i;

    for (i = 0; i < 100; i++) {
	if (!Tcl_DoOneEvent(TCL_ALL_EVENTS | TCL_DONT_WAIT)) {
	    break;
	}
    }
}

/*
 *----------------------------------------------------------------------
 *
 * TtoNetCloseListeners --
 *
 *	Closes both listening channels and every connection but the held
 *	one: from here on nothing new is accepted.  The port can be bound
 *	again once TtoNetSettle (or TtoNetClose) has run.
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Closes channels.
 *
 *----------------------------------------------------------------------
 */

void
TtoNetCloseListeners(
    TtoNet *net)
{
    int i, closed = 0;

    if (net == NULL) {
	return;
    }
    for (i = 0; i < 2; i++) {
	if (net->listen[i] != NULL) {
	    Tcl_Close(NULL, net->listen[i]);
	    net->listen[i] = NULL;
	    closed = 1;
	}
    }
    for (i = 0; i < TTO_MAX_CONNECTIONS; i++) {
	ConnClose(&net->conns[i]);
    }
    net->unsettled |= closed;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoNetSettle --
 *
 *	Waits until the listeners TtoNetCloseListeners closed have let go of
 *	the port (NotifierSync), so that the port can be bound again.  A
 *	flow calls it once its browser has the reply, just before the flow
 *	is published as ended: the wait overlaps the browser's own work
 *	instead of delaying the token exchange.
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	See NotifierSync.
 *
 *----------------------------------------------------------------------
 */

void
TtoNetSettle(
    TtoNet *net)
{
    if (net != NULL && net->unsettled) {
	net->unsettled = 0;
	NotifierSync();
    }
}

/*
 *----------------------------------------------------------------------
 *
 * TtoNetClose --
 *
 *	Closes the listener: the listening channels and every connection,
 *	the held one included.  The port can be bound again at once: what
 *	stays behind are connections in TIME_WAIT, which SO_REUSEADDR lets
 *	a new listener ignore.
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Frees net.
 *
 *----------------------------------------------------------------------
 */

void
TtoNetClose(
    TtoNet *net)
{
    if (net == NULL) {
	return;
    }
    TtoNetCloseListeners(net);
    TtoNetSettle(net);
    if (net->held.chan != NULL) {
	HeldSetMask(net, 0);
	Tcl_Close(NULL, net->held.chan);
    }
    ckfree((char *) net);
}
