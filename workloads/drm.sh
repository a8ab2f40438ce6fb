# drm: bounce-drm on /dev/dri/card0; it asks the harness for screendumps
# through the result channel and waits for each answer, and hands the
# final framebuffer to dmacheck (bound to QEMU's edu device) as a second
# device importing it through PRIME.
workload_main() {
	[ -e /dev/dri/card0 ] || { echo "drm: no /dev/dri/card0 (virtio-gpu not probed?)" >&3; return 1; }
	prime=/sys/kernel/debug/dmacheck/prime
	section drm-bind bind_pci_driver dmacheck "$prime" || return 1
	section drm bounce-drm "${BOUNCE_FRAMES:-90}" "/dev/${BOUNCE_RESULTS:-ttyS1}" "${BOUNCE_BUFFERS:-3}" \
		"${BOUNCE_FLIP:-3}" "$prime"
}
