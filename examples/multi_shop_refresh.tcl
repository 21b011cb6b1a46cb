#!/usr/bin/env tclsh
# multi_shop_refresh.tcl --
#
#	Keeps a folder of TikTok Shop token files fresh: every *.json file in
#	the folder is one shop's token (as saved by tiktok_shop_authorize.tcl
#	with -tokenfile); those whose access token expires within -within
#	seconds (default a day) are refreshed and saved.  Run it from cron.
#
#	Safe to run in several processes at once, and next to other tools
#	that refresh the same files: each refresh locks its file and first
#	re-reads it, so a token refreshed elsewhere is taken, not refreshed
#	again (TikTok's refresh tokens rotate: a second refresh with the old
#	one would fail).
#
# Usage:
#	tclsh multi_shop_refresh.tcl -dir FOLDER ?-within SECONDS?
#	    ?-appkey K? ?-appsecret S? ?-tokenendpoint URL?
#
# Prints one line per shop; exit status 1 if any shop failed.

package require ttoauth2

set opts [dict create \
    -dir {} -within 86400 \
    -appkey    [expr {[info exists env(TIKTOK_APP_KEY)] ? $env(TIKTOK_APP_KEY) : ""}] \
    -appsecret [expr {[info exists env(TIKTOK_APP_SECRET)] ? $env(TIKTOK_APP_SECRET) : ""}] \
    -tokenendpoint https://auth.tiktok-shops.com/api/v2/token/refresh]
foreach {name value} $argv {
    if {![dict exists $opts $name]} {
	puts stderr "unknown option $name; known: [dict keys $opts]"
	exit 2
    }
    dict set opts $name $value
}
if {[dict get $opts -dir] eq ""} {
    puts stderr "usage: tclsh multi_shop_refresh.tcl -dir FOLDER ?-within SECONDS? ..."
    exit 2
}

set now [clock seconds]
set failed 0
foreach file [lsort [glob -nocomplain -directory [dict get $opts -dir] *.json]] {
    set shop [file rootname [file tail $file]]
    set o [ttoauth2 new \
	-tokenendpoint [dict get $opts -tokenendpoint] \
	-clientid [dict get $opts -appkey] \
	-clientsecret [dict get $opts -appsecret] \
	-tokenfile $file]
    if {[catch {$o loadToken} msg]} {
	puts "$shop: cannot read the token file: $msg"
	incr failed
	$o destroy
	continue
    }
    set expires [$o expiresAt]
    if {$expires ne "" && $expires - $now > [dict get $opts -within]} {
	puts "$shop: fresh, expires [clock format $expires -format {%Y-%m-%d %H:%M} -gmt 1] UTC"
    } elseif {[catch {$o refresh} msg opts2]} {
	puts "$shop: refresh FAILED ([lrange [dict get $opts2 -errorcode] 1 2]): [$o failureInfo]"
	incr failed
    } else {
	puts "$shop: refreshed, now expires [clock format [$o expiresAt] -format {%Y-%m-%d %H:%M} -gmt 1] UTC"
    }
    $o destroy
}
exit [expr {$failed > 0}]
