#!/bin/sh
# win/cross-build.sh PREFIX --
#
#	Builds ttoauth2 for 64-bit Windows on Debian 12 (run as root) and
#	installs a self-contained tree into PREFIX:
#
#	    PREFIX/bin/tclsh86.exe, tcl86.dll, libcurl-4.dll, zlib1.dll
#	    PREFIX/lib/tcl8.6, PREFIX/lib/tcl8/ (tcltest)
#	    PREFIX/lib/ttoauth2<version>/ (the DLL, pkgIndex.tcl, chilkat.tcl)
#
#	so that `wine PREFIX/bin/tclsh86.exe script.tcl` (or the tree copied
#	to a Windows machine) can `package require ttoauth2`.  Without a
#	display, the Wine prefix that plain `wine` uses ($WINEPREFIX, else
#	~/.wine) is made once and told to use Wine's "null" graphics driver,
#	which Tcl's sockets need there (win/wine-prefix.sh).
#
#	Debian has no Windows builds of Tcl, libcurl or cJSON: their Debian
#	source packages (the same versions Debian ships) are fetched with
#	apt-get source through a private apt configuration under the cache
#	(the system's sources are not touched) and cross-compiled with
#	mingw-w64: Tcl 8.6 threaded, libcurl with Schannel (Windows' own TLS,
#	no OpenSSL) and zlib (zlib1.dll, from Tcl's compat/zlib), cJSON as a
#	static library.  ttoauth2 itself is then
#	configured with --host=x86_64-w64-mingw32 --with-tcl --with-curl
#	--with-cjson, built and installed.
#
#	Environment:
#	    TTOAUTH2_WIN_CACHE	where sources, builds and the toolchain's
#				installs are kept (default
#				/var/cache/ttoauth2/win).  A second run
#				reuses them and only rebuilds ttoauth2.
#	    TTOAUTH2_WIN_JOBS	parallel make jobs (default: number of CPUs).
#
#	Packages it installs when missing: gcc-mingw-w64-x86-64,
#	binutils-mingw-w64-x86-64, wine, wine64, dpkg-dev, autoconf, automake,
#	pkg-config, make, patch, xz-utils, and tcl + tcllib (win/wine-test.sh
#	takes tcllib's json for the tests from there).

set -eu

if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 PREFIX" >&2
    exit 2
fi
case "$1" in
    /*) PREFIX=$1 ;;
    *) PREFIX=$(pwd)/$1 ;;
esac

SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${TTOAUTH2_WIN_CACHE:-/var/cache/ttoauth2/win}
JOBS=${TTOAUTH2_WIN_JOBS:-$(nproc 2>/dev/null || echo 2)}
HOST=x86_64-w64-mingw32

log() {
    echo "cross-build: $*"
}

# logged LOG COMMAND...: runs COMMAND with its output in LOG; shows the
# end of LOG when it fails.
logged() {
    logfile=$1
    shift
    if ! "$@" >"$logfile" 2>&1; then
	tail -n 40 "$logfile" >&2
	echo "cross-build: failed: $* (whole log: $logfile)" >&2
	exit 1
    fi
}

now() {
    date +%s
}
START=$(now)

#----------------------------------------------------------------------
# Debian packages the build needs.
#----------------------------------------------------------------------

need=""
for p in gcc-mingw-w64-x86-64 binutils-mingw-w64-x86-64 wine wine64 \
	dpkg-dev autoconf automake pkg-config make patch xz-utils tcl tcllib; do
    if ! dpkg-query -W -f '${Status}' "$p" 2>/dev/null \
	    | grep -q 'install ok installed'; then
	need="$need $p"
    fi
done
if [ -n "$need" ]; then
    log "installing$need"
    apt-get -o DPkg::Lock::Timeout=300 update -q
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 \
	install -y -q --no-install-recommends $need
fi

mkdir -p "$CACHE/src" "$CACHE/build" "$CACHE/apt"

#----------------------------------------------------------------------
# Sources: Debian's source packages, fetched once.  A private apt
# configuration (deb-src entries, lists, cache, all under $CACHE/apt)
# leaves the system's sources and lists as they are.
#----------------------------------------------------------------------

have_src() {
    ls "$CACHE/src/$1"_*.dsc >/dev/null 2>&1
}

if ! have_src tcl8.6 || ! have_src curl || ! have_src cjson; then
    log "fetching Debian sources of tcl8.6, curl, cjson"
    apt_dir=$CACHE/apt
    mkdir -p "$apt_dir/parts" "$apt_dir/lists/partial" \
	"$apt_dir/cache/archives/partial"
    : > "$apt_dir/none.list"
    # The same mirrors and suites as the system's own entries.
    rm -f "$apt_dir/parts"/*
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
	sed -e 's/^Types:.*/Types: deb-src/' \
	    /etc/apt/sources.list.d/debian.sources > "$apt_dir/parts/src.sources"
    else
	cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
	    | sed -n 's/^deb /deb-src /p' > "$apt_dir/parts/src.list"
    fi
    set -- -o Dir::Etc::SourceList="$apt_dir/none.list" \
	-o Dir::Etc::SourceParts="$apt_dir/parts" \
	-o Dir::State::Lists="$apt_dir/lists" \
	-o Dir::Cache="$apt_dir/cache" \
	-o APT::Sandbox::User=root
    apt-get "$@" update -q
    (cd "$CACHE/src" && apt-get "$@" source --download-only -q \
	tcl8.6 curl cjson)
