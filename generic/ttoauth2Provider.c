/*
 * ttoauth2Provider.c --
 *
 *	Everything ttoauth2 knows about its two provider profiles, one
 *	record of operations per provider (providerOps below):
 *
 *	tiktokshop  authorize: endpoint + the script's parameters (service_id
 *			...) + state
 *		    GET endpoint?app_key=&app_secret=&auth_code=
 *			&grant_type=authorized_code		 (exchange)
 *		    GET endpoint?app_key=&app_secret=&refresh_token=
 *			&grant_type=refresh_token		 (refresh;
 *			.../token/get becomes .../token/refresh)
 *		    success: HTTP 200 and "code": 0; tokens in "data";
 *		    *_expire_in are absolute Unix times.
 *		    API requests: signed (app_key, timestamp, sign:
 *		    TtoTiktokshopSign), token in x-tts-access-token; "code"
 *		    105002 means the token expired.  Webhooks: signed with the
 *		    app secret over app key + body (TtoTiktokshopWebhookMac).
 *	rfc6749	    authorize: response_type=code, client_id, redirect_uri,
 *		    scope, state, PKCE, resource.
 *		    POST application/x-www-form-urlencoded (section 4.1.3 /
 *		    section 6), client credentials in the body or HTTP Basic
 *		    (section 2.3.1); errors per section 5.2; expires_in is
 *		    relative to receipt.
 *		    API requests: Authorization: Bearer; a 401 with
 *		    error="invalid_token" means the token expired (RFC 6750).
 *
 *	and what the two share: the refusal advice words (REAUTHORIZE,
 *	RETRY, REJECTED), the checks on token answers, and the shape of a
 *	token file (what ttoauth2 adds beside the server's members).
 *	Plain C, no Tcl_Obj: the flow thread uses it too.
 */

#include "ttoauth2Int.h"
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <cjson/cJSON.h>

typedef struct {
    char info[600];
    char msg[300];
} ClassifyText;

typedef struct {
    TtoProvider id;
    const char *name;		/* as -provider and the grant stamp say */
    int pkceDefault;		/* -codechallenge "" means this */
    const char *tokenObject;	/* member the tokens are in; NULL: top */
    const char *const *tokenMembers;	/* read there (rootMembers: top) */
    void (*authorizeParams)(const TtoConfig *cfg, const char *redirectUri,
	    const char *state, const char *challenge, Tcl_DString *urlPtr,
	    int *firstPtr);
    int (*tokenWire)(const TtoTokenRequest *req, Tcl_DString *urlPtr,
	    Tcl_DString *formPtr, Tcl_DString *basicPtr);
    void (*classify)(const cJSON *root, long status, time_t now,
	    TtoTokenResult *res, ClassifyText *t);
    const char *const *fileExpiries;	/* members ttoauth2 writes: the
					 * expiries, or NULL */
    const char *const *ownExpiries;	/* a file made without a response */
    const char *apiTokenHeader;	/* the API request's token header */
    const char *apiTokenPrefix;	/* ... its value before the token */
    int apiJsonBody;		/* a body is JSON unless said otherwise */
} ProviderOps;

static const ProviderOps *Ops(TtoProvider provider);

/*
 * The members token answers are read by.  An answer with one of them
 * twice in the same object is refused: JSON readers disagree on which of
 * the two counts (cJSON takes the first, [ttoauth2 json get] and most
 * others the last), so the token kept could differ from the one a script
 * reads out of accessTokenResponse.
 */

static const char *const rootMembers[] = {
    "code", "message", "data", "error", "error_description",
    "access_token", "refresh_token", "token_type", "expires_at",
    "expires_in", "refresh_expires_at", "refresh_token_expires_in",
    "refresh_expires_in", NULL
};
static const char *const dataMembers[] = {
    "access_token", "refresh_token", "access_token_expire_in",
    "refresh_token_expire_in", NULL
};
static const char *const rfcExpiries[] = {
    "expires_at", "refresh_expires_at", NULL
};
static const char *const tiktokExpiries[] = {
    "access_token_expire_in", "refresh_token_expire_in", NULL
};

static const char *const errorKindNames[] = {
    NULL, "HTTP", "TOKEN", "JSON", "CANCELLED"
};
static const char *const adviceNames[] = {
    NULL, "REAUTHORIZE", "RETRY", "REJECTED"
};

