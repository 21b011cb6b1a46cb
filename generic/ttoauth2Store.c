/*
 * ttoauth2Store.c --
 *
 *	Token files.  A token file is the provider's token response,
 *	pretty-printed, so a file written by Chilkat's samples and one
 *	written here read the same.  For RFC 6749 responses two facts that
 *	the response alone cannot carry are added, so that a later loadToken
 *	restores them exactly:
 *
 *	    "expires_at"		absolute Unix time (the response has
 *	    "refresh_expires_at"	only relative expires_in)
 *	    "refresh_token"		kept from before when a refresh
 *					response did not rotate it (RFC 6749 6)
 *
 *	TikTok Shop responses carry absolute expiries already and always
 *	carry a refresh token; they are written as received.  In both shapes
 *	the tokens written are the object's current ones.
 *
 *	Writes are atomic (TtoFileWriteAtomic: temp file, fsync, rename)
 *	and optionally under the cross-process lock of the file.
 *	Plain C: the flow thread saves with these too.
 */

#include "ttoauth2Int.h"
#include <string.h>
#include <errno.h>
#include <cjson/cJSON.h>

static void
ReplaceMember(
    cJSON *obj,
    const char *name,
    cJSON *value)
{
    if (value == NULL) {
	return;
    }
    if (cJSON_GetObjectItemCaseSensitive(obj, name)) {
	cJSON_ReplaceItemInObjectCaseSensitive(obj, name, value);
    } else {
	cJSON_AddItemToObject(obj, name, value);
    }
}

/*
 *----------------------------------------------------------------------
 *
 * TtoStoreFormat --
 *
 *	The text of a token file for a snapshot of an object's tokens.
 *
 * Results:
 *	A ckalloc'ed, pretty-printed JSON text, or NULL on memory failure.
 *
 *----------------------------------------------------------------------
 */

char *
TtoStoreFormat(
    const TtoTokenSnapshot *snap)
{
    cJSON *root = NULL, *data;
    char *compact, *pretty;

    if (snap->body && snap->bodyLen > 0) {
	root = TtoJsonParseStrict(snap->body, snap->bodyLen);
	if (root && !cJSON_IsObject(root)) {
	    cJSON_Delete(root);
	    root = NULL;
	}
    }
    data = root ? cJSON_GetObjectItemCaseSensitive(root, "data") : NULL;

    if (root && cJSON_IsObject(data)
	    && cJSON_GetObjectItemCaseSensitive(data, "access_token")) {
	/*
	 * TikTok Shop shape: as received, but with the object's current
	 * tokens (a script may have set them by hand since).
	 */
	if (snap->accessToken && *snap->accessToken) {
	    ReplaceMember(data, "access_token",
		    cJSON_CreateString(snap->accessToken));
	}
	if (snap->refreshToken && *snap->refreshToken) {
	    ReplaceMember(data, "refresh_token",
		    cJSON_CreateString(snap->refreshToken));
	}
    } else if (root && cJSON_GetObjectItemCaseSensitive(root,
	    "access_token")) {
	if (snap->accessToken && *snap->accessToken) {
	    ReplaceMember(root, "access_token",
		    cJSON_CreateString(snap->accessToken));
	}
	if (snap->refreshToken && *snap->refreshToken) {
	    ReplaceMember(root, "refresh_token",
		    cJSON_CreateString(snap->refreshToken));
	}
	if (snap->expiresAt >= 0) {
	    ReplaceMember(root, "expires_at",
		    cJSON_CreateNumber((double) snap->expiresAt));
	}
	if (snap->refreshExpiresAt >= 0) {
	    ReplaceMember(root, "refresh_expires_at",
		    cJSON_CreateNumber((double) snap->refreshExpiresAt));
	}
    } else {
	/* No usable response (tokens set by hand): write our own shape. */
	cJSON_Delete(root);
	root = cJSON_CreateObject();
	if (root == NULL) {
	    return NULL;
	}
	if (snap->provider == TTO_PROVIDER_TIKTOKSHOP) {
	    cJSON_AddNumberToObject(root, "code", 0);
	    cJSON_AddStringToObject(root, "message", "success");
	    data = cJSON_AddObjectToObject(root, "data");
	    if (data) {
		cJSON_AddStringToObject(data, "access_token",
			snap->accessToken ? snap->accessToken : "");
		if (snap->expiresAt >= 0) {
		    cJSON_AddNumberToObject(data, "access_token_expire_in",
			    (double) snap->expiresAt);
		}
		cJSON_AddStringToObject(data, "refresh_token",
			snap->refreshToken ? snap->refreshToken : "");
		if (snap->refreshExpiresAt >= 0) {
		    cJSON_AddNumberToObject(data, "refresh_token_expire_in",
			    (double) snap->refreshExpiresAt);
		}
	    }
	} else {
	    cJSON_AddStringToObject(root, "access_token",
		    snap->accessToken ? snap->accessToken : "");
	    if (snap->tokenType && *snap->tokenType) {
		cJSON_AddStringToObject(root, "token_type", snap->tokenType);
	    }
	    if (snap->refreshToken && *snap->refreshToken) {
		cJSON_AddStringToObject(root, "refresh_token",
			snap->refreshToken);
	    }
	    if (snap->expiresAt >= 0) {
		cJSON_AddNumberToObject(root, "expires_at",
			(double) snap->expiresAt);
	    }
	    if (snap->refreshExpiresAt >= 0) {
		cJSON_AddNumberToObject(root, "refresh_expires_at",
			(double) snap->refreshExpiresAt);
	    }
	}
    }
    if (root == NULL) {
	return NULL;
    }

    compact = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (compact == NULL) {
	return NULL;
    }
    pretty = TtoJsonPretty(compact, strlen(compact));
    memset(compact, 0, strlen(compact));
    cJSON_free(compact);
    return pretty;
}

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
	memset(text, 0, strlen(text));
	ckfree(text);
	return -1;
    }
    rc = TtoFileWriteAtomic(path, text, strlen(text), errnoPtr);
    if (handle) {
	TtoFileUnlock(handle);
    }
    memset(text, 0, strlen(text));
    ckfree(text);
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
    cJSON *root = TtoJsonParseStrict(text, len);
    const cJSON *data;

    memset(res, 0, sizeof(*res));
    res->expiresAt = res->refreshExpiresAt = -1;
    if (!cJSON_IsObject(root)) {
	cJSON_Delete(root);
	res->errorKind = "JSON";
	return -1;
    }
    data = cJSON_GetObjectItemCaseSensitive(root, "data");
    if (cJSON_IsObject(data)
	    && cJSON_GetObjectItemCaseSensitive(data, "access_token")) {
	*providerPtr = TTO_PROVIDER_TIKTOKSHOP;
    } else {
	*providerPtr = TTO_PROVIDER_RFC6749;
    }
    cJSON_Delete(root);
    TtoTokenClassify(*providerPtr, 200, text, len, receivedAt, res);
    return res->ok ? 0 : -1;
}
