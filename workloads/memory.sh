# memory: /init already reports /proc/meminfo and the swiotlb counters at
# boot and at the end; this adds the OOM headroom.
workload_main() {
	[ "${BOUNCE_OOM_PROBE:-1}" = 1 ] || return 0
	section oom oom_headroom
}