/*
 *----------------------------------------------------------------------
 *
 * TtoErrorKindName, TtoAdviceName, TtoProviderName --
 *
 *	The names API.md gives an error kind (the second word of
 *	-errorcode), an advice word and a provider.
 *
 * Results:
 *	A static string; NULL for TTO_ERR_NONE and TTO_ADVICE_NONE.
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

const char *
TtoErrorKindName(
    TtoErrorKind kind)
{
    return errorKindNames[kind];
}

const char *
TtoAdviceName(
    TtoAdvice advice)
{
    return adviceNames[advice];
}

const char *
TtoProviderName(
    TtoProvider provider)
{
    return Ops(provider)->name;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoProviderResolve --
 *
 *	-provider auto means tiktokshop when the token endpoint's path is
 *	/api/v2/token/get or /api/v2/token/refresh, or its host ends in
 *	tiktok-shops.com or tiktokshop.com; else rfc6749.  The refresh
 *	endpoint decides when there is no token endpoint.
 *
 * Results:
 *	The provider, never TTO_PROVIDER_AUTO.
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

static void
SplitUrl(
    const char *url,
    Tcl_DString *hostPtr,
    Tcl_DString *pathPtr)
{
    const char *p = strstr(url, "://"), *hostStart, *hostEnd, *at, *colon;
    size_t pathLen;

    if (p == NULL) {
	return;
    }
    hostStart = p + 3;
    hostEnd = hostStart + strcspn(hostStart, "/?#");
    at = memchr(hostStart, '@', (size_t) (hostEnd - hostStart));
    if (at) {
	hostStart = at + 1;
    }
    colon = (*hostStart == '[') ? NULL
	    : memchr(hostStart, ':', (size_t) (hostEnd - hostStart));
    Tcl_DStringAppend(hostPtr, hostStart,
	    (Tcl_Size) ((colon ? colon : hostEnd) - hostStart));
    pathLen = strcspn(hostEnd, "?#");
    Tcl_DStringAppend(pathPtr, hostEnd, (Tcl_Size) pathLen);
}

static int
HostIs(
    const char *host,
    const char *domain)
{
    size_t hl = strlen(host), dl = strlen(domain);

    if (hl == dl) {
	return TtoAsciiCaseEqual(host, domain, dl);
    }
    return hl > dl && host[hl - dl - 1] == '.'
	    && TtoAsciiCaseEqual(host + hl - dl, domain, dl);
}

TtoProvider
TtoProviderResolve(
    const char *choice,
    const char *tokenEndpoint,
    const char *refreshEndpoint)
{
    Tcl_DString host, path;
    TtoProvider result = TTO_PROVIDER_RFC6749;
    const char *endpoint = *tokenEndpoint ? tokenEndpoint : refreshEndpoint;

    if (strcmp(choice, "tiktokshop") == 0) {
	return TTO_PROVIDER_TIKTOKSHOP;
    }
    if (strcmp(choice, "rfc6749") == 0) {
	return TTO_PROVIDER_RFC6749;
    }
    Tcl_DStringInit(&host);
    Tcl_DStringInit(&path);
    SplitUrl(endpoint, &host, &path);
    if (strcmp(Tcl_DStringValue(&path), "/api/v2/token/get") == 0
	    || strcmp(Tcl_DStringValue(&path), "/api/v2/token/refresh") == 0
	    || HostIs(Tcl_DStringValue(&host), "tiktok-shops.com")
	    || HostIs(Tcl_DStringValue(&host), "tiktokshop.com")) {
	result = TTO_PROVIDER_TIKTOKSHOP;
    }
    Tcl_DStringFree(&host);
    Tcl_DStringFree(&path);
    return result;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoProviderPkceDefault, TtoProviderRefreshEndpoint --
 *
 *	Whether a flow uses PKCE when -codechallenge is "" (rfc6749 does,
 *	TikTok Shop does not); the refresh URL: -refreshendpoint, else
 *	-tokenendpoint, where for tiktokshop a path ending in /token/get
 *	becomes /token/refresh.
 *
 * Results:
 *	As said; the URL is appended to *dsPtr.
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

int
TtoProviderPkceDefault(
    TtoProvider provider)
{
    return Ops(provider)->pkceDefault;
}

void
TtoProviderRefreshEndpoint(
    TtoProvider provider,
    const char *explicit,
    const char *token,
    Tcl_DString *dsPtr)
{
    const char *q;
    size_t pathEnd;

    if (*explicit) {
	Tcl_DStringAppend(dsPtr, explicit, -1);
	return;
    }
    q = strpbrk(token, "?#");
    pathEnd = q ? (size_t) (q - token) : strlen(token);
    if (provider == TTO_PROVIDER_TIKTOKSHOP && pathEnd >= 10
	    && strncmp(token + pathEnd - 10, "/token/get", 10) == 0) {
	Tcl_DStringAppend(dsPtr, token, (Tcl_Size) pathEnd - 4);
	Tcl_DStringAppend(dsPtr, "/refresh", -1);
	Tcl_DStringAppend(dsPtr, token + pathEnd, -1);
	return;
    }
    Tcl_DStringAppend(dsPtr, token, -1);
}

/*
 *----------------------------------------------------------------------
 *
 * TtoProviderFlowCheck --
 *
 *	What a provider needs before a flow can work.  TikTok Shop sends
 *	the browser to the redirect URL registered for the app in Partner
 *	Center, never to one the authorize URL names: a random port
 *	(-listenport 0) cannot be reached, and without service_id the
 *	authorize page fails.  Both would otherwise show only when
 *	-authtimeout runs out.
 *
 * Results:
 *	NULL, or the message of a {TTOAUTH2 *kindPtr *wordPtr} error.
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

const char *
TtoProviderFlowCheck(
    const TtoConfig *cfg,
    int listenPort,
    const char **kindPtr,
    const char **wordPtr)
{
    const char *serviceId;

    if (cfg->provider != TTO_PROVIDER_TIKTOKSHOP) {
	return NULL;
    }
    if (listenPort == 0) {
	*kindPtr = "OPTION";
	*wordPtr = "-listenport";
	return "TikTok Shop redirects the browser to the redirect URL "
		"registered for the app in Partner Center (such as "
		"http://localhost:3017/): set -listenport to that URL's port "
		"(0 would listen on a random port the redirect cannot reach)";
    }
    serviceId = TtoPairsGet(&cfg->authParams, "service_id");
    if (serviceId == NULL || *serviceId == '\0') {
	*kindPtr = "STATE";
	*wordPtr = "service_id";
	return "TikTok Shop's authorize page needs the app's service ID: "
		"call \"addAuthQueryParam service_id ...\" (Partner Center "
		"shows it) before startAuth";
    }
    return NULL;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoProviderAuthorizeUrl --
 *
 *	The URL the browser is sent to for a flow: the authorization
 *	endpoint with the provider's parameters.  verifier is the flow's
 *	PKCE verifier, or NULL.
 *
 * Results:
 *	The URL is appended to *urlPtr.
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

/*
 * Appends endpoint to *urlPtr, ready for parameters: sets *firstPtr to 0
 * when the endpoint has parameters already.
 */

static void
StartQuery(
    Tcl_DString *urlPtr,
    const char *endpoint,
    int *firstPtr)
{
    size_t len = strlen(endpoint);

    *firstPtr = 1;
    Tcl_DStringAppend(urlPtr, endpoint, -1);
    if (strchr(endpoint, '?') == NULL) {
	Tcl_DStringAppend(urlPtr, "?", 1);
    } else if (len > 0 && endpoint[len - 1] != '?'
	    && endpoint[len - 1] != '&') {
	*firstPtr = 0;
    }
}

