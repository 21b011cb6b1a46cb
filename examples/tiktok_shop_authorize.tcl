#!/usr/bin/env tclsh
# tiktok_shop_authorize.tcl --
#
#	Gets the first OAuth2 access token for a TikTok Shop app: the seller
#	signs in and authorizes in the browser, the token lands in a file.
#	The native-API port of Chilkat's "TikTok Shop OAuth2" Tcl sample.
#
#	In Partner Center, register http://localhost:3017/ (with the slash)
#	as the app's redirect URL, and look up the app's service id.
#
# Usage:
#	tclsh tiktok_shop_authorize.tcl ?-option value ...?
#
#	-appkey KEY          default: $TIKTOK_APP_KEY
#	-appsecret SECRET    default: $TIKTOK_APP_SECRET
#	-serviceid ID        default: $TIKTOK_SERVICE_ID
#	-port N              default 3017 (must match the registered URL)
#	-tokenfile FILE      default tiktok-shops.json
#	-authendpoint URL    default https://services.tiktokshop.com/open/authorize
#	                     (US shops: https://services.us.tiktokshop.com/open/authorize)
#	-tokenendpoint URL   default https://auth.tiktok-shops.com/api/v2/token/get
#	-browser CMD         program to open the URL with (a list); default:
#	                     $BROWSER, else the desktop's opener
#	-wait SECONDS        how long to wait for the seller, default 300
#	-authparam {NAME VALUE}  an extra authorize parameter (repeatable)
#	-paste               a browser on another machine: open no browser
#	                     here; after authorizing, paste the URL the browser
#	                     ended on (it cannot load: nothing listens there)
#
#	On a remote machine there are two ways: -paste, or forwarding the
#	port from the machine with the browser, ssh -L 3017:localhost:3017 HOST,
#	so that the browser's redirect reaches this script.
#
# Exit status: 0 granted, 1 failed or timed out, 2 denied by the seller.

package require ttoauth2

proc usage {msg} {
    puts stderr "tiktok_shop_authorize: $msg"
    puts stderr "usage: tclsh [file tail [info script]] ?-appkey K? ?-appsecret S?\
	?-serviceid ID? ?-port N? ?-tokenfile FILE? ?-authendpoint URL?\
	?-tokenendpoint URL? ?-browser CMD? ?-wait SECONDS? ?-authparam {NAME VALUE}?\
	?-paste?"
    exit 1
}

# A token shown on screen is shortened: enough to recognise, not to use.
proc masked {token} {
    if {[string length $token] <= 10} {return "***"}
    return "[string range $token 0 5]...[string range $token end-3 end]"
}

set opts [dict create \
    -appkey       [expr {[info exists env(TIKTOK_APP_KEY)] ? $env(TIKTOK_APP_KEY) : ""}] \
    -appsecret    [expr {[info exists env(TIKTOK_APP_SECRET)] ? $env(TIKTOK_APP_SECRET) : ""}] \
    -serviceid    [expr {[info exists env(TIKTOK_SERVICE_ID)] ? $env(TIKTOK_SERVICE_ID) : ""}] \
    -port         3017 \
    -tokenfile    tiktok-shops.json \
    -authendpoint https://services.tiktokshop.com/open/authorize \
    -tokenendpoint https://auth.tiktok-shops.com/api/v2/token/get \
    -browser      {} \
    -wait         300]
set authParams {}
set paste [expr {"-paste" in $argv}]
set argv [lsearch -all -inline -not -exact $argv -paste]
if {[llength $argv] % 2} {usage "options come in pairs"}
foreach {name value} $argv {
    if {$name eq "-authparam"} {
	if {[llength $value] != 2} {usage "-authparam takes {NAME VALUE}"}
	lappend authParams {*}$value
	continue
    }
    if {![dict exists $opts $name]} {usage "unknown option $name"}
    dict set opts $name $value
}
foreach required {-appkey -appsecret -serviceid} {
    if {[dict get $opts $required] eq ""} {
	usage "$required is required (or set TIKTOK_APP_KEY, TIKTOK_APP_SECRET, TIKTOK_SERVICE_ID)"
    }
}

