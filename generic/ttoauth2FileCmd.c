/*
 * ttoauth2FileCmd.c --
 *
 *	::ttoauth2::tokenfile, the internal command under the file:DIR token
 *	store of library/store.tcl.  It gives the Tcl layer the platform's
 *	file primitives the -tokenfile code uses, so a store's files are
 *	locked, written and read exactly as a token file is:
 *
 *	    ::ttoauth2::tokenfile trylock path	-> lock handle, or "" when
 *						   another holder has it
 *	    ::ttoauth2::tokenfile unlock handle
 *	    ::ttoauth2::tokenfile read path		-> the file's text, "" if none
 *	    ::ttoauth2::tokenfile write path text	   atomic, mode 0600
 *	    ::ttoauth2::tokenfile expiries text ?receivedAt?
 *						-> {expiresAt refreshExpiresAt}
 *
 *	Lock handles belong to the interp (they are released when it is
 *	deleted).  Errors are {TTOAUTH2 STORE file ERRNO-NAME} with the
 *	path and the system's reason; never the file's contents.
 */

#include "ttoauth2Int.h"
#include <string.h>
#include <errno.h>
#include <time.h>

#define ASSOC_KEY "ttoauth2::filelocks"

typedef struct {
    Tcl_HashTable locks;	/* handle name -> TtoFileLock handle */
    unsigned long counter;
} FileLocks;

static void
FileLocksFree(
    ClientData clientData,
    Tcl_Interp *interp)
{
    FileLocks *fl = clientData;
    Tcl_HashEntry *h;
    Tcl_HashSearch search;

    (void) interp;
    for (h = Tcl_FirstHashEntry(&fl->locks, &search); h != NULL;
	    h = Tcl_NextHashEntry(&search)) {
	TtoFileUnlock(Tcl_GetHashValue(h));
    }
    Tcl_DeleteHashTable(&fl->locks);
    ckfree(fl);
}

static int
StoreError(
    Tcl_Interp *interp,
    const char *what,
    const char *path,
    int err)
{
    return TtoErrnoError(interp, what, path, err, "STORE", "file");
}

static int
Usage(
    Tcl_Interp *interp,
    Tcl_Obj *const objv[],
    const char *args)
{
    Tcl_WrongNumArgs(interp, 2, objv, args);
    return TCL_ERROR;
}

