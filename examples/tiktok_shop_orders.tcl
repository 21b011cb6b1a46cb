#!/usr/bin/env tclsh
# tiktok_shop_orders.tcl --
#
#	The orders of the last 7 days of one shop: a signed POST with a JSON
#	body to /order/202309/orders/search, scoped to the shop by its cipher.
#	Without -shop, the first shop "Get Authorized Shops" names is used;
#	with -shop NAME-OR-CIPHER, that one.  Uses the token file saved by
#	tiktok_shop_authorize.tcl (refreshed once when expired).
#
# Usage:
#	tclsh tiktok_shop_orders.tcl ?-option value ...?
#
#	-appkey KEY          default: $TIKTOK_APP_KEY
#	-appsecret SECRET    default: $TIKTOK_APP_SECRET
#	-tokenfile FILE      default tiktok-shops.json
#	-tokenendpoint URL   default https://auth.tiktok-shops.com/api/v2/token/get
#	-apibaseurl URL      default https://open-api.tiktokglobalshop.com
#	-shop NAME|CIPHER    default: the first authorized shop
#	-days N              default 7
#
# Exit status: 0 listed, 1 failed.

package require ttoauth2

proc usage {msg} {
    puts stderr "tiktok_shop_orders: $msg"
    puts stderr "usage: tclsh [file tail [info script]] ?-appkey K? ?-appsecret S?\
	?-tokenfile FILE? ?-tokenendpoint URL? ?-apibaseurl URL? ?-shop NAME? ?-days N?"
    exit 1
}

set opts [dict create \
    -appkey    [expr {[info exists env(TIKTOK_APP_KEY)] ? $env(TIKTOK_APP_KEY) : ""}] \
    -appsecret [expr {[info exists env(TIKTOK_APP_SECRET)] ? $env(TIKTOK_APP_SECRET) : ""}] \
    -tokenfile tiktok-shops.json \
    -tokenendpoint https://auth.tiktok-shops.com/api/v2/token/get \
    -apibaseurl https://open-api.tiktokglobalshop.com -shop "" -days 7]
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
if {![string is integer -strict [dict get $opts -days]] || [dict get $opts -days] < 1} {
    usage "-days needs a whole number of days, 1 or more"
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

# Raises on a transport failure or a failed refresh; a TikTok error code
# is reported and ends the script.
proc call {oauth2 method path args} {
    if {[catch {$oauth2 request $method $path {*}$args} answer]} {
	puts stderr "Request failed: $answer"
	puts stderr "errorcode: $::errorCode"
	exit 1
    }
    if {[dict get $answer code] != 0} {
	puts stderr "TikTok Shop error [dict get $answer code]: [dict get $answer message]"
	exit 1
    }
    return [dict get $answer body]
}

# Which shop: its cipher scopes the orders call.
set shops [ttoauth2 json get [call $oauth2 GET /authorization/202309/shops] data.shops {}]
set shop {}
foreach s $shops {
    if {[dict get $opts -shop] in [list "" [dict get $s name] [dict get $s cipher]]} {
	set shop $s
	break
    }
}
if {$shop eq ""} {
    puts stderr "No authorized shop named \"[dict get $opts -shop]\""
    exit 1
}
$oauth2 configure -shopcipher [dict get $shop cipher]

set since [expr {[clock seconds] - [dict get $opts -days] * 86400}]
set body [call $oauth2 POST /order/202309/orders/search -query {page_size 50} \
    -body "{\"create_time_ge\": $since}"]
set orders [ttoauth2 json get $body data.orders {}]
puts "[dict get $shop name] ([dict get $shop region]): [llength $orders] order(s)\
    in the last [dict get $opts -days] days"
foreach order $orders {
    puts [format "  %s  %s  %-18s %8s %s  %s" [dict get $order id] \
	[clock format [dict get $order create_time] -format {%Y-%m-%d %H:%M} -gmt 1] \
	[dict get $order status] [dict get $order payment total_amount] \
	[dict get $order payment currency] [dict get $order recipient_address name]]
}
$oauth2 destroy
