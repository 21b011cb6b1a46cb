/*
 * ttoauth2WinSys.c --
 *
 *	The Windows side of the platform layer (see the end of
 *	generic/ttoauth2Int.h): the clock, the OS random source, SHA-256
 *	and HMAC-SHA256 (BCrypt, so Windows needs no OpenSSL), the end of a
 *	worker thread, the token file (atomic replace, bounded read,
 *	cross-process lock), and ::ttoauth2::SpawnDetached, which starts
 *	the browser for library/ttoauth2.tcl without handing it our
 *	handles.
 *
 *	Paths arrive as UTF-8, the way Tcl gives them, and go to the W
 *	(UTF-16) APIs.  Errors are reported as errno values, mapped from
 *	Win32 error codes, so that generic/ reports them through
 *	Tcl_ErrnoMsg / Tcl_ErrnoId exactly as on Unix.
 */

#ifndef WIN32_LEAN_AND_MEAN
#   define WIN32_LEAN_AND_MEAN
#endif
#ifndef UNICODE
#   define UNICODE
#endif
#ifndef _UNICODE
#   define _UNICODE
#endif

#include "ttoauth2Int.h"

#include <windows.h>
#include <bcrypt.h>
#include <errno.h>
#include <string.h>

#ifndef NT_SUCCESS
#   define NT_SUCCESS(status) (((NTSTATUS) (status)) >= 0)
#endif
#ifndef BCRYPT_USE_SYSTEM_PREFERRED_RNG
#   define BCRYPT_USE_SYSTEM_PREFERRED_RNG 0x00000002
#endif

#define MAX_FILE_SIZE	(16 * 1024 * 1024)	/* TtoFileRead refuses more */
#define MAX_CHUNK	(1UL << 30)		/* per ReadFile/WriteFile/BCrypt call */
#define TEMP_TRIES	16			/* names tried for a temp file */
#define BUSY_WAIT_MS	5000			/* a file held open by others: */
#define BUSY_PAUSE_MS	50			/* retry this long, this often */

/*
 * A lock taken by TtoFileLock: the open lock file.
 */

typedef struct {
    HANDLE handle;
} FileLock;

/*
 * An owner-only security descriptor for the files created here (the
 * Windows form of mode 0600): a protected DACL with one entry, full
 * access for the user the process runs as.
 */

typedef struct {
    SECURITY_ATTRIBUTES sa;
    SECURITY_DESCRIPTOR sd;
    union {
	ACL acl;
	char bytes[sizeof(ACL) + sizeof(ACCESS_ALLOWED_ACE)
		+ SECURITY_MAX_SID_SIZE];
    } dacl;
    union {
	TOKEN_USER user;
	char bytes[sizeof(TOKEN_USER) + SECURITY_MAX_SID_SIZE];
    } token;
} OwnerOnly;

static int	ErrnoFromWin32(DWORD err);
static int	FileBusy(DWORD err, ULONGLONG *deadlinePtr, DWORD *pausePtr);
static int	TakeFileLock(const char *path, int wait, void **lockPtr,
		    int *errnoPtr);
static int	Hash(const void *key, size_t keyLen, const void *data,
		    size_t len, unsigned char out[32]);
static SECURITY_ATTRIBUTES *OwnerOnlyInit(OwnerOnly *oo);
static WCHAR *	WidePath(const char *path, const char *suffix,
		    int *errnoPtr);
static void	AppendArg(Tcl_DString *dsPtr, const char *arg,
		    Tcl_Size len);
static void	AppendBackslashes(Tcl_DString *dsPtr, Tcl_Size n);
static int	SpawnDetachedCmd(void *clientData, Tcl_Interp *interp,
		    Tcl_Size objc, Tcl_Obj *const objv[]);

