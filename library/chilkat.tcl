# chilkat.tcl --
#
#	ttoauth2::chilkat: the Chilkat Tcl binding's procedure names over
#	ttoauth2, so that a script written for Chilkat's CkOAuth2 (such as
#	Chilkat's "TikTok Shop OAuth2" samples) runs unchanged.
#
# Porting a Chilkat script
#
#	Replace the line
#
#	    load ./chilkat.dll            (or chilkat.so, package require chilkat)
#
#	with
#
#	    package require ttoauth2::chilkat
#
#	and leave the rest alone.  The global commands below have the names,
#	argument order and return values of Chilkat's SWIG binding:
#	new_CkOAuth2 / delete_CkOAuth2, CkOAuth2_put_X / CkOAuth2_get_X for
#	properties, CkOAuth2_x (lower-case first letter) for string
#	properties, CkOAuth2_get_X h ckString filling a CkString for string
#	properties, and the methods (CkOAuth2_startAuth, _StartAuth h
#	ckString, _LaunchBrowser, _SleepMs, _Cancel, _Monitor,
#	_RefreshAccessToken, _AddAuthQueryParam, ...).  CkOAuth2_startAuth
#	while a flow runs cancels it first, as Chilkat does.  As in Chilkat, a method that fails does not raise: it returns
#	0 or "" and sets LastMethodSuccess to 0 and lastErrorText to the
#	reason (ttoauth2's message and its -errorcode); a method that succeeds
#	sets LastMethodSuccess to 1.  Programming errors do raise a Tcl
#	error: an unknown or deleted handle ({TTOAUTH2 HANDLE type handle}),
#	a wrong number of arguments, and a property value ttoauth2 rejects
#	(a port outside 0..65535, a non-boolean: {TTOAUTH2 OPTION ...}), much
#	as SWIG raises on an argument of the wrong type.
#
#	The handle new_CkOAuth2 returns is the name of the native ttoauth2
#	object command, so its extra options are at hand when needed, e.g.
#	    $oauth2 configure -browser {firefox} -tokenfile tokens.json
#
#	Also provided, as far as the TikTok Shop samples need them:
#	CkJsonObject (Load, LoadFile, LoadSb, emit, EmitSb, EmitCompact,
#	IntOf, stringOf, BoolOf, HasMember, SizeOfArray, I/J/K with "[i]",
#	"[j]", "[k]" in paths, Size), CkFileAccess (WriteEntireTextFile,
#	ReadEntireTextFile, FileExists, DirAutoCreate) and CkStringBuilder
#	(Append, GetAsString, WriteFile, LoadFile, Clear, Length), CkString
#	(getString, setString, append, clear, getNumChars) and CkGlobal
#	(UnlockBundle accepts any code and returns 1, UnlockStatus is 2:
#	nothing here is locked, but scripts that unlock first run unchanged).
#	Their handles are plain unique strings ("CkJsonObject:1", ...), as
#	Chilkat's SWIG pointers are.
#
# Not supported (the commands do not exist, so a script using one fails
# loudly rather than doing something else):
#
#	- The CkString out-argument forms outside CkOAuth2
#	  (CkJsonObject_StringOf j path outStr, ...): use the lower-case
#	  forms that return the string.  Exceptions, as the names are common
#	  in samples: CkStringBuilder_GetAsString sb and
#	  CkFileAccess_ReadEntireTextFile return their string, and
#	  CkOAuth2_GetRedirectRequestParam h name returns it too (with a
#	  third argument it fills that CkString and returns 1 or 0).
#	- Async methods (*Async, CkTask), event callbacks, AbortCheck,
#	  HeartbeatMs, DebugLogFilePath, VerboseLogging (accepted, ignored),
#	  LastErrorHtml/LastErrorXml, AppCallbackUrl, IncludeNonce/NonceLength,
#	  UseConnection, SetRefreshHeader.
#	- JSON editing (UpdateString, AddObjectAt, Delete, ...) and JSON
#	  arrays as documents (CkJsonArray): a CkJsonObject here is a read-only
#	  view of the text it loaded.
#
# Behaviour worth knowing
#
#	- CkFileAccess_WriteEntireTextFile and CkStringBuilder_WriteFile write
#	  the file whole (temporary file in the same folder, then rename), so
#	  a crash leaves the old token file or the new one, never half of it.
#	  A new file is created owner-only (0600 on Unix) because the samples
#	  use these to store tokens; an existing file keeps its permissions.
#	  Neither creates missing folders (as Chilkat); DirAutoCreate does.
#	- CkJsonObject_emit is compact (EmitCompact 1, Chilkat's default) or
#	  indented with two spaces (EmitCompact 0); numbers and strings are
#	  emitted exactly as they were loaded, so 4841467787 stays intact.
#	- CkJsonObject_stringOf gives numbers as written, booleans as
#	  "true"/"false", null as "null"; an object or array, or a missing
#	  path, gives "" and LastMethodSuccess 0.

package require Tcl 8.6-
package require ttoauth2 1.0

