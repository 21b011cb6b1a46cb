/*
 * ttoauth2.c --
 *
 *	The Tcl face of ttoauth2: the package's init, the `ttoauth2` command
 *	(new, create, version, json, pkce, tiktokshop) and the object command with its options
 *	and methods, mirroring Chilkat's CkOAuth2 (see doc/ttoauth2.n).
 *
 *	An object owns at most one flow at a time (ttoauth2Flow.c).  Results
 *	of a flow are copied into the object ("harvested") in the object's
 *	thread, the first time anything looks after the flow has ended; so
 *	the object itself is only ever touched by its own thread.
 */

#include "ttoauth2Int.h"
#include <string.h>
#include <stdio.h>
#include <stdarg.h>
#include <stdlib.h>
#include <errno.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>

/*
 * Options.  The order is the order `configure` lists them in.
 */

enum {
    OPT_PROVIDER, OPT_LISTENPORT, OPT_LISTENPORTRANGEEND, OPT_LOCALHOST,
    OPT_REDIRECTPATH, OPT_AUTHORIZATIONENDPOINT, OPT_TOKENENDPOINT,
    OPT_REFRESHENDPOINT, OPT_CLIENTID, OPT_CLIENTSECRET, OPT_SCOPE,
    OPT_STATE, OPT_CODECHALLENGE, OPT_CODECHALLENGEMETHOD, OPT_USEBASICAUTH,
    OPT_RESOURCE, OPT_REDIRECTALLOWHTML, OPT_REDIRECTDENYHTML,
    OPT_AUTHTIMEOUT, OPT_TIMEOUT, OPT_COMMAND, OPT_BROWSER, OPT_CAFILE,
    OPT_PROXY, OPT_USERAGENT, OPT_TOKENFILE, OPT_TOKENSTORE, OPT_ACCESSTOKEN,
    OPT_REFRESHTOKEN, OPT_APIBASEURL, OPT_SHOPCIPHER, OPT_COUNT
};

typedef enum {
    T_STRING, T_PORT, T_BOOL, T_MS, T_CHOICE, T_URL, T_PATH, T_LIST,
    T_TRISTATE
} OptionType;

static const char *const providerChoices[] = {
    "auto", "tiktokshop", "rfc6749", NULL
};
static const char *const localhostChoices[] = {
    "localhost", "127.0.0.1", "[::1]", NULL
};
static const char *const methodChoices[] = {"S256", "plain", NULL};

#define ALLOW_PAGE \
    "<!doctype html><html><head><meta charset=\"utf-8\">" \
    "<title>Authorization complete</title></head>" \
    "<body style=\"font-family:sans-serif;margin:3em\">" \
    "<h1>Authorization complete</h1>" \
    "<p>You can close this window and return to the application.</p>" \
    "</body></html>"
#define DENY_PAGE \
    "<!doctype html><html><head><meta charset=\"utf-8\">" \
    "<title>Authorization failed</title></head>" \
    "<body style=\"font-family:sans-serif;margin:3em\">" \
    "<h1>Authorization did not complete</h1>" \
    "<p>Access was denied or the sign-in could not be finished. " \
    "You can close this window; the application has the details.</p>" \
    "</body></html>"

typedef struct {
    const char *name;
    OptionType type;
    const char *defaultValue;
    int flowLocked;		/* refused with BUSY while a flow runs */
    const char *const *choices;
} OptionSpec;

static const OptionSpec optionSpecs[] = {
    {"-provider",		T_CHOICE,  "auto",	1, providerChoices},
    {"-listenport",		T_PORT,    "0",		1, NULL},
    {"-listenportrangeend",	T_PORT,    "0",		1, NULL},
    {"-localhost",		T_CHOICE,  "localhost",	1, localhostChoices},
    {"-redirectpath",		T_PATH,    "/",		1, NULL},
    {"-authorizationendpoint",	T_URL,     "",		1, NULL},
    {"-tokenendpoint",		T_URL,     "",		1, NULL},
    {"-refreshendpoint",	T_URL,     "",		1, NULL},
    {"-clientid",		T_STRING,  "",		1, NULL},
    {"-clientsecret",		T_STRING,  "",		1, NULL},
    {"-scope",			T_STRING,  "",		1, NULL},
    {"-state",			T_STRING,  "",		1, NULL},
    {"-codechallenge",		T_TRISTATE, "",		1, NULL},
    {"-codechallengemethod",	T_CHOICE,  "S256",	1, methodChoices},
    {"-usebasicauth",		T_BOOL,    "0",		1, NULL},
    {"-resource",		T_STRING,  "",		1, NULL},
    {"-redirectallowhtml",	T_STRING,  ALLOW_PAGE,	1, NULL},
    {"-redirectdenyhtml",	T_STRING,  DENY_PAGE,	1, NULL},
    {"-authtimeout",		T_MS,      "300000",	1, NULL},
    {"-timeout",		T_MS,      "30000",	1, NULL},
    {"-command",		T_LIST,    "",		0, NULL},
    {"-browser",		T_LIST,    "",		0, NULL},
    {"-cafile",			T_STRING,  "",		1, NULL},
    {"-proxy",			T_STRING,  "",		1, NULL},
    {"-useragent",		T_STRING,  "ttoauth2/" PACKAGE_VERSION, 1, NULL},
    {"-tokenfile",		T_STRING,  "",		1, NULL},
    {"-tokenstore",		T_LIST,    "",		1, NULL},
    {"-accesstoken",		T_STRING,  "",		1, NULL},
    {"-refreshtoken",		T_STRING,  "",		1, NULL},
    {"-apibaseurl",		T_URL,
	    "https://open-api.tiktokglobalshop.com",	0, NULL},
    {"-shopcipher",		T_STRING,  "",		0, NULL},
    {NULL,			T_STRING,  NULL,	0, NULL}
};

struct TtoObject {
    Tcl_Interp *interp;
    Tcl_Command command;
    Tcl_Obj *options[OPT_COUNT];	/* current values, each held */
    TtoPairs authParams;
    TtoPairs tokenParams;
    TtoPairs refreshParams;
    TtoFlow *flow;			/* current or last flow */
    int harvested;			/* its results are copied here */
    Tcl_Obj *response;			/* accessTokenResponse */
    Tcl_Obj *failureInfo;
    Tcl_Obj *tokenType;
    Tcl_Obj *redirectUri;
    TtoPairs redirectParams;
    long long expiresAt;		/* -1 unknown */
    long long refreshExpiresAt;
    TtoProvider tokenProvider;		/* shape of the current tokens */
    struct Obtain *obtain;		/* an async refresh under way */
};

/* Per-interp data: the counter behind ::ttoauth2::oauthN names. */
typedef struct {
    unsigned long counter;
    Tcl_Obj *defaults[OPT_COUNT];	/* shared by the interp's objects */
    Tcl_Obj *empty;
} InterpData;

#define INTERP_KEY "ttoauth2"

TCL_DECLARE_MUTEX(initMutex)
static int processInitialized = 0;

static int ObjectCmd(ClientData clientData, Tcl_Interp *interp,
	Tcl_Size objc, Tcl_Obj *const objv[]);
static void ObjectDeleted(ClientData clientData);
static Tcl_Obj *ExpiryObj(long long t);
static void ApplyTokens(TtoObject *obj, const TtoTokenResult *res,
	TtoProvider provider, const char *responseText, const char *kept);
static void ObtainAbort(TtoObject *obj);
static Tcl_Obj *HarvestStoreSave(TtoObject *obj);
static int ObtainMethod(Tcl_Interp *interp, TtoObject *obj,
	TtoObtainMode mode, Tcl_Size objc, Tcl_Obj *const objv[]);
static int PkceSubcmd(Tcl_Interp *interp, Tcl_Size objc,
	Tcl_Obj *const objv[]);

/*
 *----------------------------------------------------------------------
 *
 * Error helpers.  Every error carries -errorcode {TTOAUTH2 KIND ...}.
 *
 *----------------------------------------------------------------------
 */

static int
Error(
    Tcl_Interp *interp,
    const char *kind,
    const char *word,
    const char *word2,
    const char *fmt,
    ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    Tcl_SetObjResult(interp, Tcl_NewStringObj(msg, -1));
    Tcl_SetErrorCode(interp, "TTOAUTH2", kind, word, word2, (char *) NULL);
    return TCL_ERROR;
}

static int
BusyError(
    Tcl_Interp *interp,
    const char *what)
{
    return Error(interp, "BUSY", NULL, NULL,
	    "cannot %s while an authorization flow is running "
	    "(cancel it or wait for it)", what);
}

static const char *
OptString(
    TtoObject *obj,
    int opt)
{
    return Tcl_GetString(obj->options[opt]);
}

static void
SetObjField(
    Tcl_Obj **fieldPtr,
    Tcl_Obj *value)
{
    Tcl_IncrRefCount(value);
    if (*fieldPtr) {
	Tcl_DecrRefCount(*fieldPtr);
    }
    *fieldPtr = value;
}

/*
 *----------------------------------------------------------------------
 *
 * ResolveProvider, ConfigNew --
 *
 *	The provider the options name (-provider auto: as the endpoints
 *	say, ttoauth2Provider.c), and the configuration snapshot a flow or
 *	a refresh runs with: a copy of the options it reads, taken when it
 *	starts, so that configure meanwhile changes nothing under it.
 *
 * Results:
 *	ConfigNew: a TtoConfig to be freed with TtoConfigFree.
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

static TtoProvider
ResolveProvider(
    TtoObject *obj)
{
    return TtoProviderResolve(OptString(obj, OPT_PROVIDER),
	    OptString(obj, OPT_TOKENENDPOINT),
	    OptString(obj, OPT_REFRESHENDPOINT));
}

static TtoConfig *
ConfigNew(
    TtoObject *obj)
{
    TtoConfig *cfg = ckalloc(sizeof(TtoConfig));
    const char *pkce = OptString(obj, OPT_CODECHALLENGE);
    Tcl_WideInt w = 0;
    Tcl_DString ds;
    static const struct {
	size_t offset;
	int opt;
    } strings[] = {
	{offsetof(TtoConfig, clientId), OPT_CLIENTID},
	{offsetof(TtoConfig, clientSecret), OPT_CLIENTSECRET},
	{offsetof(TtoConfig, authorizationEndpoint),
		OPT_AUTHORIZATIONENDPOINT},
	{offsetof(TtoConfig, tokenEndpoint), OPT_TOKENENDPOINT},
	{offsetof(TtoConfig, scope), OPT_SCOPE},
	{offsetof(TtoConfig, resource), OPT_RESOURCE},
	{offsetof(TtoConfig, codeChallengeMethod), OPT_CODECHALLENGEMETHOD},
	{offsetof(TtoConfig, caFile), OPT_CAFILE},
	{offsetof(TtoConfig, proxy), OPT_PROXY},
	{offsetof(TtoConfig, userAgent), OPT_USERAGENT},
	{offsetof(TtoConfig, tokenFile), OPT_TOKENFILE},
	{offsetof(TtoConfig, redirectPath), OPT_REDIRECTPATH},
	{offsetof(TtoConfig, allowHtml), OPT_REDIRECTALLOWHTML},
	{offsetof(TtoConfig, denyHtml), OPT_REDIRECTDENYHTML}
    };
    size_t i;
    int b;

    memset(cfg, 0, sizeof(TtoConfig));
    for (i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
	*(char **) ((char *) cfg + strings[i].offset) =
		TtoStrDup(OptString(obj, strings[i].opt));
    }
    cfg->provider = ResolveProvider(obj);
    Tcl_DStringInit(&ds);
    TtoProviderRefreshEndpoint(cfg->provider,
	    OptString(obj, OPT_REFRESHENDPOINT), cfg->tokenEndpoint, &ds);
    cfg->refreshEndpoint = TtoStrDup(Tcl_DStringValue(&ds));
    Tcl_DStringFree(&ds);
    TtoPairsCopy(&cfg->authParams, &obj->authParams);
    TtoPairsCopy(&cfg->tokenParams, &obj->tokenParams);
    TtoPairsCopy(&cfg->refreshParams, &obj->refreshParams);
    Tcl_GetBooleanFromObj(NULL, obj->options[OPT_USEBASICAUTH],
	    &cfg->useBasicAuth);
    cfg->pkce = (*pkce == '\0') ? TtoProviderPkceDefault(cfg->provider)
	    : (Tcl_GetBoolean(NULL, pkce, &b) == TCL_OK && b);
    Tcl_GetWideIntFromObj(NULL, obj->options[OPT_TIMEOUT], &w);
    cfg->timeoutMs = (long) w;
    Tcl_GetWideIntFromObj(NULL, obj->options[OPT_AUTHTIMEOUT], &w);
    cfg->authTimeoutMs = (long) w;
    return cfg;
}

/*
 *----------------------------------------------------------------------
 *
 * Harvest --
 *
 *	Copies the results of a flow that has ended into the object (once):
 *	the worker wrote them before it set the final state.  Called before
 *	anything reads the object.
 *
 *----------------------------------------------------------------------
 */

static void
Harvest(
    TtoObject *obj)
{
    const TtoFlowOutcome *out;
    Tcl_DString info;
    TtoAuthState state;

    if (!TtoFlowStarted(obj->flow) || obj->harvested) {
	return;
    }
    state = TtoFlowState(obj->flow);
    if (state < TTO_AUTH_SUCCEEDED) {
	return;
    }
    obj->harvested = 1;
    out = TtoFlowOutcomeGet(obj->flow);

    SetObjField(&obj->response, Tcl_NewStringObj(
	    out->response ? out->response : "", -1));
    TtoPairsFree(&obj->redirectParams);
    TtoPairsCopy(&obj->redirectParams, &out->redirectParams);
    Tcl_DStringInit(&info);
    if (out->failureInfo) {
	Tcl_DStringAppend(&info, out->failureInfo, -1);
    }
    if (state == TTO_AUTH_SUCCEEDED) {
	ApplyTokens(obj, &out->result, out->provider,
		out->response ? out->response : "", NULL);
	if (out->saveError) {
	    Tcl_DStringAppend(&info, "the token was obtained, but saving it "
		    "to -tokenfile failed: ", -1);
	    Tcl_DStringAppend(&info, out->saveError, -1);
	} else {
	    Tcl_Obj *why = HarvestStoreSave(obj);

	    if (why) {
		Tcl_IncrRefCount(why);
		Tcl_DStringAppend(&info, "the token was obtained, but saving "
			"it to -tokenstore failed: ", -1);
		Tcl_DStringAppend(&info, Tcl_GetString(why), -1);
		Tcl_DecrRefCount(why);
	    }
	}
    }
    SetObjField(&obj->failureInfo, Tcl_NewStringObj(Tcl_DStringValue(&info),
	    Tcl_DStringLength(&info)));
    Tcl_DStringFree(&info);
}

