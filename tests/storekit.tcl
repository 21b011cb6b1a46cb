# storekit.tcl --
#
#	What the tests of token stores share (store-db.test, and the tests
#	of objects on stores: -tokenstore, validAccessToken): constraints
#	"sqlite" and "postgres", a throwaway PostgreSQL cluster, a new empty
#	store of each kind, token texts, writing through the lock protocol,
#	and child processes (tests/storechild.tcl) started together.
#
#	    storekit::init FILENAME	constraints; starts the cluster when
#					PostgreSQL is there (else prints why
#					its tests are skipped); its removal is
#					pgcluster::destroy (also run at exit)
#	    newSpec file|sqlite|postgres	a spec of a new, empty store
#	    tokenText access ?expiresAt? ?refreshExpiresAt?
#	    put store key text ?expiresAt? ?refreshExpiresAt?
#	    children n mode spec key ?arg?	-> pipes, each past "ready"
#	    finish pipes		-> each child's remaining output
#
#	Needs common.tcl first.

source [file join $::testsDir pgcluster.tcl]

namespace eval storekit {}

proc storekit::init {fileName} {
    testConstraint sqlite [expr {![catch {package require tdbc::sqlite3}]}]
    set why [pgcluster::available]
    testConstraint postgres [expr {$why eq ""}]
    if {$why ne ""} {
	puts "$fileName: PostgreSQL tests skipped: $why"
    } else {
	pgcluster::create
    }
    if {![testConstraint sqlite]} {
	puts "$fileName: SQLite tests skipped: tdbc::sqlite3 missing for Tcl\
	    [info tclversion] (Debian: tcl8.6-tdbc-sqlite3 for Tcl 8.6;\
	    for Tcl 9 see unix/tcl9-chroot.sh)"
    }
}

set childScript [file join $::testsDir storechild.tcl]
set dbCounter 0

# A new, empty store of a kind: file, sqlite or postgres (a new database
# of the test cluster each time).
proc newSpec {kind} {
    switch -- $kind {
	file {return file:[file join [tmpDir] tokens]}
	sqlite {return sqlite:[file join [tmpDir] tokens.db]}
	postgres {
	    set db tto[incr ::dbCounter]
	    pgcluster::run $pgcluster::bin/createdb -h $pgcluster::root \
		-p $pgcluster::port -U ttoauth2 $db
	    return [regsub {/tto$} [pgcluster::spec] /$db]
	}
    }
}

# A token response (TikTok shape) with the given expiries.
proc tokenText {access {expiresAt 0} {refreshExpiresAt 0}} {
    return [format {{"code":0,"message":"success","data":{"access_token":"%s",\
"access_token_expire_in":%lld,"refresh_token":"R-%s",\
"refresh_token_expire_in":%lld,"open_id":"shop"},"request_id":"1"}} \
	$access $expiresAt $access $refreshExpiresAt]
}

# Writes text under key through the protocol.
proc put {store key text {e ""} {r ""}} {
    if {![$store trylock $key]} {
	error "key $key is locked"
    }
    $store write $key $text $e $r
    $store unlock $key 1
}

# Children (tests/storechild.tcl), each waiting for "go".
proc children {n mode spec key {arg {}}} {
    set pipes {}
    for {set i 0} {$i < $n} {incr i} {
	# stderr too: a child that cannot start says why in the failure.
	set p [open |[list $::tclsh $::childScript $mode $spec $key $arg 2>@1] r+]
	fconfigure $p -buffering line
	lappend pipes $p
    }
    foreach p $pipes {
	set line [gets $p]
	if {$line ne "ready"} {
	    error "child: $line"
	}
    }
    return $pipes
}

proc finish {pipes} {
    set out {}
    foreach p $pipes {
	lappend out [string trim [read $p]]
	catch {close $p}
    }
    return $out
}

