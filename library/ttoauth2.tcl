# ttoauth2.tcl --
#
#	The Tcl part of the ttoauth2 package, sourced by pkgIndex.tcl right
#	after the shared library is loaded.  It opens a URL in the user's
#	browser: the object's launchBrowser method calls
#	::ttoauth2::LaunchBrowser.  Starting a program is what Tcl's exec
#	already does on every platform, so it is done here, not in C.
#
#	Which program runs (see -browser in doc/ttoauth2.n):
#	  1. -browser, a list: the program and its first arguments;
#	  2. else $env(BROWSER): commands separated by ':' (';' on Windows),
#	     each a Tcl list, tried in order until one's program exists;
#	  3. else the platform's opener: cmd.exe's start on Windows, open on
#	     macOS, xdg-open elsewhere -- where nothing can show a page
#	     (neither DISPLAY nor WAYLAND_DISPLAY set) {TTOAUTH2 BROWSER
#	     NONE} is raised instead, so that the script prints the URL.
#	In the words of 1 and 2, %s is replaced by the URL and %% by %; when
#	no word holds %s, the URL is appended as one more argument.
#
#	The program runs detached: launchBrowser does not wait for it, it
#	has none of our stdin, stdout and stderr (/dev/null on Unix; on
#	Windows no console and none of our handles), and on Unix it is
#	started through "sh -c 'prog args &'", so that it is a child of the
#	(at once exiting) shell, never of this process: no zombie is left,
#	whoever reaps children or not (see Spawn).

namespace eval ::ttoauth2 {
    # The opener used when neither -browser nor BROWSER names a program:
    # "windows", "macos" or "xdg".  A variable so that the tests can
    # check each platform's choice on one machine.
    variable opener [expr {
	$::tcl_platform(platform) eq "windows" ? "windows"
	: $::tcl_platform(os) eq "Darwin" ? "macos" : "xdg"}]

    # The environment variable that carries the URL to cmd.exe (see
    # BrowserOpener).
    variable urlEnv TTOAUTH2_BROWSER_URL
}

# ::ttoauth2::LaunchBrowser --
#
#	Opens url with prefix (the object's -browser), $env(BROWSER) or the
#	platform's opener, as described at the top of this file.
#
# Results:
#	The empty string, at once.  Errors: {TTOAUTH2 BROWSER URL} (not an
#	http(s) URL), {TTOAUTH2 BROWSER NONE} (nothing can show a page),
#	{TTOAUTH2 BROWSER program errno} (the program cannot be started).
#	No message holds the URL.
#
# Side effects:
#	Starts a program.

