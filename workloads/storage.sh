# storage: fio from the tools disk on the scratch disk the harness
# attached to the profile's bouncing controller.
workload_main() {
	tools_mount || return 1
	disk=$(scratch_disk) || { echo "storage: no scratch disk in this guest" >&3; return 1; }
	section storage-disk echo "$disk"
	# NUMJOBS > 1: that many fio processes at once (as many as vCPUs, one
	# queue each), each writing and verifying its own SIZE_MIB of the disk,
	# reported as one job.
	numjobs=${BOUNCE_NUMJOBS:-1}
	par=
	[ "$numjobs" -gt 1 ] && par="--numjobs=$numjobs --offset_increment=${BOUNCE_SIZE_MIB:-16}M --group_reporting"
	for job in $(echo "${BOUNCE_JOBS:-seq-4k}" | tr , ' '); do
		case ${job%%-*} in seq) rw=write ;; rand) rw=randwrite ;; *) echo "storage: bad job $job" >&3; return 1 ;; esac
		bs=${job#*-}
		# LOWtoHIGH: sizes from LOW to HIGH in steps of LOW, at offsets
		# and buffer addresses that are multiples of LOW only (not of a
		# page): the partial-page bounces a min_align_mask must keep.
		case $bs in
		*to*) lo=${bs%to*}; sizes="--bsrange=$lo-${bs#*to} --blockalign=$lo --iomem_align=$lo" ;;
		*) sizes="--bs=$bs" ;;
		esac
		section "fio-$job" guarded "${BOUNCE_STALL_S:-20}" "/sys/class/block/${disk#/dev/}/stat" /tools/bin/fio --name="$job" --filename="$disk" --direct=1 \
			--ioengine=libaio --iodepth="${BOUNCE_IODEPTH:-4}" --rw=$rw $sizes \
			--size="${BOUNCE_SIZE_MIB:-16}M" $par --verify=crc32c --do_verify=1 \
			--randrepeat=0 --eta=never --output-format=json --output=/tmp/fio.json
		# A stalled job cannot be killed (it sleeps in the kernel, retried
		# forever, every vCPU busy): report the counters and the kernel's
		# log, and stop. Summing a trace buffer's worth of bounces beside
		# it takes minutes under TCG and proves nothing about a failure.
		if [ $? = 124 ]; then
			BOUNCE_TRACE=0
			return 1
		fi
		section "fio-$job-json" cat /tmp/fio.json
	done
	# Last, a pattern the host reads back from the disk image once the
	# guest is gone: fio's read-back goes through the same kernel, and a
	# write that the read path undoes would pass it.
	section disk-pattern bounce-stream disk "$disk" "${BOUNCE_SEED:-1}" $((${BOUNCE_DISK_CHECK_MIB:-8} * 1048576)) || return 1
	oom_after
	return 0
}
