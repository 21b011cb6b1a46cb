# demo.tcl --
#
#	The main job, end to end, with no TikTok account: runs the TikTok
#	Shop examples (authorize, refresh, then the Shop API: the authorized
#	shops and one shop's orders of the last 7 days) against the bundled
#	sandbox server on 127.0.0.1, with a scripted browser playing the
#	seller who clicks "Authorize".  `make demo` runs it.
#
#	Usage: tclsh examples/demo.tcl ?-keep DIR?
#	(-keep: write the token file into DIR and leave it there)

package require Tcl 8.6-

set here [file dirname [file normalize [info script]]]
set top [file dirname $here]
if {[info exists env(TTOAUTH2_SRCDIR)]} {
    set top [file normalize $env(TTOAUTH2_SRCDIR)]
}
source [file join $top tests sandbox.tcl]

set keep ""
if {[lindex $argv 0] eq "-keep"} {
    set keep [file normalize [lindex $argv 1]]
    file mkdir $keep
}
if {[info exists env(TMPDIR)]} {
    set tmp $env(TMPDIR)
} elseif {$tcl_platform(platform) eq "windows" && [info exists env(TEMP)]} {
    set tmp $env(TEMP)
} else {
    set tmp /tmp
}
set dir [expr {$keep ne "" ? $keep : [file join $tmp ttoauth2-demo-[pid]]}]
file mkdir $dir
set tokenFile [file join $dir tiktok-shops.json]

# The redirect URL "registered in Partner Center": a free loopback port.
set probe [socket -server {apply {{c a p} {close $c}}} -myaddr 127.0.0.1 0]
set port [lindex [fconfigure $probe -sockname] 2]
close $probe

set appKey demo_app_key
set appSecret demo_app_secret_[expr {int(rand() * 1e9)}]
set sbPort [sandbox::spawn -app_key $appKey -app_secret $appSecret \
    -redirect http://localhost:$port/ -service_id 7001]
puts "TikTok Shop sandbox listening on http://127.0.0.1:$sbPort"
puts "Redirect URL (as registered in Partner Center): http://localhost:$port/"
puts ""

proc run {title args} {
    puts "==== $title"
    puts "\$ tclsh [join [lmap a $args {
	expr {[string match demo_app_secret* $a] ? "***" : $a}
    }] { }]"
    set status 0
    if {[catch {exec [info nameofexecutable] {*}$args >@ stdout 2>@ stderr} msg opts]} {
	set status [lindex [dict get $opts -errorcode] 2]
	if {$status eq ""} {set status 1}
    }
    puts ""
    return $status
}

set browser [list [info nameofexecutable] [file join $top tests browser.tcl]]
set rc [run "1. Authorize (the seller approves in the browser; the token is saved)" \
    [file join $top examples tiktok_shop_authorize.tcl] \
    -appkey $appKey -appsecret $appSecret -serviceid 7001 \
    -port $port -tokenfile $tokenFile -wait 60 \
    -authendpoint [sandbox::url /open/authorize] \
    -tokenendpoint [sandbox::url /api/v2/token/get] \
    -browser $browser]
if {$rc == 0} {
    set rc [run "2. Refresh (no browser; the new token replaces the old in the file)" \
	[file join $top examples tiktok_shop_refresh.tcl] \
	-appkey $appKey -appsecret $appSecret -tokenfile $tokenFile \
	-tokenendpoint [sandbox::url /api/v2/token/refresh]]
}
if {$rc == 0} {
    set rc [run "3. Get Authorized Shops (a signed Shop API call with the refreshed token)" \
	[file join $top examples tiktok_shop_shops.tcl] \
	-appkey $appKey -appsecret $appSecret -tokenfile $tokenFile \
	-tokenendpoint [sandbox::url /api/v2/token/get] -apibaseurl [sandbox::url]]
}
if {$rc == 0} {
    set rc [run "4. Orders of the last 7 days of the first shop (signed POST, shop cipher)" \
	[file join $top examples tiktok_shop_orders.tcl] \
	-appkey $appKey -appsecret $appSecret -tokenfile $tokenFile \
	-tokenendpoint [sandbox::url /api/v2/token/get] -apibaseurl [sandbox::url]]
}

set stats [sandbox::control stats]
sandbox::kill
puts "Sandbox saw: [dict get $stats authorize] authorize, [dict get $stats token_get]\
    token get, [dict get $stats token_refresh] token refresh, [dict get $stats api]\
    shops, [dict get $stats orders] orders request(s)."
if {$keep eq ""} {
    file delete -force $dir
} else {
    puts "Token file kept: $tokenFile"
}
if {$rc == 0} {
    puts "Demo completed: authorized, refreshed, listed the shops and their orders."
} else {
    puts "Demo FAILED (exit status $rc)."
}
exit $rc