namespace eval ::ttoauth2::chilkat {
    # Per-handle state, keyed "handle,field".
    #   oauth: lms (LastMethodSuccess), err (LastErrorText), verbose
    #   json:  text, size, compact, I, J, K, lms, err
    #   fac:   lms, err
    #   sb:    text, lms, err
    #   str:   text (CkString)
    #   global: the handle's LastErrorText (CkGlobal), keyed by handle
    variable oauth
    variable json
    variable fac
    variable sb
    variable str
    variable global
    array set oauth {}
    array set str {}
    array set global {}
    array set json {}
    array set fac {}
    array set sb {}
    variable counter 0
}

#----------------------------------------------------------------------
# Shared helpers
#----------------------------------------------------------------------

# Raises the error for a handle that is not (or no longer) one of ours.
proc ::ttoauth2::chilkat::BadHandle {type handle} {
    return -code error -level 2 -errorcode [list TTOAUTH2 HANDLE $type $handle] \
	"invalid $type handle \"$handle\""
}

proc ::ttoauth2::chilkat::NewHandle {type} {
    variable counter
    return "$type:[incr counter]"
}

# Records the outcome of a method on a handle of the given kind.
proc ::ttoauth2::chilkat::Ok {kind handle} {
    variable $kind
    set ${kind}($handle,lms) 1
    set ${kind}($handle,err) ""
}

proc ::ttoauth2::chilkat::Fail {kind handle method message {errorCode NONE}} {
    variable $kind
    set ${kind}($handle,lms) 0
    set text "$method: $message"
    if {$errorCode ne "" && $errorCode ne "NONE"} {
	append text "\nerrorCode: $errorCode"
    }
    set ${kind}($handle,err) $text
}

# Maps a Chilkat charset name to a Tcl encoding, "" if unknown.
proc ::ttoauth2::chilkat::Encoding {charset} {
    set cs [string tolower [string trim $charset]]
    switch -- $cs {
	"" - utf-8 - utf8 {return utf-8}
	ansi {return [encoding system]}
	ascii - us-ascii {return ascii}
	iso-8859-1 - latin1 - latin-1 {return iso8859-1}
	windows-1252 {return cp1252}
	utf-16 - utf-16le - unicode {
	    return [expr {$::tcl_platform(byteOrder) eq "littleEndian" ? "unicode" : ""}]
	}
    }
    foreach candidate [list $cs [string map {- ""} $cs] \
	    [string map {iso-8859- iso8859- windows- cp} $cs]] {
	if {$candidate in [encoding names]} {
	    return $candidate
	}
    }
    return ""
}

proc ::ttoauth2::chilkat::Bom {enc} {
    switch -- $enc {
	utf-8 {return "\xEF\xBB\xBF"}
	unicode {return "\xFF\xFE"}
    }
    return ""
}

# Writes text to path in the charset, whole or not at all.  Returns ""
# on success, else {message errorCode}.
proc ::ttoauth2::chilkat::WriteText {path text charset withBom} {
    set enc [Encoding $charset]
    if {$enc eq ""} {
	return [list "unknown charset \"$charset\"" [list TTOAUTH2 IO CHARSET $charset]]
    }
    if {![string is boolean -strict $withBom]} {
	return -code error "expected boolean value but got \"$withBom\""
    }
    set data [encoding convertto $enc $text]
    if {$withBom} {
	set data [Bom $enc]$data
    }
    set exists [file exists $path]
    if {$exists && [file type $path] eq "link"} {
	# Write through the link, as a plain open would.
	set direct 1
    } else {
	set direct 0
    }
    set tmp ""
    if {!$direct && [catch {
	set dir [file dirname $path]
	set f [file tempfile tmp [file join $dir .[file tail $path].tmp]]
    }]} {
	# No temporary file in that folder (missing folder, no rights):
	# let the plain open report why.
	set direct 1
	set tmp ""
    }
    if {$direct} {
	if {[catch {
	    if {!$exists && $::tcl_platform(platform) eq "unix"} {
		set f [open $path {WRONLY CREAT TRUNC} 0600]
	    } else {
		set f [open $path {WRONLY CREAT TRUNC}]
	    }
	    fconfigure $f -translation binary
	    puts -nonewline $f $data
	    close $f
	} msg opts]} {
	    catch {close $f}
	    return [list $msg [list TTOAUTH2 IO $path]]
	}
	return ""
    }
    if {[catch {
	fconfigure $f -translation binary
	puts -nonewline $f $data
	flush $f
	close $f
	if {$exists && $::tcl_platform(platform) eq "unix"} {
	    file attributes $tmp -permissions [file attributes $path -permissions]
	}
	file rename -force -- $tmp $path
    } msg]} {
	catch {close $f}
	catch {file delete -- $tmp}
	return [list "cannot write \"$path\": $msg" [list TTOAUTH2 IO $path]]
    }
    return ""
}

