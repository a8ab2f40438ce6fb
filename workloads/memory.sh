# memory: /init already reports /proc/meminfo and the swiotlb counters at
# boot and at the end; this adds the OOM headroom.
workload_main() {
	[ "${BOUNCE_OOM_PROBE:-1}" = 1 ] || return 0
	section oom oom_headroom
}

# One pass of bounce-eat until the OOM killer ends it: the last total it
# printed is what one process could take. One pass is enough: measured on
# sev-emulated (4 boots), a first pass took 1820 MiB every time and a
# second right after it 1810-1818, never more.
oom_headroom() {
	sync
	echo 3 > /proc/sys/vm/drop_caches
	bounce-eat "${BOUNCE_OOM_STEP_MIB:-2}" > /tmp/eaten 2>/dev/null
	got=$(tail -n 1 /tmp/eaten)
	rm -f /tmp/eaten
	[ -n "$got" ] || { echo "bounce-eat took nothing"; return 1; }
	echo "headroom_mib $got"
}
