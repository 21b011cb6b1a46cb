/*
 * cmulti.c --
 *
 *	The C baseline of `make bench` section 12: N token refreshes (GET of
 *	one URL) through one libcurl multi handle with at most M transfers in
 *	flight (CURLMOPT_MAX_TOTAL_CONNECTIONS), all queued at once.  Prints
 *	the wall time in seconds and the number of answers that were 200.
 *
 *	    cmulti url n maxInFlight
 */

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static size_t
Sink(char *p, size_t s, size_t n, void *u)
{
    (void) p; (void) u;
    return s * n;
}

int
main(int argc, char **argv)
{
    int n, m, i, running, left, ok = 0;
    CURLM *multi;
    CURL **easy;
    CURLMsg *msg;
    struct timespec t0, t1;

    if (argc < 4) {
	fprintf(stderr, "usage: cmulti url n maxInFlight\n");
	return 2;
    }
    n = atoi(argv[2]);
    m = atoi(argv[3]);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long) m);
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long) m);
    easy = calloc((size_t) n, sizeof(CURL *));
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (i = 0; i < n; i++) {
	easy[i] = curl_easy_init();
	curl_easy_setopt(easy[i], CURLOPT_URL, argv[1]);
	curl_easy_setopt(easy[i], CURLOPT_WRITEFUNCTION, Sink);
	curl_easy_setopt(easy[i], CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy[i], CURLOPT_TIMEOUT_MS, 30000L);
	curl_multi_add_handle(multi, easy[i]);
    }
    do {
	curl_multi_perform(multi, &running);
	while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
	    long code = 0;

	    if (msg->msg == CURLMSG_DONE && msg->data.result == CURLE_OK) {
		curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE,
			&code);
		ok += (code == 200);
	    }
	}
	if (running) {
	    curl_multi_poll(multi, NULL, 0, 1000, NULL);
	}
    } while (running);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("%.6f %d\n", (double) (t1.tv_sec - t0.tv_sec)
	    + (t1.tv_nsec - t0.tv_nsec) / 1e9, ok);
    for (i = 0; i < n; i++) {
	curl_multi_remove_handle(multi, easy[i]);
	curl_easy_cleanup(easy[i]);
    }
    free(easy);
    curl_multi_cleanup(multi);
    curl_global_cleanup();
    return 0;
}
