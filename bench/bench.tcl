# bench.tcl --
#
#	`make bench`: ttoauth2 measured side by side with its baselines, in one
#	run on one machine, printed as one table of ratios and written to
#	bench/RESULTS.md with the machine's description.
#
#	1. Refresh throughput: sequential refreshes against a static TikTok-
#	   shaped token endpoint (nginx on 127.0.0.1, see nginx.tcl): ttoauth2
#	   `refresh`; http::geturl + tcllib json::json2dict; the curl CLI once
#	   per refresh; a C program with libcurl and one reused handle
#	   (cloop.c, the practical limit).
#	2. JSON: `ttoauth2 json parse` / `json get` vs json::json2dict on
#	   real-shaped token responses.
#	3. Flow overhead: complete flows (startAuth, a scripted browser's
#	   redirect sent from this thread on a raw socket, wait until state 3)
#	   vs the same network work done by cloop.c: the 200 flows back to
#	   back per contender and round; for information also in short
#	   blocks between the C program's (BENCH_FLOW_BLOCK, 10), where idle
#	   vCPUs make every cross-thread wake-up slow.
#	4. Memory: RSS growth over create/configure/destroy cycles, RSS per
#	   live object (child process: mem.tcl).
#	5. Load time: `package require ttoauth2` vs `package require http`
#	   (fresh processes).
#	13. Token stores with 10,000 shops: file, SQLite, PostgreSQL
#	   (bench/stores.tcl).
#	14. Shop API requests: the cost of one signature (`ttoauth2 tiktokshop
#	   sign`, in this process), and BENCH_SHOP_N signed requests
#	   (`$o request GET /authorization/202309/shops`) against the static
#	   endpoint on one kept-alive connection vs the same signed requests
#	   made by cloop.c (libcurl + libcrypto HMAC, one reused handle).
#
#	Noisy machines: every network contender runs in a process of its own
#	that sleeps between blocks (worker.tcl, cloop.c), the coordinator runs
#	blocks of each in turn (order rotated every block; short blocks for
#	refreshes and JSON), rounds are repeated, and the table shows medians
#	of the per-block times.  The
#	flow and refresh sections first wait for TIME_WAIT sockets to drain
#	(thousands of them slow every new loopback connection and bind).
#
#	Run it with the build tree on TCLLIBPATH (make bench does):
#	    TCLLIBPATH=/path/to/build tclsh bench/bench.tcl ?-quick?
#	Environment: CC (default cc), BENCH_OUT (build/scratch folder, default
#	bench/out), BENCH_ROUNDS (default 5), BENCH_REFRESH_N (2000),
#	BENCH_BLOCK (refreshes per block, 100), BENCH_CLI_N (2000),
#	BENCH_CLI_SECONDS (time cap of the curl CLI, 60), BENCH_FLOW_N (200),
#	BENCH_FLOW_BLOCK (flows per block of the informative short-block run, 10),
#	BENCH_MEM_N (10000), BENCH_LOAD_N (15), BENCH_TW_MAX (1000) and
#	BENCH_TW_SECONDS (65: TIME_WAIT wait), BENCH_ONLY (the sections to
#	run, by the issue's numbers, default "1 2 3 4 5 12 13 14"), BENCH_SHOP_N
#	(1000), BENCH_RESULTS (file for the
#	table, default bench/RESULTS.md; "" writes none), BENCH_PIN (1, the
#	default where taskset(1) and two CPUs exist: see Pin; 0: leave
#	placement to the scheduler).  -quick scales
#	everything down for a smoke run (its numbers are not for publishing).

package require Tcl 8.6-

namespace eval ::bench {
    variable here [file dirname [file normalize [info script]]]
    variable rows {}		;# table rows, see Row
    variable section 0		;# the issue's number of the running benchmark
    variable twLog {}		;# section -> TIME_WAIT count at its start
    variable tclsh [info nameofexecutable]
}
source [file join $::bench::here nginx.tcl]

#----------------------------------------------------------------------
# Settings
#----------------------------------------------------------------------

proc ::bench::Setting {name default} {
    if {[info exists ::env($name)] && $::env($name) ne ""} {
	return $::env($name)
    }
    return $default
}

set ::bench::quick [expr {"-quick" in $argv}]
set ::bench::rounds   [bench::Setting BENCH_ROUNDS 5]
set ::bench::refreshN [bench::Setting BENCH_REFRESH_N 2000]
set ::bench::cliN     [bench::Setting BENCH_CLI_N 2000]
set ::bench::cliSeconds [bench::Setting BENCH_CLI_SECONDS 60]
set ::bench::block    [bench::Setting BENCH_BLOCK 100]
set ::bench::twMax    [bench::Setting BENCH_TW_MAX 1000]
set ::bench::twSeconds [bench::Setting BENCH_TW_SECONDS 65]
set ::bench::flowN    [bench::Setting BENCH_FLOW_N 200]
set ::bench::flowBlock [bench::Setting BENCH_FLOW_BLOCK 10]
set ::bench::memN     [bench::Setting BENCH_MEM_N 10000]
set ::bench::loadN    [bench::Setting BENCH_LOAD_N 15]
# BENCH_ONLY: a list of the issue's section numbers to run (default all).
set ::bench::only     [bench::Setting BENCH_ONLY {1 2 3 4 5 12 13 14}]
set ::bench::shopN    [bench::Setting BENCH_SHOP_N 1000]
set ::bench::pin      [bench::Setting BENCH_PIN 1]
set ::bench::out      [bench::Setting BENCH_OUT [file join $::bench::here out]]
set ::bench::results  [bench::Setting BENCH_RESULTS \
	[file join $::bench::here RESULTS.md]]
