# common.tcl --
#
#	Shared setup for the ttoauth2 test files: loads tcltest and the
#	package, defines constraints for optional capabilities, and helpers
#	for temporary folders, the TikTok-shaped sandbox (a child process on
#	127.0.0.1), the scripted browser, and checking that no secret leaks.
#
#	Every server a test needs is started here on loopback and stopped by
#	the test file; every wait is bounded.

package require Tcl 8.6-
package require tcltest 2.5
namespace import -force ::tcltest::*

set ::testsDir [file dirname [file normalize [info script]]]
set ::srcDir [file dirname $::testsDir]
if {[info exists env(TTOAUTH2_SRCDIR)]} {
    set ::srcDir [file normalize $env(TTOAUTH2_SRCDIR)]
}
::tcltest::configure -testdir $::testsDir
::tcltest::configure {*}$argv

package require ttoauth2
foreach f {sandbox.tcl browser.tcl} {
    if {[file exists [file join $::testsDir $f]]} {source [file join $::testsDir $f]}
}

# The tclsh that child processes (sandbox, browser, other clients) run.
set ::tclsh [info nameofexecutable]

#----------------------------------------------------------------------
# Capabilities
#----------------------------------------------------------------------

proc canListen {host} {
    if {[catch {socket -server {apply {{c a p} {close $c}}} -myaddr $host 0} s]} {
	return 0
    }
    close $s
    return 1
}
testConstraint ipv6 [canListen ::1]
testConstraint unix [expr {$tcl_platform(platform) eq "unix"}]
testConstraint notRoot [expr {[catch {exec id -u} uid] || $uid != 0}]
# (Not on Windows: under Wine, /proc is the Linux host's, seen through Z:.)
testConstraint procfs [expr {$tcl_platform(platform) eq "unix"
    && [file isdirectory /proc/self/fd]}]
testConstraint chromium [expr {[auto_execok chromium] ne ""}]
testConstraint valgrind [info exists env(TTOAUTH2_VALGRIND)]
testConstraint notValgrind [expr {![info exists env(TTOAUTH2_VALGRIND)]}]

# Open descriptors and threads of this process (procfs).
proc fdCount {} {
    return [llength [glob -nocomplain -directory /proc/self/fd *]]
}

proc threadCount {} {
    return [llength [glob -nocomplain -directory /proc/self/task *]]
}

# How many descriptors of this process are TCP sockets whose local port
# is port (listeners and accepted connections; not clients of the port).
proc socketsOnPort {port} {
    set inodes {}
    foreach table {/proc/net/tcp /proc/net/tcp6} {
	if {[catch {readFile $table} text]} continue
	foreach line [lrange [split $text \n] 1 end] {
	    if {[llength $line] < 10} continue
	    set local [lindex $line 1]
	    if {[scan [lindex [split $local :] end] %x] == $port} {
		dict set inodes [lindex $line 9] 1
	    }
	}
    }
    set n 0
    foreach fd [glob -nocomplain -directory /proc/self/fd *] {
	if {![catch {file readlink $fd} target]
		&& [regexp {^socket:\[(\d+)\]$} $target -> inode]
		&& [dict exists $inodes $inode]} {
	    incr n
	}
    }
    return $n
}

# Listener options for a TikTok Shop flow.  TikTok sends the browser to
# the registered redirect URL, so startAuth refuses -listenport 0 with the
# tiktokshop provider; the tests give a port range instead, starting at a
# port that was free a moment ago (startAuth binds the first port of the
# range free on both loopback addresses, so a port taken meanwhile by
# another process does not matter).
proc listenPorts {{count 20}} {
    set s [socket -server {apply {{c a p} {close $c}}} -myaddr 127.0.0.1 0]
    set port [lindex [fconfigure $s -sockname] 2]
    close $s
    return [list -listenport $port \
	-listenportrangeend [expr {min($port + $count - 1, 65535)}]]
}

#----------------------------------------------------------------------
# Temporary files
#----------------------------------------------------------------------

# Temporary folders live outside the source tree, one parent per test
# process, removed by cleanTmp (each file's last line calls it).
# (On Windows: %TEMP%, which every Windows session has.)
if {[info exists env(TMPDIR)]} {
    set ::tmpBase $env(TMPDIR)
} elseif {$tcl_platform(platform) eq "windows" && [info exists env(TEMP)]} {
    set ::tmpBase [file normalize $env(TEMP)]
} else {
    set ::tmpBase /tmp
}
set ::tmpRoot [file join $::tmpBase ttoauth2-tests-[pid]]

