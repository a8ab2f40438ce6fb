# Helpers for guest workloads; sourced by /init. Output goes to fd 3, the
# result channel, framed so the host can split it into sections. The guest
# stays dumb: it prints what it saw, every parser lives on the host.

# section NAME CMD...: run CMD with its output framed as section NAME.
# Both markers carry the guest's uptime (t=SECONDS, read without a fork):
# where a boot's time goes, section by section, in the guest's own clock.
section() {
	name=$1
	shift
	read -r up _ < /proc/uptime
	echo "@@bounce begin $name t=$up" >&3
	"$@" >&3 2>&1
	src=$?
	read -r up _ < /proc/uptime
	echo "@@bounce end $name rc=$src t=$up" >&3
	return $src
}

# guarded SECONDS STAT CMD...: CMD, given up on (rc 124) when the block
# device STAT (/sys/block/DEV/stat) completes no read and no write for
# SECONDS (its time fields grow while requests merely wait: only the
# completion counts tell progress). A fixed pool too small for a request
# never maps it and blk-mq retries forever, with the process asleep in the
# kernel where no signal reaches it: without this the guest would sit out
# the harness's whole timeout and say nothing. Progress, not a deadline: a
# slow host is not a stalled one.
#
# The shell waits for CMD itself (it returns the moment CMD does); a
# watchdog looks every 5 s and, on a stall, interrupts that wait with
# SIGUSR1. Measured: a watcher looking twice a second cost fio 7-10 % of
# its bandwidth under TCG (a fork every look), which a gate saw.
guarded() {
	limit=$1
	progress=$2
	shift 2
	rm -f /tmp/stalled
	"$@" &
	pid=$!
	(
		read -r r _ _ _ w _ < "$progress"
		last="$r $w"
		idle=0
		while kill -0 $pid 2>/dev/null; do
			sleep 5
			read -r r _ _ _ w _ < "$progress"
			if [ "$r $w" = "$last" ]; then
				idle=$((idle + 5))
			else
				idle=0
				last="$r $w"
			fi
			if [ $idle -ge "$limit" ]; then
				echo "$idle" > /tmp/stalled
				kill -USR1 $$
				exit 0
			fi
		done
	) 3>&- &
	watchdog=$!
	# The watchdog holds no end of the result channel (3>&- above): its
	# `sleep` outlives the kill below by up to 5 s, and a channel still
	# open elsewhere is not drained by /init's last close, so poweroff cut
	# the report's tail (1 boot in 48 of a nightly run).
	# Left in place: a late signal must never meet the default action,
	# which would end PID 1 (this shell) and panic the kernel.
	trap : USR1
	wait $pid
	rc=$?
	if [ -e /tmp/stalled ]; then
		echo "bounce-stalled: $1 completed no I/O for $(cat /tmp/stalled) s ($progress)"
		return 124
	fi
	kill $watchdog 2>/dev/null
	wait $watchdog 2>/dev/null
	return $rc
}

# One "name value" line per swiotlb debugfs counter, after the harness
# kernels' list of the default swiotlb's pools (`pool slabs N areas A
# start ADDR`: the boot pool, then each one growth added).
swiotlb_counters() {
	[ -r /sys/kernel/debug/dmacheck/pools ] && cat /sys/kernel/debug/dmacheck/pools
	for f in /sys/kernel/debug/swiotlb/*; do
		[ -f "$f" ] && echo "${f##*/} $(cat "$f")"
	done
	return 0
}

# find_pci VENDOR DEVICE: print the first matching PCI address.
find_pci() {
	for d in /sys/bus/pci/devices/*; do
		if [ "$(cat "$d/vendor")" = "$1" ] && [ "$(cat "$d/device")" = "$2" ]; then
			echo "${d##*/}"
			return 0
		fi
	done
	return 1
}

# bind_pci_driver DRIVER FILE: bind DRIVER to QEMU's edu device
# (1234:11e8), a PCI function no driver claims; FILE appears once it has
# bound. Fails with the reason on stdout.
bind_pci_driver() {
	bdf=$(find_pci 0x1234 0x11e8) || { echo "no edu device (1234:11e8) in this guest"; return 1; }
	echo "$1" > "/sys/bus/pci/devices/$bdf/driver_override"
	echo "$bdf" > /sys/bus/pci/drivers_probe
	[ -e "$2" ] || { echo "$1 did not bind to $bdf (is it built into this kernel?)"; return 1; }
}