static int
FlowRunning(
    TtoObject *obj)
{
    if (!TtoFlowStarted(obj->flow)) {
	return 0;
    }
    if (TtoFlowState(obj->flow) >= TTO_AUTH_SUCCEEDED) {
	Harvest(obj);
	return 0;
    }
    return 1;
}

static TtoAuthState
CurrentState(
    TtoObject *obj)
{
    if (!TtoFlowStarted(obj->flow)) {
	return TTO_AUTH_IDLE;
    }
    Harvest(obj);
    return TtoFlowState(obj->flow);
}

/*
 *----------------------------------------------------------------------
 *
 * FlowDone --
 *
 *	Runs from the event loop when a flow of this object ends: harvests
 *	and calls -command with the object's name and the final state.
 *	Errors in the callback go to the interp's background error handler.
 *
 *----------------------------------------------------------------------
 */

/*
 * Runs a -command callback: the command prefix with the object's name
 * and one more word, at global level; an error goes to the interp's
 * background error handler.
 */

static void
RunCallback(
    Tcl_Interp *interp,
    Tcl_Obj *command,
    Tcl_Obj *name,
    Tcl_Obj *word)
{
    Tcl_Obj *script = Tcl_DuplicateObj(command);
    int code;

    Tcl_IncrRefCount(script);
    Tcl_ListObjAppendElement(NULL, script, name);
    Tcl_ListObjAppendElement(NULL, script, word);
    code = Tcl_EvalObjEx(interp, script, TCL_EVAL_GLOBAL);
    if (code != TCL_OK) {
	Tcl_AddErrorInfo(interp, "\n    (ttoauth2 -command callback)");
	Tcl_BackgroundException(interp, code);
    }
    Tcl_DecrRefCount(script);
}

static void
FlowDone(
    void *clientData)
{
    TtoObject *obj = clientData;
    Tcl_Interp *interp = obj->interp;
    TtoAuthState state;

    if (obj->command == NULL) {
	return;
    }
    Tcl_Preserve(obj);
    Tcl_Preserve(interp);
    state = CurrentState(obj);
    if (Tcl_GetString(obj->options[OPT_COMMAND])[0] != '\0') {
	Tcl_Obj *name = Tcl_NewObj();

	Tcl_GetCommandFullName(interp, obj->command, name);
	RunCallback(interp, obj->options[OPT_COMMAND], name,
		Tcl_NewIntObj(state));
    }
    Tcl_Release(interp);
    Tcl_Release(obj);
}

/*
 *----------------------------------------------------------------------
 *
 * Option handling --
 *
 *	ValidateOption checks one value (and normalizes it); configure
 *	checks every pair before changing anything.
 *
 *----------------------------------------------------------------------
 */

static int
ValidateOption(
    Tcl_Interp *interp,
    int opt,
    Tcl_Obj *value,
    Tcl_Obj **normalizedPtr)
{
    const OptionSpec *spec = &optionSpecs[opt];
    const char *s = Tcl_GetString(value);
    int i, b;
    Tcl_WideInt w;
    Tcl_Size n;

    *normalizedPtr = value;
    switch (spec->type) {
    case T_STRING:
	return TCL_OK;
    case T_PORT:
    case T_MS: {
	Tcl_WideInt max = (spec->type == T_PORT) ? 65535 : 0x7fffffff;

	if (Tcl_GetWideIntFromObj(NULL, value, &w) != TCL_OK
		|| w < 0 || w > max) {
	    return Error(interp, "OPTION", spec->name, NULL, "bad value \"%.100s\""
		    " for %s: must be %s", s, spec->name,
		    (spec->type == T_PORT) ? "a port number from 0 to 65535"
		    : "a number of milliseconds, 0 or more");
	}
	*normalizedPtr = Tcl_NewWideIntObj(w);
	return TCL_OK;
    }
    case T_BOOL:
    case T_TRISTATE:
	if (spec->type == T_TRISTATE && *s == '\0') {
	    return TCL_OK;
	}
	if (Tcl_GetBooleanFromObj(NULL, value, &b) != TCL_OK) {
	    return Error(interp, "OPTION", spec->name, NULL, "bad value \"%.100s\""
		    " for %s: must be a boolean (1, 0, true, false, yes, no, "
		    "on, off)%s", s, spec->name,
		    spec->type == T_TRISTATE ? " or \"\" for the provider's "
		    "default" : "");
	}
	*normalizedPtr = Tcl_NewBooleanObj(b);
	return TCL_OK;
    case T_CHOICE:
	if (spec->choices == localhostChoices && strcmp(s, "::1") == 0) {
	    *normalizedPtr = Tcl_NewStringObj("[::1]", -1);
	    return TCL_OK;
	}
	for (i = 0; spec->choices[i]; i++) {
	    if (strcmp(s, spec->choices[i]) == 0) {
		return TCL_OK;
	    }
	}
	{
	    Tcl_DString list;

	    Tcl_DStringInit(&list);
	    for (i = 0; spec->choices[i]; i++) {
		if (i > 0) {
		    Tcl_DStringAppend(&list, spec->choices[i + 1] ? ", " : ", or ",
			    -1);
		}
		Tcl_DStringAppend(&list, spec->choices[i], -1);
	    }
	    Error(interp, "OPTION", spec->name, NULL, "bad value \"%.100s\" for "
		    "%s: must be %s", s, spec->name, Tcl_DStringValue(&list));
	    Tcl_DStringFree(&list);
	    return TCL_ERROR;
	}
    case T_URL:
	if (*s != '\0' && strncmp(s, "https://", 8) != 0
		&& strncmp(s, "http://", 7) != 0) {
	    return Error(interp, "OPTION", spec->name, NULL, "bad value \"%.100s\""
		    " for %s: must be an https:// or http:// URL, or \"\"", s,
		    spec->name);
	}
	for (; *s; s++) {
	    if ((unsigned char) *s <= ' ' || *s == 127) {
		return Error(interp, "OPTION", spec->name, NULL, "bad value for "
			"%s: a URL cannot contain spaces or control characters",
			spec->name);
	    }
	}
	return TCL_OK;
    case T_PATH:
	if (*s != '/') {
	    return Error(interp, "OPTION", spec->name, NULL, "bad value \"%.100s\""
		    " for %s: must be a path starting with \"/\"", s, spec->name);
	}
	for (; *s; s++) {
	    if ((unsigned char) *s <= ' ' || *s == 127 || *s == '?'
		    || *s == '#' || *s == '%') {
		return Error(interp, "OPTION", spec->name, NULL, "bad value for "
			"%s: a redirect path cannot contain spaces, control "
			"characters, \"?\", \"#\" or \"%%\"", spec->name);
	    }
	}
	return TCL_OK;
    case T_LIST:
	if (opt == OPT_TOKENSTORE && (Tcl_ListObjLength(NULL, value, &n)
		!= TCL_OK || (n != 0 && n != 2))) {
	    return Error(interp, "OPTION", spec->name, NULL, "bad value for "
		    "%s: must be a list of a store command and a key "
		    "([list $store key]), or \"\"", spec->name);
	}
	if (Tcl_ListObjLength(NULL, value, &n) != TCL_OK) {
	    return Error(interp, "OPTION", spec->name, NULL, "bad value for %s: "
		    "must be a valid Tcl list (a command prefix)", spec->name);
	}
	return TCL_OK;
    }
    return TCL_OK;
}

static Tcl_Obj *
OptionValue(
    TtoObject *obj,
    int opt)
{
    if (opt == OPT_CODECHALLENGE
	    && Tcl_GetString(obj->options[opt])[0] == '\0') {
	return Tcl_NewBooleanObj(TtoProviderPkceDefault(
		ResolveProvider(obj)));
    }
    return obj->options[opt];
}

static int
GetOptionIndex(
    Tcl_Interp *interp,
    Tcl_Obj *nameObj,
    int *optPtr)
{
    if (Tcl_GetIndexFromObjStruct(interp, nameObj, optionSpecs,
	    sizeof(OptionSpec), "option", 0, optPtr) != TCL_OK) {
	return TCL_ERROR;
    }
    return TCL_OK;
}

static int
Configure(
    Tcl_Interp *interp,
    TtoObject *obj,
    Tcl_Size objc,
    Tcl_Obj *const objv[])
{
    int i, opt, running;
    int idx[OPT_COUNT * 2];
    Tcl_Obj *values[OPT_COUNT * 2];
    int count = 0;

    if (objc == 0) {
	Tcl_Obj *list = Tcl_NewListObj(0, NULL);

	for (i = 0; i < OPT_COUNT; i++) {
	    Tcl_ListObjAppendElement(NULL, list,
		    Tcl_NewStringObj(optionSpecs[i].name, -1));
	    Tcl_ListObjAppendElement(NULL, list, OptionValue(obj, i));
	}
	Tcl_SetObjResult(interp, list);
	return TCL_OK;
    }
    if (objc == 1) {
	if (GetOptionIndex(interp, objv[0], &opt) != TCL_OK) {
	    return TCL_ERROR;
	}
	Tcl_SetObjResult(interp, OptionValue(obj, opt));
	return TCL_OK;
    }
    if (objc % 2) {
	if (GetOptionIndex(interp, objv[objc - 1], &opt) != TCL_OK) {
	    return TCL_ERROR;
	}
	return Error(interp, "OPTION", optionSpecs[opt].name, NULL,
		"value for \"%s\" missing", optionSpecs[opt].name);
    }
    if (objc > OPT_COUNT * 2) {
	return Error(interp, "OPTION", NULL, NULL, "too many arguments");
    }

    /* Check everything first: an error must change nothing. */
    running = FlowRunning(obj);
    for (i = 0; i < objc; i += 2) {
	Tcl_Obj *normalized;

	if (GetOptionIndex(interp, objv[i], &opt) != TCL_OK) {
	    goto fail;
	}
	if (running && optionSpecs[opt].flowLocked) {
	    Error(interp, "BUSY", NULL, NULL, "cannot change %s while an "
		    "authorization flow is running (cancel it or wait for it)",
		    optionSpecs[opt].name);
	    goto fail;
	}
	if (ValidateOption(interp, opt, objv[i + 1], &normalized) != TCL_OK) {
	    goto fail;
	}
	Tcl_IncrRefCount(normalized);
	idx[count] = opt;
	values[count++] = normalized;
    }
    {
	Tcl_Obj *file = obj->options[OPT_TOKENFILE];
	Tcl_Obj *store = obj->options[OPT_TOKENSTORE];

	for (i = 0; i < count; i++) {
	    if (idx[i] == OPT_TOKENFILE) {
		file = values[i];
	    } else if (idx[i] == OPT_TOKENSTORE) {
		store = values[i];
	    }
	}
	if (Tcl_GetString(file)[0] != '\0' && Tcl_GetString(store)[0] != '\0') {
	    Error(interp, "OPTION", "-tokenstore", NULL, "-tokenfile and "
		    "-tokenstore exclude each other: set one to \"\" first");
	    goto fail;
	}
	if (obj->obtain) {
	    for (i = 0; i < count; i++) {
		if (idx[i] == OPT_TOKENFILE || idx[i] == OPT_TOKENSTORE) {
		    Error(interp, "BUSY", NULL, NULL, "cannot change %s while "
			    "a refresh runs (-command)", optionSpecs[idx[i]].name);
		    goto fail;
		}
	    }
	}
    }
    for (i = 0; i < count; i++) {
	SetObjField(&obj->options[idx[i]], values[i]);
	Tcl_DecrRefCount(values[i]);
	if (idx[i] == OPT_ACCESSTOKEN || idx[i] == OPT_REFRESHTOKEN) {
	    obj->tokenProvider = ResolveProvider(obj);
	}
    }
    return TCL_OK;

  fail:
    for (i = 0; i < count; i++) {
	Tcl_DecrRefCount(values[i]);
    }
    return TCL_ERROR;
}

/*
 *----------------------------------------------------------------------
 *
 * StartAuth --
 *
 *	The startAuth method: binds the listener, starts the flow thread,
 *	returns the authorize URL.
 *
 *----------------------------------------------------------------------
 */

