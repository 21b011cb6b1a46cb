/*
 * fuzz_json.c --
 *
 *	libFuzzer harness for ttoauth2Json.c.  Input: the first line is a
 *	JSON path (Chilkat style, e.g. "data.granted_scopes[1]"), the rest
 *	is JSON text; without a newline the path is "" and the whole input
 *	is the text.  Every input goes through:
 *
 *	- TtoJsonParse (cJSON and the strict checks beside it), and when it
 *	  accepts, TtoJsonPretty plain and with edits, and TtoJsonWide;
 *	- cJSON_ParseWithLength alone;
 *	- [ttoauth2 json parse|pretty|get|raw] in a real interp created once
 *	  (TtoJsonSubcmd behind a small command "ttoauth2").
 *
 *	Invariants (abort() when violated):
 *
 *	- TtoJsonParse accepts only what cJSON_ParseWithLength does (a
 *	  leading byte order mark aside); a refusal has an offset <= length.
 *	- pretty(x), for every x TtoJsonParse accepts, succeeds and is a
 *	  fixpoint: pretty(pretty(x)) == pretty(x); it differs from x only in
 *	  whitespace outside strings (every string and number is copied byte
 *	  for byte); no trailing newline.
 *	- pretty with edits of an object (replace the last member, add one)
 *	  is JSON with one more member, the new value and the added member
 *	  last.
 *	- [json pretty] succeeds exactly when [json parse] does, and
 *	  [json parse [json pretty x]] == [json parse x];
 *	  [json get x ""] == [json parse x].
 *	- [json get] fails only with -errorcode {TTOAUTH2 JSON PARSE},
 *	  {TTOAUTH2 JSON BADPATH path} or {TTOAUTH2 JSON NOPATH path}; a
 *	  malformed path is BADPATH whatever the text; with a default, NOPATH
 *	  becomes the default and nothing else changes.  [json raw] fails
 *	  exactly as [json get], and [json parse [json raw x p]] ==
 *	  [json get x p].
 *	- For ASCII input (where the interp sees exactly the same bytes):
 *	  [json pretty] == TtoJsonPretty; [json parse] succeeds exactly when
 *	  TtoJsonParse does.
 *	- No Tcl memory is leaked: a second run of the Tcl part on the same
 *	  input leaves the interp thread's allocator where the first left it
 *	  (ttoauth2's own ckalloc memory is checked by LeakSanitizer).
 */

#define FUZZ_OWN_INITIALIZE
#include "fuzz_common.h"
#include <cjson/cJSON.h>

static Tcl_Interp *interp;
static Tcl_Encoding utf8;
static Tcl_Obj *wordTtoauth2, *wordJson, *wordGet, *wordParse, *wordPretty;
static Tcl_Obj *wordRaw;
static Tcl_Obj *wordEmpty, *wordDefault;
static Tcl_DString memInfo;		/* preallocated, never freed */

/* TTO_FUZZ_STATS=1: how often each oracle ran, printed at exit. */
static struct {
    unsigned long inputs, prettyOk, cjsonOk, rawFound, secondRun;
} stats;

static void
PrintStats(void)
{
    fprintf(stderr, "fuzz_json stats: %lu inputs, %lu pretty ok, %lu cJSON "
	    "ok, %lu json raw found, %lu second Tcl runs\n", stats.inputs,
	    stats.prettyOk, stats.cjsonOk, stats.rawFound, stats.secondRun);
}

/*
 * ttoauth2 json ...: only the json subcommand, as the real command hands
 * it over.
 */

static int
Ttoauth2ObjCmd(
    ClientData clientData,
    Tcl_Interp *ip,
    int objc,
    Tcl_Obj *const objv[])
{
    (void) clientData;
    if (objc < 2 || strcmp(Tcl_GetString(objv[1]), "json") != 0) {
	Tcl_SetObjResult(ip, Tcl_NewStringObj("only json here", -1));
	return TCL_ERROR;
    }
    return TtoJsonSubcmd(ip, objc, objv);
}

static Tcl_Obj *
Word(
    const char *s)
{
    Tcl_Obj *objPtr = Tcl_NewStringObj(s, -1);

    Tcl_IncrRefCount(objPtr);
    return objPtr;
}

