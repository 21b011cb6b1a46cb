/*
 * ttoauth2UnixNet.c --
 *
 *	The loopback redirect listener on POSIX systems.  One listening
 *	socket on 127.0.0.1 and one on ::1 (same port), a wake pipe, and a
 *	small table of client connections, all served by a single thread
 *	(the flow thread) with poll().  Every socket is non-blocking, so no
 *	client, however slow or hostile, can stall the loop; every
 *	connection has a deadline, so none can hold a slot for long.
 *
 *	The HTTP side (parsing a head, building a reply) lives in
 *	generic/ttoauth2Http.c; this file only moves bytes.
 */

#ifndef _GNU_SOURCE
#   define _GNU_SOURCE		/* accept4, pipe2 */
#endif

#include "ttoauth2Int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

/*
 * Where the system can create descriptors close-on-exec and non-blocking
 * in one call (Linux, the BSDs, illumos), do so: a launchBrowser running
 * in another thread must never inherit a listener.  Elsewhere (macOS) set
 * the flags right after creation.
 */

#if defined(SOCK_CLOEXEC) && defined(SOCK_NONBLOCK)
#   define TTO_ATOMIC_CLOEXEC 1
#endif

/*
 * MSG_NOSIGNAL keeps a write to a closed connection from raising SIGPIPE
 * in a process that did not ask for it.  Systems without it have
 * SO_NOSIGPIPE, set on every connection instead.
 */

#ifndef MSG_NOSIGNAL
#   define MSG_NOSIGNAL 0
#endif

#define LINGER_MS	  1000	/* after a reply: silence before we close */
#define LINGER_MAX_MS	  10000	/* ... and the longest graceful close */
#define POLL_CAP_MS	  1000	/* longest single poll() */
#define SILENT_EVICT_MS	  250	/* silent this long: evictable when full */
#define EPHEMERAL_TRIES	  20	/* port 0: new OS-chosen ports to try */
#define ACCEPT_PAUSE_MS	  100	/* stop accepting after EMFILE and such */
#define LISTEN_BACKLOG	  64
#define DRAIN_CHUNK	  4096

typedef enum {
    CONN_FREE = 0,		/* slot unused */
    CONN_READING,		/* collecting a request head */
    CONN_SENDING,		/* a reply is queued in out */
    CONN_LINGERING		/* reply sent, write side shut: wait for EOF */
} ConnPhase;

typedef struct {
    int fd;
    ConnPhase phase;
    long long deadline;		/* TtoNowMs() time the phase ends */
    char *in;			/* TTO_MAX_REQUEST_HEAD + 2 bytes */
    size_t inLen;
    char *out;			/* the reply being sent */
    size_t outLen;
    size_t outDone;
} Conn;

struct TtoNet {
    int listenFd[2];		/* 127.0.0.1, ::1 (-1: none) */
    int wakeRead;		/* the worker's wake pipe (borrowed) or -1 */
    int wakeWrite;
    int port;
    int heldFd;			/* the redirect's connection, or -1 */
    long long acceptPauseUntil;	/* 0, or no accept() before this time */
    int numConns;		/* slots not CONN_FREE */
    Conn conns[TTO_MAX_CONNECTIONS];
};

/*
 * What each entry of the poll() array stands for.
 */

#define POLL_WAKE	(-1)
#define POLL_LISTEN	(-2)

typedef enum {
    EVENT_CONTINUE = 0,
    EVENT_HELD
} EventResult;

static int	BindLoopback(TtoNet *net, int port, int want4,
		    int *useV6Ptr, int *errnoPtr, int *parkPtr);
static int	ListenOn(int family, int *portPtr, int *errnoPtr);
static int	CancelRequested(volatile int *cancelPtr);
static int	EvictableConn(TtoNet *net, long long now);
static void	CloseFd(int fd);
static void	ConnClose(TtoNet *net, Conn *conn);
static EventResult ConnEvent(TtoNet *net, Conn *conn, short revents,
		    TtoRequestProc *proc, void *clientData);
static void	ConnFlush(TtoNet *net, Conn *conn);
static void	ConnHold(TtoNet *net, Conn *conn);
static void	ConnQueue(TtoNet *net, Conn *conn, const char *data,
		    size_t len);
static EventResult ConnRead(TtoNet *net, Conn *conn,
		    TtoRequestProc *proc, void *clientData);
static void	ConnReplyStatus(TtoNet *net, Conn *conn, int status,
		    const char *reason, const char *html);
static void	DrainPipe(int fd);
static void	ExpireConns(TtoNet *net, long long now);
static void	ListenerAccept(TtoNet *net, int listenFd, long long now);
static int	OpenListener(int family, int port, int *errnoPtr);
static int	SetDescriptorFlags(int fd);
static int	WaitFd(int fd, short events, long long untilMs,
			    int wakeFd);

