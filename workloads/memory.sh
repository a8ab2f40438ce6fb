# memory: /init already reports /proc/meminfo and the swiotlb counters at
# boot and at the end; this adds the OOM headroom.
workload_main() {
	[ "${BOUNCE_OOM_PROBE:-1}" = 1 ] || return 0
	section oom oom_headroom
}

# One pass of bounce-eat until the OOM killer ends it: the last total it
# printed is what one process could take. Twice, keeping the larger: near
# the limit the OOM killer can fire while reclaim is still catching up,
# and one early kill would read low.
oom_headroom() {
	step=${BOUNCE_OOM_STEP_MIB:-4}
	best=0
	for try in 1 2; do
		sync
		echo 3 > /proc/sys/vm/drop_caches
		bounce-eat "$step" > /tmp/eaten 2>/dev/null
		got=$(tail -n 1 /tmp/eaten)
		rm -f /tmp/eaten
		echo "try $try took ${got:-0}"
		[ "${got:-0}" -gt "$best" ] && best=${got:-0}
	done
	echo "headroom_mib $best"
}