int
LLVMFuzzerInitialize(
    int *argcPtr,
    char ***argvPtr)
{
    (void) argcPtr;
    (void) argvPtr;
    FuzzTclInit();
    interp = Tcl_CreateInterp();
    Tcl_CreateObjCommand(interp, "ttoauth2", Ttoauth2ObjCmd, NULL, NULL);
    utf8 = Tcl_GetEncoding(NULL, "utf-8");
    wordTtoauth2 = Word("ttoauth2");
    wordJson = Word("json");
    wordGet = Word("get");
    wordParse = Word("parse");
    wordPretty = Word("pretty");
    wordRaw = Word("raw");
    wordEmpty = Word("");
    wordDefault = Word("\x01no value\x01");
    Tcl_DStringInit(&memInfo);
    Tcl_DStringSetLength(&memInfo, 64 * 1024);
    Tcl_DStringSetLength(&memInfo, 0);
    if (getenv("TTO_FUZZ_STATS") != NULL) {
	atexit(PrintStats);
    }
    return 0;
}

/*
 * Bytes and blocks outstanding in this thread's cache of Tcl's threaded
 * allocator (Tcl_GetMemoryInfo: per bucket "size free removes inserts
 * assigned locks waits").  Parsed by hand: Tcl_SplitList would allocate.
 */

static long long
TclOutstanding(void)
{
    const char *p, *end;
    long long total = 0;
    int inThread = 0;

    Tcl_DStringSetLength(&memInfo, 0);
    Tcl_GetMemoryInfo(&memInfo);
    FUZZ_CHECK(Tcl_DStringLength(&memInfo) < 60 * 1024,
	    "memory info larger than its buffer");
    p = Tcl_DStringValue(&memInfo);
    end = p + Tcl_DStringLength(&memInfo);
    while (p < end) {
	if (strncmp(p, "shared", 6) == 0) {
	    inThread = 0;
	    p += 6;
	} else if (strncmp(p, "thread", 6) == 0) {
	    inThread = 1;
	    p += 6;
	} else if (*p == '{' && p + 1 < end && p[1] >= '0' && p[1] <= '9') {
	    long long v[7];
	    int i;
	    char *q = (char *) p + 1;

	    for (i = 0; i < 7; i++) {
		v[i] = strtoll(q, &q, 10);
	    }
	    if (inThread) {
		/* blocks (removes - inserts), weighted, plus bytes assigned */
		total += (v[2] - v[3]) * 1000003LL + v[4];
	    }
	    p = q;
	} else {
	    p++;
	}
    }
    return total;
}

/*
 * Leaves the interp in the same error state whatever ran before:
 * [ttoauth2 json] without a subcommand is a usage error.
 */

static void
SameErrorState(void)
{
    Tcl_Obj *objv[2];

    objv[0] = wordTtoauth2;
    objv[1] = wordJson;
    FUZZ_CHECK(Tcl_EvalObjv(interp, 2, objv, TCL_EVAL_GLOBAL) == TCL_ERROR,
	    "ttoauth2 json without a subcommand did not fail");
    Tcl_ResetResult(interp);
}

/*
 * The result of one command: code, result string (Tcl's form), and the
 * -errorcode words on error.
 */

typedef struct {
    int code;
    char *result;		/* malloc'ed */
    size_t resultLen;
    char word[3][32];		/* -errorcode words 1..3 ("" if absent) */
    char *pathWord;		/* -errorcode word 4, malloc'ed, or NULL */
} CmdResult;

static void
Eval(
    int objc,
    Tcl_Obj **objv,
    CmdResult *r)
{
    Tcl_Size len;
    const char *s;
    int i;

    memset(r, 0, sizeof(*r));
    r->code = Tcl_EvalObjv(interp, objc, objv, TCL_EVAL_GLOBAL);
    s = Tcl_GetStringFromObj(Tcl_GetObjResult(interp), &len);
    r->result = FuzzDup((const uint8_t *) s, (size_t) len);
    r->resultLen = (size_t) len;
    if (r->code == TCL_ERROR) {
	Tcl_Obj *opts = Tcl_GetReturnOptions(interp, r->code);
	Tcl_Obj *key = Tcl_NewStringObj("-errorcode", -1), *ec = NULL, *w;

	Tcl_IncrRefCount(opts);
	Tcl_IncrRefCount(key);
	Tcl_DictObjGet(NULL, opts, key, &ec);
	for (i = 0; ec != NULL && i < 4; i++) {
	    if (Tcl_ListObjIndex(NULL, ec, i, &w) != TCL_OK || w == NULL) {
		break;
	    }
	    if (i < 3) {
		snprintf(r->word[i], sizeof(r->word[i]), "%s", Tcl_GetString(w));
	    } else {
		s = Tcl_GetStringFromObj(w, &len);
		r->pathWord = FuzzDup((const uint8_t *) s, (size_t) len);
	    }
	}
	Tcl_DecrRefCount(key);
	Tcl_DecrRefCount(opts);
    }
    Tcl_ResetResult(interp);
}