/*
 *----------------------------------------------------------------------
 *
 * CloseFd --
 *
 *	close() that keeps errno, so that error paths can close what they
 *	opened and still report the failure that made them give up.
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Closes fd when it is not -1.
 *
 *----------------------------------------------------------------------
 */

static void
CloseFd(
    int fd)
{
    int saved = errno;

    if (fd >= 0) {
	/*
	 * Never retry close() on EINTR: on Linux the descriptor is gone
	 * either way, and a retry could close one another thread just
	 * opened.
	 */

	close(fd);
    }
    errno = saved;
}

/*
 *----------------------------------------------------------------------
 *
 * CancelRequested --
 *
 *	Reads the cancel flag another thread sets.  An atomic load where
 *	the compiler has one (so that ThreadSanitizer sees the intended
 *	cross-thread read, provided the writer stores atomically too);
 *	elsewhere the volatile read the flag's declaration promises.
 *
 * Results:
 *	Non-zero when cancelling was asked for.
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

static int
CancelRequested(
    volatile int *cancelPtr)
{
    if (cancelPtr == NULL) {
	return 0;
    }
#if defined(__GNUC__) || defined(__clang__)
    return __atomic_load_n(cancelPtr, __ATOMIC_ACQUIRE);
#else
    return *cancelPtr;
#endif
}

/*
 *----------------------------------------------------------------------
 *
 * SetDescriptorFlags --
 *
 *	Makes a descriptor close-on-exec and non-blocking where the system
 *	could not do it at creation, and keeps writes to a closed
 *	connection from raising SIGPIPE where MSG_NOSIGNAL does not exist.
 *
 * Results:
 *	0, or -1 with errno set.
 *
 * Side effects:
 *	Changes the descriptor's flags.
 *
 *----------------------------------------------------------------------
 */

static int
SetDescriptorFlags(
    int fd)
{
#ifndef TTO_ATOMIC_CLOEXEC
    int flags;

    if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
	return -1;
    }
    flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
	return -1;
    }
#endif
#ifdef SO_NOSIGPIPE
    {
	int on = 1;

	/* Fails harmlessly on a pipe. */
	(void) setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &on, sizeof(on));
    }
#endif
    (void) fd;
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoWakeNew, TtoWakeFree, TtoWakeDrain --
 *
 *	The wake pipe of a flow worker: TtoNetWake writes to it so that a
 *	poll() of the flow the worker runs returns at once (a pipe rather
 *	than an eventfd, so the code stays POSIX).  A worker keeps its pipe
 *	for all its flows (TtoNetSetWake lends it to each), which saves
 *	making and closing one per flow.  Both ends are non-blocking: a
 *	wake never blocks its caller, and a drain never blocks.
 *
 * Results:
 *	TtoWakeNew: the pipe, or NULL with *errnoPtr set.
 *
 *----------------------------------------------------------------------
 */

struct TtoWake {
    int readFd;
    int writeFd;
};

TtoWake *
TtoWakeNew(
    int *errnoPtr)
{
    TtoWake *wake;
    int fds[2];

#ifdef TTO_ATOMIC_CLOEXEC
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) {
	*errnoPtr = errno;
	return NULL;
    }
#else
    if (pipe(fds) < 0) {
	*errnoPtr = errno;
	return NULL;
    }
    if (SetDescriptorFlags(fds[0]) < 0 || SetDescriptorFlags(fds[1]) < 0) {
	*errnoPtr = errno;
	CloseFd(fds[0]);
	CloseFd(fds[1]);
	return NULL;
    }
#endif
    wake = (TtoWake *) ckalloc(sizeof(TtoWake));
    wake->readFd = fds[0];
    wake->writeFd = fds[1];
    return wake;
}

void
TtoWakeFree(
    TtoWake *wake)
{
    if (wake != NULL) {
	CloseFd(wake->readFd);
	CloseFd(wake->writeFd);
	ckfree((char *) wake);
    }
}

void
TtoWakeDrain(
    TtoWake *wake)
{
    if (wake != NULL) {
	DrainPipe(wake->readFd);
    }
}

/*
 * Lends a worker's wake pipe to the flow's net (before the worker gets
 * the flow); TtoNetClose leaves it open.
 */

void
TtoNetSetWake(
    TtoNet *net,
    TtoWake *wake)
{
    net->wakeRead = wake->readFd;
    net->wakeWrite = wake->writeFd;
}

/*
 *----------------------------------------------------------------------
 *
 * OpenListener --
 *
 *	Creates a TCP socket bound to the loopback address of one family
 *	(127.0.0.1 or ::1) on the given port (0: the system chooses).  The
 *	socket is not yet listening.
 *
 *	SO_REUSEADDR is set on purpose.  On Linux (and the BSDs) it only
 *	lets the bind succeed while connections of an earlier listener on
 *	this port are still in TIME_WAIT, which is what lets a script run
 *	startAuth/cancel a thousand times on one fixed port.  It does NOT
 *	let two sockets listen on the same address and port: bind() or,
 *	when two non-listening sockets race, listen() fails with
 *	EADDRINUSE.  SO_REUSEPORT, which would allow that, is never set.
 *
 *	IPV6_V6ONLY keeps the ::1 socket from being a dual-stack socket,
 *	so its port is independent of the 127.0.0.1 one.
 *
 * Results:
 *	The descriptor, or -1 with *errnoPtr set.
 *
 * Side effects:
 *	Opens a socket.
 *
 *----------------------------------------------------------------------
 */

