/*
 * ttoauth2Sign.c --
 *
 *	TikTok Shop's signatures (see TIKTOK.md): the "sign" query parameter
 *	of an API request and the Authorization header of a webhook.  The
 *	provider's signing rules live here; HMAC-SHA256 itself is the
 *	platform's (TtoHmacSha256: libcrypto on Unix, BCrypt on Windows).
 *
 *	ttoauth2 tiktokshop sign secret path query ?body?
 *	    hex(HMAC-SHA256(key = secret, secret + path + k1 v1 k2 v2 ...
 *	    + body + secret)), lower case, over the query parameters sorted
 *	    by name (byte order of their UTF-8), without "sign" and
 *	    "access_token".
 *
 *	ttoauth2 tiktokshop verifyWebhook appKey appSecret authorization body
 *	    1 when authorization is hex(HMAC-SHA256(key = appSecret,
 *	    appKey + body)) (either case of hex digits, surrounding blanks
 *	    ignored), else 0; compared in constant time.
 *
 *	Every string is signed as its UTF-8 bytes (a NUL as one 0 byte, not
 *	Tcl's internal two).
 */

#include "ttoauth2Int.h"
#include <stdlib.h>
#include <string.h>

/*
 * A query parameter, as UTF-8 (ckalloc'ed, NUL-terminated).
 */

typedef struct {
    char *name;
    size_t nameLen;
    char *value;
    size_t valueLen;
} SignParam;

static void	AppendUtf8(Tcl_DString *dsPtr, Tcl_Encoding utf8,
		    Tcl_Obj *objPtr);
static int	CompareParams(const void *a, const void *b);
static int	SignError(Tcl_Interp *interp, const char *kind,
		    const char *word, const char *msg);
static int	SignCmd(Tcl_Interp *interp, Tcl_Encoding utf8, Tcl_Size objc,
		    Tcl_Obj *const objv[]);
static char *	ToUtf8(Tcl_Encoding utf8, Tcl_Obj *objPtr, size_t *lenPtr);
static int	VerifyWebhookCmd(Tcl_Interp *interp, Tcl_Encoding utf8,
		    Tcl_Size objc, Tcl_Obj *const objv[]);
static void	WipeDString(Tcl_DString *dsPtr);

/*
 *----------------------------------------------------------------------
 *
 * SignError --
 *
 *	Leaves an error with -errorcode {TTOAUTH2 kind word}.
 *
 * Results:
 *	TCL_ERROR.
 *
 * Side effects:
 *	Sets the interp's result and error code.
 *
 *----------------------------------------------------------------------
 */

static int
SignError(
    Tcl_Interp *interp,
    const char *kind,
    const char *word,
    const char *msg)
{
    Tcl_SetObjResult(interp, Tcl_NewStringObj(msg, -1));
    Tcl_SetErrorCode(interp, "TTOAUTH2", kind, word, (char *) NULL);
    return TCL_ERROR;
}

/*
 *----------------------------------------------------------------------
 *
 * WipeDString --
 *
 *	Overwrites a DString's bytes (it may hold a secret), then frees it.
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Frees the DString's memory.
 *
 *----------------------------------------------------------------------
 */

static void
WipeDString(
    Tcl_DString *dsPtr)
{
    memset(Tcl_DStringValue(dsPtr), 0, (size_t) Tcl_DStringLength(dsPtr));
    Tcl_DStringFree(dsPtr);
}

/*
 *----------------------------------------------------------------------
 *
 * AppendUtf8, ToUtf8 --
 *
 *	A value's string as UTF-8 bytes: appended to a DString, or in a
 *	ckalloc'ed copy (NUL-terminated; *lenPtr excludes the NUL).
 *
 * Results:
 *	ToUtf8: the copy; the caller frees it.
 *
 * Side effects:
 *	Allocates memory.
 *
 *----------------------------------------------------------------------
 */

static void
AppendUtf8(
    Tcl_DString *dsPtr,
    Tcl_Encoding utf8,
    Tcl_Obj *objPtr)
{
    Tcl_DString ds;
    Tcl_Size len;
    const char *s = Tcl_GetStringFromObj(objPtr, &len);

    Tcl_UtfToExternalDString(utf8, s, len, &ds);
    Tcl_DStringAppend(dsPtr, Tcl_DStringValue(&ds), Tcl_DStringLength(&ds));
    WipeDString(&ds);
}

static char *
ToUtf8(
    Tcl_Encoding utf8,
    Tcl_Obj *objPtr,
    size_t *lenPtr)
{
    Tcl_DString ds;
    char *copy;

    Tcl_DStringInit(&ds);
    AppendUtf8(&ds, utf8, objPtr);
    *lenPtr = (size_t) Tcl_DStringLength(&ds);
    copy = ckalloc(*lenPtr + 1);
    memcpy(copy, Tcl_DStringValue(&ds), *lenPtr + 1);
    Tcl_DStringFree(&ds);
    return copy;
}

