#!/bin/sh
# tsan.sh -- ThreadSanitizer run of the threaded tests.
#
#   sh tests/tsan.sh [TEST FILES...]      (default: object flow store stress)
#
# TSan must see every lock, and Debian's libtcl is not instrumented (TSan
# then reports each Tcl_MutexUnlock as an unlock of an unlocked mutex).
# So this builds Tcl 8.6 from Debian's source package with
# -fsanitize=thread into $TSAN_DIR (default /tmp/ttoauth2-tsan), builds
# ttoauth2 against it, and runs the test files there.  Needs deb-src
# access to Debian's archive (it adds a deb-src entry for the run) and
# about five minutes.  Exit status non-zero on any TSan report or failure.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
dir=${TSAN_DIR:-/tmp/ttoauth2-tsan}
files=${*:-object.test flow.test store.test stress.test}
mkdir -p "$dir"
if [ ! -x "$dir/tcl/bin/tclsh8.6" ]; then
    (cd "$dir" && rm -rf tclsrc && mkdir tclsrc && cd tclsrc &&
     if ! apt-get source -qq --download-only tcl8.6 >/dev/null 2>&1; then
         sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
             > /etc/apt/sources.list.d/ttoauth2-src.sources
         apt-get update -qq
         apt-get source -qq --download-only tcl8.6 >/dev/null
         rm -f /etc/apt/sources.list.d/ttoauth2-src.sources
     fi
     tar xzf tcl8.6_*.orig.tar.gz && cd tcl8.6*/unix &&
     CC=gcc CFLAGS="-fsanitize=thread -g -O1" LDFLAGS="-fsanitize=thread" \
         ./configure -q --prefix="$dir/tcl" --enable-threads &&
     make -j2 -s >/dev/null &&
     make -s install-binaries install-libraries install-headers >/dev/null)
fi
rm -rf "$dir/build" && mkdir "$dir/build" && cd "$dir/build"
"$src/configure" -q --with-tcl="$dir/tcl/lib" --with-tclsh="$dir/tcl/bin/tclsh8.6" \
    --enable-sanitize=thread
make -s
make -s tclsh-san
LD_LIBRARY_PATH="$dir/tcl/lib" TCLLIBPATH="$dir/build" TTOAUTH2_SRCDIR="$src" \
TTOAUTH2_TCLSH="$dir/build/tclsh-san" TTOAUTH2_SLOW=4 \
TSAN_OPTIONS="halt_on_error=0:exitcode=66:suppressions=$src/tests/tsan.supp" \
    ./tclsh-san "$src/tests/all.tcl" -file "$files" > tsan.log 2>&1 && rc=0 || rc=$?
cat tsan.log
if grep -q "WARNING: ThreadSanitizer" tsan.log; then
    echo "tsan: ThreadSanitizer reported races (see $dir/build/tsan.log)"
    exit 1
fi
exit $rc