# Reads a text file: {1 text} or {0 message errorCode}.  A byte-order
# mark, if any, decides the encoding and is dropped.
proc ::ttoauth2::chilkat::ReadText {path charset} {
    set enc [Encoding $charset]
    if {$enc eq ""} {
	return [list 0 "unknown charset \"$charset\"" [list TTOAUTH2 IO CHARSET $charset]]
    }
    if {[catch {
	set f [open $path rb]
	set data [read $f]
	close $f
    } msg]} {
	catch {close $f}
	return [list 0 $msg [list TTOAUTH2 IO $path]]
    }
    if {[string range $data 0 2] eq "\xEF\xBB\xBF"} {
	set enc utf-8
	set data [string range $data 3 end]
    } elseif {[string range $data 0 1] eq "\xFF\xFE" && "unicode" eq [Encoding utf-16]} {
	set enc unicode
	set data [string range $data 2 end]
    }
    return [list 1 [encoding convertfrom $enc $data]]
}

#----------------------------------------------------------------------
# CkOAuth2
#----------------------------------------------------------------------

proc ::ttoauth2::chilkat::OAuth {h} {
    variable oauth
    if {![info exists oauth($h,lms)] || [info commands $h] eq ""} {
	BadHandle CkOAuth2 $h
    }
    return $h
}

# Runs a native method; on success records it and returns {1 result},
# on failure records the error and returns {0 ""}.
proc ::ttoauth2::chilkat::Call {h method args} {
    if {[catch {$h {*}$args} result opts]} {
	Fail oauth $h $method $result [dict get $opts -errorcode]
	return [list 0 ""]
    }
    Ok oauth $h
    return [list 1 $result]
}

proc ::new_CkOAuth2 {} {
    variable ::ttoauth2::chilkat::oauth
    set h [ttoauth2 new]
    set oauth($h,lms) 1
    set oauth($h,err) ""
    set oauth($h,verbose) 0
    return $h
}

proc ::delete_CkOAuth2 {h} {
    variable ::ttoauth2::chilkat::oauth
    if {![info exists oauth($h,lms)]} {
	::ttoauth2::chilkat::BadHandle CkOAuth2 $h
    }
    array unset oauth [string map {* \\* ? \\? [ \\[ ] \\] \\ \\\\} $h],*
    if {[info commands $h] ne ""} {
	$h destroy
    }
    return
}

# Read/write properties: Chilkat name, ttoauth2 option, kind.  Kind
# "bool" getters give 1/0, "string" ones also get the lower-case getter.
namespace eval ::ttoauth2::chilkat {
    variable properties {
	ListenPort            -listenport            int
	ListenPortRangeEnd    -listenportrangeend    int
	LocalHost             -localhost             string
	AuthorizationEndpoint -authorizationendpoint string
	TokenEndpoint         -tokenendpoint         string
	ClientId              -clientid              string
	ClientSecret          -clientsecret          string
	Scope                 -scope                 string
	StateParam            -state                 string
	CodeChallenge         -codechallenge         bool
	CodeChallengeMethod   -codechallengemethod   string
	UseBasicAuth          -usebasicauth          bool
	Resource              -resource              string
	RedirectAllowHtml     -redirectallowhtml     string
	RedirectDenyHtml      -redirectdenyhtml      string
	AccessToken           -accesstoken           token
	RefreshToken          -refreshtoken          token
    }
}

# Sets a property.  A value ttoauth2 rejects raises (programming error);
# a property that cannot change now (a flow is running) is recorded as a
# failure, as Chilkat never raises from a property.
proc ::ttoauth2::chilkat::Put {h name option value} {
    OAuth $h
    if {[catch {$h configure $option $value} msg opts]} {
	set code [dict get $opts -errorcode]
	if {[lindex $code 1] eq "OPTION"} {
	    return -code error -errorcode $code $msg
	}
	Fail oauth $h put_$name $msg $code
    }
    return
}

proc ::ttoauth2::chilkat::Get {h option kind} {
    OAuth $h
    switch -- $option {
	-accesstoken {return [$h accessToken]}
	-refreshtoken {return [$h refreshToken]}
    }
    set v [$h cget $option]
    if {$kind eq "bool"} {
	return [expr {$v ? 1 : 0}]
    }
    return $v
}

foreach {name option kind} $::ttoauth2::chilkat::properties {
    set map [list NAME $name OPTION $option KIND $kind]
    proc ::CkOAuth2_put_$name {h value} [string map $map {
	::ttoauth2::chilkat::Put $h NAME OPTION $value
    }]
    if {$kind eq "bool" || $kind eq "int"} {
	proc ::CkOAuth2_get_$name {h} [string map $map {
	    return [::ttoauth2::chilkat::Get $h OPTION KIND]
	}]
    }
}
unset -nocomplain name option kind map

