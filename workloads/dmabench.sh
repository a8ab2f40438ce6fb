# dmabench: the kernel's dma_map_benchmark on a spare PCI device (QEMU's
# edu, 1234:11e8): a headline run, a sweep, then a growth run with more
# in-flight mappings than a small pool holds.
workload_main() {
	bdf=$(find_pci 0x1234 0x11e8) || { echo "dmabench: no edu device (1234:11e8) in this guest" >&3; return 1; }
	echo dma_map_benchmark > "/sys/bus/pci/devices/$bdf/driver_override"
	echo "$bdf" > /sys/bus/pci/drivers_probe
	[ -e /sys/kernel/debug/dma_map_benchmark ] || { echo "dmabench: driver did not bind to $bdf" >&3; return 1; }
	bits=${BOUNCE_DMA_BITS:-32}

	# A warm-up the parser ignores (the first maps after boot translate and
	# fault in the path), then the headline runs: the boot reports the
	# fastest, the run the host disturbed least.
	section latency-warmup dma_map_benchmark -t 1 -s 1 -g 1 -b "$bits" || return 1
	section latency dma_map_benchmark -t 1 -s "${BOUNCE_SECONDS:-4}" -g 1 -b "$bits" || return 1
	i=2
	while [ "$i" -le "${BOUNCE_LATENCY_RUNS:-1}" ]; do
		section "latency-$i" dma_map_benchmark -t 1 -s "${BOUNCE_SECONDS:-4}" -g 1 -b "$bits" || return 1
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

	# Growth: every thread holds a 256 KiB mapping (64 pages) while it
	# busy-waits, so vCPUs x 128 slots are in flight at once.
	section growth-before swiotlb_counters
	echo 0 > /sys/kernel/debug/swiotlb/io_tlb_used_hiwater
	# Transient pools (dynamic only) live one mapping long: bounce-watch
	# polls their counter every 200 us and counts each rise.
	transient=/sys/kernel/debug/swiotlb/io_tlb_transient_nslabs
	if [ -e $transient ]; then
		touch /tmp/watching
		bounce-watch $transient /tmp/watching > /tmp/transient 2>&1 &
	fi
	section growth dma_map_benchmark -t "${BOUNCE_GROWTH_THREADS:-64}" -s "${BOUNCE_GROWTH_SECONDS:-2}" -g 64 -x 1000000 -b "$bits"
	if [ -e $transient ]; then
		rm -f /tmp/watching
		wait
		section growth-transient cat /tmp/transient
	fi
	section growth-after swiotlb_counters
	return 0
}
