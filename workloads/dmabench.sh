# dmabench: the kernel's dma_map_benchmark on a spare PCI device (QEMU's
# edu, 1234:11e8): a headline run, then a sweep. (The growth run, which
# needs every vCPU mapping at once, is the growth workload.)
workload_main() {
	bind_map_benchmark || return 1
	bits=${BOUNCE_DMA_BITS:-32}

	# A warm-up the parser ignores (the first maps after boot translate and
	# fault in the path), then the headline runs: the boot reports the
	# fastest, the run the host disturbed least.
	section latency-warmup dma_map_benchmark -t 1 -s 1 -g 1 -b "$bits" || return 1
	section latency dma_map_benchmark -t 1 -s "${BOUNCE_SECONDS:-1}" -g 1 -b "$bits" || return 1
	i=2
	while [ "$i" -le "${BOUNCE_LATENCY_RUNS:-1}" ]; do
		section "latency-$i" dma_map_benchmark -t 1 -s "${BOUNCE_SECONDS:-1}" -g 1 -b "$bits" || return 1
		i=$((i + 1))
	done

	for t in $(echo "${BOUNCE_SWEEP_THREADS:-1}" | tr , ' '); do
		for g in $(echo "${BOUNCE_SWEEP_GRANULES:-1}" | tr , ' '); do
			for d in $(echo "${BOUNCE_SWEEP_DIRS:-to}" | tr , ' '); do
				case $d in to) dir=1 ;; from) dir=2 ;; *) dir=0 ;; esac
				section "sweep-t$t-g$g-$d" dma_map_benchmark -t "$t" -s "${BOUNCE_SWEEP_SECONDS:-2}" -g "$g" -d "$dir" -b "$bits" || return 1
			done
		done
	done

	return 0
}
