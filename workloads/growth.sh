# growth: dma_map_benchmark with more mappings in flight than a small pool
# holds, from every vCPU at once: a dynamic kernel adds pools (and makes
# transient ones while they come), a fixed one refuses mappings.
workload_main() {
	bind_map_benchmark || return 1
	bits=${BOUNCE_DMA_BITS:-32}
	# Every thread holds a 256 KiB mapping (64 pages) while it busy-waits,
	# so vCPUs x 128 slots are in flight at once.
	section growth-before swiotlb_counters
	echo 0 > /sys/kernel/debug/swiotlb/io_tlb_used_hiwater
	# Transient pools (dynamic only) live one mapping long: bounce-watch
	# polls their counter every 200 us and counts each rise.
	transient=/sys/kernel/debug/swiotlb/io_tlb_transient_nslabs
	if [ -e $transient ]; then
		touch /tmp/watching
		bounce-watch $transient /tmp/watching > /tmp/transient 2>&1 &
		watcher=$!
	fi
	section growth dma_map_benchmark -t "${BOUNCE_THREADS:-64}" -s "${BOUNCE_SECONDS:-2}" -g 64 -x 1000000 -b "$bits"
	if [ -e $transient ]; then
		rm -f /tmp/watching
		wait $watcher
		section growth-transient cat /tmp/transient
	fi
	section growth-after swiotlb_counters
	return 0
}