if {[info exists ::env(BENCH_RESULTS)] && $::env(BENCH_RESULTS) eq ""} {
    set ::bench::results ""
}
if {$::bench::quick} {
    set ::bench::rounds 2
    set ::bench::refreshN 200
    set ::bench::cliN 20
    set ::bench::block 20
    set ::bench::flowN 20
    set ::bench::shopN 100
    set ::bench::memN 1000
    set ::bench::loadN 3
    set ::bench::twSeconds 0
}
source [file join $::bench::here stores.tcl]
source [file join $::bench::here async.tcl]

#----------------------------------------------------------------------
# Helpers
#----------------------------------------------------------------------

proc ::bench::median {values} {
    set s [lsort -real $values]
    set n [llength $s]
    if {$n == 0} {
	return 0
    }
    if {$n % 2} {
	return [lindex $s [expr {$n / 2}]]
    }
    return [expr {([lindex $s [expr {$n / 2 - 1}]] \
	    + [lindex $s [expr {$n / 2}]]) / 2.0}]
}

# Rotates a list by r places, so that each round runs the contenders in
# another order (a slow spell of the machine does not always hit the same
# one).
# Sets ${mVar}(key) to the median wall time and, unless cpuVar is "",
# ${cpuVar}(key) to the median CPU time of each contender of an
# Interleave result, for a list of key name pairs.
proc ::bench::Medians {res mVar cpuVar pairs} {
    upvar 1 $mVar m
    if {$cpuVar ne ""} {
	upvar 1 $cpuVar cpu
    }
    foreach {key name} $pairs {
	set m($key) [median [dict get $res $name]]
	if {$cpuVar ne ""} {
	    set cpu($key) [median [dict get $res $name,cpu]]
	}
    }
}

proc ::bench::rotate {list r} {
    set r [expr {$r % [llength $list]}]
    return [concat [lrange $list $r end] [lrange $list 0 [expr {$r - 1}]]]
}

# A duration in microseconds, readable.
proc ::bench::us {v} {
    if {$v >= 10000} {
	return [format "%.1f ms" [expr {$v / 1000.0}]]
    }
    if {$v >= 100} {
	return [format "%.0f µs" $v]
    }
    if {$v >= 10} {
	return [format "%.1f µs" $v]
    }
    return [format "%.2f µs" $v]
}

proc ::bench::bytes {v} {
    set a [expr {abs($v)}]
    if {$a >= 1048576} {
	return [format "%.2f MiB" [expr {$v / 1048576.0}]]
    }
    if {$a >= 1024} {
	return [format "%.2f KiB" [expr {$v / 1024.0}]]
    }
    return [format "%d B" [expr {int($v)}]]
}

proc ::bench::say {args} {
    puts stderr [join $args]
    flush stderr
}

# Row --
#
#	One line of the final table: name, ttoauth2's figure, the baseline's,
#	the ratio (text), the target (text), and PASS/MISS ("" or "info" when
#	the issue sets no target).

proc ::bench::Row {name tto base ratio target result} {
    variable rows
    variable section
    lappend rows [list $section [llength $rows] \
	    [list $name $tto $base $ratio $target $result]]
}

# The rows in the issue's order (sections run in another order).
proc ::bench::Rows {} {
    variable rows
    return [lmap r [lsort -integer -index 0 [lsort -integer -index 1 $rows]] {
	lindex $r 2}]
}

# TIME_WAIT sockets left by earlier runs (and by anything else on the
# machine) make every new loopback connection and every bind to port 0
# slower: 16,000 of them made a C flow ten times slower here.  Sections
# that open connections wait (at most twSeconds) until few are left.
proc ::bench::TimeWait {} {
    if {[catch {
	set f [open /proc/net/sockstat]
	set text [read $f]
	close $f
    }] || ![regexp {TCP:.*\mtw (\d+)} $text -> tw]} {
	return -1
    }
    return $tw
}

proc ::bench::WaitQuiet {what} {
    variable twMax
    variable twSeconds
    set deadline [expr {[clock milliseconds] + 1000 * $twSeconds}]
    set tw [TimeWait]
    if {$tw > $twMax} {
	say "  $tw sockets in TIME_WAIT: waiting (at most $twSeconds s)\
		for fewer than $twMax before $what"
    }
    while {$tw > $twMax && [clock milliseconds] < $deadline} {
	after 1000
	set tw [TimeWait]
    }
    say "  $what starts with $tw sockets in TIME_WAIT"
    variable twLog
    lappend twLog $what $tw
}

# The ratio text and the verdict for "a at least min times b" style targets.
proc ::bench::AtLeast {ratio min} {
    return [list [format "%.1f×" $ratio] "≥ ${min}×" \
	    [expr {$ratio >= $min ? "PASS" : "MISS"}]]
}

proc ::bench::AtMost {ratio max} {
    return [list [format "%.2f×" $ratio] "≤ ${max}×" \
	    [expr {$ratio <= $max ? "PASS" : "MISS"}]]
}

#----------------------------------------------------------------------
# The C baseline
#----------------------------------------------------------------------

proc ::bench::BuildC {} {
    variable out
    variable here
    file mkdir $out
    set exe [file join $out cloop]
    set src [file join $here cloop.c]
    if {![file exists $exe] || [file mtime $exe] < [file mtime $src]} {
	set cc [Setting CC cc]
	say "building $exe"
	exec {*}$cc -O2 -o $exe $src -lcurl -lcrypto 2>@ stderr
    }
    return $exe
}

#----------------------------------------------------------------------
# Real-shaped token responses
#----------------------------------------------------------------------