# The string properties, each with the script that gives its value for
# the handle $h.  Each gets the three getter forms of Chilkat's binding:
# CkOAuth2_get_Name h (returns the string), CkOAuth2_get_Name h ckString
# (fills the CkString, returns nothing) and CkOAuth2_name h.
namespace eval ::ttoauth2::chilkat {
    variable stringGetters {}
    foreach {name option kind} $properties {
	if {$kind ni {bool int}} {
	    lappend stringGetters $name "::ttoauth2::chilkat::Get \$h $option $kind"
	}
    }
    unset -nocomplain name option kind
    lappend stringGetters \
	AccessTokenResponse {$h accessTokenResponse} \
	FailureInfo         {$h failureInfo} \
	TokenType           {$h tokenType} \
	RedirectUri         {$h redirectUri} \
	LastErrorText       {set ::ttoauth2::chilkat::oauth($h,err)} \
	Version             {package present ttoauth2}
}
foreach {name script} $::ttoauth2::chilkat::stringGetters {
    proc ::CkOAuth2_get_$name {h {ckString ""}} [string map [list SCRIPT $script] {
	::ttoauth2::chilkat::OAuth $h
	set value [SCRIPT]
	if {$ckString eq ""} {
	    return $value
	}
	::ttoauth2::chilkat::StrSet $ckString $value
	return
    }]
    proc ::CkOAuth2_[string tolower [string index $name 0]][string range $name 1 end] \
	    {h} "tailcall ::CkOAuth2_get_$name \$h"
}
unset -nocomplain name script

proc ::CkOAuth2_get_AuthFlowState {h} {
    ::ttoauth2::chilkat::OAuth $h
    return [$h authFlowState]
}

proc ::CkOAuth2_get_LastMethodSuccess {h} {
    variable ::ttoauth2::chilkat::oauth
    ::ttoauth2::chilkat::OAuth $h
    return $oauth($h,lms)
}

proc ::CkOAuth2_put_LastMethodSuccess {h value} {
    variable ::ttoauth2::chilkat::oauth
    ::ttoauth2::chilkat::OAuth $h
    set oauth($h,lms) [expr {$value ? 1 : 0}]
    return
}

proc ::CkOAuth2_get_VerboseLogging {h} {
    variable ::ttoauth2::chilkat::oauth
    ::ttoauth2::chilkat::OAuth $h
    return $oauth($h,verbose)
}

proc ::CkOAuth2_put_VerboseLogging {h value} {
    variable ::ttoauth2::chilkat::oauth
    ::ttoauth2::chilkat::OAuth $h
    set oauth($h,verbose) [expr {$value ? 1 : 0}]
    return
}

# Methods

# startAuth while a flow runs cancels that flow first, as Chilkat does.
proc ::CkOAuth2_startAuth {h} {
    ::ttoauth2::chilkat::OAuth $h
    if {[$h authFlowState] in {1 2}} {
	$h cancel
    }
    return [lindex [::ttoauth2::chilkat::Call $h startAuth startAuth] 1]
}

# The CkString form: fills ckString with the URL, returns 1 or 0.
proc ::CkOAuth2_StartAuth {h ckString} {
    ::ttoauth2::chilkat::Str $ckString
    set url [::CkOAuth2_startAuth $h]
    ::ttoauth2::chilkat::StrSet $ckString $url
    return [::CkOAuth2_get_LastMethodSuccess $h]
}

proc ::CkOAuth2_LaunchBrowser {h url} {
    ::ttoauth2::chilkat::OAuth $h
    return [lindex [::ttoauth2::chilkat::Call $h LaunchBrowser launchBrowser $url] 0]
}

proc ::CkOAuth2_SleepMs {h ms} {
    ::ttoauth2::chilkat::OAuth $h
    $h sleepMs $ms
    return
}

proc ::CkOAuth2_Cancel {h} {
    ::ttoauth2::chilkat::OAuth $h
    return [lindex [::ttoauth2::chilkat::Call $h Cancel cancel] 0]
}

proc ::CkOAuth2_RefreshAccessToken {h} {
    ::ttoauth2::chilkat::OAuth $h
    return [lindex [::ttoauth2::chilkat::Call $h RefreshAccessToken refresh] 0]
}

foreach {name method} {
    AddAuthQueryParam    addAuthQueryParam
    AddTokenQueryParam   addTokenQueryParam
    AddRefreshQueryParam addRefreshQueryParam
} {
    proc ::CkOAuth2_$name {h name value} [string map [list NAME $name METHOD $method] {
	::ttoauth2::chilkat::OAuth $h
	return [lindex [::ttoauth2::chilkat::Call $h NAME METHOD $name $value] 0]
    }]
}
unset -nocomplain name method

# Monitor: waits until the flow started by startAuth ends.  1 when it
# ended with success (state 3), else 0 with the reason.
proc ::CkOAuth2_Monitor {h} {
    ::ttoauth2::chilkat::OAuth $h
    lassign [::ttoauth2::chilkat::Call $h Monitor wait] ok state
    if {!$ok} {
	return 0
    }
    switch -- $state {
	3 {return 1}
	0 {
	    ::ttoauth2::chilkat::Fail oauth $h Monitor \
		"no OAuth2 flow has been started (call startAuth first)" \
		{TTOAUTH2 STATE}
	}
	4 {
	    ::ttoauth2::chilkat::Fail oauth $h Monitor \
		"authorization was denied (AuthFlowState 4)" {TTOAUTH2 TOKEN}
	}
	default {
	    ::ttoauth2::chilkat::Fail oauth $h Monitor \
		"the OAuth2 flow failed (AuthFlowState $state): [$h failureInfo]"
	}
    }
    return 0
}