/*
 *----------------------------------------------------------------------
 *
 * ErrnoFromWin32 --
 *
 *	Maps a Win32 error code to the errno value that says the same,
 *	for Tcl_ErrnoMsg and Tcl_ErrnoId.
 *
 * Results:
 *	An errno value (EIO for codes without a closer match).
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

static int
ErrnoFromWin32(
    DWORD err)
{
    switch (err) {
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
    case ERROR_INVALID_DRIVE:
    case ERROR_BAD_NETPATH:
    case ERROR_BAD_NET_NAME:
    case ERROR_BAD_PATHNAME:
    case ERROR_NO_MORE_FILES:
	return ENOENT;
    case ERROR_ACCESS_DENIED:
    case ERROR_SHARING_VIOLATION:
    case ERROR_LOCK_VIOLATION:
    case ERROR_NETWORK_ACCESS_DENIED:
    case ERROR_CANNOT_MAKE:
    case ERROR_CURRENT_DIRECTORY:
    case ERROR_PRIVILEGE_NOT_HELD:
	return EACCES;
    case ERROR_WRITE_PROTECT:
	return EROFS;
    case ERROR_FILE_EXISTS:
    case ERROR_ALREADY_EXISTS:
	return EEXIST;
    case ERROR_DISK_FULL:
    case ERROR_HANDLE_DISK_FULL:
	return ENOSPC;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY:
	return ENOMEM;
    case ERROR_TOO_MANY_OPEN_FILES:
	return EMFILE;
    case ERROR_FILENAME_EXCED_RANGE:
	return ENAMETOOLONG;
    case ERROR_DIRECTORY:
	return ENOTDIR;
    case ERROR_NOT_SAME_DEVICE:
	return EXDEV;
    case ERROR_INVALID_NAME:
    case ERROR_INVALID_PARAMETER:
    case ERROR_NO_UNICODE_TRANSLATION:
	return EINVAL;
    case ERROR_NOT_SUPPORTED:
    case ERROR_INVALID_FUNCTION:
	return ENOSYS;
    case ERROR_LOCK_FAILED:
    case ERROR_NOT_LOCKED:
	return ENOLCK;
    case ERROR_BROKEN_PIPE:
    case ERROR_NO_DATA:
	return EPIPE;
    case ERROR_BAD_EXE_FORMAT:
	return ENOEXEC;
    default:
	return EIO;
    }
}

/*
 *----------------------------------------------------------------------
 *
 * FileBusy --
 *
 *	Whether a failed open or replace of a token file is worth another
 *	try.  Windows refuses to replace a file that anyone has open (a
 *	store's unlocked reader in another process, a virus scanner, an
 *	indexer), whatever the share mode, and refuses to open a file in
 *	the instant it is being replaced: ERROR_ACCESS_DENIED or
 *	ERROR_SHARING_VIOLATION, gone a moment later.  Such errors are
 *	retried, pausing 1, 2, 4 ... up to BUSY_PAUSE_MS milliseconds, for
 *	at most BUSY_WAIT_MS in all; a file that stays refused (one the
 *	user may not write) then fails with the error it gave.
 *
 * Results:
 *	1 after pausing (try again), 0 when err is another error or the
 *	time is up.
 *
 * Side effects:
 *	Sleeps; sets *deadlinePtr on the first call (0 before it).
 *
 *----------------------------------------------------------------------
 */

static int
FileBusy(
    DWORD err,
    ULONGLONG *deadlinePtr,
    DWORD *pausePtr)
{
    ULONGLONG now = GetTickCount64();

    if (err != ERROR_ACCESS_DENIED && err != ERROR_SHARING_VIOLATION
	    && err != ERROR_LOCK_VIOLATION) {
	return 0;
    }
    if (*deadlinePtr == 0) {
	*deadlinePtr = now + BUSY_WAIT_MS;
	*pausePtr = 1;
    }
    if (now >= *deadlinePtr) {
	return 0;
    }
    Sleep(*pausePtr);
    *pausePtr = (*pausePtr * 2 > BUSY_PAUSE_MS) ? BUSY_PAUSE_MS
	    : *pausePtr * 2;
    return 1;
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
 *	Milliseconds since the system started.
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

long long
TtoNowMs(void)
{
    return (long long) GetTickCount64();
}

/*
 *----------------------------------------------------------------------
 *
 * TtoThreadExit --
 *
 *	The end of a joinable thread made with Tcl_CreateThread.  On
 *	Windows, Tcl_JoinThread returns only for a thread that ended
 *	through Tcl_ExitThread (which signals the joiners); one that
 *	returns from its thread function would leave them waiting for
 *	ever.
 *
 * Results:
 *	None: does not return.
 *
 * Side effects:
 *	Finalizes Tcl for this thread and ends it.
 *
 *----------------------------------------------------------------------
 */

void
TtoThreadExit(void)
{
    Tcl_ExitThread(0);
}

/*
 *----------------------------------------------------------------------
 *
 * TtoOsRandom --
 *
 *	Fills buf from the system's preferred CSPRNG (BCryptGenRandom).
 *
 * Results:
 *	0, or -1 when the random source fails.
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
    while (len > 0) {
	ULONG chunk = (ULONG) (len > MAX_CHUNK ? MAX_CHUNK : len);

	if (!NT_SUCCESS(BCryptGenRandom(NULL, buf, chunk,
		BCRYPT_USE_SYSTEM_PREFERRED_RNG))) {
	    return -1;
	}
	buf += chunk;
	len -= chunk;
    }
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * Hash --
 *
 *	SHA-256 of data (key == NULL) or HMAC-SHA256 of data under key,
 *	with BCrypt (Windows Vista and later; Wine).
 *
 * Results:
 *	0 with the 32-byte digest in out, or -1.
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

static int
Hash(
    const void *key,
    size_t keyLen,
    const void *data,
    size_t len,
    unsigned char out[32])
{
    BCRYPT_ALG_HANDLE alg = NULL;
    BCRYPT_HASH_HANDLE hash = NULL;
    const unsigned char *p = (const unsigned char *) data;
    static unsigned char noKey[1];
    int result = -1;

    if (keyLen > MAX_CHUNK) {
	return -1;
    }
    if (!NT_SUCCESS(BCryptOpenAlgorithmProvider(&alg,
	    BCRYPT_SHA256_ALGORITHM, NULL,
	    key != NULL ? BCRYPT_ALG_HANDLE_HMAC_FLAG : 0))) {
	return -1;
    }

    /*
     * The hash object's memory is left to BCrypt (NULL, 0).  An empty
     * HMAC key is a valid key: pass a non-NULL pointer with length 0.
     */

    if (!NT_SUCCESS(BCryptCreateHash(alg, &hash, NULL, 0,
	    key == NULL ? NULL : (PUCHAR) (keyLen ? key : noKey),
	    (ULONG) keyLen, 0))) {
	goto done;
    }
    while (len > 0) {
	ULONG chunk = (ULONG) (len > MAX_CHUNK ? MAX_CHUNK : len);

	if (!NT_SUCCESS(BCryptHashData(hash, (PUCHAR) p, chunk, 0))) {
	    goto done;
	}
	p += chunk;
	len -= chunk;
    }
    if (NT_SUCCESS(BCryptFinishHash(hash, out, 32, 0))) {
	result = 0;
    }

  done:
    if (hash != NULL) {
	BCryptDestroyHash(hash);
    }
    BCryptCloseAlgorithmProvider(alg, 0);
    return result;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoSha256 --
 *
 *	SHA-256 of data.
 *
 * Results:
 *	0 with the digest in out, or -1 when BCrypt fails.
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
    return Hash(NULL, 0, data, len, out);
}