fi

# The newest of each (a later run may have fetched a newer revision).
dsc_of() {
    ls "$CACHE/src/$1"_*.dsc | sort -V | tail -n 1
}

# Unpacks a source package once into $CACHE/build/NAME.
unpack() {
    name=$1
    dsc=$(dsc_of "$name")
    stamp=$CACHE/build/$name.unpacked
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$dsc" ] \
	    && [ -d "$CACHE/build/$name" ]; then
	return 0
    fi
    log "unpacking $(basename "$dsc")"
    rm -rf "$CACHE/build/$name" "$CACHE/build/$name.built"
    if [ "$name" = tcl8.6 ]; then
	rm -f "$CACHE/build/zlib.built"	# zlib comes from Tcl's sources
    fi
    dpkg-source --no-check -x "$dsc" "$CACHE/build/$name" >/dev/null
    echo "$dsc" > "$stamp"
}

#----------------------------------------------------------------------
# Tcl 8.6 for Windows (threaded, 64-bit): tclsh86.exe, tcl86.dll, the
# stub library, tclConfig.sh, the script library and tcltest.
#----------------------------------------------------------------------

TCL_DIR=$CACHE/tcl
unpack tcl8.6
if [ ! -f "$CACHE/build/tcl8.6.built" ]; then
    log "building Tcl for Windows"
    rm -rf "$TCL_DIR"
    cd "$CACHE/build/tcl8.6/win"
    logged configure.log ./configure --host=$HOST --enable-64bit \
	--enable-threads --prefix="$TCL_DIR"
    logged make.log make -j"$JOBS"
    logged install.log make install
    cd "$SRCDIR"
    touch "$CACHE/build/tcl8.6.built"
fi

#----------------------------------------------------------------------
# zlib, for libcurl's gzip/deflate decoding (ttoauth2 offers both): built
# from the copy in Tcl's sources (compat/zlib) as zlib1.dll, the DLL Tcl
# itself uses (libtool builds no libcurl DLL on a static zlib).
#----------------------------------------------------------------------

ZLIB_DIR=$CACHE/zlib
if [ ! -f "$CACHE/build/zlib.built" ]; then
    log "building zlib (from Tcl's compat/zlib) for Windows"
    rm -rf "$ZLIB_DIR" "$CACHE/build/zlib"
    cp -R "$CACHE/build/tcl8.6/compat/zlib" "$CACHE/build/zlib"
    cd "$CACHE/build/zlib"
    rm -f zlib1.dll win32/zlib1.dll		# the prebuilt copies
    logged make.log make -f win32/Makefile.gcc PREFIX=$HOST- SHARED_MODE=1 \
	zlib1.dll libz.dll.a
    mkdir -p "$ZLIB_DIR/include" "$ZLIB_DIR/lib" "$ZLIB_DIR/bin"
    cp zlib.h zconf.h "$ZLIB_DIR/include/"
    cp libz.dll.a "$ZLIB_DIR/lib/"
    cp zlib1.dll "$ZLIB_DIR/bin/"
    cd "$SRCDIR"
    touch "$CACHE/build/zlib.built"
    rm -f "$CACHE/build/curl.built"
