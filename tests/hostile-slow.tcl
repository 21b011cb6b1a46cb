# hostile-slow.tcl --
#
#	Slow-header attackers against a ttoauth2 redirect listener, for
#	tests/hostile.test. Pure Tcl 8.6, event driven; it only ever connects
#	to the -host it is given (loopback).
#
#   tclsh tests/hostile-slow.tcl -port P ?-host 127.0.0.1|::1?
#		?-mode partial|slowloris? ?-count N? ?-interval MS?
#		?-duration MS?
#
#	Opens -count connections (default 100) at once. Each sends the start
#	of a request head (a request line and some header lines, never the
#	blank line that ends a head), then:
#	    partial    stays open and silent;
#	    slowloris  sends one more header line every -interval ms
#		       (default 1000) and, on the same tick, opens a new
#		       connection for every one the listener has closed, so
#		       that -count stay open, as the slowloris tool does.
#	Prints "ready N" once the first -count connections are established,
#	"closed N" (how many of its connections the listener has ended so
#	far) at most every 50 ms while that number grows, and exits after
#	-duration ms (default 20000) or when stdin closes, printing the final
#	"closed N".

package require Tcl 8.6-

set opts [dict create -port "" -host 127.0.0.1 -mode partial -count 100 \
    -interval 1000 -duration 20000]
foreach {k v} $argv {
    if {![dict exists $opts $k]} {
	puts stderr "hostile-slow.tcl: unknown option $k"
	exit 2
    }
    dict set opts $k $v
}
array set cfg $opts
if {$cfg(-port) eq "" || $cfg(-mode) ni {partial slowloris}} {
    puts stderr "usage: hostile-slow.tcl -port P ?-mode partial|slowloris? ?option value ...?"
    exit 2
}

set opened 0		;# connections opened so far
set established 0	;# ... of which connected
set closed 0		;# ... of which the listener ended
set ready 0
array set conns {}	;# open connections

proc word {n} {
    set s ""
    for {set i 0} {$i < $n} {incr i} {
	append s [string index abcdefghijklmnopqrstuvwxyz0123456789 \
	    [expr {int(rand() * 36)}]]
    }
    return $s
}

proc openOne {} {
    incr ::opened
    if {[catch {socket -async $::cfg(-host) $::cfg(-port)} s]} {
	return
    }
    fconfigure $s -blocking 0 -translation binary -buffering none
    fileevent $s writable [list connected $s]
}

proc connected {s} {
    fileevent $s writable {}
    if {[catch {fconfigure $s -error} err] || $err ne ""} {
	catch {close $s}
	return
    }
    set ::conns($s) 1
    incr ::established
    if {[catch {
	puts -nonewline $s "GET /?code=slow-[word 8]&state=[word 22] HTTP/1.1\r\nHost: localhost:$::cfg(-port)\r\nUser-Agent: Mozilla/5.0 (slow)\r\nAccept: */*\r\n"
    }]} {
	gone $s
	return
    }
    fileevent $s readable [list readable $s]
    if {!$::ready && $::established >= $::cfg(-count)} {
	set ::ready 1
	puts "ready $::established"
	flush stdout
    }
}

proc readable {s} {
    if {[catch {read $s} data] || [eof $s]} {
	gone $s
    }
}

proc gone {s} {
    catch {close $s}
    if {[info exists ::conns($s)]} {
	unset ::conns($s)
	incr ::closed
	if {![info exists ::reporting]} {
	    set ::reporting [after 50 report]
	}
    }
}

proc report {} {
    unset ::reporting
    catch {
	puts "closed $::closed"
	flush stdout
    }
}

proc tick {} {
    foreach s [array names ::conns] {
	if {[catch {puts -nonewline $s "X-[word 6]: [word 12]\r\n"}]} {
	    gone $s
	}
    }
    for {set n [array size ::conns]} {$n < $::cfg(-count)} {incr n} {
	openOne
    }
    after $::cfg(-interval) tick
}

proc finish {} {
    catch {
	puts "closed $::closed"
	flush stdout
    }
    exit 0
}

fconfigure stdin -blocking 0
fileevent stdin readable {
    if {[catch {read stdin}] || [eof stdin]} finish
}
after $cfg(-duration) finish
for {set i 0} {$i < $cfg(-count)} {incr i} {
    openOne
}
if {$cfg(-mode) eq "slowloris"} {
    after $cfg(-interval) tick
}
vwait forever
