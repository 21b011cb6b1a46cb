/*
 * ttoauth2Async.c --
 *
 *	The asynchronous engine: one process-wide worker thread driving one
 *	libcurl multi handle, so that any number of requests of any number
 *	of objects and threads run at once over shared, reused connections.
 *	Made on first use; joined when the last object goes and at exit.
 *
 *	A job moves QUEUED (submitted, not yet in the multi handle) ->
 *	RUNNING (in it) -> FINISHING (the worker runs its finishProc) ->
 *	DONE (waiting for its thread's event loop) and is then handed to
 *	doneProc and forgotten.  Everything shared is guarded by asyncMutex;
 *	the worker alone touches the multi handle except for
 *	curl_multi_wakeup, which libcurl allows from any thread.
 *
 *	Completions reach the submitting thread as one Tcl event per batch
 *	(Tcl_ThreadQueueEvent + Tcl_ThreadAlert); the event carries no job:
 *	it takes DONE jobs of its thread from the shared list one at a time,
 *	so a doneProc may cancel any other job safely, and an event Tcl
 *	throws away (thread gone) leaks nothing.
 */

#include "ttoauth2Int.h"
#include <string.h>
#include <curl/curl.h>

#define TTO_ASYNC_MAX_CONNECTIONS	256	/* in flight at once */

typedef enum {
    JOB_QUEUED, JOB_RUNNING, JOB_FINISHING, JOB_DONE
} JobState;

struct TtoAsyncJob {
    CURL *easy;
    TtoAsyncFinishProc *finishProc;
    TtoAsyncProc *doneProc;
    TtoAsyncProc *freeProc;
    void *data;
    Tcl_ThreadId owner;
    JobState state;
    int cancelled;
    TtoAsyncJob *next;		/* in the incoming or done list */
    TtoAsyncJob *nextRemove;	/* in the removal list */
    TtoAsyncJob *prevActive;	/* worker only: jobs in the multi handle */
    TtoAsyncJob *nextActive;
};

/* A thread that submitted jobs: whether an event is on its way. */
typedef struct Owner {
    Tcl_ThreadId id;
    int pending;
    struct Owner *next;
} Owner;

typedef struct {
    Tcl_Event header;
} DoneEvent;

TCL_DECLARE_MUTEX(asyncMutex)
static CURLM *multi = NULL;		/* non-NULL while the worker runs */
static Tcl_ThreadId worker;
static int stopping = 0;
static TtoAsyncJob *incoming = NULL, *incomingTail = NULL;
static TtoAsyncJob *removals = NULL;
static TtoAsyncJob *doneHead = NULL, *doneTail = NULL;
static Owner *owners = NULL;

static Tcl_ThreadCreateType WorkerThread(ClientData clientData);
static int	DoneEventProc(Tcl_Event *evPtr, int flags);

/* Unlinks job from a singly linked list (next pointers).  Under mutex. */
static void
Unlink(
    TtoAsyncJob **headPtr,
    TtoAsyncJob **tailPtr,
    TtoAsyncJob *job)
{
    TtoAsyncJob *prev = NULL, *j;

    for (j = *headPtr; j && j != job; j = j->next) {
	prev = j;
    }
    if (j == NULL) {
	return;
    }
    if (prev) {
	prev->next = j->next;
    } else {
	*headPtr = j->next;
    }
    if (tailPtr && *tailPtr == j) {
	*tailPtr = prev;
    }
    j->next = NULL;
}

