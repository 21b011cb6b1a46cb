# pgcluster.tcl --
#
#	A throwaway PostgreSQL cluster for the tests: Debian's server
#	binaries (package postgresql), a cluster made by initdb in a
#	temporary folder, listening on 127.0.0.1 at a free port and on a
#	Unix socket in that folder, trust authentication; stopped and
#	removed by pgcluster::destroy, by exit, or -- should this process
#	die without either -- by a watchdog that notices its parent gone.
#
#	When the tests run as root (CI), the server runs as the postgres
#	user (or nobody): PostgreSQL refuses to run as root.
#
#	    pgcluster::available	-> "" or why not (the tests' skip reason)
#	    pgcluster::create		initdb + start; database "tto", superuser
#					"ttoauth2"
#	    pgcluster::spec ?user?	postgres://user@127.0.0.1:PORT/tto
#	    pgcluster::stop / start	stop or start the server (same data)
#	    pgcluster::psql sql ?user? ?db?  run SQL through psql, -> its output
#	    pgcluster::destroy

namespace eval pgcluster {
    variable bin ""
    variable root ""		;# the temporary folder
    variable port 0
    variable runAs {}		;# prefix running a command as the owner
    variable watchdog ""
}

proc pgcluster::findBin {} {
    variable bin
    foreach d [lsort -decreasing -dictionary \
	    [glob -nocomplain -directory /usr/lib/postgresql */bin]] {
	if {[file executable [file join $d initdb]]
		&& [file executable [file join $d pg_ctl]]} {
	    set bin $d
	    return $d
	}
    }
    return ""
}

proc pgcluster::available {} {
    variable runAs
    if {$::tcl_platform(platform) ne "unix"} {
	return "not a Unix system"
    }
    if {[findBin] eq ""} {
	return "PostgreSQL server not installed (apt-get install postgresql)"
    }
    if {[catch {package require tdbc::postgres}]} {
	return "tdbc::postgres missing for Tcl [info tclversion]\
	    (Debian: tcl8.6-tdbc-postgres for Tcl 8.6;\
	    for Tcl 9 see unix/tcl9-chroot.sh)"
    }
    set runAs {}
    if {[exec id -u] == 0} {
	if {[auto_execok runuser] ne "" && ![catch {exec id -u postgres}]} {
	    set runAs {runuser -u postgres --}
	} elseif {[auto_execok setpriv] ne ""} {
	    set runAs {setpriv --reuid=nobody --regid=nogroup --clear-groups}
	} else {
	    return "running as root without runuser or setpriv"
	}
    }
    return ""
}

proc pgcluster::run {args} {
    variable runAs
    exec {*}$runAs {*}$args 2>@1
}

proc pgcluster::freePort {} {
    set s [socket -server {apply {{c a p} {close $c}}} -myaddr 127.0.0.1 0]
    set p [lindex [fconfigure $s -sockname] 2]
    close $s
    return $p
}

proc pgcluster::create {} {
    variable bin
    variable root
    variable port
    variable runAs
    variable watchdog

    # The server's user must reach the folder: as root, /tmp (TMPDIR may
    # be below a folder only root can enter).
    set base [expr {[info exists ::env(TMPDIR)] && ![llength $runAs]
	? $::env(TMPDIR) : "/tmp"}]
    set root [file join $base ttoauth2-pg-[pid]-[clock clicks]]
    file mkdir $root
    file attributes $root -permissions 0o700
    if {![llength [trace info execution exit]]} {
	trace add execution exit enter [list apply {args {pgcluster::destroy}}]
    }
    if {[llength $runAs]} {
	set owner [expr {"postgres" in $runAs ? "postgres" : "nobody"}]
	exec chown $owner $root
    }
    set port [freePort]
    run $bin/initdb -D $root/data -U ttoauth2 -A trust -E UTF8 \
	--locale=C --no-sync
    start
    run $bin/createdb -h $root -p $port -U ttoauth2 tto

    # The watchdog: stops and removes the cluster once this process is
    # gone (a test file killed by its timeout, a crash).
    set script [format {
	while kill -0 %d 2>/dev/null; do sleep 1; done
	%s %s/pg_ctl -D %s/data -m immediate -w -t 30 stop >/dev/null 2>&1
	rm -rf %s
    } [pid] [join $runAs " "] $bin $root $root]
    set watchdog [exec sh -c $script </dev/null >/dev/null 2>/dev/null &]
}

proc pgcluster::start {} {
    variable bin
    variable root
    variable port
    run $bin/pg_ctl -D $root/data -l $root/log -w -t 30 \
	-o "-c listen_addresses=127.0.0.1 -c unix_socket_directories=$root\
	    -p $port -c fsync=off -c max_connections=100" start
}

proc pgcluster::stop {{mode fast}} {
    variable bin
    variable root
    run $bin/pg_ctl -D $root/data -m $mode -w -t 30 stop
}

proc pgcluster::spec {{user ttoauth2}} {
    variable port
    return postgres://$user@127.0.0.1:$port/tto
}

proc pgcluster::psql {sql {user ttoauth2} {db tto}} {
    variable bin
    variable root
    variable port
    run $bin/psql -X -q -A -t -v ON_ERROR_STOP=1 -h $root -p $port \
	-U $user -d $db -c $sql
}

proc pgcluster::destroy {} {
    variable bin
    variable root
    variable watchdog
    if {$root eq "" || ![file isdirectory $root]} {
	return
    }
    catch {run $bin/pg_ctl -D $root/data -m immediate -w -t 30 stop}
    file delete -force $root
    set root ""
    if {$watchdog ne ""} {
	catch {exec kill $watchdog}
	set watchdog ""
    }
}