/*
 *----------------------------------------------------------------------
 *
 * TtoHmacSha256 --
 *
 *	HMAC-SHA256 (RFC 2104) of data under key.
 *
 * Results:
 *	0 with the MAC in out, or -1 when BCrypt fails.
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
    return Hash(key, keyLen, data, len, out);
}

/*
 *----------------------------------------------------------------------
 *
 * WidePath --
 *
 *	Converts a UTF-8 path (plus an ASCII suffix) to UTF-16.
 *
 * Results:
 *	The ckalloc'ed wide string (the caller frees it), or NULL with
 *	*errnoPtr set (EINVAL: not valid UTF-8).
 *
 * Side effects:
 *	Allocates memory.
 *
 *----------------------------------------------------------------------
 */

static WCHAR *
WidePath(
    const char *path,
    const char *suffix,
    int *errnoPtr)
{
    size_t pathLen = strlen(path), sufLen = strlen(suffix), i;
    int n;
    WCHAR *wide;

    if (pathLen > INT_MAX / 2) {
	*errnoPtr = ENAMETOOLONG;
	return NULL;
    }
    n = pathLen == 0 ? 0 : MultiByteToWideChar(CP_UTF8,
	    MB_ERR_INVALID_CHARS, path, (int) pathLen, NULL, 0);
    if (pathLen > 0 && n <= 0) {
	*errnoPtr = EINVAL;
	return NULL;
    }
    wide = (WCHAR *) ckalloc(((size_t) n + sufLen + 1) * sizeof(WCHAR));
    if (n > 0) {
	MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path,
		(int) pathLen, wide, n);
    }
    for (i = 0; i < sufLen; i++) {
	wide[n + i] = (WCHAR) (unsigned char) suffix[i];
    }
    wide[n + sufLen] = 0;
    return wide;
}

/*
 *----------------------------------------------------------------------
 *
 * OwnerOnlyInit --
 *
 *	Fills an OwnerOnly with a security descriptor that gives the
 *	process's user full access and nobody else any.
 *
 * Results:
 *	The SECURITY_ATTRIBUTES to pass to CreateFileW, or NULL (default
 *	security, inherited from the folder) when the user's SID cannot
 *	be had.
 *
 * Side effects:
 *	None.
 *
 *----------------------------------------------------------------------
 */

