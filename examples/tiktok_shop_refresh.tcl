#!/usr/bin/env tclsh
# tiktok_shop_refresh.tcl --
#
#	Refreshes a TikTok Shop access token saved by
#	tiktok_shop_authorize.tcl, and saves the NEW token response over the
#	old file (TikTok rotates refresh tokens: the old file would hold a
#	spent one).  No browser is involved.  The native-API port of
#	Chilkat's "Refresh a TikTok Shop OAuth2 Access Token" Tcl sample.
#
#	Several processes may run this on the same file at once: the file is
#	locked while refreshing, and a process that finds the file already
#	refreshed by another takes that token instead of refreshing again.
#
# Usage:
#	tclsh tiktok_shop_refresh.tcl ?-option value ...?
#
#	-appkey KEY          default: $TIKTOK_APP_KEY
#	-appsecret SECRET    default: $TIKTOK_APP_SECRET
#	-tokenfile FILE      default tiktok-shops.json
#	-tokenendpoint URL   default https://auth.tiktok-shops.com/api/v2/token/refresh
#
# Exit status: 0 refreshed, 1 failed (the token file is left as it was).

package require ttoauth2

proc usage {msg} {
    puts stderr "tiktok_shop_refresh: $msg"
    puts stderr "usage: tclsh [file tail [info script]] ?-appkey K? ?-appsecret S?\
	?-tokenfile FILE? ?-tokenendpoint URL?"
    exit 1
}

proc masked {token} {
    if {[string length $token] <= 10} {return "***"}
    return "[string range $token 0 5]...[string range $token end-3 end]"
}

set opts [dict create \
    -appkey    [expr {[info exists env(TIKTOK_APP_KEY)] ? $env(TIKTOK_APP_KEY) : ""}] \
    -appsecret [expr {[info exists env(TIKTOK_APP_SECRET)] ? $env(TIKTOK_APP_SECRET) : ""}] \
    -tokenfile tiktok-shops.json \
    -tokenendpoint https://auth.tiktok-shops.com/api/v2/token/refresh]
if {[llength $argv] % 2} {usage "options come in pairs"}
foreach {name value} $argv {
    if {![dict exists $opts $name]} {usage "unknown option $name"}
    dict set opts $name $value
}
foreach required {-appkey -appsecret} {
    if {[dict get $opts $required] eq ""} {
	usage "$required is required (or set TIKTOK_APP_KEY, TIKTOK_APP_SECRET)"
    }
}

set oauth2 [ttoauth2 new \
    -tokenendpoint [dict get $opts -tokenendpoint] \
    -clientid      [dict get $opts -appkey] \
    -clientsecret  [dict get $opts -appsecret] \
    -tokenfile     [dict get $opts -tokenfile]]

# The access and refresh tokens (and their expiry times) from the file.
if {[catch {$oauth2 loadToken} msg]} {
    puts stderr "Failed to load the token file: $msg"
    exit 1
}
puts "Old access token: [masked [$oauth2 accessToken]],\
    expires [clock format [$oauth2 expiresAt] -format {%Y-%m-%d %H:%M UTC} -gmt 1]"

# Refresh; with -tokenfile set the new response is saved to the file.
if {[catch {$oauth2 refresh} msg opts2]} {
    puts stderr "Refresh failed: $msg"
    puts stderr "errorcode: [dict get $opts2 -errorcode]"
    exit 1
}

puts "OAuth2 token refreshed!"
puts "New access token: [masked [$oauth2 accessToken]],\
    expires [clock format [$oauth2 expiresAt] -format {%Y-%m-%d %H:%M UTC} -gmt 1]"
puts "Saved to [dict get $opts -tokenfile]"
$oauth2 destroy