# A parameter of the redirect the browser sent; "" and LastMethodSuccess
# 0 when the redirect did not carry it.
proc ::CkOAuth2_getRedirectRequestParam {h name} {
    ::ttoauth2::chilkat::OAuth $h
    lassign [::ttoauth2::chilkat::Call $h getRedirectRequestParam redirectParam] ok params
    if {!$ok} {
	return ""
    }
    if {![dict exists $params $name]} {
	::ttoauth2::chilkat::Fail oauth $h getRedirectRequestParam \
	    "the redirect has no parameter \"$name\""
	return ""
    }
    return [dict get $params $name]
}

# Returns the value, or with a CkString fills it and returns 1 or 0.
proc ::CkOAuth2_GetRedirectRequestParam {h name {ckString ""}} {
    if {$ckString eq ""} {
	tailcall ::CkOAuth2_getRedirectRequestParam $h $name
    }
    ::ttoauth2::chilkat::Str $ckString
    ::ttoauth2::chilkat::StrSet $ckString [::CkOAuth2_getRedirectRequestParam $h $name]
    return [::CkOAuth2_get_LastMethodSuccess $h]
}

#----------------------------------------------------------------------
# CkJsonObject: a read-only view of a JSON object's text, read by
# [ttoauth2 json] (cJSON): [json raw] gives a value as written (its first
# character says its type; numbers digit for digit), [json get] strings.
#----------------------------------------------------------------------

proc ::ttoauth2::chilkat::Json {j} {
    variable json
    if {![info exists json($j,lms)]} {
	BadHandle CkJsonObject $j
    }
    return $j
}

# The path with [i], [j], [k] replaced by the handle's I, J, K.
proc ::ttoauth2::chilkat::JsonPath {j path} {
    variable json
    return [string map [list {[i]} "\[$json($j,I)\]" {[j]} "\[$json($j,J)\]" \
	    {[k]} "\[$json($j,K)\]"] $path]
}

# {type value} at path, or {} when there is nothing there.  Types: o
# (object), a (array), s (string), n (number, as written), b (boolean
# 1/0), z (null).
proc ::ttoauth2::chilkat::JsonValue {j path} {
    variable json
    set path [JsonPath $j $path]
    if {[catch {ttoauth2 json raw $json($j,text) $path ""} raw]
	    || $raw eq ""} {
	return {}
    }
    switch -- [string index $raw 0] {
	"\{" {return [list o $raw]}
	"\[" {return [list a [llength [ttoauth2 json get $raw {}]]]}
	"\"" {return [list s [ttoauth2 json get $raw {}]]}
	t {return {b 1}}
	f {return {b 0}}
	n {return {z {}}}
    }
    return [list n $raw]
}

proc ::ttoauth2::chilkat::JsonMissing {j method path} {
    Fail json $j $method "no value at \"$path\"" \
	[list TTOAUTH2 JSON NOPATH [JsonPath $j $path]]
}

# Emits compact JSON: whitespace outside strings removed.
proc ::ttoauth2::chilkat::Compact {text} {
    regsub -all {("(?:[^"\\]|\\.)*")|\s+} $text {\1} out
    return $out
}

proc ::new_CkJsonObject {} {
    variable ::ttoauth2::chilkat::json
    set j [::ttoauth2::chilkat::NewHandle CkJsonObject]
    array set json [list $j,text "{}" $j,size 0 $j,compact 1 \
	    $j,I 0 $j,J 0 $j,K 0 $j,lms 1 $j,err ""]
    return $j
}

proc ::delete_CkJsonObject {j} {
    variable ::ttoauth2::chilkat::json
    ::ttoauth2::chilkat::Json $j
    array unset json $j,*
    return
}

proc ::CkJsonObject_Load {j text} {
    variable ::ttoauth2::chilkat::json
    ::ttoauth2::chilkat::Json $j
    if {[catch {ttoauth2 json raw $text {}} raw opts]} {
	::ttoauth2::chilkat::Fail json $j Load $raw [dict get $opts -errorcode]
	return 0
    }
    if {[string index $raw 0] ne "\{"} {
	::ttoauth2::chilkat::Fail json $j Load \
	    "the JSON is not an object" {TTOAUTH2 JSON NOTOBJECT}
	return 0
    }
    set json($j,text) $raw
    set json($j,size) [dict size [ttoauth2 json parse $raw]]
    ::ttoauth2::chilkat::Ok json $j
    return 1
}

proc ::CkJsonObject_LoadFile {j path} {
    ::ttoauth2::chilkat::Json $j
    set r [::ttoauth2::chilkat::ReadText $path utf-8]
    if {![lindex $r 0]} {
	::ttoauth2::chilkat::Fail json $j LoadFile [lindex $r 1] [lindex $r 2]
	return 0
    }
    return [::CkJsonObject_Load $j [lindex $r 1]]
}

