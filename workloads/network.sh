# network: iperf3 (from the tools disk) and bounce-stream against the
# harness's services, which QEMU forwards at $BOUNCE_PEER (and nothing else).
workload_main() {
	tools_mount || return 1
	net_up || return 1
	host=$BOUNCE_PEER
	# STREAMS > 1: iperf3 runs that many TCP streams at once.
	streams=${BOUNCE_STREAMS:-1}
	section iperf-up /tools/bin/iperf3 -c $host -p "$BOUNCE_IPERF_PORT" -t "${BOUNCE_SECONDS:-3}" -P "$streams" -J
	section iperf-down /tools/bin/iperf3 -c $host -p "$BOUNCE_IPERF_PORT" -t "${BOUNCE_SECONDS:-3}" -R -P "$streams" -J
	bytes=$((${BOUNCE_STREAM_MIB:-8} * 1048576))
	section stream-up bounce-stream up $host "$BOUNCE_STREAM_PORT" "${BOUNCE_SEED:-1}" $bytes
	section stream-down bounce-stream down $host "$BOUNCE_STREAM_PORT" "${BOUNCE_SEED:-1}" $bytes
	if [ "$streams" -gt 1 ]; then
		# The verified stream again while iperf3's streams fill the same
		# receive ring, their softirqs on other CPUs: the bounces of both
		# share the pool at once. iperf3 writes to a file (two sections
		# at once would interleave on the channel) and reports after.
		/tools/bin/iperf3 -c $host -p "$BOUNCE_IPERF_PORT" -t "${BOUNCE_SECONDS:-3}" -R -P "$streams" -J >/tmp/iperf-load.json 2>&1 &
		load=$!
		section stream-down-loaded bounce-stream down $host "$BOUNCE_STREAM_PORT" "${BOUNCE_SEED:-1}" $bytes
		wait $load
		echo $? >/tmp/iperf-load.rc
		section iperf-load sh -c 'cat /tmp/iperf-load.json; exit $(cat /tmp/iperf-load.rc)'
	fi
	section stream-down-small bounce-stream down-small $host "$BOUNCE_STREAM_PORT" "${BOUNCE_SEED:-1}" $((${BOUNCE_SMALL_KIB:-64} * 1024))
	# Unbind the NIC's driver: removing the device unmaps every buffer it
	# holds (virtio-net keeps its receive ring mapped while down), so
	# io_tlb_used must return to its boot value and a leak shows.
	for i in /sys/class/net/*; do
		[ "${i##*/}" = lo ] && continue
		dev=$(readlink -f "$i/device")
		echo "${dev##*/}" > "$dev/driver/unbind"
	done
	oom_after
	return 0
}
