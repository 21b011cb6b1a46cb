# sandbox.tcl --
#
#	A stand-in for TikTok Shop's authorization servers, for the ttoauth2 tests and demo.
#	Pure Tcl 8.6 (core socket + fileevent; the client side uses the http package).
#	It listens on loopback only and never talks to the network.
#
# RUNNING IT
#
#   As a program:
#	tclsh tests/sandbox.tcl ?-port N? ?-host 127.0.0.1|::1? ?-portfile FILE?
#				?-app_key K? ?-app_secret S? ?-redirect URL? ?-service_id ID?
#				?-lifetime SECONDS? ?-verbose 0|1? ?-watchstdin 0|1?
#	prints "sandbox listening on http://127.0.0.1:PORT" on stdout once it listens,
#	writes PORT into FILE (atomically) when -portfile is given, and serves until
#	killed, until GET /__control/shutdown, until -lifetime seconds (default 3600)
#	have passed, or, with -watchstdin 1, until its standard input reaches end of
#	file (so a child dies with the process that holds its pipe). -port 0 (the
#	default) picks a free port. -verbose 1 writes each request line, secrets masked,
#	to stderr.
#
#   As a library (source tests/sandbox.tcl: sourcing starts nothing):
#	sandbox::spawn ?option value ...?   run the program as a child process (same
#					    options), wait at most 10 s for it to listen;
#					    returns its port. The way tests use it: ttoauth2
#					    makes blocking HTTP calls from C, which would
#					    deadlock a server living in the test's own thread.
#	sandbox::kill			    stop the child (shutdown request, then kill).
#	sandbox::control name ?arg ...?     send a control command to the child (below);
#					    returns the reply body (stats: a dict).
#	sandbox::url ?path?		    base URL of the running sandbox, plus path.
#	sandbox::start ?option value ...?   run the server inside this interpreter
#					    (event loop needed); returns the port.
#	sandbox::stop			    stop the in-process server.
#	sandbox::configure ?key value ...?  change settings (keys below, with or without
#					    a leading dash); returns them, secret masked.
#	sandbox::mode endpoint ?word ...?   set/get the answer mode of an endpoint.
#	sandbox::stats			    the counters and request log (a dict).
#	sandbox::reset			    forget codes, tokens, stats; modes back to ok.
#	sandbox::issue ?key value ...?	    mint an access/refresh token pair; TikTok JSON.
#	sandbox::seed refresh_token X ?expires T? ?access_token A?   make X valid.
#
#	Settings (start/spawn options, configure keys): app_key (default
#	"sandbox_app_key"), app_secret ("sandbox_app_secret"), redirect
#	("http://localhost:3017/"), service_id ("": any non-empty service_id is
#	accepted; else it must match), seller_name ("Sandbox Shop"), region ("GB"),
#	code_lifetime (1800 s), access_lifetime (604800 s), refresh_expires (absolute
#	Unix time, 4841467787), verbose (0), content_encoding (identity): how the
#	two token endpoints encode their answers when the request's Accept-Encoding
#	offers it (as a real server does; otherwise they answer plainly):
#	identity, gzip ([zlib gzip]), deflate ([zlib compress]), badgzip
#	(Content-Encoding: gzip on a body that is not), gzipbomb (gzip of the
#	answer followed by 4 MiB of spaces: a few KiB on the wire).
#
# ENDPOINTS (HTTP/1.1, keep-alive with Content-Length, or Connection: close)
#
#   GET /open/authorize?service_id=ID&state=S[&redirect_uri=URL]
#	The seller's consent page, already "approved": 302 Found to
#	REDIRECT?code=CODE&state=S&locale=en-GB&shop_region=GB&app_key=K, where REDIRECT
#	is redirect_uri when given (a sandbox convenience; real TikTok uses the URL
#	registered in Partner Center) or the configured redirect. The code is random,
#	works once, for code_lifetime seconds. No service_id (or a wrong one): 400.
#   GET /api/v2/token/get?app_key=&app_secret=&auth_code=&grant_type=authorized_code
#   GET /api/v2/token/refresh?app_key=&app_secret=&refresh_token=&grant_type=refresh_token
#	TikTok-shaped JSON, HTTP 200 whether or not it worked:
#	  {"code":0,"message":"success","request_id":"...","data":{"access_token":...,
#	   "access_token_expire_in":<absolute>,"refresh_token":...,
#	   "refresh_token_expire_in":4841467787,"open_id":...,"seller_name":...,
#	   "seller_base_region":"GB","user_type":0,"granted_scopes":[...]}}
#	Errors carry "data":{} and: 36004003 invalid app key or app secret,
#	36004002 invalid grant type, 36004004 invalid auth code (unknown, used, expired,
#	another app's), 36004005 cannot find related auth record (unknown refresh
#	token), 36004001 refresh token expired. A refresh rotates: it returns a new
#	access token and a new refresh token, and the old refresh token stops working.
#	Any method other than GET/HEAD on these two paths gets 404, as TikTok does.
#   GET /authorization/202309/shops?app_key=&timestamp=&sign=   (header x-tts-access-token)
#	"Get Authorized Shops": code 0 with the seller's two shops (name, region, code,
#	id, cipher; the ciphers are fixed for the app key).
#   POST /order/202309/orders/search?app_key=&timestamp=&shop_cipher=&sign=&page_size=
#	JSON body {"create_time_ge": T, "create_time_lt": T} (both optional): the shop's
#	orders created in [ge, lt), newest first ("orders", "total_count"); each shop has
#	four orders, made 1 hour, 2 days, 6 days and 10 days before the last reset.
#	The Shop API checks, in this order (every answer HTTP 200, TikTok JSON):
#	app_key (36009004 "invalid app_key"), timestamp (Unix seconds; outside
#	now-300 .. now+30, or missing: 36009004 "invalid timestamp"), sign (106001
#	"invalid sign": TikTok's HMAC-SHA256, see TIKTOK.md, over the path, the sorted
#	query parameters but sign and access_token, and the body's bytes), the token in
#	x-tts-access-token (36009004 "invalid access token"; 105002 "access token
#	expired"), then for orders shop_cipher (36009004 "invalid shop_cipher").
#	Signature checks use tcllib's sha256 package; without it these two paths answer
#	HTTP 500. A wrong method gets 405.
#   GET /   a short text page naming the sandbox.
#
# ANSWER MODES (sticky until changed or reset)
#
#   authorize:			ok | deny | nostate | wrongstate
#	deny: REDIRECT?code=null&error=auth_denied&state=S&error_description=...
#	nostate: the success redirect without state; wrongstate: with a different state.
#   token_get, token_refresh:	ok | http500 | html200 | nonjson | slow SECONDS |
#				close | redirect ?URL? | code N ?MESSAGE? |
#				expiresoon | truncated | nodata | rich
#	http500: 500 with an HTML body. html200: 200 with an HTML page. nonjson: 200
#	text/plain garbage. slow: answer normally after SECONDS (fractions allowed;
#	event driven, other connections are served meanwhile; if the client hangs up
#	first the request is dropped unprocessed). close: close the connection without
#	answering. redirect: 302 to URL (default: this sandbox's /__redirected/token,
#	which answers a success-shaped JSON and counts "redirect_followed", so a test
#	can prove the client did not follow). code: HTTP 200 {"code":N,"message":...,
#	"data":{}}. expiresoon: success with access_token_expire_in = now+60.
#	truncated: application/json cut in the middle. nodata: code 0, "data":{}.
#	rich: as ok, and a success also carries members no client knows, whose
#	text a client must keep: big integers, exponents, \u escapes, nesting.
#	Failure modes leave codes and tokens untouched; ok, slow, expiresoon process
#	the request for real.
#
# CONTROL (GET /__control/..., not recorded in the request log)
#
#   /__control/stats			   the stats dict (Tcl dict syntax, text/plain):
#	authorize, token_get, token_refresh, api (shops), orders, redirect_followed,
#	other, webhooks (deliveries made): request counts; connections: connections
#	that carried a request other than a control one (token_get/token_refresh
#	count every request to that path, whatever became of it); outcomes: {authorize
#	{KEY N ...} token_get {...} token_refresh {...} api {...} orders {...}} where KEY is the TikTok code answered ("0" = success), the
#	failure mode used (http500, close, ...), or the HTTP status (400, 404);
#	codes_outstanding, access_tokens, refresh_tokens: table sizes; modes: the
#	current modes; requests: the request lines received (at most the last 1000),
#	with the values of app_secret, auth_code, code, refresh_token, access_token,
#	client_secret and code_verifier replaced by ***; accept_encoding: the
#	Accept-Encoding of the last token request ("" when it had none); encoded:
#	how many token answers were sent content-encoded.
#   /__control/reset			   as sandbox::reset.
#   /__control/shutdown			   answer "bye", then stop (the program exits).
#   /__control/mode/ENDPOINT/WORD/...	   set a mode, e.g. /__control/mode/token_get/slow/2
#					   or /__control/mode/token_refresh/code/36004001/expired
#   /__control/mode?ENDPOINT=WORDS&...	   the same, query style: WORDS is a Tcl list
#					   (e.g. token_get=slow+2); answers the modes dict.
#   /__control/configure?KEY=VALUE&...	   change settings; answers them (secret masked).
#   /__control/issue?access_expires=T&refresh_expires=T	  mint a token pair; TikTok JSON.
#   /__control/seed?refresh_token=X&expires=T&access_token=A  register X (and A) as valid.
#   /__control/expire?access_token=A	   make A (every access token when none is named)
#					   expired now: the Shop API answers 105002 for it.
#   /__control/webhook?url=URL&type=N&body=TEXT&sign=good|bad
#					   POST a webhook to URL as TikTok Shop does: the
#					   body (default: an order status change for the
#					   first shop, of type N, default 1) with the header
#					   Authorization: hex(HMAC-SHA256(app_secret,
#					   app_key + body)) (sign=bad: of another body).
#					   Answers "delivered STATUS" once the receiver
#					   answered (at most 5 s), or 502 with the reason.
#
#	sandbox::control maps onto these: "control mode token_get slow 2" uses the path
#	form; any other name takes key value pairs for the query, e.g.
#	"control seed refresh_token X expires 0". A reply other than 200 is an error
#	with -errorcode {SANDBOX CONTROL status}.

