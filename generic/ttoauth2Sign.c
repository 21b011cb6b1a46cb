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

static int	CompareParams(const void *a, const void *b);
static int	SignCmd(Tcl_Interp *interp, Tcl_Size objc,
		    Tcl_Obj *const objv[]);
static int	VerifyWebhookCmd(Tcl_Interp *interp,
		    Tcl_Size objc, Tcl_Obj *const objv[]);

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
 * TtoTiktokshopSign --
 *
 *	The request signature in plain C (for the request method and for
 *	SignCmd): params are the query parameters as UTF-8; those named
 *	"sign" or "access_token" are left out, the rest sorted by name
 *	bytes.  body may be NULL.
 *
 * Results:
 *	0 with out holding 64 lower-case hex digits and a NUL, or -1 when
 *	the platform's HMAC failed.
 *
 * Side effects:
 *	None (the message buffer holding the secret is wiped).
 *
 *----------------------------------------------------------------------
 */

int
TtoTiktokshopSign(
    const char *secret,
    size_t secretLen,
    const char *path,
    size_t pathLen,
    const TtoPairs *params,
    const char *body,
    size_t bodyLen,
    char out[65])
{
    static const char hex[] = "0123456789abcdef";
    SignParam *sorted = NULL;
    Tcl_DString msg;
    unsigned char mac[32];
    int i, count = 0, rc;

    if (params->count > 0) {
	sorted = (SignParam *) ckalloc(sizeof(SignParam)
		* (size_t) params->count);
    }
    for (i = 0; i < params->count; i++) {
	const char *name = params->items[i].name;

	if (strcmp(name, "sign") == 0 || strcmp(name, "access_token") == 0) {
	    continue;
	}
	sorted[count].name = params->items[i].name;
	sorted[count].nameLen = strlen(name);
	sorted[count].value = params->items[i].value;
	sorted[count].valueLen = strlen(params->items[i].value);
	count++;
    }
    if (count > 1) {
	qsort(sorted, (size_t) count, sizeof(SignParam), CompareParams);
    }
    Tcl_DStringInit(&msg);
    Tcl_DStringAppend(&msg, secret, (Tcl_Size) secretLen);
    Tcl_DStringAppend(&msg, path, (Tcl_Size) pathLen);
    for (i = 0; i < count; i++) {
	Tcl_DStringAppend(&msg, sorted[i].name, (Tcl_Size) sorted[i].nameLen);
	Tcl_DStringAppend(&msg, sorted[i].value,
		(Tcl_Size) sorted[i].valueLen);
    }
    if (sorted != NULL) {
	ckfree(sorted);
    }
    if (body != NULL) {
	Tcl_DStringAppend(&msg, body, (Tcl_Size) bodyLen);
    }
    Tcl_DStringAppend(&msg, secret, (Tcl_Size) secretLen);
    rc = TtoHmacSha256(secret, secretLen, Tcl_DStringValue(&msg),
	    (size_t) Tcl_DStringLength(&msg), mac);
    TtoWipeDString(&msg);
    if (rc != 0) {
	return -1;
    }
    for (i = 0; i < 32; i++) {
	out[2 * i] = hex[mac[i] >> 4];
	out[2 * i + 1] = hex[mac[i] & 15];
    }
    out[64] = '\0';
    memset(mac, 0, sizeof(mac));
    return 0;
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
    Tcl_Size objc,
    Tcl_Obj *const objv[])
{
    Tcl_DictSearch search;
    Tcl_Obj *key, *value;
    Tcl_DString secret, path, body;
    TtoPairs params = {NULL, 0, 0};
    Tcl_Size size;
    int done, rc;
    char out[65];

    if (objc < 6 || objc > 7) {
	Tcl_WrongNumArgs(interp, 3, objv, "secret path query ?body?");
	return TCL_ERROR;
    }
    if (Tcl_GetString(objv[3])[0] == '\0') {
	return TtoFail(interp, "OPTION", "secret", "the app secret is "
		"empty");
    }
    if (Tcl_GetString(objv[4])[0] != '/') {
	return TtoFail(interp, "OPTION", "path", "the path must be the "
		"API path alone, beginning with / (such as "
		"/authorization/202309/shops)");
    }
    if (Tcl_DictObjSize(NULL, objv[5], &size) != TCL_OK) {
	return TtoFail(interp, "OPTION", "query", "the query must be a "
		"dict of parameter names and values");
    }

    /*
     * The parameters, path, secret and body as UTF-8; the one signing
     * routine does the rest.
     */

    if (Tcl_DictObjFirst(NULL, objv[5], &search, &key, &value, &done)
	    != TCL_OK) {
	return TtoFail(interp, "OPTION", "query", "the query must be a "
		"dict of parameter names and values");
    }
    for (; !done; Tcl_DictObjNext(&search, &key, &value, &done)) {
	Tcl_DString k, v;

	Tcl_DStringInit(&k);
	Tcl_DStringInit(&v);
	TtoAppendUtf8(&k, key);
	TtoAppendUtf8(&v, value);
	if (memchr(Tcl_DStringValue(&k), 0, (size_t) Tcl_DStringLength(&k))
		|| memchr(Tcl_DStringValue(&v), 0,
		(size_t) Tcl_DStringLength(&v))) {
	    TtoWipeDString(&k);
	    TtoWipeDString(&v);
	    Tcl_DictObjDone(&search);
	    TtoPairsFree(&params);
	    return TtoFail(interp, "OPTION", "query", "a query parameter's "
		    "name or value cannot contain a NUL character");
	}
	TtoPairsAdd(&params, Tcl_DStringValue(&k),
		(size_t) Tcl_DStringLength(&k), Tcl_DStringValue(&v),
		(size_t) Tcl_DStringLength(&v));
	TtoWipeDString(&k);
	TtoWipeDString(&v);
    }
    Tcl_DictObjDone(&search);

    Tcl_DStringInit(&secret);
    Tcl_DStringInit(&path);
    Tcl_DStringInit(&body);
    TtoAppendUtf8(&secret, objv[3]);
    TtoAppendUtf8(&path, objv[4]);
    if (objc == 7) {
	TtoAppendUtf8(&body, objv[6]);
    }
    rc = TtoTiktokshopSign(Tcl_DStringValue(&secret),
	    (size_t) Tcl_DStringLength(&secret), Tcl_DStringValue(&path),
	    (size_t) Tcl_DStringLength(&path), &params,
	    objc == 7 ? Tcl_DStringValue(&body) : NULL,
	    (size_t) Tcl_DStringLength(&body), out);
    TtoWipeDString(&body);
    TtoWipeDString(&path);
    TtoWipeDString(&secret);
    TtoPairsFree(&params);
    if (rc != 0) {
	return TtoFail(interp, "STATE", "CRYPTO", "HMAC-SHA256 failed");
    }
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
	return TtoFail(interp, "OPTION", "appKey", "the app key is empty");
    }
    if (Tcl_GetString(objv[4])[0] == '\0') {
	return TtoFail(interp, "OPTION", "appSecret", "the app secret is "
		"empty: anyone could sign a webhook");
    }

    Tcl_DStringInit(&secret);
    Tcl_DStringInit(&msg);
    TtoAppendUtf8(&secret, objv[4]);
    TtoAppendUtf8(&msg, objv[3]);
    TtoAppendUtf8(&msg, objv[6]);
    rc = TtoHmacSha256(Tcl_DStringValue(&secret),
	    (size_t) Tcl_DStringLength(&secret), Tcl_DStringValue(&msg),
	    (size_t) Tcl_DStringLength(&msg), mac);
    TtoWipeDString(&msg);
    TtoWipeDString(&secret);
    if (rc != 0) {
	return TtoFail(interp, "STATE", "CRYPTO", "HMAC-SHA256 failed");
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
    int form, code;

    if (TtoGetSubcommand(interp, objc, objv, 2, forms, "form",
	    "sign|verifyWebhook ?arg ...?", &form) != TCL_OK) {
	return TCL_ERROR;
    }
    if (form == 0) {
	code = SignCmd(interp, objc, objv);
    } else {
	code = VerifyWebhookCmd(interp, objc, objv);
    }
    return code;
}