static SECURITY_ATTRIBUTES *
OwnerOnlyInit(
    OwnerOnly *oo)
{
    HANDLE token;
    DWORD got = 0;
    BOOL ok;

    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token)) {
	return NULL;
    }
    ok = GetTokenInformation(token, TokenUser, &oo->token,
	    sizeof(oo->token), &got);
    CloseHandle(token);
    if (!ok
	    || !InitializeAcl(&oo->dacl.acl, sizeof(oo->dacl), ACL_REVISION)
	    || !AddAccessAllowedAce(&oo->dacl.acl, ACL_REVISION,
		    FILE_ALL_ACCESS, oo->token.user.User.Sid)
	    || !InitializeSecurityDescriptor(&oo->sd,
		    SECURITY_DESCRIPTOR_REVISION)
	    || !SetSecurityDescriptorDacl(&oo->sd, TRUE, &oo->dacl.acl, FALSE)
	    || !SetSecurityDescriptorControl(&oo->sd, SE_DACL_PROTECTED,
		    SE_DACL_PROTECTED)) {
	return NULL;
    }
    oo->sa.nLength = sizeof(oo->sa);
    oo->sa.lpSecurityDescriptor = &oo->sd;
    oo->sa.bInheritHandle = FALSE;
    return &oo->sa;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoFileWriteAtomic --
 *
 *	Replaces the file at path with data so that a crash at any moment
 *	leaves either the old file or the new one, complete: the data goes
 *	to a temp file in the same folder (".NAME.tmpXXXXXXXX", owner-only
 *	access), is flushed to disk, and is moved over path with
 *	MoveFileExW(REPLACE_EXISTING | WRITE_THROUGH), which returns only
 *	once the move is on disk.  Windows will not replace a file another
 *	process has open, even for a moment's read: the move is retried
 *	while the file is busy (FileBusy).
 *
 * Results:
 *	0, or -1 with *errnoPtr set (EISDIR when path is a folder, which
 *	is left untouched).
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
    Tcl_DString tmp;
    OwnerOnly oo;
    SECURITY_ATTRIBUTES *saPtr;
    WCHAR *widePath = NULL, *wideTmp = NULL;
    HANDLE h = INVALID_HANDLE_VALUE;
    const char *base, *p;
    DWORD attrs, err = 0, pause = 0;
    ULONGLONG deadline = 0;
    size_t done = 0, prefixLen;
    int tries, result = -1;

    if (path == NULL || *path == '\0') {
	*errnoPtr = ENOENT;
	return -1;
    }

    /*
     * The last component: after the last separator, or after "X:" in a
     * drive-relative path such as "C:token.json".
     */

    base = path;
    for (p = path; *p != '\0'; p++) {
	if (*p == '/' || *p == '\\') {
	    base = p + 1;
	}
    }
    if (base == path && path[0] != '\0' && path[1] == ':') {
	base = path + 2;
    }
    if (*base == '\0') {			/* "dir/" */
	*errnoPtr = EISDIR;
	return -1;
    }
    widePath = WidePath(path, "", errnoPtr);
    if (widePath == NULL) {
	return -1;
    }
    attrs = GetFileAttributesW(widePath);
    if (attrs != INVALID_FILE_ATTRIBUTES
	    && (attrs & FILE_ATTRIBUTE_DIRECTORY)) {
	ckfree((char *) widePath);
	*errnoPtr = EISDIR;
	return -1;
    }

    saPtr = OwnerOnlyInit(&oo);
    prefixLen = (size_t) (base - path);
    Tcl_DStringInit(&tmp);
    for (tries = 0; tries < TEMP_TRIES; tries++) {
	unsigned char rnd[4];
	char suffix[16];

	if (TtoOsRandom(rnd, sizeof(rnd)) != 0) {
	    *errnoPtr = EIO;
	    goto done;
	}
	snprintf(suffix, sizeof(suffix), ".tmp%02x%02x%02x%02x",
		rnd[0], rnd[1], rnd[2], rnd[3]);
	Tcl_DStringSetLength(&tmp, 0);
	Tcl_DStringAppend(&tmp, path, (int) prefixLen);
	Tcl_DStringAppend(&tmp, ".", 1);
	Tcl_DStringAppend(&tmp, base, -1);
	if (wideTmp != NULL) {
	    ckfree((char *) wideTmp);
	}
	wideTmp = WidePath(Tcl_DStringValue(&tmp), suffix, errnoPtr);
	if (wideTmp == NULL) {
	    goto done;
	}
	h = CreateFileW(wideTmp, GENERIC_WRITE, 0, saPtr, CREATE_NEW,
		FILE_ATTRIBUTE_NORMAL, NULL);
	if (h != INVALID_HANDLE_VALUE) {
	    break;
	}
	err = GetLastError();
	if (err != ERROR_FILE_EXISTS && err != ERROR_ALREADY_EXISTS) {
	    break;
	}
    }
    if (h == INVALID_HANDLE_VALUE) {
	*errnoPtr = ErrnoFromWin32(err);
	goto done;
    }

    while (done < len) {
	DWORD chunk = (DWORD) (len - done > MAX_CHUNK ? MAX_CHUNK : len - done);
	DWORD wrote = 0;

	if (!WriteFile(h, data + done, chunk, &wrote, NULL) || wrote == 0) {
	    err = GetLastError();
	    goto removeTemp;
	}
	done += wrote;
    }
    if (!FlushFileBuffers(h)) {
	err = GetLastError();
	goto removeTemp;
    }
    if (!CloseHandle(h)) {
	h = INVALID_HANDLE_VALUE;
	err = GetLastError();
	goto removeTemp;
    }
    h = INVALID_HANDLE_VALUE;
    while (!MoveFileExW(wideTmp, widePath,
	    MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH)) {
	err = GetLastError();
	if (!FileBusy(err, &deadline, &pause)) {
	    goto removeTemp;
	}
    }
    result = 0;
    goto done;

  removeTemp:
    *errnoPtr = err ? ErrnoFromWin32(err) : EIO;
    if (h != INVALID_HANDLE_VALUE) {
	CloseHandle(h);
    }
    DeleteFileW(wideTmp);
  done:
    Tcl_DStringFree(&tmp);
    if (wideTmp != NULL) {
	ckfree((char *) wideTmp);
    }
    ckfree((char *) widePath);
    return result;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoFileRead --
 *
 *	Reads a whole regular file.  Anything else is refused: a folder
 *	(EISDIR), a device or pipe (EINVAL), a file over 16 MiB (EFBIG; no
 *	token file is that big).  The file is opened sharing read, write
 *	and delete, and retried in the instant a save replaces it
 *	(FileBusy).
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
    BY_HANDLE_FILE_INFORMATION info;
    LARGE_INTEGER size;
    WCHAR *wide;
    HANDLE h;
    DWORD err = 0, pause = 0;
    ULONGLONG deadline = 0;
    char *buf;
    size_t cap, len = 0;

    *dataPtr = NULL;
    *lenPtr = 0;
    if (path == NULL || *path == '\0') {
	*errnoPtr = ENOENT;
	return -1;
    }
    wide = WidePath(path, "", errnoPtr);
    if (wide == NULL) {
	return -1;
    }

    /*
     * FILE_FLAG_BACKUP_SEMANTICS lets a folder be opened, so that it is
     * reported as one (EISDIR) rather than as EACCES.
     */

    for (;;) {
	h = CreateFileW(wide, GENERIC_READ,
		FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
		OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, NULL);
	if (h != INVALID_HANDLE_VALUE) {
	    break;
	}
	err = GetLastError();
	if (!FileBusy(err, &deadline, &pause)) {
	    break;
	}
    }
    ckfree((char *) wide);
    if (h == INVALID_HANDLE_VALUE) {
	*errnoPtr = ErrnoFromWin32(err);
	return -1;
    }
    if (GetFileType(h) != FILE_TYPE_DISK) {
	*errnoPtr = EINVAL;
	CloseHandle(h);
	return -1;
    }
    if (!GetFileInformationByHandle(h, &info)) {
	*errnoPtr = ErrnoFromWin32(GetLastError());
	CloseHandle(h);
	return -1;
    }
    if (info.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) {
	*errnoPtr = EISDIR;
	CloseHandle(h);
	return -1;
    }
    if (!GetFileSizeEx(h, &size)) {
	*errnoPtr = ErrnoFromWin32(GetLastError());
	CloseHandle(h);
	return -1;
    }
    if (size.QuadPart > MAX_FILE_SIZE) {
	*errnoPtr = EFBIG;
	CloseHandle(h);
	return -1;
    }

    /*
     * The size is a hint only: the file may grow or shrink while read.
     * Read to EOF, never past the limit.
     */

    cap = (size_t) size.QuadPart + 1;
    buf = ckalloc(cap + 1);
    for (;;) {
	DWORD got = 0;

	if (len == cap) {
	    if (cap > MAX_FILE_SIZE) {
		ckfree(buf);
		CloseHandle(h);
		*errnoPtr = EFBIG;
		return -1;
	    }
	    cap = (cap * 2 > (size_t) MAX_FILE_SIZE + 1)
		    ? (size_t) MAX_FILE_SIZE + 1 : cap * 2;
	    buf = ckrealloc(buf, cap + 1);
	}
	if (!ReadFile(h, buf + len, (DWORD) (cap - len), &got, NULL)) {
	    *errnoPtr = ErrnoFromWin32(GetLastError());
	    ckfree(buf);
	    CloseHandle(h);
	    return -1;
	}
	if (got == 0) {
	    break;
	}
	len += got;
    }
    CloseHandle(h);
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
 *	The lock is on a sibling file, path + ".lock" (created owner-only,
 *	never deleted), because the token file itself is replaced by a
 *	move.  LockFileEx locks belong to the open file: two handles
 *	exclude each other whether they are in two processes or in two
 *	threads of one, and Windows releases the lock of a process that
 *	dies.  The wait is not bounded: the holder is a refresh, itself
 *	bounded by -timeout.
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
    return (TakeFileLock(path, 1, lockPtr, errnoPtr) == 0) ? 0 : -1;
}