static void
CmdResultFree(
    CmdResult *r)
{
    free(r->result);
    free(r->pathWord);
    memset(r, 0, sizeof(*r));
}

static int
IsError(
    const CmdResult *r,
    const char *kind)
{
    return r->code == TCL_ERROR && strcmp(r->word[0], "TTOAUTH2") == 0
	    && strcmp(r->word[1], "JSON") == 0 && strcmp(r->word[2], kind) == 0;
}

static int
SameResult(
    const CmdResult *a,
    const CmdResult *b)
{
    return a->code == b->code && a->resultLen == b->resultLen
	    && memcmp(a->result, b->result, a->resultLen) == 0;
}

/*
 * The bytes of a JSON text without whitespace outside strings (and
 * without a leading byte order mark).
 */

static size_t
Squeeze(
    const char *text,
    size_t len,
    char *out)
{
    size_t i = 0, o = 0;
    int inString = 0;

    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
	i = 3;
    }
    for (; i < len; i++) {
	char c = text[i];

	if (inString) {
	    out[o++] = c;
	    if (c == '\\' && i + 1 < len) {
		out[o++] = text[++i];
	    } else if (c == '"') {
		inString = 0;
	    }
	} else if (c == '"') {
	    inString = 1;
	    out[o++] = c;
	} else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
	    out[o++] = c;
	}
    }
    return o;
}

/*
 * TtoJsonPretty into a malloc'ed C string (NULL if it fails).
 */

static char *
Pretty(
    const char *text,
    size_t len,
    const TtoJsonEdit *edits,
    int n)
{
    Tcl_DString ds;
    char *out = NULL;

    Tcl_DStringInit(&ds);
    if (TtoJsonPretty(text, len, -1, edits, n, &ds)) {
	out = FuzzDup((const uint8_t *) Tcl_DStringValue(&ds),
		(size_t) Tcl_DStringLength(&ds));
    }
    Tcl_DStringFree(&ds);
    return out;
}

static void
CheckPretty(
    const char *text,
    size_t len,
    const char *pretty)
{
    size_t plen = strlen(pretty), n1, n2;
    char *again, *s1, *s2;

    FUZZ_CHECK(plen > 0, "empty pretty output");
    FUZZ_CHECK(pretty[plen - 1] != '\n' && pretty[plen - 1] != ' ',
	    "pretty output ends in whitespace");
    again = Pretty(pretty, plen, NULL, 0);
    FUZZ_CHECK(again != NULL, "pretty output is not JSON");
    FUZZ_CHECK(strcmp(again, pretty) == 0, "pretty(pretty(x)) != pretty(x)");
    free(again);

    s1 = malloc(len + 1);
    s2 = malloc(plen + 1);
    n1 = Squeeze(text, len, s1);
    n2 = Squeeze(pretty, plen, s2);
    FUZZ_CHECK(n1 == n2 && memcmp(s1, s2, n1) == 0,
	    "pretty output differs from the text in more than whitespace");
    free(s1);
    free(s2);
}

static Tcl_Obj *
TextObj(
    const char *bytes,
    size_t len)
{
    Tcl_DString ds;
    Tcl_Obj *objPtr;

    Tcl_ExternalToUtfDString(utf8, bytes, (Tcl_Size) len, &ds);
    objPtr = Tcl_NewStringObj(Tcl_DStringValue(&ds), Tcl_DStringLength(&ds));
    Tcl_DStringFree(&ds);
    Tcl_IncrRefCount(objPtr);
    return objPtr;
}

/*
 * The Tcl commands on one input.  Returns through *getPtr the result of
 * [json get text path] for the cross-check with cJSON (caller frees).
 */

