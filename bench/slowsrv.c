/*
 * slowsrv.c --
 *
 *	The loopback token endpoint of `make bench` section 12: answers every
 *	HTTP/1.1 request after a fixed delay (default 50 ms) with the JSON
 *	body given in a file, keeping connections alive.  One thread, poll(),
 *	thousands of connections: it must not be what limits 1,000 requests
 *	in flight.  Prints its port on stdout, then serves until stdin closes.
 *
 *	    slowsrv bodyfile ?delayMs?
 */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXC 8192

typedef struct {
    int fd;
    char in[8192];
    size_t inLen;
    int pending;		/* answers owed */
    long long due;		/* when the first is owed */
    size_t outOff;		/* of the answer being written */
    int writing;
} Conn;

static Conn conns[MAXC];
static int nconns = 0;
static char *reply;
static size_t replyLen;

static long long
NowMs(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
Drop(int i)
{
    close(conns[i].fd);
    conns[i] = conns[--nconns];
}

int
main(int argc, char **argv)
{
    FILE *f;
    char *body;
    long bodyLen;
    int delay = argc > 2 ? atoi(argv[2]) : 50, lfd, one = 1, i;
    struct sockaddr_in sa;
    socklen_t slen = sizeof(sa);
    static struct pollfd pfds[MAXC + 2];

    if (argc < 2 || (f = fopen(argv[1], "rb")) == NULL) {
	fprintf(stderr, "usage: slowsrv bodyfile ?delayMs?\n");
	return 2;
    }
    fseek(f, 0, SEEK_END);
    bodyLen = ftell(f);
    fseek(f, 0, SEEK_SET);
    body = malloc((size_t) bodyLen + 1);
    if (fread(body, 1, (size_t) bodyLen, f) != (size_t) bodyLen) {
	return 2;
    }
    fclose(f);
    reply = malloc((size_t) bodyLen + 200);
    replyLen = (size_t) sprintf(reply, "HTTP/1.1 200 OK\r\nContent-Type: "
	    "application/json\r\nContent-Length: %ld\r\n\r\n", bodyLen);
    memcpy(reply + replyLen, body, (size_t) bodyLen);
    replyLen += (size_t) bodyLen;

    lfd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *) &sa, sizeof(sa)) != 0
	    || listen(lfd, 4096) != 0) {
	perror("slowsrv");
	return 1;
    }
    getsockname(lfd, (struct sockaddr *) &sa, &slen);
    fcntl(lfd, F_SETFL, O_NONBLOCK);
    printf("%d\n", ntohs(sa.sin_port));
    fflush(stdout);

    for (;;) {
	long long now = NowMs(), next = -1;
	int timeout, n;

	for (i = 0; i < nconns; i++) {
	    if (conns[i].pending && !conns[i].writing
		    && (next < 0 || conns[i].due < next)) {
		next = conns[i].due;
	    }
	}
	timeout = next < 0 ? 1000 : (next > now ? (int) (next - now) : 0);
	pfds[0].fd = 0;
	pfds[0].events = POLLIN;
	pfds[1].fd = lfd;
	pfds[1].events = nconns < MAXC ? POLLIN : 0;
	for (i = 0; i < nconns; i++) {
	    pfds[i + 2].fd = conns[i].fd;
	    pfds[i + 2].events = POLLIN | (conns[i].writing ? POLLOUT : 0);
	    pfds[i + 2].revents = 0;
	}
	n = poll(pfds, (nfds_t) nconns + 2, timeout);
	if (n < 0 && errno != EINTR) {
	    return 1;
	}
	if (pfds[0].revents) {
	    char c;

	    if (read(0, &c, 1) <= 0) {
		return 0;
	    }
	}
	now = NowMs();
	/* Readable / writable connections, from the end (Drop moves the last). */
	for (i = nconns - 1; i >= 0; i--) {
	    Conn *c = &conns[i];
	    short ev = pfds[i + 2].revents;

	    if (ev & (POLLIN | POLLHUP | POLLERR)) {
		ssize_t r = read(c->fd, c->in + c->inLen,
			sizeof(c->in) - c->inLen);
		char *end;

		if (r <= 0) {
		    Drop(i);
		    continue;
		}
		c->inLen += (size_t) r;
		while ((end = memmem(c->in, c->inLen, "\r\n\r\n", 4))) {
		    size_t used = (size_t) (end + 4 - c->in);

		    if (c->pending == 0) {
			c->due = now + delay;
		    }
		    c->pending++;
		    memmove(c->in, c->in + used, c->inLen - used);
		    c->inLen -= used;
		}
		if (c->inLen == sizeof(c->in)) {
		    Drop(i);
		    continue;
		}
	    }
	}
	for (i = nconns - 1; i >= 0; i--) {
	    Conn *c = &conns[i];

	    if (c->pending && !c->writing && c->due <= now) {
		c->writing = 1;
		c->outOff = 0;
	    }
	    while (c->writing) {
		ssize_t w = write(c->fd, reply + c->outOff,
			replyLen - c->outOff);

		if (w < 0) {
		    if (errno != EAGAIN) {
			Drop(i);
		    }
		    break;
		}
		c->outOff += (size_t) w;
		if (c->outOff == replyLen) {
		    c->writing = 0;
		    if (--c->pending > 0) {
			c->due = now + delay;
		    }
		}
	    }
	}
	while (nconns < MAXC) {
	    int fd = accept(lfd, NULL, NULL);

	    if (fd < 0) {
		break;
	    }
	    fcntl(fd, F_SETFL, O_NONBLOCK);
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	    memset(&conns[nconns], 0, sizeof(Conn));
	    conns[nconns++].fd = fd;
	}
    }
}
