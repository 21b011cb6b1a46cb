/*
 * ttoauth2Sign.c --
 *
 *	The Tcl commands for TikTok Shop's signatures (see TIKTOK.md): the
 *	"sign" query parameter of an API request and the Authorization
 *	header of a webhook.  The signing rules are the provider's, in
 *	ttoauth2Provider.c (TtoTiktokshopSign, TtoTiktokshopWebhookMac);
 *	HMAC-SHA256 itself is the platform's (TtoHmacSha256: libcrypto on
 *	Unix, BCrypt on Windows).  This file reads the arguments.
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
#include <string.h>

static int	SignCmd(Tcl_Interp *interp, Tcl_Size objc,
		    Tcl_Obj *const objv[]);
static int	VerifyWebhookCmd(Tcl_Interp *interp,
		    Tcl_Size objc, Tcl_Obj *const objv[]);

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
    Tcl_DString key, secret, body;
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

    Tcl_DStringInit(&key);
    Tcl_DStringInit(&secret);
    Tcl_DStringInit(&body);
    TtoAppendUtf8(&key, objv[3]);
    TtoAppendUtf8(&secret, objv[4]);
    TtoAppendUtf8(&body, objv[6]);
    rc = TtoTiktokshopWebhookMac(Tcl_DStringValue(&key),
	    (size_t) Tcl_DStringLength(&key), Tcl_DStringValue(&secret),
	    (size_t) Tcl_DStringLength(&secret), Tcl_DStringValue(&body),
	    (size_t) Tcl_DStringLength(&body), mac);
    TtoWipeDString(&body);
    TtoWipeDString(&secret);
    Tcl_DStringFree(&key);
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
