# holder.tcl --
#
#	A browser that takes its page and then keeps the connection open, for
#	the tests of the listener's graceful close (flow.test, section 10).
#	Runs as a child process so that it keeps going while the test's own
#	interpreter is busy.
#
#   tclsh tests/holder.tcl HOST PORT TARGET
#	Connects to HOST:PORT, sends "GET TARGET HTTP/1.1", reads the answer
#	to its end, prints "page STATUS" on stdout, and then writes one byte
#	every 100 ms (what a browser sending more would do; errors ignored)
#	until a line "close" or the end of its standard input: then it closes
#	the connection, prints "closed" and exits.  It exits by itself after
#	30 s whatever happens.

package require Tcl 8.6-

proc ::Main {host port target} {
    after 30000 {exit 3}
    set s [socket $host $port]
    fconfigure $s -translation binary -buffering none
    puts -nonewline $s "GET $target HTTP/1.1\r\nHost: $host:$port\r\n\r\n"
    set page [read $s]
    regexp {^HTTP/1\.1 (\d+)} $page -> status
    fconfigure stdout -buffering line
    puts "page [expr {[info exists status] ? $status : 0}]"
    fconfigure $s -blocking 0
    fileevent stdin readable [list ::Stdin $s]
    ::Tick $s
    vwait ::forever
}

proc ::Tick {s} {
    catch {puts -nonewline $s x}
    after 100 [list ::Tick $s]
}

proc ::Stdin {s} {
    if {[gets stdin line] < 0 || $line eq "close"} {
	catch {close $s}
	puts closed
	exit 0
    }
}

::Main {*}$argv
