#!/bin/sh
# tests/fuzz/run.sh -- build the libFuzzer harnesses, fuzz each target for
# FUZZ_SECONDS, then replay tests/fuzz/regressions/.  See README.md.
#
#   sh tests/fuzz/run.sh                 all targets, FUZZ_SECONDS (60) each
#   sh tests/fuzz/run.sh json token      only these targets
#
# Environment:
#   FUZZ_SECONDS=n        seconds per target (default 60; 0: no fuzzing,
#                         only build and replay the regressions)
#   FUZZ_BUILD_ONLY=1     build, nothing else
#   FUZZ_CC=clang         compiler (clang with libFuzzer: libclang-rt-dev)
#   FUZZ_KEEP_WORK=1      keep growing build/work/<target> between runs
#                         instead of starting from a fresh copy of corpus/
#   FUZZ_ARGS="..."       extra libFuzzer options for the fuzzing runs
#   TTO_FUZZ_SKIP_KNOWN=1 steer around reported, unfixed bugs (fuzzing
#                         runs only; the regression replay never does)
#
# Exit status: 0 when every run and every regression replay passed.

set -u

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build="$here/build"
CC=${FUZZ_CC:-clang}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_ARGS=${FUZZ_ARGS:-}
ALL_TARGETS="http_head query json token"
targets=${*:-$ALL_TARGETS}

# max_len per target: a request head (the listener reads at most 16 KiB,
# browsers send < 2 KiB), a query string, a JSON text, a token response.
max_len() {
    case $1 in
    http_head)	echo 4096 ;;
    query)	echo 2048 ;;
    json)	echo 4096 ;;
    token)	echo 4096 ;;
    *)		echo 4096 ;;
    esac
}

for t in $targets; do
    case " $ALL_TARGETS " in
    *" $t "*) ;;
    *) echo "run.sh: unknown target \"$t\" (targets: $ALL_TARGETS)" >&2; exit 2 ;;
    esac
done

# ---- build -------------------------------------------------------------

# ckalloc & co. of the extension and the harnesses go to malloc (see
# fuzz_common.h), so that ASan/LSan see ttoauth2's own buffers exactly.
ALLOC_DEFS="-DTcl_Alloc=TtoFuzzAlloc -DTcl_Free=TtoFuzzFree \
 -DTcl_Realloc=TtoFuzzRealloc -DTcl_AttemptAlloc=TtoFuzzAttemptAlloc \
 -DTcl_AttemptRealloc=TtoFuzzAttemptRealloc"
# The quotes around 1.0 are meant to reach the compiler (a C string).
# shellcheck disable=SC2089,SC2090
DEFS="-DTCL_THREADS=1 -D_GNU_SOURCE -DPACKAGE_VERSION=\"1.0\" $ALLOC_DEFS"
INCS="-I$top/generic -I$here -I/usr/include/tcl8.6 -I/usr/include/cjson"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all"
CFLAGS="-g -O1 -fno-omit-frame-pointer -Wall -Wno-unused-function $SAN"
LIBS="-ltcl8.6 -lcjson -lcurl -lcrypto"
SOURCES="ttoauth2Url ttoauth2Http ttoauth2Json ttoauth2Token ttoauth2Provider"

build() {
    mkdir -p "$build/obj" || return 1
    objs=""
    for s in $SOURCES; do
	o="$build/obj/$s.o"
	# shellcheck disable=SC2086,SC2090
	$CC $CFLAGS -fsanitize=fuzzer-no-link $DEFS $INCS \
	    -c "$top/generic/$s.c" -o "$o" || return 1
	objs="$objs $o"
    done
    # shellcheck disable=SC2086
    $CC $CFLAGS -c "$here/fuzz_alloc.c" -o "$build/obj/fuzz_alloc.o" \
	|| return 1
    for t in $targets; do
	# shellcheck disable=SC2086,SC2090
	$CC $CFLAGS -fsanitize=fuzzer $DEFS $INCS "$here/fuzz_$t.c" $objs \
	    "$build/obj/fuzz_alloc.o" $LIBS -o "$build/fuzz_$t" || return 1
    done
}