static int
StartAuth(
    Tcl_Interp *interp,
    TtoObject *obj)
{
    TtoConfig *cfg;
    TtoFlow *flow;
    Tcl_DString state, verifier, url;
    int err = 0, from, to, families, rc;
    const char *host, *why, *kind, *word, *redirectUri;
    Tcl_WideInt w;
    char portText[16];

    if (FlowRunning(obj)) {
	return Error(interp, "BUSY", NULL, NULL, "an authorization flow is "
		"already running (cancel it or wait for it)");
    }
    if (*OptString(obj, OPT_AUTHORIZATIONENDPOINT) == '\0') {
	return Error(interp, "STATE", NULL, NULL,
		"startAuth needs -authorizationendpoint");
    }
    if (*OptString(obj, OPT_TOKENENDPOINT) == '\0') {
	return Error(interp, "STATE", NULL, NULL,
		"startAuth needs -tokenendpoint");
    }
    Tcl_GetWideIntFromObj(NULL, obj->options[OPT_LISTENPORT], &w);
    from = (int) w;
    Tcl_GetWideIntFromObj(NULL, obj->options[OPT_LISTENPORTRANGEEND], &w);
    to = (int) w;
    cfg = ConfigNew(obj);
    if ((why = TtoProviderFlowCheck(cfg, from, &kind, &word)) != NULL) {
	TtoConfigFree(cfg);
	return Error(interp, kind, word, NULL, "%s", why);
    }

    Tcl_DStringInit(&state);
    Tcl_DStringInit(&verifier);
    if (*OptString(obj, OPT_STATE)) {
	Tcl_DStringAppend(&state, OptString(obj, OPT_STATE), -1);
    } else if (TtoRandomToken(&state, 24) != 0) {
	cfg->pkce = -1;
    }
    if (cfg->pkce > 0 && TtoRandomToken(&verifier, 32) != 0) {
	cfg->pkce = -1;
    }
    if (cfg->pkce < 0) {
	TtoConfigFree(cfg);
	Tcl_DStringFree(&state);
	TtoWipeDString(&verifier);
	return Error(interp, "STATE", "RANDOM", NULL, "the operating system's "
		"random number generator failed");
    }
    flow = TtoFlowNew(cfg, Tcl_DStringValue(&state), cfg->pkce
	    ? Tcl_DStringValue(&verifier) : NULL, FlowDone, obj);
    Tcl_DStringFree(&state);
    TtoWipeDString(&verifier);

    /*
     * The browser goes where the redirect URI says: "localhost" may
     * resolve to either loopback address, an address literal to that one.
     */
    host = OptString(obj, OPT_LOCALHOST);
    families = (strcmp(host, "127.0.0.1") == 0) ? TTO_NET_V4
	    : (strcmp(host, "[::1]") == 0) ? TTO_NET_V6
	    : (TTO_NET_V4 | TTO_NET_V6);
    rc = TtoFlowBind(flow, host, families, from, to, &err);
    if (rc == -2) {
	TtoFlowFree(flow);
	return Error(interp, "STATE", "THREAD", NULL,
		"cannot start the flow thread");
    }
    if (rc != 0) {
	TtoFlowFree(flow);
	snprintf(portText, sizeof(portText), "%d", from);
	Tcl_SetObjResult(interp, Tcl_ObjPrintf("cannot listen on %s %d%s%s "
		"on the loopback interface: %s", (to > from) ? "ports" : "port",
		from, (to > from) ? "-" : "", (to > from) ?
		Tcl_GetString(obj->options[OPT_LISTENPORTRANGEEND]) : "",
		Tcl_ErrnoMsg(err)));
	errno = err;			/* Tcl_ErrnoId reads errno */
	Tcl_SetErrorCode(interp, "TTOAUTH2", "LISTEN", portText,
		Tcl_ErrnoId(), Tcl_ErrnoMsg(err), (char *) NULL);
	return TCL_ERROR;
    }
    Tcl_DStringInit(&url);
    redirectUri = TtoFlowAuthorizeUrl(flow, &url);

    /* The new flow replaces the last one. */
    if (obj->flow) {
	TtoFlowFree(obj->flow);
    }
    obj->flow = flow;
    obj->harvested = 0;
    SetObjField(&obj->response, Tcl_NewObj());
    SetObjField(&obj->failureInfo, Tcl_NewObj());
    SetObjField(&obj->redirectUri, Tcl_NewStringObj(redirectUri, -1));
    TtoPairsFree(&obj->redirectParams);

    Tcl_DStringResult(interp, &url);
    return TCL_OK;
}

/*
 *----------------------------------------------------------------------
 *
 * Token state helpers: apply a token result; snapshot for saving.
 *
 *----------------------------------------------------------------------
 */

/*
 * The one place tokens enter the object (a flow's, a refresh's, a token
 * file's or store's).  kept: the refresh token a refresh spent, which
 * stays (with its expiry) when the answer brings no new one (RFC 6749
 * 6); NULL: the answer's tokens replace all.
 */

static void
ApplyTokens(
    TtoObject *obj,
    const TtoTokenResult *res,
    TtoProvider provider,
    const char *responseText,
    const char *kept)
{
    SetObjField(&obj->options[OPT_ACCESSTOKEN],
	    Tcl_NewStringObj(res->accessToken, -1));
    SetObjField(&obj->options[OPT_REFRESHTOKEN], Tcl_NewStringObj(
	    res->refreshToken ? res->refreshToken : kept ? kept : "", -1));
    SetObjField(&obj->tokenType,
	    Tcl_NewStringObj(res->tokenType ? res->tokenType : "", -1));
    obj->expiresAt = res->expiresAt;
    if (res->refreshExpiresAt >= 0 || !kept || res->refreshToken) {
	obj->refreshExpiresAt = res->refreshExpiresAt;
    }
    obj->tokenProvider = provider;
    SetObjField(&obj->response, Tcl_NewStringObj(responseText, -1));
}

static void
Snapshot(
    TtoObject *obj,
    TtoTokenSnapshot *snap)
{
    Tcl_Size len;

    memset(snap, 0, sizeof(*snap));
    snap->provider = obj->tokenProvider;
    snap->body = Tcl_GetStringFromObj(obj->response, &len);
    snap->bodyLen = (size_t) len;
    snap->accessToken = OptString(obj, OPT_ACCESSTOKEN);
    snap->refreshToken = OptString(obj, OPT_REFRESHTOKEN);
    snap->tokenType = Tcl_GetString(obj->tokenType);
    snap->expiresAt = obj->expiresAt;
    snap->refreshExpiresAt = obj->refreshExpiresAt;
    snap->stampClientId = OptString(obj, OPT_CLIENTID);
    snap->stampEndpoint = OptString(obj, OPT_TOKENENDPOINT);
}

static int
IoError(
    Tcl_Interp *interp,
    const char *what,
    const char *path,
    int err)
{
    return TtoErrnoError(interp, what, path, err, "IO", path);
}

/*
 * Reads and parses a token file.  Returns TCL_OK with *res and *text
 * (ckalloc'ed) filled, or a TTOAUTH2 IO / JSON error.
 */

static int
ReadTokenFile(
    Tcl_Interp *interp,
    const char *path,
    TtoTokenResult *res,
    TtoProvider *providerPtr,
    char **textPtr,
    int *missingPtr)
{
    char *text = NULL;
    size_t len = 0;
    int err = 0;
    Tcl_StatBuf *statPtr;
    Tcl_Obj *pathObj;
    time_t mtime = time(NULL);

    if (TtoFileRead(path, &text, &len, &err) != 0) {
	if (missingPtr && err == ENOENT) {
	    *missingPtr = 1;
	    return TCL_OK;
	}
	return IoError(interp, "read token file", path, err);
    }
    pathObj = Tcl_NewStringObj(path, -1);
    Tcl_IncrRefCount(pathObj);
    statPtr = Tcl_AllocStatBuf();
    if (Tcl_FSStat(pathObj, statPtr) == 0) {
	mtime = (time_t) Tcl_GetModificationTimeFromStat(statPtr);
    }
    ckfree(statPtr);
    Tcl_DecrRefCount(pathObj);

    if (TtoStoreParse(text, len, mtime, providerPtr, res) != 0) {
	const char *why = res->failureInfo ? res->failureInfo
		: "not valid JSON";

	Tcl_SetObjResult(interp, Tcl_ObjPrintf("\"%s\" is not a token file: "
		"%s", path, (len == 0) ? "the file is empty" : why));
	Tcl_SetErrorCode(interp, "TTOAUTH2", "JSON", path, (char *) NULL);
	TtoTokenResultFree(res);
	TtoSecretFreeN(text, len);
	return TCL_ERROR;
    }
    *textPtr = text;
    return TCL_OK;
}

static int
SaveToken(
    Tcl_Interp *interp,
    TtoObject *obj,
    const char *path,
    int lock)
{
    TtoTokenSnapshot snap;
    int err = 0;

    Snapshot(obj, &snap);
    if (TtoStoreSave(path, &snap, lock, &err) != 0) {
	return IoError(interp, "write token file", path, err);
    }
    return TCL_OK;
}

static int
LoadToken(
    Tcl_Interp *interp,
    TtoObject *obj,
    const char *path)
{
    TtoTokenResult res;
    TtoProvider provider;
    char *text = NULL;

    if (ReadTokenFile(interp, path, &res, &provider, &text, NULL)
	    != TCL_OK) {
	return TCL_ERROR;
    }
    ApplyTokens(obj, &res, provider, text, NULL);
    TtoTokenResultFree(&res);
    TtoSecretFree(text);
    return TCL_OK;
}

/*
 *----------------------------------------------------------------------
 *
 * ThreadCurl --
 *
 *	The libcurl handle that every object of this thread refreshes with.
 *	One per thread, so that refreshes of all objects (a tool managing
 *	many shops) reuse the connection to the token endpoint instead of a
 *	TCP and TLS handshake each.  Freed when the thread exits.
 *
 *----------------------------------------------------------------------
 */

typedef struct {
    TtoCurl *http;
    int objects;		/* live objects of this thread */
    int exitHandler;		/* ThreadCurlFree is registered */
} ThreadData;

/* Live objects of the process: the handle pool empties with the last. */
TCL_DECLARE_MUTEX(objectCountMutex)
static int objectCount = 0;

static Tcl_ThreadDataKey threadDataKey;

static void
ThreadCurlFree(
    ClientData clientData)
{
    ThreadData *tsd = Tcl_GetThreadData(&threadDataKey, sizeof(ThreadData));

    TtoCurlFree(tsd->http);
    tsd->http = NULL;
}

/*
 * Counts live objects.  When a thread's last object goes, so does its
 * refresh handle; when the process's last goes, the pool of idle flow
 * handles: connections are kept warm only while objects may use them,
 * and destroying every object closes every socket.
 */

static void
ObjectCountChange(
    int delta)
{
    ThreadData *tsd = Tcl_GetThreadData(&threadDataKey, sizeof(ThreadData));
    int last;

    tsd->objects += delta;
    if (tsd->objects == 0 && tsd->http) {
	TtoCurlFree(tsd->http);
	tsd->http = NULL;
    }
    Tcl_MutexLock(&objectCountMutex);
    objectCount += delta;
    last = (objectCount == 0);
    Tcl_MutexUnlock(&objectCountMutex);
    if (last) {
	TtoAsyncStop();
	TtoFlowWorkersStop();
	TtoCurlPoolFree();
    }
}

/*
 *----------------------------------------------------------------------
 *
 * TtoThreadCurl --
 *
 *	The libcurl handle every object of this thread refreshes and
 *	requests with (see ThreadData above).
 *
 * Results:
 *	The handle, or NULL when libcurl cannot make one.
 *
 * Side effects:
 *	Makes the handle on first use; registers its exit handler.
 *
 *----------------------------------------------------------------------
 */

TtoCurl *
TtoThreadCurl(void)
{
    ThreadData *tsd = Tcl_GetThreadData(&threadDataKey, sizeof(ThreadData));

    if (tsd->http == NULL) {
	tsd->http = TtoCurlNew();
	if (tsd->http != NULL && !tsd->exitHandler) {
	    Tcl_CreateThreadExitHandler(ThreadCurlFree, NULL);
	    tsd->exitHandler = 1;
	}
    }
    return tsd->http;
}

/*
 *----------------------------------------------------------------------
 *
 * RaiseAsOwn --
 *
 *	Turns the error left by a script this package ran on the user's
 *	behalf (launchBrowser's procedure, a token store's method) into the
 *	calling command's own error: the same message and -errorcode, but
 *	none of the script's -errorinfo, which would show its insides and
 *	its arguments (a URL, a token being written, a password in a spec).
 *	With storeCall, an -errorcode that is not ttoauth2's becomes
 *	{TTOAUTH2 STORE COMMAND}.
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Resets the interp's result and return options.
 *
 *----------------------------------------------------------------------
 */

static void
RaiseAsOwn(
    Tcl_Interp *interp,
    int code,
    int storeCall)
{
    Tcl_Obj *options = Tcl_GetReturnOptions(interp, code);
    Tcl_Obj *msg = Tcl_GetObjResult(interp);
    Tcl_Obj *key = Tcl_NewStringObj("-errorcode", -1);
    Tcl_Obj *errorCode = NULL;

    Tcl_IncrRefCount(options);
    Tcl_IncrRefCount(msg);
    Tcl_IncrRefCount(key);
    Tcl_DictObjGet(NULL, options, key, &errorCode);
    if (errorCode != NULL) {
	Tcl_IncrRefCount(errorCode);
    }
    Tcl_ResetResult(interp);
    Tcl_SetObjResult(interp, msg);
    if (errorCode != NULL && (!storeCall
	    || strncmp(Tcl_GetString(errorCode), "TTOAUTH2", 8) == 0)) {
	Tcl_SetObjErrorCode(interp, errorCode);
    } else if (storeCall) {
	Tcl_SetErrorCode(interp, "TTOAUTH2", "STORE", "COMMAND",
		(char *) NULL);
    }
    if (errorCode != NULL) {
	Tcl_DecrRefCount(errorCode);
    }
    Tcl_DecrRefCount(key);
    Tcl_DecrRefCount(msg);
    Tcl_DecrRefCount(options);
}

/*
 *----------------------------------------------------------------------
 *
 * Token stores as the core sees them --
 *
 *	-tokenfile FILE is a store of one key implemented here on the
 *	platform's file primitives; -tokenstore {store key} is a store
 *	command (library/store.tcl) called through its protocol: trylock,
 *	read, write, unlock (doc/ttoauth2.n, STORES).  Every call is made
 *	in the object's thread.
 *
 *----------------------------------------------------------------------
 */

enum { STORE_NONE = 0, STORE_FILE, STORE_CMD };

typedef struct {
    int kind;
    Tcl_Obj *path;		/* STORE_FILE */
    Tcl_Obj *store, *key;	/* STORE_CMD */
    void *fileLock;		/* STORE_FILE, while held */
    int held;
} StoreRef;

static void
StoreInit(
    TtoObject *obj,
    StoreRef *s)
{
    Tcl_Obj **elems;
    Tcl_Size n;

    memset(s, 0, sizeof(*s));
    if (*OptString(obj, OPT_TOKENFILE)) {
	s->kind = STORE_FILE;
	s->path = obj->options[OPT_TOKENFILE];
	Tcl_IncrRefCount(s->path);
    } else if (Tcl_ListObjGetElements(NULL, obj->options[OPT_TOKENSTORE],
	    &n, &elems) == TCL_OK && n == 2) {
	s->kind = STORE_CMD;
	s->store = elems[0];
	s->key = elems[1];
	Tcl_IncrRefCount(s->store);
	Tcl_IncrRefCount(s->key);
    }
}

static void
StoreFree(
    StoreRef *s)
{
    if (s->path) {
	Tcl_DecrRefCount(s->path);
    }
    if (s->store) {
	Tcl_DecrRefCount(s->store);
	Tcl_DecrRefCount(s->key);
    }
    memset(s, 0, sizeof(*s));
}

/*
 * Calls `$store method key ?arg ...?`.  An error keeps the backend's
 * message and -errorcode but no -errorinfo: the words of the call (a
 * token response for write) must not show in a stack trace.
 */

