# storechild.tcl --
#
#	A process that uses a token store, for the tests of store-db.test
#	that need several processes at once (locks across processes, a
#	holder killed with SIGKILL, first opens of a new database).
#
#   tclsh tests/storechild.tcl MODE SPEC KEY ?ARG?
#	Opens the store SPEC, prints "ready" and waits for a line "go" on
#	stdin (so that all children start together), then:
#	  increment N	N times: take KEY's lock (trylock every 1 ms),
#			read the counter in the stored access token
#			"count-C", write "count-C+1", unlock; prints
#			"done N" (how many it did).
#	  hold TEXT	takes KEY's lock, writes TEXT (not committed),
#			prints "held" and waits for a line: "commit" or
#			"rollback" ends the lock that way and prints "ok";
#			the end of stdin exits without unlocking.
#	  open		prints "keys K" (the store's key count).
#	  eval SCRIPT	evaluates SCRIPT at global level, with the variables
#			store (the store command) and key set, and prints
#			"result RESULT" (for tests of objects on stores,
#			e.g. eight processes calling validAccessToken).
#	Exits by itself after 60 s whatever happens.  Errors: "error
#	ERRORCODE MESSAGE" on stdout, exit 1.

package require Tcl 8.6-
package require ttoauth2

proc Lock {store key} {
    set deadline [expr {[clock milliseconds] + 30000}]
    while {![$store trylock $key]} {
	if {[clock milliseconds] > $deadline} {
	    error "lock timeout"
	}
	after 1
    }
}

proc Main {mode spec key arg} {
    after 60000 {exit 3}
    fconfigure stdout -buffering line
    set store [ttoauth2 store open $spec]
    puts ready
    if {[gets stdin] ne "go"} {
	exit 0
    }
    switch -- $mode {
	increment {
	    for {set i 0} {$i < $arg} {incr i} {
		Lock $store $key
		set text [$store read $key]
		set n 0
		if {$text ne ""} {
		    regexp {count-(\d+)} [ttoauth2 json get $text access_token] -> n
		}
		set at [expr {[clock seconds] + 3600}]
		$store write $key [format {{"access_token":"count-%d",\
		    "refresh_token":"r","expires_at":%d}} [incr n] $at] $at ""
		$store unlock $key 1
	    }
	    puts "done $arg"
	}
	hold {
	    Lock $store $key
	    $store write $key $arg "" ""
	    puts held
	    set line [gets stdin]
	    if {[eof stdin]} {
		exit 0
	    }
	    $store unlock $key [expr {$line eq "commit"}]
	    puts ok
	}
	open {
	    puts "keys [llength [$store keys]]"
	}
	eval {
	    set ::store $store
	    set ::key $key
	    puts "result [uplevel #0 $arg]"
	}
    }
    $store close
}

if {[catch {Main {*}[lrange [concat $argv {{} {} {} {}}] 0 3]} msg opts]} {
    puts "error [dict get $opts -errorcode] $msg"
    exit 1
}
exit 0