static int
FileCmd(
    ClientData clientData,
    Tcl_Interp *interp,
    Tcl_Size objc,
    Tcl_Obj *const objv[])
{
    static const char *const subs[] = {
	"expiries", "read", "trylock", "unlock", "write", NULL
    };
    enum { SUB_EXPIRIES, SUB_READ, SUB_TRYLOCK, SUB_UNLOCK, SUB_WRITE };
    FileLocks *fl = clientData;
    Tcl_Encoding utf8;
    Tcl_DString ds;
    int sub, err = 0;

    if (TtoGetSubcommand(interp, objc, objv, 1, subs, "subcommand",
	    "subcommand ?arg ...?", &sub) != TCL_OK) {
	return TCL_ERROR;
    }
    switch (sub) {
    case SUB_TRYLOCK: {
	void *lock = NULL;
	const char *path;
	char name[48];
	int isNew, rc;
	Tcl_HashEntry *h;

	if (objc != 3) {
	    return Usage(interp, objv, "path");
	}
	path = Tcl_GetString(objv[2]);
	rc = TtoFileTryLock(path, &lock, &err);
	if (rc < 0) {
	    return StoreError(interp, "lock token file", path, err);
	}
	if (rc > 0) {
	    Tcl_ResetResult(interp);		/* held elsewhere */
	    return TCL_OK;
	}
	do {
	    snprintf(name, sizeof(name), "filelock%lu", ++fl->counter);
	    h = Tcl_CreateHashEntry(&fl->locks, name, &isNew);
	} while (!isNew);
	Tcl_SetHashValue(h, lock);
	Tcl_SetObjResult(interp, Tcl_NewStringObj(name, -1));
	return TCL_OK;
    }
    case SUB_UNLOCK: {
	Tcl_HashEntry *h;

	if (objc != 3) {
	    return Usage(interp, objv, "handle");
	}
	h = Tcl_FindHashEntry(&fl->locks, Tcl_GetString(objv[2]));
	if (h == NULL) {
	    Tcl_SetObjResult(interp, Tcl_ObjPrintf("no file lock \"%s\"",
		    Tcl_GetString(objv[2])));
	    Tcl_SetErrorCode(interp, "TTOAUTH2", "STORE", "file", "NOLOCK",
		    (char *) NULL);
	    return TCL_ERROR;
	}
	TtoFileUnlock(Tcl_GetHashValue(h));
	Tcl_DeleteHashEntry(h);
	return TCL_OK;
    }
    case SUB_READ: {
	const char *path;
	char *text = NULL;
	size_t len = 0;

	if (objc != 3) {
	    return Usage(interp, objv, "path");
	}
	path = Tcl_GetString(objv[2]);
	if (TtoFileRead(path, &text, &len, &err) != 0) {
	    if (err == ENOENT) {
		Tcl_ResetResult(interp);
		return TCL_OK;
	    }
	    return StoreError(interp, "read token file", path, err);
	}
	utf8 = Tcl_GetEncoding(NULL, "utf-8");
	Tcl_ExternalToUtfDString(utf8, text, (Tcl_Size) len, &ds);
	Tcl_FreeEncoding(utf8);
	TtoSecretFreeN(text, len);
	Tcl_SetObjResult(interp, Tcl_NewStringObj(Tcl_DStringValue(&ds),
		Tcl_DStringLength(&ds)));
	TtoWipeDString(&ds);
	return TCL_OK;
    }
    case SUB_WRITE: {
	const char *path, *text;
	Tcl_Size len;
	int rc;

	if (objc != 4) {
	    return Usage(interp, objv, "path text");
	}
	path = Tcl_GetString(objv[2]);
	text = Tcl_GetStringFromObj(objv[3], &len);
	utf8 = Tcl_GetEncoding(NULL, "utf-8");
	Tcl_UtfToExternalDString(utf8, text, len, &ds);
	Tcl_FreeEncoding(utf8);
	rc = TtoFileWriteAtomic(path, Tcl_DStringValue(&ds),
		(size_t) Tcl_DStringLength(&ds), &err);
	TtoWipeDString(&ds);
	if (rc != 0) {
	    return StoreError(interp, "write token file", path, err);
	}
	return TCL_OK;
    }
    case SUB_EXPIRIES: {
	TtoTokenResult res;
	TtoProvider provider;
	Tcl_WideInt receivedAt = (Tcl_WideInt) time(NULL);
	Tcl_Obj *list[2];
	const char *text;
	Tcl_Size len;

	if (objc != 3 && objc != 4) {
	    return Usage(interp, objv, "text ?receivedAt?");
	}
	if (objc == 4 && Tcl_GetWideIntFromObj(interp, objv[3], &receivedAt)
		!= TCL_OK) {
	    return TCL_ERROR;
	}
	text = Tcl_GetStringFromObj(objv[2], &len);
	utf8 = Tcl_GetEncoding(NULL, "utf-8");
	Tcl_UtfToExternalDString(utf8, text, len, &ds);
	Tcl_FreeEncoding(utf8);
	if (TtoStoreParse(Tcl_DStringValue(&ds),
		(size_t) Tcl_DStringLength(&ds), (time_t) receivedAt,
		&provider, &res) != 0) {
	    res.expiresAt = res.refreshExpiresAt = -1;	/* unknown */
	}
	list[0] = (res.expiresAt < 0) ? Tcl_NewObj()
		: Tcl_NewWideIntObj((Tcl_WideInt) res.expiresAt);
	list[1] = (res.refreshExpiresAt < 0) ? Tcl_NewObj()
		: Tcl_NewWideIntObj((Tcl_WideInt) res.refreshExpiresAt);
	TtoTokenResultFree(&res);
	TtoWipeDString(&ds);
	Tcl_SetObjResult(interp, Tcl_NewListObj(2, list));
	return TCL_OK;
    }
    }
    return TCL_OK;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoFileCmdInit --
 *
 *	Creates ::ttoauth2::tokenfile in interp (see the top of this file).
 *
 * Results:
 *	TCL_OK.
 *
 * Side effects:
 *	Creates the command and the interp's table of file locks, which
 *	releases every lock still held when the interp is deleted.
 *
 *----------------------------------------------------------------------
 */

int
TtoFileCmdInit(
    Tcl_Interp *interp)
{
    FileLocks *fl;

    if (Tcl_GetAssocData(interp, ASSOC_KEY, NULL) != NULL) {
	return TCL_OK;			/* package loaded again */
    }
    fl = ckalloc(sizeof(FileLocks));
    Tcl_InitHashTable(&fl->locks, TCL_STRING_KEYS);
    fl->counter = 0;
    Tcl_SetAssocData(interp, ASSOC_KEY, FileLocksFree, fl);
    Tcl_CreateObjCommand2(interp, "::ttoauth2::tokenfile", FileCmd, fl,
	    NULL);
    return TCL_OK;
}
