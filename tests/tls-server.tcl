# tls-server.tcl --
#
#	An HTTPS stand-in for TikTok Shop's token endpoints, for tests/tls.test.
#	Pure Tcl 8.6 plus the tls package; listens on 127.0.0.1 only and never
#	talks to the network.
#
#   tclsh tests/tls-server.tcl -log FILE ?-lifetime SECONDS? NAME CERT KEY ?NAME CERT KEY ...?
#
#	Opens one HTTPS listener per NAME (an OS-chosen port on 127.0.0.1) with
#	that certificate chain and key (CERT "-": a plain TCP listener that
#	accepts and never answers, a stalled handshake; it logs "NAME accepted"),
#	then prints one line on stdout:
#	    tls-server ports NAME PORT ?NAME PORT ...?
#	and serves until its standard input reaches end of file (so it dies with
#	the test that holds its pipe) or -lifetime seconds (default 300) pass.
#
#   Paths (the query is the TikTok one; secrets are never logged):
#	.../api/v2/token/get, .../api/v2/token/refresh
#	    HTTP 200 TikTok JSON: a fresh token pair when app_key, app_secret and
#	    auth_code (get) or refresh_token (refresh) are present and grant_type
#	    is right; otherwise {"code":36004003,...}.
#	/moved/...   302 Found to https://127.0.0.1:PORT/followed/... (same query)
#	/followed/... answers like the plain path, but its log line proves that a
#	    client followed the redirect.
#	/trailing/... a success JSON followed by more bytes (an HTML fragment):
#	    as a whole, not JSON.
#	/twice/... a success JSON whose data has access_token twice.
#	anything else: 404.
#
#	HTTP/1.1 keep-alive (Content-Length) unless the client says
#	Connection: close. Each request that got past the TLS handshake appends
#	one line "NAME CONN METHOD PATH" (CONN: c1, c2... one per TCP connection;
#	no query) to the -log file, flushed at once; a handshake that fails
#	appends "NAME CONN handshake-failed".

package require Tcl 8.6-
package require tls

set logFile ""
set lifetime 300
set specs {}
for {set i 0} {$i < [llength $argv]} {incr i} {
    set a [lindex $argv $i]
    switch -- $a {
	-log {set logFile [lindex $argv [incr i]]}
	-lifetime {set lifetime [lindex $argv [incr i]]}
	default {lappend specs $a}
    }
}
if {$logFile eq "" || [llength $specs] == 0 || [llength $specs] % 3} {
    puts stderr "usage: tls-server.tcl -log FILE ?-lifetime S? NAME CERT KEY ?...?"
    exit 2
}

set connections 0
set log [open $logFile a]
fconfigure $log -buffering line
set sequence 0

proc logLine {line} {
    puts $::log $line
}

proc random {} {
    set s ""
    for {set i 0} {$i < 24} {incr i} {
	append s [string index abcdefghijklmnopqrstuvwxyz0123456789 [expr {int(rand() * 36)}]]
    }
    return $s
}

proc accept {name chan addr clientPort} {
    # The local port, for the redirect's Location.
    set port [lindex [fconfigure $chan -sockname] 2]
    set id c[incr ::connections]
    fconfigure $chan -blocking 0 -translation {auto crlf} -encoding iso8859-1
    set ::conn($chan) [dict create name $name port $port id $id shaken 0 lines {}]
    fileevent $chan readable [list readable $chan]
    # A client that goes quiet is dropped after 10 s.
    dict set ::conn($chan) timer [after 10000 [list drop $chan]]
}

# A plain TCP listener that accepts and never says a word (a stalled
# handshake), until the client leaves or 10 s pass.
proc acceptSilent {name chan addr clientPort} {
    logLine "$name accepted"
    fconfigure $chan -blocking 0
    set ::conn($chan) [dict create name $name timer [after 10000 [list drop $chan]]]
    fileevent $chan readable [list apply {{chan} {
	if {[catch {read $chan}] || [eof $chan]} {drop $chan}
    }} $chan]
}

proc drop {chan} {
    if {[info exists ::conn($chan)]} {
	after cancel [dict get $::conn($chan) timer]
	unset ::conn($chan)
	catch {close $chan}
    }
}

proc readable {chan} {
    if {![info exists ::conn($chan)]} return
    set c $::conn($chan)
    if {![dict get $c shaken]} {
	if {[catch {tls::handshake $chan} done]} {
	    logLine "[dict get $c name] [dict get $c id] handshake-failed"
	    drop $chan
	    return
	}
	if {!$done} return
	dict set ::conn($chan) shaken 1
    }
    while 1 {
	if {[catch {gets $chan line} n]} {
	    drop $chan
	    return
	}
	if {$n < 0} {
	    if {[eof $chan]} {drop $chan}
	    return
	}
	if {$line eq ""} {
	    answer $chan
	    return
	}
	dict lappend ::conn($chan) lines $line
    }
}

proc query {q} {
    set d {}
    foreach pair [split $q &] {
	set kv [split $pair =]
	set k [lindex $kv 0]
	set v [join [lrange $kv 1 end] =]
	dict set d $k [unescape $v]
    }
    return $d
}

