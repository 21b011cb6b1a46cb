# win/wine-prefix.sh -- sourced by cross-build.sh and wine-test.sh.
#
# tto_wine_prefix DIR: makes the Wine prefix DIR once (about 10 s) and,
# when there is no display, sets Wine's graphics driver to "null": Tcl 8.6
# on Windows needs a hidden window for its sockets, which headless Wine
# refuses otherwise ("sockets are not available on this system").  No Mono
# or Gecko: nothing here needs .NET or a browser engine, and their
# installers would wait for a click.

tto_wine_prefix() {
    tto_wp=$1
    if [ -f "$tto_wp/.ttoauth2-ready" ]; then
	return 0
    fi
    echo "making the Wine prefix $tto_wp"
    mkdir -p "$(dirname "$tto_wp")"
    WINEPREFIX=$tto_wp WINEDEBUG=-all WINEDLLOVERRIDES="mscoree=d;mshtml=d" \
	wineboot -i >/dev/null 2>&1 || true
    if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
	WINEPREFIX=$tto_wp WINEDEBUG=-all wine reg add \
	    'HKCU\Software\Wine\Drivers' /v Graphics /t REG_SZ /d null /f \
	    >/dev/null
    fi
    WINEPREFIX=$tto_wp wineserver -w
    touch "$tto_wp/.ttoauth2-ready"
}
