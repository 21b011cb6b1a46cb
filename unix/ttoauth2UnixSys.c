/*
 * ttoauth2UnixSys.c --
 *
 *	The POSIX side of what differs by platform (see the platform layer
 *	in ttoauth2Int.h; win/ttoauth2WinSys.c is the Windows side): the
 *	clock, the OS random source, SHA-256 and HMAC-SHA256 (OpenSSL's
 *	libcrypto), and the token file (atomic replace, bounded read,
 *	cross-process lock).
 *
 *	POSIX.1-2008 plus flock() (Linux, macOS, the BSDs).  What not every
 *	Unix has is optional: getrandom() (Linux), getentropy() and
 *	mkostemp() (configure checks, HAVE_*), F_OFD_SETLKW (Linux), each
 *	with a portable fallback.
 */

#ifndef _GNU_SOURCE
#   define _GNU_SOURCE		/* mkostemp, F_OFD_SETLKW, syscall */
#endif

#include "ttoauth2Int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#ifdef __linux__
#   include <sys/syscall.h>
#endif
#ifdef HAVE_SYS_RANDOM_H
#   include <sys/random.h>	/* getentropy on macOS */
#endif

#ifndef O_CLOEXEC
#   define O_CLOEXEC 0		/* pre-2008 systems: see SetCloexec */
#   define TTO_NO_O_CLOEXEC 1
#endif

#define MAX_FILE_SIZE	(16 * 1024 * 1024)	/* TtoFileRead refuses more */

/*
 * A lock taken by TtoFileLock: the open lock file and how it is locked.
 */

typedef enum {
    LOCK_KIND_FLOCK,		/* flock(LOCK_EX) */
    LOCK_KIND_OFD		/* fcntl F_OFD_SETLKW */
} LockKind;

typedef struct {
    int fd;
    LockKind kind;
} FileLock;

static void	DirectoryOf(const char *path, Tcl_DString *dirPtr,
		    const char **basePtr);
static int	LockFile(const char *path, int wait, void **lockPtr,
		    int *errnoPtr);
static int	OpenTemp(char *pattern);
static int	TransferAll(int fd, void *buf, size_t len, int writing);
static void	SetCloexec(int fd);

/*
 *----------------------------------------------------------------------
 *
 * SetCloexec --
 *
 *	Where open() has no O_CLOEXEC (systems before POSIX.1-2008), sets
 *	close-on-exec after the fact, so that no program started later
 *	inherits the descriptor.
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Sets FD_CLOEXEC on fd when it is not -1.
 *
 *----------------------------------------------------------------------
 */

