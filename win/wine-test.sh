#!/bin/sh
# win/wine-test.sh PREFIX [all.tcl options] --
#
#	Runs the test suite (tests/all.tcl) with the Windows tclsh that
#	win/cross-build.sh installed in PREFIX, under Wine, and ends with the
#	suite's line "N passed, N failed, N skipped".  Exits non-zero when a
#	test failed.  Options after PREFIX go to all.tcl, e.g.
#	    win/wine-test.sh P -file 'store.test json.test' -verbose bpe
#
#	Environment:
#	    TTOAUTH2_WIN_CACHE	the cache of win/cross-build.sh (default
#				/var/cache/ttoauth2/win); the Wine prefix
#				lives in its wine/ folder and is made on
#				the first run (about 10 s).
#	    TTOAUTH2_WINE_PREFIX  the Wine prefix to run in (default: the
#				cache's wine/ folder).  Runs that may
#				overlap need prefixes of their own: at its
#				end a run waits for every process of its
#				prefix to end (a minute at most), then
#				kills what is left.
#	    TTOAUTH2_SLOW	as for make test: scales the tests' time
#				bounds (default 2 here: starting a program
#				under Wine takes a good part of a second).
#	    TTOAUTH2_TEST_TIMEOUT  bound per test file in seconds (default
#				300 here).

set -eu

if [ $# -lt 1 ] || [ -z "$1" ]; then
    echo "usage: $0 PREFIX [all.tcl options]" >&2
    exit 2
fi
PREFIX=$(cd "$1" && pwd)
shift
SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${TTOAUTH2_WIN_CACHE:-/var/cache/ttoauth2/win}
TCLSH=$PREFIX/bin/tclsh86.exe

if [ ! -f "$TCLSH" ]; then
    echo "wine-test: no $TCLSH (run win/cross-build.sh $PREFIX first)" >&2
    exit 2
fi

. "$SRCDIR/win/wine-prefix.sh"
export WINEPREFIX="${TTOAUTH2_WINE_PREFIX:-$CACHE/wine}"
export WINEDEBUG=-all
export WINEDLLOVERRIDES="mscoree=d;mshtml=d"
unset DISPLAY WAYLAND_DISPLAY || true
tto_wine_prefix "$WINEPREFIX"

# Windows paths for the Windows tclsh (Wine maps / to Z:).
winpath() {
    winepath -w "$1" 2>/dev/null
}

export TTOAUTH2_SRCDIR="$(winpath "$SRCDIR")"
export TTOAUTH2_SLOW="${TTOAUTH2_SLOW:-2}"
# A file that hangs ends after 5 minutes (all.tcl kills it and counts a
# failure), so a hang cannot hold a CI run for all.tcl's default 15.
export TTOAUTH2_TEST_TIMEOUT="${TTOAUTH2_TEST_TIMEOUT:-300}"
unset TTOAUTH2_TCLSH TMPDIR || true

# The tests use tcllib's json (pure Tcl): Debian's tcllib, as the Linux
# suite does, found through the host's tclsh.
TCLLIBPATH=""
if command -v tclsh >/dev/null 2>&1; then
    tcllib=$(echo 'if {![catch {package require json}]} {
	    puts [file dirname [file dirname [lindex [package ifneeded json [package present json]] end]]]
	}' | tclsh 2>/dev/null || true)
    if [ -n "$tcllib" ] && [ -d "$tcllib" ]; then
	TCLLIBPATH="{$(winpath "$tcllib" | tr '\\' /)}"
    fi
fi
export TCLLIBPATH

# The RFC 6749 test server runs on Node.js, a Linux program Wine's tclsh
# cannot start: the host's tclsh runs a relay (win/node-relay.tcl) that
# starts one server per connection, and rfc6749.test connects to it
# (TTOAUTH2_NODE_RELAY).  Without node or the server's npm packages
# (cd tests && npm ci) those tests are skipped, as on Linux.
relay_pid=""
if command -v node >/dev/null 2>&1 && command -v tclsh >/dev/null 2>&1 &&
	[ -f "$SRCDIR/tests/node_modules/oauth2-mock-server/package.json" ]; then
    coproc RELAY { exec tclsh "$SRCDIR/win/node-relay.tcl" "$(command -v node)" \
	"$SRCDIR/tests/rfc6749-server.mjs"; }
    relay_pid=$RELAY_PID
    if read -r -t 20 word port <&"${RELAY[0]}" && [ "$word" = relay ]; then
	export TTOAUTH2_NODE_RELAY=$port
    else
	echo "wine-test: the node relay did not start" >&2
    fi
fi

# The suite runs from a script file: Wine's tclsh reads no script from a
# pipe on stdin.  Afterwards, Wine's processes of this prefix get a minute
# to end (a browser a test started may still be closing), then are killed.
rc=0
wine "$TCLSH" "$(winpath "$SRCDIR/tests/all.tcl")" "$@" || rc=$?
if [ -n "$relay_pid" ]; then
    exec {RELAY[1]}>&-			# its stdin: the relay ends
    wait "$relay_pid" 2>/dev/null || true
fi
timeout 60 wineserver -w || wineserver -k || true
exit $rc