echo "== building fuzzers into $build" \
    "(sources: $(git -C "$top" describe --always --dirty 2>/dev/null || echo '?'))"
if ! build; then
    echo "run.sh: build failed (needs clang with libFuzzer, tcl8.6-dev," \
	"libcjson-dev, libcurl-dev, libssl-dev)" >&2
    exit 2
fi
if [ "${FUZZ_BUILD_ONLY:-0}" != 0 ]; then
    for t in $targets; do echo "built $build/fuzz_$t"; done
    exit 0
fi

# ---- fuzz --------------------------------------------------------------

failed=0
total=0
summary=""

if [ "$FUZZ_SECONDS" -gt 0 ] 2>/dev/null; then
    for t in $targets; do
	work="$build/work/$t"
	log="$build/fuzz_$t.log"
	if [ "${FUZZ_KEEP_WORK:-0}" = 0 ] || [ ! -d "$work" ]; then
	    rm -rf "$work"
	    mkdir -p "$work"
	    if [ -d "$here/corpus/$t" ]; then
		cp "$here/corpus/$t"/* "$work"/ 2>/dev/null
	    fi
	fi
	dict=""
	if [ -f "$here/dict/$t.dict" ]; then
	    dict="-dict=$here/dict/$t.dict"
	fi
	echo "== fuzzing $t for ${FUZZ_SECONDS}s (max_len $(max_len "$t"))"
	start=$(date +%s)
	# shellcheck disable=SC2086,SC2090
	"$build/fuzz_$t" -max_len="$(max_len "$t")" \
	    -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
	    -print_final_stats=1 -artifact_prefix="$build/crash-$t-" \
	    $dict $FUZZ_ARGS "$work" >"$log" 2>&1
	rc=$?
	secs=$(( $(date +%s) - start ))
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	execs=${execs:-0}
	total=$((total + execs))
	cov=$(grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE)' "$log" | tail -1 \
	    | sed -n 's/.*\(cov: [0-9]*\).*\(ft: [0-9]*\).*/\1 \2/p')
	if [ $rc -ne 0 ]; then
	    failed=1
	    line="FAIL  $t: exit $rc after $execs execs in ${secs}s; log $log"
	    echo "$line"
	    grep -E 'ERROR|invariant|SUMMARY|Test unit written|runtime error' \
		"$log" | head -20
	else
	    rate=0
	    [ "$secs" -gt 0 ] && rate=$((execs / secs))
	    line="ok    $t: $execs execs in ${secs}s ($rate/s; $cov)"
	    echo "$line"
	fi
	summary="$summary
$line"
    done
fi

# ---- replay the regressions (never with TTO_FUZZ_SKIP_KNOWN) ------------

nreg=0
for t in $targets; do
    dir="$here/regressions/$t"
    [ -d "$dir" ] || continue
    for f in "$dir"/*; do
	[ -f "$f" ] || continue
	nreg=$((nreg + 1))
	if ! env -u TTO_FUZZ_SKIP_KNOWN "$build/fuzz_$t" -timeout=10 \
		-rss_limit_mb=2048 "$f" >"$build/replay.log" 2>&1; then
	    failed=1
	    line="FAIL  regression $t/$(basename "$f")"
	    echo "$line"
	    grep -E 'ERROR|invariant|SUMMARY|runtime error|timeout' \
		"$build/replay.log" | head -10
	    summary="$summary
$line"
	fi
    done
done

echo "== summary"
[ -n "$summary" ] && echo "$summary" | sed '/^$/d'
echo "regressions replayed: $nreg"
echo "total: $total executions"
if [ $failed -ne 0 ]; then
    echo "FUZZING FAILED (crash artifacts: $build/crash-*)"
    exit 1
fi
echo "all fuzz targets passed"
exit 0