static void
SetCloexec(
    int fd)
{
#ifdef TTO_NO_O_CLOEXEC
    if (fd >= 0) {
	(void) fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
#else
    (void) fd;
#endif
}

/*
 *----------------------------------------------------------------------
 *
 * TtoNowMs --
 *
 *	The monotonic clock in milliseconds: the listener's deadlines must
 *	not jump when someone sets the wall clock.
 *
 * Results:
 *	Milliseconds since an arbitrary fixed point.
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

long long
TtoNowMs(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoThreadExit --
 *
 *	The end of a joinable thread made with Tcl_CreateThread: releases
 *	the thread's Tcl allocator cache and thread data; the caller then
 *	returns from its thread function.  (Tcl_ExitThread would end the
 *	thread with pthread_exit from inside the caller's frame, which
 *	unwinds without unpoisoning its locals: AddressSanitizer then trips
 *	over them.)
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Finalizes Tcl for this thread.
 *
 *----------------------------------------------------------------------
 */

void
TtoThreadExit(void)
{
    Tcl_FinalizeThread();
}

/*
 *----------------------------------------------------------------------
 *
 * TransferAll --
 *
 *	Reads exactly len bytes into buf, or writes all len bytes of buf,
 *	through short transfers and EINTR.
 *
 * Results:
 *	0, or -1 with errno set (EIO when the other end gave nothing).
 *
 * Side effects:
 *	Reads from or writes to fd.
 *
 *----------------------------------------------------------------------
 */

static int
TransferAll(
    int fd,
    void *buf,
    size_t len,
    int writing)
{
    char *p = (char *) buf;
    size_t done = 0;

    while (done < len) {
	ssize_t n = writing ? write(fd, p + done, len - done)
		: read(fd, p + done, len - done);

	if (n > 0) {
	    done += (size_t) n;
	} else if (n < 0 && errno == EINTR) {
	    continue;
	} else {
	    if (n == 0) {
		errno = EIO;
	    }
	    return -1;
	}
    }
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoOsRandom --
 *
 *	Fills buf from the operating system's CSPRNG: getrandom() on Linux
 *	(it blocks only until the pool is first seeded; called through
 *	syscall() so any libc will do), getentropy() where configure found
 *	it (macOS, the BSDs), /dev/urandom where neither exists or the
 *	call is refused (old kernel, seccomp).
 *
 * Results:
 *	0, or -1 when no random source works.
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

int
TtoOsRandom(
    unsigned char *buf,
    size_t len)
{
    size_t done = 0;
    struct stat st;
    int fd, result;

#if defined(__linux__) && defined(SYS_getrandom)
    while (done < len) {
	long n = syscall(SYS_getrandom, buf + done, len - done, 0);

	if (n > 0) {
	    done += (size_t) n;
	} else if (n < 0 && errno == EINTR) {
	    continue;
	} else if (n < 0 && (errno == ENOSYS || errno == EPERM)) {
	    break;			/* use /dev/urandom */
	} else {
	    return -1;
	}
    }
#elif defined(HAVE_GETENTROPY)
    while (done < len) {
	size_t chunk = len - done;

	if (chunk > 256) {
	    chunk = 256;		/* getentropy's limit */
	}
	if (getentropy(buf + done, chunk) < 0) {
	    break;
	}
	done += chunk;
    }
#endif
    if (done == len) {
	return 0;
    }

    fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
	return -1;
    }
    SetCloexec(fd);
    if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode)) {
	close(fd);
	return -1;
    }
    result = TransferAll(fd, buf + done, len - done, 0);
    close(fd);
    return result;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoSha256 --
 *
 *	SHA-256 of len bytes (the PKCE S256 challenge), by libcrypto.
 *
 * Results:
 *	0 with the digest in out, or -1 when libcrypto failed.
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

int
TtoSha256(
    const void *data,
    size_t len,
    unsigned char out[32])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digestLen = 0;

    if (EVP_Digest(data, len, digest, &digestLen, EVP_sha256(), NULL) != 1
	    || digestLen != 32) {
	return -1;
    }
    memcpy(out, digest, 32);
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoHmacSha256 --
 *
 *	HMAC-SHA256 (RFC 2104) of len bytes with a key (TikTok Shop's
 *	request and webhook signatures), by libcrypto's one-shot HMAC(),
 *	which OpenSSL 1.1 and 3 both have.
 *
 * Results:
 *	0 with the MAC in out, or -1 when libcrypto failed or the key is
 *	longer than HMAC() takes (INT_MAX).
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

int
TtoHmacSha256(
    const void *key,
    size_t keyLen,
    const void *data,
    size_t len,
    unsigned char out[32])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int macLen = 0;
    static const unsigned char empty = 0;

    if (keyLen > INT_MAX) {
	return -1;
    }
    if (HMAC(EVP_sha256(), keyLen ? key : &empty, (int) keyLen,
	    len ? (const unsigned char *) data : &empty, len, mac, &macLen)
	    == NULL || macLen != 32) {
	return -1;
    }
    memcpy(out, mac, 32);
    memset(mac, 0, sizeof(mac));
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * DirectoryOf --
 *
 *	Splits a path into its directory (for the temp file and the
 *	directory fsync) and its last component.
 *
 * Results:
 *	The directory in *dirPtr ("." for a bare name, "/" for a file in
 *	the root), the last component in *basePtr (points into path).
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

static void
DirectoryOf(
    const char *path,
    Tcl_DString *dirPtr,
    const char **basePtr)
{
    const char *slash = strrchr(path, '/');

    if (slash == NULL) {
	Tcl_DStringAppend(dirPtr, ".", 1);
	*basePtr = path;
    } else if (slash == path) {
	Tcl_DStringAppend(dirPtr, "/", 1);
	*basePtr = slash + 1;
    } else {
	Tcl_DStringAppend(dirPtr, path, (Tcl_Size) (slash - path));
	*basePtr = slash + 1;
    }
}

/*
 *----------------------------------------------------------------------
 *
 * OpenTemp --
 *
 *	Creates and opens a new file from a mkstemp() template, close-on-
 *	exec: mkostemp() where there is one (one step, so no program that
 *	another thread starts meanwhile can inherit it), else mkstemp() and
 *	FD_CLOEXEC.
 *
 * Results:
 *	The descriptor, or -1 with errno set.
 *
 * Side effects:
 *	Creates the file (mode 0600 at most) and fills in the template.
 *
 *----------------------------------------------------------------------
 */