proc ::CkJsonObject_LoadSb {j sbh} {
    variable ::ttoauth2::chilkat::sb
    ::ttoauth2::chilkat::Json $j
    ::ttoauth2::chilkat::Sb $sbh
    return [::CkJsonObject_Load $j $sb($sbh,text)]
}

proc ::CkJsonObject_emit {j} {
    variable ::ttoauth2::chilkat::json
    ::ttoauth2::chilkat::Json $j
    ::ttoauth2::chilkat::Ok json $j
    if {$json($j,compact)} {
	return [::ttoauth2::chilkat::Compact $json($j,text)]
    }
    return [ttoauth2 json pretty $json($j,text)]
}

proc ::CkJsonObject_Emit {j} {
    tailcall ::CkJsonObject_emit $j
}

# Appends the emitted JSON to a string builder.
proc ::CkJsonObject_EmitSb {j sbh} {
    variable ::ttoauth2::chilkat::sb
    ::ttoauth2::chilkat::Json $j
    ::ttoauth2::chilkat::Sb $sbh
    append sb($sbh,text) [::CkJsonObject_emit $j]
    return 1
}

foreach {name field} {EmitCompact compact I I J J K K} {
    set conv [expr {$name eq "EmitCompact" ? {[expr {$value ? 1 : 0}]}
			: {[expr {int($value)}]}}]
    proc ::CkJsonObject_put_$name {j value} [string map [list FIELD $field CONV $conv] {
	variable ::ttoauth2::chilkat::json
	::ttoauth2::chilkat::Json $j
	set json($j,FIELD) CONV
	return
    }]
    proc ::CkJsonObject_get_$name {j} [string map [list FIELD $field] {
	variable ::ttoauth2::chilkat::json
	::ttoauth2::chilkat::Json $j
	return $json($j,FIELD)
    }]
}
unset -nocomplain name field conv

proc ::CkJsonObject_get_LastMethodSuccess {j} {
    variable ::ttoauth2::chilkat::json
    ::ttoauth2::chilkat::Json $j
    return $json($j,lms)
}

proc ::CkJsonObject_lastErrorText {j} {
    variable ::ttoauth2::chilkat::json
    ::ttoauth2::chilkat::Json $j
    return $json($j,err)
}

proc ::CkJsonObject_get_LastErrorText {j} {
    tailcall ::CkJsonObject_lastErrorText $j
}

# Number of members of the top-level object.
proc ::CkJsonObject_get_Size {j} {
    variable ::ttoauth2::chilkat::json
    ::ttoauth2::chilkat::Json $j
    return $json($j,size)
}

proc ::CkJsonObject_IntOf {j path} {
    ::ttoauth2::chilkat::Json $j
    set tv [::ttoauth2::chilkat::JsonValue $j $path]
    if {$tv eq ""} {
	::ttoauth2::chilkat::JsonMissing $j IntOf $path
	return 0
    }
    lassign $tv type value
    ::ttoauth2::chilkat::Ok json $j
    switch -- $type {
	n {
	    if {[string is entier -strict $value]} {
		return [expr {$value + 0}]
	    }
	    return [expr {entier(double($value))}]
	}
	s {
	    set value [string trim $value]
	    if {[regexp {^[-+]?\d+} $value digits]} {
		return [expr {$digits + 0}]
	    }
	    return 0
	}
	b {return $value}
    }
    return 0
}

proc ::CkJsonObject_stringOf {j path} {
    ::ttoauth2::chilkat::Json $j
    set tv [::ttoauth2::chilkat::JsonValue $j $path]
    if {$tv eq ""} {
	::ttoauth2::chilkat::JsonMissing $j stringOf $path
	return ""
    }
    lassign $tv type value
    switch -- $type {
	o - a {
	    ::ttoauth2::chilkat::Fail json $j stringOf \
		"the value at \"$path\" is an [expr {$type eq "o" ? "object" : "array"}]"
	    return ""
	}
	b {set value [expr {$value ? "true" : "false"}]}
	z {set value null}
    }
    ::ttoauth2::chilkat::Ok json $j
    return $value
}

proc ::CkJsonObject_BoolOf {j path} {
    ::ttoauth2::chilkat::Json $j
    set tv [::ttoauth2::chilkat::JsonValue $j $path]
    if {$tv eq ""} {
	::ttoauth2::chilkat::JsonMissing $j BoolOf $path
	return 0
    }
    lassign $tv type value
    ::ttoauth2::chilkat::Ok json $j
    switch -- $type {
	b {return $value}
	s {return [expr {[string tolower $value] eq "true"}]}
    }
    return 0
}

proc ::CkJsonObject_HasMember {j path} {
    ::ttoauth2::chilkat::Json $j
    ::ttoauth2::chilkat::Ok json $j
    return [expr {[::ttoauth2::chilkat::JsonValue $j $path] ne ""}]
}

