/*
 * bounce-eat MIB: take MIB mebibytes of anonymous memory and touch every
 * page, then exit 0. Without swap, asking for more than the system can
 * give ends with the OOM killer's SIGKILL: the memory workload bisects on
 * that to find the OOM headroom, the memory user space really has.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s MIB\n", argv[0]);
		return 2;
	}
	size_t bytes = strtoull(argv[1], NULL, 0) << 20;
	char *p = mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	long page = sysconf(_SC_PAGESIZE);
	for (size_t i = 0; i < bytes; i += page)
		p[i] = 1;
	return 0;
}
