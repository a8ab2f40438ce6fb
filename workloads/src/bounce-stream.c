/*
 * bounce-stream: move seeded pseudo-random data between the guest and the
 * harness's stream checker (on the host, reached through QEMU's restricted
 * user networking) so that every byte that crossed the NIC's DMA path, and
 * so the bounce buffers, is compared with what was meant to arrive.
 *
 *   bounce-stream up   HOST PORT SEED BYTES   guest sends, the host checks
 *   bounce-stream down HOST PORT SEED BYTES   host sends, the guest checks
 *   bounce-stream down-small HOST PORT SEED BYTES
 *                                             the same, the host sending it
 *                                             in frames under the NICs'
 *                                             copybreak
 *   bounce-stream disk DEVICE SEED BYTES      the guest writes the disk
 *                                             (O_DIRECT, so every byte goes
 *                                             through the controller's DMA);
 *                                             the host reads the image after
 *
 * Protocol: the guest sends "BOUNCE up|down SEED BYTES\n"; then the data
 * flows; then the checking side writes one line, "ok BYTES" or
 * "mismatch at OFFSET", which the other side reads. The guest prints
 * "result: ...", "bytes: N" and "seconds: S" for the harness's parser.
 *
 * The generator is xorshift64* over 8-byte words, little-endian, the same
 * on both sides (harness/src/workload/stream.rs).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 65536

struct prng {
	uint64_t state;
	uint8_t word[8];
	unsigned used;
};

static void prng_init(struct prng *p, uint64_t seed)
{
	p->state = seed ? seed : 0x9e3779b97f4a7c15ULL;
	p->used = 8;
}

static uint8_t prng_byte(struct prng *p)
{
	if (p->used == 8) {
		uint64_t x = p->state;
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		p->state = x;
		x *= 0x2545f4914f6cdd1dULL;
		for (int i = 0; i < 8; i++)
			p->word[i] = (uint8_t)(x >> (8 * i));
		p->used = 0;
	}
	return p->word[p->used++];
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *b = buf;
	while (len) {
		ssize_t n = write(fd, b, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		b += n;
		len -= n;
	}
	return 0;
}

/* BYTES of the stream onto fd, in writes of sizes[0], sizes[1], ... in turn. */
static int send_stream(int fd, struct prng *p, uint8_t *buf, uint64_t bytes, const size_t *sizes, size_t nsizes)
{
	uint64_t done = 0;
	for (size_t k = 0; done < bytes; k++) {
		size_t n = sizes[k % nsizes];
		if (n > bytes - done)
			n = bytes - done;
		for (size_t i = 0; i < n; i++)
			buf[i] = prng_byte(p);
		if (write_all(fd, buf, n) < 0) {
			perror("write");
			return -1;
		}
		done += n;
	}
	return 0;
}

static int read_line(int fd, char *line, size_t size)
{
	size_t n = 0;
	while (n + 1 < size) {
		ssize_t r = read(fd, line + n, 1);
		if (r <= 0)
			return -1;
		if (line[n] == '\n')
			break;
		n++;
	}
	line[n] = 0;
	return 0;
}

/*
 * The stream onto a disk from its first byte, in writes of varying sizes
 * (block multiples, as O_DIRECT needs, but not all page multiples), so a
 * bounce that changes bytes on the way to the device leaves them changed
 * on the disk, where the host reads them after the guest is gone.
 */
static int disk(const char *dev, uint64_t seed, uint64_t bytes)
{
	static const size_t sizes[] = { 4096, 1048576, 1536, 65536, 258048, 512, 131072 };
	uint8_t *buf;
	int fd = open(dev, O_WRONLY | O_DIRECT);
	if (fd < 0 || posix_memalign((void **)&buf, 4096, 1048576)) {
		perror(dev);
		return 1;
	}
	struct prng p;
	prng_init(&p, seed);
	double start = now();
	if (send_stream(fd, &p, buf, bytes, sizes, sizeof(sizes) / sizeof(sizes[0])) < 0)
		return 1;
	if (fsync(fd) < 0 || close(fd) < 0) {
		perror("fsync");
		return 1;
	}
	printf("result: written %llu\nbytes: %llu\nseconds: %.6f\n", (unsigned long long)bytes,
	       (unsigned long long)bytes, now() - start);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "disk"))
		return disk(argv[2], strtoull(argv[3], NULL, 0), strtoull(argv[4], NULL, 0));
	if (argc != 6 || (strcmp(argv[1], "up") && strcmp(argv[1], "down") && strcmp(argv[1], "down-small"))) {
		fprintf(stderr, "usage: %s up|down|down-small HOST PORT SEED BYTES | disk DEVICE SEED BYTES\n", argv[0]);
		return 2;
	}
	int up = !strcmp(argv[1], "up");
	uint64_t seed = strtoull(argv[4], NULL, 0);
	uint64_t bytes = strtoull(argv[5], NULL, 0);
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[3])) };
	if (inet_pton(AF_INET, argv[2], &addr.sin_addr) != 1) {
		fprintf(stderr, "bad address %s\n", argv[2]);
		return 2;
	}
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		perror("connect");
		return 1;
	}
	char line[128];
	snprintf(line, sizeof(line), "BOUNCE %s %llu %llu\n", argv[1], (unsigned long long)seed,
		 (unsigned long long)bytes);
	if (write_all(fd, line, strlen(line)) < 0) {
		perror("write");
		return 1;
	}
	struct prng p;
	prng_init(&p, seed);
	static uint8_t buf[CHUNK];
	double start = now();
	uint64_t done = 0, bad = UINT64_MAX;
	if (up) {
		static const size_t chunk[] = { CHUNK };
		if (send_stream(fd, &p, buf, bytes, chunk, 1) < 0)
			return 1;
		done = bytes;
		shutdown(fd, SHUT_WR);
		if (read_line(fd, line, sizeof(line)) < 0) {
			fprintf(stderr, "no verdict from the checker\n");
			return 1;
		}
	} else {
		while (done < bytes) {
			ssize_t n = read(fd, buf, CHUNK);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			for (ssize_t i = 0; i < n; i++)
				if (prng_byte(&p) != buf[i] && bad == UINT64_MAX)
					bad = done + i;
			done += n;
		}
		if (bad != UINT64_MAX)
			snprintf(line, sizeof(line), "mismatch at %llu", (unsigned long long)bad);
		else if (done != bytes)
			snprintf(line, sizeof(line), "short: %llu of %llu", (unsigned long long)done,
				 (unsigned long long)bytes);
		else
			snprintf(line, sizeof(line), "ok %llu", (unsigned long long)done);
		char reply[140];
		snprintf(reply, sizeof(reply), "%s\n", line);
		write_all(fd, reply, strlen(reply));
	}
	double secs = now() - start;
	printf("result: %s\nbytes: %llu\nseconds: %.6f\n", line, (unsigned long long)done, secs);
	close(fd);
	return strncmp(line, "ok ", 3) ? 1 : 0;
}