set oauth2 [ttoauth2 new \
    -listenport            [dict get $opts -port] \
    -authorizationendpoint [dict get $opts -authendpoint] \
    -tokenendpoint         [dict get $opts -tokenendpoint] \
    -clientid              [dict get $opts -appkey] \
    -clientsecret          [dict get $opts -appsecret] \
    -tokenfile             [dict get $opts -tokenfile] \
    -browser               [dict get $opts -browser] \
    -authtimeout           [expr {[dict get $opts -wait] * 1000}]]
$oauth2 addAuthQueryParam service_id [dict get $opts -serviceid]
foreach {name value} $authParams {
    $oauth2 addAuthQueryParam $name $value
}

# Begin the flow: this listens on the port and returns the URL for the
# seller's browser.
if {[catch {$oauth2 startAuth} url opts2]} {
    puts stderr "Cannot start: $url"
    if {[lindex [dict get $opts2 -errorcode] 1] eq "LISTEN"} {
	puts stderr "Is another program using port [dict get $opts -port]?"
    }
    exit 1
}

# Always print the URL: the browser may open on a machine the seller does
# not sit at, or not at all ({TTOAUTH2 BROWSER NONE} on a server).
puts "Authorize in a browser at:"
puts "  $url"
if {$paste} {
    # The browser ends on http://localhost:PORT/?code=...&state=..., which
    # does not load on the seller's machine: its address is what we need.
    puts "After authorizing, paste the URL the browser ended on (its address bar):"
    flush stdout
    set state [$oauth2 authFlowState]
    while {$state < 3 && [gets stdin line] >= 0} {
	set line [string trim $line]
	if {$line eq ""} continue
	if {[catch {$oauth2 completeAuth $line} state]} {
	    puts "That is not this authorization's redirect ($state). Paste again:"
	    flush stdout
	    set state [$oauth2 authFlowState]
	}
    }
} else {
    if {[catch {$oauth2 launchBrowser $url} msg]} {
	puts "(Could not open a browser here: $msg. Open the URL yourself.)"
    }
    puts "Waiting for the seller to authorize in the browser..."
}

# Wait for the redirect and the token exchange (bounded by -authtimeout).
set state [$oauth2 wait [expr {$paste ? 0 : [dict get $opts -wait] * 1000 + 5000}]]
if {$state < 3} {
    $oauth2 cancel
    puts "No response from the browser!"
    exit 1
}

switch -- $state {
    5 {
	puts "OAuth2 failed to complete."
	puts [$oauth2 failureInfo]
	exit 1
    }
    4 {
	puts "OAuth2 authorization was denied."
	puts [$oauth2 accessTokenResponse]
	exit 2
    }
}

puts "OAuth2 authorization granted!"
set json [$oauth2 accessTokenResponse]
set data [ttoauth2 json get $json data]
puts "Access token:    [masked [$oauth2 accessToken]]"
puts "Seller:          [dict get $data seller_name] ([dict get $data seller_base_region])"
puts "Shop region:     [$oauth2 redirectParam shop_region]"
puts "Access expires:  [clock format [$oauth2 expiresAt] -format {%Y-%m-%d %H:%M:%S UTC} -gmt 1]"
puts "Refresh expires: [clock format [$oauth2 refreshExpiresAt] -format {%Y-%m-%d %H:%M:%S UTC} -gmt 1]"
puts "Granted scopes:"
foreach scope [dict get $data granted_scopes] {
    puts "  $scope"
}
set failure [$oauth2 failureInfo]
if {$failure ne ""} {
    puts "Warning: $failure"
    exit 1
}
puts "Token saved to [dict get $opts -tokenfile]"
$oauth2 destroy
