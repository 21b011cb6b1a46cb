# all.tcl --
#
#	Runs every tests/*.test file in its own tclsh (so that a crash in
#	one cannot hide the others), adds up tcltest's counts, prints one
#	closing line "N passed, N failed, N skipped" and exits 1 when any
#	test failed or any file did not finish cleanly.
#
#	Options: -file PATTERNS and -notfile PATTERNS choose files (glob
#	patterns, space separated); every other tcltest option (-match,
#	-skip, -verbose, -constraints, ...) is handed to each file.
#	TTOAUTH2_TEST_TIMEOUT (seconds, default 900) bounds each file.

set testsDir [file dirname [file normalize [info script]]]

set filePatterns {*.test}
set notFilePatterns {}
set passArgs {}
foreach {option value} $argv {
    switch -- $option {
	-file    {set filePatterns $value}
	-notfile {set notFilePatterns $value}
	default  {lappend passArgs $option $value}
    }
}

set files {}
foreach pattern $filePatterns {
    foreach f [glob -nocomplain -directory $testsDir -- $pattern] {
	set skip 0
	foreach np $notFilePatterns {
	    if {[string match $np [file tail $f]]} {set skip 1}
	}
	if {!$skip && $f ni $files} {lappend files $f}
    }
}
set files [lsort $files]

set shell [info nameofexecutable]
if {[info exists env(TTOAUTH2_TCLSH)] && $env(TTOAUTH2_TCLSH) ne ""} {
    set shell $env(TTOAUTH2_TCLSH)
}
set limit 900
if {[info exists env(TTOAUTH2_TEST_TIMEOUT)]} {
    set limit $env(TTOAUTH2_TEST_TIMEOUT)
}

array set total {Total 0 Passed 0 Skipped 0 Failed 0}
set badFiles {}
set started [clock seconds]

proc readLine {chan} {
    global summary
    if {[gets $chan line] < 0} {
	if {[eof $chan]} {
	    fconfigure $chan -blocking 1
	    set summary(status) 0
	    if {[catch {close $chan} msg opts]} {
		set summary(status) [lindex [dict get $opts -errorcode] 0]
		if {$summary(status) eq "CHILDSTATUS"} {
		    set summary(status) "exit [lindex [dict get $opts -errorcode] 2]"
		} elseif {$summary(status) eq "CHILDKILLED"} {
		    set summary(status) "killed by [lindex [dict get $opts -errorcode] 2]"
		} else {
		    # output on stderr only (e.g. a sanitizer report)
		    puts $msg
		    set summary(status) "wrote to stderr"
		}
	    }
	    set summary(done) 1
	}
	return
    }
    if {[regexp {^([^:]+):\tTotal\t(\d+)\tPassed\t(\d+)\tSkipped\t(\d+)\tFailed\t(\d+)} \
	    $line -> name t p s f]} {
	set summary(counts) [list $t $p $s $f]
    }
    puts $line
}

foreach file $files {
    puts "==== [file tail $file]"
    flush stdout
    array unset summary
    set summary(done) 0
    set chan [open |[list $shell $file {*}$passArgs 2>@1] r]
    fconfigure $chan -blocking 0 -buffering line
    fileevent $chan readable [list readLine $chan]
    set timer [after [expr {$limit * 1000}] {set summary(done) timeout}]
    vwait summary(done)
    after cancel $timer
    if {$summary(done) eq "timeout"} {
	foreach p [pid $chan] {
	    if {$tcl_platform(platform) eq "windows"} {
		catch {exec taskkill /F /T /PID $p}
	    } else {
		catch {exec kill -9 $p}
	    }
	}
	catch {close $chan}
	puts "==== [file tail $file] did not finish within $limit s"
	lappend badFiles "[file tail $file] (timeout)"
	incr total(Failed)
	continue
    }
    if {![info exists summary(counts)]} {
	puts "==== [file tail $file] ended without test totals ($summary(status))"
	lappend badFiles "[file tail $file] ($summary(status))"
	incr total(Failed)
	continue
    }
    lassign $summary(counts) t p s f
    incr total(Total) $t
    incr total(Passed) $p
    incr total(Skipped) $s
    incr total(Failed) $f
    if {$f > 0} {
	lappend badFiles [file tail $file]
    } elseif {$summary(status) ne "0"} {
	puts "==== [file tail $file] exited abnormally ($summary(status))"
	lappend badFiles "[file tail $file] ($summary(status))"
	incr total(Failed)
    }
}

puts ""
puts "all.tcl: [llength $files] files, [expr {[clock seconds] - $started}] s"
if {[llength $badFiles]} {
    puts "Files with failures: [join $badFiles {, }]"
}
puts "$total(Passed) passed, $total(Failed) failed, $total(Skipped) skipped"
exit [expr {$total(Failed) > 0 || [llength $files] == 0}]