# Number of elements of the array at path; -1 if there is no array there.
proc ::CkJsonObject_SizeOfArray {j path} {
    ::ttoauth2::chilkat::Json $j
    lassign [::ttoauth2::chilkat::JsonValue $j $path] type size
    if {$type ne "a"} {
	::ttoauth2::chilkat::Fail json $j SizeOfArray "no array at \"$path\""
	return -1
    }
    ::ttoauth2::chilkat::Ok json $j
    return $size
}

#----------------------------------------------------------------------
# CkFileAccess
#----------------------------------------------------------------------

proc ::ttoauth2::chilkat::Fac {h} {
    variable fac
    if {![info exists fac($h,lms)]} {
	BadHandle CkFileAccess $h
    }
    return $h
}

proc ::new_CkFileAccess {} {
    variable ::ttoauth2::chilkat::fac
    set h [::ttoauth2::chilkat::NewHandle CkFileAccess]
    array set fac [list $h,lms 1 $h,err ""]
    return $h
}

proc ::delete_CkFileAccess {h} {
    variable ::ttoauth2::chilkat::fac
    ::ttoauth2::chilkat::Fac $h
    array unset fac $h,*
    return
}

proc ::CkFileAccess_WriteEntireTextFile {h path text charset includeBom} {
    ::ttoauth2::chilkat::Fac $h
    set err [::ttoauth2::chilkat::WriteText $path $text $charset $includeBom]
    if {$err ne ""} {
	::ttoauth2::chilkat::Fail fac $h WriteEntireTextFile {*}$err
	return 0
    }
    ::ttoauth2::chilkat::Ok fac $h
    return 1
}

proc ::CkFileAccess_readEntireTextFile {h path charset} {
    ::ttoauth2::chilkat::Fac $h
    set r [::ttoauth2::chilkat::ReadText $path $charset]
    if {![lindex $r 0]} {
	::ttoauth2::chilkat::Fail fac $h ReadEntireTextFile [lindex $r 1] [lindex $r 2]
	return ""
    }
    ::ttoauth2::chilkat::Ok fac $h
    return [lindex $r 1]
}

proc ::CkFileAccess_ReadEntireTextFile {h path charset} {
    tailcall ::CkFileAccess_readEntireTextFile $h $path $charset
}

proc ::CkFileAccess_FileExists {h path} {
    ::ttoauth2::chilkat::Fac $h
    ::ttoauth2::chilkat::Ok fac $h
    return [file exists $path]
}

# Creates a folder and any missing parents.
proc ::CkFileAccess_DirAutoCreate {h path} {
    ::ttoauth2::chilkat::Fac $h
    if {[catch {file mkdir $path} msg]} {
	::ttoauth2::chilkat::Fail fac $h DirAutoCreate $msg [list TTOAUTH2 IO $path]
	return 0
    }
    ::ttoauth2::chilkat::Ok fac $h
    return 1
}

proc ::CkFileAccess_get_LastMethodSuccess {h} {
    variable ::ttoauth2::chilkat::fac
    ::ttoauth2::chilkat::Fac $h
    return $fac($h,lms)
}

proc ::CkFileAccess_lastErrorText {h} {
    variable ::ttoauth2::chilkat::fac
    ::ttoauth2::chilkat::Fac $h
    return $fac($h,err)
}

proc ::CkFileAccess_get_LastErrorText {h} {
    tailcall ::CkFileAccess_lastErrorText $h
}

#----------------------------------------------------------------------
# CkStringBuilder
#----------------------------------------------------------------------

proc ::ttoauth2::chilkat::Sb {h} {
    variable sb
    if {![info exists sb($h,lms)]} {
	BadHandle CkStringBuilder $h
    }
    return $h
}

proc ::new_CkStringBuilder {} {
    variable ::ttoauth2::chilkat::sb
    set h [::ttoauth2::chilkat::NewHandle CkStringBuilder]
    array set sb [list $h,text "" $h,lms 1 $h,err ""]
    return $h
}

proc ::delete_CkStringBuilder {h} {
    variable ::ttoauth2::chilkat::sb
    ::ttoauth2::chilkat::Sb $h
    array unset sb $h,*
    return
}

proc ::CkStringBuilder_Append {h text} {
    variable ::ttoauth2::chilkat::sb
    ::ttoauth2::chilkat::Sb $h
    append sb($h,text) $text
    ::ttoauth2::chilkat::Ok sb $h
    return 1
}

proc ::CkStringBuilder_getAsString {h} {
    variable ::ttoauth2::chilkat::sb
    ::ttoauth2::chilkat::Sb $h
    return $sb($h,text)
}

proc ::CkStringBuilder_GetAsString {h} {
    tailcall ::CkStringBuilder_getAsString $h
}

proc ::CkStringBuilder_Clear {h} {
    variable ::ttoauth2::chilkat::sb
    ::ttoauth2::chilkat::Sb $h
    set sb($h,text) ""
    return
}

proc ::CkStringBuilder_get_Length {h} {
    variable ::ttoauth2::chilkat::sb
    ::ttoauth2::chilkat::Sb $h
    return [string length $sb($h,text)]
}

