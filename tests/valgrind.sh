#!/bin/sh
# valgrind.sh -- runs test files under valgrind memcheck (make valgrind).
#
#   sh tests/valgrind.sh TCLSH SRCDIR FILE... [-- TESTFLAGS...]
#
# Each file runs in its own valgrinded tclsh (child processes such as the
# sandbox server are not traced: they are not our code).  A file fails if
# valgrind reports an error (invalid read/write, uninitialised use,
# definitely lost memory) or a test fails.  Prints the valgrind verdict
# per file and a closing "N passed, N failed" over the test counts.
set -u
tclsh=$1; srcdir=$2; shift 2
files=""
while [ $# -gt 0 ] && [ "$1" != "--" ]; do files="$files $1"; shift; done
[ "${1:-}" = "--" ] && shift
passed=0; failed=0; bad=0
for f in $files; do
    log=valgrind-$(basename "$f" .test).log
    TTOAUTH2_VALGRIND=1 TTOAUTH2_SLOW=${TTOAUTH2_SLOW:-15} \
    valgrind --quiet --error-exitcode=99 --leak-check=full \
        --errors-for-leak-kinds=definite --show-leak-kinds=definite \
        --suppressions="$srcdir/tests/valgrind.supp" \
        "$tclsh" "$srcdir/tests/$f" "$@" > "$log" 2>&1
    rc=$?
    counts=$(grep -E "^[^:]+:	Total	" "$log" | tail -1)
    p=$(echo "$counts" | awk -F'\t' '{print $5}')
    n=$(echo "$counts" | awk -F'\t' '{print $9}')
    if [ -z "$counts" ]; then p=0; n=1; fi
    passed=$((passed + p)); failed=$((failed + n))
    if [ "$rc" -ne 0 ] || [ "$n" -ne 0 ]; then
        bad=1
        echo "==== valgrind $f: FAILED (exit $rc, $n test failures); see $log"
        grep -E "^==[0-9]+==|FAILED" "$log" | head -40
    else
        echo "==== valgrind $f: clean ($p tests passed)"
    fi
done
echo "valgrind: $passed passed, $failed failed"
exit $bad
