/*
 * ttoauth2UnixSys.c --
 *
 *	The POSIX side of what differs by platform apart from sockets: the
 *	clock, the OS random source, starting a program (the browser)
 *	detached, and the token file (atomic replace, bounded read,
 *	cross-process lock).
 */

#ifndef _GNU_SOURCE
#   define _GNU_SOURCE		/* mkostemp, O_CLOEXEC, F_OFD_SETLKW */
#endif

#include "ttoauth2Int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#ifdef __linux__
#   include <sys/syscall.h>
#endif
#if defined(__APPLE__) || defined(__OpenBSD__) || defined(__FreeBSD__)
#   include <sys/random.h>
#   define TTO_HAVE_GETENTROPY 1
#endif

#ifndef O_CLOEXEC
#   define O_CLOEXEC 0
#endif

/*
 * The second fork of TtoLaunch happens in a child of a multi-threaded
 * process, where only async-signal-safe calls are allowed.  _Fork()
 * (glibc 2.34+, POSIX.1-2024) is one; fork() runs pthread_atfork
 * handlers, which need not be.
 */

#if defined(__GLIBC__) && (__GLIBC__ > 2 \
	|| (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
#   define CHILD_FORK() _Fork()
#else
#   define CHILD_FORK() fork()
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

static void	CloseKeepErrno(int fd);
static void	DirectoryOf(const char *path, Tcl_DString *dirPtr,
		    const char **basePtr);
static void	LaunchChild(const char *path, char *const *argv, int errFd,
		    int maxFd, const struct sigaction *dflPtr);
static int	ReadAll(int fd, unsigned char *buf, size_t len);
static int	ResolveProgram(const char *name, Tcl_DString *pathPtr,
		    int *errnoPtr);
static void	ReportChildError(int errFd, int err);
static int	WriteAll(int fd, const char *data, size_t len);

/*
 *----------------------------------------------------------------------
 *
 * CloseKeepErrno --
 *
 *	close() for error paths: errno still says why they were taken.
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Closes fd when it is not -1.
 *
 *----------------------------------------------------------------------
 */

static void
CloseKeepErrno(
    int fd)
{
    int saved = errno;

    if (fd >= 0) {
	close(fd);
    }
    errno = saved;
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
 * ReadAll --
 *
 *	Reads exactly len bytes, through short reads and EINTR.
 *
 * Results:
 *	0, or -1 with errno set (EIO when the source ended early).
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

static int
ReadAll(
    int fd,
    unsigned char *buf,
    size_t len)
{
    size_t done = 0;

    while (done < len) {
	ssize_t n = read(fd, buf + done, len - done);

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
 *	(it blocks only until the pool is first seeded), getentropy() on
 *	the BSDs and macOS, /dev/urandom where neither exists or the call
 *	is refused (old kernel, seccomp).
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
#elif defined(TTO_HAVE_GETENTROPY)
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
    if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode)) {
	close(fd);
	return -1;
    }
    result = ReadAll(fd, buf + done, len - done);
    close(fd);
    return result;
}

/*
 *----------------------------------------------------------------------
 *
 * ResolveProgram --
 *
 *	Finds the file execvp() would run for name, in the parent, before
 *	fork(): searching PATH allocates, which is not allowed between
 *	fork() and exec() in a multi-threaded process.  A name holding a
 *	'/' is used as it is (exec reports what is wrong with it).
 *
 * Results:
 *	0 with the path in *pathPtr, or -1 with *errnoPtr ENOENT (found
 *	nowhere) or EACCES (found, but not an executable file).
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

static int
ResolveProgram(
    const char *name,
    Tcl_DString *pathPtr,
    int *errnoPtr)
{
    const char *search, *p, *end;
    char csPath[PATH_MAX];
    struct stat st;
    int sawAccess = 0;

    if (strchr(name, '/') != NULL) {
	Tcl_DStringAppend(pathPtr, name, -1);
	return 0;
    }
    search = getenv("PATH");
    if (search == NULL) {
	size_t n = confstr(_CS_PATH, csPath, sizeof(csPath));

	search = (n > 0 && n <= sizeof(csPath)) ? csPath : "/usr/bin:/bin";
    }
    for (p = search; ; p = end + 1) {
	end = strchr(p, ':');
	if (end == NULL) {
	    end = p + strlen(p);
	}
	Tcl_DStringSetLength(pathPtr, 0);
	if (end == p) {
	    Tcl_DStringAppend(pathPtr, ".", 1);	/* empty: current dir */
	} else {
	    Tcl_DStringAppend(pathPtr, p, (Tcl_Size) (end - p));
	}
	Tcl_DStringAppend(pathPtr, "/", 1);
	Tcl_DStringAppend(pathPtr, name, -1);
	if (stat(Tcl_DStringValue(pathPtr), &st) == 0) {
	    if (S_ISREG(st.st_mode)
		    && access(Tcl_DStringValue(pathPtr), X_OK) == 0) {
		return 0;
	    }
	    sawAccess = 1;
	} else if (errno == EACCES) {
	    sawAccess = 1;
	}
	if (*end == '\0') {
	    break;
	}
    }
    Tcl_DStringSetLength(pathPtr, 0);
    *errnoPtr = sawAccess ? EACCES : ENOENT;
    return -1;
}

