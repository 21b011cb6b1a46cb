# store.tcl --
#
#	Token stores: many tokens under keys, in a folder, an SQLite
#	database or a PostgreSQL database.  Sourced by pkgIndex.tcl after
#	the shared library; `ttoauth2 store ...` (C) calls ::ttoauth2::Store.
#
#	    ttoauth2 store open spec ?-locktimeout ms? ?-password pw?
#	    ttoauth2 store copy from to		;# every key, -> count
#
#	A store is a TclOO object.  Public methods (doc/ttoauth2.n, STORES):
#	keys, expiring, get, remove, close, cget; and the protocol through
#	which objects (-tokenstore) lock a key while they decide whether to
#	refresh:
#
#	    trylock key          1: now held by the caller; 0: held
#	                         elsewhere (another thread, process, host)
#	    read key             stored text, "" if none
#	    write key text expiresAt refreshExpiresAt
#	                         (lock held; "" = unknown expiry)
#	    unlock key commit    commit 0: undo what was written under it
#
#	trylock never waits long: whoever needs the lock calls it again
#	(between short sleeps, or from a timer so that an event loop keeps
#	running), up to -locktimeout.  Every call is made in the thread
#	that opened the store.
#
#	Backends (each only locks, reads and writes one key):
#	  file:DIR     DIR/KEY.json, the -tokenfile format; the lock is the
#	               platform's file lock on DIR/KEY.json.lock
#	               (::ttoauth2::tokenfile, generic/ttoauth2FileCmd.c)
#	  sqlite:FILE  TDBC; a locked key is a connection in a write
#	               transaction (BEGIN IMMEDIATE): one holder per database
#	  postgres://  TDBC; a locked key is a connection in a transaction
#	               holding the key's row lock (SELECT ... FOR UPDATE
#	               NOWAIT); the server drops it when the connection dies
#
#	Errors: {TTOAUTH2 STORE scheme ...} with the backend's message, never
#	a token (TDBC messages never carry bound values; -errorinfo is reset
#	to the message, so no caller's arguments show either).

namespace eval ::ttoauth2 {
    variable storeCounter 0

    # Keys of a file:DIR store: file names on every platform.
    variable fileKeyPattern {^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$}
    # ... but not Windows' device names, which no file can have there
    # (CON.json is the console), so that a folder works on every system.
    variable fileKeyReserved {^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\.|$)}

    # The Debian package of each TDBC driver, named when it is missing.
    variable tdbcPackages {
	sqlite   {tdbc::sqlite3  tcl8.6-tdbc-sqlite3}
	postgres {tdbc::postgres tcl8.6-tdbc-postgres}
    }

    # The one table, and its schema version in ttoauth2_meta.
    variable schemaVersion 1
}

# ::ttoauth2::Store --
#
#	ttoauth2 store open|copy ...
#
# Results:
#	open: the store command; copy: the number of keys copied.

proc ::ttoauth2::Store {args} {
    if {[llength $args] < 1} {
	return -code error -errorcode {TCL WRONGARGS} \
	    "wrong # args: should be \"ttoauth2 store open|copy ?arg ...?\""
    }
    set args [lassign $args sub]
    switch -exact -- $sub {
	open {
	    if {[llength $args] < 1} {
		return -code error -errorcode {TCL WRONGARGS} "wrong #\
		    args: should be \"ttoauth2 store open spec ?-option value\
		    ...?\""
	    }
	    try {
		return [OpenStore {*}$args]
	    } on error {msg opts} {
		return -code error -errorcode [dict get $opts -errorcode] $msg
	    }
	}
	copy {
	    if {[llength $args] != 2} {
		return -code error -errorcode {TCL WRONGARGS} \
		    "wrong # args: should be \"ttoauth2 store copy from to\""
	    }
	    try {
		return [CopyStore {*}$args]
	    } on error {msg opts} {
		return -code error -errorcode [dict get $opts -errorcode] $msg
	    }
	}
	default {
	    return -code error -errorcode [list TCL LOOKUP INDEX subcommand $sub] \
		"bad subcommand \"$sub\": must be copy or open"
	}
    }
}