static void
TclPart(
    const char *text,
    size_t len,
    const char *path,
    size_t pathLen,
    int ascii,
    const char *cPretty,
    CmdResult *getPtr)
{
    Tcl_Obj *textObj = TextObj(text, len), *pathObj = TextObj(path, pathLen);
    Tcl_Obj *objv[6];
    CmdResult parse, pretty, reparse, getEmpty, getDefault, raw;

    objv[0] = wordTtoauth2;
    objv[1] = wordJson;

    objv[2] = wordParse;
    objv[3] = textObj;
    Eval(4, objv, &parse);
    FUZZ_CHECK(parse.code == TCL_OK || IsError(&parse, "PARSE"),
	    "json parse: code %d errorcode %s %s %s", parse.code,
	    parse.word[0], parse.word[1], parse.word[2]);

    objv[2] = wordPretty;
    Eval(4, objv, &pretty);
    FUZZ_CHECK(pretty.code == parse.code, "json pretty %d, json parse %d",
	    pretty.code, parse.code);
    if (pretty.code == TCL_ERROR) {
	FUZZ_CHECK(IsError(&pretty, "PARSE"), "json pretty errorcode");
	FUZZ_CHECK(strcmp(pretty.result, parse.result) == 0,
		"json pretty and json parse report different errors");
    } else {
	Tcl_Obj *prettyObj = Tcl_NewStringObj(pretty.result,
		(Tcl_Size) pretty.resultLen);

	Tcl_IncrRefCount(prettyObj);
	objv[2] = wordParse;
	objv[3] = prettyObj;
	Eval(4, objv, &reparse);
	FUZZ_CHECK(SameResult(&reparse, &parse),
		"json parse [json pretty x] != json parse x");
	CmdResultFree(&reparse);
	Tcl_DecrRefCount(prettyObj);
    }
    if (ascii) {
	FUZZ_CHECK((cPretty != NULL) == (parse.code == TCL_OK),
		"TtoJsonPretty and json parse disagree on validity");
	if (cPretty != NULL) {
	    FUZZ_CHECK(strlen(cPretty) == pretty.resultLen
		    && memcmp(cPretty, pretty.result, pretty.resultLen) == 0,
		    "json pretty != TtoJsonPretty");
	}
    }

    objv[2] = wordGet;
    objv[3] = textObj;
    objv[4] = wordEmpty;
    Eval(5, objv, &getEmpty);
    FUZZ_CHECK(SameResult(&getEmpty, &parse), "json get x {} != json parse x");
    CmdResultFree(&getEmpty);

    objv[4] = pathObj;
    Eval(5, objv, getPtr);
    FUZZ_CHECK(getPtr->code == TCL_OK || IsError(getPtr, "PARSE")
	    || IsError(getPtr, "BADPATH") || IsError(getPtr, "NOPATH"),
	    "json get: code %d errorcode %s %s %s", getPtr->code,
	    getPtr->word[0], getPtr->word[1], getPtr->word[2]);
    if (parse.code == TCL_ERROR) {
	FUZZ_CHECK(IsError(getPtr, "PARSE") || IsError(getPtr, "BADPATH"),
		"json get found something in a text json parse refuses");
    } else {
	FUZZ_CHECK(!IsError(getPtr, "PARSE"),
		"json get refused a text json parse accepts");
    }
    if (IsError(getPtr, "BADPATH") || IsError(getPtr, "NOPATH")) {
	Tcl_Size n;
	const char *p = Tcl_GetStringFromObj(pathObj, &n);

	FUZZ_CHECK(getPtr->pathWord != NULL && strlen(getPtr->pathWord)
		== (size_t) n && memcmp(getPtr->pathWord, p, (size_t) n) == 0,
		"the path is not the last word of -errorcode");
    }

    /* [json raw]: the same value, as written. */
    objv[2] = wordRaw;
    Eval(5, objv, &raw);
    FUZZ_CHECK(raw.code == getPtr->code, "json raw and json get disagree");
    if (raw.code == TCL_OK) {
	Tcl_Obj *rawObj = Tcl_NewStringObj(raw.result,
		(Tcl_Size) raw.resultLen);

	stats.rawFound++;
	Tcl_IncrRefCount(rawObj);
	objv[2] = wordParse;
	objv[3] = rawObj;
	Eval(4, objv, &reparse);
	FUZZ_CHECK(SameResult(&reparse, getPtr),
		"json parse [json raw x p] != json get x p");
	CmdResultFree(&reparse);
	Tcl_DecrRefCount(rawObj);
	objv[3] = textObj;
    } else {
	FUZZ_CHECK(strcmp(raw.word[2], getPtr->word[2]) == 0,
		"json raw and json get fail differently");
    }
    CmdResultFree(&raw);
    objv[2] = wordGet;

    objv[5] = wordDefault;
    Eval(6, objv, &getDefault);
    if (IsError(getPtr, "NOPATH")) {
	FUZZ_CHECK(getDefault.code == TCL_OK
		&& strcmp(getDefault.result, Tcl_GetString(wordDefault)) == 0,
		"json get with a default did not give the default");
    } else {
	FUZZ_CHECK(SameResult(&getDefault, getPtr),
		"a default changed json get's answer");
    }
    CmdResultFree(&getDefault);

    CmdResultFree(&parse);
    CmdResultFree(&pretty);
    Tcl_DecrRefCount(textObj);
    Tcl_DecrRefCount(pathObj);
}

