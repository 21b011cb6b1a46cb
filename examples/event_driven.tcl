#!/usr/bin/env tclsh
# event_driven.tcl --
#
#	The TikTok Shop authorization without polling: -command tells the
#	event loop when the flow ends, so a Tk GUI (or a server built on
#	fileevent) stays responsive meanwhile.  Same options as
#	tiktok_shop_authorize.tcl (-appkey -appsecret -serviceid -port
#	-tokenfile -authendpoint -tokenendpoint -browser -wait).

package require ttoauth2

set opts [dict create \
    -appkey       [expr {[info exists env(TIKTOK_APP_KEY)] ? $env(TIKTOK_APP_KEY) : ""}] \
    -appsecret    [expr {[info exists env(TIKTOK_APP_SECRET)] ? $env(TIKTOK_APP_SECRET) : ""}] \
    -serviceid    [expr {[info exists env(TIKTOK_SERVICE_ID)] ? $env(TIKTOK_SERVICE_ID) : ""}] \
    -port 3017 -tokenfile tiktok-shops.json -browser {} -wait 300 \
    -authendpoint https://services.tiktokshop.com/open/authorize \
    -tokenendpoint https://auth.tiktok-shops.com/api/v2/token/get]
foreach {name value} $argv {
    if {![dict exists $opts $name]} {
	puts stderr "unknown option $name; known: [dict keys $opts]"
	exit 1
    }
    dict set opts $name $value
}

# Called from the event loop with the object and its final state.
proc flowEnded {oauth2 state} {
    switch -- $state {
	3 {puts "Authorized; token saved to [$oauth2 cget -tokenfile]"}
	4 {puts "The seller denied access: [$oauth2 accessTokenResponse]"}
	5 {puts "The flow failed: [$oauth2 failureInfo]"}
    }
    set ::result $state
}

set oauth2 [ttoauth2 new \
    -listenport            [dict get $opts -port] \
    -authorizationendpoint [dict get $opts -authendpoint] \
    -tokenendpoint         [dict get $opts -tokenendpoint] \
    -clientid              [dict get $opts -appkey] \
    -clientsecret          [dict get $opts -appsecret] \
    -tokenfile             [dict get $opts -tokenfile] \
    -browser               [dict get $opts -browser] \
    -authtimeout           [expr {[dict get $opts -wait] * 1000}] \
    -command               flowEnded]
$oauth2 addAuthQueryParam service_id [dict get $opts -serviceid]

set url [$oauth2 startAuth]
puts "Authorize in a browser at: $url"
catch {$oauth2 launchBrowser $url}   ;# none on a server: the URL is printed

# Anything else the program does keeps running meanwhile: here, a
# heartbeat every second.
proc heartbeat {} {
    puts -nonewline .
    flush stdout
    after 1000 heartbeat
}
after 1000 heartbeat

vwait ::result
puts ""
$oauth2 destroy
exit [expr {$::result == 3 ? 0 : 1}]
