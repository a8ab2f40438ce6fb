/*
 * bounce-drm: push frames through virtio-gpu the way a compositor does,
 * with nothing but the kernel's uapi headers (no libdrm in the guest).
 *
 * virtio-gpu maps every dumb buffer through the DMA API for its lifetime
 * and syncs the whole object to the device on every transfer
 * (virtio_gpu_cmd_transfer_to_host_2d), so with iommu_platform=on under
 * swiotlb=force every frame crosses the bounce buffers.
 *
 *   bounce-drm FRAMES RESULTS_TTY BUFFERS FLIP PRIME_FILE
 *
 * Sets the preferred mode of the first connected connector and draws
 * FRAMES frames, each into the next of FLIP framebuffers and page-flipped
 * to (so FLIP of them are mapped and in use at once), DIRTYFB after each.
 * A third and two thirds of the way through, and at the end, it asks the
 * harness for a QMP screendump over the result channel and waits for the
 * answer, so the harness can compare every pixel of what the device got.
 * It then holds BUFFERS framebuffers at once (each mapped, drawn, shown,
 * flushed), and exports the final frame's buffer as a dma-buf that
 * dmacheck imports as a second device (PRIME_FILE, its debugfs file):
 * the import is where drm_gem_map_dma_buf() maps the buffer through
 * swiotlb, and dmacheck compares every byte the importing device is
 * given. The pattern is a hash of (x, y, frame), so no displacement of
 * rows, columns or frames reads as right; it is pattern() below and in
 * harness/src/workload/drm.rs: keep them equal.
 */
#include <drm/drm.h>
#include <drm/drm_fourcc.h>
#include <drm/drm_mode.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static int drm_fd;

