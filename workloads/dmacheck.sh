# dmacheck: the harness's DMA-API conformance driver on a spare PCI
# device (QEMU's edu, 1234:11e8), once per min_align_mask.
workload_main() {
	d=/sys/kernel/debug/dmacheck
	section dmacheck-bind bind_pci_driver dmacheck "$d/run" || return 1
	threads=${BOUNCE_THREADS:-0}
	[ "$threads" = 0 ] && threads=$(grep -c '^processor' /proc/cpuinfo)
	echo "$threads" > $d/threads
	echo "${BOUNCE_DMA_BITS:-32}" > $d/dma_bits
	echo "${BOUNCE_ROUNDS:-1}" > $d/rounds
	echo "${BOUNCE_HOLD:-8}" > $d/hold
	echo "${BOUNCE_HOLD_KIB:-64}" > $d/hold_kib
	echo "${BOUNCE_TRANSIENT:-0}" > $d/transient
	for m in $(echo "${BOUNCE_MASKS:-0}" | tr , ' '); do
		echo "$m" > $d/min_align_mask || return 1
		section "dmacheck-mask-$m" cat $d/run || return 1
	done
	return 0
}