package require Tcl 8.6-

namespace eval ::sandbox {
    # Where this file lives, for spawn (info script is only right while sourcing).
    variable script [file normalize [info script]]

    # Defaults of the settings; see the header.
    variable defaults {
	app_key		sandbox_app_key
	app_secret	sandbox_app_secret
	redirect	http://localhost:3017/
	service_id	{}
	seller_name	{Sandbox Shop}
	region		GB
	code_lifetime	1800
	access_lifetime	604800
	refresh_expires	4841467787
	verbose		0
	content_encoding identity
    }
    variable config $defaults

    # Query parameters whose values never reach a log.
    variable secretParams {
	app_secret auth_code code refresh_token access_token client_secret code_verifier
    }

    variable scopes {seller.authorization.info seller.order.info seller.product.basic}

    # Server state (in this interpreter).
    variable listenSocket {}	;# the server socket, "" when not running
    variable listenHost {}
    variable listenPort {}
    variable onShutdown {}	;# what /__control/shutdown does after answering
    variable nextConnId 0
    variable C			;# per-connection state, keys "ID,field"
    array set C {}

    # Issued credentials. codes: CODE -> {app_key expires}; refreshTokens: TOKEN ->
    # {app_key open_id expires}; accessTokens: TOKEN -> {app_key open_id expires}.
    variable codes {}
    variable refreshTokens {}
    variable accessTokens {}
    variable modes {}
    variable stats {}

    # Child process (spawn/kill/control).
    variable child {}
    variable childHost {}
    variable childPort {}
    variable childEvent {}

    # Limits that keep a misbehaving client from holding the server.
    variable maxHeaderBytes 16384
    variable maxBodyBytes 1048576
    variable idleMs 30000
    variable maxLoggedRequests 1000
}

# ---------------------------------------------------------------------------
# Settings, modes, stats, credential tables
# ---------------------------------------------------------------------------

# sandbox::configure --
#
#	Changes settings. Keys may carry a leading dash. Numeric settings are checked
#	before anything changes.
#
# Results:
#	The settings dict, with app_secret masked.

proc ::sandbox::configure {args} {
    variable config
    if {[llength $args] % 2} {
	return -code error -errorcode {SANDBOX USAGE} \
	    "wrong # args: should be \"sandbox::configure ?key value ...?\""
    }
    set changes {}
    foreach {key value} $args {
	set key [string trimleft $key -]
	if {![dict exists $config $key]} {
	    return -code error -errorcode [list SANDBOX OPTION $key] \
		"unknown setting \"$key\": must be one of [join [dict keys $config] {, }]"
	}
	if {$key in {code_lifetime access_lifetime refresh_expires}
		&& ![string is wideinteger -strict $value]} {
	    return -code error -errorcode [list SANDBOX OPTION $key] \
		"setting \"$key\" needs an integer, got \"$value\""
	}
	if {$key eq "content_encoding"
		&& $value ni {identity gzip deflate badgzip gzipbomb}} {
	    return -code error -errorcode [list SANDBOX OPTION $key] \
		"setting \"content_encoding\" must be identity, gzip, deflate,\
		 badgzip or gzipbomb, got \"$value\""
	}
	if {$key eq "verbose" && ![string is boolean -strict $value]} {
	    return -code error -errorcode [list SANDBOX OPTION $key] \
		"setting \"verbose\" needs a boolean, got \"$value\""
	}
	dict set changes $key $value
    }
    set config [dict merge $config $changes]
    set shown $config
    dict set shown app_secret ***
    return $shown
}

# sandbox::mode --
#
#	Sets the answer mode of one endpoint (authorize, token_get, token_refresh),
#	or with no words returns it. See the header for the modes.
#
# Results:
#	The endpoint's mode (a list).

proc ::sandbox::mode {endpoint args} {
    variable modes
    set valid {
	authorize	{ok deny nostate wrongstate}
	token_get	{ok http500 html200 nonjson slow close redirect code expiresoon
			 truncated nodata rich}
    }
    dict set valid token_refresh [dict get $valid token_get]
    if {![dict exists $valid $endpoint]} {
	return -code error -errorcode [list SANDBOX MODE $endpoint] \
	    "unknown endpoint \"$endpoint\": must be authorize, token_get or token_refresh"
    }
    if {[llength $args] == 0} {
	return [dict get $modes $endpoint]
    }
    set name [lindex $args 0]
    if {$name ni [dict get $valid $endpoint]} {
	return -code error -errorcode [list SANDBOX MODE $endpoint] \
	    "unknown mode \"$name\" for $endpoint: must be one of\
	     [join [dict get $valid $endpoint] {, }]"
    }
    set wordCount [llength $args]
    switch -- $name {
	slow {
	    if {$wordCount != 2 || ![string is double -strict [lindex $args 1]]
		    || [lindex $args 1] < 0} {
		return -code error -errorcode [list SANDBOX MODE $endpoint] \
		    "mode slow needs a number of seconds: slow SECONDS"
	    }
	}
	code {
	    if {$wordCount < 2 || $wordCount > 3
		    || ![string is wideinteger -strict [lindex $args 1]]} {
		return -code error -errorcode [list SANDBOX MODE $endpoint] \
		    "mode code needs an integer: code N ?MESSAGE?"
	    }
	}
	redirect {
	    if {$wordCount > 2} {
		return -code error -errorcode [list SANDBOX MODE $endpoint] \
		    "mode redirect takes at most a URL: redirect ?URL?"
	    }
	}
	default {
	    if {$wordCount != 1} {
		return -code error -errorcode [list SANDBOX MODE $endpoint] \
		    "mode $name takes no argument"
	    }
	}
    }
    dict set modes $endpoint $args
    return $args
}

# sandbox::reset --
#
#	Forgets every code and token, zeroes the stats, sets all modes back to ok.
#	Settings are kept.

proc ::sandbox::reset {} {
    variable codes {}
    variable refreshTokens {}
    variable accessTokens {}
    variable modes {authorize ok token_get ok token_refresh ok}
    variable stats {
	authorize 0 token_get 0 token_refresh 0 api 0 orders 0 redirect_followed 0
	other 0 webhooks 0 connections 0
	outcomes {authorize {} token_get {} token_refresh {} api {} orders {}}
	requests {} accept_encoding {} encoded 0
    }
    variable resetAt [clock seconds]
    return ok
}

# sandbox::stats --
#
# Results:
#	The counters, table sizes, modes and masked request log (see the header).

proc ::sandbox::stats {} {
    variable stats
    variable codes
    variable refreshTokens
    variable accessTokens
    variable modes
    ExpireCodes
    set result $stats
    dict set result codes_outstanding [dict size $codes]
    dict set result access_tokens [dict size $accessTokens]
    dict set result refresh_tokens [dict size $refreshTokens]
    dict set result modes $modes
    return $result
}

# sandbox::issue --
#
#	Mints a valid access/refresh token pair without a browser, as if a code had
#	just been exchanged. Keys: access_expires, refresh_expires (absolute Unix
#	seconds), app_key.
#
# Results:
#	The TikTok token JSON.

proc ::sandbox::issue {args} {
    variable config
    set opts [dict create \
	access_expires [expr {[clock seconds] + [dict get $config access_lifetime]}] \
	refresh_expires [dict get $config refresh_expires] \
	app_key [dict get $config app_key]]
    foreach {key value} $args {
	if {![dict exists $opts $key]} {
	    return -code error -errorcode [list SANDBOX OPTION $key] \
		"unknown key \"$key\": must be access_expires, refresh_expires or app_key"
	}
	if {$key ne "app_key" && ![string is wideinteger -strict $value]} {
	    return -code error -errorcode [list SANDBOX OPTION $key] \
		"\"$key\" needs an integer"
	}
	dict set opts $key $value
    }
    set data [MintPair [dict get $opts app_key] [RandomHex 12] \
	[dict get $opts access_expires] [dict get $opts refresh_expires]]
    return [TokenJson 0 success $data]
}