static Owner *
FindOwner(
    Tcl_ThreadId id)
{
    Owner *o;

    for (o = owners; o; o = o->next) {
	if (o->id == id) {
	    return o;
	}
    }
    return NULL;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoAsyncSubmit --
 *
 *	Queues a prepared easy handle; starts the worker on first use.
 *
 * Results:
 *	The job (for TtoAsyncCancel), or NULL when the engine cannot run
 *	(no thread, no multi handle, process exiting); nothing is called
 *	then and the caller still owns data.
 *
 * Side effects:
 *	May create the worker thread.
 *
 *----------------------------------------------------------------------
 */

TtoAsyncJob *
TtoAsyncSubmit(
    void *easy,
    TtoAsyncFinishProc *finishProc,
    TtoAsyncProc *doneProc,
    TtoAsyncProc *freeProc,
    void *data)
{
    TtoAsyncJob *job;
    Owner *o;
    Tcl_ThreadId self = Tcl_GetCurrentThread();

    Tcl_MutexLock(&asyncMutex);
    if (stopping) {
	Tcl_MutexUnlock(&asyncMutex);
	return NULL;
    }
    if (multi == NULL) {
	multi = curl_multi_init();
	if (multi == NULL) {
	    Tcl_MutexUnlock(&asyncMutex);
	    return NULL;
	}
	curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
		(long) TTO_ASYNC_MAX_CONNECTIONS);
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS,
		(long) TTO_ASYNC_MAX_CONNECTIONS);
	if (Tcl_CreateThread(&worker, WorkerThread, NULL,
		TCL_THREAD_STACK_DEFAULT, TCL_THREAD_JOINABLE) != TCL_OK) {
	    curl_multi_cleanup(multi);
	    multi = NULL;
	    Tcl_MutexUnlock(&asyncMutex);
	    return NULL;
	}
    }
    if ((o = FindOwner(self)) == NULL) {
	o = ckalloc(sizeof(Owner));
	o->id = self;
	o->pending = 0;
	o->next = owners;
	owners = o;
    }
    job = ckalloc(sizeof(TtoAsyncJob));
    memset(job, 0, sizeof(*job));
    job->easy = easy;
    job->finishProc = finishProc;
    job->doneProc = doneProc;
    job->freeProc = freeProc;
    job->data = data;
    job->owner = self;
    job->state = JOB_QUEUED;
    curl_easy_setopt((CURL *) easy, CURLOPT_PRIVATE, (char *) job);
    if (incomingTail) {
	incomingTail->next = job;
    } else {
	incoming = job;
    }
    incomingTail = job;
    curl_multi_wakeup(multi);
    Tcl_MutexUnlock(&asyncMutex);
    return job;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoAsyncCancel --
 *
 *	Withdraws a job of this thread; see ttoauth2Int.h for the promise.
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Calls freeProc now (queued or done job) or makes the worker call
 *	it (running job).
 *
 *----------------------------------------------------------------------
 */

void
TtoAsyncCancel(
    TtoAsyncJob *job)
{
    int freeNow = 0;

    if (job == NULL) {
	return;
    }
    Tcl_MutexLock(&asyncMutex);
    job->cancelled = 1;
    switch (job->state) {
    case JOB_QUEUED:
	Unlink(&incoming, &incomingTail, job);
	freeNow = 1;
	break;
    case JOB_RUNNING:
	job->nextRemove = removals;
	removals = job;
	if (multi) {
	    curl_multi_wakeup(multi);
	}
	break;
    case JOB_FINISHING:
	break;				/* the worker frees it afterwards */
    case JOB_DONE:
	Unlink(&doneHead, &doneTail, job);
	freeNow = 1;
	break;
    }
    Tcl_MutexUnlock(&asyncMutex);
    if (freeNow) {
	if (job->freeProc) {
	    job->freeProc(job->data);
	}
	ckfree(job);
    }
}

/*
 * The event that hands DONE jobs of this thread to their doneProc, one
 * at a time (each taken off the list under the mutex just before its
 * call).
 */

static int
DoneEventProc(
    Tcl_Event *evPtr,
    int flags)
{
    Tcl_ThreadId self = Tcl_GetCurrentThread();
    TtoAsyncJob *job;
    Owner *o;

    Tcl_MutexLock(&asyncMutex);
    if ((o = FindOwner(self)) != NULL) {
	o->pending = 0;
    }
    Tcl_MutexUnlock(&asyncMutex);
    for (;;) {
	Tcl_MutexLock(&asyncMutex);
	for (job = doneHead; job && job->owner != self; job = job->next) {
	}
	if (job) {
	    Unlink(&doneHead, &doneTail, job);
	}
	Tcl_MutexUnlock(&asyncMutex);
	if (job == NULL) {
	    break;
	}
	job->doneProc(job->data);
	ckfree(job);
    }
    return 1;
}

/* Worker: a job leaves the multi handle for good (cancelled). */
static void
DropActive(
    TtoAsyncJob **activePtr,
    TtoAsyncJob *job)
{
    curl_multi_remove_handle(multi, job->easy);
    if (job->prevActive) {
	job->prevActive->nextActive = job->nextActive;
    } else {
	*activePtr = job->nextActive;
    }
    if (job->nextActive) {
	job->nextActive->prevActive = job->prevActive;
    }
    job->prevActive = job->nextActive = NULL;
}

/*
 *----------------------------------------------------------------------
 *
 * WorkerThread --
 *
 *	Adds submitted jobs to the multi handle, removes cancelled ones,
 *	runs the transfers, and publishes the ended ones to their threads.
 *
 *----------------------------------------------------------------------
 */

