# hostile-attack.tcl --
#
#	Stray and hostile traffic against a ttoauth2 redirect listener, for
#	tests/hostile.test. Pure Tcl 8.6, event driven (core sockets and
#	coroutines); it only ever connects to the -host it is given (loopback).
#	It does not know the flow's state, as a real attacker would not.
#
#   tclsh tests/hostile-attack.tcl -port P -out FILE ?-host 127.0.0.1|::1?
#		?-kinds LIST? ?-count N? ?-lanes N? ?-timeout MS? ?-dribble MS?
#		?-seed N?
#
#	Runs -count jobs (default 200), the kinds taken round-robin from -kinds
#	(default: every kind but slow), over -lanes concurrent connections
#	(default 4). One job is one connection: send the kind's bytes, read
#	until the listener closes or -timeout ms (default 8000) pass. Prints
#	"started" once running, "progress N" after every 25 jobs, then writes
#	the results to FILE atomically (temporary file, rename) and prints
#	"done N". Exits by itself at the latest -timeout + 20 s after starting.
#
#	The results: a Tcl list, one dict per job: kind K status S ms T, where
#	S is the HTTP status of the reply's first line, or
#	    none     the listener closed without a reply
#	    reset    the connection failed (reset) before a status line came
#	    timeout  still open at -timeout (then this side closed it)
#	    refused  the connect failed
#	    closed   the kind closes at once by design (connectclose)
#	    garbage  bytes came back that are not an HTTP status line
#
# KINDS
#	connectclose  connect and close at once (bursts of 10)
#	favicon       GET /favicon.ico
#	otherpath     GET of other paths (/admin, /robots.txt, traversal...)
#	forged        GET /?code=...&state=<random>
#	nostate       GET /?code=... with no state
#	emptystate    GET /?code=...&state=
#	errorforged   a forged denial: GET /?code=null&error=auth_denied&state=<random>
#	random        random bytes (NULs, high bytes) then CRLF CRLF
#	bighead       a 200 KB request head (one huge header)
#	headerflood   a request line then header lines without end (60 KB)
#	headersonly   header lines with no request line
#	longline      a 20 KB request target
#	percent       percent-encoding garbage in the query and path
#	http09        HTTP/0.9-style request lines ("GET /")
#	methods       POST, PUT, DELETE, OPTIONS, CONNECT, HEAD, PATCH
#	tlshello      a TLS ClientHello-like record (https:// to an http port)
#	halfopen      a partial request, then this side shuts its write half
#	pipelined     two requests in one write
#	nul           a NUL byte inside the request line
#	unicode       raw UTF-8 in the request target
#	slow          a request dribbled one byte every -dribble ms (default
#		      150), never finished: stays open until the listener ends it

package require Tcl 8.6-

set opts [dict create -port "" -out "" -host 127.0.0.1 -kinds "" -count 200 \
    -lanes 4 -timeout 8000 -dribble 150 -seed [pid]]
foreach {k v} $argv {
    if {![dict exists $opts $k]} {
	puts stderr "hostile-attack.tcl: unknown option $k"
	exit 2
    }
    dict set opts $k $v
}
dict with opts {}
set port ${-port}
set host ${-host}
if {$port eq "" || ${-out} eq ""} {
    puts stderr "usage: hostile-attack.tcl -port P -out FILE ?option value ...?"
    exit 2
}
set allKinds {
    connectclose favicon otherpath forged nostate emptystate errorforged random
    bighead headerflood headersonly longline percent http09 methods tlshello
    halfopen pipelined nul unicode
}
set kinds [expr {${-kinds} eq "" ? $allKinds : ${-kinds}}]
expr {srand(${-seed})}

proc randomWord {n} {
    set s ""
    for {set i 0} {$i < $n} {incr i} {
	append s [string index ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_ \
	    [expr {int(rand() * 64)}]]
    }
    return $s
}

proc randomBytes {n} {
    set s ""
    for {set i 0} {$i < $n} {incr i} {
	append s [format %c [expr {int(rand() * 256)}]]
    }
    return $s
}

