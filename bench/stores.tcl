# stores.tcl --
#
#	Section 13 of `make bench` (sourced by bench.tcl): token stores with
#	10,000 shops -- file:DIR, sqlite:FILE and PostgreSQL on loopback (a
#	throwaway cluster, tests/pgcluster.tcl; its rows say "skipped" when
#	the server or tdbc::postgres is missing).
#
#	  - expiring 86400 over all 10,000 keys (ms per call);
#	  - get of one key (µs per call, keys chosen at random);
#	  - trylock + read + unlock of one key (µs per cycle): what a
#	    validAccessToken whose in-memory token is not fresh enough pays
#	    before deciding (tokens.c adds its own work on top).
#
#	Each store is filled directly (one transaction / plain files): the
#	fill is not what is measured.  Settings: BENCH_STORE_N (10000 keys),
#	BENCH_STORE_CALLS (2000 gets / lock cycles per round), BENCH_ROUNDS.

namespace eval ::bench {
    variable storeN [Setting BENCH_STORE_N 10000]
    variable storeCalls [Setting BENCH_STORE_CALLS 2000]
    if {$quick} {
	set storeN 1000
	set storeCalls 200
    }
}

# A token response of shop i: its access token ends at t0 + 30 + i*60 s,
# its refresh token 30 days later.
proc ::bench::StoreToken {i t0} {
    set e [expr {$t0 + 30 + $i * 60}]
    set r [expr {$e + 86400 * 30}]
    return [list [format {{"code":0,"message":"success","data":{"access_token":"ROW%05d-%s",\
"access_token_expire_in":%lld,"refresh_token":"RR%05d-%s",\
"refresh_token_expire_in":%lld,"open_id":"shop%05d","seller_name":"Shop %d"},\
"request_id":"2024072311223344"}} $i [string repeat a 80] $e $i \
	[string repeat b 80] $r $i $i] $e $r]
}

proc ::bench::StoreFill {kind spec n connect} {
    [ttoauth2 store open $spec] close	;# creates the tables
    set t0 [clock seconds]
    if {$kind eq "file"} {
	set dir [string range $spec 5 end]
	for {set i 0} {$i < $n} {incr i} {
	    set f [open [file join $dir [format shop%05d.json $i]] w]
	    puts -nonewline $f [lindex [StoreToken $i $t0] 0]
	    close $f
	}
	return
    }
    set c [{*}$connect]
    set st [$c prepare {INSERT INTO ttoauth2_tokens (key, body, expires_at,
	refresh_expires_at, updated_at) VALUES (:k, :b, :e, :r, :t)}]
    $c transaction {
	for {set i 0} {$i < $n} {incr i} {
	    lassign [StoreToken $i $t0] b e r
	    $st allrows [dict create k [format shop%05d $i] b $b e $e r $r \
		t $t0]
	}
    }
    $c close
}

# Medians over rounds of: expiring (ms), get (µs), lock cycle (µs).
proc ::bench::StoreMeasure {spec n} {
    variable rounds
    variable storeCalls
    set s [ttoauth2 store open $spec]
    set exp {}; set get {}; set lock {}
    set count 0
    for {set r 0} {$r < $rounds} {incr r} {
	lappend exp [expr {[PerOp 3 {
	    for {set j 0} {$j < 3} {incr j} {
		set count [llength [$s expiring 86400]]
	    }
	}] / 1000.0}]
	set keys [lmap j [lrepeat $storeCalls 0] {
	    format shop%05d [expr {int(rand() * $n)}]}]
	lappend get [PerOp $storeCalls {
	    foreach k $keys {$s get $k}
	}]
	lappend lock [PerOp $storeCalls {
	    foreach k $keys {
		$s trylock $k
		$s read $k
		$s unlock $k 1
	    }
	}]
    }
    $s close
    return [list [median $exp] [median $get] [median $lock] $count]
}

proc ::bench::Stores {} {
    variable storeN
    set n $storeN
    set srcTests [file join [file dirname $::bench::here] tests]
    if {[info exists ::env(TTOAUTH2_SRCDIR)]} {
	set srcTests [file join $::env(TTOAUTH2_SRCDIR) tests]
    }
    source [file join $srcTests pgcluster.tcl]
    set tmp [file join $::bench::out stores-[pid]]
    file delete -force $tmp
    file mkdir $tmp

    set results [dict create]
    foreach kind {file sqlite postgres} {
	set why ""
	switch $kind {
	    file {
		set spec file:[file join $tmp files]
		set connect {}
	    }
	    sqlite {
		set spec sqlite:[file join $tmp tokens.db]
		if {[catch {package require tdbc::sqlite3}]} {
		    set why "tdbc::sqlite3 missing"
		}
		set connect [list tdbc::sqlite3::connection new \
		    [file join $tmp tokens.db]]
	    }
	    postgres {
		set why [pgcluster::available]
		if {$why eq ""} {
		    pgcluster::create
		    set spec [pgcluster::spec]
		    set connect [list tdbc::postgres::connection new \
			-host 127.0.0.1 -port $pgcluster::port \
			-user ttoauth2 -database tto]
		}
	    }
	}
	if {$why ne ""} {
	    say "  $kind: skipped ($why)"
	    dict set results $kind $why
	    continue
	}
	try {
	    StoreFill $kind $spec $n $connect
	    set m [StoreMeasure $spec $n]
	} finally {
	    if {$kind eq "postgres"} {
		pgcluster::destroy
	    }
	}
	lassign $m exp get lock count
	say [format "  %s: expiring %.1f ms (%d keys), get %s, lock cycle %s" \
	    $kind $exp $count [us $get] [us $lock]]
	dict set results $kind $m
    }
    file delete -force $tmp

    foreach kind {file sqlite postgres} {
	set m [dict get $results $kind]
	if {[llength $m] != 4} {
	    Row "store $kind: expiring 86400 over $n keys" "skipped: $m" \
		"—" "—" "—" info
	    continue
	}
	lassign $m exp get lock
	set target "—"
	set result info
	if {$kind eq "sqlite"} {
	    set target "≤ 50 ms"
	    set result [expr {$exp <= 50 ? "PASS" : "MISS"}]
	}
	set vsFile "—"
	if {$kind ne "file" && [llength [dict get $results file]] == 4} {
	    set vsFile [format "%.2f× file" \
		[expr {$exp / [lindex [dict get $results file] 0]}]]
	}
	Row "store $kind: expiring 86400 over $n keys" \
	    [format "%.1f ms" $exp] "—" $vsFile $target $result
	Row "  $kind: get of one key (random of $n)" [us $get] "—" "—" "—" info
	Row "  $kind: trylock + read + unlock of one key" [us $lock] "—" \
	    "—" "—" info
    }
}
