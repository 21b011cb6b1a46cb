#!/bin/bash
# tcl9-chroot.sh -- build ttoauth2 and run its whole test suite on Tcl 9.
#
#   unix/tcl9-chroot.sh ROOT
#
# Debian 12 has only Tcl 8.6.  As root, this script makes a Debian 13
# (trixie) chroot at ROOT with debootstrap -- or reuses the one a former
# run made there -- installs Tcl 9.0 and everything the build and the tests
# use, copies the current source tree into it (tracked and untracked files,
# not ignored build outputs; the source tree is only read), configures it
# out of tree with --with-tcl=/usr/lib/tcl9.0, builds it, checks that
# tclsh9.0 loads what `make install` installs (into a scratch DESTDIR) and
# runs `make test`, all as an unprivileged user.  What it mounts (proc, /dev,
# /dev/pts, a tmpfs on /dev/shm) it unmounts on the way out, also after a
# failure or an interrupt.
#
# Exit status: the test suite's (0 when every test passed); the suite's
# closing line "N passed, N failed, N skipped" is the last line printed.
# Progress goes to stdout, the package manager's output to
# ROOT/var/log/ttoauth2-apt.log.
#
# Environment:
#   TTOAUTH2_MIRROR  Debian mirror (default http://deb.debian.org/debian)
#   TESTFLAGS        passed to make test (e.g. TESTFLAGS="-file json.test")
#   CONFIGURE_FLAGS  added to configure's (e.g. --enable-sanitize=address,undefined)
#
# Timing on 2 cores: a fresh chroot takes about three minutes before the
# build (debootstrap and apt), a reused one a few seconds; then the build
# and the suite.