proc unescape {s} {
    set s [string map {+ { }} $s]
    return [encoding convertfrom utf-8 [subst -nocommands -novariables \
	[regsub -all {%([0-9A-Fa-f]{2})} [string map {\\ \\\\ [ \\[} $s] {\\x\1}]]]
}

proc tokenJson {kind q} {
    set ok [expr {[dict exists $q app_key] && [dict get $q app_key] ne ""
	&& [dict exists $q app_secret] && [dict get $q app_secret] ne ""}]
    if {$kind eq "get"} {
	set ok [expr {$ok && [dict exists $q auth_code] && [dict get $q auth_code] ne ""
	    && [dict exists $q grant_type] && [dict get $q grant_type] eq "authorized_code"}]
    } else {
	set ok [expr {$ok && [dict exists $q refresh_token] && [dict get $q refresh_token] ne ""
	    && [dict exists $q grant_type] && [dict get $q grant_type] eq "refresh_token"}]
    }
    set rid tls-[incr ::sequence]
    if {!$ok} {
	return "{\"code\":36004003,\"message\":\"invalid app key or app secret\",\"request_id\":\"$rid\",\"data\":{}}"
    }
    set expires [expr {[clock seconds] + 604800}]
    return [string cat "{\"code\":0,\"message\":\"success\",\"request_id\":\"$rid\",\"data\":{" \
	"\"access_token\":\"TLSAT-[random]\",\"access_token_expire_in\":$expires," \
	"\"refresh_token\":\"TLSRT-[random]\",\"refresh_token_expire_in\":4841467787," \
	"\"open_id\":\"tls-open-id\",\"seller_name\":\"TLS Shop\",\"seller_base_region\":\"GB\"," \
	"\"user_type\":0,\"granted_scopes\":\[\"seller.authorization.info\"\]}}"]
}

proc answer {chan} {
    set c $::conn($chan)
    set lines [dict get $c lines]
    dict set ::conn($chan) lines {}
    set request [lindex $lines 0]
    lassign [split $request " "] method target version
    set keepAlive [expr {$version eq "HTTP/1.1"}]
    foreach h [lrange $lines 1 end] {
	if {[regexp -nocase {^connection:\s*close} $h]} {set keepAlive 0}
    }
    set path $target
    set q ""
    regexp {^([^?]*)\?(.*)$} $target -> path q
    logLine "[dict get $c name] [dict get $c id] $method $path"
    set headers {}
    if {$method ni {GET HEAD}} {
	set status "404 Not Found"
	set body "{\"code\":404,\"message\":\"not found\",\"data\":{}}"
    } elseif {[string match /moved/* $path]} {
	set status "302 Found"
	set rest [string range $path [string length /moved] end]
	set loc https://127.0.0.1:[dict get $c port]/followed$rest[expr {$q ne "" ? "?$q" : ""}]
	lappend headers "Location: $loc"
	set body "<html><body>Moved</body></html>"
    } elseif {[regexp {/api/v2/token/(get|refresh)$} $path -> kind]} {
	set status "200 OK"
	set body [tokenJson $kind [query $q]]
	if {[string match /trailing/* $path]} {
	    append body " <html><body>not part of the JSON</body></html>"
	}
	if {[string match /twice/* $path]} {
	    # A second access_token after the first: readers disagree on
	    # which one counts.
	    regsub {"data":\{} $body {&"access_token":"ROW_second_access_token",} body
	}
    } else {
	set status "404 Not Found"
	set body "{\"code\":404,\"message\":\"not found\",\"data\":{}}"
    }
    set type [expr {[string match 302* $status] ? "text/html" : "application/json"}]
    set data "HTTP/1.1 $status\r\nContent-Type: $type\r\nContent-Length: [string length $body]\r\n"
    append data "Connection: [expr {$keepAlive ? "keep-alive" : "close"}]\r\n"
    foreach h $headers {append data $h\r\n}
    append data \r\n
    if {$method ne "HEAD"} {append data $body}
    if {[catch {
	fconfigure $chan -blocking 1 -translation binary
	puts -nonewline $chan $data
	flush $chan
	fconfigure $chan -blocking 0 -translation {auto crlf}
    }] || !$keepAlive} {
	drop $chan
	return
    }
    after cancel [dict get $c timer]
    dict set ::conn($chan) timer [after 10000 [list drop $chan]]
}

# The tls package's callback: without one it prints every failed handshake
# (which the tests cause on purpose) on stderr; the log already says it.
proc tlsCallback {option args} {
    if {$option eq "verify"} {
	return [lindex $args 3]
    }
    return
}

set final {}
foreach {name cert key} $specs {
    if {$cert eq "-"} {
	set srv [socket -server [list acceptSilent $name] -myaddr 127.0.0.1 0]
	lappend final $name [lindex [fconfigure $srv -sockname] 2]
	continue
    }
    set srv [tls::socket -server [list accept $name] -myaddr 127.0.0.1 \
	-certfile $cert -keyfile $key -request 0 -require 0 -command tlsCallback 0]
    lappend final $name [lindex [fconfigure $srv -sockname] 2]
}

fconfigure stdin -blocking 0
fileevent stdin readable {
    if {[catch {read stdin}] || [eof stdin]} {exit 0}
}
after [expr {$lifetime * 1000}] {exit 0}
puts "tls-server ports $final"
flush stdout
vwait forever
