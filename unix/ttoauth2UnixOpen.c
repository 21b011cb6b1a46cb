/*
 * ttoauth2UnixOpen.c --
 *
 *	The program that opens a URL in the user's browser when neither
 *	-browser nor $BROWSER names one.
 */

#include "ttoauth2Int.h"

const char *const *
TtoDefaultOpener(void)
{
#ifdef __APPLE__
    static const char *const opener[] = {"open", NULL};
#else
    static const char *const opener[] = {"xdg-open", NULL};
#endif
    return opener;
}
