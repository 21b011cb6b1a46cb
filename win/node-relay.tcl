# node-relay.tcl --
#
#	Lets the Windows suite under Wine use the RFC 6749 test server
#	(tests/rfc6749-server.mjs), which runs on Node.js: Wine's tclsh
#	cannot start a Linux program, so win/wine-test.sh runs this script
#	with the host's tclsh.  It listens on 127.0.0.1 (Wine shares the
#	host's loopback), prints "relay PORT" on stdout and, for each
#	connection, starts one server process and copies bytes both ways
#	between the connection and the server's stdin/stdout until either
#	side ends: the test's socket then is what the pipe to the server is
#	on Linux.  It starts nothing else: the program and its script are
#	fixed, and a connection chooses nothing.  It ends when its
#	stdin closes (wine-test.sh holds it open while the suite runs).
#
#	    tclsh win/node-relay.tcl NODE SCRIPT

lassign $argv node script
if {$node eq "" || ![file exists $script]} {
    puts stderr "usage: tclsh node-relay.tcl NODE SCRIPT"
    exit 2
}

# Copies what arrives on from to to; at the end of from, ends the pair.
proc Relay {from to pair} {
    if {[catch {set data [read $from]}] || [eof $from]} {
	Finish $pair
	return
    }
    if {[catch {puts -nonewline $to $data; flush $to}]} {
	Finish $pair
    }
}

# Ends a pair: closes the server's stdin (it exits at end of input) and
# the connection.
proc Finish {pair} {
    global pairs
    if {![info exists pairs($pair)]} {
	return
    }
    lassign $pairs($pair) sock pipe
    unset pairs($pair)
    catch {close $sock}
    catch {chan close $pipe write}
    # The server exits at end of input; its stdout is read to the end so
    # that it never blocks on a full pipe, then closed.
    fconfigure $pipe -blocking 0
    fileevent $pipe readable [list Drain $pipe]
}

proc Drain {pipe} {
    if {[catch {read $pipe}] || [eof $pipe]} {
	catch {close $pipe}
    }
}

proc Accept {sock addr port} {
    global node script pairs
    if {[catch {
	open |[list $node $script --host 127.0.0.1 --port 0 --lifetime 600 \
	    2>@ stderr] r+
    } pipe]} {
	puts stderr "node-relay: $pipe"
	close $sock
	return
    }
    fconfigure $sock -blocking 0 -translation binary -buffering none
    fconfigure $pipe -blocking 0 -translation binary -buffering none
    set pairs($sock) [list $sock $pipe]
    fileevent $sock readable [list Relay $sock $pipe $sock]
    fileevent $pipe readable [list Relay $pipe $sock $sock]
}

set server [socket -server Accept -myaddr 127.0.0.1 0]
puts "relay [lindex [fconfigure $server -sockname] 2]"
flush stdout
fileevent stdin readable {
    if {[catch {read stdin}] || [eof stdin]} {
	set done 1
    }
}
fconfigure stdin -blocking 0
vwait done
foreach pair [array names pairs] {
    Finish $pair
}
close $server