static int
StoreCall(
    Tcl_Interp *interp,
    StoreRef *s,
    const char *method,
    int argc,
    Tcl_Obj *const argv[])
{
    Tcl_Obj *words[6];
    int i, code;

    words[0] = s->store;
    words[1] = Tcl_NewStringObj(method, -1);
    words[2] = s->key;
    for (i = 0; i < argc; i++) {
	words[3 + i] = argv[i];
    }
    for (i = 0; i < 3 + argc; i++) {
	Tcl_IncrRefCount(words[i]);
    }
    code = Tcl_EvalObjv(interp, 3 + argc, words, TCL_EVAL_GLOBAL);
    for (i = 0; i < 3 + argc; i++) {
	Tcl_DecrRefCount(words[i]);
    }
    if (code != TCL_OK) {
	RaiseAsOwn(interp, code, 1);
	return TCL_ERROR;
    }
    return TCL_OK;
}

/* Takes the lock without waiting: 1 held, 0 held elsewhere, -1 error. */
static int
StoreTryLock(
    Tcl_Interp *interp,
    StoreRef *s)
{
    int err = 0, rc, b;

    if (s->kind == STORE_FILE) {
	rc = TtoFileTryLock(Tcl_GetString(s->path), &s->fileLock, &err);
	if (rc < 0) {
	    IoError(interp, "lock token file", Tcl_GetString(s->path), err);
	    return -1;
	}
	s->held = (rc == 0);
	return s->held;
    }
    if (StoreCall(interp, s, "trylock", 0, NULL) != TCL_OK) {
	return -1;
    }
    if (Tcl_GetBooleanFromObj(NULL, Tcl_GetObjResult(interp), &b)
	    != TCL_OK) {
	Error(interp, "STORE", "COMMAND", NULL, "the store's trylock "
		"answered neither 1 nor 0");
	return -1;
    }
    s->held = b;
    return b;
}

/* How long a lock is waited for (ms). */
static long long
StoreLockTimeout(
    Tcl_Interp *interp,
    TtoObject *obj,
    StoreRef *s)
{
    Tcl_WideInt w = 30000;

    if (s->kind == STORE_CMD) {
	Tcl_Obj *words[3];
	Tcl_InterpState st = Tcl_SaveInterpState(interp, TCL_OK);

	words[0] = s->store;
	words[1] = Tcl_NewStringObj("cget", -1);
	words[2] = Tcl_NewStringObj("-locktimeout", -1);
	Tcl_IncrRefCount(words[1]);
	Tcl_IncrRefCount(words[2]);
	if (Tcl_EvalObjv(interp, 3, words, TCL_EVAL_GLOBAL) != TCL_OK
		|| Tcl_GetWideIntFromObj(NULL, Tcl_GetObjResult(interp), &w)
		!= TCL_OK) {
	    w = 30000;
	}
	Tcl_DecrRefCount(words[1]);
	Tcl_DecrRefCount(words[2]);
	Tcl_RestoreInterpState(interp, st);
	return w;
    }
    /* A file's holder is a refresh, bounded by -timeout. */
    Tcl_GetWideIntFromObj(NULL, obj->options[OPT_TIMEOUT], &w);
    return 2 * (long long) w + 5000;
}

static int
LockTimeoutError(
    Tcl_Interp *interp,
    StoreRef *s)
{
    return Error(interp, "STORE", s->kind == STORE_FILE ? "file" : "store",
	    "LOCKTIMEOUT", "timed out waiting for the token store's lock");
}

/*
 * Synchronous lock: trylock between short sleeps, up to the lock
 * timeout.  Never a blocking wait: the holder may be an asynchronous
 * refresh of this very thread, which finishes only when the event loop
 * runs again; a blocking wait would deadlock, this one times out.
 */

static int
StoreLockWait(
    Tcl_Interp *interp,
    TtoObject *obj,
    StoreRef *s)
{
    int rc, pause = 1;
    long long deadline;

    deadline = TtoNowMs() + StoreLockTimeout(interp, obj, s);
    while ((rc = StoreTryLock(interp, s)) == 0) {
	if (TtoNowMs() >= deadline) {
	    return LockTimeoutError(interp, s);
	}
	Tcl_Sleep(pause);
	pause = pause * 2 > 50 ? 50 : pause * 2;
    }
    return rc < 0 ? TCL_ERROR : TCL_OK;
}

/* Releases a held lock; commit 0 rolls back what was written under it. */
static int
StoreUnlock(
    Tcl_Interp *interp,
    StoreRef *s,
    int commit)
{
    Tcl_Obj *arg;
    int code = TCL_OK;

    if (!s->held) {
	return TCL_OK;
    }
    s->held = 0;
    if (s->kind == STORE_FILE) {
	TtoFileUnlock(s->fileLock);
	s->fileLock = NULL;
	return TCL_OK;
    }
    if (interp == NULL || Tcl_InterpDeleted(interp)) {
	return TCL_OK;		/* the store goes with the interp */
    }
    arg = Tcl_NewBooleanObj(commit);
    code = StoreCall(interp, s, "unlock", 1, &arg);
    return code;
}

/*
 * The stored text (a held reference), "" when there is none.  *mtimePtr: when a relative
 * expires_in counts from (the file's modification time).
 */

static int
StoreRead(
    Tcl_Interp *interp,
    StoreRef *s,
    Tcl_Obj **textPtr,
    time_t *mtimePtr)
{
    *mtimePtr = time(NULL);
    if (s->kind == STORE_FILE) {
	char *text = NULL;
	size_t len = 0;
	int err = 0;
	Tcl_StatBuf *statPtr;

	if (TtoFileRead(Tcl_GetString(s->path), &text, &len, &err) != 0) {
	    if (err == ENOENT) {
		*textPtr = Tcl_NewObj();
		Tcl_IncrRefCount(*textPtr);
		return TCL_OK;
	    }
	    return IoError(interp, "read token file", Tcl_GetString(s->path),
		    err);
	}
	statPtr = Tcl_AllocStatBuf();
	if (Tcl_FSStat(s->path, statPtr) == 0) {
	    *mtimePtr = (time_t) Tcl_GetModificationTimeFromStat(statPtr);
	}
	ckfree(statPtr);
	*textPtr = Tcl_NewStringObj(text, (Tcl_Size) len);
	Tcl_IncrRefCount(*textPtr);
	TtoSecretFreeN(text, len);
	if (len == 0) {
	    Tcl_SetObjResult(interp, Tcl_ObjPrintf("\"%s\" is not a token "
		    "file: the file is empty", Tcl_GetString(s->path)));
	    Tcl_SetErrorCode(interp, "TTOAUTH2", "JSON",
		    Tcl_GetString(s->path), (char *) NULL);
	    Tcl_DecrRefCount(*textPtr);
	    return TCL_ERROR;
	}
	return TCL_OK;
    }
    if (StoreCall(interp, s, "read", 0, NULL) != TCL_OK) {
	return TCL_ERROR;
    }
    *textPtr = Tcl_GetObjResult(interp);
    Tcl_IncrRefCount(*textPtr);
    Tcl_ResetResult(interp);
    return TCL_OK;
}

/* Writes the object's tokens (with the grant stamp) under the lock. */
static int
StoreWrite(
    Tcl_Interp *interp,
    TtoObject *obj,
    StoreRef *s)
{
    TtoTokenSnapshot snap;
    char *text;
    int err = 0, code;

    Snapshot(obj, &snap);
    text = TtoStoreFormat(&snap);
    if (text == NULL) {
	return Error(interp, "IO", NULL, NULL, "out of memory");
    }
    if (s->kind == STORE_FILE) {
	if (TtoFileWriteAtomic(Tcl_GetString(s->path), text, strlen(text),
		&err) != 0) {
	    code = IoError(interp, "write token file",
		    Tcl_GetString(s->path), err);
	} else {
	    code = TCL_OK;
	}
    } else {
	Tcl_Obj *args[3];

	args[0] = Tcl_NewStringObj(text, -1);
	args[1] = ExpiryObj(obj->expiresAt);
	args[2] = ExpiryObj(obj->refreshExpiresAt);
	code = StoreCall(interp, s, "write", 3, args);
    }
    TtoSecretFree(text);
    return code;
}

/*
 *----------------------------------------------------------------------
 *
 * The grant check --
 *
 *	A stored token response is adopted only when it is the object's
 *	grant: the stamp ttoauth2 writes beside the server's members
 *	(provider, client id, token endpoint) agrees with the object's
 *	options, and the identity the responses name, where both name
 *	one (TikTok data.open_id; OAuth sub, or the id_token's), is the
 *	same.  A file without a stamp (written by Chilkat) is checked on
 *	the identity alone.
 *
 *----------------------------------------------------------------------
 */

static const char *
JsonString(
    const cJSON *obj,
    const char *name)
{
    const cJSON *item = cJSON_IsObject(obj)
	    ? cJSON_GetObjectItemCaseSensitive(obj, name) : NULL;

    return (cJSON_IsString(item) && item->valuestring) ? item->valuestring
	    : NULL;
}

/* The subject of a JWT's payload (base64url JSON), into dsPtr. */
static void
JwtSubject(
    const char *jwt,
    Tcl_DString *dsPtr)
{
    const char *p = strchr(jwt, '.'), *end;
    Tcl_DString json;
    unsigned int acc = 0;
    int bits = 0;
    cJSON *root;
    const char *sub;

    if (p == NULL || (end = strchr(p + 1, '.')) == NULL) {
	return;
    }
    Tcl_DStringInit(&json);
    for (p++; p < end; p++) {
	int v;
	char c = *p;

	if (c >= 'A' && c <= 'Z') v = c - 'A';
	else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
	else if (c >= '0' && c <= '9') v = c - '0' + 52;
	else if (c == '-' || c == '+') v = 62;
	else if (c == '_' || c == '/') v = 63;
	else continue;
	acc = (acc << 6) | (unsigned) v;
	bits += 6;
	if (bits >= 8) {
	    char byte = (char) ((acc >> (bits - 8)) & 0xff);

	    bits -= 8;
	    Tcl_DStringAppend(&json, &byte, 1);
	}
    }
    root = TtoJsonParse(Tcl_DStringValue(&json),
	    (size_t) Tcl_DStringLength(&json), NULL, NULL);
    if ((sub = JsonString(root, "sub")) != NULL) {
	Tcl_DStringAppend(dsPtr, sub, -1);
    }
    cJSON_Delete(root);
    Tcl_DStringFree(&json);
}

/*
 * Whether two endpoint URLs name the same server (scheme, host, port,
 * case-insensitively): a grant's refreshes may go to another path of it
 * (TikTok's /token/get and /token/refresh).
 */

static int
SameOrigin(
    const char *a,
    const char *b)
{
    const char *ea = strstr(a, "://"), *eb = strstr(b, "://");
    size_t la, lb;

    ea = ea ? strpbrk(ea + 3, "/?#") : NULL;
    eb = eb ? strpbrk(eb + 3, "/?#") : NULL;
    la = ea ? (size_t) (ea - a) : strlen(a);
    lb = eb ? (size_t) (eb - b) : strlen(b);
    return la == lb && TtoAsciiCaseEqual(a, b, la);
}

/* The identity a response names ("" if none), into dsPtr. */
static void
Identity(
    const cJSON *root,
    Tcl_DString *dsPtr)
{
    const cJSON *data = cJSON_IsObject(root)
	    ? cJSON_GetObjectItemCaseSensitive(root, "data") : NULL;
    const char *s;

    if ((s = JsonString(data, "open_id")) != NULL
	    || (s = JsonString(root, "sub")) != NULL) {
	Tcl_DStringAppend(dsPtr, s, -1);
    } else if ((s = JsonString(root, "id_token")) != NULL) {
	JwtSubject(s, dsPtr);
    }
}

/*
 * Returns TCL_OK when the stored text is the object's grant (or names
 * nothing to compare), else a {TTOAUTH2 STATE MISMATCH} error saying
 * what differs (never a token).
 */

static int
GrantCheck(
    Tcl_Interp *interp,
    TtoObject *obj,
    Tcl_Obj *stored)
{
    Tcl_Size len, ourLen;
    const char *text = Tcl_GetStringFromObj(stored, &len);
    const char *ourText = Tcl_GetStringFromObj(obj->response, &ourLen);
    cJSON *root = TtoJsonParse(text, (size_t) len, NULL, NULL);
    cJSON *ours = NULL;
    const cJSON *stamp;
    const char *what = NULL, *v;
    Tcl_DString a, b;

    Tcl_DStringInit(&a);
    Tcl_DStringInit(&b);
    stamp = cJSON_GetObjectItemCaseSensitive(root, "ttoauth2");
    if (!cJSON_IsObject(stamp)) {
	stamp = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(root, "data"), "ttoauth2");
    }
    if (cJSON_IsObject(stamp)) {
	if ((v = JsonString(stamp, "provider")) != NULL && strcmp(v,
		TtoProviderName(ResolveProvider(obj))) != 0) {
	    what = "provider profile";
	} else if ((v = JsonString(stamp, "client_id")) != NULL
		&& *OptString(obj, OPT_CLIENTID)
		&& strcmp(v, OptString(obj, OPT_CLIENTID)) != 0) {
	    what = "client id";
	} else if ((v = JsonString(stamp, "token_endpoint")) != NULL
		&& *v && *OptString(obj, OPT_TOKENENDPOINT)
		&& !SameOrigin(v, OptString(obj, OPT_TOKENENDPOINT))) {
	    what = "token endpoint";
	}
    }
    if (what == NULL && ourLen > 0) {
	ours = TtoJsonParse(ourText, (size_t) ourLen, NULL, NULL);
	Identity(root, &a);
	Identity(ours, &b);
	if (Tcl_DStringLength(&a) > 0 && Tcl_DStringLength(&b) > 0
		&& strcmp(Tcl_DStringValue(&a), Tcl_DStringValue(&b)) != 0) {
	    what = "account (open_id or subject)";
	}
    }
    cJSON_Delete(root);
    cJSON_Delete(ours);
    Tcl_DStringFree(&a);
    Tcl_DStringFree(&b);
    if (what) {
	return Error(interp, "STATE", "MISMATCH", NULL, "the stored token "
		"belongs to another grant (its %s differs from this object's);"
		" nothing was changed", what);
    }
    return TCL_OK;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoTokenObtain and its steps --
 *
 *	The one decision piece (TOKENS.md section 2): fast path, lock,
 *	re-read, grant check, adopt or refresh, save, unlock.  The steps
 *	are the same synchronously and asynchronously; only the waits
 *	differ (a blocking lock and HTTP request, or timers and the async
 *	engine while the event loop runs).
 *
 *----------------------------------------------------------------------
 */