# sandbox::seed --
#
#	Registers a refresh token chosen by the caller (and optionally an access
#	token) as valid, e.g. one a test wrote into a token file. Keys: refresh_token
#	(required), expires (absolute Unix seconds; in the past makes it expired),
#	access_token, access_expires, app_key.

proc ::sandbox::seed {args} {
    variable config
    variable refreshTokens
    variable accessTokens
    set opts [dict create refresh_token {} access_token {} \
	expires [dict get $config refresh_expires] \
	access_expires [expr {[clock seconds] + [dict get $config access_lifetime]}] \
	app_key [dict get $config app_key]]
    foreach {key value} $args {
	if {![dict exists $opts $key]} {
	    return -code error -errorcode [list SANDBOX OPTION $key] \
		"unknown key \"$key\": must be one of [join [dict keys $opts] {, }]"
	}
	if {$key in {expires access_expires} && ![string is wideinteger -strict $value]} {
	    return -code error -errorcode [list SANDBOX OPTION $key] \
		"\"$key\" needs an integer"
	}
	dict set opts $key $value
    }
    if {[dict get $opts refresh_token] eq ""} {
	return -code error -errorcode {SANDBOX OPTION refresh_token} \
	    "seed needs a refresh_token"
    }
    set openId [RandomHex 12]
    dict set refreshTokens [dict get $opts refresh_token] [dict create \
	app_key [dict get $opts app_key] open_id $openId \
	expires [dict get $opts expires]]
    if {[dict get $opts access_token] ne ""} {
	dict set accessTokens [dict get $opts access_token] [dict create \
	    app_key [dict get $opts app_key] open_id $openId \
	    expires [dict get $opts access_expires]]
    }
    return ok
}

# sandbox::MintPair --
#
#	Creates and records a fresh access token and refresh token.
#
# Results:
#	The "data" part of a token response, as a dict of JSON-ready fragments
#	(see TokenJson).

proc ::sandbox::MintPair {appKey openId accessExpires refreshExpires} {
    variable config
    variable scopes
    variable accessTokens
    variable refreshTokens
    set access TTP_[RandomHex 20]
    set refresh TTP_[RandomHex 20]
    dict set accessTokens $access \
	[dict create app_key $appKey open_id $openId expires $accessExpires]
    dict set refreshTokens $refresh \
	[dict create app_key $appKey open_id $openId expires $refreshExpires]
    set scopeList [lmap s $scopes {JsonString $s}]
    return [list \
	access_token [JsonString $access] \
	access_token_expire_in $accessExpires \
	refresh_token [JsonString $refresh] \
	refresh_token_expire_in $refreshExpires \
	open_id [JsonString $openId] \
	seller_name [JsonString [dict get $config seller_name]] \
	seller_base_region [JsonString [dict get $config region]] \
	user_type 0 \
	granted_scopes "\[[join $scopeList ,]\]"]
}

# sandbox::ExpireCodes --
#
#	Drops authorization codes past their lifetime, so the table stays small.

proc ::sandbox::ExpireCodes {} {
    variable codes
    set now [clock seconds]
    set codes [dict filter $codes script {code record} {
	expr {[dict get $record expires] > $now}
    }]
}

# ---------------------------------------------------------------------------
# Small helpers: randomness, JSON text, URL coding, masking
# ---------------------------------------------------------------------------

# sandbox::RandomHex --
#
# Results:
#	2*n lowercase hex digits from the system's random source (a weak fallback
#	where there is none: this is a test server).

proc ::sandbox::RandomHex {n} {
    if {![catch {open /dev/urandom rb} f]} {
	set bytes [read $f $n]
	close $f
	binary scan $bytes H* hex
	return $hex
    }
    set hex ""
    for {set i 0} {$i < $n} {incr i} {
	append hex [format %02x [expr {int(rand() * 256)}]]
    }
    return $hex
}

proc ::sandbox::RequestId {} {
    return [clock format [clock seconds] -format %Y%m%d%H%M%S -gmt 1][string toupper [RandomHex 9]]
}

# sandbox::JsonString --
#
# Results:
#	s as a JSON string literal, quotes included.

proc ::sandbox::JsonString {s} {
    set out \"
    foreach ch [split $s ""] {
	switch -- $ch {
	    \" {append out \\\"}
	    \\ {append out \\\\}
	    \n {append out \\n}
	    \r {append out \\r}
	    \t {append out \\t}
	    default {
		if {[scan $ch %c] < 0x20} {
		    append out [format \\u%04x [scan $ch %c]]
		} else {
		    append out $ch
		}
	    }
	}
    }
    return $out\"
}

# sandbox::TokenJson --
#
#	Builds the response body TikTok uses for both token calls. data is a flat
#	list of key / JSON-fragment pairs (values already encoded), or empty for {}.

proc ::sandbox::TokenJson {code message data} {
    set fields {}
    foreach {key fragment} $data {
	lappend fields "[JsonString $key]:$fragment"
    }
    return "\{\"code\":$code,\"message\":[JsonString $message],\"request_id\":[JsonString [RequestId]],\"data\":\{[join $fields ,]\}\}"
}

# sandbox::UrlEncode --
#
# Results:
#	s percent-encoded (UTF-8) except RFC 3986 unreserved characters.

proc ::sandbox::UrlEncode {s} {
    set out ""
    binary scan [encoding convertto utf-8 $s] cu* bytes
    foreach byte $bytes {
	set ch [format %c $byte]
	if {($byte < 128 && [string is alnum $ch]) || $ch in {- . _ ~}} {
	    append out $ch
	} else {
	    append out [format %%%02X $byte]
	}
    }
    return $out
}

# sandbox::UrlDecode --
#
#	Undoes percent-encoding (and "+" for space in queries). The input is the
#	raw bytes of the request; the result is decoded as UTF-8. Written as a loop
#	rather than regsub+subst so request bytes are never evaluated.

proc ::sandbox::UrlDecode {s {plusIsSpace 1}} {
    if {$plusIsSpace} {
	set s [string map {+ { }} $s]
    }
    set bytes ""
    set length [string length $s]
    for {set i 0} {$i < $length} {incr i} {
	set ch [string index $s $i]
	set hex [string range $s [expr {$i + 1}] [expr {$i + 2}]]
	if {$ch eq "%" && [string length $hex] == 2 && [string is xdigit -strict $hex]} {
	    append bytes [binary format H2 $hex]
	    incr i 2
	} else {
	    append bytes $ch
	}
    }
    return [encoding convertfrom utf-8 $bytes]
}

# sandbox::ParseQuery --
#
# Results:
#	The query string as a list of name value pairs, in order (a dict when the
#	names are distinct; dict get keeps the last value).

proc ::sandbox::ParseQuery {query} {
    set pairs {}
    foreach part [split $query &] {
	if {$part eq ""} continue
	set eq [string first = $part]
	if {$eq < 0} {
	    lappend pairs [UrlDecode $part] {}
	} else {
	    lappend pairs [UrlDecode [string range $part 0 [expr {$eq - 1}]]] \
		[UrlDecode [string range $part [expr {$eq + 1}] end]]
	}
    }
    return $pairs
}

proc ::sandbox::FormatQuery {pairs} {
    set parts {}
    foreach {name value} $pairs {
	lappend parts [UrlEncode $name]=[UrlEncode $value]
    }
    return [join $parts &]
}

# sandbox::MaskTarget --
#
# Results:
#	The request target with the values of secret query parameters replaced by
#	***, the rest left byte for byte as received.

proc ::sandbox::MaskTarget {target} {
    variable secretParams
    set q [string first ? $target]
    if {$q < 0} {
	return $target
    }
    set parts {}
    foreach part [split [string range $target [expr {$q + 1}] end] &] {
	set eq [string first = $part]
	if {$eq >= 0} {
	    set name [UrlDecode [string range $part 0 [expr {$eq - 1}]]]
	    if {[string tolower $name] in $secretParams} {
		set part [string range $part 0 $eq]***
	    }
	}
	lappend parts $part
    }
    return [string range $target 0 $q][join $parts &]
}

proc ::sandbox::Count {key {outcomeOf {}} {outcome {}}} {
    variable stats
    if {$key ne ""} {
	dict incr stats $key
    }
    if {$outcomeOf ne ""} {
	set outcomes [dict get $stats outcomes]
	set these [dict get $outcomes $outcomeOf]
	dict incr these $outcome
	dict set outcomes $outcomeOf $these
	dict set stats outcomes $outcomes
    }
}

# ---------------------------------------------------------------------------
# The HTTP server: connections, request parsing, responses
# ---------------------------------------------------------------------------

# sandbox::start --
#
#	Starts the server in this interpreter. Options: -port (default 0: a free
#	port), -host (127.0.0.1, ::1 or localhost, which means 127.0.0.1), and every
#	setting (see configure).
#
# Results:
#	The port it listens on.

