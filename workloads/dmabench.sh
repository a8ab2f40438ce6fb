# dmabench: the kernel's dma_map_benchmark on a spare PCI device (QEMU's
# edu, 1234:11e8), then a growth run with more in-flight mappings than a
# small pool holds.
workload_main() {
	bdf=$(find_pci 0x1234 0x11e8) || { echo "dmabench: no edu device (1234:11e8) in this guest" >&3; return 1; }
	echo dma_map_benchmark > "/sys/bus/pci/devices/$bdf/driver_override"
	echo "$bdf" > /sys/bus/pci/drivers_probe
	[ -e /sys/kernel/debug/dma_map_benchmark ] || { echo "dmabench: driver did not bind to $bdf" >&3; return 1; }

	section latency dma_map_benchmark -t 1 -s "${BOUNCE_SECONDS:-4}" -g 1 -b "${BOUNCE_DMA_BITS:-32}" || return 1

	# Growth: every thread holds a 256 KiB mapping (64 pages) while it
	# busy-waits, so vCPUs x 128 slots are in flight at once.
	section growth-before swiotlb_counters
	echo 0 > /sys/kernel/debug/swiotlb/io_tlb_used_hiwater
	section growth dma_map_benchmark -t "${BOUNCE_GROWTH_THREADS:-64}" -s "${BOUNCE_GROWTH_SECONDS:-2}" -g 64 -x 1000000 -b "${BOUNCE_DMA_BITS:-32}"
	section growth-after swiotlb_counters
	return 0
}