/*
 *----------------------------------------------------------------------
 *
 * CompareParams --
 *
 *	qsort() order of query parameters: by the bytes of their UTF-8
 *	names, a name before any longer name it begins.
 *
 * Results:
 *	<0, 0 or >0.
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

static int
CompareParams(
    const void *a,
    const void *b)
{
    const SignParam *pa = a, *pb = b;
    size_t n = pa->nameLen < pb->nameLen ? pa->nameLen : pb->nameLen;
    int c = memcmp(pa->name, pb->name, n);

    if (c != 0) {
	return c;
    }
    return (pa->nameLen > pb->nameLen) - (pa->nameLen < pb->nameLen);
}

/*
 *----------------------------------------------------------------------
 *
 * SignCmd --
 *
 *	ttoauth2 tiktokshop sign secret path query ?body?
 *
 * Results:
 *	A Tcl result: the signature, 64 lower-case hex digits.
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

static int
SignCmd(
    Tcl_Interp *interp,
    Tcl_Encoding utf8,
    Tcl_Size objc,
    Tcl_Obj *const objv[])
{
    static const char hex[] = "0123456789abcdef";
    Tcl_DictSearch search;
    Tcl_Obj *key, *value;
    Tcl_DString msg, secret;
    SignParam *params = NULL;
    Tcl_Size size;
    int done, count = 0, i, rc;
    unsigned char mac[32];
    char out[65];

    if (objc < 6 || objc > 7) {
	Tcl_WrongNumArgs(interp, 3, objv, "secret path query ?body?");
	return TCL_ERROR;
    }
    if (Tcl_GetString(objv[3])[0] == '\0') {
	return SignError(interp, "OPTION", "secret", "the app secret is "
		"empty");
    }
    if (Tcl_GetString(objv[4])[0] != '/') {
	return SignError(interp, "OPTION", "path", "the path must be the "
		"API path alone, beginning with / (such as "
		"/authorization/202309/shops)");
    }
    if (Tcl_DictObjSize(NULL, objv[5], &size) != TCL_OK) {
	return SignError(interp, "OPTION", "query", "the query must be a "
		"dict of parameter names and values");
    }

    /*
     * The parameters that are signed, as UTF-8, in byte order of names.
     */

    if (size > 0) {
	params = (SignParam *) ckalloc(sizeof(SignParam) * (size_t) size);
    }
    if (Tcl_DictObjFirst(NULL, objv[5], &search, &key, &value, &done)
	    != TCL_OK) {
	if (params != NULL) {		/* cannot happen: checked above */
	    ckfree(params);
	}
	return SignError(interp, "OPTION", "query", "the query must be a "
		"dict of parameter names and values");
    }
    for (; !done; Tcl_DictObjNext(&search, &key, &value, &done)) {
	const char *name = Tcl_GetString(key);

	if (strcmp(name, "sign") == 0 || strcmp(name, "access_token") == 0) {
	    continue;
	}
	params[count].name = ToUtf8(utf8, key, &params[count].nameLen);
	params[count].value = ToUtf8(utf8, value, &params[count].valueLen);
	count++;
    }
    Tcl_DictObjDone(&search);
    if (count > 1) {
	qsort(params, (size_t) count, sizeof(SignParam), CompareParams);
    }

    Tcl_DStringInit(&secret);
    Tcl_DStringInit(&msg);
    AppendUtf8(&secret, utf8, objv[3]);
    Tcl_DStringAppend(&msg, Tcl_DStringValue(&secret),
	    Tcl_DStringLength(&secret));
    AppendUtf8(&msg, utf8, objv[4]);
    for (i = 0; i < count; i++) {
	Tcl_DStringAppend(&msg, params[i].name, (Tcl_Size) params[i].nameLen);
	Tcl_DStringAppend(&msg, params[i].value,
		(Tcl_Size) params[i].valueLen);
	ckfree(params[i].name);
	memset(params[i].value, 0, params[i].valueLen);
	ckfree(params[i].value);
    }
    if (params != NULL) {
	ckfree(params);
    }
    if (objc == 7) {
	AppendUtf8(&msg, utf8, objv[6]);
    }
    Tcl_DStringAppend(&msg, Tcl_DStringValue(&secret),
	    Tcl_DStringLength(&secret));

    rc = TtoHmacSha256(Tcl_DStringValue(&secret),
	    (size_t) Tcl_DStringLength(&secret), Tcl_DStringValue(&msg),
	    (size_t) Tcl_DStringLength(&msg), mac);
    WipeDString(&msg);
    WipeDString(&secret);
    if (rc != 0) {
	return SignError(interp, "STATE", "CRYPTO", "HMAC-SHA256 failed");
    }
    for (i = 0; i < 32; i++) {
	out[2 * i] = hex[mac[i] >> 4];
	out[2 * i + 1] = hex[mac[i] & 15];
    }
    out[64] = '\0';
    memset(mac, 0, sizeof(mac));
    Tcl_SetObjResult(interp, Tcl_NewStringObj(out, 64));
    return TCL_OK;
}

