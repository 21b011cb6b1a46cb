/*
 * ttoauth2Store.c --
 *
 *	Token files: written atomically (TtoFileWriteAtomic: temp file,
 *	fsync, rename), optionally under the file's cross-process lock, and
 *	read back.  What a token file holds (the server's answer as received
 *	and what ttoauth2 adds beside it) is TtoStoreFormat's, in
 *	ttoauth2Provider.c.  Plain C: the flow thread saves with these too.
 */

#include "ttoauth2Int.h"
#include <string.h>
#include <errno.h>

/*
 *----------------------------------------------------------------------
 *
 * TtoStoreSave --
 *
 *	Writes a token file atomically, under its lock when lock is set.
 *
 * Results:
 *	0, or -1 with *errnoPtr.
 *
 *----------------------------------------------------------------------
 */

int
TtoStoreSave(
    const char *path,
    const TtoTokenSnapshot *snap,
    int lock,
    int *errnoPtr)
{
    char *text = TtoStoreFormat(snap);
    void *handle = NULL;
    int rc;

    if (text == NULL) {
	*errnoPtr = ENOMEM;
	return -1;
    }
    if (lock && TtoFileLock(path, &handle, errnoPtr) != 0) {
	TtoSecretFree(text);
	return -1;
    }
    rc = TtoFileWriteAtomic(path, text, strlen(text), errnoPtr);
    if (handle) {
	TtoFileUnlock(handle);
    }
    TtoSecretFree(text);
    return rc;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoStoreParse --
 *
 *	Reads the tokens out of a token file's text: the TikTok Shop shape
 *	(tokens under "data") or the RFC 6749 shape (tokens at the top).
 *	receivedAt is the time relative expires_in counts from when the
 *	file has no expires_at of ours (its modification time).
 *
 * Results:
 *	res as from TtoTokenClassify, *providerPtr the shape found.
 *
 *----------------------------------------------------------------------
 */

int
TtoStoreParse(
    const char *text,
    size_t len,
    time_t receivedAt,
    TtoProvider *providerPtr,
    TtoTokenResult *res)
{
    memset(res, 0, sizeof(*res));
    TtoTokenClassify(TTO_PROVIDER_AUTO, 200, text, len, receivedAt, res);
    *providerPtr = res->provider;
    return res->ok ? 0 : -1;
}