fi

#----------------------------------------------------------------------
# libcurl with Schannel.  Debian's 90_gnutls and 99_nss patches rename
# the library for Debian's three flavours: reversed here.  Only HTTP and
# HTTPS are built (ttoauth2 allows no other protocol).  Debian's other
# patches that touch configure.ac concern GSS-API and LDAP, both left out,
# so the shipped configure is used as it is (maintainer mode is off).  No
# pthreads, so the DLL needs no libwinpthread-1.dll.
#----------------------------------------------------------------------

CURL_DIR=$CACHE/curl
# The stamp holds the recipe's version: a changed recipe rebuilds.
CURL_RECIPE="http-only 1"
if [ "$(cat "$CACHE/build/curl.built" 2>/dev/null)" != "$CURL_RECIPE" ]; then
    rm -f "$CACHE/build/curl.built" "$CACHE/build/curl.unpacked"
fi
unpack curl
if [ ! -f "$CACHE/build/curl.built" ]; then
    log "building libcurl (Schannel) for Windows"
    rm -rf "$CURL_DIR"
    cd "$CACHE/build/curl"
    for p in 99_nss.patch 90_gnutls.patch; do
	if [ -f "debian/patches/$p" ] && patch -R -p1 --dry-run -s \
		< "debian/patches/$p" >/dev/null 2>&1; then
	    patch -R -p1 -s < "debian/patches/$p"
	fi
    done
    logged configure.log ./configure --host=$HOST --prefix="$CURL_DIR" \
	--with-schannel --without-openssl --without-gnutls \
	--with-zlib="$ZLIB_DIR" \
	--disable-ldap --disable-ldaps --without-libpsl \
	--disable-dict --disable-file --disable-ftp --disable-gopher \
	--disable-imap --disable-mqtt --disable-pop3 --disable-rtsp \
	--disable-smb --disable-smtp --disable-telnet --disable-tftp \
	--disable-dependency-tracking \
	--without-brotli --without-zstd --without-libidn2 \
	--without-nghttp2 --without-libssh2 --without-librtmp \
	--disable-manual --disable-static --disable-pthreads
    logged make.log make -j"$JOBS" -C lib
    logged install.log make -C lib install
    logged install-include.log make -C include install
    if ! ls "$CURL_DIR"/bin/libcurl*.dll >/dev/null 2>&1; then
	echo "cross-build: libcurl built no DLL (see $CACHE/build/curl/make.log)" >&2
	exit 1
    fi
    cd "$SRCDIR"
    echo "$CURL_RECIPE" > "$CACHE/build/curl.built"
fi

#----------------------------------------------------------------------
# cJSON: one C file, as a static library linked into ttoauth2's DLL.
#----------------------------------------------------------------------

CJSON_DIR=$CACHE/cjson
unpack cjson
if [ ! -f "$CACHE/build/cjson.built" ]; then
    log "building cJSON for Windows"
    rm -rf "$CJSON_DIR"
    mkdir -p "$CJSON_DIR/include/cjson" "$CJSON_DIR/lib"
    $HOST-gcc -O2 -std=c89 -c -o "$CACHE/build/cjson/cJSON.o" \
	"$CACHE/build/cjson/cJSON.c"
    rm -f "$CJSON_DIR/lib/libcjson.a"
    $HOST-ar rcs "$CJSON_DIR/lib/libcjson.a" "$CACHE/build/cjson/cJSON.o"
    cp "$CACHE/build/cjson/cJSON.h" "$CJSON_DIR/include/cjson/"
    touch "$CACHE/build/cjson.built"
fi

#----------------------------------------------------------------------
# ttoauth2: always rebuilt (a few seconds), out of the source tree.
#----------------------------------------------------------------------

