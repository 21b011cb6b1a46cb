/*
 * cloop.c --
 *
 *	The practical limit the benchmarks compare ttoauth2 with: the same
 *	network work done by a minimal C program with libcurl and one easy
 *	handle reused for every request (so its connection to the token
 *	endpoint is reused too).  Built by bench/bench.tcl with
 *	`cc -O2 cloop.c -lcurl`.
 *
 *	cloop refresh URL N [WARMUP]
 *		N sequential GETs of URL (a refresh, as ttoauth2 sends it:
 *		same URL, Accept and User-Agent headers).
 *	cloop flow TOKENURL N [WARMUP]
 *		N "flows": per flow, open a loopback listening socket, connect
 *		to it, send the browser's redirect request, accept and read
 *		it, do one token request (TOKENURL plus &auth_code=CODE) with
 *		the reused handle, write the allow page, close both ends (the
 *		server after the client's EOF, as ttoauth2 does), close the
 *		listener.
 *
 *	cloop shop BASEURL N [WARMUP]
 *		N signed TikTok Shop API calls, as ttoauth2's request sends
 *		them: GET BASEURL/authorization/202309/shops?app_key=&timestamp=
 *		&sign= with the sign computed per call (HMAC-SHA256 with
 *		libcrypto over secret, path, sorted parameters, secret) and the
 *		token in x-tts-access-token; the answer must say "code":0.
 *
 *	cloop serve
 *		The listener half of a flow alone, for measuring the scripted
 *		browser's own cost: prints its loopback port, then for every
 *		connection reads the request head, sends the allow page, shuts
 *		down its write side, waits for the client's EOF and closes.
 *		Exits when its standard input reaches end of file.
 *
 *	cloop batch
 *		Reads "refresh URL N" / "flow URL N" / "shop URL N" lines on
 *		stdin and does
 *		each, with one handle for all: the bench interleaves short
 *		blocks of ttoauth2 and of this program.  Answers
 *		"N MICROSECONDS CPU-MICROSECONDS" (getrusage, this process).
 *
 *	Prints "N MICROSECONDS" (the timed part only: process start-up,
 *	curl_global_init and the WARMUP untimed iterations, default 20, are
 *	left out) and exits 0; exits 1 with a message if any request fails.
 */

#define _GNU_SOURCE
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

typedef struct {
    char data[64 * 1024];
    size_t len;
} Body;

static size_t
Collect(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    Body *b = userdata;
    size_t n = size * nmemb;

    if (b->len + n >= sizeof(b->data)) {
	return 0;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    return n;
}

static long long
NowUs(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
Die(const char *what)
{
    fprintf(stderr, "cloop: %s: %s\n", what, strerror(errno));
    exit(1);
}

static CURL *curl;
static struct curl_slist *headers;
static Body body;

static void
Request(const char *url)
{
    CURLcode rc;
    long status = 0;

    body.len = 0;
    curl_easy_setopt(curl, CURLOPT_URL, url);
    rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK || status != 200) {
	fprintf(stderr, "cloop: request failed: %s (HTTP %ld)\n",
		curl_easy_strerror(rc), status);
	exit(1);
    }
    body.data[body.len] = '\0';
    if (strstr(body.data, "\"access_token\"") == NULL) {
	fprintf(stderr, "cloop: answer without access_token\n");
	exit(1);
    }
}

/*
 * One signed Shop API call (the bench's app key, secret and token).
 */

#define SHOP_KEY "bench_app_key"
#define SHOP_SECRET "bench_app_secret"
#define SHOP_PATH "/authorization/202309/shops"

static struct curl_slist *shopHeaders;

static void
Shop(const char *base)
{
    char ts[32], msg[512], url[4096], hex[65];
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int macLen = 0, i;
    CURLcode rc;
    long status = 0;

    snprintf(ts, sizeof(ts), "%lld", (long long) time(NULL));
    /* Parameters sorted by name: app_key, timestamp. */
    snprintf(msg, sizeof(msg), "%s%sapp_key%stimestamp%s%s", SHOP_SECRET,
	    SHOP_PATH, SHOP_KEY, ts, SHOP_SECRET);
    HMAC(EVP_sha256(), SHOP_SECRET, (int) strlen(SHOP_SECRET),
	    (unsigned char *) msg, strlen(msg), mac, &macLen);
    for (i = 0; i < macLen; i++) {
	snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    }
    snprintf(url, sizeof(url), "%s%s?app_key=%s&timestamp=%s&sign=%s", base,
	    SHOP_PATH, SHOP_KEY, ts, hex);
    body.len = 0;
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, shopHeaders);
    rc = curl_easy_perform(curl);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK || status != 200) {
	fprintf(stderr, "cloop: shop request failed: %s (HTTP %ld)\n",
		curl_easy_strerror(rc), status);
	exit(1);
    }
    body.data[body.len] = '\0';
    if (strstr(body.data, "\"code\":0") == NULL) {
	fprintf(stderr, "cloop: shop answer without code 0\n");
	exit(1);
    }
}