bind_map_benchmark() {
	bind_pci_driver dma_map_benchmark /sys/kernel/debug/dma_map_benchmark >&3
}

# Bounce evidence: every swiotlb_map() fires swiotlb:swiotlb_bounced. The
# trace buffer is made large enough for a workload's worth of events and
# its overruns are reported, so a lost event never goes unnoticed.
T=/sys/kernel/tracing
bounce_trace_start() {
	[ "${BOUNCE_TRACE:-1}" = 1 ] || return 0
	[ -d $T/events/swiotlb/swiotlb_bounced ] || return 0
	echo 0 > $T/tracing_on
	echo "${BOUNCE_TRACE_KB:-16384}" > $T/buffer_size_kb
	echo > $T/trace
	echo 1 > $T/events/swiotlb/swiotlb_bounced/enable
	echo 1 > $T/tracing_on
}

# Per device: events and bytes; then events lost to a full buffer.
bounce_trace_report() {
	[ "${BOUNCE_TRACE:-1}" = 1 ] || { echo "not traced"; return 0; }
	[ -d $T/events/swiotlb/swiotlb_bounced ] || { echo "no swiotlb tracepoint"; return 0; }
	echo 0 > $T/tracing_on
	echo 0 > $T/events/swiotlb/swiotlb_bounced/enable
	bounce-tally < $T/trace
	lost=0
	for f in $T/per_cpu/cpu*/stats; do
		o=$(awk '/^overrun:/ {print $2}' "$f")
		lost=$((lost + ${o:-0}))
	done
	echo "lost $lost"
}

# The disk the harness attached for this workload (serial bounce-scratch):
# any disk but the read-only tools disk.
scratch_disk() {
	for b in /sys/block/sd* /sys/block/vd* /sys/block/nvme*n* /sys/block/hd*; do
		[ -e "$b" ] || continue
		[ "$(cat "$b/serial" 2>/dev/null)" = bounce-tools ] && continue
		echo "/dev/${b##*/}"
		return 0
	done
	return 1
}

# Mount the tools disk (serial bounce-tools) at /tools: Debian's fio and
# iperf3 for this architecture, run through /tools/bin wrappers.
tools_mount() {
	for b in /sys/block/vd*; do
		if [ "$(cat "$b/serial" 2>/dev/null)" = bounce-tools ]; then
			mkdir -p /tools
			mount -t ext2 -o ro "/dev/${b##*/}" /tools && return 0
		fi
	done
	echo "no tools disk (serial bounce-tools) in this guest" >&3
	return 1
}

# Bring the NIC up on QEMU user networking: the guest is 10.0.2.15; the
# harness's services are at $BOUNCE_PEER (restricted: nothing else is).
net_up() {
	ip link set lo up
	for i in /sys/class/net/*; do
		n=${i##*/}
		[ "$n" = lo ] && continue
		ip link set "$n" up && ip addr add 10.0.2.15/24 dev "$n" && ip route add default via 10.0.2.2 && return 0
	done
	echo "no network interface" >&3
	return 1
}

# The OOM headroom: one pass of bounce-eat until the OOM killer ends it;
# the last total it printed is what one process could take. One pass is
# enough: measured on sev-emulated (4 boots), a first pass took 1820 MiB
# every time and a second right after it 1810-1818, never more.
oom_headroom() {
	sync
	echo 3 > /proc/sys/vm/drop_caches
	bounce-eat "${BOUNCE_OOM_STEP_MIB:-2}" > /tmp/eaten 2>/dev/null
	got=$(tail -n 1 /tmp/eaten)
	rm -f /tmp/eaten
	[ -n "$got" ] || { echo "bounce-eat took nothing"; return 1; }
	echo "headroom_mib $got"
}

# After a workload's I/O has grown the pool (if asked, bounce.oom_after=1):
# what memory is left then, which is what a device that grows its pool
# under load pays.
oom_after() {
	[ "${BOUNCE_OOM_AFTER:-0}" = 1 ] || return 0
	section meminfo-after cat /proc/meminfo
	section oom-after oom_headroom
}
