#!/usr/bin/env tclsh
# multi_shop_refresh.tcl --
#
#	Keeps every shop's TikTok Shop token in a token store fresh: each key
#	of the store is one shop (as saved by tiktok_shop_authorize.tcl with
#	-tokenfile into a folder, or by any program with -tokenstore).  For
#	each shop it asks validAccessToken for a token valid for -within more
#	seconds (default a day): a token valid that long is left alone, others
#	are refreshed and saved back to the store.  Run it from cron.
#
#	Safe to run on several machines (or processes) at once over one store
#	(sqlite:FILE on a shared disk, postgres://..., or file:DIR), and next
#	to other programs using the same store: validAccessToken takes the
#	shop's lock in the store and reads the stored token first, so a token
#	another process refreshed is taken, not refreshed again (TikTok's
#	refresh tokens rotate: a second refresh with the old one would fail).
#	Across all the processes each expiring shop is refreshed once.
#
# Usage:
#	tclsh multi_shop_refresh.tcl (-store SPEC | -dir FOLDER)
#	    ?-within SECONDS? ?-appkey K? ?-appsecret S? ?-tokenendpoint URL?
#
#	SPEC is a store spec: file:DIR, sqlite:FILE, postgres://user@host/db.
#	-dir FOLDER is short for -store file:FOLDER (one FOLDER/SHOP.json per
#	shop).  -appkey and -appsecret default to $TIKTOK_APP_KEY and
#	$TIKTOK_APP_SECRET.
#
# Prints one line per shop; exit status 1 if any shop failed.

package require ttoauth2

set opts [dict create \
    -store {} -dir {} -within 86400 \
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
set spec [dict get $opts -store]
if {$spec eq "" && [dict get $opts -dir] ne ""} {
    set spec file:[dict get $opts -dir]
}
if {$spec eq ""} {
    puts stderr "usage: tclsh multi_shop_refresh.tcl (-store SPEC | -dir FOLDER)\
	?-within SECONDS? ..."
    exit 2
}

proc when {t} {
    clock format $t -format {%Y-%m-%d %H:%M} -gmt 1
}

set store [ttoauth2 store open $spec]
set failed 0
foreach shop [lsort [$store keys]] {
    set o [ttoauth2 new \
	-tokenendpoint [dict get $opts -tokenendpoint] \
	-clientid [dict get $opts -appkey] \
	-clientsecret [dict get $opts -appsecret] \
	-tokenstore [list $store $shop]]
    # What the store holds now (read without the lock: only to tell a
    # refresh from a token that was fresh enough).
    set before ""
    catch {set before [ttoauth2 json get [$store get $shop] data.access_token]}
    if {[catch {$o validAccessToken -within [dict get $opts -within]} token opts2]} {
	set code [dict get $opts2 -errorcode]
	if {[lindex $code 1] in {JSON STORE}} {
	    puts "$shop: cannot read the stored token: $token"
	} else {
	    puts "$shop: refresh FAILED ([lrange $code 1 2]): [$o failureInfo]"
	}
	incr failed
    } elseif {$token eq $before} {
	puts "$shop: fresh, expires [when [$o expiresAt]] UTC"
    } else {
	# Refreshed here, or by another process just now (then adopted).
	puts "$shop: refreshed, now expires [when [$o expiresAt]] UTC"
    }
    $o destroy
}
$store close
exit [expr {$failed > 0}]