proc ::ttoauth2::OpenStore {spec args} {
    variable storeCounter

    set options [dict create -locktimeout 30000 -password ""]
    foreach {name value} $args {
	if {![dict exists $options $name]} {
	    throw [list TCL LOOKUP INDEX option $name] "unknown option \"$name\":\
		must be -locktimeout or -password"
	}
	if {[llength $args] % 2} {
	    throw [list TTOAUTH2 OPTION [lindex $args end]] \
		"option \"[lindex $args end]\" needs a value"
	}
	dict set options $name $value
    }
    set ms [dict get $options -locktimeout]
    if {![string is entier -strict $ms] || $ms < 0 || $ms > 86400000} {
	throw {TTOAUTH2 OPTION -locktimeout} "-locktimeout must be\
	    milliseconds from 0 to 86400000, not \"$ms\""
    }
    dict set options -locktimeout [expr {$ms}]

    while {[info commands [set name ::ttoauth2::store[incr storeCounter]]]
	    ne ""} {}
    if {[regexp {^file:(.+)$} $spec -> dir]} {
	return [FileStore create $name $spec $dir $options]
    } elseif {[regexp {^sqlite:(.+)$} $spec -> file]} {
	return [SqliteStore create $name $spec $file $options]
    } elseif {[regexp {^postgres(?:ql)?://} $spec]} {
	return [PostgresStore create $name $spec $options]
    }
    throw {TTOAUTH2 STORE SPEC} "unknown token store \"[SafeSpec $spec]\":\
	must be file:DIR, sqlite:FILE or postgres://user@host:port/db"
}

# The spec without a password (postgres://user:password@...).
proc ::ttoauth2::SafeSpec {spec} {
    regsub {^(postgres(?:ql)?://[^:@/]*):.*@} $spec {\1:***@} spec
    return $spec
}

# ::ttoauth2::CopyStore --
#
#	Copies every key of store from into store to, each under to's lock,
#	with its expiries.  Keys that to cannot hold (a file:DIR store's
#	key rules) fail the copy before anything is written.
#
# Results:
#	The number of keys copied.

proc ::ttoauth2::CopyStore {from to} {
    foreach store [list $from $to] {
	if {[catch {info object class $store} cls]
		|| ![info object isa typeof $store ::ttoauth2::StoreBase]} {
	    throw [list TTOAUTH2 STORE NOSTORE] "\"$store\" is not a token store"
	}
    }
    set fromMy [info object namespace $from]::my
    set toMy [info object namespace $to]::my
    set keys [$from keys]
    foreach key $keys {
	$toMy Guard CheckKey $key
    }
    set n 0
    foreach key $keys {
	lassign [$fromMy Guard Entry $key] text expiresAt refreshExpiresAt
	if {$text eq ""} {
	    continue			;# removed meanwhile
	}
	$toMy Guard WaitLock $key
	try {
	    $to write $key $text $expiresAt $refreshExpiresAt
	} on error {msg opts} {
	    catch {$to unlock $key 0}
	    return -code error -errorcode [dict get $opts -errorcode] $msg
	}
	$to unlock $key 1
	incr n
    }
    return $n
}

#----------------------------------------------------------------------
# The base class: what every backend shares.
#----------------------------------------------------------------------

oo::class create ::ttoauth2::StoreBase {
    variable scheme spec options held

    # held: key -> backend's data for a key this store has locked

    method cget {option} {
	switch -exact -- $option {
	    -locktimeout {return [dict get $options -locktimeout]}
	    -spec {return [::ttoauth2::SafeSpec $spec]}
	    -scheme {return $scheme}
	    default {
		return -code error -errorcode [list TCL LOOKUP INDEX option $option] \
		    "unknown option \"$option\": must be -locktimeout,\
		    -scheme or -spec"
	    }
	}
    }

    method expiring {seconds} {
	if {![string is entier -strict $seconds]
		|| $seconds < -(1<<40) || $seconds > (1<<40)} {
	    return -code error -errorcode {TTOAUTH2 OPTION seconds} \
		"expiring needs a number of seconds, not \"$seconds\""
	}
	my Guard Expiring [expr {[clock seconds] + $seconds}]
    }

    method keys {} {
	my Guard Keys
    }

    method get {key} {
	my CheckKey $key
	lindex [my Guard Entry $key] 0
    }

    method remove {key} {
	my CheckKey $key
	my Guard Remove $key
	return
    }

    method trylock {key} {
	my CheckKey $key
	if {[dict exists $held $key]} {
	    return 0			;# this thread has it, for another caller
	}
	my Guard TryLock $key
    }

    method read {key} {
	my CheckKey $key
	my Guard Read $key
    }

    method write {key text expiresAt refreshExpiresAt} {
	my CheckKey $key
	foreach e [list $expiresAt $refreshExpiresAt] {
	    if {$e ne "" && ![string is entier -strict $e]} {
		return -code error -errorcode {TTOAUTH2 OPTION expiresAt} \
		    "an expiry is Unix seconds or \"\", not \"$e\""
	    }
	}
	if {![dict exists $held $key]} {
	    return -code error -errorcode [list TTOAUTH2 STORE $scheme NOLOCK] \
		"write needs the lock of key \"$key\" (trylock)"
	}
	if {$text eq ""} {
	    return -code error -errorcode [list TTOAUTH2 STORE $scheme EMPTY] \
		"a stored token response cannot be empty"
	}
	my Guard Write $key $text $expiresAt $refreshExpiresAt
	return
    }

    method unlock {key commit} {
	if {![string is boolean -strict $commit]} {
	    return -code error -errorcode {TTOAUTH2 OPTION commit} \
		"commit must be a boolean, not \"$commit\""
	}
	if {![dict exists $held $key]} {
	    return -code error -errorcode [list TTOAUTH2 STORE $scheme NOLOCK] \
		"key \"$key\" is not locked by this store"
	}
	my Guard Unlock $key [string is true $commit]
	return
    }

    method close {} {
	my destroy
	return
    }

    # Releases (rolling back) every lock still held; backends close
    # their connections after this.
    destructor {
	if {[info exists held]} {
	    foreach key [dict keys $held] {
		catch {my Unlock $key 0}
	    }
	}
    }

    # Calls the method of this store; its errors become {TTOAUTH2 STORE
    # ...} errors whose -errorinfo is only the message.
    method Guard {method args} {
	try {
	    my $method {*}$args
	} trap {TTOAUTH2} {msg opts} {
	    return -code error -errorcode [dict get $opts -errorcode] $msg
	} on error {msg opts} {
	    # TDBC's errors: {TDBC class SQLSTATE driver ...}
	    set code [dict get $opts -errorcode]
	    set word ERROR
	    if {[lindex $code 0] eq "TDBC" && [lindex $code 2] ne ""} {
		set word [lindex $code 2]
	    }
	    set msg [string trim [lindex [split $msg \n] 0]]
	    if {$msg eq ""} {
		set msg "the database request failed ($word)"
	    }
	    return -code error -errorcode [list TTOAUTH2 STORE $scheme $word] \
		"$scheme store: $msg"
	}
    }

    method CheckKey {key} {
	if {$key eq ""} {
	    return -code error -errorcode [list TTOAUTH2 STORE $scheme KEY] \
		"a store key cannot be empty"
	}
    }

    # Takes key's lock for an operation of the store itself (copy,
    # remove): trylock every few ms up to -locktimeout.
    method WaitLock {key} {
	set deadline [expr {[clock milliseconds]
	    + [dict get $options -locktimeout]}]
	set pause 1
	while {![my trylock $key]} {
	    if {[clock milliseconds] >= $deadline} {
		return -code error \
		    -errorcode [list TTOAUTH2 STORE $scheme LOCKTIMEOUT] \
		    "timed out waiting for the lock of key \"$key\""
	    }
	    after $pause
	    set pause [expr {min($pause * 2, 50)}]
	}
    }
}

#----------------------------------------------------------------------
# file:DIR
#----------------------------------------------------------------------

oo::class create ::ttoauth2::FileStore {
    superclass ::ttoauth2::StoreBase
    variable scheme spec options held dir

    constructor {theSpec theDir theOptions} {
	set scheme file
	set spec $theSpec
	set options $theOptions
	set held [dict create]
	set dir [file normalize $theDir]
	if {![file isdirectory $dir]} {
	    if {[file exists $dir]} {
		throw [list TTOAUTH2 STORE file ENOTDIR] \
		    "cannot open token store \"$dir\": not a directory"
	    }
	    try {
		file mkdir $dir
		if {$::tcl_platform(platform) eq "unix"} {
		    file attributes $dir -permissions 0o700
		}
	    } on error {msg} {
		throw [list TTOAUTH2 STORE file MKDIR] \
		    "cannot create token store \"$dir\": $msg"
	    }
	}
    }

    method CheckKey {key} {
	if {![regexp $::ttoauth2::fileKeyPattern $key]
		|| [regexp -nocase $::ttoauth2::fileKeyReserved $key]} {
	    return -code error -errorcode {TTOAUTH2 STORE file KEY} \
		"bad key \"$key\" for a file store: 1 to 200 of A-Z a-z\
		0-9 . _ -, not starting with \".\", not a device name of\
		Windows (CON, NUL, COM1 ...)"
	}
    }

    method Path {key} {
	return [file join $dir $key.json]
    }

    method Keys {} {
	set keys {}
	foreach f [glob -nocomplain -tails -directory $dir -types f *.json] {
	    set key [string range $f 0 end-5]
	    if {[regexp $::ttoauth2::fileKeyPattern $key]
		    && ![regexp -nocase $::ttoauth2::fileKeyReserved $key]} {
		lappend keys $key
	    }
	}
	return [lsort $keys]
    }

    # {text expiresAt refreshExpiresAt}; relative expiries (a file of
    # Chilkat's) count from the file's modification time.
    method Entry {key} {
	set path [my Path $key]
	set text [::ttoauth2::tokenfile read $path]
	if {$text eq ""} {
	    return {"" "" ""}
	}
	if {[catch {file mtime $path} mtime]} {
	    set mtime [clock seconds]
	}
	return [list $text {*}[::ttoauth2::tokenfile expiries $text $mtime]]
    }

    method Expiring {limit} {
	set result {}
	foreach key [my Keys] {
	    lassign [my Entry $key] text e r
	    if {($e ne "" && $e <= $limit) || ($r ne "" && $r <= $limit)} {
		lappend result $key
	    }
	}
	return $result
    }

    method Remove {key} {
	set mine [expr {![dict exists $held $key]}]
	if {$mine} {
	    my WaitLock $key
	}
	try {
	    file delete -- [my Path $key]
	} on error {msg} {
	    throw [list TTOAUTH2 STORE file REMOVE] \
		"cannot remove key \"$key\": $msg"
	} finally {
	    if {$mine} {
		my Unlock $key 0
	    }
	}
    }

    method TryLock {key} {
	set handle [::ttoauth2::tokenfile trylock [my Path $key]]
	if {$handle eq ""} {
	    return 0
	}
	dict set held $key [dict create handle $handle]
	return 1
    }

    method Read {key} {
	return [::ttoauth2::tokenfile read [my Path $key]]
    }

    # The file is replaced at once (atomically), so a token obtained
    # under the lock is on disk even if this process dies before
    # unlock; the text it replaced is kept for a rollback.
    method Write {key text expiresAt refreshExpiresAt} {
	set path [my Path $key]
	if {![dict exists $held $key before]} {
	    dict set held $key before [::ttoauth2::tokenfile read $path]
	}
	::ttoauth2::tokenfile write $path $text
    }

    method Unlock {key commit} {
	set h [dict get $held $key]
	dict unset held $key
	try {
	    if {!$commit && [dict exists $h before]} {
		set path [my Path $key]
		if {[dict get $h before] eq ""} {
		    file delete -- $path
		} else {
		    ::ttoauth2::tokenfile write $path [dict get $h before]
		}
	    }
	} finally {
	    ::ttoauth2::tokenfile unlock [dict get $h handle]
	}
    }
}

#----------------------------------------------------------------------
# SQL stores: what SQLite and PostgreSQL share.  A connection pool;
# prepared statements per connection.
#----------------------------------------------------------------------

oo::class create ::ttoauth2::SqlStore {
    superclass ::ttoauth2::StoreBase
    variable scheme spec options held main pool statements

    # main: the connection of operations without a lock (get, keys,
    # expiring, remove); pool: idle connections for trylock; held:
    # key -> the connection in a transaction holding key's lock.

    method InitSql {} {
	set held [dict create]
	set pool {}
	set main ""
	set statements [dict create]
    }

    destructor {
	next
	foreach conn [concat $pool [list $main]] {
	    if {$conn ne ""} {
		catch {$conn close}
	    }
	}
	set pool {}
	set main ""
    }

    # Loads a TDBC driver; a missing one names its Debian package.
    method Driver {} {
	lassign [dict get $::ttoauth2::tdbcPackages $scheme] pkg deb
	if {[catch {package require $pkg}]} {
	    set how "Debian: apt-get install $deb"
	    if {[package vsatisfies [package provide Tcl] 9-]} {
		# Debian 13 packages TDBC for Tcl 8.6 only.
		set how "for Tcl [info tclversion]; Debian's $deb is for\
		    Tcl 8.6"
	    }
	    throw [list TTOAUTH2 STORE $scheme DRIVER] "$scheme store needs\
		the Tcl package $pkg ($how)"
	}
    }

    # A statement of conn, prepared once.
    method Stmt {conn sql} {
	if {![dict exists $statements $conn $sql]} {
	    dict set statements $conn $sql [$conn prepare $sql]
	}
	return [dict get $statements $conn $sql]
    }

    method Rows {conn sql {vars {}}} {
	[my Stmt $conn $sql] allrows -as lists $vars
    }

    # A connection that failed is closed: the next call opens another,
    # so that a database that restarts is found again.
    method Drop {conn} {
	dict unset statements $conn
	catch {$conn close}
	if {$conn eq $main} {
	    set main ""
	}
    }

    method Main {} {
	if {$main eq ""} {
	    set main [my Connect 1]
	}
	return $main
    }

    # Runs script with conn bound to the main connection; drops it on
    # error.
    method OnMain {script} {
	set conn [my Main]
	try {
	    uplevel 1 [list set conn $conn]
	    uplevel 1 $script
	} on error {msg opts} {
	    my Drop $conn
	    return -options $opts $msg
	}
    }

    # Keys come as one JSON array (json_group_array / json_agg): one
    # row instead of thousands through the driver, 20 times faster for
    # 10,000 keys.  Sorted here, as the file store sorts them.
    method KeyList {where vars} {
	set sql [format {SELECT %s FROM ttoauth2_tokens WHERE body <> ''%s} \
	    [my KeyArray] $where]
	my OnMain {
	    set rows [my Rows $conn $sql $vars]
	}
	set json [lindex $rows 0 0]
	if {$json eq ""} {
	    return {}
	}
	return [lsort [ttoauth2 json parse $json]]
    }

    method Keys {} {
	my KeyList "" {}
    }

    method Expiring {limit} {
	my KeyList { AND (expires_at <= :limit OR refresh_expires_at <= :limit)} \
	    [dict create limit $limit]
    }

    method Entry {key} {
	my OnMain {
	    set rows [my Rows $conn {SELECT body,
		    COALESCE(expires_at, -1), COALESCE(refresh_expires_at, -1)
		FROM ttoauth2_tokens WHERE key = :key} [dict create key $key]]
	}
	if {[llength $rows] == 0} {
	    return {"" "" ""}
	}
	lassign [lindex $rows 0] body e r
	return [list $body [expr {$e < 0 ? "" : $e}] \
	    [expr {$r < 0 ? "" : $r}]]
    }

    # Under the key's lock (SQLite: the database's write lock), so that
    # removing never waits inside the database.
    method Remove {key} {
	set mine [expr {![dict exists $held $key]}]
	if {$mine} {
	    my WaitLock $key
	}
	try {
	    my Rows [dict get $held $key] {DELETE FROM ttoauth2_tokens
		WHERE key = :key} [dict create key $key]
	} on error {msg opts} {
	    if {$mine} {
		my Release $key 0
	    }
	    return -options $opts $msg
	}
	if {$mine} {
	    my Release $key 1
	}
    }

    method Read {key} {
	if {![dict exists $held $key]} {
	    return [lindex [my Entry $key] 0]
	}
	set rows [my Rows [dict get $held $key] {SELECT body FROM
	    ttoauth2_tokens WHERE key = :key} [dict create key $key]]
	return [lindex $rows 0 0]
    }

    method Write {key text expiresAt refreshExpiresAt} {
	set conn [dict get $held $key]
	set vars [dict create key $key body $text now [clock seconds]]
	foreach {name value} [list e $expiresAt r $refreshExpiresAt] {
	    if {$value ne ""} {
		dict set vars $name $value
	    }			;# absent: NULL
	}
	my Rows $conn {INSERT INTO ttoauth2_tokens
		(key, body, expires_at, refresh_expires_at, updated_at)
	    VALUES (:key, :body, :e, :r, :now)
	    ON CONFLICT (key) DO UPDATE SET body = excluded.body,
		expires_at = excluded.expires_at,
		refresh_expires_at = excluded.refresh_expires_at,
		updated_at = excluded.updated_at} $vars
    }

    method Unlock {key commit} {
	my Release $key $commit
    }

    # Ends the transaction of key's lock and returns its connection to
    # the pool; a connection that fails is dropped (its transaction
    # ends with it, on the server).  The lock is gone in any case; only
    # a failed commit is an error (what was written may be lost).
    # An error while the lock is held (read, write) leaves it held until
    # this: the caller's unlock stays valid.
    method Release {key commit} {
	set conn [dict get $held $key]
	dict unset held $key
	try {
	    if {$commit} {
		$conn commit
	    } else {
		$conn rollback
	    }
	} on error {msg opts} {
	    my Drop $conn
	    if {$commit} {
		return -options $opts $msg
	    }
	    return
	}
	lappend pool $conn
    }

    method PoolGet {} {
	if {[llength $pool]} {
	    set conn [lindex $pool end]
	    set pool [lrange $pool 0 end-1]
	    return $conn
	}
	return [my Connect 0]
    }
}

#----------------------------------------------------------------------
# sqlite:FILE
#----------------------------------------------------------------------

oo::class create ::ttoauth2::SqliteStore {
    superclass ::ttoauth2::SqlStore
    variable scheme spec options held main pool statements file

    constructor {theSpec theFile theOptions} {
	set scheme sqlite
	set spec $theSpec
	set options $theOptions
	my InitSql
	my Driver
	set file [file normalize $theFile]
	if {[file isdirectory $file]} {
	    throw {TTOAUTH2 STORE sqlite EISDIR} \
		"cannot open token store \"$file\": a directory"
	}
	if {![file exists $file]} {
	    # Created 0600 before SQLite sees it: SQLite gives its -wal and
	    # -shm files the database file's permissions.
	    try {
		close [open $file {WRONLY CREAT EXCL} 0o600]
	    } trap {POSIX EEXIST} {} {
	    } on error {msg opts} {
		throw [list TTOAUTH2 STORE sqlite [lindex [dict get $opts \
		    -errorcode] 1]] "cannot create token store \"$file\": $msg"
	    }
	}
	my Guard Schema
    }

    method KeyArray {} {
	return json_group_array(key)
    }

    # isMain 0: a connection for trylock, which must not wait for the
    # database's write lock (busy timeout 0); 1: the main connection,
    # which waits up to -locktimeout.
    method Connect {isMain} {
	set timeout [expr {$isMain ? [dict get $options -locktimeout] : 0}]
	try {
	    set conn [tdbc::sqlite3::connection new $file -timeout $timeout]
	} on error {msg} {
	    throw {TTOAUTH2 STORE sqlite OPEN} \
		"cannot open token store \"$file\": $msg"
	}
	return $conn
    }

    # A database that has its tables is only read (opening it never
    # waits for a holder of the write lock); a new one is set up in a
    # write transaction, in WAL mode (which stays with the file).
    method Schema {} {
	set conn [my Main]
	set rows [$conn allrows -as lists {SELECT count(*) FROM sqlite_master
	    WHERE type = 'table'
	    AND name IN ('ttoauth2_tokens', 'ttoauth2_meta')}]
	if {[lindex $rows 0 0] == 2} {
	    set version [$conn allrows -as lists {SELECT value FROM
		ttoauth2_meta WHERE name = 'schema_version'}]
	    if {[llength $version]} {
		my SchemaVersion $conn
		return
	    }
	}
	$conn allrows {PRAGMA journal_mode = WAL}
	$conn allrows {BEGIN IMMEDIATE}
	try {
	    $conn allrows {CREATE TABLE IF NOT EXISTS ttoauth2_meta (
		name TEXT PRIMARY KEY, value TEXT NOT NULL)}
	    $conn allrows {CREATE TABLE IF NOT EXISTS ttoauth2_tokens (
		key TEXT PRIMARY KEY, body TEXT NOT NULL, expires_at BIGINT,
		refresh_expires_at BIGINT, updated_at BIGINT)}
	    $conn allrows {CREATE INDEX IF NOT EXISTS ttoauth2_tokens_expires
		ON ttoauth2_tokens (expires_at)}
	    $conn allrows {CREATE INDEX IF NOT EXISTS
		ttoauth2_tokens_refresh_expires
		ON ttoauth2_tokens (refresh_expires_at)}
	    my SchemaVersion $conn
	    $conn allrows COMMIT
	} on error {msg opts} {
	    catch {$conn allrows ROLLBACK}
	    return -options $opts $msg
	}
    }

    method SchemaVersion {conn} {
	set rows [$conn allrows -as lists {SELECT value FROM ttoauth2_meta
	    WHERE name = 'schema_version'}]
	if {[llength $rows] == 0} {
	    $conn allrows [format {INSERT INTO ttoauth2_meta (name, value)
		VALUES ('schema_version', '%d')} $::ttoauth2::schemaVersion]
	} elseif {[lindex $rows 0 0] ne $::ttoauth2::schemaVersion} {
	    throw [list TTOAUTH2 STORE $scheme SCHEMA] "token store has\
		schema version [lindex $rows 0 0]; this ttoauth2 knows\
		$::ttoauth2::schemaVersion"
	}
    }

    # The lock cycle (BEGIN, SELECT, COMMIT) goes to the connection's
    # SQLite handle directly: through TDBC statements it cost about 60 us
    # a statement, a quarter of that per cycle (bench section 13).
    # Writes stay on TDBC (their values are bound as text there).

    # BEGIN IMMEDIATE takes the database's write lock at once or fails
    # with SQLITE_BUSY (5) / SQLITE_LOCKED (6): someone else holds it.
    method TryLock {key} {
	set conn [my PoolGet]
	if {[catch {[$conn getDBhandle] eval {BEGIN IMMEDIATE}} msg opts]} {
	    if {[catch {[$conn getDBhandle] errorcode} code] == 0
		    && $code in {5 6}} {
		lappend pool $conn
		return 0
	    }
	    my Drop $conn
	    return -options $opts $msg
	}
	dict set held $key $conn
	return 1
    }

    method Read {key} {
	if {![dict exists $held $key]} {
	    return [lindex [my Entry $key] 0]
	}
	# SQLite binds a Tcl value by its internal type: a new value that is
	# only a string binds as text whatever the key looked like before.
	# (A substring is always new: Tcl 9 hands back the value itself from
	# append to "", [format %s] and [string cat].)
	set k [string range "=$key" 1 end]
	[[dict get $held $key] getDBhandle] onecolumn {SELECT body FROM
	    ttoauth2_tokens WHERE key = :k}
    }

    method Release {key commit} {
	set conn [dict get $held $key]
	dict unset held $key
	try {
	    [$conn getDBhandle] eval [expr {$commit ? "COMMIT" : "ROLLBACK"}]
	} on error {msg opts} {
	    catch {[$conn getDBhandle] eval ROLLBACK}
	    my Drop $conn
	    if {$commit} {
		return -options $opts $msg
	    }
	    return
	}
	lappend pool $conn
    }
}

#----------------------------------------------------------------------
# postgres://user@host:port/db
#----------------------------------------------------------------------

oo::class create ::ttoauth2::PostgresStore {
    superclass ::ttoauth2::SqlStore
    variable scheme spec options held main pool statements connectArgs

    constructor {theSpec theOptions} {
	set scheme postgres
	set spec $theSpec
	set options $theOptions
	my InitSql
	set connectArgs [my ParseSpec $theSpec]
	my Driver
	my Guard Schema
    }

    # postgres://user[:password]@host[:port]/database, parts
    # percent-encoded; a host that starts with / (%2F) is the folder of
    # the server's Unix socket.  [::1] for IPv6.
    method ParseSpec {s} {
	set re {^postgres(?:ql)?://(?:([^:@/]*)(?::([^@/]*))?@)?(\[[^\]]*\]|[^:/@]*)(?::([0-9]+))?/([^/?@]+)$}
	if {![regexp $re $s -> user password host port db]} {
	    throw {TTOAUTH2 STORE postgres SPEC} "bad PostgreSQL store\
		\"[::ttoauth2::SafeSpec $s]\": must be\
		postgres://user@host:port/database"
	}
	set host [string trim [my Decode $host] {[]}]
	set result [list -database [my Decode $db]]
	if {$user ne ""} {
	    lappend result -user [my Decode $user]
	}
	if {$host ne ""} {
	    lappend result -host $host
	}
	if {$port ne ""} {
	    lappend result -port $port
	}
	if {[dict get $options -password] ne ""} {
	    lappend result -password [dict get $options -password]
	} elseif {$password ne ""} {
	    lappend result -password [my Decode $password]
	}
	return $result
    }

    # Percent-decoding; what is not UTF-8 (Tcl 9 refuses it) stays bytes.
    method Decode {s} {
	set parts [split [encoding convertto utf-8 $s] %]
	set bytes [lindex $parts 0]
	foreach part [lrange $parts 1 end] {
	    if {[regexp {^([0-9A-Fa-f]{2})(.*)$} $part -> hex rest]} {
		append bytes [binary format H2 $hex] $rest
	    } else {
		append bytes % $part
	    }
	}
	if {[catch {encoding convertfrom utf-8 $bytes} text]} {
	    return $bytes
	}
	return $text
    }

    method KeyArray {} {
	return json_agg(key)
    }

    method Connect {isMain} {
	try {
	    set conn [tdbc::postgres::connection new {*}$connectArgs]
	} on error {msg} {
	    throw {TTOAUTH2 STORE postgres CONNECT} "cannot connect to\
		[::ttoauth2::SafeSpec $spec]: [lindex [split $msg \n] 0]"
	}
	return $conn
    }

    # The tables are created by the first process only (an advisory
    # lock orders concurrent first opens); a role without CREATE
    # rights opens a database that has them already.
    method Schema {} {
	set conn [my Main]
	try {
	    set exists [lindex [$conn allrows -as lists {SELECT
		to_regclass('ttoauth2_tokens') IS NOT NULL
		AND to_regclass('ttoauth2_meta') IS NOT NULL}] 0 0]
	    if {!$exists} {
		$conn begintransaction
		$conn allrows {SELECT pg_advisory_xact_lock(7432713012)}
		$conn allrows {CREATE TABLE IF NOT EXISTS ttoauth2_meta (
		    name TEXT PRIMARY KEY, value TEXT NOT NULL)}
		$conn allrows {CREATE TABLE IF NOT EXISTS ttoauth2_tokens (
		    key TEXT PRIMARY KEY, body TEXT NOT NULL,
		    expires_at BIGINT, refresh_expires_at BIGINT,
		    updated_at BIGINT)}
		$conn allrows {CREATE INDEX IF NOT EXISTS
		    ttoauth2_tokens_expires ON ttoauth2_tokens (expires_at)}
		$conn allrows {CREATE INDEX IF NOT EXISTS
		    ttoauth2_tokens_refresh_expires
		    ON ttoauth2_tokens (refresh_expires_at)}
		$conn allrows [format {INSERT INTO ttoauth2_meta (name, value)
		    VALUES ('schema_version', '%d') ON CONFLICT DO NOTHING} \
		    $::ttoauth2::schemaVersion]
		$conn commit
	    }
	    set rows [$conn allrows -as lists {SELECT value FROM
		ttoauth2_meta WHERE name = 'schema_version'}]
	} on error {msg opts} {
	    my Drop $conn
	    return -options $opts $msg
	}
	if {[lindex $rows 0 0] ne $::ttoauth2::schemaVersion} {
	    throw [list TTOAUTH2 STORE $scheme SCHEMA] "token store has\
		schema version \"[lindex $rows 0 0]\"; this ttoauth2 knows\
		$::ttoauth2::schemaVersion"
	}
    }

    # The key's row lock, taken without waiting (NOWAIT: SQLSTATE 55P03
    # lock_not_available when another transaction has it).  A key
    # without a row gets an empty one first (committed at once; an
    # empty body counts as no token), so that there is a row to lock.
    method TryLock {key} {
	set conn [my PoolGet]
	set vars [dict create key $key now [clock seconds]]
	try {
	    for {set attempt 0} {$attempt < 2} {incr attempt} {
		$conn begintransaction
		try {
		    set rows [my Rows $conn {SELECT 1 FROM ttoauth2_tokens
			WHERE key = :key FOR UPDATE NOWAIT} $vars]
		} trap {TDBC} {msg opts} {
		    catch {$conn rollback}
		    if {"55P03" in [dict get $opts -errorcode]} {
			lappend pool $conn
			return 0
		    }
		    return -options $opts $msg
		}
		if {[llength $rows]} {
		    dict set held $key $conn
		    return 1
		}
		$conn rollback
		my Rows $conn {INSERT INTO ttoauth2_tokens (key, body,
		    updated_at) VALUES (:key, '', :now)
		    ON CONFLICT (key) DO NOTHING} $vars
	    }
	    lappend pool $conn
	    return 0			;# removed meanwhile: try again later
	} on error {msg opts} {
	    if {![dict exists $held $key] && $conn ni $pool} {
		my Drop $conn
	    }
	    return -options $opts $msg
	}
    }
}