typedef struct AsyncXfer AsyncXfer;

struct Obtain {
    TtoObject *obj;
    Tcl_Interp *interp;
    TtoObtainMode mode;
    long long within;
    int async;
    TtoObtainDoneProc *doneProc;
    void *clientData;
    StoreRef store;
    Tcl_TimerToken timer;
    long long deadline;		/* of the lock wait */
    int pause;
    TtoAsyncJob *job;
    AsyncXfer *ax;
    TtoConfig *cfg;		/* taken when the refresh started */
    Tcl_DString refreshToken;	/* the one sent */
};

/* The plain-C side of an async refresh: owned by the engine's job. */
struct AsyncXfer {
    TtoTokenXfer *xfer;
    TtoTokenResult res;
    int finished;
    struct Obtain *op;		/* valid while the job is not cancelled */
};

enum { STEP_DONE, STEP_REQUEST };

static int
ValidFor(
    const char *accessToken,
    long long expiresAt,
    long long within)
{
    return *accessToken != '\0'
	    && (expiresAt < 0 || expiresAt - (long long) time(NULL) >= within);
}

static void
ObtainFree(
    struct Obtain *op)
{
    StoreFree(&op->store);
    TtoConfigFree(op->cfg);
    TtoWipeDString(&op->refreshToken);
    ckfree(op);
}

/*
 * With the lock held (or no store): fast path again, re-read, check,
 * adopt.  Sets the interp's result: the token (STEP_DONE, *codePtr
 * TCL_OK), an error (STEP_DONE, TCL_ERROR), or STEP_REQUEST with
 * op->refreshToken to spend.
 */

static int
ObtainDecide(
    struct Obtain *op,
    int *codePtr)
{
    TtoObject *obj = op->obj;
    Tcl_Interp *interp = op->interp;
    const char *ours = OptString(obj, OPT_REFRESHTOKEN);
    const char *use = ours;

    *codePtr = TCL_ERROR;
    if (op->mode == TTO_OBTAIN_VALID && ValidFor(OptString(obj,
	    OPT_ACCESSTOKEN), obj->expiresAt, op->within)) {
	Tcl_SetObjResult(interp, obj->options[OPT_ACCESSTOKEN]);
	*codePtr = TCL_OK;
	return STEP_DONE;
    }
    if (op->store.kind != STORE_NONE) {
	Tcl_Obj *text = NULL;
	time_t mtime;
	TtoTokenResult res;
	TtoProvider provider;
	Tcl_Size len;
	const char *s;

	if (StoreRead(interp, &op->store, &text, &mtime) != TCL_OK) {
	    return STEP_DONE;
	}
	s = Tcl_GetStringFromObj(text, &len);
	if (len > 0) {
	    if (TtoStoreParse(s, (size_t) len, mtime, &provider, &res) != 0) {
		Tcl_SetObjResult(interp, Tcl_ObjPrintf("the stored token is "
			"not a token response: %s", res.failureInfo
			? res.failureInfo : "not valid JSON"));
		Tcl_SetErrorCode(interp, "TTOAUTH2", "JSON", (char *) NULL);
		TtoTokenResultFree(&res);
		Tcl_DecrRefCount(text);
		return STEP_DONE;
	    }
	    if (GrantCheck(interp, obj, text) != TCL_OK) {
		TtoTokenResultFree(&res);
		Tcl_DecrRefCount(text);
		return STEP_DONE;
	    }
	    if ((op->mode == TTO_OBTAIN_VALID && ValidFor(res.accessToken,
		    res.expiresAt, op->within)) || (op->mode
		    == TTO_OBTAIN_REFRESH && *ours != '\0' && res.refreshToken
		    && strcmp(res.refreshToken, ours) != 0)) {
		/*
		 * The stored token will do, or another process refreshed:
		 * adopt its tokens.
		 */
		ApplyTokens(obj, &res, provider, s, NULL);
		SetObjField(&obj->failureInfo, Tcl_NewObj());
		Tcl_SetObjResult(interp, obj->options[OPT_ACCESSTOKEN]);
		*codePtr = TCL_OK;
		TtoTokenResultFree(&res);
		Tcl_DecrRefCount(text);
		return STEP_DONE;
	    }
	    if (res.refreshToken && strcmp(res.refreshToken, ours) != 0) {
		/* Ours is spent or missing: refresh with the stored one. */
		Tcl_DStringAppend(&op->refreshToken, res.refreshToken, -1);
		use = NULL;
	    }
	    TtoTokenResultFree(&res);
	}
	Tcl_DecrRefCount(text);
    }
    if (use) {
	Tcl_DStringAppend(&op->refreshToken, use, -1);
    }
    if (*op->cfg->refreshEndpoint == '\0') {
	Error(interp, "STATE", NULL, NULL,
		"refresh needs -tokenendpoint or -refreshendpoint");
	return STEP_DONE;
    }
    if (Tcl_DStringLength(&op->refreshToken) == 0) {
	Error(interp, "STATE", NULL, NULL, "refresh needs a refresh token "
		"(from a completed flow, loadToken or -refreshtoken)");
	return STEP_DONE;
    }
    return STEP_REQUEST;
}

static void
ObtainRequest(
    struct Obtain *op,
    TtoTokenRequest *req)
{
    memset(req, 0, sizeof(*req));
    req->cfg = op->cfg;
    req->grant = TTO_GRANT_REFRESH;
    req->refreshToken = Tcl_DStringValue(&op->refreshToken);
}

/* Applies a refresh's answer and saves it.  Returns the call's code. */
static int
ObtainApply(
    struct Obtain *op,
    TtoTokenResult *res)
{
    TtoObject *obj = op->obj;
    Tcl_Interp *interp = op->interp;

    if (!res->ok) {
	const char *info = res->failureInfo ? res->failureInfo
		: "refresh failed";

	SetObjField(&obj->failureInfo, Tcl_NewStringObj(info, -1));
	Tcl_SetObjResult(interp, Tcl_ObjPrintf("refresh failed: %s", info));
	Tcl_SetErrorCode(interp, "TTOAUTH2", res->errorKind ? TtoErrorKindName(
		res->errorKind) : "HTTP", res->errorWords[0], res->errorWords[1],
		TtoAdviceName(res->advice), (char *) NULL);
	return TCL_ERROR;
    }
    ApplyTokens(obj, res, op->cfg->provider, res->body ? res->body : "",
	    Tcl_DStringValue(&op->refreshToken));
    SetObjField(&obj->failureInfo, Tcl_NewObj());
    if (op->store.kind != STORE_NONE
	    && StoreWrite(interp, obj, &op->store) != TCL_OK) {
	Tcl_Obj *msg = Tcl_ObjPrintf("the token was refreshed, but %s",
		Tcl_GetString(Tcl_GetObjResult(interp)));

	SetObjField(&obj->failureInfo, msg);
	Tcl_SetObjResult(interp, msg);
	return TCL_ERROR;
    }
    Tcl_SetObjResult(interp, obj->options[OPT_ACCESSTOKEN]);
    return TCL_OK;
}

/* Releases the lock (commit on success) keeping the call's result. */
static int
ObtainUnlock(
    struct Obtain *op,
    int code)
{
    Tcl_InterpState st;
    int rc;

    if (!op->store.held) {
	return code;
    }
    st = Tcl_SaveInterpState(op->interp, code);
    rc = StoreUnlock(op->interp, &op->store, code == TCL_OK);
    if (rc != TCL_OK && code == TCL_OK) {
	Tcl_DiscardInterpState(st);
	return TCL_ERROR;	/* the commit failed: say so */
    }
    return Tcl_RestoreInterpState(op->interp, st);
}

static struct Obtain *
ObtainNew(
    Tcl_Interp *interp,
    TtoObject *obj,
    TtoObtainMode mode,
    long long within)
{
    struct Obtain *op = ckalloc(sizeof(struct Obtain));

    memset(op, 0, sizeof(*op));
    op->obj = obj;
    op->interp = interp;
    op->mode = mode;
    op->within = within;
    op->cfg = ConfigNew(obj);
    Tcl_DStringInit(&op->refreshToken);
    StoreInit(obj, &op->store);
    return op;
}

static int
ObtainSync(
    struct Obtain *op)
{
    int code = TCL_ERROR;
    TtoTokenRequest req;
    TtoTokenResult res;
    TtoCurl *http;

    if (op->store.kind != STORE_NONE && StoreLockWait(op->interp, op->obj,
	    &op->store) != TCL_OK) {
	return TCL_ERROR;
    }
    if (ObtainDecide(op, &code) == STEP_REQUEST) {
	if ((http = TtoThreadCurl()) == NULL) {
	    code = Error(op->interp, "HTTP", "INIT", NULL,
		    "cannot create a libcurl handle");
	} else {
	    ObtainRequest(op, &req);
	    TtoTokenRequestRun(http, &req, &res);
	    code = ObtainApply(op, &res);
	    TtoTokenResultFree(&res);
	}
    }
    return ObtainUnlock(op, code);
}

/*
 * Async: the end of the operation, from the event loop.  The object
 * forgets it first, then the caller hears, then it is freed.
 */

static void
ObtainFinish(
    struct Obtain *op,
    int code)
{
    Tcl_Interp *interp = op->interp;
    TtoObject *obj = op->obj;

    code = ObtainUnlock(op, code);
    obj->obtain = NULL;
    Tcl_Preserve(obj);
    Tcl_Preserve(interp);
    op->doneProc(op->clientData, interp, code);
    Tcl_Release(interp);
    Tcl_Release(obj);
    ObtainFree(op);
}

static void AsyncStep(ClientData clientData);

static void
AsyncXferFinish(
    void *data,
    int curlCode)
{
    AsyncXfer *ax = data;

    TtoTokenXferFinish(ax->xfer, curlCode, &ax->res);
    ax->finished = 1;
}

static void
AsyncXferFree(
    void *data)
{
    AsyncXfer *ax = data;

    if (ax->finished) {
	TtoTokenResultFree(&ax->res);
    }
    TtoTokenXferFree(ax->xfer);
    ckfree(ax);
}

static void
AsyncXferDone(
    void *data)
{
    AsyncXfer *ax = data;
    struct Obtain *op = ax->op;
    Tcl_Interp *interp = op->interp;	/* op is freed by ObtainFinish */
    Tcl_InterpState st = Tcl_SaveInterpState(interp, TCL_OK);
    int code;

    op->job = NULL;
    op->ax = NULL;
    code = ObtainApply(op, &ax->res);
    AsyncXferFree(ax);
    ObtainFinish(op, code);
    Tcl_RestoreInterpState(interp, st);
}

/* Async: one try at the lock, then the decision and the request. */
static void
AsyncStep(
    ClientData clientData)
{
    struct Obtain *op = clientData;
    Tcl_Interp *interp = op->interp;
    Tcl_InterpState st = Tcl_SaveInterpState(interp, TCL_OK);
    TtoTokenRequest req;
    int code = TCL_ERROR, rc;

    op->timer = NULL;
    if (op->mode == TTO_OBTAIN_VALID && !op->store.held && ValidFor(
	    OptString(op->obj, OPT_ACCESSTOKEN), op->obj->expiresAt,
	    op->within)) {
	/* Step 1 as the synchronous call has it: no lock, no I/O. */
	Tcl_SetObjResult(interp, op->obj->options[OPT_ACCESSTOKEN]);
	ObtainFinish(op, TCL_OK);
	Tcl_RestoreInterpState(interp, st);
	return;
    }
    if (op->store.kind != STORE_NONE && !op->store.held) {
	rc = StoreTryLock(interp, &op->store);
	if (rc == 0 && TtoNowMs() < op->deadline) {
	    op->timer = Tcl_CreateTimerHandler(op->pause, AsyncStep, op);
	    op->pause = op->pause * 2 > 50 ? 50 : op->pause * 2;
	    Tcl_RestoreInterpState(interp, st);
	    return;
	}
	if (rc == 0) {
	    LockTimeoutError(interp, &op->store);
	}
	if (rc <= 0) {
	    ObtainFinish(op, TCL_ERROR);
	    Tcl_RestoreInterpState(interp, st);
	    return;
	}
    }
    if (ObtainDecide(op, &code) == STEP_REQUEST) {
	AsyncXfer *ax = ckalloc(sizeof(AsyncXfer));

	memset(ax, 0, sizeof(*ax));
	ax->op = op;
	ObtainRequest(op, &req);
	ax->xfer = TtoTokenXferNew(&req);
	if (ax->xfer == NULL) {
	    ckfree(ax);
	    code = Error(interp, "HTTP", "INIT", NULL,
		    "cannot create a libcurl handle");
	} else if ((op->job = TtoAsyncSubmit(TtoTokenXferEasy(ax->xfer),
		AsyncXferFinish, AsyncXferDone, AsyncXferFree, ax)) == NULL) {
	    AsyncXferFree(ax);
	    code = Error(interp, "HTTP", "INIT", NULL,
		    "cannot start the asynchronous request engine");
	} else {
	    op->ax = ax;
	    Tcl_RestoreInterpState(interp, st);
	    return;			/* AsyncXferDone continues */
	}
    }
    ObtainFinish(op, code);
    Tcl_RestoreInterpState(interp, st);
}

/*
 * The object goes while an async operation runs: the request is
 * cancelled, the lock released, the C caller told (interp NULL).
 */

static void
ObtainAbort(
    TtoObject *obj)
{
    struct Obtain *op = obj->obtain;

    if (op == NULL) {
	return;
    }
    obj->obtain = NULL;
    if (op->timer) {
	Tcl_DeleteTimerHandler(op->timer);
    }
    if (op->job) {
	TtoAsyncCancel(op->job);	/* frees op->ax */
    }
    if (op->store.held) {
	Tcl_InterpState st = Tcl_SaveInterpState(op->interp, TCL_OK);

	StoreUnlock(op->interp, &op->store, 0);
	Tcl_RestoreInterpState(op->interp, st);
    }
    op->doneProc(op->clientData, NULL, TCL_ERROR);
    ObtainFree(op);
}