proc ::sandbox::start {args} {
    variable listenSocket
    variable listenHost
    variable listenPort
    variable onShutdown
    if {$listenSocket ne ""} {
	return -code error -errorcode {SANDBOX BUSY} "the sandbox is already running"
    }
    set opts [ParseOptions $args {-port -host}]
    set host [dict get $opts -host]
    set port [dict get $opts -port]
    configure {*}[dict get $opts settings]
    reset
    set listenSocket [socket -server [namespace current]::Accept -myaddr $host $port]
    set listenHost $host
    set listenPort [lindex [fconfigure $listenSocket -sockname] 2]
    if {$onShutdown eq ""} {
	set onShutdown [list [namespace current]::stop]
    }
    return $listenPort
}

# sandbox::ParseOptions --
#
#	Checks start/program options. allowed lists the non-setting options the
#	caller accepts; settings (see configure) are always accepted.
#
# Results:
#	A dict: -port, -host and the other allowed options, plus "settings", the
#	setting options as a key value list.

proc ::sandbox::ParseOptions {argList allowed} {
    variable defaults
    if {[llength $argList] % 2} {
	return -code error -errorcode {SANDBOX USAGE} \
	    "options must come in pairs: [join $allowed {, }], or a setting"
    }
    set opts [dict create -port 0 -host 127.0.0.1 settings {}]
    foreach {name value} $argList {
	if {$name in $allowed} {
	    dict set opts $name $value
	} elseif {[dict exists $defaults [string trimleft $name -]]
		&& [string index $name 0] eq "-"} {
	    dict lappend opts settings $name $value
	} else {
	    set settingNames [lmap k [dict keys $defaults] {string cat - $k}]
	    return -code error -errorcode [list SANDBOX OPTION $name] \
		"unknown option \"$name\": must be one of [join [concat $allowed $settingNames] {, }]"
	}
    }
    set port [dict get $opts -port]
    if {![string is integer -strict $port] || $port < 0 || $port > 65535} {
	return -code error -errorcode {SANDBOX OPTION -port} \
	    "bad port \"$port\": must be 0..65535"
    }
    switch -- [dict get $opts -host] {
	127.0.0.1 - localhost {dict set opts -host 127.0.0.1}
	::1 - {[::1]} {dict set opts -host ::1}
	default {
	    return -code error -errorcode {SANDBOX OPTION -host} \
		"bad host \"[dict get $opts -host]\": the sandbox listens on loopback only\
		 (127.0.0.1 or ::1)"
	}
    }
    foreach key {-lifetime} {
	if {[dict exists $opts $key] && (![string is double -strict [dict get $opts $key]]
		|| [dict get $opts $key] <= 0)} {
	    return -code error -errorcode [list SANDBOX OPTION $key] \
		"bad $key \"[dict get $opts $key]\": must be a positive number of seconds"
	}
    }
    foreach key {-watchstdin} {
	if {[dict exists $opts $key] && ![string is boolean -strict [dict get $opts $key]]} {
	    return -code error -errorcode [list SANDBOX OPTION $key] \
		"bad $key \"[dict get $opts $key]\": must be a boolean"
	}
    }
    # Check settings now, without applying them, so errors come before any socket.
    set saved [set [namespace current]::config]
    try {
	configure {*}[dict get $opts settings]
    } finally {
	set [namespace current]::config $saved
    }
    return $opts
}

# sandbox::stop --
#
#	Stops the in-process server and drops every connection.

proc ::sandbox::stop {} {
    variable listenSocket
    variable C
    if {$listenSocket ne ""} {
	catch {close $listenSocket}
	set listenSocket {}
    }
    foreach key [array names C *,sock] {
	CloseConn [lindex [split $key ,] 0]
    }
    return
}

proc ::sandbox::Accept {sock addr port} {
    variable C
    variable nextConnId
    set id [incr nextConnId]
    fconfigure $sock -blocking 0 -translation binary -buffering full
    set C($id,sock) $sock
    set C($id,buf) ""
    set C($id,busy) 0
    set C($id,eof) 0
    set C($id,pending) {}
    set C($id,idle) {}
    set C($id,method) GET
    set C($id,keepalive) 1
    fileevent $sock readable [list [namespace current]::Readable $id]
    Touch $id
}

# sandbox::Touch --
#
#	Restarts the idle timer: a connection silent for idleMs is closed, unless a
#	(slow) answer is pending for it.

proc ::sandbox::Touch {id} {
    variable C
    variable idleMs
    after cancel $C($id,idle)
    set C($id,idle) [after $idleMs [list [namespace current]::IdleTimeout $id]]
}

proc ::sandbox::IdleTimeout {id} {
    variable C
    if {![info exists C($id,sock)]} return
    if {$C($id,busy)} {
	Touch $id
    } else {
	CloseConn $id
    }
}

proc ::sandbox::CloseConn {id} {
    variable C
    if {![info exists C($id,sock)]} return
    after cancel $C($id,idle)
    after cancel $C($id,pending)
    catch {fileevent $C($id,sock) readable {}}
    catch {close $C($id,sock)}
    array unset C $id,*
}

proc ::sandbox::Readable {id} {
    variable C
    set sock $C($id,sock)
    if {[catch {read $sock} data]} {
	CloseConn $id
	return
    }
    append C($id,buf) $data
    if {[eof $sock]} {
	fileevent $sock readable {}
	set C($id,eof) 1
	if {$C($id,busy)} {
	    # The client hung up while its answer was being delayed: drop it.
	    CloseConn $id
	    return
	}
    }
    Touch $id
    Process $id
}

# sandbox::Process --
#
#	Answers every complete request in the connection's buffer, one at a time
#	(a delayed answer holds the ones behind it, as HTTP/1.1 pipelining wants).

proc ::sandbox::Process {id} {
    variable C
    while {[info exists C($id,sock)] && !$C($id,busy)} {
	set request [TakeRequest $id]
	if {$request eq ""} break
	if {[dict exists $request error]} {
	    set C($id,keepalive) 0
	    set C($id,method) GET
	    Respond $id [dict get $request error] {Content-Type text/plain} \
		"[dict get $request message]\n"
	    return
	}
	Dispatch $id $request
    }
    if {[info exists C($id,sock)] && !$C($id,busy) && $C($id,eof)} {
	CloseConn $id
    }
}

# sandbox::TakeRequest --
#
#	Removes one complete request from the connection's buffer.
#
# Results:
#	"" when the buffer holds no complete request yet; a dict {error STATUS
#	message TEXT} for a request that cannot be served; else a dict with method,
#	target, version, headers (lower-case names), body, path, query, keepalive.

