# mem.tcl --
#
#	The memory benchmark, run by bench.tcl in a fresh tclsh so that
#	nothing else lives in the process:
#	    tclsh bench/mem.tcl N
#	prints a dict: growth (bytes of RSS gained over N create/configure/
#	destroy cycles, after a warm-up of N/10), perObject (RSS bytes per
#	object with N objects alive), and the raw readings.
#
#	Objects are configured as a tool managing many shops would: the same
#	app key, secret and endpoints (shared values), and each its own
#	access and refresh token (distinct strings of TikTok's length).

package require Tcl 8.6-
package require ttoauth2

set n [lindex $argv 0]
if {$n eq ""} {
    set n 10000
}
set pageSize 4096
catch {set pageSize [exec getconf PAGESIZE]}

proc rss {} {
    set f [open /proc/self/statm]
    set resident [lindex [read $f] 1]
    close $f
    return [expr {$resident * $::pageSize}]
}

set endpoint https://auth.tiktok-shops.com/api/v2/token/get
set authorize https://services.tiktokshop.com/open/authorize

proc configureOne {o i} {
    $o configure -clientid 6a1bcdefgh2ij -clientsecret \
	    0123456789abcdef0123456789abcdef01234567 \
	    -tokenendpoint $::endpoint -authorizationendpoint $::authorize \
	    -listenport 3017 -accesstoken [format ROW_%090d $i] \
	    -refreshtoken [format ROW_%090d [expr {$i + 1000000000}]]
}

proc cycles {count} {
    for {set i 0} {$i < $count} {incr i} {
	set o [ttoauth2 new]
	configureOne $o $i
	$o destroy
    }
}

# Create/configure/destroy: after a warm-up, the RSS must not grow.
cycles [expr {max(100, $n / 10)}]
set before [rss]
cycles $n
set after [rss]

# Live objects: the names are not kept (each object is reachable as
# ::ttoauth2::oauthN), so only the objects themselves are counted.
set liveBefore [rss]
for {set i 0} {$i < $n} {incr i} {
    configureOne [ttoauth2 new] $i
}
set liveAfter [rss]
set count [llength [info commands ::ttoauth2::oauth*]]
if {$count != $n} {
    error "expected $n live objects, found $count"
}
foreach o [info commands ::ttoauth2::oauth*] {
    $o destroy
}

puts [list growth [expr {$after - $before}] \
	perObject [expr {double($liveAfter - $liveBefore) / $n}] \
	rssBefore $before rssAfter $after \
	liveBefore $liveBefore liveAfter $liveAfter objects $count]