proc tmpDir {} {
    set dir [file join $::tmpRoot [incr ::tmpCounter]]
    file delete -force $dir
    file mkdir $dir
    return $dir
}

proc cleanTmp {} {
    if {[file exists $::tmpRoot]} {
	foreach d [glob -nocomplain -directory $::tmpRoot *] {
	    catch {file attributes $d -permissions 0755}
	}
	file delete -force $::tmpRoot
    }
}

proc readFile {path} {
    set f [open $path r]
    fconfigure $f -encoding utf-8
    set data [read $f]
    close $f
    return $data
}

# Writes data as it is (LF line ends on every platform: fixtures are
# compared byte for byte with what ttoauth2 reads back).
proc writeFile {path data} {
    set f [open $path w]
    fconfigure $f -encoding utf-8 -translation lf
    puts -nonewline $f $data
    close $f
}

# A file's permission bits as four octal digits, "0600" (Tcl 8.6 reports
# them as 00600, Tcl 9 as 0o600).
proc permissions {path} {
    return [format %04o [file attributes $path -permissions]]
}

#----------------------------------------------------------------------
# Errors: [errorOf script] -> {errorcode message}, evaluated in caller.
#----------------------------------------------------------------------

proc errorOf {script} {
    if {![catch {uplevel 1 $script} msg opts]} {
	return [list NOERROR $msg]
    }
    return [list [dict get $opts -errorcode] $msg]
}

proc errorCodeOf {script} {
    return [lindex [uplevel 1 [list errorOf $script]] 0]
}

#----------------------------------------------------------------------
# Time bounds.  Under valgrind (make valgrind) or the sanitizers
# everything runs many times slower; TTOAUTH2_SLOW scales every bound a
# test waits for, so a slow build fails only on real hangs.
#----------------------------------------------------------------------

set ::slowFactor 1
if {[info exists env(TTOAUTH2_SLOW)] && [string is double -strict $env(TTOAUTH2_SLOW)]} {
    set ::slowFactor $env(TTOAUTH2_SLOW)
}
proc bound {ms} {
    return [expr {int($ms * $::slowFactor)}]
}

#----------------------------------------------------------------------
# Polling with a bound (for things that have no event to wait on)
#----------------------------------------------------------------------

proc waitUntil {condition {ms 5000}} {
    set deadline [expr {[clock milliseconds] + $ms}]
    while {![uplevel 1 [list expr $condition]]} {
	if {[clock milliseconds] > $deadline} {
	    return 0
	}
	after 10
	update
    }
    return 1
}

# vwait with a bound: returns 1 if the variable was set in time.
proc vwaitFor {varName ms} {
    set timer [after $ms [list set $varName __timeout__]]
    vwait $varName
    after cancel $timer
    return [expr {[set $varName] ne "__timeout__"}]
}

#----------------------------------------------------------------------
# Raw HTTP to the loopback listener (a browser or an attacker).
#----------------------------------------------------------------------

# Sends raw bytes to host:port, returns what came back (bounded).
proc rawRequest {host port data {ms 3000}} {
    set s [socket $host $port]
    fconfigure $s -translation binary -buffering none
    puts -nonewline $s $data
    flush $s
    set ::rawDone($s) 0
    set ::rawData($s) ""
    fconfigure $s -blocking 0
    fileevent $s readable [list apply {{s} {
	append ::rawData($s) [read $s]
	if {[eof $s]} {set ::rawDone($s) 1}
    }} $s]
    set timer [after $ms [list set ::rawDone($s) timeout]]
    vwait ::rawDone($s)
    after cancel $timer
    close $s
    set result $::rawData($s)
    unset ::rawDone($s) ::rawData($s)
    return $result
}

# The value of a response header of an http package token, "" when absent
# (the http package of Tcl 9 gives header names in lower case, 8.6's as
# the server sent them).
proc httpHeader {tok name} {
    foreach {key value} [http::meta $tok] {
	if {[string equal -nocase $key $name]} {
	    return $value
	}
    }
    return ""
}

proc httpStatus {response} {
    if {[regexp {^HTTP/1\.[01] (\d{3})} $response -> code]} {
	return $code
    }
    return ""
}

#----------------------------------------------------------------------
# Secrets: each test that handles secrets uses recognisable ones, and
# assertLeakFree checks a text for any of them.
#----------------------------------------------------------------------

set ::appKey K-app-key-0001
set ::appSecret SECRET-s3cr3t-app-secret-value

proc leaks {text {extra {}}} {
    set found {}
    foreach secret [list $::appSecret {*}$extra] {
	if {$secret ne "" && [string first $secret $text] >= 0} {
	    lappend found $secret
	}
    }
    return $found
}
