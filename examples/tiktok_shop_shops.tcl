#!/usr/bin/env tclsh
# tiktok_shop_shops.tcl --
#
#	"Get Authorized Shops": lists the shops the seller authorized the app
#	for, with each shop's name, region and cipher (the shop_cipher that
#	shop-scoped calls such as orders need).  Uses the token file saved by
#	tiktok_shop_authorize.tcl; when the access token has expired, request
#	refreshes it once (saving the new token to the file) and retries.
#
# Usage:
#	tclsh tiktok_shop_shops.tcl ?-option value ...?
#
#	-appkey KEY          default: $TIKTOK_APP_KEY
#	-appsecret SECRET    default: $TIKTOK_APP_SECRET
#	-tokenfile FILE      default tiktok-shops.json
#	-tokenendpoint URL   default https://auth.tiktok-shops.com/api/v2/token/get
#	-apibaseurl URL      default https://open-api.tiktokglobalshop.com
#
# Exit status: 0 listed, 1 failed.

package require ttoauth2

proc usage {msg} {
    puts stderr "tiktok_shop_shops: $msg"
    puts stderr "usage: tclsh [file tail [info script]] ?-appkey K? ?-appsecret S?\
	?-tokenfile FILE? ?-tokenendpoint URL? ?-apibaseurl URL?"
    exit 1
}

set opts [dict create \
    -appkey    [expr {[info exists env(TIKTOK_APP_KEY)] ? $env(TIKTOK_APP_KEY) : ""}] \
    -appsecret [expr {[info exists env(TIKTOK_APP_SECRET)] ? $env(TIKTOK_APP_SECRET) : ""}] \
    -tokenfile tiktok-shops.json \
    -tokenendpoint https://auth.tiktok-shops.com/api/v2/token/get \
    -apibaseurl https://open-api.tiktokglobalshop.com]
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
    -tokenfile     [dict get $opts -tokenfile] \
    -apibaseurl    [dict get $opts -apibaseurl]]
if {[catch {$oauth2 loadToken} msg]} {
    puts stderr "Failed to load the token file: $msg"
    exit 1
}

# Signed with the app secret, token in x-tts-access-token: request does both.
if {[catch {$oauth2 request GET /authorization/202309/shops} answer]} {
    puts stderr "Request failed: $answer"
    puts stderr "errorcode: $::errorCode"
    exit 1
}
if {[dict get $answer code] != 0} {
    puts stderr "TikTok Shop error [dict get $answer code]: [dict get $answer message]"
    exit 1
}

set shops [ttoauth2 json get [dict get $answer body] data.shops {}]
puts "[llength $shops] authorized shop(s):"
foreach shop $shops {
    puts [format "  %-24s %-4s cipher %s" [dict get $shop name] [dict get $shop region] \
	[dict get $shop cipher]]
}
$oauth2 destroy
