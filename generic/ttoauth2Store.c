/*
 * ttoauth2Store.c --
 *
 *	Token files.  A token file is the provider's token response,
 *	pretty-printed, so a file written by Chilkat's samples and one
 *	written here read the same.  The server's members are kept as
 *	received: the file is made from the response's own text by the
 *	re-indenter (TtoJsonPretty), which copies every string and number
 *	byte for byte, so integers beyond 2^53, exponents, \u escapes and
 *	unknown members survive any number of load/save round trips.  What
 *	ttoauth2 adds sits beside them, at the end of the object the tokens
 *	are in, replacing an earlier one of its own rather than repeating it.
 *	For RFC 6749 responses that is what the response alone cannot carry,
 *	so that a later loadToken restores them exactly:
 *
 *	    "expires_at"		absolute Unix time (the response has
 *	    "refresh_expires_at"	only relative expires_in)
 *	    "refresh_token"		kept from before when a refresh
 *					response did not rotate it (RFC 6749 6)
 *
 *	TikTok Shop responses carry absolute expiries and a refresh token
 *	already.  In both shapes one more member says whose grant the
 *	tokens are (a response alone names neither the client nor the
 *	endpoint), so that an object never adopts another grant's tokens:
 *
 *	    "ttoauth2": {"provider": "tiktokshop"|"rfc6749",
 *			 "client_id": "...", "token_endpoint": "..."}
 *
 *	(never the secret).  In both shapes a token the object holds that differs from
 *	the response's (set by hand since) replaces it.
 *
 *	Writes are atomic (TtoFileWriteAtomic: temp file, fsync, rename)
 *	and optionally under the cross-process lock of the file.
 *	Plain C: the flow thread saves with these too.
 */

#include "ttoauth2Int.h"
#include <string.h>
#include <errno.h>
#include <cjson/cJSON.h>

/*
 * An edit of the response text: the member name of obj replaced by
 * value (a JSON text) when it differs from what the text has, or added
 * when missing.  Edits go in edits[], their values in vals[] (cJSON
 * allocated, freed by the caller).
 */

static void
Edit(
    const cJSON *obj,
    const char *name,
    const char *string,		/* a string value, or NULL (number) */
    long long number,		/* else a number, if >= 0 */
    TtoJsonEdit *edits,
    char **vals,
    int *nPtr)
{
    const cJSON *child;
    char buf[32];
    long long have;
    int index = 0;
    cJSON *item;

    if (obj == NULL || (string ? *string == '\0' : number < 0)) {
	return;
    }
    for (child = obj->child; child; child = child->next, index++) {
	if (child->string && strcmp(child->string, name) == 0) {
	    break;
	}
    }
    if (child && (string ? (cJSON_IsString(child) && child->valuestring
	    && strcmp(child->valuestring, string) == 0)
	    : (TtoJsonWide(child, &have) && have == number))) {
	return;				/* as the server sent it */
    }
    if (string) {
	item = cJSON_CreateString(string);
	vals[*nPtr] = item ? cJSON_PrintUnformatted(item) : NULL;
	cJSON_Delete(item);
    } else {
	snprintf(buf, sizeof(buf), "%lld", number);
	vals[*nPtr] = cJSON_malloc(strlen(buf) + 1);
	if (vals[*nPtr]) {
	    strcpy(vals[*nPtr], buf);
	}
    }
    if (vals[*nPtr] == NULL) {
	return;
    }
    edits[*nPtr].index = child ? index : -1;
    edits[*nPtr].name = name;
    edits[*nPtr].json = vals[*nPtr];
    (*nPtr)++;
}

/*
 * The grant stamp as one edit of obj (the object the tokens are in).
 */