/*
 *----------------------------------------------------------------------
 *
 * TtoTokenObtain --
 *
 *	validAccessToken and refresh, synchronous or not (see
 *	ttoauth2Int.h for the contract).
 *
 * Results:
 *	A Tcl result code; see ttoauth2Int.h.
 *
 * Side effects:
 *	May lock, read and write the object's store, refresh over HTTP and
 *	change the object's tokens.
 *
 *----------------------------------------------------------------------
 */

int
TtoTokenObtain(
    Tcl_Interp *interp,
    TtoObject *obj,
    TtoObtainMode mode,
    long long within,
    TtoObtainDoneProc *doneProc,
    void *clientData)
{
    struct Obtain *op;
    int code;

    if (FlowRunning(obj)) {
	return BusyError(interp, mode == TTO_OBTAIN_VALID
		? "get a valid access token" : "refresh");
    }
    if (obj->obtain) {
	return Error(interp, "BUSY", NULL, NULL, "a refresh of this object "
		"is running already (-command)");
    }
    if (doneProc == NULL && mode == TTO_OBTAIN_VALID && ValidFor(OptString(
	    obj, OPT_ACCESSTOKEN), obj->expiresAt, within)) {
	/* Step 1: the token in memory will do -- no lock, no I/O. */
	Tcl_SetObjResult(interp, obj->options[OPT_ACCESSTOKEN]);
	return TCL_OK;
    }
    op = ObtainNew(interp, obj, mode, within);
    if (doneProc == NULL) {
	code = ObtainSync(op);
	ObtainFree(op);
	return code;
    }
    op->async = 1;
    op->doneProc = doneProc;
    op->clientData = clientData;
    op->pause = 1;
    if (op->store.kind != STORE_NONE) {
	op->deadline = TtoNowMs() + StoreLockTimeout(interp, obj, &op->store);
    }
    obj->obtain = op;
    op->timer = Tcl_CreateTimerHandler(0, AsyncStep, op);
    Tcl_ResetResult(interp);
    return TCL_OK;
}

/*
 * -command of refresh / validAccessToken: `cmd objName dict`.
 */

typedef struct {
    Tcl_Obj *command;
    Tcl_Obj *name;
} ScriptCallback;

static void
ScriptDone(
    void *clientData,
    Tcl_Interp *interp,
    int code)
{
    ScriptCallback *cb = clientData;

    if (interp != NULL) {
	Tcl_Obj *dict;

	if (code == TCL_OK) {
	    dict = Tcl_NewDictObj();
	    Tcl_DictObjPut(NULL, dict, Tcl_NewStringObj("status", -1),
		    Tcl_NewStringObj("ok", -1));
	    Tcl_DictObjPut(NULL, dict, Tcl_NewStringObj("accessToken", -1),
		    Tcl_GetObjResult(interp));
	} else {
	    Tcl_Obj *opts = Tcl_GetReturnOptions(interp, code), *ec = NULL;
	    Tcl_Obj *key = Tcl_NewStringObj("-errorcode", -1);

	    Tcl_IncrRefCount(opts);
	    Tcl_IncrRefCount(key);
	    Tcl_DictObjGet(NULL, opts, key, &ec);
	    dict = TtoErrorDict(ec ? ec : Tcl_NewStringObj("NONE", -1),
		    Tcl_GetObjResult(interp));
	    Tcl_DecrRefCount(key);
	    Tcl_DecrRefCount(opts);
	}
	Tcl_ResetResult(interp);
	RunCallback(interp, cb->command, cb->name, dict);
    }
    Tcl_DecrRefCount(cb->command);
    Tcl_DecrRefCount(cb->name);
    ckfree(cb);
}

/*
 * refresh ?-command cmd? / validAccessToken ?-within s? ?-command cmd?
 */

static int
ObtainMethod(
    Tcl_Interp *interp,
    TtoObject *obj,
    TtoObtainMode mode,
    Tcl_Size objc,
    Tcl_Obj *const objv[])
{
    static const char *const names[] = {"-command", "-within", NULL};
    Tcl_Obj *command = NULL;
    Tcl_WideInt within = 300;
    Tcl_Size i;
    int idx, code;
    Tcl_Size n;

    for (i = 2; i < objc; i += 2) {
	if (Tcl_GetIndexFromObj(interp, objv[i], names, "option", TCL_EXACT,
		&idx) != TCL_OK || (mode == TTO_OBTAIN_REFRESH && idx == 1)) {
	    Tcl_SetObjResult(interp, Tcl_ObjPrintf("bad option \"%s\": must "
		    "be %s", Tcl_GetString(objv[i]), mode == TTO_OBTAIN_REFRESH
		    ? "-command" : "-command or -within"));
	    Tcl_SetErrorCode(interp, "TTOAUTH2", "OPTION",
		    Tcl_GetString(objv[i]), (char *) NULL);
	    return TCL_ERROR;
	}
	if (i + 1 >= objc) {
	    return Error(interp, "OPTION", names[idx], NULL,
		    "value for \"%s\" missing", names[idx]);
	}
	if (idx == 0) {
	    if (Tcl_ListObjLength(NULL, objv[i + 1], &n) != TCL_OK || n == 0) {
		return Error(interp, "OPTION", "-command", NULL, "bad value "
			"for -command: must be a non-empty command prefix");
	    }
	    command = objv[i + 1];
	} else if (Tcl_GetWideIntFromObj(NULL, objv[i + 1], &within)
		!= TCL_OK || within < 0 || within > ((Tcl_WideInt) 1 << 40)) {
	    return Error(interp, "OPTION", "-within", NULL, "bad value "
		    "\"%.100s\" for -within: must be a number of seconds, 0 "
		    "or more", Tcl_GetString(objv[i + 1]));
	}
    }
    if (command == NULL) {
	return TtoTokenObtain(interp, obj, mode, (long long) within, NULL,
		NULL);
    } else {
	ScriptCallback *cb = ckalloc(sizeof(ScriptCallback));

	cb->command = command;
	cb->name = Tcl_NewObj();
	Tcl_IncrRefCount(cb->command);
	Tcl_IncrRefCount(cb->name);
	Tcl_GetCommandFullName(interp, obj->command, cb->name);
	code = TtoTokenObtain(interp, obj, mode, (long long) within,
		ScriptDone, cb);
	if (code != TCL_OK) {
	    Tcl_DecrRefCount(cb->command);
	    Tcl_DecrRefCount(cb->name);
	    ckfree(cb);
	}
	return code;
    }
}

/*
 * saveToken / loadToken with no file and -tokenstore: the object's key.
 * A save takes the key's lock; a load reads with the store's `get`.
 */

static int
StoreSaveToken(
    Tcl_Interp *interp,
    TtoObject *obj)
{
    StoreRef s;
    int code;

    StoreInit(obj, &s);
    code = StoreLockWait(interp, obj, &s);
    if (code == TCL_OK) {
	code = StoreWrite(interp, obj, &s);
	if (code == TCL_OK) {
	    code = StoreUnlock(interp, &s, 1);
	} else {
	    Tcl_InterpState st = Tcl_SaveInterpState(interp, code);

	    StoreUnlock(interp, &s, 0);
	    code = Tcl_RestoreInterpState(interp, st);
	}
    }
    StoreFree(&s);
    return code;
}

static int
StoreLoadToken(
    Tcl_Interp *interp,
    TtoObject *obj)
{
    StoreRef s;
    Tcl_Obj *words[3], *text;
    TtoTokenResult res;
    TtoProvider provider;
    Tcl_Size len;
    const char *t;
    int code;

    StoreInit(obj, &s);
    words[0] = s.store;
    words[1] = Tcl_NewStringObj("get", -1);
    words[2] = s.key;
    Tcl_IncrRefCount(words[1]);
    code = Tcl_EvalObjv(interp, 3, words, TCL_EVAL_GLOBAL);
    Tcl_DecrRefCount(words[1]);
    if (code != TCL_OK) {
	StoreFree(&s);
	return code;
    }
    text = Tcl_GetObjResult(interp);
    Tcl_IncrRefCount(text);
    Tcl_ResetResult(interp);
    t = Tcl_GetStringFromObj(text, &len);
    if (len == 0) {
	code = Error(interp, "STATE", NULL, NULL,
		"the token store has no token under this object's key");
    } else if (TtoStoreParse(t, (size_t) len, time(NULL), &provider, &res)
	    != 0) {
	Tcl_SetObjResult(interp, Tcl_ObjPrintf("the stored token is not a "
		"token response: %s", res.failureInfo ? res.failureInfo
		: "not valid JSON"));
	Tcl_SetErrorCode(interp, "TTOAUTH2", "JSON", (char *) NULL);
	TtoTokenResultFree(&res);
	code = TCL_ERROR;
    } else {
	ApplyTokens(obj, &res, provider, t, NULL);
	TtoTokenResultFree(&res);
    }
    Tcl_DecrRefCount(text);
    StoreFree(&s);
    return code;
}

/*
 * After a flow with -tokenstore (Harvest, in the object's thread): the
 * tokens are saved under the key's lock.  Returns NULL or why not.
 */