/*
 *----------------------------------------------------------------------
 *
 * ReportChildError --
 *
 *	In a child of TtoLaunch: tells the parent why the program could
 *	not be started.  Async-signal-safe.
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Writes errno's value to the report pipe.
 *
 *----------------------------------------------------------------------
 */

static void
ReportChildError(
    int errFd,
    int err)
{
    const char *p = (const char *) &err;
    size_t done = 0;

    while (done < sizeof(err)) {
	ssize_t n = write(errFd, p + done, sizeof(err) - done);

	if (n > 0) {
	    done += (size_t) n;
	} else if (n < 0 && errno == EINTR) {
	    continue;
	} else {
	    return;
	}
    }
}

/*
 *----------------------------------------------------------------------
 *
 * LaunchChild --
 *
 *	The child side of TtoLaunch.  The fork()ed child starts a new
 *	session and forks again; the grandchild (no session leader, so it
 *	can never get a controlling terminal) gets /dev/null as stdin,
 *	stdout and stderr, no other descriptor but the report pipe, an
 *	empty signal mask and default SIGPIPE/SIGCHLD, and execs.  The
 *	child exits at once, so the grandchild is adopted by init (or a
 *	subreaper) and nobody has to wait for the program.
 *
 *	Only async-signal-safe calls: other threads of the parent may
 *	have held locks (malloc's included) at the time of fork().
 *
 * Results:
 *	Never returns.
 *
 * Side effects:
 *	Runs the program, or reports errno on errFd and exits.
 *
 *----------------------------------------------------------------------
 */

static void
LaunchChild(
    const char *path,
    char *const *argv,
    int errFd,
    int maxFd,
    const struct sigaction *dflPtr)
{
    sigset_t none;
    pid_t pid;
    int fd, done = 0;

    (void) setsid();
    pid = CHILD_FORK();
    if (pid < 0) {
	ReportChildError(errFd, errno);
	_exit(127);
    }
    if (pid > 0) {
	_exit(0);
    }

    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    sigaction(SIGPIPE, dflPtr, NULL);
    sigaction(SIGCHLD, dflPtr, NULL);

    fd = open("/dev/null", O_RDWR);
    if (fd < 0) {
	ReportChildError(errFd, errno);
	_exit(127);
    }
    if ((fd != 0 && dup2(fd, 0) < 0) || (fd != 1 && dup2(fd, 1) < 0)
	    || (fd != 2 && dup2(fd, 2) < 0)) {
	ReportChildError(errFd, errno);
	_exit(127);
    }
    if (fd > 2) {
	close(fd);
    }

    /*
     * Close every other descriptor, whatever its close-on-exec flag:
     * not every library in a Tcl process creates its descriptors with it.
     * The report pipe (errFd > 2, close-on-exec) stays until exec.
     */

#if defined(__linux__) && defined(SYS_close_range)
    if ((errFd == 3 || syscall(SYS_close_range, 3, errFd - 1, 0) == 0)
	    && syscall(SYS_close_range, errFd + 1, ~0U, 0) == 0) {
	done = 1;
    }
#endif
    if (!done) {
	for (fd = 3; fd < maxFd; fd++) {
	    if (fd != errFd) {
		close(fd);
	    }
	}
    }

    execv(path, argv);
    ReportChildError(errFd, errno);
    _exit(127);
}

/*
 *----------------------------------------------------------------------
 *
 * TtoLaunch --
 *
 *	Starts a program fully detached (see LaunchChild), without waiting
 *	for it: argv[0] is searched in PATH when it holds no '/'.  Whether
 *	the exec worked is known before returning: the grandchild writes
 *	errno to a close-on-exec pipe when it fails, and the pipe reaches
 *	EOF without a byte when the exec succeeds.
 *
 *	Safe in a multi-threaded process: everything that allocates or
 *	takes a lock (PATH search, sysconf) happens before fork().
 *
 * Results:
 *	0, or -1 with *errnoPtr set (ENOENT: no such program).
 *
 * Side effects:
 *	Runs a program.  The intermediate child is reaped here, so no
 *	zombie remains.
 *
 *----------------------------------------------------------------------
 */

