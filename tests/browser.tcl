# browser.tcl --
#
#	A scripted "browser" for the ttoauth2 tests: it GETs a URL and follows
#	redirects the way a real browser would, so a test can play the seller who
#	clicks "Authorize". Pure Tcl 8.6, event driven (core sockets and a
#	coroutine), plain http:// only.
#
#   As a program (what ttoauth2's -browser option runs, URL appended):
#	tclsh tests/browser.tcl ?-log FILE? ?-timeout MS? URL
#	It writes the result (below) to FILE, atomically (a temporary file then a
#	rename, so a test polling for FILE never reads half of it), or to stdout
#	without -log, and exits: 0 when a final response came, 1 otherwise. It
#	always exits by itself, at the latest about 3 s after -timeout (default
#	10000 ms), because ttoauth2 starts it detached.
#	In the written result, the values of the query parameters code, auth_code,
#	access_token, refresh_token, app_secret, client_secret and code_verifier in
#	"url", "hops" and a Location header are replaced by ***: the file is a log.
#	The result is a Tcl dict: status error url hops elapsed_ms headers body
#	(as below, plus elapsed_ms), so a test reads it with [dict get].
#
#   As a library (source tests/browser.tcl; sourcing starts nothing):
#	browser::follow URL ?-timeout MS? ?-maxhops N?
#	Runs the event loop (vwait) until done, so servers living in the same
#	interpreter keep working. Returns a dict:
#	    status   the final HTTP status; 0 when the walk failed (see error)
#	    body     the final response body, decoded by its charset (default UTF-8);
#		     "" when the walk failed
#	    headers  the final response headers (lower-case names)
#	    url      the last URL requested
#	    hops     every URL requested, in order (the first is URL)
#	    error    "" or why the walk stopped early: a connection refused, the
#		     timeout, too many redirects, a malformed response...
#	A bad URL also ends up in "error" (status 0), as a browser would show it.
#
#	Redirects: 301, 302, 303, 307 and 308 with a Location, absolute or relative,
#	at most -maxhops (default 10) of them; every request is a GET. -timeout (ms,
#	default 10000) bounds the whole walk, connects included.
#	Hosts: "localhost" is tried as 127.0.0.1, then ::1 (browsers treat
#	localhost as loopback, whatever the resolver says); "[::1]" is IPv6.
#	The Host header keeps the name from the URL.

package require Tcl 8.6-

namespace eval ::browser {
    variable sequence 0
    variable results		;# array: walk id -> result dict, set when done
    array set results {}
    variable maxBodyBytes [expr {8 * 1024 * 1024}]
    variable secretParams {
	code auth_code access_token refresh_token app_secret client_secret code_verifier
    }
}

# browser::follow --
#
#	See the header.
#
# Results:
#	The result dict.

proc ::browser::follow {url args} {
    variable sequence
    variable results
    set timeout 10000
    set maxHops 10
    if {[llength $args] % 2} {
	return -code error -errorcode {BROWSER USAGE} \
	    "wrong # args: should be \"browser::follow url ?-timeout ms? ?-maxhops n?\""
    }
    foreach {option value} $args {
	switch -- $option {
	    -timeout {set timeout $value}
	    -maxhops {set maxHops $value}
	    default {
		return -code error -errorcode [list BROWSER OPTION $option] \
		    "unknown option \"$option\": must be -timeout or -maxhops"
	    }
	}
	if {![string is integer -strict $value] || $value < 0} {
	    return -code error -errorcode [list BROWSER OPTION $option] \
		"bad value for $option \"$value\": must be a non-negative integer"
	}
    }
    set id [incr sequence]
    set deadline [expr {[clock milliseconds] + $timeout}]
    coroutine [namespace current]::walk$id [namespace current]::Walk $id $url $deadline $maxHops
    while {![info exists results($id)]} {
	vwait [namespace current]::results($id)
    }
    set result $results($id)
    unset results($id)
    return $result
}

# browser::Walk --
#
#	The body of one walk, run as a coroutine: request, follow, repeat. It
#	stores its result in results(id), which ends follow's vwait.