/*
 * The allow page reply: ttoauth2's default page and headers.
 */

#define ALLOW_PAGE \
    "<!doctype html><html><head><meta charset=\"utf-8\">" \
    "<title>Authorization complete</title></head>" \
    "<body style=\"font-family:sans-serif;margin:3em\">" \
    "<h1>Authorization complete</h1>" \
    "<p>You can close this window and return to the application.</p>" \
    "</body></html>"

static char allowReply[2048];
static size_t allowReplyLen;

static void
BuildReply(void)
{
    int n = snprintf(allowReply, sizeof(allowReply),
	"HTTP/1.1 200 OK\r\n"
	"Content-Type: text/html; charset=utf-8\r\n"
	"Cache-Control: no-store\r\n"
	"Pragma: no-cache\r\n"
	"Referrer-Policy: no-referrer\r\n"
	"X-Content-Type-Options: nosniff\r\n"
	"Content-Security-Policy: default-src 'none'; "
	    "style-src 'unsafe-inline'\r\n"
	"Connection: close\r\n"
	"Content-Length: %zu\r\n\r\n%s", strlen(ALLOW_PAGE), ALLOW_PAGE);

    allowReplyLen = (size_t) n;
}

static void
SendAll(int fd, const char *p, size_t len)
{
    while (len > 0) {
	ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

	if (n < 0) {
	    if (errno == EINTR) {
		continue;
	    }
	    Die("send");
	}
	p += n;
	len -= (size_t) n;
    }
}

/*
 * A listening socket on 127.0.0.1, port chosen by the system; *addr gets
 * its address.
 */

static int
Listen(
    struct sockaddr_in *addr)
{
    socklen_t alen = sizeof(*addr);
    int lfd, one = 1;

    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0) {
	Die("socket");
    }
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(addr, 0, sizeof(*addr));
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *) addr, sizeof(*addr)) != 0
	    || listen(lfd, 64) != 0
	    || getsockname(lfd, (struct sockaddr *) addr, &alen) != 0) {
	Die("listen");
    }
    return lfd;
}

static void
Flow(const char *tokenUrl, int i)
{
    struct sockaddr_in addr;
    int lfd, cfd, sfd;
    char req[512], buf[8192], url[4096];
    size_t got = 0;
    ssize_t n;
    const char *code;

    lfd = Listen(&addr);

    /* The browser. */
    cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (cfd < 0 || connect(cfd, (struct sockaddr *) &addr, sizeof(addr))) {
	Die("connect");
    }
    n = snprintf(req, sizeof(req), "GET /?code=BENCHCODE%d&state="
	    "0123456789abcdefghijklmnopqrstuv HTTP/1.1\r\n"
	    "Host: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", i,
	    ntohs(addr.sin_port));
    SendAll(cfd, req, (size_t) n);

    /* The listener: accept, read the head, exchange the code. */
    sfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (sfd < 0) {
	Die("accept");
    }
    buf[0] = '\0';
    while (strstr(buf, "\r\n\r\n") == NULL) {
	n = recv(sfd, buf + got, sizeof(buf) - 1 - got, 0);
	if (n <= 0) {
	    Die("recv request");
	}
	got += (size_t) n;
	buf[got] = '\0';
    }
    code = strstr(buf, "code=");
    if (code == NULL) {
	fprintf(stderr, "cloop: no code\n");
	exit(1);
    }
    snprintf(url, sizeof(url), "%s&auth_code=%.*s", tokenUrl,
	    (int) strcspn(code + 5, "& "), code + 5);
    Request(url);
    SendAll(sfd, allowReply, allowReplyLen);
    shutdown(sfd, SHUT_WR);

    /* The browser reads the page to EOF and closes. */
    while ((n = recv(cfd, buf, sizeof(buf), 0)) > 0) {
    }
    close(cfd);
    /* The listener sees the EOF, closes, and closes the port. */
    while ((n = recv(sfd, buf, sizeof(buf), 0)) > 0) {
    }
    close(sfd);
    close(lfd);
}