log "building ttoauth2 for Windows"
if [ ! -x "$SRCDIR/configure" ] || [ "$SRCDIR/configure.ac" -nt "$SRCDIR/configure" ]; then
    (cd "$SRCDIR" && autoreconf -fi)
fi
# One build folder per source tree and install tree: builds from several
# worktrees (or a CI run beside them) must not configure over each other.
TTO_BUILD=$CACHE/build/ttoauth2-$(printf '%s\n%s\n' "$SRCDIR" "$PREFIX" | cksum | cut -d' ' -f1)
rm -rf "$TTO_BUILD"
mkdir -p "$TTO_BUILD"
cd "$TTO_BUILD"
logged configure.log "$SRCDIR/configure" --host=$HOST --prefix="$PREFIX" \
    --with-tcl="$TCL_DIR/lib" --with-curl="$CURL_DIR" \
    --with-cjson="$CJSON_DIR"
# Compiler output (warnings) is shown: the build must stay warning-free.
make -j"$JOBS" 2>&1 | grep -v "^$HOST-gcc " || true
test -f "$(sed -n 's/^PKG_LIB_FILE[[:space:]]*=[[:space:]]*//p' Makefile)" \
    || { echo "cross-build: ttoauth2 did not build" >&2; exit 1; }
cd "$SRCDIR"

#----------------------------------------------------------------------
# The install tree.
#----------------------------------------------------------------------

log "installing into $PREFIX"
mkdir -p "$PREFIX/bin" "$PREFIX/lib"
cp -p "$TCL_DIR"/bin/*.exe "$TCL_DIR"/bin/*.dll "$PREFIX/bin/"
cp -p "$CURL_DIR"/bin/libcurl*.dll "$ZLIB_DIR/bin/zlib1.dll" "$PREFIX/bin/"
for d in "$TCL_DIR"/lib/*; do
    case "$(basename "$d")" in
	*.a|*.sh) ;;		# link-time files: not needed at run time
	*) rm -rf "$PREFIX/lib/$(basename "$d")"
	   cp -pR "$d" "$PREFIX/lib/" ;;
    esac
done
# tcllib (pure Tcl, from Debian's package): the demo's sandbox server
# checks Shop API signatures with its sha256, and users get json & co.
for d in /usr/share/tcltk/tcllib*; do
    [ -d "$d" ] || continue
    rm -rf "$PREFIX/lib/$(basename "$d")"
    cp -pR "$d" "$PREFIX/lib/"
done
rm -rf "$PREFIX"/lib/ttoauth2*
(cd "$TTO_BUILD" && logged install.log make install)

# Every DLL the programs and the extension import must be a system DLL
# or one installed beside tclsh86.exe.
missing=""
for f in "$PREFIX"/bin/*.exe "$PREFIX"/bin/*.dll "$PREFIX"/lib/ttoauth2*/*.dll; do
    for dll in $($HOST-objdump -p "$f" | sed -n 's/^[[:space:]]*DLL Name: //p'); do
	case "$(echo "$dll" | tr '[:upper:]' '[:lower:]')" in
	    kernel32.dll|user32.dll|advapi32.dll|ws2_32.dll|bcrypt.dll|\
	    crypt32.dll|msvcrt.dll|shell32.dll|netapi32.dll|userenv.dll|\
	    wldap32.dll|normaliz.dll|secur32.dll|iphlpapi.dll|ole32.dll|\
	    api-ms-win-*) ;;
	    *) [ -f "$PREFIX/bin/$dll" ] || missing="$missing $(basename "$f"):$dll" ;;
	esac
    done
done
if [ -n "$missing" ]; then
    echo "cross-build: DLLs missing from $PREFIX/bin:$missing" >&2
    exit 1
fi

# The Wine prefix a plain `wine` uses ($WINEPREFIX, else ~/.wine), made
# ready for Tcl's sockets when there is no display, so that
# `wine PREFIX/bin/tclsh86.exe script.tcl` works as it is.
. "$SRCDIR/win/wine-prefix.sh"
tto_wine_prefix "${WINEPREFIX:-$HOME/.wine}"

log "done in $(( $(now) - START )) s: wine $PREFIX/bin/tclsh86.exe SCRIPT"