static Tcl_ThreadCreateType
WorkerThread(
    ClientData clientData)
{
    TtoAsyncJob *active = NULL, *job, *batch, *gone;
    CURLMsg *msg;
    int running, left, stop;

    for (;;) {
	Tcl_MutexLock(&asyncMutex);
	stop = stopping;
	batch = incoming;
	incoming = incomingTail = NULL;
	gone = removals;
	removals = NULL;
	for (job = batch; job; job = job->next) {
	    job->state = JOB_RUNNING;
	}
	Tcl_MutexUnlock(&asyncMutex);

	while (gone) {
	    job = gone;
	    gone = job->nextRemove;
	    DropActive(&active, job);
	    if (job->freeProc) {
		job->freeProc(job->data);
	    }
	    ckfree(job);
	}
	while (batch) {
	    job = batch;
	    batch = job->next;
	    job->next = NULL;
	    job->nextActive = active;
	    if (active) {
		active->prevActive = job;
	    }
	    active = job;
	    curl_multi_add_handle(multi, job->easy);
	}
	if (stop) {
	    break;
	}

	curl_multi_perform(multi, &running);
	while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
	    char *priv = NULL;

	    if (msg->msg != CURLMSG_DONE) {
		continue;
	    }
	    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
	    job = (TtoAsyncJob *) priv;
	    Tcl_MutexLock(&asyncMutex);
	    if (job->cancelled) {
		Tcl_MutexUnlock(&asyncMutex);
		continue;		/* on the removal list already */
	    }
	    job->state = JOB_FINISHING;
	    Tcl_MutexUnlock(&asyncMutex);
	    {
		CURLcode rc = msg->data.result;	/* msg dies on removal */

		DropActive(&active, job);
		job->finishProc(job->data, (int) rc);
	    }
	    Tcl_MutexLock(&asyncMutex);
	    if (job->cancelled) {
		Tcl_MutexUnlock(&asyncMutex);
		if (job->freeProc) {
		    job->freeProc(job->data);
		}
		ckfree(job);
		continue;
	    }
	    job->state = JOB_DONE;
	    if (doneTail) {
		doneTail->next = job;
	    } else {
		doneHead = job;
	    }
	    doneTail = job;
	    {
		Owner *o = FindOwner(job->owner);

		if (o && !o->pending) {
		    DoneEvent *ev = (DoneEvent *) ckalloc(sizeof(DoneEvent));

		    ev->header.proc = DoneEventProc;
		    o->pending = 1;
		    Tcl_ThreadQueueEvent(job->owner, (Tcl_Event *) ev,
			    TCL_QUEUE_TAIL);
		    Tcl_ThreadAlert(job->owner);
		}
	    }
	    Tcl_MutexUnlock(&asyncMutex);
	}
	curl_multi_poll(multi, NULL, 0, 1000, NULL);
    }

    /* Stopping: whatever is still in flight was abandoned. */
    while (active) {
	job = active;
	DropActive(&active, job);
	if (job->freeProc) {
	    job->freeProc(job->data);
	}
	ckfree(job);
    }

    /*
     * TtoThreadExit ends the thread the way the platform needs (on
     * Windows, Tcl_JoinThread returns only for a thread that ended with
     * Tcl_ExitThread).
     */

    TtoThreadExit();
    TCL_THREAD_CREATE_RETURN;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoAsyncStop --
 *
 *	Ends the worker and joins it; frees the multi handle (its
 *	connections close) and every job no one will collect.
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	freeProc of every remaining job.  The engine starts again on the
 *	next TtoAsyncSubmit.
 *
 *----------------------------------------------------------------------
 */

void
TtoAsyncStop(void)
{
    TtoAsyncJob *left, *job;
    Owner *o;
    int result;

    Tcl_MutexLock(&asyncMutex);
    if (multi == NULL || stopping) {
	Tcl_MutexUnlock(&asyncMutex);
	return;
    }
    stopping = 1;
    curl_multi_wakeup(multi);
    Tcl_MutexUnlock(&asyncMutex);

    Tcl_JoinThread(worker, &result);

    Tcl_MutexLock(&asyncMutex);
    curl_multi_cleanup(multi);
    multi = NULL;
    left = doneHead;
    doneHead = doneTail = NULL;
    while (owners) {
	o = owners;
	owners = o->next;
	ckfree(o);
    }
    stopping = 0;
    Tcl_MutexUnlock(&asyncMutex);
    while (left) {
	job = left;
	left = job->next;
	if (job->freeProc) {
	    job->freeProc(job->data);
	}
	ckfree(job);
    }
}
