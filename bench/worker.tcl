# worker.tcl --
#
#	A contender process for bench.tcl.  Every timed network contender
#	(ttoauth2, the pure-Tcl way, the scripted browser, the curl CLI, and
#	cloop for C) runs in a process of its own that sleeps between blocks,
#	so that none is the busy coordinator: on a loaded machine the
#	scheduler treats a process that has been burning CPU all along worse
#	than one that has slept, and that bias must not fall on one side.
#
#	Reads one command per line on stdin, answers one line on stdout:
#	    ok WALL-µs/op CPU-µs/op	(CPU: this process's main thread,
#					 /proc/self/schedstat; -1 if unknown)
#	    error MESSAGE
#
#	Commands:
#	    refresh-setup BASE		make the refreshing object
#	    tto-refresh N		N x [$o refresh]
#	    tcl-refresh URL N		N x (http::geturl + json::json2dict)
#	    cli-refresh URL N		N x exec curl
#	    flow-setup BASE		make the flow object
#	    tto-flow N			N complete flows
#	    browser PORT N		N scripted-browser requests alone
#	    shop-setup BASE		make the object for Shop API requests
#	    tto-shop N			N x [$o request GET /authorization/202309/shops]

package require Tcl 8.6-
source [file join [file dirname [file normalize [info script]]] bench.tcl]

namespace eval ::bench::worker {
    variable o ""
    variable flowObj ""
    variable shopObj ""
}

proc ::bench::worker::CpuNs {} {
    if {[catch {
	set f [open /proc/self/schedstat]
	set ns [lindex [read $f] 0]
	close $f
    }]} {
	return -1
    }
    return $ns
}

# Runs the script, returns {wall-µs/op cpu-µs/op}.
proc ::bench::worker::Measure {n script} {
    set c0 [CpuNs]
    set t0 [clock microseconds]
    uplevel 1 $script
    set wall [expr {double([clock microseconds] - $t0) / $n}]
    set c1 [CpuNs]
    set cpu [expr {$c0 < 0 ? -1 : ($c1 - $c0) / 1000.0 / $n}]
    return [list $wall $cpu]
}

proc ::bench::worker::refresh-setup {base} {
    variable o
    package require ttoauth2
    set o [ttoauth2 new -tokenendpoint $base/api/v2/token/get \
	    -clientid bench_app_key -clientsecret bench_app_secret \
	    -refreshtoken ROW_benchrefreshtoken]
    return [$o refresh]
}

proc ::bench::worker::tto-refresh {n} {
    variable o
    Measure $n {::bench::TtoRefreshLoop $o $n}
}

proc ::bench::worker::tcl-refresh {url n} {
    package require http
    package require json
    Measure $n {::bench::TclRefreshLoop $url $n}
}

proc ::bench::worker::cli-refresh {url n} {
    Measure $n {::bench::CliRefreshLoop $url $n}
}

proc ::bench::worker::flow-setup {base} {
    variable flowObj
    package require ttoauth2
    # A TikTok flow needs a fixed port (startAuth refuses 0): a range from
    # one that was free a moment ago.
    set s [socket -server {apply {{c a p} {close $c}}} -myaddr 127.0.0.1 0]
    set port [lindex [fconfigure $s -sockname] 2]
    close $s
    set flowObj [ttoauth2 new -tokenendpoint $base/api/v2/token/get \
	    -authorizationendpoint $base/open/authorize \
	    -clientid bench_app_key -clientsecret bench_app_secret \
	    -listenport $port -listenportrangeend [expr {min($port + 19, 65535)}] \
	    -localhost 127.0.0.1 -authtimeout 10000 -timeout 10000]
    $flowObj addAuthQueryParam service_id 7123456789012345678
    return ok
}

proc ::bench::worker::tto-flow {n} {
    variable flowObj
    Measure $n {::bench::FlowLoop $flowObj $n}
}

proc ::bench::worker::shop-setup {base} {
    variable shopObj
    package require ttoauth2
    set shopObj [ttoauth2 new -provider tiktokshop -clientid bench_app_key \
	    -clientsecret bench_app_secret -accesstoken ROW_benchaccesstoken \
	    -apibaseurl $base]
    return [dict get [$shopObj request GET /authorization/202309/shops] code]
}

proc ::bench::worker::tto-shop {n} {
    variable shopObj
    Measure $n {::bench::ShopLoop $shopObj $n}
}

proc ::bench::worker::browser {port n} {
    Measure $n {::bench::BrowserLoop $port $n}
}

fconfigure stdout -buffering line -encoding utf-8
while {[gets stdin line] >= 0} {
    set cmd [lindex $line 0]
    if {[info commands ::bench::worker::$cmd] eq ""} {
	puts [list error "unknown command \"$cmd\""]
	continue
    }
    if {[catch {::bench::worker::$cmd {*}[lrange $line 1 end]} res]} {
	puts [list error $res]
    } else {
	puts [list ok {*}$res]
    }
}