proc pick {list} {
    return [lindex $list [expr {int(rand() * [llength $list])}]]
}

# The bytes a job of KIND sends (iso8859-1: one char per byte).
proc payload {kind n} {
    set tail " HTTP/1.1\r\nHost: localhost:$::port\r\nUser-Agent: hostile/$n\r\n\r\n"
    switch -- $kind {
	favicon {return "GET /favicon.ico$tail"}
	otherpath {
	    return "GET [pick {/admin /robots.txt /.well-known/security.txt /index.html
		/api/v2/token/get /callback?code=x&state=y /../../etc/passwd //
		/%2e%2e/%2e%2e/etc/passwd /oauth/callback?code=a}]$tail"
	}
	forged {return "GET /?code=stolen-$n&state=[randomWord 22]&shop_region=GB$tail"}
	nostate {return "GET /?code=stolen-$n&locale=en-GB$tail"}
	emptystate {return "GET /?code=stolen-$n&state=$tail"}
	errorforged {
	    return "GET /?code=null&error=auth_denied&error_description=forged&state=[randomWord 22]$tail"
	}
	random {return "[randomBytes [expr {1 + int(rand() * 2000)}]]\r\n\r\n"}
	bighead {
	    return "GET /?code=a&state=b HTTP/1.1\r\nHost: localhost\r\nX-Pad: [string repeat A 204800]\r\n\r\n"
	}
	headerflood {
	    set s "GET /?code=a&state=b HTTP/1.1\r\nHost: localhost\r\n"
	    for {set i 0} {$i < 2000} {incr i} {append s "X-Flood-$i: [string repeat v 20]\r\n"}
	    return $s
	}
	headersonly {
	    return "Host: localhost\r\nCookie: a=b\r\nX-Code: stolen\r\n\r\n"
	}
	longline {return "GET /?code=[string repeat a 20000]&state=b$tail"}
	percent {
	    return "GET [pick {/?code=%zz&state=%%% /?code=%00&state=%00 /?%C0%AF=1&state=%FF%FE
		/%2e%2e/?code=a&state=b /?code=a&state=b% /?state=%u0041&code=%
		/?code=%%32%35&state=%25% /?code=%E2%82&state=%ED%A0%80 /%?code=a
		/?&&&==&=%=&state&code}]$tail"
	}
	http09 {return [pick [list "GET /\r\n" "GET /?code=a&state=b\r\n\r\n" "GET\r\n\r\n" "\r\n\r\n"]]}
	methods {
	    return [pick [list \
		"POST /?code=a&state=b HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello" \
		"PUT /$tail" "DELETE /?code=a&state=b$tail" "OPTIONS *$tail" \
		"CONNECT localhost:443$tail" "HEAD /?code=a&state=b$tail" "PATCH /$tail" \
		"TRACE /$tail" "GET /?code=a&state=b HTTP/2.0\r\n\r\n" "GET /?code=a&state=b HTTP/1.7\r\n\r\n"]]
	}
	tlshello {return "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03[randomBytes 200]"}
	halfopen {return "GET /?code=stolen-$n&st"}
	pipelined {return "GET /favicon.ico$tail[string map {favicon.ico ?code=a&state=b} "GET /favicon.ico$tail"]"}
	nul {return "GET /?code=a\x00b&state=c$tail"}
	unicode {
	    return "GET /?code=[encoding convertto utf-8 \u00e9\u4e2d\u2603]&state=[encoding convertto utf-8 \u2603\u00ff]$tail"
	}
	slow {return "GET /?code=slow-$n&state=[randomWord 22] HTTP/1.1\r\nHost: localhost\r\nX-Slow: [string repeat z 100000]"}
    }
    error "unknown kind $kind"
}

# Waits for one event on chan (readable or writable) or ms; returns which.
proc waitFor {chan what ms} {
    set co [info coroutine]
    fileevent $chan $what [list $co $what]
    set timer [after $ms [list $co timeout]]
    set event [yield]
    after cancel $timer
    catch {fileevent $chan $what {}}
    return $event
}