static void
AppendPairs(
    Tcl_DString *dsPtr,
    int *firstPtr,
    const TtoPairs *pairs)
{
    int i;

    for (i = 0; pairs && i < pairs->count; i++) {
	TtoQueryAppend(dsPtr, firstPtr, pairs->items[i].name,
		pairs->items[i].value);
    }
}

static void
AppendChallenge(
    Tcl_DString *urlPtr,
    int *firstPtr,
    const char *challenge,
    const char *method)
{
    if (challenge) {
	TtoQueryAppend(urlPtr, firstPtr, "code_challenge", challenge);
	TtoQueryAppend(urlPtr, firstPtr, "code_challenge_method", method);
    }
}

static void
RfcAuthorizeParams(
    const TtoConfig *cfg,
    const char *redirectUri,
    const char *state,
    const char *challenge,
    Tcl_DString *urlPtr,
    int *firstPtr)
{
    TtoQueryAppend(urlPtr, firstPtr, "response_type", "code");
    TtoQueryAppend(urlPtr, firstPtr, "client_id", cfg->clientId);
    TtoQueryAppend(urlPtr, firstPtr, "redirect_uri", redirectUri);
    if (*cfg->scope) {
	TtoQueryAppend(urlPtr, firstPtr, "scope", cfg->scope);
    }
    TtoQueryAppend(urlPtr, firstPtr, "state", state);
    AppendChallenge(urlPtr, firstPtr, challenge, cfg->codeChallengeMethod);
    if (*cfg->resource) {
	TtoQueryAppend(urlPtr, firstPtr, "resource", cfg->resource);
    }
    AppendPairs(urlPtr, firstPtr, &cfg->authParams);
}

static void
TiktokAuthorizeParams(
    const TtoConfig *cfg,
    const char *redirectUri,
    const char *state,
    const char *challenge,
    Tcl_DString *urlPtr,
    int *firstPtr)
{
    /* service_id & co. (added by the script), then state. */
    AppendPairs(urlPtr, firstPtr, &cfg->authParams);
    AppendChallenge(urlPtr, firstPtr, challenge, cfg->codeChallengeMethod);
    TtoQueryAppend(urlPtr, firstPtr, "state", state);
}

void
TtoProviderAuthorizeUrl(
    const TtoConfig *cfg,
    const char *redirectUri,
    const char *state,
    const char *verifier,
    Tcl_DString *urlPtr)
{
    Tcl_DString challenge;
    int first;

    Tcl_DStringInit(&challenge);
    if (verifier) {
	TtoPkceChallenge(&challenge, verifier, cfg->codeChallengeMethod);
    }
    StartQuery(urlPtr, cfg->authorizationEndpoint, &first);
    Ops(cfg->provider)->authorizeParams(cfg, redirectUri, state,
	    verifier ? Tcl_DStringValue(&challenge) : NULL, urlPtr, &first);
    Tcl_DStringFree(&challenge);
}

/*
 *----------------------------------------------------------------------
 *
 * TtoProviderTokenWire --
 *
 *	A token request as it goes on the wire: the URL, and for a POST the
 *	form body and the Basic authorization header line.
 *
 * Results:
 *	1: POST the form; 0: GET the URL.  The DStrings are appended to.
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

static const char *
RequestEndpoint(
    const TtoTokenRequest *req)
{
    return (req->grant == TTO_GRANT_CODE) ? req->cfg->tokenEndpoint
	    : req->cfg->refreshEndpoint;
}

static const TtoPairs *
RequestExtra(
    const TtoTokenRequest *req)
{
    return (req->grant == TTO_GRANT_CODE) ? &req->cfg->tokenParams
	    : &req->cfg->refreshParams;
}

static int
TiktokTokenWire(
    const TtoTokenRequest *req,
    Tcl_DString *urlPtr,
    Tcl_DString *formPtr,
    Tcl_DString *basicPtr)
{
    const TtoConfig *cfg = req->cfg;
    int first;

    StartQuery(urlPtr, RequestEndpoint(req), &first);
    TtoQueryAppend(urlPtr, &first, "app_key", cfg->clientId);
    TtoQueryAppend(urlPtr, &first, "app_secret", cfg->clientSecret);
    if (req->grant == TTO_GRANT_CODE) {
	TtoQueryAppend(urlPtr, &first, "auth_code", req->code);
	TtoQueryAppend(urlPtr, &first, "grant_type", "authorized_code");
    } else {
	TtoQueryAppend(urlPtr, &first, "refresh_token", req->refreshToken);
	TtoQueryAppend(urlPtr, &first, "grant_type", "refresh_token");
    }
    AppendPairs(urlPtr, &first, RequestExtra(req));
    return 0;
}

static int
RfcTokenWire(
    const TtoTokenRequest *req,
    Tcl_DString *urlPtr,
    Tcl_DString *formPtr,
    Tcl_DString *basicPtr)
{
    const TtoConfig *cfg = req->cfg;
    const char *id = cfg->clientId, *secret = cfg->clientSecret;
    int first = 1;

    Tcl_DStringAppend(urlPtr, RequestEndpoint(req), -1);
    if (req->grant == TTO_GRANT_CODE) {
	TtoQueryAppend(formPtr, &first, "grant_type", "authorization_code");
	TtoQueryAppend(formPtr, &first, "code", req->code);
	TtoQueryAppend(formPtr, &first, "redirect_uri", req->redirectUri);
	if (req->codeVerifier && *req->codeVerifier) {
	    TtoQueryAppend(formPtr, &first, "code_verifier", req->codeVerifier);
	}
    } else {
	TtoQueryAppend(formPtr, &first, "grant_type", "refresh_token");
	TtoQueryAppend(formPtr, &first, "refresh_token", req->refreshToken);
	if (*cfg->scope) {
	    TtoQueryAppend(formPtr, &first, "scope", cfg->scope);
	}
    }
    if (*cfg->resource) {
	TtoQueryAppend(formPtr, &first, "resource", cfg->resource);
    }
    if (cfg->useBasicAuth && *secret) {
	/* RFC 6749 2.3.1: form-encode id and secret, then Basic. */
	Tcl_DString pair;

	Tcl_DStringInit(&pair);
	TtoUrlEncode(&pair, id, strlen(id));
	Tcl_DStringAppend(&pair, ":", 1);
	TtoUrlEncode(&pair, secret, strlen(secret));
	Tcl_DStringAppend(basicPtr, "Authorization: Basic ", -1);
	TtoBase64Encode(basicPtr, (unsigned char *) Tcl_DStringValue(&pair),
		(size_t) Tcl_DStringLength(&pair), 0);
	TtoWipeDString(&pair);
    } else {
	/* Public clients (no secret) identify themselves with client_id. */
	TtoQueryAppend(formPtr, &first, "client_id", id);
	if (*secret) {
	    TtoQueryAppend(formPtr, &first, "client_secret", secret);
	}
    }
    AppendPairs(formPtr, &first, RequestExtra(req));
    return 1;
}