# A TikTok Shop /api/v2/token/get answer, as TikTok sends it (field names,
# order, token lengths, a seller name that is not ASCII).
proc ::bench::TiktokJson {} {
    set access ROW_[string repeat Xq3Lk9Tz8Vb1Nm4Rc7Hd2Wf6Yp0Gs5J 3]
    set refresh ROW_[string repeat Mb7Qx2Vr9Lk4Tn1Zc8Hw3Yd6Jf0Gp5S 3]
    set scopes {
	seller.authorization.info seller.shop.info seller.product.basic
	seller.product.write seller.product.delete seller.order.info
	seller.fulfillment.basic seller.logistics seller.finance.info
	seller.return_refund.basic seller.promotion.read
    }
    set sc [join [lmap s $scopes {string cat \" $s \"}] ,]
    set template {{"code":0,"message":"success","data":{"access_token":"@A@","access_token_expire_in":1767225600,"refresh_token":"@R@","refresh_token_expire_in":4841467787,"open_id":"7494b3f0-9a61-4c4e-8e5b-1b7c0c2e8d11","seller_name":"Tienda \u00d1and\u00fa \u2013 Moda & Hogar","seller_base_region":"GB","user_type":0,"granted_scopes":[@S@]},"request_id":"202511230701121234567890ABCDEF12"}}
    # The seller name is sent as UTF-8 (the escapes above are Tcl's).
    set template [subst -nocommands -novariables $template]
    return [string map [list @A@ $access @R@ $refresh @S@ $sc] $template]
}

# An RFC 6749 / OpenID Connect answer (Google-like, with an id_token).
proc ::bench::OidcJson {} {
    set jwt [string cat eyJhbGciOiJSUzI1NiIsImtpZCI6IjZmNzI1NDEwMWY1NmU0MWNm \
	    MzVjOTkyNmRlODRhMmQ1NTJiNGM2ZjEiLCJ0eXAiOiJKV1QifQ. \
	    [string repeat eyJpc3MiOiJodHRwczovL2FjY291bnRzLmV4YW1wbGUuY29tIn0 9] \
	    . [string repeat SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c 8]]
    return [string cat "\{\n" \
	{  "access_token": "ya29.a0AfB_byC} [string repeat Qm9Xk2Lp 20] {",} \n \
	{  "expires_in": 3599,} \n \
	{  "refresh_token": "1//0gL} [string repeat Zx8Vn3Rt 12] {",} \n \
	{  "scope": "openid https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile",} \n \
	{  "token_type": "Bearer",} \n \
	{  "id_token": "} $jwt "\"\n\}\n"]
}

#----------------------------------------------------------------------
# 1. Refresh throughput
#----------------------------------------------------------------------

proc ::bench::TtoRefreshLoop {o n} {
    for {set i 0} {$i < $n} {incr i} {
	$o refresh
    }
}

proc ::bench::TclRefresh {url} {
    set tok [http::geturl $url -headers {Accept application/json}]
    set ncode [http::ncode $tok]
    set body [http::data $tok]
    http::cleanup $tok
    set d [json::json2dict $body]
    if {$ncode != 200 || [dict get $d code] != 0} {
	error "pure-Tcl refresh failed: HTTP $ncode"
    }
    return [dict get $d data access_token]
}

proc ::bench::TclRefreshLoop {url n} {
    for {set i 0} {$i < $n} {incr i} {
	TclRefresh $url
    }
}

proc ::bench::CliRefreshLoop {url n} {
    for {set i 0} {$i < $n} {incr i} {
	exec curl -sS --fail -H "Accept: application/json" $url
    }
}

# Times a script: µs per iteration.
proc ::bench::PerOp {n script} {
    set t0 [clock microseconds]
    uplevel 1 $script
    return [expr {double([clock microseconds] - $t0) / $n}]
}

# The C baseline as a co-process (cloop batch): one libcurl handle, and
# so one connection, for the whole run; each call runs a block and
# returns {wall-µs/op cpu-µs/op}.
# Placement.  On a virtual machine, waking a process on another vCPU
# costs tens of microseconds, and which vCPU the scheduler picks for a
# contender changes from run to run: the same refresh loop measured
# 51 us/refresh beside nginx's vCPU and 64 us on the other one, and a C
# loop 44 and 58 us.  So every contender of the side-by-side sections
# (the ttoauth2 and pure-Tcl workers, the C programs) runs on CPU 0 and
# the endpoint (nginx, cloop serve's peer) on the last CPU: the same
# placement for all, and every request crosses CPUs as it would to a
# real server.  BENCH_PIN=0 leaves placement to the scheduler.

proc ::bench::Pin {pid cpu} {
    variable pin
    if {!$pin || [auto_execok taskset] eq ""
	    || [catch {exec nproc} n] || $n < 2} {
	return
    }
    if {$cpu eq "last"} {
	set cpu [expr {$n - 1}]
    }
    # -a: every thread of the process (threads made later inherit it).
    exec taskset -a -p -c $cpu $pid >/dev/null
}

proc ::bench::CStart {cloop} {
    set chan [open |[list $cloop batch 2>@ stderr] r+]
    fconfigure $chan -buffering line
    Pin [pid $chan] 0
    return $chan
}

proc ::bench::CBlock {chan kind url n} {
    puts $chan [list $kind $url $n]
    if {[gets $chan line] < 0} {
	error "the C baseline (cloop) stopped"
    }
    lassign $line done us cpu
    return [list [expr {double($us) / $done}] [expr {double($cpu) / $done}]]
}

# A contender process (worker.tcl); Ask runs one command in it.
proc ::bench::WorkerStart {} {
    variable tclsh
    variable here
    set chan [open |[list $tclsh [file join $here worker.tcl] 2>@ stderr] r+]
    fconfigure $chan -buffering line -encoding utf-8
    Pin [pid $chan] 0
    return $chan
}

proc ::bench::Ask {chan args} {
    puts $chan $args
    if {[gets $chan line] < 0} {
	error "a bench worker process stopped"
    }
    if {[lindex $line 0] ne "ok"} {
	error "bench worker: [lindex $line 1]"
    }
    return [lrange $line 1 end]
}

# Interleave --
#
#	Runs rounds x blocks short blocks of each contender, alternating
#	(order rotated every block), so that a slow spell of the machine
#	hits all of them alike.  contenders: name -> command prefix (run
#	with the block size appended, returns {wall-µs/op cpu-µs/op}).
#	Returns a dict: name -> list of per-block wall µs/op, name,cpu ->
#	the same for CPU time.  few: name -> rounds, for contenders that run
#	fewer rounds.

proc ::bench::Interleave {label contenders rounds blocks size {few {}}} {
    set names [dict keys $contenders]
    set res {}
    foreach name $names {
	dict set res $name {}
	dict set res $name,cpu {}
    }
    for {set r 0} {$r < $rounds} {incr r} {
	foreach name $names {
	    set sum($name) 0.0
	    set cnt($name) 0
	}
	for {set b 0} {$b < $blocks} {incr b} {
	    foreach name [rotate $names [expr {$b + $r}]] {
		if {[dict exists $few $name] && $r >= [dict get $few $name]} {
		    continue
		}
		lassign [{*}[dict get $contenders $name] $size] wall cpu
		dict lappend res $name $wall
		dict lappend res $name,cpu $cpu
		set sum($name) [expr {$sum($name) + $wall}]
		incr cnt($name)
	    }
	}
	set parts {}
	foreach name $names {
	    if {$cnt($name)} {
		lappend parts "$name [us [expr {$sum($name) / $cnt($name)}]]"
	    }
	}
	say "  $label round [expr {$r + 1}] (mean wall/op): [join $parts {, }]"
    }
    return $res
}

proc ::bench::Refresh {port cloop expected} {
    variable rounds
    variable refreshN
    variable cliN
    variable cliSeconds
    variable block

    # The baselines send the request ttoauth2 sends from its second
    # refresh on: the refresh token is the one the endpoint answered with.
    set base http://127.0.0.1:$port
    set query [http::formatQuery app_key bench_app_key \
	    app_secret bench_app_secret refresh_token \
	    [dict get [json::json2dict [TiktokJson]] data refresh_token] \
	    grant_type refresh_token]
    set url $base/api/v2/token/refresh?$query

    set tto [WorkerStart]
    set tcl [WorkerStart]
    set c [CStart $cloop]
    if {[Ask $tto refresh-setup $base] ne $expected} {
	error "ttoauth2 refresh returned an unexpected token"
    }
    if {[TclRefresh $url] ne $expected} {
	error "pure-Tcl refresh returned an unexpected token"
    }
    # Warm up every contender (connections, caches, code paths).
    Ask $tto tto-refresh 20
    Ask $tcl tcl-refresh $url 20
    CBlock $c refresh $url 20

    # Each round is refreshN sequential refreshes per contender, in
    # blocks; pure Tcl (5 ms a refresh) runs 3 rounds only.
    set blocks [expr {max(1, $refreshN / $block)}]
    set res [Interleave refresh [dict create \
	    ttoauth2 [list bench::Ask $tto tto-refresh] \
	    C [list bench::CBlock $c refresh $url] \
	    "pure Tcl" [list bench::Ask $tcl tcl-refresh $url]] \
	    $rounds $blocks $block [dict create "pure Tcl" 3]]
    close $c
    close $tto

    # The curl CLI (40-90 ms a refresh) has a time cap.
    set cli {}
    set deadline [expr {[clock milliseconds] + 1000 * $cliSeconds}]
    set done 0
    if {[auto_execok curl] eq ""} {
	say "  no curl CLI: skipped"
	set cliN 0
    } else {
	Ask $tcl cli-refresh $url 2
    }
    while {$done < $cliN && [clock milliseconds] < $deadline} {
	set k [expr {min(20, $cliN - $done)}]
	lappend cli [lindex [Ask $tcl cli-refresh $url $k] 0]
	incr done $k
    }
    close $tcl
    say "  refresh curl CLI: $done refreshes, median [us [median $cli]]/op"

    Medians $res m cpu {tto ttoauth2 c C tcl "pure Tcl"}
    set m(cli) [median $cli]
    set paired [median [lmap a [dict get $res ttoauth2] b [dict get $res C] {
	expr {$a / $b}}]]
    say [format "  refresh medians: ttoauth2 %s, C %s, pure Tcl %s;\
	    paired ttoauth2/C block ratio %.2f; CPU/op ttoauth2 %s, C %s" \
	    [us $m(tto)] [us $m(c)] [us $m(tcl)] $paired \
	    [us $cpu(tto)] [us $cpu(c)]]
    Row "refresh ×$refreshN vs pure Tcl (http + json2dict), speed-up" \
	    "[us $m(tto)]/op" "[us $m(tcl)]/op" \
	    {*}[AtLeast [expr {$m(tcl) / $m(tto)}] 10]
    Row "refresh ×$refreshN vs C libcurl loop (reused handle), slowdown" \
	    "[us $m(tto)]/op" "[us $m(c)]/op" \
	    {*}[AtMost [expr {$m(tto) / $m(c)}] 1.25]
    Row "  same, client CPU time per refresh (load-proof)" \
	    "[us $cpu(tto)]/op" "[us $cpu(c)]/op" \
	    [format "%.2f×" [expr {$cpu(tto) / $cpu(c)}]] "—" info
    if {$done > 0} {
	Row "refresh vs curl CLI once per refresh (×$done), speed-up" \
		"[us $m(tto)]/op" "[us $m(cli)]/op" \
		[format "%.0f×" [expr {$m(cli) / $m(tto)}]] "—" info
    }
}

#----------------------------------------------------------------------
# 6. Shop API requests
#----------------------------------------------------------------------

proc ::bench::ShopLoop {o n} {
    for {set i 0} {$i < $n} {incr i} {
	$o request GET /authorization/202309/shops
    }
}

proc ::bench::Shop {port cloop} {
    variable rounds
    variable shopN
    variable block

    # The signature alone, in this process.
    set q [list app_key bench_app_key timestamp [clock seconds] \
	    shop_cipher GCP_bench page_size 50]
    set b {{"create_time_ge": 1700000000, "page_size": 50}}
    ttoauth2 tiktokshop sign bench_app_secret /order/202309/orders/search $q $b
    set signs {}
    for {set r 0} {$r < 5} {incr r} {
	lappend signs [PerOp 20000 {
	    for {set i 0} {$i < 20000} {incr i} {
		ttoauth2 tiktokshop sign bench_app_secret \
			/order/202309/orders/search $q $b
	    }
	}]
    }
    set sign [median $signs]
    say "  tiktokshop sign: [us $sign]/call (median of 5 x 20000)"
    Row "tiktokshop sign (4 parameters + JSON body), per call" \
	    "[us $sign]/op" "—" "—" "—" info

    set base http://127.0.0.1:$port
    set tto [WorkerStart]
    set c [CStart $cloop]
    if {[Ask $tto shop-setup $base] ne "0"} {
	error "ttoauth2 request did not get code 0"
    }
    Ask $tto tto-shop 20
    CBlock $c shop $base 20
    set blocks [expr {max(1, $shopN / $block)}]
    set res [Interleave shop [dict create \
	    ttoauth2 [list bench::Ask $tto tto-shop] \
	    C [list bench::CBlock $c shop $base]] \
	    $rounds $blocks $block]
    close $c
    close $tto
    Medians $res m cpu {tto ttoauth2 c C}
    say [format "  shop request medians: ttoauth2 %s, C %s; CPU/op ttoauth2 %s, C %s" \
	    [us $m(tto)] [us $m(c)] [us $cpu(tto)] [us $cpu(c)]]
    Row "signed Shop API request ×$shopN (keep-alive) vs C libcurl + libcrypto, slowdown" \
	    "[us $m(tto)]/op" "[us $m(c)]/op" \
	    {*}[AtMost [expr {$m(tto) / $m(c)}] 1.25]
    Row "  same, client CPU time per request (load-proof)" \
	    "[us $cpu(tto)]/op" "[us $cpu(c)]/op" \
	    [format "%.2f×" [expr {$cpu(tto) / $cpu(c)}]] "—" info
}

#----------------------------------------------------------------------
# 2. JSON
#----------------------------------------------------------------------

proc ::bench::Json {} {
    variable rounds
    set docs [list "TikTok token/get" [TiktokJson] \
	    "RFC 6749 + id_token" [OidcJson]]
    foreach {label text} $docs {
	# Both sides must agree on what the text says.
	set mine [ttoauth2 json parse $text]
	set theirs [json::json2dict $text]
	if {[dict size $mine] != [dict size $theirs]} {
	    error "json parse and json2dict disagree on $label"
	}
	if {$label eq "TikTok token/get"} {
	    set path data.access_token
	    set tclget {dict get [json::json2dict $text] data access_token}
	} else {
	    set path id_token
	    set tclget {dict get [json::json2dict $text] id_token}
	}
	if {[ttoauth2 json get $text $path] ne [eval $tclget]} {
	    error "json get and json2dict disagree on $label"
	}
	# Iterations per round: about 0.2 s each side.
	set nFast 20000
	set nSlow 400
	set p(tto) {}; set p(tcl) {}; set g(tto) {}; set g(tcl) {}
	for {set r 0} {$r < $rounds} {incr r} {
	    foreach who [rotate {tto tcl} $r] {
		if {$who eq "tto"} {
		    lappend p(tto) [lindex [time {ttoauth2 json parse $text} \
			    $nFast] 0]
		    lappend g(tto) [lindex [time {ttoauth2 json get $text \
			    $path} $nFast] 0]
		} else {
		    lappend p(tcl) [lindex [time {json::json2dict $text} \
			    $nSlow] 0]
		    lappend g(tcl) [lindex [time $tclget $nSlow] 0]
		}
	    }
	}
	set pt [median $p(tto)]; set pb [median $p(tcl)]
	set gt [median $g(tto)]; set gb [median $g(tcl)]
	say [format "  json %s (%d bytes): parse %s vs %s, get %s vs %s" \
		$label [string length [encoding convertto utf-8 $text]] \
		[us $pt] [us $pb] [us $gt] [us $gb]]
	Row "json parse, $label ([string length $text] chars) vs json2dict" \
		[us $pt] [us $pb] {*}[AtLeast [expr {$pb / $pt}] 30]
	Row "json get $path vs json2dict + dict get" \
		[us $gt] [us $gb] {*}[AtLeast [expr {$gb / $gt}] 30]
    }
}

#----------------------------------------------------------------------
# 3. Flow overhead
#----------------------------------------------------------------------

# The scripted browser: the redirect TikTok would send the user's browser
# to, as a raw HTTP/1.1 GET from this thread (the listener runs in a C
# thread, so a blocking socket is fine).  Reads the page to EOF, closes.
proc ::bench::Browse {port pathAndQuery} {
    set s [socket 127.0.0.1 $port]
    fconfigure $s -translation binary -buffering none
    puts -nonewline $s "GET $pathAndQuery HTTP/1.1\r\nHost: 127.0.0.1:$port\r\nConnection: close\r\n\r\n"
    set reply [read $s]
    close $s
    return $reply
}

proc ::bench::OneFlow {o i} {
    set url [$o startAuth]
    if {![regexp {[?&]state=([^&]+)} $url -> state]
	    || ![regexp {^http://127\.0\.0\.1:(\d+)/} [$o redirectUri] -> port]} {
	error "unexpected authorize URL or redirect URI"
    }
    set reply [Browse $port "/?code=BENCHCODE$i&state=$state&locale=en-GB&shop_region=GB"]
    set state [$o wait]
    if {$state != 3 || ![string match "HTTP/1.1 200 *" $reply]} {
	error "flow ended in state $state: [$o failureInfo]"
    }
}

proc ::bench::FlowLoop {o n} {
    for {set i 0} {$i < $n} {incr i} {
	OneFlow $o $i
    }
}

proc ::bench::BrowserLoop {port n} {
    for {set i 0} {$i < $n} {incr i} {
	Browse $port "/?code=BENCHCODE$i&state=0123456789abcdefghijklmnopqrstuv"
    }
}

proc ::bench::Flow {port cloop} {
    variable rounds
    variable flowN

    set base http://127.0.0.1:$port
    set tokenUrl $base/api/v2/token/get?[http::formatQuery \
	    app_key bench_app_key app_secret bench_app_secret \
	    grant_type authorized_code]

    set tto [WorkerStart]
    set browser [WorkerStart]
    set c [CStart $cloop]
    # The scripted browser alone, against cloop's listener: how much of a
    # flow is the harness's own Tcl socket work.
    set serve [open |[list $cloop serve 2>@ stderr] r+]
    Pin [pid $serve] last
    set servePort [string trim [gets $serve]]

    Ask $tto flow-setup $base
    Ask $tto tto-flow 10
    Ask $browser browser $servePort 10
    CBlock $c flow $tokenUrl 10

    # The issue's measure: the 200 flows back to back, each contender in
    # turn (order rotated every round), rounds repeated, medians.
    set res [Interleave flow [dict create \
	    ttoauth2 [list bench::Ask $tto tto-flow] \
	    C [list bench::CBlock $c flow $tokenUrl] \
	    "Tcl browser" [list bench::Ask $browser browser $servePort]] \
	    $rounds 1 $flowN]
    # The same flows in short blocks, each after the other contenders'
    # blocks: the CPUs sit idle for a moment before every block, which on
    # a virtual machine makes the next cross-thread wake-ups slow (the
    # hypervisor stops polling a halted vCPU).  A single-threaded program
    # feels that less; reported for information.
    variable flowBlock
    set cold [Interleave "flow (blocks of $flowBlock)" [dict create \
	    ttoauth2 [list bench::Ask $tto tto-flow] \
	    C [list bench::CBlock $c flow $tokenUrl]] \
	    $rounds [expr {max(1, $flowN / $flowBlock)}] $flowBlock]
    close $c
    close $serve
    close $tto
    close $browser
    Medians $res m cpu {tto ttoauth2 c C browser "Tcl browser"}
    Medians $cold m {} {ttoCold ttoauth2 cCold C}
    say [format "  flow medians: ttoauth2 %s, C %s, Tcl browser alone %s;\
	    CPU/flow ttoauth2 %s (Tcl browser alone %s), C %s; in blocks of\
	    %d: ttoauth2 %s, C %s" [us $m(tto)] [us $m(c)] [us $m(browser)] \
	    [us $cpu(tto)] [us $cpu(browser)] [us $cpu(c)] $flowBlock \
	    [us $m(ttoCold)] [us $m(cCold)]]
    Row "flow ×$flowN (startAuth, redirect, wait → 3) vs C, slowdown" \
	    "[us $m(tto)]/flow" "[us $m(c)]/flow" \
	    {*}[AtMost [expr {$m(tto) / $m(c)}] 3]
    Row "  of which: the Tcl scripted browser alone (vs C listener)" \
	    "[us $m(browser)]/flow" "—" \
	    [format "%.0f%% of flow" [expr {100.0 * $m(browser) / $m(tto)}]] \
	    "—" info
    Row "  CPU per flow, ttoauth2's process less the Tcl browser's" \
	    "[us [expr {max(0.0, $cpu(tto) - $cpu(browser))}]]/flow" \
	    "[us $cpu(c)]/flow" \
	    [format "%.2f×" [expr {max(0.0, $cpu(tto) - $cpu(browser)) / $cpu(c)}]] \
	    "—" info
    Row "  same flows in blocks of $flowBlock between the C's (idle vCPUs)" \
	    "[us $m(ttoCold)]/flow" "[us $m(cCold)]/flow" \
	    [format "%.2f×" [expr {$m(ttoCold) / $m(cCold)}]] "—" info
}

#----------------------------------------------------------------------
# 4. Memory (in a fresh child process: mem.tcl)
#----------------------------------------------------------------------

proc ::bench::Memory {} {
    variable here
    variable tclsh
    variable memN
    set r [exec $tclsh [file join $here mem.tcl] $memN 2>@ stderr]
    set growth [dict get $r growth]
    set perObj [dict get $r perObject]
    say [format "  memory: growth %s over %d cycles, %s per live object" \
	    [bytes $growth] $memN [bytes $perObj]]
    Row "memory: RSS growth, $memN create/configure/destroy" \
	    [bytes $growth] "—" "—" "< 1 MiB" \
	    [expr {$growth < 1048576 ? "PASS" : "MISS"}]
    Row "memory: RSS per live object ($memN objects)" \
	    [bytes $perObj] "—" "—" "< 4 KiB" \
	    [expr {$perObj < 4096 ? "PASS" : "MISS"}]
}

#----------------------------------------------------------------------
# 5. Load time (fresh processes)
#----------------------------------------------------------------------

proc ::bench::LoadOnce {script} {
    variable tclsh
    return [string trim [exec $tclsh << $script]]
}

proc ::bench::LoadTime {} {
    variable loadN
    set require {
	set t0 [clock microseconds]
	package require %s
	puts [expr {[clock microseconds] - $t0}]
    }
    set dir [lindex [package ifneeded ttoauth2 [package require ttoauth2]] end]
    # TEA's names: libtcl9ttoauth2<ver> for Tcl 9, libttoauth2<ver> for 8.6.
    set prefix [expr {[package vsatisfies [package provide Tcl] 9-]
	    ? "libtcl9ttoauth2" : "libttoauth2"}]
    set so [file join $dir [lindex [glob -directory $dir -tails \
	    $prefix*[info sharedlibextension]] 0]]
    set loadOnly [format {
	set t0 [clock microseconds]
	load %s Ttoauth2
	puts [expr {[clock microseconds] - $t0}]
    } [list $so]]
    set t(tto) {}; set t(http) {}; set t(load) {}
    for {set r 0} {$r < $loadN} {incr r} {
	foreach who [rotate {tto http load} $r] {
	    switch $who {
		tto  {lappend t(tto) [LoadOnce [format $require ttoauth2]]}
		http {lappend t(http) [LoadOnce [format $require http]]}
		load {lappend t(load) [LoadOnce $loadOnly]}
	    }
	}
    }
    foreach k {tto http load} {
	set m($k) [median $t($k)]
    }
    say [format "  load: ttoauth2 %s, http %s, load of the .so alone %s" \
	    [us $m(tto)] [us $m(http)] [us $m(load)]]
    Row "load: package require ttoauth2 vs http (×$loadN processes)" \
	    [us $m(tto)] [us $m(http)] \
	    [format "%.1f×" [expr {double($m(tto)) / $m(http)}]] "—" info
    Row "  of which: load of the .so alone (libcurl & deps, init)" \
	    [us $m(load)] "—" \
	    [format "%.0f%% of require" [expr {100.0 * $m(load) / $m(tto)}]] \
	    "—" info
}

#----------------------------------------------------------------------
# The table and RESULTS.md
#----------------------------------------------------------------------

proc ::bench::LoadAvg {} {
    if {[catch {
	set f [open /proc/loadavg]
	set l [lrange [read $f] 0 2]
	close $f
    }]} {
	return ?
    }
    return $l
}

proc ::bench::Machine {} {
    set cpu unknown
    catch {
	set f [open /proc/cpuinfo]
	foreach line [split [read $f] \n] {
	    if {[regexp {^model name\s*:\s*(.*)$} $line -> cpu]} {
		break
	    }
	}
	close $f
    }
    set nproc [expr {[catch {exec nproc} n] ? "?" : $n}]
    set kernel [expr {[catch {exec uname -sr} k] ? $::tcl_platform(os) : $k}]
    set load [LoadAvg]
    set v [ttoauth2 version]
    return [list \
	date [clock format [clock seconds] -format "%Y-%m-%d %H:%M:%S %Z"] \
	cpu $cpu nproc $nproc kernel $kernel loadavg $load \
	tcl [info patchlevel] ttoauth2 [dict get $v ttoauth2] \
	libcurl [dict get $v libcurl] tls [dict get $v tls] \
	cjson [dict get $v cjson] nginx [nginx::version] \
	http [package require http] json [package require json] \
	curlcli [lindex [exec curl --version] 1]]
}

proc ::bench::Table {} {
    set head {benchmark ttoauth2 baseline ratio target result}
    set all [linsert [Rows] 0 $head]
    foreach row $all {
	set i 0
	foreach cell $row {
	    set len [string length $cell]
	    if {![info exists w($i)] || $w($i) < $len} {
		set w($i) $len
	    }
	    incr i
	}
    }
    set lines {}
    foreach row $all {
	set i 0
	set cells {}
	foreach cell $row {
	    lappend cells [format "%-*s" $w($i) $cell]
	    incr i
	}
	lappend lines [string trimright [join $cells "  "]]
	if {$row eq $head} {
	    set sep {}
	    for {set j 0} {$j < $i} {incr j} {
		lappend sep [string repeat - $w($j)]
	    }
	    lappend lines [join $sep "  "]
	}
    }
    return [join $lines \n]
}

proc ::bench::Markdown {machine} {
    variable rows
    variable rounds
    set md "# ttoauth2 benchmark results\n\n"
    append md "Written by `make bench` (bench/bench.tcl). Every figure is the\n"
    append md "median of repeated rounds run side by side in one process on\n"
    append md "one machine; ratios compare those medians. Contenders'\n"
    append md "order is rotated each round.\n"
    variable pin
    if {$pin && [auto_execok taskset] ne ""} {
	append md "Placement (BENCH_PIN=1): every contender process on CPU 0,\n"
	append md "the endpoint (nginx) on the last CPU, the same for all.\n"
    }
    append md "\n"
    append md "| benchmark | ttoauth2 | baseline | ratio | target | result |\n"
    append md "|---|---|---|---|---|---|\n"
    foreach row [Rows] {
	append md "| [join [lmap c $row {string map {| \\|} $c}] { | }] |\n"
    }
    append md "\n## Machine\n\n"
    dict for {k v} $machine {
	append md "- $k: $v\n"
    }
    append md "\n## Method\n\n"
    append md [string map [list @R@ $rounds] {- Token endpoint: Debian's nginx started by the bench on 127.0.0.1
  (config in a temp dir, keep-alive, access log off) answering a fixed
  TikTok-shaped token JSON for /api/v2/token/refresh and /api/v2/token/get.
- Every network contender runs in a process of its own that sleeps
  between blocks (bench/worker.tcl for ttoauth2, the pure-Tcl way, the
  scripted browser and the curl CLI; bench/cloop.c for C), driven by the
  coordinator in short interleaved blocks (order rotated every block), so
  that neither a busy coordinator nor a slow spell of the machine falls
  on one side. Figures are medians of the per-block times.
- Refresh: @R@ rounds of sequential refreshes per contender (pure Tcl: 3
  rounds; curl CLI: once, capped in time), in blocks of 100, each
  contender warmed up first. C: libcurl easy interface, one handle
  reused, same URL and headers as ttoauth2. "Client CPU time": CPU of the
  refreshing thread (/proc/self/schedstat; getrusage for C), which the
  machine's load barely moves.
- JSON: `time` over many iterations per round, @R@ rounds, in the
  coordinator (both sides alike).
- Flow: startAuth, a raw-socket GET of the redirect from the same Tcl
  thread, read the page, close, `wait` → 3; each round runs the 200
  flows back to back per contender (order rotated per round). C per flow:
  listen, connect, send, accept+read, one token request with the reused
  handle, reply, close. "Tcl browser alone" is the scripted browser
  against a C listener (cloop serve): the harness's own share. The
  short-block row runs the same flows in blocks of 10 between the C
  program's: idle vCPUs then wake slowly, which costs a two-thread flow
  more than a single-threaded loop.
- TIME_WAIT sockets (listed under Machine) slow every new loopback
  connection and bind: the flow and refresh sections wait (up to 65 s)
  for fewer than 1000 before they start, and run before/after the
  sections that create many.
- Memory: a fresh tclsh (bench/mem.tcl), VmRSS from /proc/self/statm after
  a warm-up; live objects hold distinct access/refresh tokens.
- Load: fresh tclsh processes, time of `package require` measured inside.
- Stores: 10,000 TikTok-shaped token responses (about 400 bytes each) in a
  folder, an SQLite file and a PostgreSQL 15 cluster on 127.0.0.1 made
  for the run (fsync off: the reads measured never wait for a disk);
  filled directly, then `expiring 86400` (1,440 keys match), `get` of
  random keys, and trylock + read + unlock cycles through the store
  command (bench/stores.tcl).
}]
    return $md
}

#----------------------------------------------------------------------
# Main
#----------------------------------------------------------------------

proc ::bench::Main {} {
    variable results
    variable only
    package require ttoauth2
    package require http
    package require json

    set cloop [BuildC]
    set body [TiktokJson]
    set expected [dict get [json::json2dict $body] data access_token]
    set port [nginx::start $body]
    foreach p [nginx::pids] {
	Pin $p last
    }
    say "nginx on 127.0.0.1:$port"
    set machine [Machine]
    variable section
    variable twLog
    # Run order: what opens no connections first, then the flows (the
    # most sensitive to TIME_WAIT sockets), then the refreshes (whose
    # pure-Tcl and curl-CLI baselines leave thousands of them).
    set code [catch {
	if {2 in $only} {
	    say "2. JSON"
	    set section 2
	    Json
	}
	if {3 in $only} {
	    say "3. flow overhead"
	    set section 3
	    WaitQuiet flows
	    Flow $port $cloop
	}
	if {14 in $only} {
	    say "14. Shop API requests"
	    set section 14
	    WaitQuiet requests
	    Shop $port $cloop
	}
	if {1 in $only} {
	    say "1. refresh throughput"
	    set section 1
	    WaitQuiet refreshes
	    Refresh $port $cloop $expected
	}
    } msg opts]
    nginx::stop
    if {$code} {
	return -options $opts $msg
    }
    if {4 in $only} {
	say "4. memory"
	set section 4
	Memory
    }
    if {5 in $only} {
	say "5. load time"
	set section 5
	LoadTime
    }
    if {12 in $only} {
	say "12. many refreshes at once (-command)"
	set section 12
	WaitQuiet async
	Async
    }
    if {13 in $only} {
	say "13. token stores"
	set section 13
	Stores
    }
    dict set machine loadavg "[dict get $machine loadavg] (start),\
	    [LoadAvg] (end)"
    dict set machine timewait [join [lmap {k v} $twLog {
	string cat "$v before $k"}] ", "]

    set table [Table]
    puts ""
    puts $table
    puts ""
    puts "machine: [dict get $machine cpu], [dict get $machine nproc] CPUs,\
	    [dict get $machine kernel], load [dict get $machine loadavg];\
	    Tcl [dict get $machine tcl], libcurl [dict get $machine libcurl],\
	    nginx [dict get $machine nginx]; [dict get $machine date]"
    if {$results ne ""} {
	set f [open $results w]
	fconfigure $f -encoding utf-8
	puts -nonewline $f [Markdown $machine]
	close $f
	puts "written to $results"
    }
    set misses [llength [lsearch -all -index 5 [Rows] MISS]]
    if {$misses} {
	puts "$misses target(s) missed"
    }
}

if {[info exists argv0] && [file normalize $argv0] eq [file normalize [info script]]} {
    fconfigure stdout -encoding utf-8
    fconfigure stderr -encoding utf-8
    bench::Main
}
