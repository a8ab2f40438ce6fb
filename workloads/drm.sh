# drm: bounce-drm on /dev/dri/card0; it asks the harness for the screendump
# through the result channel and waits for the answer.
workload_main() {
	[ -e /dev/dri/card0 ] || { echo "drm: no /dev/dri/card0 (virtio-gpu not probed?)" >&3; return 1; }
	section drm bounce-drm "${BOUNCE_FRAMES:-30}" "/dev/${BOUNCE_RESULTS:-ttyS1}" "${BOUNCE_BUFFERS:-1}"
}