static int
Serve(void)
{
    struct sockaddr_in addr;
    int lfd;
    char buf[8192];

    lfd = Listen(&addr);
    printf("%d\n", ntohs(addr.sin_port));
    fflush(stdout);
    for (;;) {
	struct pollfd pfd[2] = {{lfd, POLLIN, 0}, {0, POLLIN, 0}};
	int sfd;
	size_t got = 0;
	ssize_t n;

	if (poll(pfd, 2, -1) < 0) {
	    if (errno == EINTR) {
		continue;
	    }
	    Die("poll");
	}
	if (pfd[1].revents) {
	    return 0;			/* stdin closed: the bench is done */
	}
	sfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (sfd < 0) {
	    continue;
	}
	buf[0] = '\0';
	while (strstr(buf, "\r\n\r\n") == NULL) {
	    n = recv(sfd, buf + got, sizeof(buf) - 1 - got, 0);
	    if (n <= 0) {
		break;
	    }
	    got += (size_t) n;
	    buf[got] = '\0';
	}
	SendAll(sfd, allowReply, allowReplyLen);
	shutdown(sfd, SHUT_WR);
	while (recv(sfd, buf, sizeof(buf), 0) > 0) {
	}
	close(sfd);
    }
}

static long long
CpuUs(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (long long) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000
	    + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

/*
 * Runs n refreshes or flows; returns the microseconds they took.
 */

static long long
Block(int flow, const char *url, int n)
{
    static int counter = 0;
    long long t0 = NowUs();
    int i;

    for (i = 0; i < n; i++) {
	if (flow == 2) {
	    Shop(url);
	} else if (flow) {
	    Flow(url, counter++);
	} else {
	    Request(url);
	}
    }
    return NowUs() - t0;
}

static int
Kind(const char *kind)
{
    return strcmp(kind, "shop") == 0 ? 2 : strcmp(kind, "flow") == 0;
}

static void
Usage(void)
{
    fprintf(stderr, "usage: cloop refresh|flow|shop URL N ?WARMUP?\n"
	    "       cloop batch\n"
	    "       cloop serve\n");
    exit(2);
}

int
main(int argc, char **argv)
{
    int n, warmup = 20;
    long long us;

    BuildReply();
    if (argc == 2 && strcmp(argv[1], "serve") == 0) {
	return Serve();
    }
    if (!(argc == 2 && strcmp(argv[1], "batch") == 0)
	    && (argc < 4 || (strcmp(argv[1], "refresh")
	    && strcmp(argv[1], "flow") && strcmp(argv[1], "shop")))) {
	Usage();
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK
	    || (curl = curl_easy_init()) == NULL) {
	fprintf(stderr, "cloop: libcurl init failed\n");
	return 1;
    }
    headers = curl_slist_append(NULL, "Accept: application/json");
    shopHeaders = curl_slist_append(NULL, "Accept: application/json");
    shopHeaders = curl_slist_append(shopHeaders, "Expect:");
    shopHeaders = curl_slist_append(shopHeaders,
	    "x-tts-access-token: ROW_benchaccesstoken");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "ttoauth2/1.0");
    curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");	/* as ttoauth2 */
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);

    if (argc == 2) {
	/*
	 * batch: "refresh URL N" or "flow URL N" per line on stdin, each
	 * answered with "N MICROSECONDS"; the handle (and its connection)
	 * lives across lines, so the bench can interleave short blocks of
	 * this and of ttoauth2.
	 */
	char line[8192], kind[16], url[8000];

	while (fgets(line, sizeof(line), stdin) != NULL) {
	    if (sscanf(line, "%15s %7999s %d", kind, url, &n) != 3
		    || (strcmp(kind, "refresh") && strcmp(kind, "flow")
		    && strcmp(kind, "shop"))) {
		fprintf(stderr, "cloop: bad batch line\n");
		return 2;
	    }
	    long long cpu = CpuUs();

	    us = Block(Kind(kind), url, n);
	    printf("%d %lld %lld\n", n, us, CpuUs() - cpu);
	    fflush(stdout);
	}
    } else {
	n = atoi(argv[3]);
	if (argc > 4) {
	    warmup = atoi(argv[4]);
	}
	Block(Kind(argv[1]), argv[2], warmup);
	us = Block(Kind(argv[1]), argv[2], n);
	printf("%d %lld\n", n, us);
    }
    curl_slist_free_all(headers);
    curl_slist_free_all(shopHeaders);
    curl_easy_cleanup(curl);
    curl_global_cleanup();
    return 0;
}
