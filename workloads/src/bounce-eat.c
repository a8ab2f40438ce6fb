/*
 * bounce-eat STEP_MIB: take anonymous memory STEP_MIB mebibytes at a time,
 * every page of each step faulted in by the kernel (MAP_POPULATE: one
 * system call a step instead of a fault a page, which under TCG is most of
 * the cost), and print the total taken after each step. Without swap it
 * ends killed by the OOM killer; the last line printed is the OOM
 * headroom, to STEP_MIB: the memory user space really has. One pass
 * instead of a bisection of separate runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s STEP_MIB\n", argv[0]);
		return 2;
	}
	size_t step = strtoull(argv[1], NULL, 0);
	if (step == 0) {
		fprintf(stderr, "%s: STEP_MIB must be at least 1\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t total = step;; total += step) {
		void *p = mmap(NULL, step << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
			       -1, 0);
		if (p == MAP_FAILED) {
			perror("mmap");
			return 1;
		}
		printf("%zu\n", total);
	}
}