/*
 * Edits of the top-level object (what token files do): the result is
 * JSON, the replaced member has the new value, the added one is last.
 */

static void
CheckEdits(
    const char *text,
    size_t len,
    const cJSON *root)
{
    TtoJsonEdit edits[2];
    int n = 0, count = cJSON_GetArraySize(root);
    char *out;
    cJSON *again;
    const cJSON *child;

    edits[n].index = -1;
    edits[n].name = "tto_added";
    edits[n++].json = "[7]";
    if (count > 0) {
	edits[n].index = count - 1;
	edits[n].name = NULL;
	edits[n++].json = "\"tto_replaced\"";
    }
    out = Pretty(text, len, edits, n);
    FUZZ_CHECK(out != NULL, "TtoJsonPretty with edits failed");
    again = TtoJsonParse(out, strlen(out), NULL, NULL);
    FUZZ_CHECK(again != NULL && cJSON_GetArraySize(again) == count + 1,
	    "edited text is not JSON with one more member");
    for (child = again->child; child->next; child = child->next) {
    }
    FUZZ_CHECK(strcmp(child->string, "tto_added") == 0
	    && cJSON_GetArraySize(child) == 1, "added member not last");
    if (count > 0) {
	child = cJSON_GetArrayItem(again, count - 1);
	FUZZ_CHECK(cJSON_IsString(child)
		&& strcmp(child->valuestring, "tto_replaced") == 0,
		"replaced member has not the new value");
    }
    cJSON_Delete(again);
    free(out);
}

int
LLVMFuzzerTestOneInput(
    const uint8_t *data,
    size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    const char *text = (const char *) data;
    size_t len = size, pathLen = 0, off, skip;
    long long wide;
    char *path, *pretty;
    cJSON *root, *strict;
    const char *why;
    CmdResult get;
    long long before, after;
    int ascii;

    if (nl != NULL) {
	pathLen = (size_t) (nl - data);
	text = (const char *) nl + 1;
	len = size - pathLen - 1;
    }
    path = FuzzDup(data, pathLen);		/* C string: ends at a NUL */
    pathLen = strlen(path);
    ascii = FuzzIsAscii((const uint8_t *) text, len)
	    && FuzzIsAscii((const uint8_t *) path, pathLen);

    /* The C side: strict parse, re-indenter, edits, against cJSON. */
    stats.inputs++;
    pretty = NULL;
    strict = TtoJsonParse(text, len, &off, &why);
    if (strict == NULL) {
	FUZZ_CHECK(off <= len && why != NULL, "error offset %lu beyond %lu",
		(unsigned long) off, (unsigned long) len);
    } else {
	pretty = Pretty(text, len, NULL, 0);
	FUZZ_CHECK(pretty != NULL, "TtoJsonPretty refuses a parsed text");
	stats.prettyOk++;
	CheckPretty(text, len, pretty);
	if (cJSON_IsObject(strict)) {
	    CheckEdits(text, len, strict);
	}
	(void) TtoJsonWide(strict, &wide);
    }
    skip = (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) ? 3 : 0;
    root = cJSON_ParseWithLength(text + skip, len - skip);
    FUZZ_CHECK(strict == NULL || root != NULL,
	    "TtoJsonParse accepts what cJSON_ParseWithLength refuses");
    stats.cjsonOk += (root != NULL);
    cJSON_Delete(strict);
    cJSON_Delete(root);

    /*
     * The Tcl commands, twice if the first run left memory behind (the
     * first run may fill caches).  The interp keeps the last error's
     * stack and -errorinfo until the next error, so a fixed error
     * (a usage error) is raised before each measurement.
     */
    SameErrorState();
    before = TclOutstanding();
    TclPart(text, len, path, pathLen, ascii, pretty, &get);
    SameErrorState();
    after = TclOutstanding();
    if (after != before) {
	CmdResult get2;

	stats.secondRun++;
	TclPart(text, len, path, pathLen, ascii, pretty, &get2);
	SameErrorState();
	before = after;
	after = TclOutstanding();
	FUZZ_CHECK(after == before, "Tcl memory grows by %lld blocks, %lld "
		"bytes per run", (after - before) / 1000003LL,
		(after - before) % 1000003LL);
	FUZZ_CHECK(SameResult(&get, &get2), "json get is not deterministic");
	CmdResultFree(&get2);
    }

    CmdResultFree(&get);
    if (pretty != NULL) {
	free(pretty);
    }
    free(path);
    return 0;
}