proc ::browser::Walk {id url deadline maxHops} {
    variable results
    set result [dict create status 0 body "" headers {} url $url hops {} error ""]
    try {
	set hopsLeft $maxHops
	while 1 {
	    dict set result url $url
	    dict lappend result hops $url
	    set response [Fetch $url $deadline]
	    dict set result status [dict get $response status]
	    dict set result headers [dict get $response headers]
	    dict set result body [dict get $response body]
	    set headers [dict get $response headers]
	    if {[dict get $response status] ni {301 302 303 307 308}
		    || ![dict exists $headers location]} {
		break
	    }
	    if {$hopsLeft <= 0} {
		dict set result error "too many redirects (more than $maxHops)"
		break
	    }
	    incr hopsLeft -1
	    set url [Resolve $url [dict get $headers location]]
	}
    } trap BROWSER {message} {
	dict set result error $message
    } on error {message} {
	dict set result error "browser failure: $message"
    }
    if {[dict get $result error] ne ""} {
	# What the user sees then is the browser's own error page, not the
	# last response that came.
	dict set result status 0
	dict set result headers {}
	dict set result body ""
    }
    set results($id) $result
}

# browser::ParseUrl --
#
# Results:
#	A dict: host (brackets removed), port, target (path and query, at least
#	"/"), hostHeader (as it goes into the Host header). Errors for anything
#	but http://.

