# Helpers for guest workloads; sourced by /init. Output goes to fd 3, the
# result channel, framed so the host can split it into sections.

# section NAME CMD...: run CMD with its output framed as section NAME.
section() {
	name=$1
	shift
	echo "@@bounce begin $name" >&3
	"$@" >&3 2>&1
	src=$?
	echo "@@bounce end $name rc=$src" >&3
	return $src
}

# One "name value" line per swiotlb debugfs counter.
swiotlb_counters() {
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
