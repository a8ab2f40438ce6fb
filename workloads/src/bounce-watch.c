/*
 * bounce-watch FILE STOP: read the number in FILE (a swiotlb debugfs
 * counter) every 200 us until the file STOP disappears, then print
 *
 *   samples N
 *   peak P        the largest value seen
 *   rises R       how many times it went up between two reads
 *
 * For io_tlb_transient_nslabs: a transient pool lives only as long as the
 * one mapping that could not wait for the pool being added (a millisecond
 * in dmabench's growth run), so the shell's 50 ms sampling never saw one.
 * Every rise is at least one new transient pool: R is a lower bound on
 * how many were made (two made between reads count once).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Opened afresh for every read: a debugfs attribute formats its value
 * when read from offset 0 and cannot seek back (ESPIPE). */
static long read_value(const char *path)
{
	char buf[32];
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return strtol(buf, NULL, 10);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s FILE STOP\n", argv[0]);
		return 2;
	}
	const struct timespec gap = { 0, 200 * 1000 };
	unsigned long samples = 0, rises = 0;
	long peak = 0, last = 0;
	while (access(argv[2], F_OK) == 0) {
		long v = read_value(argv[1]);
		if (v < 0) {
			fprintf(stderr, "%s: unreadable after %lu reads: %s\n", argv[1], samples, strerror(errno));
			return 1;
		}
		if (v > last)
			rises++;
		if (v > peak)
			peak = v;
		last = v;
		samples++;
		while (nanosleep(&gap, NULL) != 0 && errno == EINTR)
			;
	}
	printf("samples %lu\npeak %ld\nrises %lu\n", samples, peak, rises);
	return 0;
}