static void die(const char *what)
{
	fprintf(stderr, "bounce-drm: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void xioctl(unsigned long req, void *arg, const char *what)
{
	int r;
	do
		r = ioctl(drm_fd, req, arg);
	while (r < 0 && (errno == EINTR || errno == EAGAIN));
	if (r < 0)
		die(what);
}

static uint32_t pattern(uint32_t x, uint32_t y, uint32_t frame)
{
	uint32_t h = x * 0x9e3779b1u ^ y * 0x85ebca77u ^ frame * 0xc2b2ae3du;
	h ^= h >> 15;
	h *= 0x2c1b3c6du;
	h ^= h >> 12;
	h *= 0x297a2d39u;
	h ^= h >> 15;
	return h & 0xffffff;
}

/* Pixels of fb that are not frame's pattern, and the first one. */
static uint64_t wrong(const uint32_t *fb, uint32_t pitch, uint32_t w, uint32_t h, uint32_t frame, uint32_t *fx,
		      uint32_t *fy)
{
	uint64_t bad = 0;
	for (uint32_t y = 0; y < h; y++) {
		const uint32_t *row = (const uint32_t *)((const char *)fb + (size_t)y * pitch);
		for (uint32_t x = 0; x < w; x++)
			if ((row[x] & 0xffffff) != pattern(x, y, frame) && !bad++) {
				*fx = x;
				*fy = y;
			}
	}
	return bad;
}

static void draw(uint32_t *fb, uint32_t pitch, uint32_t w, uint32_t h, uint32_t frame)
{
	for (uint32_t y = 0; y < h; y++) {
		uint32_t *row = (uint32_t *)((char *)fb + (size_t)y * pitch);
		for (uint32_t x = 0; x < w; x++)
			row[x] = pattern(x, y, frame);
	}
}

/* A dumb buffer mapped into this process and made a framebuffer. */
struct fb {
	uint32_t handle, pitch, id;
	uint32_t *map;
};

static struct fb make_fb(uint32_t w, uint32_t h)
{
	struct drm_mode_create_dumb dumb = { .width = w, .height = h, .bpp = 32 };
	xioctl(DRM_IOCTL_MODE_CREATE_DUMB, &dumb, "CREATE_DUMB");
	struct drm_mode_map_dumb map = { .handle = dumb.handle };
	xioctl(DRM_IOCTL_MODE_MAP_DUMB, &map, "MAP_DUMB");
	uint32_t *p = mmap(NULL, dumb.size, PROT_READ | PROT_WRITE, MAP_SHARED, drm_fd, map.offset);
	if (p == MAP_FAILED)
		die("mmap dumb buffer");
	struct drm_mode_fb_cmd2 add = { .width = w, .height = h, .pixel_format = DRM_FORMAT_XRGB8888 };
	add.handles[0] = dumb.handle;
	add.pitches[0] = dumb.pitch;
	xioctl(DRM_IOCTL_MODE_ADDFB2, &add, "ADDFB2");
	return (struct fb){ dumb.handle, dumb.pitch, add.fb_id, p };
}

/* Ask the harness for a screendump of what is shown, frame-F.ppm. */
static void screendump(FILE *tty, uint32_t frame)
{
	/* A whole line: the answer names the file, longer than any buffer. */
	char *line = NULL;
	size_t cap = 0;
	printf("@@bounce request screendump frame-%u\n", frame);
	fflush(stdout);
	if (getline(&line, &cap, tty) < 0 || strncmp(line, "ack", 3)) {
		fprintf(stderr, "bounce-drm: no screendump answer from the harness for frame %u (%s)\n", frame,
			line ? line : "end of file");
		exit(1);
	}
	free(line);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: %s FRAMES RESULTS_TTY BUFFERS FLIP PRIME_FILE\n", argv[0]);
		return 2;
	}
	uint32_t frames = strtoul(argv[1], NULL, 0);
	uint32_t buffers = strtoul(argv[3], NULL, 0);
	uint32_t flip = strtoul(argv[4], NULL, 0);
	if (frames < 3 || flip < 1 || flip > 3) {
		fprintf(stderr, "bounce-drm: FRAMES must be 3 or more and FLIP 1 to 3\n");
		return 2;
	}
	drm_fd = open("/dev/dri/card0", O_RDWR | O_CLOEXEC);
	if (drm_fd < 0)
		die("open /dev/dri/card0");

	struct drm_mode_card_res res = { 0 };
	xioctl(DRM_IOCTL_MODE_GETRESOURCES, &res, "GETRESOURCES");
	uint32_t conns[16], crtcs[16], encs[16], fbs[16];
	if (res.count_connectors > 16 || res.count_crtcs > 16 || res.count_encoders > 16 || res.count_fbs > 16) {
		fprintf(stderr, "bounce-drm: too many objects\n");
		return 1;
	}
	res.connector_id_ptr = (uintptr_t)conns;
	res.crtc_id_ptr = (uintptr_t)crtcs;
	res.encoder_id_ptr = (uintptr_t)encs;
	res.fb_id_ptr = (uintptr_t)fbs;
	xioctl(DRM_IOCTL_MODE_GETRESOURCES, &res, "GETRESOURCES");

	struct drm_mode_modeinfo modes[64], mode;
	struct drm_mode_get_connector conn = { 0 };
	int found = 0;
	for (uint32_t i = 0; i < res.count_connectors && !found; i++) {
		memset(&conn, 0, sizeof(conn));
		conn.connector_id = conns[i];
		xioctl(DRM_IOCTL_MODE_GETCONNECTOR, &conn, "GETCONNECTOR");
		if (conn.connection != 1 || conn.count_modes == 0)
			continue;
		uint32_t n = conn.count_modes > 64 ? 64 : conn.count_modes;
		conn.count_modes = n;
		conn.modes_ptr = (uintptr_t)modes;
		conn.count_props = 0;
		conn.count_encoders = 0;
		xioctl(DRM_IOCTL_MODE_GETCONNECTOR, &conn, "GETCONNECTOR");
		mode = modes[0];
		for (uint32_t m = 0; m < n; m++)
			if (modes[m].type & DRM_MODE_TYPE_PREFERRED) {
				mode = modes[m];
				break;
			}
		found = 1;
	}
	if (!found) {
		fprintf(stderr, "bounce-drm: no connected connector\n");
		return 1;
	}
	uint32_t crtc = res.count_crtcs ? crtcs[0] : 0;
	if (conn.encoder_id) {
		struct drm_mode_get_encoder enc = { .encoder_id = conn.encoder_id };
		xioctl(DRM_IOCTL_MODE_GETENCODER, &enc, "GETENCODER");
		if (enc.crtc_id)
			crtc = enc.crtc_id;
	}
	uint32_t w = mode.hdisplay, h = mode.vdisplay;

	/* The harness answers each request on the result UART, a line each. */
	FILE *tty = fopen(argv[2], "r");
	if (!tty)
		die("open the result channel");

	struct fb ring[3];
	for (uint32_t i = 0; i < flip; i++)
		ring[i] = make_fb(w, h);
	struct drm_mode_crtc set = { .crtc_id = crtc, .set_connectors_ptr = (uintptr_t)&conn.connector_id,
				     .count_connectors = 1, .mode = mode, .mode_valid = 1 };
	struct drm_clip_rect clip = { 0, 0, w, h };

	/*
	 * Draw frame f into the next buffer of the ring, flip to it and flush
	 * it; only this is timed (a screendump waits on the host).
	 */
	double secs = 0;
	uint32_t shots[3], nshots = 0;
	for (uint32_t f = 1; f <= frames + 1; f++) {
		struct fb *b = &ring[f % flip];
		double t0 = now();
		draw(b->map, b->pitch, w, h, f);
		set.fb_id = b->id;
		xioctl(DRM_IOCTL_MODE_SETCRTC, &set, "SETCRTC (page flip)");
		struct drm_mode_fb_dirty_cmd dirty = { .fb_id = b->id, .num_clips = 1, .clips_ptr = (uintptr_t)&clip };
		xioctl(DRM_IOCTL_MODE_DIRTYFB, &dirty, "DIRTYFB");
		if (f <= frames)
			secs += now() - t0;
		if (f == frames / 3 || f == 2 * frames / 3 || f == frames + 1) {
			if (f == frames + 1)
				break; /* the final frame is dumped after PRIME */
			screendump(tty, f);
			shots[nshots++] = f;
		}
	}
	uint32_t final = frames + 1;
	struct fb *shown = &ring[final % flip];

	/*
	 * Framebuffers held at once, as a compositor with several outputs or
	 * a deep swap chain holds them: each is mapped through the DMA API
	 * for its lifetime, so enough of them fill a default-size pool and a
	 * dynamic kernel must add pools. Each gets its own pattern and is
	 * shown (a page flip) and flushed once.
	 */
	uint32_t held = flip;
	for (; held < buffers; held++) {
		struct fb more = make_fb(w, h);
		draw(more.map, more.pitch, w, h, 1000 + held);
		set.fb_id = more.id;
		xioctl(DRM_IOCTL_MODE_SETCRTC, &set, "SETCRTC (flip to a held buffer)");
		struct drm_mode_fb_dirty_cmd d2 = { .fb_id = more.id, .num_clips = 1, .clips_ptr = (uintptr_t)&clip };
		xioctl(DRM_IOCTL_MODE_DIRTYFB, &d2, "DIRTYFB (held buffer)");
	}
	set.fb_id = shown->id;
	xioctl(DRM_IOCTL_MODE_SETCRTC, &set, "SETCRTC (back to the final frame)");

	/* PRIME into a second device: dmacheck checks what it is given. */
	struct drm_prime_handle exp = { .handle = shown->handle, .flags = DRM_CLOEXEC | DRM_RDWR };
	xioctl(DRM_IOCTL_PRIME_HANDLE_TO_FD, &exp, "PRIME_HANDLE_TO_FD");
	int pf = open(argv[5], O_RDWR);
	if (pf < 0)
		die("open the importer (dmacheck's prime file)");
	if (dprintf(pf, "%d\n", exp.fd) < 0)
		die("import the framebuffer into dmacheck");
	char verdict[8192];
	ssize_t n = pread(pf, verdict, sizeof(verdict) - 1, 0);
	if (n < 0)
		die("read dmacheck's verdict");
	verdict[n] = 0;
	close(pf);
	close(exp.fd);
	fputs(verdict, stdout);

	/* The import is gone: the exporter's bytes must be the frame still. */
	uint32_t fx = 0, fy = 0;
	uint64_t bad = wrong(shown->map, shown->pitch, w, h, final, &fx, &fy);
	if (bad)
		printf("after_import: %llu pixels differ from frame %u, first at (%u,%u)\n", (unsigned long long)bad,
		       final, fx, fy);
	else
		printf("after_import: ok\n");
	struct drm_mode_fb_dirty_cmd dirty = { .fb_id = shown->id, .num_clips = 1, .clips_ptr = (uintptr_t)&clip };
	xioctl(DRM_IOCTL_MODE_DIRTYFB, &dirty, "DIRTYFB");

	printf("mode: %ux%u\nframes: %u\nflip: %u\nseconds: %.6f\nbytes_per_frame: %llu\nfinal: %u\nheld: %u\n", w, h,
	       frames, flip, secs, (unsigned long long)w * h * 4, final, held);
	screendump(tty, final);
	shots[nshots++] = final;
	printf("screens:");
	for (uint32_t i = 0; i < nshots; i++)
		printf(" %u", shots[i]);
	printf("\n");
	return bad ? 1 : 0;
}