int
TtoProviderTokenWire(
    const TtoTokenRequest *req,
    Tcl_DString *urlPtr,
    Tcl_DString *formPtr,
    Tcl_DString *basicPtr)
{
    return Ops(req->cfg->provider)->tokenWire(req, urlPtr, formPtr,
	    basicPtr);
}

/*
 *----------------------------------------------------------------------
 *
 * TtoTokenClassify --
 *
 *	Decides what a token endpoint's answer means.  Pure function of
 *	its inputs (the time is passed in), so it can be fuzzed.
 *
 * Results:
 *	Fills res: on success ok=1 and the tokens and expiries; otherwise
 *	errorKind TTO_ERR_HTTP (status), TTO_ERR_TOKEN (the provider said
 *	no: code, message and advice) or TTO_ERR_JSON (an answer we cannot
 *	read), with failureInfo.  res->body is left alone.  With
 *	TTO_PROVIDER_AUTO (a token file) the answer's shape decides the
 *	profile, left in res->provider.
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

/*
 *----------------------------------------------------------------------
 *
 * TtoTokenFail --
 *
 *	Marks a token result failed: the error kind, the -errorcode words
 *	after it (NULL: none) and failureInfo.
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Stores copies of the strings in *res.
 *
 *----------------------------------------------------------------------
 */

void
TtoTokenFail(
    TtoTokenResult *res,
    TtoErrorKind kind,
    const char *word0,
    const char *word1,
    const char *info)
{
    res->ok = 0;
    res->errorKind = kind;
    res->errorWords[0] = TtoStrDup(word0);
    res->errorWords[1] = TtoStrDup(word1);
    res->failureInfo = TtoStrDup(info);
}

/*
 * What a refusal of the token endpoint means for the script: REAUTHORIZE
 * when the grant is gone and only a new authorization helps (TikTok
 * 36004001 refresh token expired, 36004004 invalid auth code, 36004005
 * no such authorization; OAuth invalid_grant), RETRY when the server
 * asks to come back later (TikTok 36009002 rate limited; OAuth
 * temporarily_unavailable, slow_down), else REJECTED (the request or
 * the client's configuration is wrong).
 */

static void
SetRefusal(
    TtoTokenResult *res,
    const char *code,
    const char *message,
    const char *info)
{
    static const struct {
	const char *code;
	TtoAdvice advice;
    } advice[] = {
	{"36004001", TTO_ADVICE_REAUTHORIZE},
	{"36004004", TTO_ADVICE_REAUTHORIZE},
	{"36004005", TTO_ADVICE_REAUTHORIZE},
	{"invalid_grant", TTO_ADVICE_REAUTHORIZE},
	{"36009002", TTO_ADVICE_RETRY},
	{"temporarily_unavailable", TTO_ADVICE_RETRY},
	{"slow_down", TTO_ADVICE_RETRY},
	{NULL, TTO_ADVICE_REJECTED}
    };
    int i;

    TtoTokenFail(res, TTO_ERR_TOKEN, code, message, info);
    for (i = 0; advice[i].code && strcmp(code, advice[i].code) != 0; i++) {
	/* look for it */
    }
    res->advice = advice[i].advice;
}

static const char *
StringMember(
    const cJSON *obj,
    const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);

    return (cJSON_IsString(item) && item->valuestring) ? item->valuestring
	    : NULL;
}

static const char *
RepeatedMember(
    const cJSON *obj,
    const char *const *names)
{
    const cJSON *child;
    unsigned long seen = 0;	/* a bit per name */
    int i;

    if (!cJSON_IsObject(obj)) {
	return NULL;
    }
    for (child = obj->child; child != NULL; child = child->next) {
	if (child->string == NULL) {
	    continue;
	}
	for (i = 0; names[i] != NULL; i++) {
	    if (strcmp(child->string, names[i]) == 0) {
		if (seen & (1UL << i)) {
		    return names[i];
		}
		seen |= 1UL << i;
		break;
	    }
	}
    }
    return NULL;
}

/*
 * A short printable excerpt of a server-sent string for failureInfo:
 * bounded, control characters replaced.
 */

static void
Excerpt(
    char *dst,
    size_t dstLen,
    const char *src)
{
    size_t i;

    for (i = 0; src && src[i] && i + 1 < dstLen; i++) {
	unsigned char c = (unsigned char) src[i];
	dst[i] = (c < 32 || c == 127) ? ' ' : (char) c;
    }
    dst[i] = '\0';
}

static void
HttpFailure(
    TtoTokenResult *res,
    long status,
    const cJSON *root,
    ClassifyText *t)
{
    char statusWord[32];

    snprintf(statusWord, sizeof(statusWord), "%ld", status);
    snprintf(t->info, sizeof(t->info), "token endpoint answered HTTP %ld%s",
	    status, root ? "" : " with a body that is not JSON");
    TtoTokenFail(res, TTO_ERR_HTTP, statusWord, NULL, t->info);
}

/*
 * The tokens of a successful answer in obj (the top or "data").
 */