int
TtoLaunch(
    const char *const *argv,
    int *errnoPtr)
{
    Tcl_DString path;
    struct sigaction dfl;
    int pipeFds[2] = {-1, -1}, childErr = 0, status, i;
    long maxFd;
    pid_t pid;
    ssize_t n;
    size_t got = 0;

    if (argv == NULL || argv[0] == NULL || argv[0][0] == '\0') {
	*errnoPtr = ENOENT;
	return -1;
    }
    Tcl_DStringInit(&path);
    if (ResolveProgram(argv[0], &path, errnoPtr) < 0) {
	Tcl_DStringFree(&path);
	return -1;
    }
    maxFd = sysconf(_SC_OPEN_MAX);
    if (maxFd < 0 || maxFd > INT_MAX) {
	maxFd = 65536;
    }
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);

    /*
     * The report pipe, close-on-exec so that the exec closes it (the EOF
     * that means success) and no other program started meanwhile by
     * another thread inherits it.  Its ends are moved above 2, so that
     * setting up stdin/stdout/stderr in the grandchild cannot clobber
     * them even when the process runs with those closed.
     */

#ifdef __linux__
    if (pipe2(pipeFds, O_CLOEXEC) < 0) {
	goto error;
    }
#else
    if (pipe(pipeFds) < 0) {
	goto error;
    }
    for (i = 0; i < 2; i++) {
	if (fcntl(pipeFds[i], F_SETFD, FD_CLOEXEC) < 0) {
	    goto error;
	}
    }
#endif
    for (i = 0; i < 2; i++) {
	if (pipeFds[i] <= 2) {
	    int fd = fcntl(pipeFds[i], F_DUPFD_CLOEXEC, 3);

	    if (fd < 0) {
		goto error;
	    }
	    close(pipeFds[i]);
	    pipeFds[i] = fd;
	}
    }

    pid = fork();
    if (pid < 0) {
	goto error;
    }
    if (pid == 0) {
	close(pipeFds[0]);
	LaunchChild(Tcl_DStringValue(&path), (char *const *) argv,
		pipeFds[1], (int) maxFd, &dfl);
    }
    close(pipeFds[1]);
    pipeFds[1] = -1;
    Tcl_DStringFree(&path);

    /*
     * The child exits right after its fork(); ECHILD means a SIGCHLD
     * disposition of SIG_IGN reaped it already.
     */

    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
	/* retry */
    }

    while (got < sizeof(childErr)) {
	n = read(pipeFds[0], (char *) &childErr + got,
		sizeof(childErr) - got);
	if (n > 0) {
	    got += (size_t) n;
	} else if (n < 0 && errno == EINTR) {
	    continue;
	} else {
	    break;
	}
    }
    close(pipeFds[0]);
    if (got == sizeof(childErr)) {
	*errnoPtr = childErr ? childErr : EIO;
	return -1;
    }
    if (got > 0) {
	*errnoPtr = EIO;		/* cannot happen: a torn report */
	return -1;
    }
    return 0;

  error:
    *errnoPtr = errno;
    CloseKeepErrno(pipeFds[0]);
    CloseKeepErrno(pipeFds[1]);
    Tcl_DStringFree(&path);
    return -1;
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
 * WriteAll --
 *
 *	Writes all of data, through short writes and EINTR.
 *
 * Results:
 *	0, or -1 with errno set.
 *
 * Side effects:
 *	Writes to fd.
 *
 *----------------------------------------------------------------------
 */

static int
WriteAll(
    int fd,
    const char *data,
    size_t len)
{
    size_t done = 0;

    while (done < len) {
	ssize_t n = write(fd, data + done, len - done);

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
     * mkostemp() creates the file with mode 0600 masked by the umask, so
     * never more than 0600, but a umask like 0277 would leave it
     * unwritable for its owner on the next save: set 0600 exactly.
     */

    fd = mkostemp(Tcl_DStringValue(&tmp), O_CLOEXEC);
    if (fd < 0) {
	*errnoPtr = errno;
	goto done;
    }
    if (fchmod(fd, S_IRUSR | S_IWUSR) < 0
	    || WriteAll(fd, data, len) < 0
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
    Tcl_DStringFree(&lockPath);

    lock = (FileLock *) ckalloc(sizeof(FileLock));
    lock->fd = fd;
    lock->kind = LOCK_KIND_FLOCK;
    do {
	rc = flock(fd, LOCK_EX);
    } while (rc < 0 && errno == EINTR);
    flockErr = errno;
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
	    rc = fcntl(fd, F_OFD_SETLKW, &fl);
	} while (rc < 0 && errno == EINTR);
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
