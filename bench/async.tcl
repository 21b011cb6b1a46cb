# async.tcl --
#
#	Section 12 of `make bench` (sourced by bench.tcl): many refreshes at
#	once.  1,000 objects each refresh once with `refresh -command`, all
#	started together, against a loopback token endpoint that answers
#	every request after 50 ms (bench/slowsrv.c: one thread, poll(), keeps
#	connections alive; it answers 1,000 requests in flight in about
#	0.12 s, so it is not what is measured).  Baselines: a C program
#	doing the same 1,000 requests through one libcurl multi handle with
#	256 in flight (bench/cmulti.c), and the pure-Tcl way,
#	http::geturl -command with 256 in flight (a connection each: with
#	-keepalive, Tcl's http queues every request on one socket, 50 s).
#	Sequentially the 1,000 would take 50 s.  Each contender runs in its own process, rounds
#	interleaved; medians of BENCH_ROUNDS rounds.  BENCH_ASYNC_N sets N.

namespace eval ::bench {
    variable asyncN [Setting BENCH_ASYNC_N 1000]
    if {$quick} {
	set asyncN 300
    }
}

proc ::bench::BuildAsyncC {} {
    variable out
    variable here
    file mkdir $out
    set cc [Setting CC cc]
    foreach {name libs} {slowsrv {} cmulti -lcurl} {
	set exe [file join $out $name]
	set src [file join $here $name.c]
	if {![file exists $exe] || [file mtime $exe] < [file mtime $src]} {
	    say "building $exe"
	    exec {*}$cc -O2 -D_GNU_SOURCE -o $exe $src {*}$libs 2>@ stderr
	}
	set exes($name) $exe
    }
    return [list $exes(slowsrv) $exes(cmulti)]
}

# One round of the ttoauth2 contender, in a child tclsh (a fresh engine
# per process, as a program starting up would have): prints seconds.
set ::bench::asyncTto {
    package require ttoauth2
    lassign $argv port n
    set objs {}
    for {set i 0} {$i < $n} {incr i} {
	lappend objs [ttoauth2 new -provider tiktokshop -clientid bench_app_key \
	    -clientsecret bench_app_secret -refreshtoken ROW_r$i \
	    -tokenendpoint http://127.0.0.1:$port/api/v2/token/get]
    }
    set ::left $n
    set ::bad 0
    set t0 [clock microseconds]
    foreach o $objs {
	$o refresh -command {apply {{o d} {
	    if {[dict get $d status] ne "ok"} {incr ::bad}
	    if {[incr ::left -1] == 0} {set ::done 1}
	}}}
    }
    vwait ::done
    set t [expr {([clock microseconds] - $t0) / 1e6}]
    foreach o $objs {$o destroy}
    puts "$t [expr {$n - $::bad}]"
}

set ::bench::asyncTcl {
    package require http
    lassign $argv port n m
    set url http://127.0.0.1:$port/api/v2/token/refresh?app_key=bench_app_key
    set ::started 0
    set ::left $n
    set ::ok 0
    proc next {} {
	if {$::started < $::n} {
	    incr ::started
	    http::geturl $::url -timeout 30000 -command done
	}
    }
    proc done {tok} {
	if {[http::ncode $tok] == 200} {incr ::ok}
	http::cleanup $tok
	next
	if {[incr ::left -1] == 0} {set ::finished 1}
    }
    set ::n $n
    set t0 [clock microseconds]
    for {set i 0} {$i < $m} {incr i} {next}
    vwait ::finished
    puts "[expr {([clock microseconds] - $t0) / 1e6}] $::ok"
}

proc ::bench::AsyncRun {args} {
    set r [exec {*}$args]
    lassign $r seconds ok
    return [list $seconds $ok]
}

proc ::bench::Async {} {
    variable asyncN
    variable rounds
    variable out
    lassign [BuildAsyncC] slowsrv cmulti
    set body [file join $out async-body.json]
    set f [open $body w]
    puts -nonewline $f [TiktokJson]
    close $f
    set srv [open |[list $slowsrv $body 50] r+]
    set port [gets $srv]
    set n $asyncN
    set tclsh [info nameofexecutable]
    set ttoScript [file join $out async-tto.tcl]
    set tclScript [file join $out async-tcl.tcl]
    foreach {file text} [list $ttoScript $::bench::asyncTto \
	    $tclScript $::bench::asyncTcl] {
	set f [open $file w]
	puts $f $text
	close $f
    }
    set url http://127.0.0.1:$port/api/v2/token/refresh?app_key=bench_app_key
    set contenders [dict create \
	ttoauth2 [list $tclsh $ttoScript $port $n] \
	C [list $cmulti $url $n 256] \
	"pure Tcl" [list $tclsh $tclScript $port $n 256]]
    # Warm-up (page cache, the server's first accepts).
    dict for {name cmd} $contenders {AsyncRun {*}$cmd}
    set res [dict create]
    for {set r 0} {$r < $rounds} {incr r} {
	foreach name [rotate [dict keys $contenders] $r] {
	    lassign [AsyncRun {*}[dict get $contenders $name]] s ok
	    if {$ok != $n} {
		close $srv
		error "$name: $ok of $n refreshes succeeded"
	    }
	    dict lappend res $name $s
	}
    }
    close $srv
    set tto [median [dict get $res ttoauth2]]
    set c [median [dict get $res C]]
    set tcl [median [dict get $res "pure Tcl"]]
    say [format "  async medians: ttoauth2 %.3f s, C %.3f s, pure Tcl %.3f s\
	    (sequential: %.0f s)" $tto $c $tcl [expr {$n * 0.05}]]
    Row "refresh -command ×$n at once (50 ms server) vs C multi, 256 in flight, slowdown" \
	    [format "%.3f s" $tto] [format "%.3f s" $c] \
	    {*}[AtMost [expr {$tto / $c}] 1.3]
    Row "  same vs pure Tcl (http::geturl -command, 256 in flight), speed-up" \
	    [format "%.3f s" $tto] [format "%.3f s" $tcl] \
	    [format "%.2f×" [expr {$tcl / $tto}]] "—" info
}