static int
TakeTokens(
    const cJSON *obj,
    TtoTokenResult *res)
{
    const char *access = StringMember(obj, "access_token");
    const char *refresh = StringMember(obj, "refresh_token");

    if (access == NULL || *access == '\0') {
	return 0;
    }
    res->accessToken = TtoStrDup(access);
    res->refreshToken = (refresh && *refresh) ? TtoStrDup(refresh) : NULL;
    res->ok = 1;
    return 1;
}

static void
TiktokClassify(
    const cJSON *root,
    long status,
    time_t now,
    TtoTokenResult *res,
    ClassifyText *t)
{
    const cJSON *data;
    long long value;

    if (status != 200) {
	HttpFailure(res, status, root, t);
	return;
    }
    if (!cJSON_IsObject(root)) {
	TtoTokenFail(res, TTO_ERR_JSON, NULL, NULL, "token endpoint answered "
		"HTTP 200 with a body that is not a JSON object");
	return;
    }
    if (!TtoJsonWide(cJSON_GetObjectItemCaseSensitive(root, "code"),
	    &value)) {
	TtoTokenFail(res, TTO_ERR_JSON, NULL, NULL, "token endpoint answered "
		"JSON without a numeric \"code\" member");
	return;
    }
    if (value != 0) {
	const char *message = StringMember(root, "message");
	char codeWord[32];

	Excerpt(t->msg, sizeof(t->msg), message ? message : "");
	snprintf(codeWord, sizeof(codeWord), "%lld", value);
	snprintf(t->info, sizeof(t->info), "TikTok Shop error %lld: %s",
		value, message ? t->msg : "(no message)");
	SetRefusal(res, codeWord, t->msg, t->info);
	return;
    }
    data = cJSON_GetObjectItemCaseSensitive(root, "data");
    if (!TakeTokens(data, res)) {
	TtoTokenFail(res, TTO_ERR_JSON, NULL, NULL, "token endpoint answered "
		"\"code\": 0 without data.access_token");
	return;
    }
    res->tokenType = TtoStrDup("");
    if (TtoJsonWide(cJSON_GetObjectItemCaseSensitive(data,
	    "access_token_expire_in"), &value)) {
	res->expiresAt = value;
    }
    if (TtoJsonWide(cJSON_GetObjectItemCaseSensitive(data,
	    "refresh_token_expire_in"), &value)) {
	res->refreshExpiresAt = value;
    }
}

/*
 * An expiry of an RFC 6749 answer: the absolute member of our own saved
 * files, else the first of the relative ones, counted from now.
 */

static long long
RfcExpiry(
    const cJSON *root,
    const char *absolute,
    const char *const *relative,
    time_t now)
{
    long long value;

    if (TtoJsonWide(cJSON_GetObjectItemCaseSensitive(root, absolute),
	    &value)) {
	return value;
    }
    for (; *relative; relative++) {
	if (TtoJsonWide(cJSON_GetObjectItemCaseSensitive(root, *relative),
		&value) && value >= 0 && value < (1LL << 40)) {
	    return (long long) now + value;
	}
    }
    return -1;
}

static void
RfcClassify(
    const cJSON *root,
    long status,
    time_t now,
    TtoTokenResult *res,
    ClassifyText *t)
{
    static const char *const accessIn[] = {"expires_in", NULL};
    static const char *const refreshIn[] = {
	"refresh_token_expires_in", "refresh_expires_in", NULL
    };
    const char *tokenType;

    if (cJSON_IsObject(root) && StringMember(root, "error")) {
	const char *desc = StringMember(root, "error_description");
	char err[120];

	Excerpt(err, sizeof(err), StringMember(root, "error"));
	Excerpt(t->msg, sizeof(t->msg), desc ? desc : "");
	snprintf(t->info, sizeof(t->info), "token endpoint error %s (HTTP "
		"%ld)%s%s", err, status, desc ? ": " : "", t->msg);
	SetRefusal(res, err, t->msg, t->info);
	return;
    }
    if (status < 200 || status >= 300) {
	HttpFailure(res, status, root, t);
	return;
    }
    if (!cJSON_IsObject(root)) {
	snprintf(t->info, sizeof(t->info), "token endpoint answered HTTP %ld "
		"with a body that is not a JSON object", status);
	TtoTokenFail(res, TTO_ERR_JSON, NULL, NULL, t->info);
	return;
    }
    if (!TakeTokens(root, res)) {
	TtoTokenFail(res, TTO_ERR_JSON, NULL, NULL,
		"token response has no access_token");
	return;
    }
    tokenType = StringMember(root, "token_type");
    res->tokenType = TtoStrDup(tokenType ? tokenType : "");
    res->expiresAt = RfcExpiry(root, "expires_at", accessIn, now);
    res->refreshExpiresAt = RfcExpiry(root, "refresh_expires_at", refreshIn,
	    now);
}

/*
 * The object a provider's tokens are in (root itself, or its "data").
 */

static const cJSON *
TokenObject(
    const ProviderOps *ops,
    const cJSON *root)
{
    return ops->tokenObject
	    ? cJSON_GetObjectItemCaseSensitive(root, ops->tokenObject) : root;
}

/*
 * The shape of a token file: the provider whose token object holds an
 * access token, else rfc6749.
 */

static TtoProvider
ShapeOf(
    const cJSON *root)
{
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");

    return (cJSON_IsObject(data)
	    && cJSON_GetObjectItemCaseSensitive(data, "access_token"))
	    ? TTO_PROVIDER_TIKTOKSHOP : TTO_PROVIDER_RFC6749;
}