static Tcl_Obj *
HarvestStoreSave(
    TtoObject *obj)
{
    Tcl_Interp *interp = obj->interp;
    Tcl_InterpState st;
    Tcl_Obj *why = NULL;

    if (Tcl_GetString(obj->options[OPT_TOKENSTORE])[0] == '\0'
	    || Tcl_InterpDeleted(interp)) {
	return NULL;
    }
    st = Tcl_SaveInterpState(interp, TCL_OK);
    if (StoreSaveToken(interp, obj) != TCL_OK) {
	why = Tcl_DuplicateObj(Tcl_GetObjResult(interp));
    }
    Tcl_RestoreInterpState(interp, st);
    return why;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoObjectApiConfig, TtoObjectRefresh --
 *
 *	The request method's hooks (ttoauth2Request.c): the options and
 *	tokens a request needs, and the refresh it does once when the API
 *	says the token expired (under the -tokenfile lock, as refresh).
 *
 * Results:
 *	TtoObjectApiConfig fills *cfg (pointers into the object's values);
 *	TtoObjectRefresh is the refresh method's result.
 *
 * Side effects:
 *	TtoObjectRefresh: as the refresh method.
 *
 *----------------------------------------------------------------------
 */

void
TtoObjectApiConfig(
    TtoObject *obj,
    TtoApiConfig *cfg)
{
    Tcl_WideInt w = 0;

    cfg->provider = ResolveProvider(obj);
    cfg->clientId = OptString(obj, OPT_CLIENTID);
    cfg->clientSecret = OptString(obj, OPT_CLIENTSECRET);
    cfg->accessToken = OptString(obj, OPT_ACCESSTOKEN);
    cfg->refreshToken = OptString(obj, OPT_REFRESHTOKEN);
    cfg->expiresAt = obj->expiresAt;
    cfg->apiBaseUrl = OptString(obj, OPT_APIBASEURL);
    cfg->shopCipher = OptString(obj, OPT_SHOPCIPHER);
    cfg->caFile = OptString(obj, OPT_CAFILE);
    cfg->proxy = OptString(obj, OPT_PROXY);
    cfg->userAgent = OptString(obj, OPT_USERAGENT);
    Tcl_GetWideIntFromObj(NULL, obj->options[OPT_TIMEOUT], &w);
    cfg->timeoutMs = (long) w;
}

int
TtoObjectRefresh(
    Tcl_Interp *interp,
    TtoObject *obj)
{
    return TtoTokenObtain(interp, obj, TTO_OBTAIN_REFRESH, 0, NULL, NULL);
}

/*
 *----------------------------------------------------------------------
 *
 * LaunchBrowser --
 *
 *	Opens url in the user's browser: ::ttoauth2::LaunchBrowser, in the
 *	package's library/ttoauth2.tcl (sourced by pkgIndex.tcl), chooses
 *	the program from -browser, $BROWSER or the platform and starts it
 *	detached with Tcl's exec.
 *
 * Results:
 *	A Tcl result; errors are {TTOAUTH2 BROWSER ...}.
 *
 * Side effects:
 *	Starts a program.
 *
 *----------------------------------------------------------------------
 */

#define LAUNCH_PROC "::ttoauth2::LaunchBrowser"

static int
LaunchBrowser(
    Tcl_Interp *interp,
    TtoObject *obj,
    Tcl_Obj *urlObj)
{
    Tcl_Obj *words[3];
    int code, i;

    if (Tcl_FindCommand(interp, LAUNCH_PROC, NULL, TCL_GLOBAL_ONLY)
	    == NULL) {
	return Error(interp, "BROWSER", "NONE", NULL, "launchBrowser needs "
		"the package's ttoauth2.tcl: load ttoauth2 with "
		"package require");
    }
    words[0] = Tcl_NewStringObj(LAUNCH_PROC, -1);
    words[1] = obj->options[OPT_BROWSER];
    words[2] = urlObj;
    for (i = 0; i < 3; i++) {
	Tcl_IncrRefCount(words[i]);
    }
    code = Tcl_EvalObjv(interp, 3, words, TCL_EVAL_GLOBAL);
    for (i = 0; i < 3; i++) {
	Tcl_DecrRefCount(words[i]);
    }
    if (code == TCL_ERROR) {
	/*
	 * Raise it as this method's own error: the trace would show the
	 * procedure's insides and repeat the URL.
	 */

	RaiseAsOwn(interp, code, 0);
    }
    return code;
}

/*
 *----------------------------------------------------------------------
 *
 * ObjectCmd --
 *
 *	The object command: $o method ?arg ...?
 *
 *----------------------------------------------------------------------
 */

/*
 *----------------------------------------------------------------------
 *
 * CompleteAuth --
 *
 *	completeAuth redirectUrl and exchangeCodeForToken code: end the
 *	running flow with a redirect the user brought some other way (the
 *	browser on another machine).  completeAuth checks the URL's state
 *	as the listener does; a wrong one changes nothing.  The flow's
 *	worker then goes on as for a redirect to its port: it closes the
 *	port, exchanges the code (with the flow's PKCE verifier and
 *	redirect URI), saves and fires -command.  The URL and the code are
 *	secrets: no error names them.
 *
 * Results:
 *	The final state (3, 4 or 5) as the result, or an error.
 *
 *----------------------------------------------------------------------
 */

static int
CompleteAuth(
    Tcl_Interp *interp,
    TtoObject *obj,
    Tcl_Obj *arg,
    int isUrl)
{
    const char *method = isUrl ? "completeAuth" : "exchangeCodeForToken";
    TtoFlow *flow = obj->flow;
    TtoPairs params;
    Tcl_Size len;
    const char *text = Tcl_GetStringFromObj(arg, &len);
    int rc;

    if (!FlowRunning(obj)) {
	return Error(interp, "STATE", NULL, NULL, "%s: no authorization "
		"flow is waiting for its redirect (call startAuth first)",
		method);
    }
    memset(&params, 0, sizeof(params));
    if (isUrl) {
	const char *q = strchr(text, '?');
	const char *end, *state, *code, *error;

	if (q != NULL) {
	    q++;
	    end = strchr(q, '#');
	    TtoQueryParse(&params, q,
		    end ? (size_t) (end - q) : strlen(q));
	}
	state = TtoPairsGet(&params, "state");
	code = TtoPairsGet(&params, "code");
	error = TtoPairsGet(&params, "error");
	if (state == NULL) {
	    TtoPairsFree(&params);
	    return Error(interp, "STATE", "MISSING", NULL, "completeAuth: "
		    "the URL carries no state parameter: it is not the "
		    "redirect of this flow");
	}
	if (strcmp(state, TtoFlowStateParam(flow)) != 0) {
	    TtoPairsFree(&params);
	    return Error(interp, "STATE", "MISMATCH", NULL, "completeAuth: "
		    "the URL's state is not this flow's: it is not the "
		    "redirect of this flow");
	}
	if (code == NULL && error == NULL) {
	    TtoPairsFree(&params);
	    return Error(interp, "STATE", "NOCODE", NULL, "completeAuth: "
		    "the URL carries neither a code nor an error");
	}
    } else {
	if (len == 0) {
	    return Error(interp, "OPTION", "code", NULL,
		    "exchangeCodeForToken: the code is empty");
	}
	TtoPairsSet(&params, "code", text);
    }
    rc = TtoFlowPaste(flow, &params);
    TtoPairsFree(&params);
    if (rc != 0) {
	return Error(interp, "STATE", NULL, NULL, "%s: the flow is not "
		"waiting for its redirect any more", method);
    }
    TtoFlowWait(flow, -1);
    Tcl_SetObjResult(interp, Tcl_NewIntObj(CurrentState(obj)));
    return TCL_OK;
}

enum {
    M_ACCESSTOKEN, M_ACCESSTOKENRESPONSE, M_ADDAUTHQUERYPARAM,
    M_ADDREFRESHQUERYPARAM, M_ADDTOKENQUERYPARAM, M_AUTHFLOWSTATE, M_CANCEL,
    M_CGET, M_COMPLETEAUTH, M_CONFIGURE, M_DESTROY, M_EXCHANGECODEFORTOKEN,
    M_EXPIRESAT, M_FAILUREINFO,
    M_LAUNCHBROWSER, M_LOADTOKEN, M_REDIRECTPARAM, M_REDIRECTURI, M_REFRESH,
    M_REFRESHEXPIRESAT, M_REFRESHTOKEN, M_REQUEST, M_SAVETOKEN, M_SLEEPMS,
    M_STARTAUTH,
    M_TOKENTYPE, M_VALIDACCESSTOKEN, M_WAIT
};

/*
 * A method's arguments, and for the getters what they return: a Tcl_Obj
 * field of the object or an expiry (long long, -1: "").
 */

typedef enum { GET_NONE, GET_OBJ, GET_EXPIRY } GetterKind;

typedef struct {
    const char *name;
    int minArgs, maxArgs;	/* after the method name */
    const char *usage;
    GetterKind getter;
    size_t offset;		/* of the getter's field in TtoObject */
} MethodSpec;

#define OBJ_FIELD(f)	GET_OBJ, offsetof(TtoObject, f)
#define EXPIRY(f)	GET_EXPIRY, offsetof(TtoObject, f)

static const MethodSpec methodSpecs[] = {
    {"accessToken", 0, 0, "", OBJ_FIELD(options[OPT_ACCESSTOKEN])},
    {"accessTokenResponse", 0, 0, "", OBJ_FIELD(response)},
    {"addAuthQueryParam", 2, 2, "name value", GET_NONE, 0},
    {"addRefreshQueryParam", 2, 2, "name value", GET_NONE, 0},
    {"addTokenQueryParam", 2, 2, "name value", GET_NONE, 0},
    {"authFlowState", 0, 0, "", GET_NONE, 0},
    {"cancel", 0, 0, "", GET_NONE, 0},
    {"cget", 1, 1, "option", GET_NONE, 0},
    {"completeAuth", 1, 1, "redirectUrl", GET_NONE, 0},
    {"configure", 0, -1, "?-option? ?value -option value ...?", GET_NONE, 0},
    {"destroy", 0, 0, "", GET_NONE, 0},
    {"exchangeCodeForToken", 1, 1, "code", GET_NONE, 0},
    {"expiresAt", 0, 0, "", EXPIRY(expiresAt)},
    {"failureInfo", 0, 0, "", OBJ_FIELD(failureInfo)},
    {"launchBrowser", 1, 1, "url", GET_NONE, 0},
    {"loadToken", 0, 1, "?file?", GET_NONE, 0},
    {"redirectParam", 0, 1, "?name?", GET_NONE, 0},
    {"redirectUri", 0, 0, "", OBJ_FIELD(redirectUri)},
    {"refresh", 0, 2, "?-command cmd?", GET_NONE, 0},
    {"refreshExpiresAt", 0, 0, "", EXPIRY(refreshExpiresAt)},
    {"refreshToken", 0, 0, "", OBJ_FIELD(options[OPT_REFRESHTOKEN])},
    {"request", 2, -1, "method url ?-query dict? ?-body text? "
	    "?-headers dict? ?-timeout ms? ?-command cmd?", GET_NONE, 0},
    {"saveToken", 0, 1, "?file?", GET_NONE, 0},
    {"sleepMs", 1, 1, "ms", GET_NONE, 0},
    {"startAuth", 0, 0, "", GET_NONE, 0},
    {"tokenType", 0, 0, "", OBJ_FIELD(tokenType)},
    {"validAccessToken", 0, 4, "?-within seconds? ?-command cmd?",
	    GET_NONE, 0},
    {"wait", 0, 1, "?ms?", GET_NONE, 0},
    {NULL, 0, 0, NULL, GET_NONE, 0}
};

static Tcl_Obj *
ExpiryObj(
    long long t)
{
    return (t < 0) ? Tcl_NewObj() : Tcl_NewWideIntObj((Tcl_WideInt) t);
}

static int
GetMs(
    Tcl_Interp *interp,
    Tcl_Obj *obj,
    Tcl_WideInt *msPtr)
{
    if (Tcl_GetWideIntFromObj(NULL, obj, msPtr) != TCL_OK || *msPtr < 0) {
	return Error(interp, "OPTION", "ms", NULL, "expected a number of "
		"milliseconds (0 or more) but got \"%.100s\"",
		Tcl_GetString(obj));
    }
    return TCL_OK;
}

static int
AddParam(
    Tcl_Interp *interp,
    TtoObject *obj,
    TtoPairs *pairs,
    Tcl_Obj *const objv[],
    int locked)
{
    const char *name = Tcl_GetString(objv[0]);

    if (locked && FlowRunning(obj)) {
	return BusyError(interp, "add a query parameter");
    }
    if (*name == '\0') {
	return Error(interp, "OPTION", "name", NULL,
		"a query parameter needs a non-empty name");
    }
    TtoPairsSet(pairs, name, Tcl_GetString(objv[1]));
    return TCL_OK;
}

static const char *
FilePathArg(
    Tcl_Interp *interp,
    TtoObject *obj,
    Tcl_Size objc,
    Tcl_Obj *const objv[])
{
    const char *path = (objc > 2) ? Tcl_GetString(objv[2])
	    : OptString(obj, OPT_TOKENFILE);

    if (*path == '\0') {
	Error(interp, "STATE", NULL, NULL,
		"no file given and -tokenfile is empty");
	return NULL;
    }
    return path;
}

static int
ObjectCmd(
    ClientData clientData,
    Tcl_Interp *interp,
    Tcl_Size objc,
    Tcl_Obj *const objv[])
{
    TtoObject *obj = clientData;
    int method, code = TCL_OK;
    const MethodSpec *spec;
    Tcl_WideInt ms;
    const char *path;

    if (objc < 2) {
	Tcl_WrongNumArgs(interp, 1, objv, "method ?arg ...?");
	return TCL_ERROR;
    }
    if (Tcl_GetIndexFromObjStruct(interp, objv[1], methodSpecs,
	    sizeof(MethodSpec), "method", 0, &method) != TCL_OK) {
	return TCL_ERROR;
    }
    spec = &methodSpecs[method];
    if (objc - 2 < spec->minArgs
	    || (spec->maxArgs >= 0 && objc - 2 > spec->maxArgs)) {
	Tcl_WrongNumArgs(interp, 2, objv, *spec->usage ? spec->usage : NULL);
	return TCL_ERROR;
    }

    Tcl_Preserve(obj);
    Harvest(obj);
    switch (spec->getter) {
    case GET_OBJ:
	Tcl_SetObjResult(interp, *(Tcl_Obj **) ((char *) obj + spec->offset));
	method = -1;
	break;
    case GET_EXPIRY:
	Tcl_SetObjResult(interp, ExpiryObj(*(long long *) ((char *) obj
		+ spec->offset)));
	method = -1;
	break;
    case GET_NONE:
	break;
    }
    switch (method) {
    case M_REDIRECTPARAM:
	if (objc == 3) {
	    const char *v = TtoPairsGet(&obj->redirectParams,
		    Tcl_GetString(objv[2]));

	    Tcl_SetObjResult(interp, Tcl_NewStringObj(v ? v : "", -1));
	} else {
	    Tcl_Obj *dict = Tcl_NewDictObj();
	    int i;

	    for (i = 0; i < obj->redirectParams.count; i++) {
		Tcl_Obj *key = Tcl_NewStringObj(
			obj->redirectParams.items[i].name, -1);
		Tcl_Obj *old;

		Tcl_IncrRefCount(key);
		if (Tcl_DictObjGet(NULL, dict, key, &old) == TCL_OK
			&& old == NULL) {
		    Tcl_DictObjPut(NULL, dict, key, Tcl_NewStringObj(
			    obj->redirectParams.items[i].value, -1));
		}
		Tcl_DecrRefCount(key);
	    }
	    Tcl_SetObjResult(interp, dict);
	}
	break;
    case M_ADDAUTHQUERYPARAM:
	code = AddParam(interp, obj, &obj->authParams, objv + 2, 1);
	break;
    case M_ADDTOKENQUERYPARAM:
	code = AddParam(interp, obj, &obj->tokenParams, objv + 2, 1);
	break;
    case M_ADDREFRESHQUERYPARAM:
	code = AddParam(interp, obj, &obj->refreshParams, objv + 2, 0);
	break;
    case M_AUTHFLOWSTATE:
	Tcl_SetObjResult(interp, Tcl_NewIntObj(CurrentState(obj)));
	break;
    case M_WAIT:
	ms = -1;
	if (objc == 3 && GetMs(interp, objv[2], &ms) != TCL_OK) {
	    code = TCL_ERROR;
	    break;
	}
	if (TtoFlowStarted(obj->flow)) {
	    TtoFlowWait(obj->flow, ms);
	}
	Tcl_SetObjResult(interp, Tcl_NewIntObj(CurrentState(obj)));
	break;
    case M_SLEEPMS:
	if (GetMs(interp, objv[2], &ms) != TCL_OK) {
	    code = TCL_ERROR;
	    break;
	}
	Tcl_Sleep((int) (ms > 0x7fffffff ? 0x7fffffff : ms));
	break;
    case M_CANCEL:
	if (FlowRunning(obj)) {
	    TtoFlowCancel(obj->flow);
	    Harvest(obj);
	}
	break;
    case M_CGET:
	code = Configure(interp, obj, 1, objv + 2);
	break;
    case M_CONFIGURE:
	code = Configure(interp, obj, objc - 2, objv + 2);
	break;
    case M_DESTROY:
	Tcl_DeleteCommandFromToken(interp, obj->command);
	break;
    case M_STARTAUTH:
	code = StartAuth(interp, obj);
	break;
    case M_COMPLETEAUTH:
	code = CompleteAuth(interp, obj, objv[2], 1);
	break;
    case M_EXCHANGECODEFORTOKEN:
	code = CompleteAuth(interp, obj, objv[2], 0);
	break;
    case M_LAUNCHBROWSER:
	code = LaunchBrowser(interp, obj, objv[2]);
	break;
    case M_REFRESH:
	code = ObtainMethod(interp, obj, TTO_OBTAIN_REFRESH, objc, objv);
	break;
    case M_VALIDACCESSTOKEN:
	code = ObtainMethod(interp, obj, TTO_OBTAIN_VALID, objc, objv);
	break;
    case M_REQUEST:
	code = TtoRequestMethod(interp, obj, objc, objv);
	break;
    case M_SAVETOKEN:
	if (objc == 2 && Tcl_GetString(obj->options[OPT_TOKENSTORE])[0]) {
	    code = (*OptString(obj, OPT_ACCESSTOKEN) == '\0')
		    ? Error(interp, "STATE", NULL, NULL, "no token to save")
		    : StoreSaveToken(interp, obj);
	} else if ((path = FilePathArg(interp, obj, objc, objv)) == NULL) {
	    code = TCL_ERROR;
	} else if (*OptString(obj, OPT_ACCESSTOKEN) == '\0') {
	    code = Error(interp, "STATE", NULL, NULL, "no token to save");
	} else {
	    code = SaveToken(interp, obj, path, 1);
	}
	break;
    case M_LOADTOKEN:
	if (FlowRunning(obj)) {
	    code = BusyError(interp, "load a token");
	} else if (objc == 2
		&& Tcl_GetString(obj->options[OPT_TOKENSTORE])[0]) {
	    code = StoreLoadToken(interp, obj);
	} else if ((path = FilePathArg(interp, obj, objc, objv)) == NULL) {
	    code = TCL_ERROR;
	} else {
	    code = LoadToken(interp, obj, path);
	}
	break;
    }
    Tcl_Release(obj);
    return code;
}

/*
 *----------------------------------------------------------------------
 *
 * ObjectDeleted, FreeObject --
 *
 *	The one teardown path: the command's delete proc (destroy, rename
 *	to {}, namespace or interp deletion).  A running flow is cancelled
 *	and joined at once; memory goes when no callback holds the object.
 *
 *----------------------------------------------------------------------
 */

static void
FreeObject(
    void *clientData)
{
    TtoObject *obj = clientData;
    int i;

    for (i = 0; i < OPT_COUNT; i++) {
	Tcl_DecrRefCount(obj->options[i]);
    }
    Tcl_DecrRefCount(obj->response);
    Tcl_DecrRefCount(obj->failureInfo);
    Tcl_DecrRefCount(obj->tokenType);
    Tcl_DecrRefCount(obj->redirectUri);
    ckfree(obj);
}

static void
ObjectDeleted(
    ClientData clientData)
{
    TtoObject *obj = clientData;

    obj->command = NULL;
    TtoRequestObjectGone(obj);
    ObtainAbort(obj);
    if (obj->flow) {
	TtoFlowFree(obj->flow);
	obj->flow = NULL;
    }
    TtoPairsFree(&obj->authParams);
    TtoPairsFree(&obj->tokenParams);
    TtoPairsFree(&obj->refreshParams);
    TtoPairsFree(&obj->redirectParams);
    ObjectCountChange(-1);
    Tcl_EventuallyFree(obj, (Tcl_FreeProc *) FreeObject);
}

/*
 *----------------------------------------------------------------------
 *
 * CreateObject --
 *
 *	ttoauth2 new / ttoauth2 create: makes the object command and applies
 *	the options (an error in them creates nothing).
 *
 *----------------------------------------------------------------------
 */

static int
CreateObject(
    Tcl_Interp *interp,
    InterpData *data,
    const char *name,
    Tcl_Size objc,
    Tcl_Obj *const objv[])
{
    TtoObject *obj = ckalloc(sizeof(TtoObject));
    Tcl_DString fullName;
    Tcl_Namespace *ns;
    int i;

    memset(obj, 0, sizeof(TtoObject));
    obj->interp = interp;
    /*
     * Every object starts with the interp's shared default values (the
     * two HTML pages alone are over half a kilobyte); a value is only
     * ever replaced (SetObjField), never changed in place.
     */

    for (i = 0; i < OPT_COUNT; i++) {
	obj->options[i] = data->defaults[i];
	Tcl_IncrRefCount(obj->options[i]);
    }
    obj->response = data->empty;
    obj->failureInfo = data->empty;
    obj->tokenType = data->empty;
    obj->redirectUri = data->empty;
    Tcl_IncrRefCount(obj->response);
    Tcl_IncrRefCount(obj->failureInfo);
    Tcl_IncrRefCount(obj->tokenType);
    Tcl_IncrRefCount(obj->redirectUri);
    obj->expiresAt = obj->refreshExpiresAt = -1;
    obj->tokenProvider = TTO_PROVIDER_RFC6749;

    if (objc % 2) {
	int opt;

	if (GetOptionIndex(interp, objv[objc - 1], &opt) == TCL_OK) {
	    Error(interp, "OPTION", optionSpecs[opt].name, NULL,
		    "value for \"%s\" missing", optionSpecs[opt].name);
	}
	FreeObject(obj);
	return TCL_ERROR;
    }
    if (objc > 0 && Configure(interp, obj, objc, objv) != TCL_OK) {
	FreeObject(obj);
	return TCL_ERROR;
    }

    /* Fully qualify the name relative to the current namespace. */
    Tcl_DStringInit(&fullName);
    if (strncmp(name, "::", 2) != 0) {
	ns = Tcl_GetCurrentNamespace(interp);
	Tcl_DStringAppend(&fullName, ns->fullName, -1);
	if (strcmp(ns->fullName, "::") != 0) {
	    Tcl_DStringAppend(&fullName, "::", 2);
	}
    }
    Tcl_DStringAppend(&fullName, name, -1);
    if (Tcl_FindCommand(interp, Tcl_DStringValue(&fullName), NULL, 0)) {
	Tcl_SetObjResult(interp, Tcl_ObjPrintf("command \"%s\" already exists",
		Tcl_DStringValue(&fullName)));
	Tcl_SetErrorCode(interp, "TTOAUTH2", "EXISTS",
		Tcl_DStringValue(&fullName), (char *) NULL);
	Tcl_DStringFree(&fullName);
	FreeObject(obj);
	return TCL_ERROR;
    }
    obj->command = Tcl_CreateObjCommand2(interp, Tcl_DStringValue(&fullName),
	    ObjectCmd, obj, ObjectDeleted);
    if (obj->command == NULL) {
	Tcl_SetObjResult(interp, Tcl_ObjPrintf("cannot create command \"%s\"",
		Tcl_DStringValue(&fullName)));
	Tcl_SetErrorCode(interp, "TTOAUTH2", "EXISTS",
		Tcl_DStringValue(&fullName), (char *) NULL);
	Tcl_DStringFree(&fullName);
	FreeObject(obj);
	return TCL_ERROR;
    }
    ObjectCountChange(1);
    Tcl_DStringResult(interp, &fullName);
    return TCL_OK;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoauthCmd --
 *
 *	The `ttoauth2` command: new, create, version, json, pkce,
 *	tiktokshop.
 *
 * Results:
 *	A standard Tcl result.
 *
 * Side effects:
 *	As the subcommand: may create an object command.
 *
 *----------------------------------------------------------------------
 */

static int
TtoauthCmd(
    ClientData clientData,
    Tcl_Interp *interp,
    Tcl_Size objc,
    Tcl_Obj *const objv[])
{
    static const char *const subcommands[] = {
	"create", "json", "new", "pkce", "store", "tiktokshop", "version",
	NULL
    };
    enum {
	SUB_CREATE, SUB_JSON, SUB_NEW, SUB_PKCE, SUB_STORE, SUB_TIKTOKSHOP,
	SUB_VERSION
    };
    InterpData *data = clientData;
    int sub;
    char name[64];

    if (TtoGetSubcommand(interp, objc, objv, 1, subcommands, "subcommand",
	    "subcommand ?arg ...?", &sub) != TCL_OK) {
	return TCL_ERROR;
    }
    switch (sub) {
    case SUB_NEW:
	do {
	    snprintf(name, sizeof(name), "::ttoauth2::oauth%lu",
		    ++data->counter);
	} while (Tcl_FindCommand(interp, name, NULL, 0) != NULL);
	return CreateObject(interp, data, name, objc - 2, objv + 2);
    case SUB_CREATE:
	if (objc < 3) {
	    Tcl_WrongNumArgs(interp, 2, objv, "name ?-option value ...?");
	    return TCL_ERROR;
	}
	return CreateObject(interp, data, Tcl_GetString(objv[2]), objc - 3,
		objv + 3);
    case SUB_VERSION: {
	Tcl_Obj *dict = Tcl_NewDictObj();

	if (objc != 2) {
	    Tcl_WrongNumArgs(interp, 2, objv, NULL);
	    return TCL_ERROR;
	}
	Tcl_DictObjPut(NULL, dict, Tcl_NewStringObj("ttoauth2", -1),
		Tcl_NewStringObj(PACKAGE_VERSION, -1));
	Tcl_DictObjPut(NULL, dict, Tcl_NewStringObj("tcl", -1),
		Tcl_NewStringObj(Tcl_GetVar2(interp, "tcl_patchLevel", NULL,
		TCL_GLOBAL_ONLY), -1));
	Tcl_DictObjPut(NULL, dict, Tcl_NewStringObj("libcurl", -1),
		Tcl_NewStringObj(TtoCurlVersion(), -1));
	Tcl_DictObjPut(NULL, dict, Tcl_NewStringObj("cjson", -1),
		Tcl_NewStringObj(cJSON_Version(), -1));
	Tcl_DictObjPut(NULL, dict, Tcl_NewStringObj("tls", -1),
		Tcl_NewStringObj(TtoTlsBackend(), -1));
	Tcl_SetObjResult(interp, dict);
	return TCL_OK;
    }
    case SUB_JSON:
	return TtoJsonSubcmd(interp, objc, objv);
    case SUB_PKCE:
	return PkceSubcmd(interp, objc, objv);
    case SUB_TIKTOKSHOP:
	return TtoTiktokshopSubcmd(interp, objc, objv);
    case SUB_STORE: {
	/*
	 * Token stores are library/store.tcl's: ttoauth2 store args...
	 * is ::ttoauth2::Store args...
	 */
	Tcl_Obj **words = ckalloc(sizeof(Tcl_Obj *) * (size_t) (objc - 1));
	Tcl_Size i;
	int code;

	words[0] = Tcl_NewStringObj("::ttoauth2::Store", -1);
	for (i = 2; i < objc; i++) {
	    words[i - 1] = objv[i];
	}
	Tcl_IncrRefCount(words[0]);
	code = Tcl_EvalObjv(interp, objc - 1, words, TCL_EVAL_GLOBAL);
	Tcl_DecrRefCount(words[0]);
	ckfree(words);
	if (code == TCL_ERROR) {
	    /*
	     * The command's own error: no trace of the procedure or its
	     * arguments (a spec may hold a password).
	     */

	    RaiseAsOwn(interp, code, 0);
	}
	return code;
    }
    }
    return TCL_OK;
}

/*
 *----------------------------------------------------------------------
 *
 * PkceSubcmd --
 *
 *	ttoauth2 pkce verifier		-> a fresh RFC 7636 code verifier
 *	ttoauth2 pkce challenge verifier ?S256|plain?
 *					-> its code_challenge
 *
 *	The same code the flows use, for scripts that run other flows
 *	(a web server's, a device's) themselves.
 *
 *----------------------------------------------------------------------
 */

static int
PkceSubcmd(
    Tcl_Interp *interp,
    Tcl_Size objc,
    Tcl_Obj *const objv[])
{
    static const char *const forms[] = {"challenge", "verifier", NULL};
    Tcl_DString ds;
    int form;
    const char *verifier, *method = "S256";
    Tcl_Size len, i;

    if (TtoGetSubcommand(interp, objc, objv, 2, forms, "form",
	    "verifier | challenge verifier ?method?", &form) != TCL_OK) {
	return TCL_ERROR;
    }
    Tcl_DStringInit(&ds);
    if (form == 1) {
	if (objc != 3) {
	    Tcl_WrongNumArgs(interp, 3, objv, NULL);
	    return TCL_ERROR;
	}
	if (TtoRandomToken(&ds, 32) != 0) {
	    return Error(interp, "STATE", "RANDOM", NULL, "the operating "
		    "system's random number generator failed");
	}
	Tcl_DStringResult(interp, &ds);
	return TCL_OK;
    }
    if (objc < 4 || objc > 5) {
	Tcl_WrongNumArgs(interp, 3, objv, "verifier ?method?");
	return TCL_ERROR;
    }
    verifier = Tcl_GetStringFromObj(objv[3], &len);
    if (objc == 5) {
	method = Tcl_GetString(objv[4]);
    }
    /* RFC 7636 4.1: 43..128 characters of [A-Za-z0-9-._~]. */
    for (i = 0; i < len; i++) {
	if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		"0123456789-._~", verifier[i]) || verifier[i] == '\0') {
	    break;
	}
    }
    if (len < 43 || len > 128 || i < len) {
	return Error(interp, "OPTION", "verifier", NULL, "a code verifier is "
		"43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636 4.1)");
    }
    if (strcmp(method, "S256") != 0 && strcmp(method, "plain") != 0) {
	return Error(interp, "OPTION", "method", NULL, "bad method \"%.50s\": "
		"must be S256 or plain", method);
    }
    if (TtoPkceChallenge(&ds, verifier, method) != 0) {
	Tcl_DStringFree(&ds);
	return Error(interp, "STATE", "CRYPTO", NULL, "SHA-256 failed");
    }
    Tcl_DStringResult(interp, &ds);
    return TCL_OK;
}

static void
InterpDataFree(
    ClientData clientData)
{
    InterpData *data = clientData;
    int i;

    for (i = 0; i < OPT_COUNT; i++) {
	Tcl_DecrRefCount(data->defaults[i]);
    }
    Tcl_DecrRefCount(data->empty);
    ckfree(data);
}

static void
ProcessExit(
    ClientData clientData)
{
    TtoAsyncStop();
    TtoFlowExitAll();
    TtoCurlPoolFree();
}

/*
 *----------------------------------------------------------------------
 *
 * Ttoauth2_Init --
 *
 *	Package entry point.
 *
 * Results:
 *	TCL_OK, or TCL_ERROR when Tcl, libcurl or the platform layer is
 *	unusable.
 *
 * Side effects:
 *	Creates the ttoauth2 command and the package's per-interp data;
 *	registers the process exit handler once.
 *
 *----------------------------------------------------------------------
 */

DLLEXPORT int
Ttoauth2_Init(
    Tcl_Interp *interp)
{
    InterpData *data;
    int i;

    if (Tcl_InitStubs(interp, "8.6-", 0) == NULL) {
	return TCL_ERROR;
    }
    Tcl_MutexLock(&initMutex);
    if (!processInitialized) {
	Tcl_CreateExitHandler(ProcessExit, NULL);
	processInitialized = 1;
    }
    Tcl_MutexUnlock(&initMutex);

    if (Tcl_FindNamespace(interp, "::ttoauth2", NULL, 0) == NULL
	    && Tcl_CreateNamespace(interp, "::ttoauth2", NULL, NULL) == NULL) {
	return TCL_ERROR;
    }
    data = ckalloc(sizeof(InterpData));
    data->counter = 0;
    for (i = 0; i < OPT_COUNT; i++) {
	data->defaults[i] = Tcl_NewStringObj(optionSpecs[i].defaultValue, -1);
	Tcl_IncrRefCount(data->defaults[i]);
    }
    data->empty = Tcl_NewObj();
    Tcl_IncrRefCount(data->empty);
    Tcl_CreateObjCommand2(interp, "::ttoauth2", TtoauthCmd, data,
	    InterpDataFree);
    TtoFileCmdInit(interp);
    if (TtoPlatformInit(interp) != TCL_OK) {
	return TCL_ERROR;
    }
    return Tcl_PkgProvide(interp, "ttoauth2", PACKAGE_VERSION);
}