proc ::sandbox::TakeRequest {id} {
    variable C
    variable maxHeaderBytes
    variable maxBodyBytes
    # Empty lines before a request line are allowed (RFC 9112 2.2).
    set C($id,buf) [string trimleft $C($id,buf) "\r\n"]
    set buf $C($id,buf)
    if {![regexp -indices {\r?\n\r?\n} $buf blank]} {
	if {[string length $buf] > $maxHeaderBytes} {
	    return {error 431 message {request header too large}}
	}
	return ""
    }
    set headEnd [lindex $blank 0]
    set bodyStart [expr {[lindex $blank 1] + 1}]
    if {$headEnd > $maxHeaderBytes} {
	return {error 431 message {request header too large}}
    }
    set lines [split [string range $buf 0 [expr {$headEnd - 1}]] \n]
    set requestLine [string trimright [lindex $lines 0] \r]
    if {![regexp {^([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) (HTTP/1\.[0-9])$} $requestLine \
	    -> method target version]} {
	return {error 400 message {malformed request line}}
    }
    set headers {}
    foreach line [lrange $lines 1 end] {
	set line [string trimright $line \r]
	if {![regexp {^([^:\s]+):[ \t]*(.*?)[ \t]*$} $line -> name value]} {
	    return {error 400 message {malformed header line}}
	}
	set name [string tolower $name]
	if {[dict exists $headers $name]} {
	    if {$name eq "content-length" && [dict get $headers $name] ne $value} {
		return {error 400 message {conflicting Content-Length headers}}
	    }
	    dict append headers $name ", $value"
	} else {
	    dict set headers $name $value
	}
    }
    if {[dict exists $headers transfer-encoding]} {
	return {error 501 message {request bodies must use Content-Length}}
    }
    set bodyLength 0
    if {[dict exists $headers content-length]} {
	set bodyLength [dict get $headers content-length]
	if {![string is digit -strict $bodyLength] || [string length $bodyLength] > 9} {
	    return {error 400 message {bad Content-Length}}
	}
	set bodyLength [scan $bodyLength %d]
	if {$bodyLength > $maxBodyBytes} {
	    return {error 413 message {request body too large}}
	}
    }
    if {[string length $buf] - $bodyStart < $bodyLength} {
	return ""
    }
    set body [string range $buf $bodyStart [expr {$bodyStart + $bodyLength - 1}]]
    set C($id,buf) [string range $buf [expr {$bodyStart + $bodyLength}] end]

    # Absolute-form targets (as sent to proxies) are reduced to origin-form.
    if {[regexp {^https?://[^/?#]*(.*)$} $target -> rest]} {
	set target [expr {$rest eq "" ? "/" : $rest}]
	if {[string index $target 0] eq "?"} {
	    set target /$target
	}
    }
    if {[string index $target 0] ne "/"} {
	return {error 400 message {request target must be a path}}
    }
    set target [lindex [split $target #] 0]
    set q [string first ? $target]
    if {$q < 0} {
	set rawPath $target
	set query {}
    } else {
	set rawPath [string range $target 0 [expr {$q - 1}]]
	set query [ParseQuery [string range $target [expr {$q + 1}] end]]
    }
    set connection [string tolower [expr {[dict exists $headers connection]
	? [dict get $headers connection] : ""}]]
    if {$version eq "HTTP/1.0"} {
	set keepalive [expr {"keep-alive" in [split [string map {{ } {}} $connection] ,]}]
    } else {
	set keepalive [expr {"close" ni [split [string map {{ } {}} $connection] ,]}]
    }
    return [dict create method $method target $target version $version \
	headers $headers body $body rawPath $rawPath \
	path [UrlDecode $rawPath 0] query $query keepalive $keepalive]
}

# sandbox::Respond --
#
#	Sends one response. headers is a name value list; Content-Length, Date,
#	Server and Connection are added here. A HEAD request gets the headers only.
#	The connection closes afterwards when close is true or the request did not
#	ask to keep it.

proc ::sandbox::Respond {id status headers body {close 0}} {
    variable C
    if {![info exists C($id,sock)]} return
    if {!$C($id,keepalive)} {
	set close 1
    }
    set body [encoding convertto utf-8 $body]
    if {[info exists C($id,encode)]} {
	# A token endpoint answer in the configured content_encoding.
	switch -- $C($id,encode) {
	    gzip {set body [zlib gzip $body]}
	    deflate {set body [zlib compress $body]}
	    gzipbomb {set body [zlib gzip $body[string repeat " " 4194304]]}
	    badgzip {}
	}
	lappend headers Content-Encoding [expr {$C($id,encode) eq "deflate" ? "deflate" : "gzip"}]
	unset C($id,encode)
    }
    set head "HTTP/1.1 $status [StatusText $status]\r\n"
    append head "Date: [clock format [clock seconds] -format {%a, %d %b %Y %H:%M:%S GMT} -gmt 1]\r\n"
    append head "Server: ttoauth2-sandbox\r\n"
    foreach {name value} $headers {
	append head "$name: $value\r\n"
    }
    append head "Content-Length: [string length $body]\r\n"
    append head "Connection: [expr {$close ? "close" : "keep-alive"}]\r\n\r\n"
    if {$C($id,method) eq "HEAD"} {
	set body ""
    }
    if {[catch {
	puts -nonewline $C($id,sock) $head$body
	flush $C($id,sock)
    }]} {
	CloseConn $id
	return
    }
    if {$close} {
	FinishConn $id
    } else {
	Touch $id
    }
}

# sandbox::FinishConn --
#
#	Ends a connection after its last answer. Closing outright while the client
#	is still sending (a rejected oversized request, say) would make the kernel
#	reset the connection, and a reset can destroy the answer before the client
#	reads it. So only our sending side closes; whatever still arrives is read
#	and dropped until the client closes too, for at most 2 s.

proc ::sandbox::FinishConn {id} {
    variable C
    set sock $C($id,sock)
    after cancel $C($id,idle)
    after cancel $C($id,pending)
    # busy stops Process from taking further requests off this connection.
    set C($id,busy) 1
    if {[catch {close $sock write}]} {
	CloseConn $id
	return
    }
    fileevent $sock readable [list [namespace current]::Drain $id]
    set C($id,idle) [after 2000 [list [namespace current]::CloseConn $id]]
}

proc ::sandbox::Drain {id} {
    variable C
    if {[catch {read $C($id,sock)}] || [eof $C($id,sock)]} {
	CloseConn $id
    }
}

proc ::sandbox::StatusText {status} {
    set texts {
	200 OK 302 Found 400 {Bad Request} 404 {Not Found} 405 {Method Not Allowed}
	413 {Content Too Large} 431 {Request Header Fields Too Large}
	500 {Internal Server Error} 501 {Not Implemented}
    }
    if {[dict exists $texts $status]} {
	return [dict get $texts $status]
    }
    return Status
}

proc ::sandbox::HtmlPage {title text} {
    return "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>$title</title></head>\n<body><h1>$title</h1><p>$text</p></body></html>\n"
}

# sandbox::Dispatch --
#
#	Routes one parsed request.

proc ::sandbox::Dispatch {id request} {
    variable C
    variable stats
    variable config
    variable maxLoggedRequests
    set C($id,method) [dict get $request method]
    set C($id,keepalive) [dict get $request keepalive]
    set path [dict get $request path]
    set method [dict get $request method]
    set masked "$method [MaskTarget [dict get $request target]] [dict get $request version]"
    if {[dict get $config verbose]} {
	catch {puts stderr "sandbox: $masked"}
    }
    set isControl [string match /__control* $path]
    if {!$isControl && ![info exists C($id,counted)]} {
	set C($id,counted) 1
	dict incr stats connections
    }
    if {!$isControl} {
	set log [dict get $stats requests]
	lappend log $masked
	if {[llength $log] > $maxLoggedRequests} {
	    set log [lrange $log end-[expr {$maxLoggedRequests - 1}] end]
	}
	dict set stats requests $log
    }

    set routes {
	/open/authorize			authorize
	/api/v2/token/get		token_get
	/api/v2/token/refresh		token_refresh
	/authorization/202309/shops	api
	/order/202309/orders/search	orders
	/__redirected/token		redirect_followed
    }
    if {$isControl} {
	set endpoint control
    } elseif {[dict exists $routes $path]} {
	set endpoint [dict get $routes $path]
    } else {
	set endpoint other
    }

    if {$endpoint eq "orders" && $method ne "POST"} {
	Count orders orders 405
	Respond $id 405 {Content-Type text/plain Allow POST} "method not allowed\n"
	return
    }
    if {$method ni {GET HEAD} && $endpoint ne "orders"} {
	if {$endpoint in {token_get token_refresh}} {
	    # TikTok answers a POST to its token paths with 404.
	    Count $endpoint $endpoint 404
	    Respond $id 404 {Content-Type text/plain} "404 page not found\n"
	} else {
	    if {$endpoint in {authorize api}} {
		Count $endpoint $endpoint 405
	    } elseif {$endpoint ne "control"} {
		Count $endpoint
	    }
	    Respond $id 405 {Content-Type text/plain Allow {GET, HEAD}} \
		"method not allowed\n"
	}
	return
    }
    switch -- $endpoint {
	control		  {Control $id $request}
	authorize	  {Authorize $id $request}
	token_get	  -
	token_refresh	  {TokenEndpoint $id $endpoint $request}
	api		  -
	orders		  {ShopApi $id $endpoint $request}
	redirect_followed {
	    Count redirect_followed
	    Respond $id 200 {Content-Type application/json} \
		[TokenJson 0 success [list access_token [JsonString TTP_redirected] \
		    refresh_token [JsonString TTP_redirected]]]
	}
	default {
	    Count other
	    if {$path eq "/"} {
		Respond $id 200 {Content-Type text/plain} \
		    "ttoauth2 TikTok Shop sandbox: /open/authorize, /api/v2/token/get,\
		     /api/v2/token/refresh, /authorization/202309/shops,\
		     /order/202309/orders/search, /__control/ (see tests/sandbox.tcl)\n"
	    } else {
		Respond $id 404 {Content-Type text/plain} "404 page not found\n"
	    }
	}
    }
}

# ---------------------------------------------------------------------------
# Endpoints
# ---------------------------------------------------------------------------

# sandbox::Authorize --
#
#	The consent page stand-in: redirects at once as if the seller had clicked
#	"Authorize" (or "Cancel", in deny mode).

proc ::sandbox::Authorize {id request} {
    variable config
    variable modes
    variable codes
    Count authorize
    set query [dict get $request query]
    set serviceId [expr {[dict exists $query service_id] ? [dict get $query service_id] : ""}]
    set wanted [dict get $config service_id]
    if {$serviceId eq "" || ($wanted ne "" && $serviceId ne $wanted)} {
	Count {} authorize 400
	set why [expr {$serviceId eq "" ? "The link has no service_id." : "Unknown service_id."}]
	Respond $id 400 {Content-Type {text/html; charset=utf-8}} \
	    [HtmlPage "Authorization failed" $why]
	return
    }
    set redirect [dict get $config redirect]
    if {[dict exists $query redirect_uri] && [dict get $query redirect_uri] ne ""} {
	set redirect [dict get $query redirect_uri]
    }
    set hasState [dict exists $query state]
    set state [expr {$hasState ? [dict get $query state] : ""}]
    set mode [lindex [dict get $modes authorize] 0]
    switch -- $mode {
	deny {
	    set params [list code null error auth_denied]
	    if {$hasState} {
		lappend params state $state
	    }
	    lappend params error_description "The seller declined to authorize the app."
	    Count {} authorize deny
	}
	default {
	    ExpireCodes
	    set code [RandomHex 16]
	    dict set codes $code [dict create app_key [dict get $config app_key] \
		expires [expr {[clock seconds] + [dict get $config code_lifetime]}]]
	    set params [list code $code]
	    if {$mode eq "wrongstate"} {
		lappend params state sandbox-wrong-state-[RandomHex 4]
	    } elseif {$hasState && $mode ne "nostate"} {
		lappend params state $state
	    }
	    lappend params locale en-GB shop_region [dict get $config region] \
		app_key [dict get $config app_key]
	    Count {} authorize [expr {$mode eq "ok" ? "redirect" : $mode}]
	}
    }
    set sep [expr {[string first ? $redirect] >= 0 ? "&" : "?"}]
    set location $redirect$sep[FormatQuery $params]
    Respond $id 302 [list Location $location Content-Type {text/html; charset=utf-8} \
	Cache-Control no-store] [HtmlPage "Redirecting" "Returning to the application."]
}

# sandbox::TokenEndpoint --
#
#	Applies the endpoint's answer mode, delaying the real work in slow mode.

proc ::sandbox::TokenEndpoint {id endpoint request} {
    variable C
    variable modes
    variable config
    variable stats
    Count $endpoint
    set headers [dict get $request headers]
    set offered [expr {[dict exists $headers accept-encoding]
	? [dict get $headers accept-encoding] : ""}]
    dict set stats accept_encoding $offered
    set coding [dict get $config content_encoding]
    if {$coding ne "identity"
	    && [Offers $offered [expr {$coding eq "deflate" ? "deflate" : "gzip"}]]} {
	set C($id,encode) $coding
	dict incr stats encoded
    }
    set mode [dict get $modes $endpoint]
    if {[lindex $mode 0] eq "slow"} {
	set C($id,busy) 1
	set ms [expr {round([lindex $mode 1] * 1000)}]
	set C($id,pending) [after $ms [list [namespace current]::SlowAnswer \
	    $id $endpoint $request]]
	return
    }
    TokenAnswer $id $endpoint $request $mode
}

# sandbox::Offers --
#
# Results:
#	1 if the Accept-Encoding value offers the coding (q not 0), else 0.

proc ::sandbox::Offers {acceptEncoding coding} {
    foreach item [split $acceptEncoding ,] {
	set parts [split $item \;]
	if {[string tolower [string trim [lindex $parts 0]]] ni [list $coding *]} continue
	set q 1
	foreach param [lrange $parts 1 end] {
	    regexp {^\s*q\s*=\s*([0-9.]+)\s*$} $param -> q
	}
	return [expr {[string is double -strict $q] && $q > 0}]
    }
    return 0
}

proc ::sandbox::SlowAnswer {id endpoint request} {
    variable C
    if {![info exists C($id,sock)]} return
    set C($id,busy) 0
    set C($id,pending) {}
    TokenAnswer $id $endpoint $request ok
    # Requests pipelined behind the slow one are answered now.
    if {[info exists C($id,sock)]} {
	Process $id
    }
}

proc ::sandbox::TokenAnswer {id endpoint request mode} {
    variable C
    variable listenHost
    variable listenPort
    set html {Content-Type {text/html; charset=utf-8}}
    set name [lindex $mode 0]
    switch -- $name {
	http500 {
	    Count {} $endpoint http500
	    Respond $id 500 $html [HtmlPage "500 Internal Server Error" \
		"The server met an unexpected condition."]
	}
	html200 {
	    Count {} $endpoint html200
	    Respond $id 200 $html [HtmlPage "TikTok Shop" "Please sign in to continue."]
	}
	nonjson {
	    Count {} $endpoint nonjson
	    Respond $id 200 {Content-Type text/plain} "upstream said: \{this is not json\n"
	}
	close {
	    Count {} $endpoint close
	    CloseConn $id
	}
	redirect {
	    Count {} $endpoint redirect
	    set target [lindex $mode 1]
	    if {$target eq ""} {
		set host [expr {[string match *:* $listenHost] ? "\[$listenHost\]" : $listenHost}]
		set target http://$host:$listenPort/__redirected/token
	    }
	    Respond $id 302 [list Location $target Content-Type text/plain] "moved\n"
	}
	code {
	    set code [lindex $mode 1]
	    set message [expr {[llength $mode] > 2 ? [lindex $mode 2] : "error"}]
	    Count {} $endpoint $code
	    Respond $id 200 {Content-Type application/json} [TokenJson $code $message {}]
	}
	truncated {
	    Count {} $endpoint truncated
	    set body [TokenJson 0 success [list access_token [JsonString TTP_cut]]]
	    Respond $id 200 {Content-Type application/json} \
		[string range $body 0 [expr {[string length $body] / 2}]]
	}
	nodata {
	    Count {} $endpoint nodata
	    Respond $id 200 {Content-Type application/json} [TokenJson 0 success {}]
	}
	default {
	    # ok, expiresoon, and slow once its delay is over.
	    set query [dict get $request query]
	    if {$endpoint eq "token_get"} {
		lassign [TokenGet $query [expr {$name eq "expiresoon"}]] code body
	    } else {
		lassign [TokenRefresh $query [expr {$name eq "expiresoon"}]] code body
	    }
	    Count {} $endpoint $code
	    if {$name eq "rich" && $code == 0} {
		set body [string range $body 0 end-2],[RichMembers]\}\}
	    }
	    Respond $id 200 {Content-Type application/json} $body
	}
    }
}

# sandbox::RichMembers --
#
# Results:
#	The extra data members of the rich answer mode (JSON text).

proc ::sandbox::RichMembers {} {
    return {"big":9007199254740993,"e":1e400,"f":0.1,"neg":-0.0,"u":"caf\u00e9 \ud83d\ude00","x":{"n":[12345678901234567890123,1E-7,{"z":null}],"t":true}}
}

# sandbox::Param --
#
# Results:
#	The value of a query parameter, "" when absent.

proc ::sandbox::Param {query name} {
    if {[dict exists $query $name]} {
	return [dict get $query $name]
    }
    return ""
}

# sandbox::CheckApp --
#
# Results:
#	A {code body} error pair when the app credentials or grant type are wrong,
#	else "".

proc ::sandbox::CheckApp {query grantType} {
    variable config
    if {[Param $query app_key] ne [dict get $config app_key]
	    || [Param $query app_secret] ne [dict get $config app_secret]} {
	return [list 36004003 [TokenJson 36004003 "invalid app key or app secret" {}]]
    }
    if {[Param $query grant_type] ne $grantType} {
	return [list 36004002 [TokenJson 36004002 "invalid grant type" {}]]
    }
    return ""
}

# sandbox::TokenGet --
#
#	Exchanges an authorization code.
#
# Results:
#	{tiktokCode jsonBody}.

proc ::sandbox::TokenGet {query expireSoon} {
    variable config
    variable codes
    set failure [CheckApp $query authorized_code]
    if {$failure ne ""} {
	return $failure
    }
    set code [Param $query auth_code]
    if {$code eq "" || ![dict exists $codes $code]} {
	return [list 36004004 [TokenJson 36004004 "invalid auth code" {}]]
    }
    set record [dict get $codes $code]
    # A code works once, whatever the outcome of its first use.
    dict unset codes $code
    if {[dict get $record expires] <= [clock seconds]} {
	return [list 36004004 [TokenJson 36004004 "invalid auth code: expired" {}]]
    }
    if {[dict get $record app_key] ne [Param $query app_key]} {
	return [list 36004004 [TokenJson 36004004 "invalid auth code" {}]]
    }
    set data [MintPair [Param $query app_key] [RandomHex 12] \
	[AccessExpiry $expireSoon] [dict get $config refresh_expires]]
    return [list 0 [TokenJson 0 success $data]]
}

# sandbox::TokenRefresh --
#
#	Spends a refresh token for a new pair (rotation: the old one is dropped).
#	The new refresh token keeps the old one's expiry, as a seller's
#	authorization does not get longer by refreshing.
#
# Results:
#	{tiktokCode jsonBody}.

proc ::sandbox::TokenRefresh {query expireSoon} {
    variable refreshTokens
    set failure [CheckApp $query refresh_token]
    if {$failure ne ""} {
	return $failure
    }
    set token [Param $query refresh_token]
    if {$token eq "" || ![dict exists $refreshTokens $token]
	    || [dict get $refreshTokens $token app_key] ne [Param $query app_key]} {
	return [list 36004005 [TokenJson 36004005 "cannot find related auth record" {}]]
    }
    set record [dict get $refreshTokens $token]
    if {[dict get $record expires] <= [clock seconds]} {
	return [list 36004001 [TokenJson 36004001 "refresh token is expired" {}]]
    }
    dict unset refreshTokens $token
    set data [MintPair [dict get $record app_key] [dict get $record open_id] \
	[AccessExpiry $expireSoon] [dict get $record expires]]
    return [list 0 [TokenJson 0 success $data]]
}

proc ::sandbox::AccessExpiry {expireSoon} {
    variable config
    if {$expireSoon} {
	return [expr {[clock seconds] + 60}]
    }
    return [expr {[clock seconds] + [dict get $config access_lifetime]}]
}

# sandbox::ShopApi --
#
#	The Shop API stand-in: GET /authorization/202309/shops and POST
#	/order/202309/orders/search, with TikTok's checks (see the header).

proc ::sandbox::ShopApi {id endpoint request} {
    Count $endpoint
    if {[catch {package require sha256}]} {
	Count {} $endpoint 500
	Respond $id 500 {Content-Type text/plain} "the Shop API stand-in needs tcllib's sha256\n"
	return
    }
    lassign [ApiCheck $request] code body
    if {$code == 0} {
	if {$endpoint eq "api"} {
	    set shops {}
	    foreach shop [Shops] {
		lappend shops "\{\"cipher\":[JsonString [dict get $shop cipher]],\
		    \"code\":[JsonString [dict get $shop code]],\
		    \"id\":[JsonString [dict get $shop id]],\
		    \"name\":[JsonString [dict get $shop name]],\
		    \"region\":[JsonString [dict get $shop region]],\"seller_type\":\"LOCAL\"\}"
	    }
	    set body [TokenJson 0 Success [list shops "\[[join $shops ,]\]"]]
	} else {
	    lassign [OrdersSearch $request] code body
	}
    }
    Count {} $endpoint $code
    Respond $id 200 {Content-Type application/json} $body
}

# sandbox::ApiCheck --
#
# Results:
#	{0 ""} when app_key, timestamp, sign and token are good, else {code body}.

proc ::sandbox::ApiCheck {request} {
    variable config
    variable accessTokens
    set query [dict get $request query]
    set now [clock seconds]
    if {[Param $query app_key] ne [dict get $config app_key]} {
	return [list 36009004 [TokenJson 36009004 "invalid app_key" {}]]
    }
    set ts [Param $query timestamp]
    if {![string is wideinteger -strict $ts] || $ts < $now - 300 || $ts > $now + 30} {
	return [list 36009004 [TokenJson 36009004 "invalid timestamp" {}]]
    }
    if {[Param $query sign] ne [ApiSign [dict get $request path] $query \
	    [dict get $request body]]} {
	return [list 106001 [TokenJson 106001 "invalid sign" {}]]
    }
    set headers [dict get $request headers]
    set token [expr {[dict exists $headers x-tts-access-token]
	? [dict get $headers x-tts-access-token] : ""}]
    if {$token eq "" || ![dict exists $accessTokens $token]} {
	return [list 36009004 [TokenJson 36009004 "invalid access token" {}]]
    }
    if {[dict get $accessTokens $token expires] <= $now} {
	return [list 105002 [TokenJson 105002 "access token expired" {}]]
    }
    return {0 {}}
}

# sandbox::ApiSign --
#
#	TikTok Shop's request signature, computed here on its own (tcllib).
#	bodyBytes is the request body as received (bytes).
#
# Results:
#	64 lower-case hex digits.

proc ::sandbox::ApiSign {path query bodyBytes} {
    variable config
    set secret [encoding convertto utf-8 [dict get $config app_secret]]
    set pairs {}
    foreach {name value} $query {
	if {$name in {sign access_token}} continue
	lappend pairs [list [encoding convertto utf-8 $name] [encoding convertto utf-8 $value]]
    }
    set msg $secret[encoding convertto utf-8 $path]
    foreach pair [lsort -index 0 $pairs] {
	append msg [lindex $pair 0] [lindex $pair 1]
    }
    append msg $bodyBytes $secret
    return [string tolower [sha2::hmac -hex -key $secret $msg]]
}

# sandbox::Shops --
#
# Results:
#	The seller's shops: a list of dicts (name, region, code, id, cipher). The
#	ciphers depend only on the app key, so a test can keep one across resets.

proc ::sandbox::Shops {} {
    variable config
    set key [dict get $config app_key]
    set shops {}
    foreach {n region suffix} [list 1 [dict get $config region] {} 2 FR { FR}] {
	lappend shops [dict create name "[dict get $config seller_name]$suffix" \
	    region $region code ${region}SANDBOX0$n id 700000000000000000$n \
	    cipher GCP_[string range [sha2::sha256 -hex "$key/shop$n"] 0 23]]
    }
    return $shops
}

# sandbox::OrdersSearch --
#
# Results:
#	{code body} for an orders search of the shop named by shop_cipher.

proc ::sandbox::OrdersSearch {request} {
    variable resetAt
    set cipher [Param [dict get $request query] shop_cipher]
    set shop {}
    foreach s [Shops] {
	if {[dict get $s cipher] eq $cipher} {
	    set shop $s
	}
    }
    if {$shop eq ""} {
	return [list 36009004 [TokenJson 36009004 "invalid shop_cipher" {}]]
    }
    set body [encoding convertfrom utf-8 [dict get $request body]]
    set ge 0
    set lt 9999999999
    regexp {"create_time_ge"\s*:\s*(\d+)} $body -> ge
    regexp {"create_time_lt"\s*:\s*(\d+)} $body -> lt
    set orders {}
    set n 0
    foreach {age amount buyer} {3600 12.50 "Zo\u00eb Bront\u00eb" 172800 7.99 "\u0141ukasz \u017bak"
	    518400 30.00 "\u674e\u96f7" 864000 4.20 {Ann Old}} {
	incr n
	set created [expr {$resetAt - $age}]
	if {$created < $ge || $created >= $lt} continue
	lappend orders "\{\"id\":[JsonString 57[dict get $shop id]$n],\
	    \"status\":\"AWAITING_SHIPMENT\",\"create_time\":$created,\
	    \"payment\":\{\"currency\":\"GBP\",\"total_amount\":[JsonString $amount]\},\
	    \"recipient_address\":\{\"name\":[JsonString $buyer]\}\}"
    }
    return [list 0 [TokenJson 0 Success [list orders "\[[join $orders ,]\]" \
	total_count [llength $orders] next_page_token {""}]]]
}

# sandbox::Webhook --
#
#	Delivers one webhook (see the header) and answers the control request when
#	the receiver has answered.

proc ::sandbox::Webhook {id query} {
    variable config
    package require http
    package require sha256
    set url [Param $query url]
    if {![regexp {^http://(127\.0\.0\.1|\[::1\]|localhost)[:/]} $url]} {
	return -code error -errorcode {SANDBOX OPTION url} \
	    "webhook needs url=http://127.0.0.1:PORT/... (loopback only)"
    }
    set type [expr {[dict exists $query type] ? [dict get $query type] : 1}]
    if {![string is integer -strict $type]} {
	return -code error -errorcode {SANDBOX OPTION type} "type must be an integer"
    }
    if {[dict exists $query body]} {
	set body [dict get $query body]
    } else {
	set shop [lindex [Shops] 0]
	set body "\{\"type\":$type,\"tts_notification_id\":[JsonString [RandomHex 8]],\
	    \"shop_id\":[JsonString [dict get $shop id]],\"timestamp\":[clock seconds],\
	    \"data\":\{\"order_id\":[JsonString 57[dict get $shop id]1],\
	    \"order_status\":\"AWAITING_SHIPMENT\",\"update_time\":[clock seconds]\}\}"
    }
    set bytes [encoding convertto utf-8 $body]
    set signed $bytes
    if {[Param $query sign] eq "bad"} {
	append signed " "
    }
    set key [encoding convertto utf-8 [dict get $config app_key]]
    set secret [encoding convertto utf-8 [dict get $config app_secret]]
    set auth [string tolower [sha2::hmac -hex -key $secret $key$signed]]
    Count webhooks
    http::geturl $url -method POST -type application/json -query $bytes \
	-headers [list Authorization $auth] -timeout 5000 \
	-command [list [namespace current]::WebhookDone $id]
}

proc ::sandbox::WebhookDone {id token} {
    set status [http::status $token]
    set code [http::ncode $token]
    http::cleanup $token
    if {$status eq "ok"} {
	Respond $id 200 {Content-Type text/plain} "delivered $code"
    } else {
	Respond $id 502 {Content-Type text/plain} "webhook not delivered: $status\n"
    }
}

# sandbox::Expire --
#
#	Makes one access token (or every one) expired now.

proc ::sandbox::Expire {query} {
    variable accessTokens
    set now [clock seconds]
    set n 0
    dict for {token record} $accessTokens {
	if {[dict exists $query access_token]
		&& [dict get $query access_token] ne $token} continue
	dict set accessTokens $token expires [expr {$now - 1}]
	incr n
    }
    return "expired $n"
}

# sandbox::Control --
#
#	GET /__control/...: see the header for the commands.

proc ::sandbox::Control {id request} {
    variable onShutdown
    set words {}
    foreach segment [lrange [split [dict get $request rawPath] /] 2 end] {
	if {$segment ne ""} {
	    lappend words [UrlDecode $segment 0]
	}
    }
    set query [dict get $request query]
    set command [lindex $words 0]
    set text {Content-Type {text/plain; charset=utf-8}}
    try {
	switch -- $command {
	    "" - help {
		Respond $id 200 $text "control commands: stats reset shutdown\
		    mode/ENDPOINT/WORD... configure?k=v issue?k=v seed?refresh_token=X\
		    expire?access_token=A webhook?url=U\n"
	    }
	    stats {
		Respond $id 200 $text [stats]
	    }
	    reset {
		Respond $id 200 $text [reset]
	    }
	    shutdown {
		Respond $id 200 $text bye 1
		after 50 $onShutdown
	    }
	    mode {
		# Check every change before applying any.
		variable modes
		set saved $modes
		try {
		    if {[llength $words] > 1} {
			mode {*}[lrange $words 1 end]
		    }
		    foreach {endpoint value} $query {
			if {![string is list $value]} {
			    set value [regexp -all -inline {\S+} $value]
			}
			mode $endpoint {*}$value
		    }
		} on error {message options} {
		    set modes $saved
		    return -options $options $message
		}
		Respond $id 200 $text $modes
	    }
	    configure {
		Respond $id 200 $text [configure {*}$query]
	    }
	    issue {
		Respond $id 200 {Content-Type application/json} [issue {*}$query]
	    }
	    seed {
		Respond $id 200 $text [seed {*}$query]
	    }
	    expire {
		Respond $id 200 $text [Expire $query]
	    }
	    webhook {
		Webhook $id $query
	    }
	    default {
		Respond $id 404 $text "unknown control command \"$command\"\n"
	    }
	}
    } trap SANDBOX {message} {
	Respond $id 400 $text "$message\n"
    }
}

# ---------------------------------------------------------------------------
# Client side: the sandbox as a child process
# ---------------------------------------------------------------------------

# sandbox::spawn --
#
#	Runs this file as a program in a child process and waits (at most 10 s)
#	for its "listening" line. Options as for the program; -port defaults to 0.
#	The child watches its stdin, so it exits if this process dies.
#
# Results:
#	The child's port.

proc ::sandbox::spawn {args} {
    variable script
    variable child
    variable childHost
    variable childPort
    variable childEvent
    set opts [ParseOptions $args {-port -host -portfile -lifetime}]
    if {$child ne ""} {
	return -code error -errorcode {SANDBOX BUSY} \
	    "a sandbox child is already running (port $childPort): sandbox::kill it first"
    }
    set command [list [info nameofexecutable] $script -watchstdin 1 {*}$args]
    set chan [open |[concat $command [list 2>@stderr]] r+]
    fconfigure $chan -blocking 0 -buffering line -translation auto
    set childEvent {}
    fileevent $chan readable [list set [namespace current]::childEvent readable]
    set timer [after 10000 [list set [namespace current]::childEvent timeout]]
    set port ""
    set seen ""
    while {$port eq ""} {
	vwait [namespace current]::childEvent
	if {$childEvent eq "timeout"} {
	    break
	}
	set childEvent {}
	if {[gets $chan line] >= 0} {
	    append seen $line\n
	    regexp {^sandbox listening on http://(\[[^]]+\]|[^:/]+):([0-9]+)} $line -> host port
	} elseif {[eof $chan]} {
	    break
	}
    }
    after cancel $timer
    fileevent $chan readable {}
    if {$port eq ""} {
	set why [expr {$childEvent eq "timeout" ? "did not listen within 10 s" : "exited"}]
	KillChild $chan
	return -code error -errorcode {SANDBOX SPAWN} \
	    "the sandbox child $why[expr {$seen ne "" ? ": [string trim $seen]" : ""}]"
    }
    set child $chan
    set childHost [string trim $host {[]}]
    set childPort $port
    return $port
}

# sandbox::kill --
#
#	Stops the child: a shutdown request, then (if it has not gone within 3 s)
#	a signal. Never waits longer than about 5 s.

proc ::sandbox::kill {} {
    variable child
    variable childPort
    if {$child eq ""} return
    catch {control shutdown}
    KillChild $child
    set child {}
    set childPort {}
    return
}

proc ::sandbox::KillChild {chan} {
    variable childEvent
    # Wait for the child to close its end of the pipe, bounded.
    set childEvent {}
    fileevent $chan readable [list set [namespace current]::childEvent readable]
    set timer [after 3000 [list set [namespace current]::childEvent timeout]]
    while 1 {
	vwait [namespace current]::childEvent
	if {$childEvent eq "timeout"} break
	set childEvent {}
	if {[catch {read $chan}] || [eof $chan]} break
    }
    after cancel $timer
    catch {fileevent $chan readable {}}
    if {$childEvent eq "timeout"} {
	foreach pid [pid $chan] {
	    if {$::tcl_platform(platform) eq "windows"} {
		catch {exec taskkill /F /PID $pid}
	    } else {
		catch {exec kill -KILL $pid}
	    }
	}
    }
    # A non-blocking pipe closes without waiting for the child; Tcl reaps it.
    catch {fconfigure $chan -blocking 0}
    catch {close $chan}
}

# sandbox::url --
#
# Results:
#	http://HOST:PORT followed by path, for the spawned child or, failing that,
#	the in-process server.

proc ::sandbox::url {{path {}}} {
    variable child
    variable childHost
    variable childPort
    variable listenSocket
    variable listenHost
    variable listenPort
    if {$child ne ""} {
	set host $childHost
	set port $childPort
    } elseif {$listenSocket ne ""} {
	set host $listenHost
	set port $listenPort
    } else {
	return -code error -errorcode {SANDBOX NOTRUNNING} "no sandbox is running"
    }
    if {[string match *:* $host]} {
	set host \[$host\]
    }
    return http://$host:$port$path
}

# sandbox::control --
#
#	Sends a control command to the running sandbox (the child, else the
#	in-process server) and waits at most 5 s for the answer. "mode" takes the
#	endpoint and mode words; every other command takes key value pairs.
#
# Results:
#	The answer's body (stats and configure: a dict; mode: the modes dict;
#	issue: TikTok JSON).

proc ::sandbox::control {name args} {
    package require http
    if {$name eq "mode"} {
	set path /__control/mode
	foreach word $args {
	    append path / [UrlEncode $word]
	}
    } else {
	if {[llength $args] % 2} {
	    return -code error -errorcode {SANDBOX USAGE} \
		"control $name takes key value pairs"
	}
	set path /__control/[UrlEncode $name]
	if {[llength $args]} {
	    append path ? [FormatQuery $args]
	}
    }
    set token [http::geturl [url $path] -timeout 5000]
    try {
	set status [http::status $token]
	set code [http::ncode $token]
	set body [http::data $token]
    } finally {
	http::cleanup $token
    }
    if {$status ne "ok"} {
	return -code error -errorcode [list SANDBOX CONTROL $status] \
	    "sandbox control $name: $status"
    }
    if {$code != 200} {
	return -code error -errorcode [list SANDBOX CONTROL $code] \
	    "sandbox control $name: HTTP $code: [string trim $body]"
    }
    return $body
}

# ---------------------------------------------------------------------------
# Program
# ---------------------------------------------------------------------------

# sandbox::Main --
#
#	The program: start, announce, serve until told (or timed) to stop.

proc ::sandbox::Main {argList} {
    variable onShutdown
    variable listenHost
    try {
	set opts [ParseOptions $argList {-port -host -portfile -lifetime -watchstdin}]
	set onShutdown [list set [namespace current]::finished shutdown]
	set port [start -port [dict get $opts -port] -host [dict get $opts -host] \
	    {*}[dict get $opts settings]]
    } trap SANDBOX {message} {
	puts stderr "sandbox: $message"
	puts stderr "usage: tclsh sandbox.tcl ?-port N? ?-host 127.0.0.1|::1? ?-portfile FILE?\
	    ?-lifetime SECONDS? ?-watchstdin BOOL? ?-app_key K? ?-app_secret S? ?-redirect URL?\
	    ?-service_id ID? ?-verbose BOOL?"
	exit 2
    } on error {message} {
	puts stderr "sandbox: cannot listen: $message"
	exit 1
    }
    if {[dict exists $opts -portfile]} {
	set file [dict get $opts -portfile]
	set temp $file.[pid].tmp
	set f [open $temp w]
	puts $f $port
	close $f
	file rename -force $temp $file
    }
    set host [expr {$listenHost eq "::1" ? "\[::1\]" : $listenHost}]
    puts "sandbox listening on http://$host:$port"
    flush stdout

    set lifetime 3600
    if {[dict exists $opts -lifetime]} {
	set lifetime [dict get $opts -lifetime]
    }
    after [expr {round($lifetime * 1000)}] [list set [namespace current]::finished lifetime]
    if {[dict exists $opts -watchstdin] && [dict get $opts -watchstdin]} {
	fconfigure stdin -blocking 0
	fileevent stdin readable [list [namespace current]::WatchStdin]
    }
    vwait [namespace current]::finished
    stop
    exit 0
}

proc ::sandbox::WatchStdin {} {
    if {[catch {read stdin}] || [eof stdin]} {
	fileevent stdin readable {}
	set [namespace current]::finished stdin
    }
}

if {[info exists ::argv0] && [info script] ne ""
	&& [file normalize [info script]] eq [file normalize $::argv0]} {
    ::sandbox::Main $::argv
}