static void
StampEdit(
    const cJSON *obj,
    const TtoTokenSnapshot *snap,
    TtoJsonEdit *edits,
    char **vals,
    int *nPtr)
{
    const cJSON *child;
    cJSON *stamp;
    int index = 0;

    if (obj == NULL || snap->stampClientId == NULL
	    || *snap->stampClientId == '\0') {
	return;
    }
    stamp = cJSON_CreateObject();
    if (stamp == NULL) {
	return;
    }
    cJSON_AddStringToObject(stamp, "provider",
	    snap->provider == TTO_PROVIDER_TIKTOKSHOP ? "tiktokshop"
	    : "rfc6749");
    cJSON_AddStringToObject(stamp, "client_id", snap->stampClientId);
    cJSON_AddStringToObject(stamp, "token_endpoint",
	    snap->stampEndpoint ? snap->stampEndpoint : "");
    for (child = obj->child; child; child = child->next, index++) {
	if (child->string && strcmp(child->string, "ttoauth2") == 0) {
	    break;
	}
    }
    if (child && cJSON_Compare(child, stamp, 1)) {
	cJSON_Delete(stamp);
	return;
    }
    vals[*nPtr] = cJSON_PrintUnformatted(stamp);
    cJSON_Delete(stamp);
    if (vals[*nPtr] == NULL) {
	return;
    }
    edits[*nPtr].index = child ? index : -1;
    edits[*nPtr].name = "ttoauth2";
    edits[*nPtr].json = vals[*nPtr];
    (*nPtr)++;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoStoreFormat --
 *
 *	The text of a token file for a snapshot of an object's tokens: the
 *	last response re-indented with every member's text as received,
 *	and beside them what ttoauth2 adds or changed (see the top).
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
    cJSON *root = NULL, *data = NULL;
    const cJSON *child;
    TtoJsonEdit edits[6];
    char *vals[6], *compact = NULL, *pretty = NULL;
    const char *src = snap->body;
    size_t srcLen = snap->bodyLen;
    Tcl_DString ds;
    int n = 0, target = -1, i;

    if (snap->body && snap->bodyLen > 0) {
	root = TtoJsonParse(snap->body, snap->bodyLen, NULL, NULL);
    }
    if (cJSON_IsObject(root)) {
	data = cJSON_GetObjectItemCaseSensitive(root, "data");
    }
    if (cJSON_IsObject(data)
	    && cJSON_GetObjectItemCaseSensitive(data, "access_token")) {
	/*
	 * TikTok Shop shape: as received, but with the object's current
	 * tokens (a script may have set them by hand since).
	 */
	for (child = root->child, target = 0; child != data;
		child = child->next) {
	    target++;
	}
	Edit(data, "access_token", snap->accessToken ? snap->accessToken : "", 0, edits, vals, &n);
	Edit(data, "refresh_token", snap->refreshToken ? snap->refreshToken : "", 0, edits, vals, &n);
	StampEdit(data, snap, edits, vals, &n);
    } else if (cJSON_IsObject(root)
	    && cJSON_GetObjectItemCaseSensitive(root, "access_token")) {
	Edit(root, "access_token", snap->accessToken ? snap->accessToken : "", 0, edits, vals, &n);
	Edit(root, "refresh_token", snap->refreshToken ? snap->refreshToken : "", 0, edits, vals, &n);
	Edit(root, "expires_at", NULL, snap->expiresAt, edits, vals, &n);
	Edit(root, "refresh_expires_at", NULL, snap->refreshExpiresAt,
		edits, vals, &n);
	StampEdit(root, snap, edits, vals, &n);
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
		cJSON_AddStringToObject(data, "refresh_token",
			snap->refreshToken ? snap->refreshToken : "");
	    }
	    target = 2;
	    Edit(data, "access_token_expire_in", NULL, snap->expiresAt,
		    edits, vals, &n);
	    Edit(data, "refresh_token_expire_in", NULL,
		    snap->refreshExpiresAt, edits, vals, &n);
	    StampEdit(data, snap, edits, vals, &n);
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
	    Edit(root, "expires_at", NULL, snap->expiresAt, edits, vals, &n);
	    Edit(root, "refresh_expires_at", NULL, snap->refreshExpiresAt,
		    edits, vals, &n);
	    StampEdit(root, snap, edits, vals, &n);
	}
	compact = cJSON_PrintUnformatted(root);
	src = compact;
	srcLen = compact ? strlen(compact) : 0;
    }
    Tcl_DStringInit(&ds);
    if (src != NULL && TtoJsonPretty(src, srcLen, target, edits, n, &ds)) {
	for (i = 0; i < n; i++) {
	    if (edits[i].json[0] == '{') {
		break;
	    }
	}
	if (i < n) {
	    /* An added object (the stamp) is indented like the rest. */
	    Tcl_DString again;

	    Tcl_DStringInit(&again);
	    if (TtoJsonPretty(Tcl_DStringValue(&ds),
		    (size_t) Tcl_DStringLength(&ds), -1, NULL, 0, &again)) {
		TtoWipe(Tcl_DStringValue(&ds),
			(size_t) Tcl_DStringLength(&ds));
		Tcl_DStringSetLength(&ds, 0);
		Tcl_DStringAppend(&ds, Tcl_DStringValue(&again),
			Tcl_DStringLength(&again));
	    }
	    TtoWipeDString(&again);
	}
	pretty = attemptckalloc((size_t) Tcl_DStringLength(&ds) + 1);
	if (pretty) {
	    memcpy(pretty, Tcl_DStringValue(&ds),
		    (size_t) Tcl_DStringLength(&ds) + 1);
	}
    }
    TtoWipeDString(&ds);
    if (compact) {
	TtoWipe(compact, strlen(compact));
	cJSON_free(compact);
    }
    cJSON_Delete(root);
    for (i = 0; i < n; i++) {
	TtoWipe(vals[i], strlen(vals[i]));
	cJSON_free(vals[i]);
    }
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
