# api-server.tcl --
#
#	A tiny OAuth 2.0 resource server (RFC 6750) with its own token
#	endpoint, for the rfc6749 side of `request` (tests/request.test).
#	Run as a child: tclsh api-server.tcl PORTFILE; it listens on 127.0.0.1,
#	writes its port into PORTFILE, and exits when its stdin closes.
#
#	POST /token	grant_type=refresh_token&refresh_token=RT: RT must be the
#			current refresh token; answers a new access token (and a
#			new refresh token), JSON as RFC 6749 5.1.
#	GET  /me	Authorization: Bearer AT with the current access token:
#			200 {"user":"ann"}; else 401 with WWW-Authenticate:
#			Bearer error="invalid_token".
#	GET  /always401	401 invalid_token whatever the token.
#	GET  /redirect	302 to /me.
#	GET  /binary	200 with bytes that are not UTF-8 (0xff 0xfe 0x00 0x41).
#	GET  /cookies	200 with two Set-Cookie fields.
#	GET  /echo	200 with the request's method, headers and body as the
#	     POST /echo	body (text/plain), one "name: value" per line.
#	GET  /stats	counts: token, me (requests), current tokens.

set portFile [lindex $argv 0]
set access AT-1
set refresh RT-1
set counts {token 0 me 0}

proc respond {s status headers body} {
    set body [encoding convertto utf-8 $body]
    set head "HTTP/1.1 $status X\r\n"
    foreach {n v} $headers {append head "$n: $v\r\n"}
    append head "Content-Length: [string length $body]\r\n\r\n"
    puts -nonewline $s $head$body
    flush $s
}

proc readable {s} {
    global access refresh counts
    if {[catch {gets $s line} n] || $n < 0} {
	if {[eof $s]} {close $s}
	return
    }
    set line [string trimright $line \r]
    if {$line eq ""} return
    lassign $line method target
    set headers {}
    while {[gets $s h] >= 0} {
	set h [string trimright $h \r]
	if {$h eq ""} break
	set c [string first : $h]
	lappend headers [string tolower [string range $h 0 $c-1]] [string trim [string range $h $c+1 end]]
    }
    set body ""
    if {[dict exists $headers content-length]} {
	set body [read $s [dict get $headers content-length]]
    }
    set path [lindex [split $target ?] 0]
    set auth [expr {[dict exists $headers authorization] ? [dict get $headers authorization] : ""}]
    set deny [list WWW-Authenticate {Bearer realm="api", error="invalid_token"}]
    switch -- $path {
	/token {
	    dict incr counts token
	    if {[regexp {refresh_token=([^&]*)} $body -> rt] && $rt eq $refresh} {
		set n [expr {[string range $access 3 end] + 1}]
		set access AT-$n
		set refresh RT-$n
		respond $s 200 {Content-Type application/json} \
		    "{\"access_token\":\"$access\",\"token_type\":\"Bearer\",\"expires_in\":3600,\"refresh_token\":\"$refresh\"}"
	    } else {
		respond $s 400 {Content-Type application/json} {{"error":"invalid_grant"}}
	    }
	}
	/me {
	    dict incr counts me
	    if {$auth eq "Bearer $access"} {
		respond $s 200 {Content-Type application/json} {{"user":"ann"}}
	    } else {
		respond $s 401 [list Content-Type application/json {*}$deny] {{"error":"invalid_token"}}
	    }
	}
	/always401 {
	    dict incr counts me
	    respond $s 401 $deny ""
	}
	/redirect {
	    respond $s 302 {Location /me} ""
	}
	/binary {
	    set head "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 4\r\n\r\n"
	    puts -nonewline $s $head[binary format cu* {255 254 0 65}]
	    flush $s
	}
	/cookies {
	    respond $s 200 {Set-Cookie a=1 Set-Cookie b=2} ok
	}
	/echo {
	    set text "method: $method\n"
	    foreach {n v} $headers {append text "$n: $v\n"}
	    append text "body: [encoding convertfrom utf-8 $body]"
	    respond $s 200 {Content-Type {text/plain; charset=utf-8}} $text
	}
	/stats {
	    respond $s 200 {Content-Type text/plain} [dict merge $counts [list access $access refresh $refresh]]
	}
	default {
	    respond $s 404 {} "not found"
	}
    }
}

proc accept {s a p} {
    fconfigure $s -translation binary -blocking 1
    fileevent $s readable [list readable $s]
}

set server [socket -server accept -myaddr 127.0.0.1 0]
set f [open $portFile.tmp w]
puts $f [lindex [fconfigure $server -sockname] 2]
close $f
file rename -force $portFile.tmp $portFile
fileevent stdin readable {if {[catch {read stdin}] || [eof stdin]} {exit 0}}
after 600000 {exit 0}
vwait forever
