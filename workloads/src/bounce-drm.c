/*
 * bounce-drm: push frames through virtio-gpu the way a compositor does,
 * with nothing but the kernel's uapi headers (no libdrm in the guest).
 *
 * virtio-gpu maps every dumb buffer through the DMA API for its lifetime
 * and syncs the whole object to the device on every transfer
 * (virtio_gpu_cmd_transfer_to_host_2d), so with iommu_platform=on under
 * swiotlb=force every frame crosses the bounce buffers.
 *
 *   bounce-drm FRAMES RESULTS_TTY [BUFFERS]
 *
 * Sets the preferred mode of the first connected connector, draws FRAMES
 * frames of a known pattern (DIRTYFB after each), holds BUFFERS framebuffers
 * at once (each mapped, drawn, shown and flushed), exports and re-imports
 * the buffer through PRIME, draws the final pattern, asks the harness for
 * a QMP screendump over the result channel and waits for its answer, so
 * the harness can compare every pixel. The pattern is pattern() below and
 * harness/src/workload/drm.rs; keep them equal.
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
	uint32_t r = (x + frame) & 0xff;
	uint32_t g = (y + 2 * frame) & 0xff;
	uint32_t b = ((x ^ y) + 3 * frame) & 0xff;
	return (r << 16) | (g << 8) | b;
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

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: %s FRAMES RESULTS_TTY [BUFFERS]\n", argv[0]);
		return 2;
	}
	uint32_t frames = strtoul(argv[1], NULL, 0);
	uint32_t buffers = argc == 4 ? strtoul(argv[3], NULL, 0) : 1;
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

	struct fb main_fb = make_fb(w, h);
	uint32_t *fb = main_fb.map;

	draw(fb, main_fb.pitch, w, h, 0);
	struct drm_mode_crtc set = { .crtc_id = crtc, .fb_id = main_fb.id, .set_connectors_ptr = (uintptr_t)&conn.connector_id,
				     .count_connectors = 1, .mode = mode, .mode_valid = 1 };
	xioctl(DRM_IOCTL_MODE_SETCRTC, &set, "SETCRTC");

	struct drm_clip_rect clip = { 0, 0, w, h };
	struct drm_mode_fb_dirty_cmd dirty = { .fb_id = main_fb.id, .num_clips = 1, .clips_ptr = (uintptr_t)&clip };
	double t0 = now();
	for (uint32_t f = 1; f <= frames; f++) {
		draw(fb, main_fb.pitch, w, h, f);
		xioctl(DRM_IOCTL_MODE_DIRTYFB, &dirty, "DIRTYFB");
	}
	double secs = now() - t0;

	/*
	 * Framebuffers held at once, as a compositor with several outputs or
	 * a deep swap chain holds them: each is mapped through the DMA API
	 * for its lifetime, so enough of them fill a default-size pool and a
	 * dynamic kernel must add pools. Each gets its own pattern and is
	 * shown (a page flip) and flushed once.
	 */
	uint32_t held = 1;
	for (; held < buffers; held++) {
		struct fb more = make_fb(w, h);
		draw(more.map, more.pitch, w, h, 1000 + held);
		set.fb_id = more.id;
		xioctl(DRM_IOCTL_MODE_SETCRTC, &set, "SETCRTC (flip to a held buffer)");
		struct drm_mode_fb_dirty_cmd d2 = { .fb_id = more.id, .num_clips = 1, .clips_ptr = (uintptr_t)&clip };
		xioctl(DRM_IOCTL_MODE_DIRTYFB, &d2, "DIRTYFB (held buffer)");
	}
	set.fb_id = main_fb.id;
	xioctl(DRM_IOCTL_MODE_SETCRTC, &set, "SETCRTC (back to the first buffer)");

	/* PRIME: export the buffer as a dma-buf and import it back. */
	struct drm_prime_handle exp = { .handle = main_fb.handle, .flags = DRM_CLOEXEC | DRM_RDWR };
	xioctl(DRM_IOCTL_PRIME_HANDLE_TO_FD, &exp, "PRIME_HANDLE_TO_FD");
	struct drm_prime_handle imp = { .fd = exp.fd };
	xioctl(DRM_IOCTL_PRIME_FD_TO_HANDLE, &imp, "PRIME_FD_TO_HANDLE");
	const char *prime = imp.handle == main_fb.handle ? "ok" : "handle differs";
	close(exp.fd);

	uint32_t final = frames + 1;
	draw(fb, main_fb.pitch, w, h, final);
	xioctl(DRM_IOCTL_MODE_DIRTYFB, &dirty, "DIRTYFB");

	printf("mode: %ux%u\nframes: %u\nseconds: %.6f\nbytes_per_frame: %llu\nprime: %s\nfinal: %u\nheld: %u\n", w, h,
	       frames, secs, (unsigned long long)w * h * 4, prime, final, held);
	printf("@@bounce request screendump final\n");
	fflush(stdout);
	/* The harness answers on the same UART once the screendump is taken. */
	FILE *tty = fopen(argv[2], "r");
	char line[64] = "";
	if (!tty || !fgets(line, sizeof(line), tty) || strncmp(line, "ack", 3)) {
		fprintf(stderr, "bounce-drm: no screendump answer from the harness\n");
		return 1;
	}
	printf("screendump: %s", line + 4);
	return strcmp(prime, "ok") ? 1 : 0;
}