proc ::CkStringBuilder_WriteFile {h path charset emitBom} {
    variable ::ttoauth2::chilkat::sb
    ::ttoauth2::chilkat::Sb $h
    set err [::ttoauth2::chilkat::WriteText $path $sb($h,text) $charset $emitBom]
    if {$err ne ""} {
	::ttoauth2::chilkat::Fail sb $h WriteFile {*}$err
	return 0
    }
    ::ttoauth2::chilkat::Ok sb $h
    return 1
}

# Replaces the contents with a file's text.
proc ::CkStringBuilder_LoadFile {h path charset} {
    variable ::ttoauth2::chilkat::sb
    ::ttoauth2::chilkat::Sb $h
    set r [::ttoauth2::chilkat::ReadText $path $charset]
    if {![lindex $r 0]} {
	::ttoauth2::chilkat::Fail sb $h LoadFile [lindex $r 1] [lindex $r 2]
	return 0
    }
    set sb($h,text) [lindex $r 1]
    ::ttoauth2::chilkat::Ok sb $h
    return 1
}

proc ::CkStringBuilder_get_LastMethodSuccess {h} {
    variable ::ttoauth2::chilkat::sb
    ::ttoauth2::chilkat::Sb $h
    return $sb($h,lms)
}

proc ::CkStringBuilder_lastErrorText {h} {
    variable ::ttoauth2::chilkat::sb
    ::ttoauth2::chilkat::Sb $h
    return $sb($h,err)
}

proc ::CkStringBuilder_get_LastErrorText {h} {
    tailcall ::CkStringBuilder_lastErrorText $h
}

#----------------------------------------------------------------------
# CkString: the string object Chilkat's out-argument forms fill.
#----------------------------------------------------------------------

proc ::ttoauth2::chilkat::Str {h} {
    variable str
    if {![info exists str($h,text)]} {
	BadHandle CkString $h
    }
    return $h
}

proc ::ttoauth2::chilkat::StrSet {h text} {
    variable str
    Str $h
    set str($h,text) $text
    return
}

proc ::new_CkString {} {
    variable ::ttoauth2::chilkat::str
    set h [::ttoauth2::chilkat::NewHandle CkString]
    set str($h,text) ""
    return $h
}

proc ::delete_CkString {h} {
    variable ::ttoauth2::chilkat::str
    ::ttoauth2::chilkat::Str $h
    unset str($h,text)
    return
}

proc ::CkString_getString {h} {
    variable ::ttoauth2::chilkat::str
    ::ttoauth2::chilkat::Str $h
    return $str($h,text)
}

proc ::CkString_setString {h text} {
    ::ttoauth2::chilkat::StrSet $h $text
}

proc ::CkString_append {h text} {
    variable ::ttoauth2::chilkat::str
    ::ttoauth2::chilkat::Str $h
    append str($h,text) $text
    return
}

proc ::CkString_clear {h} {
    ::ttoauth2::chilkat::StrSet $h ""
}

proc ::CkString_getNumChars {h} {
    tailcall string length [::CkString_getString $h]
}

#----------------------------------------------------------------------
# CkGlobal: ttoauth2 needs no unlocking.  UnlockBundle accepts any code
# (and keeps none of it) so scripts that unlock first run unchanged.
#----------------------------------------------------------------------

proc ::ttoauth2::chilkat::Global {h} {
    variable global
    if {![info exists global($h)]} {
	BadHandle CkGlobal $h
    }
    return $h
}

proc ::new_CkGlobal {} {
    variable ::ttoauth2::chilkat::global
    set h [::ttoauth2::chilkat::NewHandle CkGlobal]
    set global($h) ""
    return $h
}

proc ::delete_CkGlobal {h} {
    variable ::ttoauth2::chilkat::global
    ::ttoauth2::chilkat::Global $h
    unset global($h)
    return
}

proc ::CkGlobal_UnlockBundle {h unlockCode} {
    variable ::ttoauth2::chilkat::global
    ::ttoauth2::chilkat::Global $h
    set global($h) "UnlockBundle: ttoauth2 needs no unlock code; nothing to do."
    return 1
}

# 2, Chilkat's "unlocked with a purchased code": nothing is ever locked.
proc ::CkGlobal_get_UnlockStatus {h} {
    ::ttoauth2::chilkat::Global $h
    return 2
}

proc ::CkGlobal_get_LastMethodSuccess {h} {
    ::ttoauth2::chilkat::Global $h
    return 1
}

proc ::CkGlobal_lastErrorText {h} {
    variable ::ttoauth2::chilkat::global
    ::ttoauth2::chilkat::Global $h
    return $global($h)
}

proc ::CkGlobal_get_LastErrorText {h {ckString ""}} {
    set text [::CkGlobal_lastErrorText $h]
    if {$ckString eq ""} {
	return $text
    }
    ::ttoauth2::chilkat::StrSet $ckString $text
    return
}

package provide ttoauth2::chilkat 1.0
