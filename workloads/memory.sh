# memory: /init already reports /proc/meminfo and the swiotlb counters at
# boot and at the end; this adds the OOM headroom.
workload_main() {
	[ "${BOUNCE_OOM_PROBE:-1}" = 1 ] || return 0
	section oom oom_headroom
}

# Take $1 MiB after dropping the page cache; fails if the OOM killer
# ends it.
eat() {
	sync
	echo 3 > /proc/sys/vm/drop_caches
	bounce-eat "$1" 2>/dev/null
}

# Bisect on the size bounce-eat can take and touch: it either exits 0 or
# is killed by the OOM killer (no swap here).
oom_headroom() {
	lo=0
	hi=$(awk '/^MemTotal:/ {print int($2 / 1024) + 1}' /proc/meminfo)
	step=${BOUNCE_OOM_STEP_MIB:-4}
	while [ $((hi - lo)) -gt "$step" ]; do
		mid=$(((lo + hi) / 2))
		# A kill counts only if it repeats: near the limit the OOM killer
		# can fire while reclaim is still catching up, and one early kill
		# would bias the whole bisection low.
		if eat "$mid" || eat "$mid"; then
			echo "try $mid ok"
			lo=$mid
		else
			echo "try $mid killed"
			hi=$mid
		fi
	done
	echo "headroom_mib $lo"
}