/*
 *----------------------------------------------------------------------
 *
 * VerifyWebhookCmd --
 *
 *	ttoauth2 tiktokshop verifyWebhook appKey appSecret authorization body
 *
 *	The header is decoded from hex (64 digits, either case) and the
 *	32 bytes compared with the expected MAC in constant time: how long
 *	the comparison takes says nothing about how much of it matched.
 *
 * Results:
 *	A Tcl result: 1 when the header is the body's signature, else 0
 *	(a header that is not 64 hex digits is simply not it).
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

static int
VerifyWebhookCmd(
    Tcl_Interp *interp,
    Tcl_Encoding utf8,
    Tcl_Size objc,
    Tcl_Obj *const objv[])
{
    Tcl_DString msg, secret;
    unsigned char mac[32], given[32], diff = 0;
    const char *header;
    Tcl_Size headerLen;
    int rc, i, valid = 1;

    if (objc != 7) {
	Tcl_WrongNumArgs(interp, 3, objv,
		"appKey appSecret authorization body");
	return TCL_ERROR;
    }
    if (Tcl_GetString(objv[3])[0] == '\0') {
	return SignError(interp, "OPTION", "appKey", "the app key is empty");
    }
    if (Tcl_GetString(objv[4])[0] == '\0') {
	return SignError(interp, "OPTION", "appSecret", "the app secret is "
		"empty: anyone could sign a webhook");
    }

    Tcl_DStringInit(&secret);
    Tcl_DStringInit(&msg);
    AppendUtf8(&secret, utf8, objv[4]);
    AppendUtf8(&msg, utf8, objv[3]);
    AppendUtf8(&msg, utf8, objv[6]);
    rc = TtoHmacSha256(Tcl_DStringValue(&secret),
	    (size_t) Tcl_DStringLength(&secret), Tcl_DStringValue(&msg),
	    (size_t) Tcl_DStringLength(&msg), mac);
    WipeDString(&msg);
    WipeDString(&secret);
    if (rc != 0) {
	return SignError(interp, "STATE", "CRYPTO", "HMAC-SHA256 failed");
    }

    header = Tcl_GetStringFromObj(objv[5], &headerLen);
    while (headerLen > 0 && (*header == ' ' || *header == '\t')) {
	header++;
	headerLen--;
    }
    while (headerLen > 0 && (header[headerLen - 1] == ' '
	    || header[headerLen - 1] == '\t')) {
	headerLen--;
    }
    if (headerLen != 64) {
	valid = 0;
    }
    for (i = 0; valid && i < 64; i++) {
	char c = header[i];
	int nibble;

	if (c >= '0' && c <= '9') {
	    nibble = c - '0';
	} else if (c >= 'a' && c <= 'f') {
	    nibble = c - 'a' + 10;
	} else if (c >= 'A' && c <= 'F') {
	    nibble = c - 'A' + 10;
	} else {
	    valid = 0;
	    break;
	}
	if (i % 2 == 0) {
	    given[i / 2] = (unsigned char) (nibble << 4);
	} else {
	    given[i / 2] |= (unsigned char) nibble;
	}
    }
    if (valid) {
	for (i = 0; i < 32; i++) {
	    diff |= (unsigned char) (mac[i] ^ given[i]);
	}
    }
    memset(mac, 0, sizeof(mac));
    Tcl_SetObjResult(interp, Tcl_NewBooleanObj(valid && diff == 0));
    return TCL_OK;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoTiktokshopSubcmd --
 *
 *	ttoauth2 tiktokshop sign|verifyWebhook ...
 *
 * Results:
 *	A Tcl result.
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

int
TtoTiktokshopSubcmd(
    Tcl_Interp *interp,
    Tcl_Size objc,
    Tcl_Obj *const objv[])
{
    static const char *const forms[] = {"sign", "verifyWebhook", NULL};
    Tcl_Encoding utf8;
    int form, code;

    if (objc < 3) {
	Tcl_WrongNumArgs(interp, 2, objv, "sign|verifyWebhook ?arg ...?");
	return TCL_ERROR;
    }
    if (Tcl_GetIndexFromObj(interp, objv[2], forms, "form", 0, &form)
	    != TCL_OK) {
	return TCL_ERROR;
    }
    utf8 = Tcl_GetEncoding(NULL, "utf-8");
    if (utf8 == NULL) {
	return SignError(interp, "STATE", "ENCODING", "Tcl has no utf-8 "
		"encoding");
    }
    if (form == 0) {
	code = SignCmd(interp, utf8, objc, objv);
    } else {
	code = VerifyWebhookCmd(interp, utf8, objc, objv);
    }
    Tcl_FreeEncoding(utf8);
    return code;
}