void
TtoTokenClassify(
    TtoProvider provider,
    long status,
    const char *body,
    size_t len,
    time_t now,
    TtoTokenResult *res)
{
    cJSON *root = NULL;
    const cJSON *tokens;
    const ProviderOps *ops;
    const char *twice;
    ClassifyText t;

    res->ok = 0;
    res->httpStatus = status;
    res->expiresAt = res->refreshExpiresAt = -1;
    if (body && len > 0) {
	root = TtoJsonParse(body, len, NULL, NULL);
    }
    if (provider == TTO_PROVIDER_AUTO) {
	/* A token file: its shape says the profile. */
	provider = ShapeOf(root);
	if (!cJSON_IsObject(root)) {
	    TtoTokenFail(res, TTO_ERR_JSON, NULL, NULL, root
		    ? "not a JSON object" : "not valid JSON");
	    goto done;
	}
    }
    res->provider = provider;
    ops = Ops(provider);
    tokens = cJSON_IsObject(root) ? TokenObject(ops, root) : NULL;
    if (cJSON_IsObject(root) && (TtoJsonHasNul(root, rootMembers)
	    || (tokens != root && cJSON_IsObject(tokens)
	    && TtoJsonHasNul(tokens, ops->tokenMembers)))) {
	/* A member we read with a NUL in its name or value. */
	TtoTokenFail(res, TTO_ERR_JSON, NULL, NULL, "token response contains "
		"a NUL character (\\u0000) in a string");
	goto done;
    }
    if (status >= 300 && status < 400) {
	char statusWord[32];

	snprintf(statusWord, sizeof(statusWord), "%ld", status);
	snprintf(t.info, sizeof(t.info), "token endpoint answered HTTP %ld, "
		"a redirect; token requests never follow redirects", status);
	TtoTokenFail(res, TTO_ERR_HTTP, statusWord, NULL, t.info);
	goto done;
    }
    twice = RepeatedMember(root, rootMembers);
    if (twice == NULL && tokens != root) {
	twice = RepeatedMember(tokens, ops->tokenMembers);
    }
    if (twice != NULL) {
	snprintf(t.info, sizeof(t.info), "token response has the member "
		"\"%s\" more than once", twice);
	TtoTokenFail(res, TTO_ERR_JSON, NULL, NULL, t.info);
	goto done;
    }
    ops->classify(root, status, now, res, &t);

  done:
    cJSON_Delete(root);
}

/*
 *----------------------------------------------------------------------
 *
 * TtoTokenResultFree --
 *
 *	Frees (wiping) what a TtoTokenResult holds.
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	The result is empty afterwards (and may be freed again).
 *
 *----------------------------------------------------------------------
 */

void
TtoTokenResultFree(
    TtoTokenResult *res)
{
    char **strings[] = {
	&res->body, &res->accessToken, &res->refreshToken, &res->tokenType,
	&res->errorWords[0], &res->errorWords[1], &res->failureInfo
    };
    size_t i;

    for (i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
	TtoSecretFree(*strings[i]);
	*strings[i] = NULL;
    }
    res->bodyLen = 0;
    res->ok = 0;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoStoreFormat --
 *
 *	The text of a token file for a snapshot of an object's tokens: the
 *	last response re-indented with every member's text as received,
 *	and beside them what ttoauth2 adds or changed.  The server's
 *	members are kept as received: the file is made from the response's
 *	own text by the re-indenter (TtoJsonPretty), which copies every
 *	string and number byte for byte, so integers beyond 2^53,
 *	exponents, \u escapes and unknown members survive any number of
 *	load/save round trips.  What ttoauth2 adds sits at the end of the
 *	object the tokens are in, replacing an earlier one of its own
 *	rather than repeating it:
 *
 *	    "expires_at"		rfc6749: absolute Unix time (the
 *	    "refresh_expires_at"	response has only relative expires_in)
 *	    "refresh_token"		kept from before when a refresh
 *					response did not rotate it (RFC 6749 6)
 *	    "ttoauth2": {"provider": "tiktokshop"|"rfc6749",
 *			 "client_id": "...", "token_endpoint": "..."}
 *
 *	The last one, the grant stamp, says whose grant the tokens are (a
 *	response alone names neither the client nor the endpoint), so that
 *	an object never adopts another grant's tokens; never the secret.
 *	A token the object holds that differs from the response's (set by
 *	hand since) replaces it.  TikTok Shop responses carry absolute
 *	expiries and a refresh token already.
 *
 * Results:
 *	A ckalloc'ed, pretty-printed JSON text, or NULL on memory failure.
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

typedef struct {
    TtoJsonEdit edits[6];
    char *vals[6];		/* the edits' texts, cJSON allocated */
    int n;
} Edits;

/*
 * Adds an edit of obj: the member name replaced by value (taken; NULL:
 * the integer number) when it differs from what the text has, or added
 * when missing.
 */

static void
AddEdit(
    const cJSON *obj,
    const char *name,
    cJSON *value,
    long long number,
    Edits *e)
{
    const cJSON *child;
    int index = 0;
    long long have;
    char buf[32];

    for (child = obj ? obj->child : NULL; child;
	    child = child->next, index++) {
	if (child->string && strcmp(child->string, name) == 0) {
	    break;
	}
    }
    if (obj == NULL || (child && (value ? cJSON_Compare(child, value, 1)
	    : (TtoJsonWide(child, &have) && have == number)))) {
	cJSON_Delete(value);		/* as the server sent it */
	return;
    }
    if (value) {
	e->vals[e->n] = cJSON_PrintUnformatted(value);
	cJSON_Delete(value);
    } else {
	snprintf(buf, sizeof(buf), "%lld", number);
	e->vals[e->n] = cJSON_malloc(strlen(buf) + 1);
	if (e->vals[e->n]) {
	    strcpy(e->vals[e->n], buf);
	}
    }
    if (e->vals[e->n] == NULL) {
	return;
    }
    e->edits[e->n].index = child ? index : -1;
    e->edits[e->n].name = name;
    e->edits[e->n].json = e->vals[e->n];
    e->n++;
}