/*
 *----------------------------------------------------------------------
 *
 * TtoFileTryLock --
 *
 *	TtoFileLock without the wait: takes the lock only when nobody holds
 *	it (LOCKFILE_FAIL_IMMEDIATELY).  The store protocol's trylock
 *	(library/store.tcl) waits by calling this again, so that an event
 *	loop keeps running in between.
 *
 * Results:
 *	0 with *lockPtr set (release with TtoFileUnlock), 1 when another
 *	holder has it, or -1 with *errnoPtr set.
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
    return TakeFileLock(path, 0, lockPtr, errnoPtr);
}

/*
 * The two above: wait for the lock, or return 1 at once when it is held.
 */

static int
TakeFileLock(
    const char *path,
    int wait,
    void **lockPtr,
    int *errnoPtr)
{
    OwnerOnly oo;
    OVERLAPPED ov;
    FileLock *lock;
    WCHAR *wide;
    HANDLE h;
    DWORD err;

    *lockPtr = NULL;
    if (path == NULL || *path == '\0') {
	*errnoPtr = ENOENT;
	return -1;
    }
    wide = WidePath(path, ".lock", errnoPtr);
    if (wide == NULL) {
	return -1;
    }
    h = CreateFileW(wide, GENERIC_READ | GENERIC_WRITE,
	    FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
	    OwnerOnlyInit(&oo), OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
    err = GetLastError();		/* before ckfree can change it */
    ckfree((char *) wide);
    if (h == INVALID_HANDLE_VALUE) {
	*errnoPtr = ErrnoFromWin32(err);
	return -1;
    }

    /*
     * The whole (64-bit) range; a synchronous handle, so LockFileEx
     * returns only once the lock is held (or at once, without wait).
     */

    memset(&ov, 0, sizeof(ov));
    if (!LockFileEx(h, LOCKFILE_EXCLUSIVE_LOCK
	    | (wait ? 0 : LOCKFILE_FAIL_IMMEDIATELY), 0, MAXDWORD, MAXDWORD,
	    &ov)) {
	err = GetLastError();
	CloseHandle(h);
	if (!wait && err == ERROR_LOCK_VIOLATION) {
	    return 1;
	}
	*errnoPtr = ErrnoFromWin32(err);
	return -1;
    }
    lock = (FileLock *) ckalloc(sizeof(FileLock));
    lock->handle = h;
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
    OVERLAPPED ov;

    if (lock == NULL) {
	return;
    }
    memset(&ov, 0, sizeof(ov));
    (void) UnlockFileEx(lock->handle, 0, MAXDWORD, MAXDWORD, &ov);
    CloseHandle(lock->handle);		/* releases the lock in any case */
    ckfree((char *) lock);
}

/*
 *----------------------------------------------------------------------
 *
 * TtoPlatformInit --
 *
 *	What the package needs from the platform in each interpreter that
 *	loads it.  On Windows: ::ttoauth2::SpawnDetached, with which
 *	library/ttoauth2.tcl starts the browser.  (Tcl's exec ... & would
 *	let the browser inherit every inheritable handle of this process,
 *	the pipes of its stdout and stderr among them: whoever waits for
 *	the end of those pipes, as a shell or a parent's exec does, would
 *	wait for the browser to exit.)
 *
 * Results:
 *	TCL_OK, or TCL_ERROR with a message in interp.
 *
 * Side effects:
 *	Creates the command.
 *
 *----------------------------------------------------------------------
 */

int
TtoPlatformInit(
    Tcl_Interp *interp)
{
    if (Tcl_CreateObjCommand2(interp, "::ttoauth2::SpawnDetached",
	    SpawnDetachedCmd, NULL, NULL) == NULL) {
	return TCL_ERROR;
    }
    return TCL_OK;
}

/*
 *----------------------------------------------------------------------
 *
 * AppendBackslashes --
 *
 *	Appends n backslashes.
 *
 *----------------------------------------------------------------------
 */

static void
AppendBackslashes(
    Tcl_DString *dsPtr,
    Tcl_Size n)
{
    while (n-- > 0) {
	Tcl_DStringAppend(dsPtr, "\\", 1);
    }
}

/*
 *----------------------------------------------------------------------
 *
 * AppendArg --
 *
 *	Appends one argument (UTF-8, no NUL) to a command line, preceded by
 *	a space, quoted so that the Microsoft C runtime's parser (and
 *	CommandLineToArgvW) gives it back unchanged.  Those rules:
 *	whitespace separates arguments unless inside "..."; 2n backslashes
 *	before a quote are n backslashes and the quote opens or closes;
 *	2n+1 backslashes before a quote are n backslashes and a literal
 *	quote; backslashes elsewhere are literal.  So an argument with
 *	whitespace or a quote, or an empty one, is put in quotes, a quote
 *	in it becomes \", the backslashes just before a quote or before the
 *	closing quote are doubled, and all other bytes (non-ASCII UTF-8
 *	among them) stay as they are.  Nothing is done for cmd.exe, which
 *	has rules of its own: the browser's URL never reaches a command
 *	line cmd.exe parses (see BrowserOpener in library/ttoauth2.tcl).
 *
 * Results:
 *	None.
 *
 * Side effects:
 *	Appends to *dsPtr.
 *
 *----------------------------------------------------------------------
 */

static void
AppendArg(
    Tcl_DString *dsPtr,
    const char *arg,
    Tcl_Size len)
{
    Tcl_Size i, n;
    int quote = (len == 0);

    for (i = 0; i < len && !quote; i++) {
	quote = (arg[i] == ' ' || arg[i] == '\t' || arg[i] == '\n'
		|| arg[i] == '\v' || arg[i] == '"');
    }
    if (Tcl_DStringLength(dsPtr) > 0) {
	Tcl_DStringAppend(dsPtr, " ", 1);
    }
    if (!quote) {
	Tcl_DStringAppend(dsPtr, arg, len);
	return;
    }
    Tcl_DStringAppend(dsPtr, "\"", 1);
    for (i = 0; ; i++) {
	n = 0;
	while (i < len && arg[i] == '\\') {
	    n++;
	    i++;
	}
	if (i == len) {
	    AppendBackslashes(dsPtr, 2 * n);	/* then the closing quote */
	    break;
	}
	AppendBackslashes(dsPtr, arg[i] == '"' ? 2 * n + 1 : n);
	Tcl_DStringAppend(dsPtr, arg + i, 1);
    }
    Tcl_DStringAppend(dsPtr, "\"", 1);
}

/*
 *----------------------------------------------------------------------
 *
 * SpawnDetachedCmd --
 *
 *	::ttoauth2::SpawnDetached argv: starts the program argv names
 *	(the first word: a path with its extension, as auto_execok gives,
 *	or a name CreateProcessW searches for) with the other words as its
 *	arguments, and returns at once.  The program inherits the
 *	environment and the current folder, but no handle
 *	(bInheritHandles FALSE): it cannot keep our pipes, sockets or
 *	files open.  It runs without a console (DETACHED_PROCESS), so it
 *	shows no window and Windows gives it no standard handles at all
 *	(with bInheritHandles FALSE and no STARTF_USESTDHANDLES, Windows
 *	would otherwise duplicate our stdin, stdout and stderr into it;
 *	Wine does so even with CREATE_NO_WINDOW); it is in a process
 *	group of its own (CREATE_NEW_PROCESS_GROUP: Ctrl+C in our console
 *	does not reach it) and gets the default error mode, not ours.
 *	cmd.exe runs this way as well (the opener: "start" needs no
 *	console).  Batch files are
 *	refused (EINVAL): CreateProcessW would run them through cmd.exe,
 *	whose quoting rules AppendArg does not follow.
 *
 * Results:
 *	TCL_OK with an empty result, or TCL_ERROR with -errorcode {POSIX
 *	ERRNO msg} (ENOENT: no such program, EACCES, ENOEXEC, E2BIG:
 *	command line longer than Windows allows, EINVAL: a NUL in an
 *	argument, a batch file).
 *
 * Side effects:
 *	Starts a process; its process and thread handles are closed at
 *	once (nothing is left to reap).
 *
 *----------------------------------------------------------------------
 */

static int
SpawnDetachedCmd(
    void *clientData,
    Tcl_Interp *interp,
    Tcl_Size objc,
    Tcl_Obj *const objv[])
{
    Tcl_Encoding utf8;
    Tcl_Obj **words;
    Tcl_Size count, i, len;
    Tcl_DString line, arg, program;
    const char *s, *ext;
    WCHAR *wideLine = NULL, *wideProgram = NULL;
    STARTUPINFOW si;
    PROCESS_INFORMATION pi;
    int err = 0, n, result = TCL_ERROR;

    (void) clientData;
    if (objc != 2) {
	Tcl_WrongNumArgs(interp, 1, objv, "argv");
	return TCL_ERROR;
    }
    if (Tcl_ListObjGetElements(interp, objv[1], &count, &words) != TCL_OK) {
	return TCL_ERROR;
    }
    if (count == 0) {
	Tcl_SetObjResult(interp, Tcl_NewStringObj("empty argv", -1));
	Tcl_SetErrorCode(interp, "TCL", "VALUE", "ARGV", NULL);
	return TCL_ERROR;
    }

    /*
     * The words as UTF-8 (Tcl's own form differs for NUL and, in Tcl
     * 8.6, for characters beyond U+FFFF), quoted one by one.  The
     * program is the first word with / turned into \.  It is quoted
     * as the C runtime reads a program name: "..." with nothing
     * escaped (a file name cannot hold a quote).
     */

    utf8 = Tcl_GetEncoding(NULL, "utf-8");
    Tcl_DStringInit(&line);
    Tcl_DStringInit(&program);
    for (i = 0; i < count; i++) {
	s = Tcl_GetStringFromObj(words[i], &len);
	Tcl_DStringInit(&arg);
	Tcl_UtfToExternalDString(utf8, s, len, &arg);
	if (strlen(Tcl_DStringValue(&arg))
		!= (size_t) Tcl_DStringLength(&arg)) {
	    err = EINVAL;
	} else if (i == 0) {
	    char *p;

	    Tcl_DStringAppend(&program, Tcl_DStringValue(&arg), -1);
	    for (p = Tcl_DStringValue(&program); *p != '\0'; p++) {
		if (*p == '/') {
		    *p = '\\';
		}
	    }
	    if (strchr(Tcl_DStringValue(&program), '"') != NULL) {
		err = EINVAL;
	    }
	    Tcl_DStringAppend(&line, "\"", 1);
	    Tcl_DStringAppend(&line, Tcl_DStringValue(&program), -1);
	    Tcl_DStringAppend(&line, "\"", 1);
	} else {
	    AppendArg(&line, Tcl_DStringValue(&arg), Tcl_DStringLength(&arg));
	}
	Tcl_DStringFree(&arg);
	if (err != 0) {
	    break;
	}
    }
    Tcl_FreeEncoding(utf8);
    if (err != 0) {
	goto done;
    }
    s = Tcl_DStringValue(&program);
    ext = strrchr(s, '.');
    if (ext != NULL && strlen(ext) == 4
	    && (Tcl_UtfNcasecmp(ext, ".bat", 4) == 0
	    || Tcl_UtfNcasecmp(ext, ".cmd", 4) == 0)) {
	err = EINVAL;
	goto done;
    }

    /*
     * A program named with a path is started from that file (no
     * search); a bare name is searched for by CreateProcessW (the
     * program's folder, the current one, the system's, then PATH;
     * .exe added when the name has no extension).
     */

    if (strpbrk(s, "\\:") != NULL) {
	wideProgram = WidePath(s, "", &err);
	if (wideProgram == NULL) {
	    goto done;
	}
    }
    wideLine = WidePath(Tcl_DStringValue(&line), "", &err);
    if (wideLine == NULL) {
	goto done;
    }
    for (n = 0; wideLine[n] != 0; n++) {
	/* the length, in UTF-16 units */
    }
    if (n > 32766) {
	err = E2BIG;
	goto done;
    }

    memset(&si, 0, sizeof(si));
    si.cb = sizeof(si);
    if (!CreateProcessW(wideProgram, wideLine, NULL, NULL, FALSE,
	    DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP
	    | CREATE_DEFAULT_ERROR_MODE, NULL, NULL, &si, &pi)) {
	err = ErrnoFromWin32(GetLastError());
	goto done;
    }
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
    result = TCL_OK;

  done:
    if (result != TCL_OK) {
	Tcl_SetErrno(err);
	Tcl_SetObjResult(interp, Tcl_ObjPrintf("couldn't execute \"%s\": %s",
		Tcl_GetString(words[0]), Tcl_PosixError(interp)));
    }
    if (wideLine != NULL) {
	ckfree((char *) wideLine);
    }
    if (wideProgram != NULL) {
	ckfree((char *) wideProgram);
    }
    Tcl_DStringFree(&line);
    Tcl_DStringFree(&program);
    return result;
}