proc statusOf {data} {
    if {[regexp {^HTTP/1\.[01] (\d{3})} $data -> code]} {return $code}
    if {$data eq ""} {return ""}
    return garbage
}

proc job {kind n} {
    set start [clock milliseconds]
    set deadline [expr {$start + $::cfg(-timeout)}]
    if {[catch {socket -async $::host $::port} chan]} {
	return [list kind $kind status refused ms 0]
    }
    fconfigure $chan -blocking 0 -translation binary -buffering full -buffersize 65536
    # Connected (or failed)?
    if {[waitFor $chan writable $::cfg(-timeout)] eq "timeout"
	    || [fconfigure $chan -error] ne ""} {
	catch {close $chan}
	return [list kind $kind status refused ms [expr {[clock milliseconds] - $start}]]
    }
    if {$kind eq "connectclose"} {
	close $chan
	return [list kind $kind status closed ms [expr {[clock milliseconds] - $start}]]
    }
    set data [payload $kind $n]
    set got ""
    set outcome ""
    if {$kind eq "slow"} {
	# One byte at a time, reading in between, until the listener ends it.
	set i 0
	while {$outcome eq ""} {
	    set left [expr {$deadline - [clock milliseconds]}]
	    if {$left <= 0} {set outcome timeout; break}
	    if {[catch {
		puts -nonewline $chan [string index $data $i]
		flush $chan
	    }]} {
		set outcome reset
		break
	    }
	    incr i
	    set event [waitFor $chan readable [expr {min($left, $::cfg(-dribble))}]]
	    if {$event eq "readable"} {
		if {[catch {read $chan} more]} {set outcome reset; break}
		append got $more
		if {[eof $chan]} {set outcome eof}
	    }
	}
    } else {
	if {[catch {puts -nonewline $chan $data; flush $chan}]} {
	    set outcome reset
	}
	if {$kind eq "halfopen" && $outcome eq ""} {
	    catch {close $chan write}
	}
	while {$outcome eq ""} {
	    set left [expr {$deadline - [clock milliseconds]}]
	    if {$left <= 0} {set outcome timeout; break}
	    if {[waitFor $chan readable $left] eq "timeout"} {set outcome timeout; break}
	    if {[catch {read $chan} more]} {set outcome reset; break}
	    append got $more
	    if {[eof $chan]} {set outcome eof}
	}
    }
    catch {close $chan}
    set status [statusOf $got]
    if {$status eq ""} {
	set status [expr {$outcome eq "eof" ? "none" : $outcome}]
    }
    return [list kind $kind status $status ms [expr {[clock milliseconds] - $start}]]
}

proc record {result} {
    lappend ::results $result
    if {[llength $::results] % 25 == 0} {
	puts "progress [llength $::results]"
	flush stdout
    }
}

proc lane {} {
    while {$::next < $::cfg(-count)} {
	set n $::next
	set kind [lindex $::kinds [expr {[incr ::kindIndex] % [llength $::kinds]}]]
	if {$kind eq "connectclose"} {
	    # A burst: ten connects closed at once.
	    set burst [expr {min(10, $::cfg(-count) - $n)}]
	    incr ::next $burst
	    for {set i 0} {$i < $burst} {incr i} {record [job $kind [expr {$n + $i}]]}
	} else {
	    incr ::next
	    record [job $kind $n]
	}
    }
    if {[incr ::lanesLeft -1] == 0} {set ::finished 1}
}

array set ::cfg $opts
set next 0
set kindIndex -1
set results {}
set lanesLeft ${-lanes}
after [expr {${-timeout} + 20000}] {set ::finished 1}
puts started
flush stdout
for {set i 0} {$i < ${-lanes}} {incr i} {
    coroutine lane$i lane
}
if {![info exists ::finished]} {vwait ::finished}

set tmp ${-out}.tmp[pid]
set f [open $tmp w]
puts $f $results
close $f
file rename -force $tmp ${-out}
puts "done [llength $results]"
flush stdout
exit 0
