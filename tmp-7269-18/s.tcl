apply {{f} {
	package require ttoauth2
	set o [ttoauth2 new -accesstoken A -refreshtoken R]
	$o saveToken $f
    }} /work/main/tmp-7269-18/t.json