proc ::ttoauth2::LaunchBrowser {prefix url} {
    variable opener
    variable urlEnv

    if {![regexp {^https?://} $url]} {
	return -code error -errorcode {TTOAUTH2 BROWSER URL} \
	    "launchBrowser needs an https:// or http:// URL"
    }
    set viaEnv 0
    if {[llength $prefix] > 0} {
	set commands [list $prefix]
    } elseif {[llength [set commands [EnvBrowsers]]] == 0} {
	lassign [BrowserOpener $opener $url] command viaEnv
	set commands [list $command]
	if {$viaEnv} {
	    set url [WindowsSafeUrl $url]
	}
    }

    # The first command whose program exists runs; if none does, the
    # first one's reason is reported.
    set failure {}
    foreach command $commands {
	set program [lindex $command 0]
	lassign [FindProgram $program] path errno
	if {$path eq ""} {
	    if {$failure eq ""} {
		set failure [list $program $errno]
	    }
	    continue
	}
	if {$viaEnv} {
	    set argv [lreplace $command 0 0 $path]
	} else {
	    set argv [lreplace [Substitute $command $url] 0 0 $path]
	}
	if {$viaEnv} {
	    set saved [array get ::env $urlEnv]
	    set ::env($urlEnv) $url
	}
	try {
	    Spawn $argv
	} on error {msg opts} {
	    set errno EIO
	    set code [dict get $opts -errorcode]
	    if {[lindex $code 0] eq "POSIX"} {
		set errno [lindex $code 1]
	    }
	    set failure [list $program $errno]
	    break
	} finally {
	    if {$viaEnv} {
		unset -nocomplain ::env($urlEnv)
		array set ::env $saved
	    }
	}
	return
    }
    lassign $failure program errno
    set reasons {
	ENOENT "no such file or directory" EACCES "permission denied"
    }
    if {[dict exists $reasons $errno]} {
	set reason [dict get $reasons $errno]
    } else {
	set reason "cannot be started ($errno)"
    }
    return -code error -errorcode [list TTOAUTH2 BROWSER $program $errno] \
	"cannot launch the browser \"$program\": $reason"
}

# ::ttoauth2::EnvBrowsers --
#
#	The commands of $env(BROWSER): entries separated by the platform's
#	path separator, each a Tcl list (an entry that is not one is taken
#	as a program name).  Empty entries are skipped.
#
# Results:
#	A list of commands, empty when BROWSER is unset or empty.

proc ::ttoauth2::EnvBrowsers {} {
    if {![info exists ::env(BROWSER)]} {
	return {}
    }
    set commands {}
    foreach entry [split $::env(BROWSER) $::tcl_platform(pathSeparator)] {
	if {[catch {llength $entry} n]} {
	    set entry [list $entry]
	} elseif {$n == 0} {
	    continue
	}
	lappend commands $entry
    }
    return $commands
}

# ::ttoauth2::BrowserOpener --
#
#	The platform's way to open a URL in the default browser.
#
#	On Windows that is cmd.exe's start, and cmd.exe gives meaning to
#	&, |, ^, %, ! and quotes in its command line: a URL (which holds &
#	and %) must not be in it.  The URL is passed in an environment
#	variable instead and named as !VAR! with delayed expansion on
#	(/v:on): cmd.exe expands that after it has parsed the command line,
#	so whatever the value holds is text, and start receives the URL as
#	one word.  (/d: no AutoRun commands from the registry.)
#
# Results:
#	A list of two: the command (the URL is added as with -browser), and
#	1 when the URL goes in ::ttoauth2::urlEnv instead (Windows), else 0.
#	{TTOAUTH2 BROWSER NONE} on a Linux or BSD machine with no display.

proc ::ttoauth2::BrowserOpener {opener url} {
    variable urlEnv

    switch -- $opener {
	windows {
	    set shell cmd.exe
	    if {[info exists ::env(COMSPEC)] && $::env(COMSPEC) ne ""} {
		set shell $::env(COMSPEC)
	    }
	    return [list [list $shell /d /v:on /c start "" "!$urlEnv!"] 1]
	}
	macos {
	    return [list {open %s} 0]
	}
	default {
	    foreach var {DISPLAY WAYLAND_DISPLAY} {
		if {[info exists ::env($var)] && $::env($var) ne ""} {
		    return [list {xdg-open %s} 0]
		}
	    }
	    return -code error -errorcode {TTOAUTH2 BROWSER NONE} \
		"no browser can be shown here (neither DISPLAY nor\
		WAYLAND_DISPLAY is set): set -browser or BROWSER, or open\
		the URL on another machine"
	}
    }
}

# ::ttoauth2::WindowsSafeUrl --
#
#	The URL with every character that is not allowed in a URL (RFC 3986:
#	unreserved, reserved and %) percent-encoded as UTF-8: spaces,
#	quotes, ^ < > | \ ` { } and control characters cannot reach
#	cmd.exe's start, which splits its words at spaces and quotes.
#
# Results:
#	The URL, unchanged when it was well-formed.

proc ::ttoauth2::WindowsSafeUrl {url} {
    set out ""
    foreach c [split $url ""] {
	if {[regexp {^[-A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%]$} $c]} {
	    append out $c
	} else {
	    binary scan [encoding convertto utf-8 $c] H* hex
	    foreach {a b} [split [string toupper $hex] ""] {
		append out % $a $b
	    }
	}
    }
    return $out
}

# ::ttoauth2::Substitute --
#
#	Puts url into a command: %s in a word becomes the URL, %% becomes %;
#	when no word holds %s, the URL is appended.
#
# Results:
#	The words to run.

proc ::ttoauth2::Substitute {command url} {
    set argv {}
    set used 0
    foreach word $command {
	if {[string first %s [string map {%% {}} $word]] >= 0} {
	    set used 1
	}
	lappend argv [string map [list %% % %s $url] $word]
    }
    if {!$used} {
	lappend argv $url
    }
    return $argv
}

# ::ttoauth2::FindProgram --
#
#	Finds the file a command's program names, before anything is
#	started, so that a missing program is reported (the program itself
#	starts in a background shell, which could not tell).  A name with
#	a / is a path; another is searched in PATH.  On Windows,
#	auto_execok searches (PATH and PATHEXT, as exec does).
#	Nothing is cached: a browser installed or a PATH changed later is
#	seen.
#
# Results:
#	A list: the path and "", or "" and ENOENT (found nowhere) or EACCES
#	(found, but not an executable file).

proc ::ttoauth2::FindProgram {name} {
    if {$name eq ""} {
	return {{} ENOENT}
    }
    if {$::tcl_platform(platform) eq "windows"} {
	# auto_execok searches PATH with PATHEXT as exec would; a program
	# found nowhere lets BROWSER's next entry be tried.  (auto_execok
	# caches its answers: forget this one first.)
	unset -nocomplain ::auto_execs($name)
	set found [auto_execok $name]
	if {$found eq ""} {
	    return {{} ENOENT}
	}
	# The file, with its extension, which SpawnDetached needs (a
	# cmd.exe builtin, given as several words, keeps its name).
	if {[llength $found] == 1} {
	    return [list [lindex $found 0] {}]
	}
	return [list $name {}]
    }
    if {[string first / $name] >= 0} {
	set candidates [list [file normalize $name]]
    } else {
	set candidates {}
	set search /usr/bin:/bin
	if {[info exists ::env(PATH)]} {
	    set search $::env(PATH)
	}
	foreach dir [split $search :] {
	    if {$dir eq ""} {
		set dir .
	    }
	    lappend candidates $dir/$name
	}
    }
    set errno ENOENT
    foreach path $candidates {
	if {[catch {file isfile $path} isFile]} {
	    continue
	}
	if {$isFile && [file executable $path]} {
	    return [list $path {}]
	}
	if {$isFile || [file exists $path]} {
	    set errno EACCES
	}
    }
    return [list {} $errno]
}

# ::ttoauth2::Spawn --
#
#	Starts argv detached and returns at once.
#
# Results:
#	None; an error of exec when the program cannot be started.
#
# Side effects:
#	On Windows, ::ttoauth2::SpawnDetached (win/ttoauth2WinSys.c) starts
#	it with CreateProcessW without handle inheritance, where exec ... &
#	would hand it every inheritable handle we have (our stdout's pipe
#	among them, so that whoever reads that pipe to its end would wait
#	for the browser); a batch file, which SpawnDetached refuses, still
#	goes through exec, whose quoting knows cmd.exe's rules.
#	On Unix it gets stdin, stdout and stderr on the null device:
#	a shell starts it in the background and exits, so the
#	program's parent is init (or a subreaper), not this process.  Tcl's
#	own descriptors are close-on-exec; the shell also closes 3 to 9
#	(all a POSIX shell can name), where a library that does not set
#	close-on-exec usually has its few: libcurl before 8.17 (its
#	connections and its multi handle's wakeup socketpair), so that the
#	browser does not hold our connections open.

proc ::ttoauth2::Spawn {argv} {
    if {$::tcl_platform(platform) eq "windows"} {
	if {[string tolower [file extension [lindex $argv 0]]] in {.bat .cmd}} {
	    exec {*}$argv <NUL >NUL 2>NUL &
	} else {
	    SpawnDetached $argv
	}
    } else {
	exec /bin/sh -c {
	    exec 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-
	    "$@" </dev/null >/dev/null 2>&1 &
	} ttoauth2-browser {*}$argv </dev/null
    }
    return
}
