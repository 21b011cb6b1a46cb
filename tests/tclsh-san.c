/*
 * tclsh-san.c --
 *
 *	A plain tclsh, built with the sanitizers by `make test` when the
 *	build is configured with --enable-sanitize.  Linking the sanitizer
 *	runtime into the executable (instead of LD_PRELOAD into the system
 *	tclsh) keeps it out of every other program the tests start: curl,
 *	openssl, node, pkill would otherwise run sanitized too, slowly.
 */

#include <tcl.h>

int
main(
    int argc,
    char **argv)
{
    Tcl_Main(argc, argv, Tcl_Init);
    return 0;
}