static int
OpenTemp(
    char *pattern)
{
#ifdef HAVE_MKOSTEMP
    return mkostemp(pattern, O_CLOEXEC);
#else
    int fd = mkstemp(pattern);

    if (fd >= 0) {
	(void) fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    return fd;
#endif
}

/*
 *----------------------------------------------------------------------
 *
 * TtoFileWriteAtomic --
 *
 *	Replaces the file at path with data so that a crash at any moment
 *	leaves either the old file or the new one, complete: the data goes
 *	to a temp file in the same directory (".NAME.tmpXXXXXX", mode
 *	0600), is fsync'ed, and is renamed over path; then the directory
 *	is fsync'ed so the rename itself survives a power loss.
 *
 *	When path is a symbolic link, the link is replaced by the file
 *	(rename() semantics); its old target is left alone.
 *
 * Results:
 *	0, or -1 with *errnoPtr set (EISDIR when path is a directory,
 *	which is left untouched).
 *
 * Side effects:
 *	Replaces the file; never leaves a temp file behind on failure.
 *
 *----------------------------------------------------------------------
 */

int
TtoFileWriteAtomic(
    const char *path,
    const char *data,
    size_t len,
    int *errnoPtr)
{
    Tcl_DString dir, tmp;
    const char *base;
    struct stat st;
    int fd, dirFd;

    if (path == NULL || *path == '\0') {
	*errnoPtr = ENOENT;
	return -1;
    }
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
	*errnoPtr = EISDIR;
	return -1;
    }
    Tcl_DStringInit(&dir);
    Tcl_DStringInit(&tmp);
    DirectoryOf(path, &dir, &base);
    if (*base == '\0') {			/* "dir/" */
	*errnoPtr = EISDIR;
	goto done;
    }
    Tcl_DStringAppend(&tmp, Tcl_DStringValue(&dir), -1);
    if (strcmp(Tcl_DStringValue(&dir), "/") != 0) {
	Tcl_DStringAppend(&tmp, "/", 1);
    }
    Tcl_DStringAppend(&tmp, ".", 1);
    Tcl_DStringAppend(&tmp, base, -1);
    Tcl_DStringAppend(&tmp, ".tmpXXXXXX", -1);

    /*
     * mkstemp() creates the file with mode 0600 masked by the umask, so
     * never more than 0600, but a umask like 0277 would leave it
     * unwritable for its owner on the next save: set 0600 exactly.
     */

    fd = OpenTemp(Tcl_DStringValue(&tmp));
    if (fd < 0) {
	*errnoPtr = errno;
	goto done;
    }
    if (fchmod(fd, S_IRUSR | S_IWUSR) < 0
	    || TransferAll(fd, (void *) data, len, 1) < 0
	    || fsync(fd) < 0) {
	*errnoPtr = errno;
	close(fd);
	goto removeTemp;
    }
    if (close(fd) < 0) {			/* NFS reports write errors here */
	*errnoPtr = errno;
	goto removeTemp;
    }
    if (rename(Tcl_DStringValue(&tmp), path) < 0) {
	*errnoPtr = errno;
	goto removeTemp;
    }

    /*
     * The new file is in place whatever happens now; a directory that
     * cannot be fsync'ed (some file systems refuse) is not an error.
     */

    dirFd = open(Tcl_DStringValue(&dir), O_RDONLY | O_CLOEXEC
#ifdef O_DIRECTORY
	    | O_DIRECTORY
#endif
	    );
    if (dirFd >= 0) {
	SetCloexec(dirFd);
	(void) fsync(dirFd);
	close(dirFd);
    }
    Tcl_DStringFree(&dir);
    Tcl_DStringFree(&tmp);
    return 0;

  removeTemp:
    unlink(Tcl_DStringValue(&tmp));
  done:
    Tcl_DStringFree(&dir);
    Tcl_DStringFree(&tmp);
    return -1;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoFileRead --
 *
 *	Reads a whole regular file.  Anything else is refused: a
 *	directory (EISDIR), a FIFO or device (EINVAL; the open is
 *	non-blocking so a FIFO without writer cannot hang the caller), a
 *	file over 16 MiB (EFBIG; no token file is that big).
 *
 * Results:
 *	0 with *dataPtr (ckalloc'ed, NUL-terminated; the caller frees it)
 *	and *lenPtr (excluding the NUL), or -1 with *errnoPtr set.
 *
 * Side effects:
 *	Allocates memory.
 *
 *----------------------------------------------------------------------
 */

int
TtoFileRead(
    const char *path,
    char **dataPtr,
    size_t *lenPtr,
    int *errnoPtr)
{
    struct stat st;
    char *buf;
    size_t cap, len = 0;
    int fd;

    *dataPtr = NULL;
    *lenPtr = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
	*errnoPtr = errno;
	return -1;
    }
    SetCloexec(fd);
    if (fstat(fd, &st) < 0) {
	*errnoPtr = errno;
	close(fd);
	return -1;
    }
    if (S_ISDIR(st.st_mode) || !S_ISREG(st.st_mode)
	    || st.st_size > MAX_FILE_SIZE) {
	*errnoPtr = S_ISDIR(st.st_mode) ? EISDIR
		: !S_ISREG(st.st_mode) ? EINVAL : EFBIG;
	close(fd);
	return -1;
    }

    /*
     * st_size is a hint only: the file may grow or shrink while read.
     * Read to EOF, never past the limit.
     */

    cap = (size_t) st.st_size + 1;
    buf = ckalloc(cap + 1);
    for (;;) {
	ssize_t n;

	if (len == cap) {
	    if (cap > MAX_FILE_SIZE) {
		ckfree(buf);
		close(fd);
		*errnoPtr = EFBIG;
		return -1;
	    }
	    cap = (cap * 2 > (size_t) MAX_FILE_SIZE + 1)
		    ? (size_t) MAX_FILE_SIZE + 1 : cap * 2;
	    buf = ckrealloc(buf, cap + 1);
	}
	n = read(fd, buf + len, cap - len);
	if (n > 0) {
	    len += (size_t) n;
	} else if (n == 0) {
	    break;
	} else if (errno != EINTR) {
	    *errnoPtr = errno;
	    ckfree(buf);
	    close(fd);
	    return -1;
	}
    }
    close(fd);
    buf[len] = '\0';
    *dataPtr = buf;
    *lenPtr = len;
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoFileLock --
 *
 *	Takes an exclusive lock for the token file at path, waiting as
 *	long as another holder keeps it.
 *
 *	The lock is on a sibling file, path + ".lock" (created 0600, never
 *	deleted: deleting it would let two processes lock two different
 *	inodes), because the token file itself is replaced by rename and
 *	a lock on its old inode would protect nothing.
 *
 *	Two threads of one process (two objects in two interps) must
 *	exclude each other like two processes do.  Classic fcntl() record
 *	locks cannot: they belong to the process, so a second thread would
 *	"get" the lock its sibling holds, and closing any descriptor of
 *	the file drops them.  flock() and open file description locks
 *	(F_OFD_SETLKW, Linux 3.15+) both belong to one open(), so they
 *	can.  flock() is used first: it is in every Unix this builds on,
 *	and valgrind (3.19) does not know that F_OFD_SETLKW can block, so
 *	it would freeze the whole process under `make valgrind` while one
 *	thread waits for another.  Linux's NFS client maps flock() to
 *	server-side byte-range locks, so hosts sharing an NFS home exclude
 *	each other too (unless mounted with local_lock=flock or =all).
 *	Where the file system has no flock() (ENOLCK, EOPNOTSUPP...), an
 *	OFD lock is tried.
 *
 *	The wait is not bounded: the holder is a refresh, itself bounded
 *	by -timeout, and the kernel releases the lock of a process that
 *	dies.  A timed wait would need a signal (alarm), which a library
 *	in a multi-threaded process must not use.
 *
 * Results:
 *	0 with *lockPtr set (release with TtoFileUnlock), or -1 with
 *	*errnoPtr set.
 *
 * Side effects:
 *	May create the lock file; blocks while another holds the lock.
 *
 *----------------------------------------------------------------------
 */

int
TtoFileLock(
    const char *path,
    void **lockPtr,
    int *errnoPtr)
{
    return (LockFile(path, 1, lockPtr, errnoPtr) == 0) ? 0 : -1;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoFileTryLock --
 *
 *	TtoFileLock without the wait: takes the lock of the token file at
 *	path (on path + ".lock", as TtoFileLock) only when nobody holds it.
 *	The store protocol's trylock (library/store.tcl) waits by calling
 *	this again, so that an event loop keeps running in between.
 *
 * Results:
 *	0 with *lockPtr set (release with TtoFileUnlock), 1 when another
 *	holder (thread, process, or host over NFS) has it, or -1 with
 *	*errnoPtr set.
 *
 * Side effects:
 *	May create the lock file.
 *
 *----------------------------------------------------------------------
 */

int
TtoFileTryLock(
    const char *path,
    void **lockPtr,
    int *errnoPtr)
{
    return LockFile(path, 0, lockPtr, errnoPtr);
}

/*
 * The two above: wait for the lock, or return 1 at once when it is held.
 */

static int
LockFile(
    const char *path,
    int wait,
    void **lockPtr,
    int *errnoPtr)
{
    Tcl_DString lockPath;
    FileLock *lock;
    int fd, rc, flockErr;

    *lockPtr = NULL;
    Tcl_DStringInit(&lockPath);
    Tcl_DStringAppend(&lockPath, path, -1);
    Tcl_DStringAppend(&lockPath, ".lock", 5);

    /*
     * Create it exclusively first so that a file we create gets exactly
     * 0600 whatever the umask; one that exists is only opened.
     */

    fd = open(Tcl_DStringValue(&lockPath),
	    O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, S_IRUSR | S_IWUSR);
    if (fd >= 0) {
	(void) fchmod(fd, S_IRUSR | S_IWUSR);
    } else if (errno == EEXIST) {
	fd = open(Tcl_DStringValue(&lockPath), O_RDWR | O_CLOEXEC);
    }
    if (fd < 0) {
	*errnoPtr = errno;
	Tcl_DStringFree(&lockPath);
	return -1;
    }
    SetCloexec(fd);
    Tcl_DStringFree(&lockPath);

    lock = (FileLock *) ckalloc(sizeof(FileLock));
    lock->fd = fd;
    lock->kind = LOCK_KIND_FLOCK;
    do {
	rc = flock(fd, wait ? LOCK_EX : (LOCK_EX | LOCK_NB));
    } while (rc < 0 && errno == EINTR);
    flockErr = errno;
    if (rc < 0 && !wait && errno == EWOULDBLOCK) {
	close(fd);
	ckfree((char *) lock);
	return 1;
    }
#ifdef F_OFD_SETLKW
    if (rc < 0 && errno != EBADF && errno != ENOMEM) {
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = 0;
	fl.l_len = 0;			/* the whole file */
	fl.l_pid = 0;			/* required for OFD locks */
	lock->kind = LOCK_KIND_OFD;
	do {
	    rc = fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl);
	} while (rc < 0 && errno == EINTR);
	if (rc < 0 && !wait && (errno == EAGAIN || errno == EACCES)) {
	    close(fd);
	    ckfree((char *) lock);
	    return 1;
	}
	if (rc < 0 && errno == EINVAL) {
	    errno = flockErr;		/* no OFD locks: flock's reason */
	}
    }
#endif
    if (rc < 0) {
	*errnoPtr = errno;
	close(fd);
	ckfree((char *) lock);
	return -1;
    }
    *lockPtr = lock;
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoFileUnlock --
 *
 *	Releases a lock taken by TtoFileLock.
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Unlocks and closes the lock file (which stays on disk).
 *
 *----------------------------------------------------------------------
 */

void
TtoFileUnlock(
    void *lockData)
{
    FileLock *lock = (FileLock *) lockData;

    if (lock == NULL) {
	return;
    }
    if (lock->kind == LOCK_KIND_FLOCK) {
	(void) flock(lock->fd, LOCK_UN);
    }
#ifdef F_OFD_SETLK
    if (lock->kind == LOCK_KIND_OFD) {
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_UNLCK;
	fl.l_whence = SEEK_SET;
	(void) fcntl(lock->fd, F_OFD_SETLK, &fl);
    }
#endif
    close(lock->fd);			/* releases the lock in any case */
    ckfree((char *) lock);
}

/*
 *----------------------------------------------------------------------
 *
 * TtoPlatformInit --
 *
 *	What the package needs from the platform in each interpreter that
 *	loads it.  Nothing on Unix: library/ttoauth2.tcl starts the
 *	browser with exec through /bin/sh, and Tcl's own descriptors are
 *	close-on-exec.
 *
 * Results:
 *	TCL_OK.
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

int
TtoPlatformInit(
    Tcl_Interp *interp)
{
    (void) interp;
    return TCL_OK;
}