static int
OpenListener(
    int family,
    int port,
    int *errnoPtr)
{
    int fd, on = 1;
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    struct sockaddr *sa;
    socklen_t saLen;

#ifdef TTO_ATOMIC_CLOEXEC
    fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
#else
    fd = socket(family, SOCK_STREAM, 0);
#endif
    if (fd < 0) {
	*errnoPtr = errno;
	return -1;
    }
    if (SetDescriptorFlags(fd) < 0) {
	goto error;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0) {
	goto error;
    }
    if (family == AF_INET6) {
	if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) < 0) {
	    goto error;
	}
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons((unsigned short) port);
	sin6.sin6_addr = in6addr_loopback;
	sa = (struct sockaddr *) &sin6;
	saLen = sizeof(sin6);
    } else {
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short) port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa = (struct sockaddr *) &sin;
	saLen = sizeof(sin);
    }
    if (bind(fd, sa, saLen) < 0) {
	goto error;
    }
    return fd;

  error:
    *errnoPtr = errno;
    CloseFd(fd);
    return -1;
}

/*
 *----------------------------------------------------------------------
 *
 * BindLoopback --
 *
 *	Makes net listen on 127.0.0.1 (when want4) and on ::1 (when
 *	*useV6Ptr), both on one port.  port 0 lets the system choose the
 *	port on the first address; the second must then be free on that
 *	same port.  The first socket listens before the second is bound
 *	so that no other process can take the chosen port in between.
 *
 * Results:
 *	0 with net->listenFd[] and net->port set, or -1 with *errnoPtr set
 *	(EADDRINUSE: the port is taken on one of the addresses) and
 *	nothing left open, except: when parkPtr is not NULL and the port
 *	was free on 127.0.0.1 but taken on ::1, the IPv4 socket is left
 *	listening in *parkPtr, for the caller to hold while it asks the
 *	system for another port (so it cannot be handed the same one
 *	again) and close afterwards.  With want4, *useV6Ptr is cleared when
 *	the host turns out to have no IPv6 loopback (EAFNOSUPPORT,
 *	EADDRNOTAVAIL): the caller then goes on with IPv4 only.
 *
 * Side effects:
 *	Opens up to two sockets.
 *
 *----------------------------------------------------------------------
 */

static int
ListenOn(
    int family,
    int *portPtr,
    int *errnoPtr)
{
    int fd;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    fd = OpenListener(family, *portPtr, errnoPtr);
    if (fd < 0) {
	return -1;
    }
    if (listen(fd, LISTEN_BACKLOG) < 0) {
	goto error;
    }
    if (*portPtr == 0) {
	if (getsockname(fd, (struct sockaddr *) &ss, &len) < 0) {
	    goto error;
	}
	*portPtr = (family == AF_INET)
		? ntohs(((struct sockaddr_in *) &ss)->sin_port)
		: ntohs(((struct sockaddr_in6 *) &ss)->sin6_port);
    }
    return fd;

  error:
    *errnoPtr = errno;
    CloseFd(fd);
    return -1;
}