# The whole script is one { ... } block, so bash has read all of it before
# it runs any of it (editing the file during a run changes nothing).
{
set -u
set -o pipefail

prog=tcl9-chroot
say() { echo "$prog: $*"; }
die() { echo "$prog: $*" >&2; exit 2; }

[ $# -eq 1 ] && [ -n "$1" ] || die "usage: $0 ROOT"
[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, chroot, mount)"
for tool in debootstrap chroot mount umount flock; do
    command -v "$tool" >/dev/null 2>&1 ||
	die "$tool not found (Debian: apt-get install debootstrap)"
done

CHROOT=$(command -v chroot)
ROOT=$(realpath -m -- "$1")
case "$ROOT" in
    /) die "ROOT must not be /" ;;
esac
SRC=$(cd "$(dirname "$0")/.." && pwd -P) || die "cannot find the source tree"
[ -f "$SRC/generic/ttoauth2.c" ] || die "$SRC is not a ttoauth2 source tree"
MIRROR=${TTOAUTH2_MIRROR:-http://deb.debian.org/debian}
USER_NAME=ttoauth2
HOME_DIR=/home/$USER_NAME
started=$(date +%s)

# What the build needs, then what the tests use: Tcl's own packages (tcltest
# is part of tcl9.0), TLS tests (tcl-tls 1.8, openssl), the sandbox's json
# (tcllib), the man page check (groff), the real-browser test (chromium),
# the RFC 6749 mock server (nodejs), kill/pkill (procps), valgrind for
# make valgrind, slowhttptest for the slow-client tests and PostgreSQL's
# server for the store tests (each run makes a throwaway cluster).  The mock
# server's npm packages (pure JavaScript) come from the source tree's
# tests/node_modules, else from the host's npm (npm ci of
# tests/package-lock.json into the copy), else from the chroot's: only
# then is npm installed in it.
PACKAGES="build-essential autoconf automake pkg-config tcl9.0 tcl9.0-dev
    libcurl4-openssl-dev libcjson-dev libssl-dev
    tcl-tls tcllib openssl ca-certificates groff-base chromium nodejs
    procps valgrind slowhttptest postgresql"
if [ ! -d "$SRC/tests/node_modules/oauth2-mock-server" ] &&
	! command -v npm >/dev/null 2>&1; then
    PACKAGES="$PACKAGES npm"
fi
PACKAGES=$(echo $PACKAGES)

mkdir -p "$(dirname "$ROOT")" || exit 2
# One run at a time per ROOT.
exec 9>"$ROOT.lock" || die "cannot create $ROOT.lock"
flock -w 3600 9 || die "another run holds $ROOT.lock"

#----------------------------------------------------------------------
# Mounts, and taking them down again.
#----------------------------------------------------------------------

mounted=""

# Ends processes still running inside the chroot (servers a failed test
# left behind), which would keep the mounts busy.
kill_chroot_processes() {
    local sig=$1 p root found=1
    for p in /proc/[0-9]*; do
	root=$(readlink "$p/root" 2>/dev/null) || continue
	case "$root" in
	    "$ROOT"|"$ROOT"/*) kill "-$sig" "${p#/proc/}" 2>/dev/null; found=0 ;;
	esac
    done
    return $found
}

cleanup() {
    local m
    if kill_chroot_processes TERM; then
	sleep 1
	kill_chroot_processes KILL && sleep 1
    fi
    for m in $mounted; do
	umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null ||
	    echo "$prog: could not unmount $m" >&2
    done
    mounted=""
}

on_exit() {
    local rc=$?
    trap - EXIT INT TERM HUP
    cleanup
    exit $rc
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# mount_at TARGET ARGS... -- mounts and remembers TARGET (last mounted is
# first unmounted).  Bind mounts are made private, so nothing mounted
# below them shows up in (or vanishes from) the host's /dev.
mount_at() {
    local target=$1; shift
    mkdir -p "$target"
    mount "$@" "$target" || die "mount $* $target failed"
    mounted="$target $mounted"
    case " $* " in
	*" --bind "*) mount --make-private "$target" || die "mount --make-private $target failed" ;;
    esac
}

# Something already mounted below ROOT (a run that was killed -9)?
mounts_below_root() {
    awk -v r="$ROOT" '{ if ($5 == r || index($5, r "/") == 1) print $5 }' /proc/self/mountinfo
}

stale=$(mounts_below_root | sort -r)
for m in $stale; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
done
[ -z "$(mounts_below_root)" ] || die "cannot unmount what is mounted below $ROOT"

#----------------------------------------------------------------------
# 1. The chroot: made once, reused afterwards.  debootstrap removes
#    ROOT/debootstrap when it has finished, so its presence marks a run
#    that did not.
#----------------------------------------------------------------------

if [ -d "$ROOT/debootstrap" ]; then
    say "removing the unfinished chroot at $ROOT"
    rm -rf --one-file-system -- "$ROOT" || die "cannot remove $ROOT"
fi
if [ -e "$ROOT" ] && [ ! -x "$ROOT/usr/bin/apt-get" ]; then
    if [ -n "$(ls -A "$ROOT" 2>/dev/null)" ]; then
	die "$ROOT exists and is not a Debian chroot; remove it or choose another ROOT"
    fi
fi
if [ ! -x "$ROOT/usr/bin/apt-get" ]; then
    say "debootstrap trixie into $ROOT"
    t0=$(date +%s)
    log=$(mktemp)
    if ! debootstrap --variant=minbase trixie "$ROOT" "$MIRROR" >"$log" 2>&1; then
	tail -n 30 "$log"
	rm -f "$log"
	die "debootstrap failed"
    fi
    rm -f "$log"
    say "debootstrap done in $(( $(date +%s) - t0 )) s"
else
    say "reusing the chroot at $ROOT"
fi

# Name resolution: debootstrap writes no hosts file, so localhost would not
# resolve; resolv.conf for the package mirror.
cp -f /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
cp -f /etc/hosts "$ROOT/etc/hosts" || die "cannot copy /etc/hosts"

mount_at "$ROOT/proc" -t proc proc
mount_at "$ROOT/dev" --bind /dev
mount_at "$ROOT/dev/pts" --bind /dev/pts
mount_at "$ROOT/dev/shm" -t tmpfs -o mode=1777,nosuid,nodev tmpfs

# in_root CMD... -- runs CMD as root in the chroot with a clean environment.
in_root() {
    env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
	"$CHROOT" "$ROOT" "$@"
}

# as_user SCRIPT -- runs a shell script as the unprivileged user.
as_user() {
    env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=$HOME_DIR USER=$USER_NAME \
	LANG=C.UTF-8 TMPDIR=/tmp ${TESTFLAGS+TESTFLAGS="$TESTFLAGS"} \
	${CONFIGURE_FLAGS+CONFIGURE_FLAGS="$CONFIGURE_FLAGS"} \
	"$CHROOT" --userspec=$USER_NAME:$USER_NAME "$ROOT" /bin/sh -c "cd $HOME_DIR && $1"
}

#----------------------------------------------------------------------
# 2. Packages: installed once; ROOT/var/lib/ttoauth2-packages records what
#    was installed, so a reused chroot skips apt unless one is new.
#----------------------------------------------------------------------

stamp=$ROOT/var/lib/ttoauth2-packages
installed=" $(cat "$stamp" 2>/dev/null) "
missing=""
for p in $PACKAGES; do
    case "$installed" in
	*" $p "*) ;;
	*) missing="$missing $p" ;;
    esac
done
if [ -n "$missing" ]; then
    say "apt-get install (log: $ROOT/var/log/ttoauth2-apt.log)"
    t0=$(date +%s)
    aptlog=$ROOT/var/log/ttoauth2-apt.log
    # No daemon starts in the chroot.
    printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d"
    chmod 755 "$ROOT/usr/sbin/policy-rc.d"
    # (dpkg --configure -a finishes what an interrupted run left.)
    if ! { in_root dpkg --configure -a && in_root apt-get update &&
	   in_root apt-get install -y --no-install-recommends $PACKAGES; } \
	    >"$aptlog" 2>&1; then
	tail -n 30 "$aptlog"
	die "apt-get failed"
    fi
    in_root apt-get clean >/dev/null 2>&1
    echo $installed $missing > "$stamp"
    say "packages installed in $(( $(date +%s) - t0 )) s"
fi

# TDBC for Tcl 9.  Debian 13 builds tdbc, tdbc::postgres and the sqlite3
# package for Tcl 8.6 only.  Unstable (sid) builds tcl-tdbc and
# tcl-tdbc-postgres for both Tcls: those two packages (and only those:
# sid's priority stays below trixie's) come from sid.  tdbc::sqlite3 is
# a Tcl module in sid's tcl8.6-tdbc-sqlite3, under tcl8/8.6 where Tcl 9
# does not look: the module alone is taken from that package into
# tcl9/9.0.  The sqlite3 package it loads is built for Tcl 9 here: SQLite's
# Tcl binding is one file (tclsqlite.c, Tcl 9-ready from SQLite 3.47 on),
# taken from sid's source package and built against trixie's libsqlite3
# and Tcl 9's stubs into /usr/local/lib/tcltk (on tclsh9.0's auto_path).
# A mirror that is a snapshot has a sid whose Release file has expired:
# apt is told not to mind.  Should any of it fail, the SQLite and
# PostgreSQL store tests are skipped, and the suite says why.
SID_PACKAGES="tcl-tdbc/sid tcl-tdbc-postgres/sid"
sidstamp=$ROOT/var/lib/ttoauth2-sid-packages
if [ "$(cat "$sidstamp" 2>/dev/null)" != "$SID_PACKAGES v2" ]; then
    say "TDBC for Tcl 9 from sid (log: $ROOT/var/log/ttoauth2-sid.log)"
    cat > "$ROOT/etc/apt/sources.list.d/ttoauth2-sid.sources" <<EOF
Types: deb deb-src
URIs: $MIRROR
Suites: sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
Check-Valid-Until: no
EOF
    cat > "$ROOT/etc/apt/preferences.d/ttoauth2-sid" <<EOF
Package: *
Pin: release n=sid
Pin-Priority: 50
EOF
    if in_root sh -c "set -ex
	apt-get update
	apt-get install -y --no-install-recommends $SID_PACKAGES libsqlite3-dev xz-utils
	d=/usr/local/src/ttoauth2-sid; rm -rf \$d; mkdir -p \$d; cd \$d
	apt-get download tcl8.6-tdbc-sqlite3/sid
	dpkg-deb -x tcl8.6-tdbc-sqlite3_*.deb x
	mkdir -p /usr/share/tcltk/tcl9/9.0/tdbc
	cp x/usr/share/tcltk/tcl8/8.6/tdbc/sqlite3-*.tm /usr/share/tcltk/tcl9/9.0/tdbc/
	apt-get source --download-only sqlite3/sid
	tar -xJf sqlite3_*.orig.tar.xz --wildcards '*/src/tclsqlite.c'
	i=/usr/local/lib/tcltk/sqlite3-tcl9; mkdir -p \$i
	gcc -O2 -shared -fPIC -DUSE_TCL_STUBS -I/usr/include/tcl9.0 \
	    -o \$i/libtcl9sqlite3.so */src/tclsqlite.c -lsqlite3 -ltclstub9.0
	v=\$(echo \"load \$i/libtcl9sqlite3.so Sqlite3; puts [package present sqlite3]\" | tclsh9.0)
	echo \"package ifneeded sqlite3 \$v [list load [file join \\\$dir libtcl9sqlite3.so] Sqlite3]\" > \$i/pkgIndex.tcl
	cd / && rm -rf \$d
	apt-get clean
	echo 'exit [catch {package require tdbc::sqlite3; package require tdbc::postgres}]' | tclsh9.0" \
	    >"$ROOT/var/log/ttoauth2-sid.log" 2>&1; then
	echo "$SID_PACKAGES v2" > "$sidstamp"
    else
	tail -n 20 "$ROOT/var/log/ttoauth2-sid.log"
	say "TDBC for Tcl 9 could not be installed: the SQLite and PostgreSQL store tests will be skipped"
    fi
fi

if ! in_root id -u "$USER_NAME" >/dev/null 2>&1; then
    in_root useradd --create-home --home-dir "$HOME_DIR" --shell /bin/sh \
	--user-group "$USER_NAME" || die "useradd failed"
fi

#----------------------------------------------------------------------
# 3. The source: the working tree's files as git sees them (tracked and
#    untracked, not ignored), or everything but known outputs when it is
#    no git checkout; then the mock server's npm packages (see PACKAGES).
#----------------------------------------------------------------------

dest=$ROOT$HOME_DIR/src
rm -rf --one-file-system -- "$dest" "$ROOT$HOME_DIR/build" "$ROOT$HOME_DIR/inst"
mkdir -p "$dest"
if git -C "$SRC" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$SRC" && git ls-files -z --cached --others --exclude-standard |
	while IFS= read -r -d '' f; do
	    if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
	done | tar --null --no-recursion -T - -cf -) |
	tar -C "$dest" -xf - || die "copying the source tree failed"
else
    (cd "$SRC" && tar --exclude=./.git --exclude='*.o' --exclude='*.so' \
	--exclude=./Makefile --exclude=./config.status --exclude=./config.log \
	--exclude=./pkgIndex.tcl --exclude=./autom4te.cache \
	--exclude='./build-*' --exclude=./tests/node_modules -cf - .) |
	tar -C "$dest" -xf - || die "copying the source tree failed"
fi
if [ -d "$SRC/tests/node_modules/oauth2-mock-server" ]; then
    (cd "$SRC/tests" && tar -cf - node_modules) | tar -C "$dest/tests" -xf - ||
	die "copying tests/node_modules failed"
elif [ -f "$dest/tests/package-lock.json" ] && command -v npm >/dev/null 2>&1; then
    say "npm ci (tests/package-lock.json) with the host's npm"
    (cd "$dest/tests" && npm ci --no-audit --no-fund --silent) >/dev/null 2>&1 ||
	say "npm ci failed: make test tries again in the chroot"
fi
in_root chown -R "$USER_NAME:$USER_NAME" "$HOME_DIR" || die "chown failed"


#----------------------------------------------------------------------
# 4. Build out of tree and run the suite.
#----------------------------------------------------------------------

say "tclsh9.0 is Tcl $(in_root sh -c 'echo "puts [info patchlevel]" | tclsh9.0')"
say "ready after $(( $(date +%s) - started )) s; building"
t0=$(date +%s)
if ! as_user "cd src && { autoreconf -fi >../autoreconf.log 2>&1 || { cat ../autoreconf.log; exit 1; }; } &&
	mkdir -p ../build && cd ../build &&
	../src/configure -q --with-tcl=/usr/lib/tcl9.0 \${CONFIGURE_FLAGS:-} && make -s"; then
    die "the build failed"
fi
say "built in $(( $(date +%s) - t0 )) s"

# make install into a scratch DESTDIR: tclsh9.0 must load the installed copy.
if ! as_user 'cd build && make -s install DESTDIR=$HOME/inst >/dev/null &&
	index=$(find $HOME/inst -name pkgIndex.tcl) && test -n "$index" &&
	echo "package require ttoauth2; puts [lindex [lsearch -inline -index 1 [info loaded] Ttoauth2] 0]" |
	TCLLIBPATH=$(dirname "$(dirname "$index")") tclsh9.0' > "$ROOT/tmp/ttoauth2-install.out" 2>&1; then
    cat "$ROOT/tmp/ttoauth2-install.out"
    die "make install, or loading the installed package, failed"
fi
say "make install: tclsh9.0 loads $(sed "s|^$HOME_DIR/inst||" "$ROOT/tmp/ttoauth2-install.out")"
say "make test"

# make's own "*** [test] Error 1" would come after the suite's closing
# line: leave it out, keep its status.
as_user 'cd build && make -s test TESTFLAGS="${TESTFLAGS:-}" 2>&1' |
    grep -v -E '^make(\[[0-9]+\])?: \*\*\* .* Error [0-9]+$'
exit "${PIPESTATUS[0]}"
}
