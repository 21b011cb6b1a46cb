# nginx.tcl --
#
#	A fast, static TikTok-Shop-shaped token endpoint for the benchmarks:
#	Debian's nginx run as a child of the bench, on 127.0.0.1 only, with a
#	configuration written into a temporary directory.  Both token paths
#	answer a fixed token JSON (HTTP 200, application/json, keep-alive):
#
#	    GET /api/v2/token/get	(code exchange)
#	    GET /api/v2/token/refresh	(refresh)
#	    GET /authorization/202309/shops (a Shop API answer, for request;
#					 signatures are not checked)
#
#	Static answers are enough: ttoauth2 takes any "code": 0 answer with a
#	data.access_token, so every refresh succeeds and spends no time in a
#	server-side token store.
#
#	bench::nginx::start body	-> port (waits until nginx accepts)
#	bench::nginx::pids		-> the master's and workers' process ids
#	bench::nginx::stop
#	bench::nginx::version		-> "1.22.1"

namespace eval ::bench::nginx {
    variable pid ""
    variable dir ""
    variable port 0
}

# bench::nginx::FreePort --
#
#	A loopback port nobody listens on right now (the OS picks it).  There
#	is a window between closing it and nginx binding it; start retries.

proc ::bench::nginx::FreePort {} {
    set s [socket -server {apply {args {}}} -myaddr 127.0.0.1 0]
    set p [lindex [fconfigure $s -sockname] 2]
    close $s
    return $p
}

# bench::nginx::Quote --
#
#	Text for a single-quoted nginx string.  nginx expands $variables in
#	"return" text, so a body with '$', a quote or a backslash is refused
#	rather than silently changed.

proc ::bench::nginx::Quote {text} {
    if {[regexp {[$'\\\n]} $text]} {
	error "the static token body must not contain \$, ', \\ or newlines"
    }
    return '$text'
}

proc ::bench::nginx::WriteConfig {dir port body} {
    set q [Quote $body]
    set conf [string map [list @DIR@ $dir @PORT@ $port @BODY@ $q] {
# Written by bench/nginx.tcl: a static token endpoint on loopback.
daemon off;
master_process off;
worker_processes 1;
user root;
pid @DIR@/nginx.pid;
error_log @DIR@/error.log warn;
events {
    worker_connections 1024;
}
http {
    access_log off;
    client_body_temp_path @DIR@/client_body;
    proxy_temp_path @DIR@/proxy;
    fastcgi_temp_path @DIR@/fastcgi;
    uwsgi_temp_path @DIR@/uwsgi;
    scgi_temp_path @DIR@/scgi;
    keepalive_timeout 300s;
    keepalive_requests 10000000;
    tcp_nodelay on;
    server_tokens off;
    server {
        listen 127.0.0.1:@PORT@;
        server_name localhost;
        location = /api/v2/token/refresh {
            default_type application/json;
            return 200 @BODY@;
        }
        location = /api/v2/token/get {
            default_type application/json;
            return 200 @BODY@;
        }
        location = /authorization/202309/shops {
            default_type application/json;
            return 200 '{"code":0,"message":"Success","request_id":"2024bench","data":{"shops":[{"cipher":"GCP_bench","code":"GBBENCH01","id":"7000000000000000001","name":"Bench Shop","region":"GB","seller_type":"LOCAL"}]}}';
        }
        location / {
            return 404;
        }
    }
}
}]
    set f [open [file join $dir nginx.conf] w]
    fconfigure $f -encoding utf-8
    puts -nonewline $f $conf
    close $f
}

# bench::nginx::start --
#
#	Writes the configuration and runs nginx in the foreground as a child.
#
# Results:
#	The port it listens on.  Errors (with nginx's error log) if it does
#	not accept connections within 5 s.

proc ::bench::nginx::start {body {workdir ""}} {
    variable pid
    variable dir
    variable port

    if {$workdir eq ""} {
	set workdir [file join [expr {[info exists ::env(TMPDIR)]
		? $::env(TMPDIR) : "/tmp"}] ttoauth2-bench-[pid]]
    }
    set dir $workdir
    file mkdir $dir
    set nginx [auto_execok nginx]
    if {$nginx eq "" && [file executable /usr/sbin/nginx]} {
	set nginx /usr/sbin/nginx
    }
    if {$nginx eq ""} {
	error "nginx not found (apt-get install nginx-light)"
    }
    for {set try 0} {$try < 5} {incr try} {
	set port [FreePort]
	WriteConfig $dir $port $body
	file delete [file join $dir error.log]
	set pid [exec {*}$nginx -p $dir -c [file join $dir nginx.conf] \
		-e [file join $dir error.log] \
		>& [file join $dir stdout.log] &]
	set deadline [expr {[clock milliseconds] + 5000}]
	while {[clock milliseconds] < $deadline} {
	    if {![catch {socket 127.0.0.1 $port} s]} {
		close $s
		return $port
	    }
	    if {![Alive $pid]} {
		break
	    }
	    after 20
	}
	set log ""
	catch {
	    set f [open [file join $dir error.log]]
	    set log [read $f]
	    close $f
	}
	stop
	if {![string match "*Address already in use*" $log]} {
	    error "nginx did not start: $log"
	}
    }
    error "nginx did not start: no free port"
}

proc ::bench::nginx::Alive {p} {
    if {![file exists /proc/$p]} {
	return 0
    }
    # A child that exited stays a zombie until reaped.
    set f [open /proc/$p/stat]
    set stat [read $f]
    close $f
    return [expr {[lindex [split [string range $stat \
	    [string last ) $stat] end] " "] 1] ne "Z"}]
}

# bench::nginx::pids --
#
#	The master's process id and its workers' (for bench::Pin).

proc ::bench::nginx::pids {} {
    variable pid
    set workers {}
    catch {set workers [split [string trim [exec pgrep -P $pid]] \n]}
    return [list $pid {*}$workers]
}

# bench::nginx::stop --
#
#	Ends the nginx child (QUIT, then KILL after 2 s) and removes the
#	temporary directory.

proc ::bench::nginx::stop {} {
    variable pid
    variable dir

    if {$pid ne ""} {
	catch {exec kill -QUIT $pid}
	set deadline [expr {[clock milliseconds] + 2000}]
	while {[Alive $pid] && [clock milliseconds] < $deadline} {
	    after 10
	}
	if {[Alive $pid]} {
	    catch {exec kill -KILL $pid}
	}
	# Reap it (Tcl reaps background children at the next exec too).
	catch {exec true}
	set pid ""
    }
    if {$dir ne "" && [file isdirectory $dir]} {
	file delete -force $dir
    }
    set dir ""
}

proc ::bench::nginx::version {} {
    set nginx [auto_execok nginx]
    if {$nginx eq ""} {
	set nginx /usr/sbin/nginx
    }
    catch {exec {*}$nginx -v} out
    if {[regexp {nginx/(\S+)} $out -> v]} {
	return $v
    }
    return unknown
}