static int
BindLoopback(
    TtoNet *net,
    int port,
    int want4,
    int *useV6Ptr,
    int *errnoPtr,
    int *parkPtr)
{
    int fd4 = -1, fd6 = -1;

    if (want4) {
	fd4 = ListenOn(AF_INET, &port, errnoPtr);
	if (fd4 < 0) {
	    return -1;
	}
    }
    if (*useV6Ptr) {
	int err6 = 0;

	fd6 = ListenOn(AF_INET6, &port, &err6);
	if (fd6 < 0) {
	    if (want4 && (err6 == EAFNOSUPPORT || err6 == EADDRNOTAVAIL
		    || err6 == EPROTONOSUPPORT)) {
		*useV6Ptr = 0;		/* no IPv6 here: IPv4 only */
	    } else {
		if (err6 == EADDRINUSE && parkPtr != NULL && fd4 >= 0) {
		    *parkPtr = fd4;
		} else {
		    CloseFd(fd4);
		}
		*errnoPtr = err6;
		return -1;
	    }
	}
    }
    net->listenFd[0] = fd4;
    net->listenFd[1] = fd6;
    net->port = port;
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoNetOpen --
 *
 *	Opens the redirect listener on the loopback addresses of families
 *	(TTO_NET_V4: 127.0.0.1, TTO_NET_V6: ::1; with both, ::1 only where
 *	the host has IPv6), on one port, never any other address.  portFrom
 *	0 takes a port the system chooses (retrying when ::1 is taken on
 *	it); with portTo > portFrom the first port of the range free on
 *	every address wins; otherwise only portFrom is tried.
 *
 * Results:
 *	0 with *netPtr and *portPtr set, or -1 with *errnoPtr set:
 *	EADDRINUSE when the port (every port of the range) is taken,
 *	EINVAL for a port outside 0..65535, else the system's reason.
 *
 * Side effects:
 *	Opens the listening sockets.
 *
 *----------------------------------------------------------------------
 */

int
TtoNetOpen(
    int families,
    int portFrom,
    int portTo,
    TtoNet **netPtr,
    int *portPtr,
    int *errnoPtr)
{
    TtoNet *net;
    int parked[EPHEMERAL_TRIES];
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
    net->listenFd[0] = net->listenFd[1] = -1;
    net->wakeRead = net->wakeWrite = -1;
    net->heldFd = -1;
    for (i = 0; i < TTO_MAX_CONNECTIONS; i++) {
	net->conns[i].fd = -1;
    }

    if (portFrom == 0) {
	/*
	 * A port the system chose on 127.0.0.1 that turns out to be
	 * taken on ::1 stays parked (bound) until the end, so the next
	 * request cannot be answered with the same port.
	 */

	int rc = -1;

	for (i = 0; i < EPHEMERAL_TRIES; i++) {
	    int park = -1;

	    rc = BindLoopback(net, 0, want4, &useV6, &err, &park);
	    if (park >= 0) {
		parked[numParked++] = park;
	    }
	    if (rc == 0 || err != EADDRINUSE) {
		break;
	    }
	}
	while (numParked > 0) {
	    CloseFd(parked[--numParked]);
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
 * TtoNetWake --
 *
 *	Makes a poll() in TtoNetServe return now.  Any thread may call it
 *	while the net exists (the caller sets the cancel flag first).
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Writes a byte to the wake pipe.  A full pipe (EAGAIN) already
 *	means a wake is pending, so that is ignored.
 *
 *----------------------------------------------------------------------
 */

void
TtoNetWake(
    TtoNet *net)
{
    int saved = errno;
    char byte = 1;

    if (net != NULL && net->wakeWrite >= 0) {
	while (write(net->wakeWrite, &byte, 1) < 0 && errno == EINTR) {
	    /* retry */
	}
    }
    errno = saved;
}

/*
 *----------------------------------------------------------------------
 *
 * DrainPipe --
 *
 *	Empties the wake pipe, so that the next poll() sleeps again.
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Reads the pipe until it would block.
 *
 *----------------------------------------------------------------------
 */

static void
DrainPipe(
    int fd)
{
    char buf[64];
    ssize_t n;

    do {
	n = read(fd, buf, sizeof(buf));
    } while (n > 0 || (n < 0 && errno == EINTR));
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
 *	Closes the descriptor, frees the buffers.
 *
 *----------------------------------------------------------------------
 */

static void
ConnClose(
    TtoNet *net,
    Conn *conn)
{
    if (conn->phase == CONN_FREE) {
	return;
    }
    CloseFd(conn->fd);
    if (conn->in != NULL) {
	ckfree(conn->in);
    }
    if (conn->out != NULL) {
	ckfree(conn->out);
    }
    memset(conn, 0, sizeof(Conn));
    conn->fd = -1;
    conn->phase = CONN_FREE;
    net->numConns--;
}

/*
 *----------------------------------------------------------------------
 *
 * ConnFlush --
 *
 *	Sends as much of a queued reply as the socket takes now.  Once all
 *	of it is out, the write side is shut down and the connection
 *	lingers, reading and discarding, until the client closes: closing
 *	with unread input would make the kernel send a RST, which can
 *	destroy the reply before the client has read it.
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
    TtoNet *net,
    Conn *conn)
{
    while (conn->outDone < conn->outLen) {
	ssize_t n = send(conn->fd, conn->out + conn->outDone,
		conn->outLen - conn->outDone, MSG_NOSIGNAL);

	if (n > 0) {
	    conn->outDone += (size_t) n;
	} else if (n < 0 && errno == EINTR) {
	    continue;
	} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
	    return;			/* poll for POLLOUT */
	} else {
	    ConnClose(net, conn);	/* the client is gone */
	    return;
	}
    }
    ckfree(conn->out);
    conn->out = NULL;
    (void) shutdown(conn->fd, SHUT_WR);
    conn->phase = CONN_LINGERING;
    conn->deadline = TtoNowMs() + LINGER_MS;
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
 * Results:
 *	None.
 *
 * Side effects:
 *	See ConnFlush.
 *
 *----------------------------------------------------------------------
 */

static void
ConnQueue(
    TtoNet *net,
    Conn *conn,
    const char *data,
    size_t len)
{
    long long minDeadline = TtoNowMs() + LINGER_MS;

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
    if (conn->deadline < minDeadline) {
	conn->deadline = minDeadline;
    }
    ConnFlush(net, conn);
}

/*
 *----------------------------------------------------------------------
 *
 * ConnReplyStatus --
 *
 *	Queues one of the listener's own error replies (400, 408, 431).
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	See ConnQueue.
 *
 *----------------------------------------------------------------------
 */

static void
ConnReplyStatus(
    TtoNet *net,
    Conn *conn,
    int status,
    const char *reason,
    const char *html)
{
    Tcl_DString ds;

    Tcl_DStringInit(&ds);
    TtoHttpReply(&ds, status, reason, html);
    ConnQueue(net, conn, Tcl_DStringValue(&ds),
	    (size_t) Tcl_DStringLength(&ds));
    Tcl_DStringFree(&ds);
}

/*
 *----------------------------------------------------------------------
 *
 * ConnHold --
 *
 *	Takes a connection out of the table and keeps it open as the held
 *	one, for TtoNetSendHeld.  Only one connection is ever held: should
 *	a second one be held before the first was answered, the first is
 *	closed.
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Sets net->heldFd; frees the slot.
 *
 *----------------------------------------------------------------------
 */

static void
ConnHold(
    TtoNet *net,
    Conn *conn)
{
    CloseFd(net->heldFd);
    net->heldFd = conn->fd;
    conn->fd = -1;			/* ConnClose must not close it */
    ConnClose(net, conn);
}

/*
 *----------------------------------------------------------------------
 *
 * ConnRead --
 *
 *	Reads what a client sent and, once its request head is complete,
 *	has proc answer it.  A head that does not fit in
 *	TTO_MAX_REQUEST_HEAD bytes gets 431, one that is not HTTP 400.
 *
 * Results:
 *	EVENT_HELD when proc held the connection, else EVENT_CONTINUE.
 *
 * Side effects:
 *	Reads from the socket, calls proc, queues a reply or closes.
 *
 *----------------------------------------------------------------------
 */

static EventResult
ConnRead(
    TtoNet *net,
    Conn *conn,
    TtoRequestProc *proc,
    void *clientData)
{
    TtoHttpRequest req;
    TtoHeadStatus status;
    TtoConnAction action;
    Tcl_DString reply;
    size_t parseLen;
    ssize_t n;

    /*
     * The buffer holds one byte more than a head may have, so that "too
     * long" is seen as soon as that byte arrives (room is never 0 here).
     */

    do {
	n = recv(conn->fd, conn->in + conn->inLen,
		TTO_MAX_REQUEST_HEAD + 1 - conn->inLen, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
	if (errno != EAGAIN && errno != EWOULDBLOCK) {
	    ConnClose(net, conn);
	}
	return EVENT_CONTINUE;
    }
    if (n == 0) {
	ConnClose(net, conn);		/* the client gave up */
	return EVENT_CONTINUE;
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
    status = TtoHttpParseHead(conn->in, parseLen, &req);
    if (status != TTO_HEAD_OK) {
	TtoHttpRequestFree(&req);
	if (status == TTO_HEAD_BAD) {
	    ConnReplyStatus(net, conn, 400, "Bad Request",
		    "<p>Bad request.</p>");
	} else if (conn->inLen > TTO_MAX_REQUEST_HEAD) {
	    ConnReplyStatus(net, conn, 431,
		    "Request Header Fields Too Large",
		    "<p>Request header fields too large.</p>");
	}
	return EVENT_CONTINUE;
    }

    Tcl_DStringInit(&reply);
    action = proc(clientData, &req, &reply);
    TtoHttpRequestFree(&req);
    if (action == TTO_CONN_HOLD) {
	Tcl_DStringFree(&reply);
	ConnHold(net, conn);
	return EVENT_HELD;
    }
    ConnQueue(net, conn, Tcl_DStringValue(&reply),
	    (size_t) Tcl_DStringLength(&reply));
    Tcl_DStringFree(&reply);
    return EVENT_CONTINUE;
}

/*
 *----------------------------------------------------------------------
 *
 * ConnEvent --
 *
 *	Handles what poll() reported for one connection.
 *
 * Results:
 *	EVENT_HELD when the connection was held, else EVENT_CONTINUE.
 *
 * Side effects:
 *	Reads, writes, or closes the connection.
 *
 *----------------------------------------------------------------------
 */

static EventResult
ConnEvent(
    TtoNet *net,
    Conn *conn,
    short revents,
    TtoRequestProc *proc,
    void *clientData)
{
    char scratch[DRAIN_CHUNK];
    ssize_t n;

    if (revents & (POLLERR | POLLNVAL)) {
	ConnClose(net, conn);
	return EVENT_CONTINUE;
    }
    switch (conn->phase) {
    case CONN_READING:
	/* POLLHUP: read what is left, then see EOF. */
	if (revents & (POLLIN | POLLHUP)) {
	    return ConnRead(net, conn, proc, clientData);
	}
	break;
    case CONN_SENDING:
	if (revents & POLLOUT) {
	    ConnFlush(net, conn);
	} else if (revents & POLLHUP) {
	    ConnClose(net, conn);
	}
	break;
    case CONN_LINGERING:
	if (revents & (POLLIN | POLLHUP)) {
	    do {
		n = recv(conn->fd, scratch, sizeof(scratch), 0);
	    } while (n < 0 && errno == EINTR);
	    if (n == 0 || (n < 0 && errno != EAGAIN
		    && errno != EWOULDBLOCK)) {
		ConnClose(net, conn);	/* EOF: the reply arrived */
	    }
	}
	break;
    case CONN_FREE:
	break;
    }
    return EVENT_CONTINUE;
}

/*
 *----------------------------------------------------------------------
 *
 * ExpireConns --
 *
 *	Ends the connections whose deadline has passed.  A client still
 *	sending its request gets 408 (queued like any reply, so it gets a
 *	bounded moment to go out); one that does not take its reply or
 *	does not close after it is closed.
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	May queue replies and close connections.
 *
 *----------------------------------------------------------------------
 */

static void
ExpireConns(
    TtoNet *net,
    long long now)
{
    int i;

    for (i = 0; i < TTO_MAX_CONNECTIONS; i++) {
	Conn *conn = &net->conns[i];

	if (conn->phase == CONN_FREE || conn->deadline > now) {
	    continue;
	}
	if (conn->phase == CONN_READING) {
	    ConnReplyStatus(net, conn, 408, "Request Timeout",
		    "<p>Request timeout.</p>");
	} else {
	    ConnClose(net, conn);
	}
    }
}

/*
 *----------------------------------------------------------------------
 *
 * ListenerAccept --
 *
 *	Accepts pending connections on a listening socket while slots are
 *	free.  When the process is out of descriptors (or the system out
 *	of buffers), accepting pauses for ACCEPT_PAUSE_MS instead of
 *	spinning on a listener that stays readable.
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Fills free slots with new connections.
 *
 *----------------------------------------------------------------------
 */

/*
 *----------------------------------------------------------------------
 *
 * EvictableConn --
 *
 *	With every slot taken, the connection that can give its slot to a
 *	new client: one lingering after its reply, else the oldest that has
 *	sent nothing at all for SILENT_EVICT_MS.  A browser sends its
 *	request the moment it connects, so a silent connection is a
 *	speculative preconnect or someone holding slots to keep the real
 *	redirect out; letting those go bounds that delay by SILENT_EVICT_MS
 *	instead of the whole connection deadline.  A client that has sent
 *	part of a request is never evicted.
 *
 * Results:
 *	The slot's index, or -1.
 *
 *----------------------------------------------------------------------
 */

static int
EvictableConn(
    TtoNet *net,
    long long now)
{
    int i, best = -1;

    for (i = 0; i < TTO_MAX_CONNECTIONS; i++) {
	Conn *conn = &net->conns[i];

	if (conn->phase == CONN_LINGERING) {
	    return i;
	}
	if (conn->phase == CONN_READING && conn->inLen == 0
		&& now - (conn->deadline - TTO_CONN_DEADLINE_MS)
		>= SILENT_EVICT_MS
		&& (best < 0 || conn->deadline < net->conns[best].deadline)) {
	    best = i;
	}
    }
    return best;
}

static void
ListenerAccept(
    TtoNet *net,
    int listenFd,
    long long now)
{
    int i, fd;

    for (;;) {
	Conn *conn = NULL;
	int evict = -1;

	if (net->numConns >= TTO_MAX_CONNECTIONS) {
	    evict = EvictableConn(net, now);
	    if (evict < 0) {
		return;			/* the rest wait in the backlog */
	    }
	}

#ifdef TTO_ATOMIC_CLOEXEC
	fd = accept4(listenFd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
#else
	fd = accept(listenFd, NULL, NULL);
#endif
	if (fd < 0) {
	    if (errno == EINTR || errno == ECONNABORTED) {
		continue;
	    }
	    if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS
		    || errno == ENOMEM) {
		net->acceptPauseUntil = now + ACCEPT_PAUSE_MS;
	    }
	    return;			/* EAGAIN: none left */
	}
	if (SetDescriptorFlags(fd) < 0) {
	    CloseFd(fd);
	    continue;
	}
	if (evict >= 0) {
	    ConnClose(net, &net->conns[evict]);
	}
	for (i = 0; i < TTO_MAX_CONNECTIONS; i++) {
	    if (net->conns[i].phase == CONN_FREE) {
		conn = &net->conns[i];
		break;
	    }
	}
	conn->fd = fd;
	conn->phase = CONN_READING;
	conn->deadline = now + TTO_CONN_DEADLINE_MS;
	conn->in = ckalloc(TTO_MAX_REQUEST_HEAD + 2);
	conn->inLen = 0;
	conn->out = NULL;
	conn->outLen = conn->outDone = 0;
	net->numConns++;
    }
}

/*
 *----------------------------------------------------------------------
 *
 * TtoNetServe --
 *
 *	The serve loop of the flow thread: accepts clients, answers each
 *	complete request through proc, until proc holds one (the
 *	redirect), *cancelPtr becomes non-zero (the waker calls
 *	TtoNetWake after setting it), or deadlineMs (a TtoNowMs() time; 0:
 *	none) passes.
 *
 *	With TTO_MAX_CONNECTIONS clients open, a new client takes the slot
 *	of one that lingers after its reply or has been silent for
 *	SILENT_EVICT_MS (EvictableConn); when there is none, the listeners
 *	are left out of the poll and further clients wait in the kernel's
 *	backlog.  A client that has sent part of a request keeps its slot,
 *	so a flood cannot push out the browser's own redirect request.
 *
 * Results:
 *	TTO_SERVE_HELD, TTO_SERVE_CANCELLED, TTO_SERVE_TIMEOUT, or
 *	TTO_SERVE_ERROR when poll() fails.
 *
 * Side effects:
 *	Calls proc.  Connections still open when it returns stay in the
 *	net (a later call goes on serving them; TtoNetClose closes them).
 *
 *----------------------------------------------------------------------
 */

int
TtoNetServe(
    TtoNet *net,
    long long deadlineMs,
    volatile int *cancelPtr,
    TtoRequestProc *proc,
    void *clientData)
{
    struct pollfd pfd[3 + TTO_MAX_CONNECTIONS];
    int what[3 + TTO_MAX_CONNECTIONS];	/* slot, POLL_WAKE, POLL_LISTEN */
    int i, n, rc;
    long long now, timeout;

    for (;;) {
	if (CancelRequested(cancelPtr)) {
	    return TTO_SERVE_CANCELLED;
	}
	now = TtoNowMs();
	ExpireConns(net, now);
	if (deadlineMs > 0 && now >= deadlineMs) {
	    return TTO_SERVE_TIMEOUT;
	}

	/*
	 * The poll set: the wake pipe, the connections, and the
	 * listeners when a slot is free.  The timeout ends at the first
	 * deadline (the serve's, a connection's, the end of an accept
	 * pause), capped so that a missed wake costs at most a second.
	 */

	n = 0;
	timeout = POLL_CAP_MS;
	pfd[n].fd = net->wakeRead;
	pfd[n].events = POLLIN;
	what[n++] = POLL_WAKE;
	for (i = 0; i < TTO_MAX_CONNECTIONS; i++) {
	    Conn *conn = &net->conns[i];

	    if (conn->phase == CONN_FREE) {
		continue;
	    }
	    pfd[n].fd = conn->fd;
	    pfd[n].events = (conn->phase == CONN_SENDING) ? POLLOUT : POLLIN;
	    what[n++] = i;
	    if (conn->deadline - now < timeout) {
		timeout = conn->deadline - now;
	    }
	}
	if (net->numConns >= TTO_MAX_CONNECTIONS && timeout > SILENT_EVICT_MS) {
	    timeout = SILENT_EVICT_MS;	/* look again for an evictable one */
	}
	if (net->numConns < TTO_MAX_CONNECTIONS
		|| EvictableConn(net, now) >= 0) {
	    if (now >= net->acceptPauseUntil) {
		for (i = 0; i < 2; i++) {
		    if (net->listenFd[i] >= 0) {
			pfd[n].fd = net->listenFd[i];
			pfd[n].events = POLLIN;
			what[n++] = POLL_LISTEN;
		    }
		}
	    } else if (net->acceptPauseUntil - now < timeout) {
		timeout = net->acceptPauseUntil - now;
	    }
	}
	if (deadlineMs > 0 && deadlineMs - now < timeout) {
	    timeout = deadlineMs - now;
	}
	if (timeout < 0) {
	    timeout = 0;
	}

	rc = poll(pfd, (nfds_t) n, (int) timeout);
	if (rc < 0) {
	    if (errno == EINTR) {
		continue;
	    }
	    return TTO_SERVE_ERROR;
	}
	if (CancelRequested(cancelPtr)) {
	    return TTO_SERVE_CANCELLED;
	}
	if (rc == 0) {
	    continue;
	}

	/*
	 * Clients already connected first, then new ones.  Accepting only
	 * fills free slots, none of which is in this poll set, so the
	 * indices in what[] stay valid throughout.
	 */

	now = TtoNowMs();
	for (i = 0; i < n; i++) {
	    if (pfd[i].revents == 0) {
		continue;
	    }
	    if (what[i] == POLL_WAKE) {
		DrainPipe(net->wakeRead);
	    } else if (what[i] >= 0) {
		Conn *conn = &net->conns[what[i]];

		if (conn->phase != CONN_FREE && conn->fd == pfd[i].fd
			&& ConnEvent(net, conn, pfd[i].revents, proc,
			clientData) == EVENT_HELD) {
		    return TTO_SERVE_HELD;
		}
	    }
	}
	for (i = 0; i < n; i++) {
	    if (what[i] == POLL_LISTEN && pfd[i].revents != 0) {
		ListenerAccept(net, pfd[i].fd, now);
	    }
	}
    }
}

/*
 *----------------------------------------------------------------------
 *
 * WaitFd --
 *
 *	Waits until fd is ready for events or the time untilMs comes, or
 *	until wakeFd (the wake pipe, or -1) becomes readable: a cancel
 *	must not wait for a slow browser to take its page.
 *
 * Results:
 *	1 ready (or in error: the next call says which), 0 timed out, -1
 *	poll() failed, -2 woken.
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

static int
WaitFd(
    int fd,
    short events,
    long long untilMs,
    int wakeFd)
{
    struct pollfd pfd[2];
    long long wait;
    int rc;

    for (;;) {
	wait = untilMs - TtoNowMs();
	if (wait < 0) {
	    wait = 0;
	}
	if (wait > POLL_CAP_MS) {
	    wait = POLL_CAP_MS;
	}
	pfd[0].fd = fd;
	pfd[0].events = events;
	pfd[0].revents = 0;
	pfd[1].fd = wakeFd;		/* a negative fd is ignored by poll */
	pfd[1].events = POLLIN;
	pfd[1].revents = 0;
	rc = poll(pfd, 2, (int) wait);
	if (rc > 0 && pfd[1].revents) {
	    return -2;			/* woken: a cancel or an exit */
	}
	if (rc > 0) {
	    return 1;
	}
	if (rc < 0 && errno != EINTR) {
	    return -1;
	}
	if (rc == 0 && TtoNowMs() >= untilMs) {
	    return 0;
	}
    }
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
 *	and a RST can destroy the page on its way.  A TtoNetWake (cancel,
 *	exit) meanwhile ends the wait at once.
 *
 * Results:
 *	1 if the whole page was handed to the kernel, else 0 (the
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
    int fd;

    if (net == NULL || net->heldFd < 0) {
	return 0;
    }
    fd = net->heldFd;
    until = TtoNowMs() + (timeoutMs > 0 ? timeoutMs : 0);
    while (done < len) {
	ssize_t n = send(fd, data + done, len - done, MSG_NOSIGNAL);

	if (n > 0) {
	    done += (size_t) n;
	} else if (n < 0 && errno == EINTR) {
	    continue;
	} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
	    if (WaitFd(fd, POLLOUT, until, net->wakeRead) <= 0) {
		break;
	    }
	} else {
	    break;
	}
    }
    if (done < len) {
	CloseFd(fd);			/* timed out or the client is gone */
	net->heldFd = -1;
	return 0;
    }
    (void) shutdown(fd, SHUT_WR);
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
 *	closes.  A TtoNetWake ends the wait at once.
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
    ssize_t n;
    int fd;

    if (net == NULL || net->heldFd < 0) {
	return;
    }
    fd = net->heldFd;
    net->heldFd = -1;
    start = TtoNowMs();
    until = start + LINGER_MS;
    for (;;) {
	n = recv(fd, scratch, sizeof(scratch), 0);
	if (n > 0) {
	    until = TtoNowMs() + LINGER_MS;
	    if (until > start + LINGER_MAX_MS) {
		until = start + LINGER_MAX_MS;
	    }
	    continue;
	}
	if (n < 0 && errno == EINTR) {
	    continue;
	}
	if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
	    break;			/* EOF or error */
	}
	if (WaitFd(fd, POLLIN, until, net->wakeRead) <= 0) {
	    break;
	}
    }
    CloseFd(fd);
}

/*
 *----------------------------------------------------------------------
 *
 * TtoNetCloseListeners --
 *
 *	Closes both listening sockets and every connection but the held
 *	one: from here on nothing new can reach the port, and it can be
 *	bound again.  The wake pipe and the held connection stay.
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Closes descriptors.
 *
 *----------------------------------------------------------------------
 */

void
TtoNetCloseListeners(
    TtoNet *net)
{
    int i;

    if (net == NULL) {
	return;
    }
    for (i = 0; i < 2; i++) {
	CloseFd(net->listenFd[i]);
	net->listenFd[i] = -1;
    }
    for (i = 0; i < TTO_MAX_CONNECTIONS; i++) {
	ConnClose(net, &net->conns[i]);
    }
}

/*
 *----------------------------------------------------------------------
 *
 * TtoNetClose --
 *
 *	Closes the listener: the listening sockets and every connection
 *	(the held one included); a lent wake pipe stays.  The port can be
 *	bound again at once: what stays behind are connections in TIME_WAIT,
 *	which SO_REUSEADDR lets a new listener ignore.
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
    CloseFd(net->heldFd);
    ckfree((char *) net);
}