char *
TtoStoreFormat(
    const TtoTokenSnapshot *snap)
{
    cJSON *root = NULL, *own = NULL, *stamp;
    const cJSON *tokens = NULL, *child;
    const ProviderOps *ops = Ops(snap->provider);
    const char *const *expiries;
    const char *src = snap->body, *access, *refresh;
    char *compact = NULL, *pretty = NULL;
    size_t srcLen = snap->bodyLen;
    Tcl_DString ds;
    Edits e;
    int target = -1, i;

    e.n = 0;
    access = snap->accessToken ? snap->accessToken : "";
    refresh = snap->refreshToken ? snap->refreshToken : "";
    if (snap->body && snap->bodyLen > 0) {
	root = TtoJsonParse(snap->body, snap->bodyLen, NULL, NULL);
    }
    if (cJSON_IsObject(root)) {
	ops = Ops(ShapeOf(root));
	tokens = TokenObject(ops, root);
    }
    if (!cJSON_GetObjectItemCaseSensitive(tokens, "access_token")) {
	/* No usable response (tokens set by hand): write our own shape. */
	cJSON_Delete(root);
	ops = Ops(snap->provider);
	root = own = cJSON_CreateObject();
	if (root == NULL) {
	    return NULL;
	}
	if (ops->tokenObject) {
	    cJSON_AddNumberToObject(root, "code", 0);
	    cJSON_AddStringToObject(root, "message", "success");
	    tokens = cJSON_AddObjectToObject(root, ops->tokenObject);
	    cJSON_AddStringToObject((cJSON *) tokens, "access_token", access);
	    cJSON_AddStringToObject((cJSON *) tokens, "refresh_token",
		    refresh);
	} else {
	    tokens = root;
	    cJSON_AddStringToObject(root, "access_token", access);
	    if (snap->tokenType && *snap->tokenType) {
		cJSON_AddStringToObject(root, "token_type", snap->tokenType);
	    }
	    if (*refresh) {
		cJSON_AddStringToObject(root, "refresh_token", refresh);
	    }
	}
	expiries = ops->ownExpiries;
    } else {
	/* As received, with the object's current tokens. */
	if (*access) {
	    AddEdit(tokens, "access_token", cJSON_CreateString(access), 0, &e);
	}
	if (*refresh) {
	    AddEdit(tokens, "refresh_token", cJSON_CreateString(refresh), 0,
		    &e);
	}
	expiries = ops->fileExpiries;
    }
    if (tokens != root) {
	for (child = root->child, target = 0; child != tokens;
		child = child->next) {
	    target++;
	}
    }
    for (i = 0; expiries && expiries[i]; i++) {
	long long t = i ? snap->refreshExpiresAt : snap->expiresAt;

	if (t >= 0) {
	    AddEdit(tokens, expiries[i], NULL, t, &e);
	}
    }
    if (snap->stampClientId && *snap->stampClientId
	    && (stamp = cJSON_CreateObject()) != NULL) {
	cJSON_AddStringToObject(stamp, "provider", TtoProviderName(
		snap->provider));
	cJSON_AddStringToObject(stamp, "client_id", snap->stampClientId);
	cJSON_AddStringToObject(stamp, "token_endpoint",
		snap->stampEndpoint ? snap->stampEndpoint : "");
	AddEdit(tokens, "ttoauth2", stamp, 0, &e);
    }
    if (own) {
	compact = cJSON_PrintUnformatted(own);
	src = compact;
	srcLen = compact ? strlen(compact) : 0;
    }

    Tcl_DStringInit(&ds);
    if (src != NULL && TtoJsonPretty(src, srcLen, target, e.edits, e.n,
	    &ds)) {
	for (i = 0; i < e.n && e.edits[i].json[0] != '{'; i++) {
	    /* look for an added object */
	}
	if (i < e.n) {
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
    for (i = 0; i < e.n; i++) {
	TtoWipe(e.vals[i], strlen(e.vals[i]));
	cJSON_free(e.vals[i]);
    }
    return pretty;
}

/*
 * TikTok Shop's signatures.  A query parameter, as UTF-8 (ckalloc'ed, NUL-terminated).
 */

typedef struct {
    char *name;
    size_t nameLen;
    char *value;
    size_t valueLen;
} SignParam;

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
 *	The request signature (for the request method and for
 *	[ttoauth2 tiktokshop sign]): params are the query parameters as UTF-8; those named
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
 * TtoTiktokshopWebhookMac --
 *
 *	The MAC TikTok Shop puts (in hex) in a webhook's Authorization
 *	header: HMAC-SHA256 with the app secret over the app key followed
 *	by the body, all as UTF-8.
 *
 * Results:
 *	0 with mac filled, or -1 when the platform's HMAC failed.
 *
 * Side effects:
 *	None (the message buffer is wiped).
 *
 *----------------------------------------------------------------------
 */

int
TtoTiktokshopWebhookMac(
    const char *appKey,
    size_t appKeyLen,
    const char *secret,
    size_t secretLen,
    const char *body,
    size_t bodyLen,
    unsigned char mac[32])
{
    Tcl_DString msg;
    int rc;

    Tcl_DStringInit(&msg);
    Tcl_DStringAppend(&msg, appKey, (Tcl_Size) appKeyLen);
    Tcl_DStringAppend(&msg, body, (Tcl_Size) bodyLen);
    rc = TtoHmacSha256(secret, secretLen, Tcl_DStringValue(&msg),
	    (size_t) Tcl_DStringLength(&msg), mac);
    TtoWipeDString(&msg);
    return rc ? -1 : 0;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoProviderApiCheck, TtoProviderApiSign --
 *
 *	Whether an API request can be made with cfg (TikTok Shop signs with
 *	the app key and secret: both must be set); and the provider's part
 *	of an API request's query (params, in order):
 *	for tiktokshop app_key, timestamp and shop_cipher replace any the
 *	caller gave and "sign" is added (the signature goes to sign[] too);
 *	rfc6749 adds nothing.
 *
 * Results:
 *	TtoProviderApiCheck: NULL, or the message of a STATE error.
 *	TtoProviderApiSign: 0, or -1 when the platform's HMAC failed.
 *
 * Side effects:
 *	Changes *params.
 *
 *----------------------------------------------------------------------
 */

const char *
TtoProviderApiCheck(
    const TtoApiConfig *cfg)
{
    if (cfg->provider == TTO_PROVIDER_TIKTOKSHOP
	    && (*cfg->clientId == '\0' || *cfg->clientSecret == '\0')) {
	return "a TikTok Shop API request is signed with the app key and "
		"secret: set -clientid and -clientsecret";
    }
    return NULL;
}

int
TtoProviderApiSign(
    const TtoApiConfig *cfg,
    const char *path,
    size_t pathLen,
    TtoPairs *params,
    const char *body,
    size_t bodyLen,
    char sign[65])
{
    TtoPairs mine = {NULL, 0, 0};
    char stamp[32];
    int i;

    sign[0] = '\0';
    if (cfg->provider != TTO_PROVIDER_TIKTOKSHOP) {
	return 0;
    }
    /* Ours replace any the caller gave; the rest keep their order. */
    for (i = 0; i < params->count; i++) {
	const char *name = params->items[i].name;

	if (strcmp(name, "sign") && strcmp(name, "app_key")
		&& strcmp(name, "timestamp")) {
	    TtoPairsAdd(&mine, name, strlen(name), params->items[i].value,
		    strlen(params->items[i].value));
	}
    }
    TtoPairsFree(params);
    *params = mine;
    snprintf(stamp, sizeof(stamp), "%lld", (long long) time(NULL));
    TtoPairsAdd(params, "app_key", 7, cfg->clientId, strlen(cfg->clientId));
    TtoPairsAdd(params, "timestamp", 9, stamp, strlen(stamp));
    if (*cfg->shopCipher && TtoPairsGet(params, "shop_cipher") == NULL) {
	TtoPairsAdd(params, "shop_cipher", 11, cfg->shopCipher,
		strlen(cfg->shopCipher));
    }
    if (TtoTiktokshopSign(cfg->clientSecret, strlen(cfg->clientSecret),
	    path, pathLen, params, body, bodyLen, sign) != 0) {
	return -1;
    }
    TtoPairsAdd(params, "sign", 4, sign, 64);
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoProviderApiHeader, TtoProviderApiJsonBody, TtoProviderApiCode,
 * TtoProviderApiExpired --
 *
 *	The rest of an API request's provider knowledge: the header that
 *	carries the access token (name and the text before the token); a
 *	body is JSON unless the caller says otherwise; the answer's "code"
 *	and "message" (tiktokshop; 0 for none to report); and whether an
 *	answer says the access token is no longer good (tiktokshop: "code"
 *	105002; rfc6749: 401 with WWW-Authenticate error="invalid_token",
 *	RFC 6750 3.1).
 *
 * Results:
 *	As said.  TtoProviderApiCode: 1 when the provider's answers carry a
 *	code (*codePtr -1 and *messagePtr NULL when this one has none;
 *	*messagePtr points into *rootPtr, free with cJSON_Delete).
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

const char *
TtoProviderApiHeader(
    TtoProvider provider,
    const char **prefixPtr)
{
    *prefixPtr = Ops(provider)->apiTokenPrefix;
    return Ops(provider)->apiTokenHeader;
}

int
TtoProviderApiJsonBody(
    TtoProvider provider)
{
    return Ops(provider)->apiJsonBody;
}

int
TtoProviderApiCode(
    TtoProvider provider,
    const char *body,
    size_t len,
    long long *codePtr,
    const char **messagePtr,
    cJSON **rootPtr)
{
    const cJSON *item;

    *codePtr = -1;
    *messagePtr = NULL;
    *rootPtr = NULL;
    if (provider != TTO_PROVIDER_TIKTOKSHOP) {
	*codePtr = 0;
	return 0;
    }
    if (len > 0) {
	*rootPtr = TtoJsonParse(body, len, NULL, NULL);
    }
    if (cJSON_IsObject(*rootPtr)) {
	TtoJsonWide(cJSON_GetObjectItemCaseSensitive(*rootPtr, "code"),
		codePtr);
	item = cJSON_GetObjectItemCaseSensitive(*rootPtr, "message");
	if (cJSON_IsString(item) && item->valuestring) {
	    *messagePtr = item->valuestring;
	}
    }
    return 1;
}

int
TtoProviderApiExpired(
    TtoProvider provider,
    long status,
    const char *wwwAuthenticate,
    long long code)
{
    if (provider == TTO_PROVIDER_TIKTOKSHOP) {
	return code == 105002;
    }
    return status == 401 && wwwAuthenticate != NULL
	    && strstr(wwwAuthenticate, "invalid_token") != NULL;
}

/*
 * The providers.
 */

static const ProviderOps providerOps[] = {
    {TTO_PROVIDER_TIKTOKSHOP, "tiktokshop", 0, "data", dataMembers,
	TiktokAuthorizeParams, TiktokTokenWire, TiktokClassify,
	NULL, tiktokExpiries, "x-tts-access-token", "", 1},
    {TTO_PROVIDER_RFC6749, "rfc6749", 1, NULL, rootMembers,
	RfcAuthorizeParams, RfcTokenWire, RfcClassify,
	rfcExpiries, rfcExpiries, "Authorization", "Bearer ", 0}
};

static const ProviderOps *
Ops(
    TtoProvider provider)
{
    return &providerOps[provider == TTO_PROVIDER_TIKTOKSHOP ? 0 : 1];
}

/*
 *----------------------------------------------------------------------
 *
 * TtoConfigFree --
 *
 *	Frees a configuration snapshot (TtoConfigNew in ttoauth2.c),
 *	wiping its secret.
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Frees memory.
 *
 *----------------------------------------------------------------------
 */

void
TtoConfigFree(
    TtoConfig *cfg)
{
    char **strings[] = {
	&cfg->clientId, &cfg->clientSecret, &cfg->authorizationEndpoint,
	&cfg->tokenEndpoint, &cfg->refreshEndpoint, &cfg->scope,
	&cfg->resource, &cfg->codeChallengeMethod, &cfg->caFile,
	&cfg->proxy, &cfg->userAgent, &cfg->tokenFile, &cfg->redirectPath,
	&cfg->allowHtml, &cfg->denyHtml
    };
    size_t i;

    if (cfg == NULL) {
	return;
    }
    for (i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
	TtoSecretFree(*strings[i]);
    }
    TtoPairsFree(&cfg->authParams);
    TtoPairsFree(&cfg->tokenParams);
    TtoPairsFree(&cfg->refreshParams);
    ckfree(cfg);
}