proc ::browser::ParseUrl {url} {
    set url [lindex [split $url #] 0]
    if {![regexp -nocase {^([a-z][a-z0-9+.-]*)://([^/?]*)(.*)$} $url -> scheme authority rest]} {
	return -code error -errorcode {BROWSER URL} "not an absolute URL: $url"
    }
    if {[string tolower $scheme] ne "http"} {
	return -code error -errorcode {BROWSER URL} \
	    "unsupported scheme \"$scheme\" (the test browser speaks plain http only)"
    }
    # Drop any user:password@ part.
    regsub {^.*@} $authority {} authority
    if {[regexp {^\[([0-9A-Fa-f:.]+)\](?::([0-9]*))?$} $authority -> host port]} {
	set hostHeader \[$host\]
    } elseif {[regexp {^([^:\[\]]+)(?::([0-9]*))?$} $authority -> host port]} {
	set hostHeader $host
    } else {
	return -code error -errorcode {BROWSER URL} "bad host in URL: $url"
    }
    if {$port eq ""} {
	set port 80
    } elseif {$port > 65535} {
	return -code error -errorcode {BROWSER URL} "bad port in URL: $url"
    } else {
	set port [scan $port %d]
	if {$port != 80} {
	    append hostHeader :$port
	}
    }
    if {$rest eq "" || [string index $rest 0] eq "?"} {
	set rest /$rest
    }
    return [dict create host $host port $port target $rest hostHeader $hostHeader]
}

# browser::Resolve --
#
#	Resolves a Location value against the URL it came from (RFC 3986 5.2,
#	without dot-segment removal, which redirects in these tests never need).
#
# Results:
#	An absolute URL.

proc ::browser::Resolve {base location} {
    set location [string trim $location]
    if {[regexp -nocase {^[a-z][a-z0-9+.-]*:} $location]} {
	return $location
    }
    regexp -nocase {^([a-z][a-z0-9+.-]*:)(//[^/?#]*)?([^?#]*)(\?[^#]*)?} $base -> scheme authority path query
    if {[string range $location 0 1] eq "//"} {
	return $scheme$location
    }
    if {[string index $location 0] eq "/"} {
	return $scheme$authority$location
    }
    if {$location eq "" || [string index $location 0] eq "#"} {
	return $scheme$authority$path$query
    }
    if {[string index $location 0] eq "?"} {
	return $scheme$authority$path$location
    }
    set directory [string range $path 0 [string last / $path]]
    if {$directory eq ""} {
	set directory /
    }
    return $scheme$authority$directory$location
}

# browser::Await --
#
#	Suspends the coroutine until chan is readable/writable or the deadline
#	passes.
#
# Results:
#	The event name, or "timeout".

proc ::browser::Await {chan event deadline} {
    set remaining [expr {$deadline - [clock milliseconds]}]
    if {$remaining <= 0} {
	return timeout
    }
    set self [info coroutine]
    set timer [after $remaining [list $self timeout]]
    fileevent $chan $event [list $self $event]
    set why [yield]
    after cancel $timer
    fileevent $chan $event {}
    return $why
}

# browser::Connect --
#
#	Opens a connection, trying each address the host stands for.
#
# Results:
#	A connected, non-blocking socket.

proc ::browser::Connect {host port deadline} {
    switch -- [string tolower $host] {
	localhost {set addresses {127.0.0.1 ::1}}
	default	  {set addresses [list $host]}
    }
    set failures {}
    foreach address $addresses {
	if {[catch {socket -async $address $port} sock]} {
	    lappend failures "$address: $sock"
	    continue
	}
	if {[Await $sock writable $deadline] eq "timeout"} {
	    catch {close $sock}
	    return -code error -errorcode {BROWSER TIMEOUT} \
		"timed out connecting to $host port $port"
	}
	set problem [fconfigure $sock -error]
	if {$problem ne ""} {
	    catch {close $sock}
	    lappend failures "$address: $problem"
	    continue
	}
	return $sock
    }
    return -code error -errorcode {BROWSER CONNECT} \
	"cannot connect to $host port $port ([join $failures {; }])"
}

# browser::Fetch --
#
#	One GET, read to the end of the response.
#
# Results:
#	A dict: status, headers (lower-case names), body (decoded).

proc ::browser::Fetch {url deadline} {
    set parts [ParseUrl $url]
    set sock [Connect [dict get $parts host] [dict get $parts port] $deadline]
    try {
	fconfigure $sock -blocking 0 -translation binary -buffering full
	puts -nonewline $sock [join [list \
	    "GET [dict get $parts target] HTTP/1.1" \
	    "Host: [dict get $parts hostHeader]" \
	    "User-Agent: ttoauth2-test-browser/1.0" \
	    "Accept: text/html,application/xhtml+xml,*/*;q=0.8" \
	    "Connection: close" "" ""] \r\n]
	flush $sock
	return [ReadResponse $sock $deadline]
    } finally {
	catch {close $sock}
    }
}

# browser::ReadResponse --
#
#	Reads until the response is complete: Content-Length bytes, the last
#	chunk, or the end of the connection. Interim 1xx responses are skipped.

proc ::browser::ReadResponse {sock deadline} {
    variable maxBodyBytes
    set buffer ""
    set head ""
    set eof 0
    while 1 {
	if {$head eq ""} {
	    set head [TakeHead buffer]
	    if {$head ne "" && [dict get $head status] < 200} {
		set head ""
		continue
	    }
	}
	if {$head ne ""} {
	    set body [BodyIfComplete $head $buffer $eof]
	    if {[lindex $body 0]} {
		break
	    }
	}
	if {$eof} {
	    return -code error -errorcode {BROWSER RESPONSE} \
		[expr {$head eq "" ? "the server closed the connection without a response"
		       : "the server closed the connection in the middle of the response"}]
	}
	if {[Await $sock readable $deadline] eq "timeout"} {
	    return -code error -errorcode {BROWSER TIMEOUT} \
		"timed out waiting for the response"
	}
	if {[catch {read $sock} data]} {
	    return -code error -errorcode {BROWSER RESPONSE} "read failed: $data"
	}
	append buffer $data
	if {[string length $buffer] > $maxBodyBytes} {
	    return -code error -errorcode {BROWSER RESPONSE} "response too large"
	}
	set eof [eof $sock]
    }
    set headers [dict get $head headers]
    set bytes [lindex $body 1]
    set charset utf-8
    if {[dict exists $headers content-type]
	    && [regexp -nocase {charset="?([^;"\s]+)} [dict get $headers content-type] -> name]} {
	set charset [string map {iso-8859- iso8859- us-ascii ascii} [string tolower $name]]
    }
    if {[catch {encoding convertfrom $charset $bytes} text]} {
	set text $bytes
    }
    return [dict create status [dict get $head status] headers $headers body $text]
}

# browser::TakeHead --
#
#	Removes a status line and headers from the buffer (a variable name).
#
# Results:
#	"" when not all there yet; else a dict: status, headers.

proc ::browser::TakeHead {bufferVar} {
    upvar 1 $bufferVar buffer
    if {![regexp -indices {\r?\n\r?\n} $buffer blank]} {
	if {[string length $buffer] > 65536} {
	    return -code error -errorcode {BROWSER RESPONSE} "response header too large"
	}
	return ""
    }
    set lines [split [string range $buffer 0 [expr {[lindex $blank 0] - 1}]] \n]
    set buffer [string range $buffer [expr {[lindex $blank 1] + 1}] end]
    if {![regexp {^HTTP/1\.[0-9] ([0-9]{3})} [lindex $lines 0] -> status]} {
	return -code error -errorcode {BROWSER RESPONSE} \
	    "not an HTTP response: [string range [lindex $lines 0] 0 60]"
    }
    set headers {}
    foreach line [lrange $lines 1 end] {
	if {[regexp {^([^:\s]+):[ \t]*(.*?)[ \t\r]*$} $line -> name value]} {
	    set name [string tolower $name]
	    if {[dict exists $headers $name]} {
		dict append headers $name ", $value"
	    } else {
		dict set headers $name $value
	    }
	}
    }
    return [dict create status [scan $status %d] headers $headers]
}

# browser::BodyIfComplete --
#
# Results:
#	{1 bytes} when the body is complete, {0 {}} when more must be read.

proc ::browser::BodyIfComplete {head buffer eof} {
    set headers [dict get $head headers]
    set status [dict get $head status]
    if {$status == 204 || $status == 304} {
	return [list 1 ""]
    }
    if {[dict exists $headers transfer-encoding]
	    && [string match -nocase *chunked* [dict get $headers transfer-encoding]]} {
	return [Dechunk $buffer]
    }
    if {[dict exists $headers content-length]
	    && [string is digit -strict [dict get $headers content-length]]} {
	set length [scan [dict get $headers content-length] %d]
	if {[string length $buffer] >= $length} {
	    return [list 1 [string range $buffer 0 [expr {$length - 1}]]]
	}
	return [list 0 {}]
    }
    # No length: the body runs to the end of the connection.
    return [list $eof $buffer]
}

proc ::browser::Dechunk {buffer} {
    set body ""
    set position 0
    while 1 {
	set lineEnd [string first \n $buffer $position]
	if {$lineEnd < 0} {
	    return [list 0 {}]
	}
	set sizeField [string trim [lindex [split [string range $buffer $position $lineEnd] \;] 0]]
	if {![string is xdigit -strict $sizeField]} {
	    return -code error -errorcode {BROWSER RESPONSE} "bad chunk size"
	}
	set size [expr {"0x$sizeField"}]
	set dataStart [expr {$lineEnd + 1}]
	if {$size == 0} {
	    # Trailers, if any, end with an empty line; we do not need them.
	    return [list 1 $body]
	}
	if {[string length $buffer] < $dataStart + $size + 2} {
	    return [list 0 {}]
	}
	append body [string range $buffer $dataStart [expr {$dataStart + $size - 1}]]
	set position [expr {$dataStart + $size}]
	# Skip the CRLF after the chunk data.
	if {[string index $buffer $position] eq "\r"} {
	    incr position
	}
	incr position
    }
}

# browser::MaskUrl --
#
# Results:
#	url with the values of secret query parameters replaced by ***.

proc ::browser::MaskUrl {url} {
    variable secretParams
    set q [string first ? $url]
    if {$q < 0} {
	return $url
    }
    set parts {}
    foreach part [split [string range $url [expr {$q + 1}] end] &] {
	set eq [string first = $part]
	if {$eq > 0 && [string tolower [string range $part 0 [expr {$eq - 1}]]] in $secretParams} {
	    set part [string range $part 0 $eq]***
	}
	lappend parts $part
    }
    return [string range $url 0 $q][join $parts &]
}

# browser::Main --
#
#	The program: follow, write the masked result, exit.

proc ::browser::Main {argList} {
    set log ""
    set timeout 10000
    set usage "usage: tclsh browser.tcl ?-log FILE? ?-timeout MS? URL"
    while {[llength $argList] > 1} {
	set argList [lassign $argList option value]
	switch -- $option {
	    -log     {set log $value}
	    -timeout {set timeout $value}
	    default {
		puts stderr "browser: unknown option \"$option\"\n$usage"
		exit 2
	    }
	}
    }
    if {[llength $argList] != 1 || ![string is integer -strict $timeout] || $timeout < 0} {
	puts stderr $usage
	exit 2
    }
    # Whatever happens, this process goes away.
    after [expr {$timeout + 3000}] {exit 3}

    set started [clock milliseconds]
    set result [follow [lindex $argList 0] -timeout $timeout]
    dict set result url [MaskUrl [dict get $result url]]
    dict set result hops [lmap hop [dict get $result hops] {MaskUrl $hop}]
    if {[dict exists $result headers location]} {
	dict set result headers location [MaskUrl [dict get $result headers location]]
    }
    dict set result elapsed_ms [expr {[clock milliseconds] - $started}]
    set text [dict create status [dict get $result status] error [dict get $result error] \
	url [dict get $result url] hops [dict get $result hops] \
	elapsed_ms [dict get $result elapsed_ms] headers [dict get $result headers] \
	body [dict get $result body]]
    if {$log eq ""} {
	fconfigure stdout -encoding utf-8
	puts $text
    } else {
	set temp $log.[pid].tmp
	set f [open $temp w]
	fconfigure $f -encoding utf-8
	puts $f $text
	close $f
	file rename -force $temp $log
    }
    exit [expr {[dict get $result status] == 0}]
}

if {[info exists ::argv0] && [info script] ne ""
	&& [file normalize [info script]] eq [file normalize $::argv0]} {
    ::browser::Main $::argv
}
