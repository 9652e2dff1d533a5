// SPDX-License-Identifier: GPL-2.0-only
/*
 * vgpusim - a simulated vGPU (vfio mediated device) for display tests.
 *
 * Each instance looks like a small PCI display controller to a vfio-pci
 * user such as QEMU: BAR0 is VRAM (mmappable), BAR2 a register block, and
 * the device exports its primary and cursor planes as dma-bufs through
 * VFIO_DEVICE_QUERY_GFX_PLANE / VFIO_DEVICE_GET_GFX_DMABUF.  A built-in
 * "guest" (an hrtimer driven work item) draws a test pattern with the frame
 * number encoded in pixels and page-flips between buffers in VRAM.  Tests
 * steer the device and read its counters through sysfs, see
 * docs/vgpusim.md.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/device.h>
#include <linux/dma-buf.h>
#include <linux/dma-mapping.h>
#include <linux/dma-resv.h>
#include <linux/eventfd.h>
#include <linux/hrtimer.h>
#include <linux/iosys-map.h>
#include <linux/kernel.h>
#include <linux/kref.h>
#include <linux/log2.h>
#include <linux/mdev.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci_regs.h>
#include <linux/poll.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/string.h>
#include <linux/sysfs.h>
#include <linux/uaccess.h>
#include <linux/unaligned.h>
#include <linux/vfio.h>
#include <linux/vmalloc.h>
#include <linux/workqueue.h>
#include <uapi/drm/drm_fourcc.h>

/*
 * The display event, as the last version of GVT-g's proposal defines it:
 * "Deliver vGPU display vblank/refresh event to userspace", v6, Tina
 * Zhang, 24 Sep 2019, kvm list (never merged). Written here from the
 * series' text, not shared with QEMU's header, so that the two are
 * checked against each other (docs/vgpusim.md, "Display event"):
 * - patch 1/6: struct vfio_irq_info gains "__u32 cap_offset" after count
 *   (20 bytes); VFIO_IRQ_INFO_FLAG_CAPS (1 << 4); VFIO_IRQ_INFO_CAP_TYPE 1
 *   ("Irq capability index starts from 1"), struct vfio_irq_info_cap_type
 *   { header; __u32 type; __u32 subtype; }; IRQ indexes >= 5
 *   (VFIO_PCI_NUM_IRQS) are typed by that capability.
 * - patch 2/6: VFIO_IRQ_TYPE_GFX 1, VFIO_IRQ_SUBTYPE_GFX_DISPLAY_IRQ 1,
 *   VFIO_IRQ_INFO_CAP_DISPLAY 2, struct
 *   vfio_irq_info_cap_display_plane_events { header; __u64 cur_event_val;
 *   __u64 pri_event_val; }: the eventfd counter values of a cursor and a
 *   primary plane update.
 * - patches 3/6, 4/6 (kvmgt): flags MASKABLE | EVENTFD (| FLAG_CAPS),
 *   count 1, the caps chained TYPE then DISPLAY right after the struct
 *   (offsets 20 and 36), version 1 each; primary 1UL << 56, cursor
 *   1UL << 48, added at the emulated vblank; DATA_EVENTFD arms (the fd goes
 *   to eventfd_ctx_fdget(), so -1 fails), DATA_NONE with count 0 disarms;
 *   MASK / UNMASK with DATA_NONE stop and resume the signals.
 */
#define VGS_V6_IRQ_INFO_FLAG_CAPS	(1 << 4)
#define VGS_V6_IRQ_INFO_CAP_TYPE	1
#define VGS_V6_IRQ_INFO_CAP_DISPLAY	2
#define VGS_V6_IRQ_TYPE_GFX		1
#define VGS_V6_IRQ_SUBTYPE_GFX_DISPLAY_IRQ 1
#define VGS_V6_PRI_EVENT_VAL		(1ULL << 56)
#define VGS_V6_CUR_EVENT_VAL		(1ULL << 48)

struct vgs_v6_irq_info {
	__u32 argsz;
	__u32 flags;
	__u32 index;
	__u32 count;
	__u32 cap_offset;
};

struct vgs_v6_cap_header {
	__u16 id;
	__u16 version;
	__u32 next;
};

struct vgs_v6_irq_cap_type {
	struct vgs_v6_cap_header header;
	__u32 type;
	__u32 subtype;
};

struct vgs_v6_irq_cap_display {
	struct vgs_v6_cap_header header;
	__u64 cur_event_val;
	__u64 pri_event_val;
};

static_assert(sizeof(struct vgs_v6_irq_info) == 20);
static_assert(sizeof(struct vgs_v6_irq_cap_type) == 16);
static_assert(sizeof(struct vgs_v6_irq_cap_display) == 24);

/* where kvmgt puts the caps: right after the struct, one after the other */
#define VGS_V6_CAP_TYPE_OFF	sizeof(struct vgs_v6_irq_info)
#define VGS_V6_CAP_DISPLAY_OFF	(VGS_V6_CAP_TYPE_OFF + \
				 sizeof(struct vgs_v6_irq_cap_type))
#define VGS_V6_IRQ_INFO_SIZE	(VGS_V6_CAP_DISPLAY_OFF + \
				 sizeof(struct vgs_v6_irq_cap_display))

/* the display event's IRQ index, after the PCI ones (none of which exist) */
#define VGS_DISPLAY_IRQ		VFIO_PCI_NUM_IRQS

/* planes a vblank reports */
#define VGS_EV_PRIMARY		BIT(0)
#define VGS_EV_CURSOR		BIT(1)
/* the display's refresh while the pattern engine does not run */
#define VGS_IDLE_VBLANK_HZ	60
/* the storm control's bound, signals per second */
#define VGS_MAX_STORM_HZ	100000

#define VGS_NAME		"vgpusim"

/* PCI identity (private test device, no guest driver exists) */
#define VGS_PCI_VENDOR		0x1b36
#define VGS_PCI_DEVICE		0x00ff
#define VGS_PCI_CLASS		0x0380	/* display controller, other */
#define VGS_PCI_REVISION	0x01

/* region layout: index << 40, like vfio-pci */
#define VGS_OFFSET_SHIFT	40
#define VGS_OFFSET_MASK		((1ULL << VGS_OFFSET_SHIFT) - 1)
#define VGS_INDEX_TO_OFFSET(i)	((u64)(i) << VGS_OFFSET_SHIFT)
#define VGS_EDID_REGION_INDEX	VFIO_PCI_NUM_REGIONS
#define VGS_NUM_REGIONS		(VFIO_PCI_NUM_REGIONS + 1)
/*
 * profile region: display region k (VGS_DISPLAY_REGION + k) is a window on
 * VRAM buffer k (bufsz bytes at k * bufsz); the primary plane names the
 * front buffer's (docs/vgpusim.md, "Profile region")
 */
#define VGS_DISPLAY_REGION	VGS_NUM_REGIONS
#define VGS_DISPLAY_REGIONS	VGS_MAX_BUFS

#define VGS_CFG_SIZE		256
#define VGS_MMIO_SIZE		4096
#define VGS_EDID_REGION_SIZE	4096
#define VGS_EDID_BLOB_OFFSET	0x400
#define VGS_EDID_MAX_SIZE	2048

/* DRM_PLANE_TYPE_* values (enum drm_plane_type) */
#define VGS_PLANE_OVERLAY	0
#define VGS_PLANE_PRIMARY	1
#define VGS_PLANE_CURSOR	2

#define VGS_MIN_W		64
#define VGS_MIN_H		64
#define VGS_MAX_BUFS		8
#define VGS_MAX_HZ		240
/* the cursor image is drawn at 64x64 and scaled to 128 or 256 */
#define VGS_CURSOR_W		64
#define VGS_CURSOR_H		64
/* VRAM the cursor image of @size x @size ARGB8888 takes, at its end */
#define VGS_CURSOR_AREA(size)	PAGE_ALIGN((size) * (size) * 4)
#define VGS_MAX_LISTED		64
#define VGS_LAT_RING		1024
/* frames whose draw time is kept for the frame_times attribute */
#define VGS_FRAME_LOG		4096
#define VGS_MAX_STEP		10000

/* pattern geometry */
#define VGS_BAND_H		8	/* frame number band at the top */
#define VGS_STRIP_H		16	/* moving block strip at the bottom */
#define VGS_BLOCK_W		16

/* BAR2 registers, all 32 bit little endian */
#define VGS_REG_ID		0x000
#define VGS_REG_VERSION		0x004
#define VGS_REG_VRAM_SIZE	0x008
#define VGS_REG_MAX_SIZE	0x00c
#define VGS_REG_ENABLE		0x010
#define VGS_REG_WIDTH		0x014
#define VGS_REG_HEIGHT		0x018
#define VGS_REG_STRIDE		0x01c
#define VGS_REG_FORMAT		0x020
#define VGS_REG_MOD_LO		0x024
#define VGS_REG_MOD_HI		0x028
#define VGS_REG_FB_OFFSET	0x02c
#define VGS_REG_COMMIT		0x030
#define VGS_REG_STATUS		0x034
#define VGS_REG_CURSOR_CTRL	0x040
#define VGS_REG_CURSOR_X	0x044
#define VGS_REG_CURSOR_Y	0x048
#define VGS_REG_CURSOR_HOT_X	0x04c
#define VGS_REG_CURSOR_HOT_Y	0x050
#define VGS_REG_CURSOR_OFFSET	0x054
#define VGS_REG_ENGINE_CTRL	0x060
#define VGS_REG_FLIP_HZ		0x064
#define VGS_REG_NBUFS		0x068
#define VGS_REG_FRAME		0x06c
#define VGS_REG_FRONT		0x070
#define VGS_REG_BUF_SIZE	0x074

#define VGS_ID_VALUE		0x31534756	/* "VGS1" */
#define VGS_VERSION_VALUE	0x00010000

#define VGS_STATUS_OK		BIT(0)
#define VGS_STATUS_ERROR	BIT(1)

#define VGS_CURSOR_CTRL_ENABLE	BIT(0)
#define VGS_CURSOR_CTRL_AUTO	BIT(1)
#define VGS_ENGINE_RUN		BIT(0)
#define VGS_ENGINE_FRONT	BIT(1)

#define VGS_NO_HOT		0xffffffffU

/* colours (0xRRGGBB) */
#define VGS_WHITE		0xffffff
#define VGS_BLACK		0x000000
#define VGS_GRAY		0x808080

static unsigned int vram_mb = 64;
module_param(vram_mb, uint, 0444);
MODULE_PARM_DESC(vram_mb, "VRAM per instance in MiB (rounded up to a power of two, 4..1024)");

static unsigned int max_instances = 8;
module_param(max_instances, uint, 0444);
MODULE_PARM_DESC(max_instances, "maximum number of instances");

static unsigned int max_width = 3840;
module_param(max_width, uint, 0444);
MODULE_PARM_DESC(max_width, "largest mode width (reported as EDID max_xres)");

static unsigned int max_height = 2160;
module_param(max_height, uint, 0444);
MODULE_PARM_DESC(max_height, "largest mode height (reported as EDID max_yres)");

static unsigned int def_width = 1024;
module_param(def_width, uint, 0444);
MODULE_PARM_DESC(def_width, "power-on mode width");

static unsigned int def_height = 768;
module_param(def_height, uint, 0444);
MODULE_PARM_DESC(def_height, "power-on mode height");

static unsigned int def_hz = 60;
module_param(def_hz, uint, 0444);
MODULE_PARM_DESC(def_hz, "power-on flip rate in Hz (1..240)");

static unsigned int storm_hz;
module_param(storm_hz, uint, 0444);
MODULE_PARM_DESC(storm_hz, "display event storm of new instances, signals per second (0: off, at most 100000)");

/*
 * Profiles: how strict the device is, per instance (sysfs `profile`); the
 * module parameter names the profile of new instances. A profile is a
 * property of the device, not of its power-on state: a reset keeps it.
 */
enum vgs_profile {
	VGS_PROFILE_DEFAULT,	/* today's vgpusim: mmappable dma-bufs, ... */
	VGS_PROFILE_GVT,	/* as strict as GVT-g (docs/vgpusim.md) */
	VGS_PROFILE_REGION,	/* region planes, as mdpy (and NVIDIA vGPU) */
	VGS_PROFILE_NR,
};

static const char * const vgs_profile_names[VGS_PROFILE_NR] = {
	[VGS_PROFILE_DEFAULT]	= "default",
	[VGS_PROFILE_GVT]	= "gvt",
	[VGS_PROFILE_REGION]	= "region",
};

static char *profile = "default";
module_param(profile, charp, 0444);
MODULE_PARM_DESC(profile, "profile of new instances: default, gvt, region");

/* the module parameter, checked at load */
static enum vgs_profile vgs_def_profile;

static u32 vgs_vram_mb(void)
{
	return roundup_pow_of_two(clamp_t(u32, vram_mb, 4, 1024));
}

struct vgs_format {
	const char *name;
	u32 fourcc;
	u32 cpp;		/* bytes per pixel (packed YUV 4:2:2: 2) */
	bool gvt;		/* one of GVT-g's primary formats */
	bool yuv;		/* packed YUV 4:2:2: 2 pixels in 4 bytes */
};

/*
 * the formats the display engine accepts (ui/dmabuf-plane.c), then C8 and
 * packed YUV 4:2:2, which only GVT-g's fb_decoder adds (bdw/skl primary
 * formats); under the gvt profile only those marked gvt
 */
static const struct vgs_format vgs_formats[] = {
	{ "XRGB8888",    DRM_FORMAT_XRGB8888,    4, true },
	{ "ARGB8888",    DRM_FORMAT_ARGB8888,    4, true },
	{ "XBGR8888",    DRM_FORMAT_XBGR8888,    4, true },
	{ "ABGR8888",    DRM_FORMAT_ABGR8888,    4, true },
	{ "RGBX8888",    DRM_FORMAT_RGBX8888,    4 },
	{ "BGRX8888",    DRM_FORMAT_BGRX8888,    4 },
	{ "RGBA8888",    DRM_FORMAT_RGBA8888,    4 },
	{ "BGRA8888",    DRM_FORMAT_BGRA8888,    4 },
	{ "XRGB2101010", DRM_FORMAT_XRGB2101010, 4, true },
	{ "ARGB2101010", DRM_FORMAT_ARGB2101010, 4 },
	{ "XBGR2101010", DRM_FORMAT_XBGR2101010, 4, true },
	{ "RGB888",      DRM_FORMAT_RGB888,      3 },
	{ "BGR888",      DRM_FORMAT_BGR888,      3 },
	{ "RGB565",      DRM_FORMAT_RGB565,      2, true },
	{ "BGR565",      DRM_FORMAT_BGR565,      2 },
	{ "C8",          DRM_FORMAT_C8,          1, true },
	{ "YUYV",        DRM_FORMAT_YUYV,        2, true, true },
	{ "UYVY",        DRM_FORMAT_UYVY,        2, true, true },
	{ "YVYU",        DRM_FORMAT_YVYU,        2, true, true },
	{ "VYUY",        DRM_FORMAT_VYUY,        2, true, true },
};

/* Intel's tilings that vgpusim lays pixels out in (no bit-6 swizzling) */
enum vgs_tiling {
	VGS_TILE_NONE,
	VGS_TILE_X,	/* 4 KiB tiles of 512 bytes x 8 rows */
	VGS_TILE_Y,	/* 4 KiB tiles of 128 bytes x 32 rows, 16 byte columns */
};

static enum vgs_tiling vgs_tiling_of(u64 modifier)
{
	if (modifier == I915_FORMAT_MOD_X_TILED)
		return VGS_TILE_X;
	if (modifier == I915_FORMAT_MOD_Y_TILED)
		return VGS_TILE_Y;
	return VGS_TILE_NONE;	/* linear, and any modifier not drawn */
}

/* a tile's width in bytes and height in rows (1 x 1 for linear) */
static u32 vgs_tile_w(enum vgs_tiling t)
{
	return t == VGS_TILE_X ? 512 : t == VGS_TILE_Y ? 128 : 1;
}

static u32 vgs_tile_h(enum vgs_tiling t)
{
	return t == VGS_TILE_X ? 8 : t == VGS_TILE_Y ? 32 : 1;
}

/* bytes a surface of @stride x @h rows takes: whole tile rows, pages */
static u64 vgs_surface_size(u32 stride, u32 h, enum vgs_tiling t)
{
	return PAGE_ALIGN((u64)stride * ALIGN(h, vgs_tile_h(t)));
}

enum vgs_cursor_mode {
	VGS_CURSOR_OFF,
	VGS_CURSOR_ON,
	VGS_CURSOR_AUTO,
};

static const char * const vgs_cursor_names[] = { "off", "on", "auto" };

enum vgs_hostile {
	VGS_HOSTILE_NONE,
	VGS_HOSTILE_STRIDE_SHORT,
	VGS_HOSTILE_STRIDE_UNALIGNED,
	VGS_HOSTILE_SIZE_SHORT,
	VGS_HOSTILE_ZERO_WIDTH,
	VGS_HOSTILE_ZERO_HEIGHT,
	VGS_HOSTILE_HUGE_WIDTH,
	VGS_HOSTILE_BAD_FOURCC,
	VGS_HOSTILE_OVERFLOW,
	VGS_HOSTILE_BAD_HOTSPOT,
	VGS_HOSTILE_REGION_SHORT,	/* profile region: region < plane */
	VGS_HOSTILE_REGION_NOMMAP,	/* profile region: region not mmappable */
	VGS_HOSTILE_NR,
};

static const char * const vgs_hostile_names[VGS_HOSTILE_NR] = {
	[VGS_HOSTILE_NONE]		= "none",
	[VGS_HOSTILE_STRIDE_SHORT]	= "stride_short",
	[VGS_HOSTILE_STRIDE_UNALIGNED]	= "stride_unaligned",
	[VGS_HOSTILE_SIZE_SHORT]	= "size_short",
	[VGS_HOSTILE_ZERO_WIDTH]	= "zero_width",
	[VGS_HOSTILE_ZERO_HEIGHT]	= "zero_height",
	[VGS_HOSTILE_HUGE_WIDTH]	= "huge_width",
	[VGS_HOSTILE_BAD_FOURCC]	= "bad_fourcc",
	[VGS_HOSTILE_OVERFLOW]		= "overflow",
	[VGS_HOSTILE_BAD_HOTSPOT]	= "bad_hotspot",
	[VGS_HOSTILE_REGION_SHORT]	= "region_short",
	[VGS_HOSTILE_REGION_NOMMAP]	= "region_nommap",
};

#define VGS_BAD_FOURCC		fourcc_code('V', 'G', 'S', '?')
#define VGS_HUGE_WIDTH		(1U << 20)
#define VGS_BAD_HOT_Y		1000000

/* latency histogram bucket upper bounds in microseconds, last is +inf */
static const u32 vgs_lat_bounds[] = {
	50, 100, 250, 500, 1000, 2000, 4000, 8000, 16000, 33000, 66000,
	133000, 266000, 1000000,
};

#define VGS_NR_BUCKETS		(ARRAY_SIZE(vgs_lat_bounds) + 1)

/* round(1024 * sin(2 * pi * i / 64)) */
static const s16 vgs_sin64[64] = {
	0, 100, 200, 297, 392, 483, 569, 650,
	724, 792, 851, 903, 946, 980, 1004, 1019,
	1024, 1019, 1004, 980, 946, 903, 851, 792,
	724, 650, 569, 483, 392, 297, 200, 100,
	0, -100, -200, -297, -392, -483, -569, -650,
	-724, -792, -851, -903, -946, -980, -1004, -1019,
	-1024, -1019, -1004, -980, -946, -903, -851, -792,
	-724, -650, -569, -483, -392, -297, -200, -100,
};

/* display + engine settings; one copy is the power-on state, one is live */
struct vgs_state {
	u32 width;
	u32 height;
	u32 stride;		/* 0: width * cpp */
	u32 fourcc;
	u64 modifier;
	bool mod_alternate;	/* odd buffers x-tiled, even ones linear */
	bool enabled;
	bool front_buffer;
	bool paused;
	u32 flip_hz;
	u32 nbufs;
	enum vgs_cursor_mode cursor;
	s32 cursor_x;
	s32 cursor_y;
	u32 hot_x;
	u32 hot_y;
};

/* BAR2 mode registers, latched into the live state by COMMIT */
struct vgs_shadow {
	u32 enable;
	u32 width;
	u32 height;
	u32 stride;
	u32 fourcc;
	u64 modifier;
	u32 fb_offset;
};

/* what a plane answer describes; identical keys share a dmabuf_id */
struct vgs_plane {
	u32 type;
	u32 offset;		/* VRAM byte offset of the backing pages */
	u32 npages;		/* backing pages exported */
	u32 fourcc;
	u32 width;
	u32 height;
	u32 stride;
	u32 size;
	u64 modifier;
	enum vgs_profile profile;	/* an export behaves as its profile */
};

struct vgs_dev;

/* backing object of one dmabuf_id; each exported dma-buf holds a ref */
struct vgs_buf {
	struct kref ref;
	struct list_head node;
	struct vgs_dev *vgs;
	u32 id;
	struct vgs_plane p;
};

struct vgs_attach {
	struct sg_table *sgt;
	enum dma_data_direction dir;
};

struct vgs_stats {
	u64 queries;
	u64 queries_primary;
	u64 queries_cursor;
	u64 queries_disabled;
	u64 query_errors;
	u64 probes;
	u64 ids_created;
	u64 flips_made;
	u64 flips_seen;
	u64 flips_missed;
	u64 frames_drawn;
	u64 resets;
	u64 display_events;	/* display eventfd signals at vblanks */
	u64 display_events_primary;	/* ... that carried the primary value */
	u64 display_events_cursor;	/* ... that carried the cursor value */
	u64 display_events_masked;	/* vblank signals dropped while masked */
	u64 display_arms;	/* SET_IRQS: an eventfd armed */
	u64 display_disarms;	/* SET_IRQS: DATA_NONE, count 0 */
	u64 display_disarm_refused;	/* SET_IRQS: DATA_EVENTFD with fd < 0 */
	u64 lat_count;
	u64 lat_sum;
	u64 lat_min;
	u64 lat_max;
	u64 hist[VGS_NR_BUCKETS];
	u32 ring[VGS_LAT_RING];
};

struct vgs_geom {
	u32 offset;
	u32 width;
	u32 height;
	u32 stride;
	u32 cpp;
	u32 fourcc;
	enum vgs_tiling tiling;
};

struct vgs_dev {
	struct vfio_device vdev;	/* must be first (vfio_alloc_device) */
	struct mdev_device *mdev;
	struct mutex lock;		/* everything below unless noted */
	enum vgs_profile profile;	/* READ_ONCE outside the lock */
	/*
	 * the display event (VFIO_DEVICE_SET_IRQS): the eventfd, whose
	 * reference is ours, and the mask; written under lock and trig_lock,
	 * read under either (trig_lock: the storm's hrtimer)
	 */
	spinlock_t trig_lock;
	struct eventfd_ctx *display_trigger;
	bool display_masked;
	u32 ev_pending;			/* VGS_EV_*: for the next vblank */
	struct delayed_work vblank_work;	/* vblank while the engine idles */
	/* storm control: signals at storm_hz whatever happens */
	struct hrtimer storm_timer;
	u32 storm_hz;			/* 0: off; READ_ONCE in the hrtimer */
	atomic64_t storm_signals;
	struct mutex tick_lock;		/* serialises pattern engine ticks */

	/* VRAM: fixed for the lifetime of the device */
	struct page **pages;
	unsigned int npages;
	u32 vram_size;
	u32 cursor_offset;		/* vram_size - VGS_CURSOR_AREA(size) */
	u32 cursor_size;		/* 64, 128 or 256 (sysfs cursor_size) */
	void *vram;

	u8 cfg[VGS_CFG_SIZE];
	u8 cfg_wmask[VGS_CFG_SIZE];

	struct vgs_state def;		/* power-on state (sysfs) */
	struct vgs_state cur;		/* live state */
	struct vgs_shadow shadow;
	u32 status;

	u32 fb_offset;			/* primary scanout VRAM offset */
	u32 bufsz;			/* page aligned size of one buffer */
	u32 nbufs_eff;
	u32 front;
	u32 frame;
	u32 gen;			/* bumped on every geometry change */
	u32 drawn_gen[VGS_MAX_BUFS];
	/*
	 * Rendered ahead: the back buffer the engine drew its next frame into,
	 * flipped to at the next vblank (the next tick), as a display latches
	 * a flip; valid while gen and front are what they were when drawn.
	 */
	bool ready;
	bool ready_deferred;	/* held for a late tick once already */
	u32 ready_buf;
	u32 ready_frame;
	u32 ready_gen;
	u32 ready_front;
	u32 cursor_angle;

	/* EDID region */
	struct vfio_region_gfx_edid edid_regs;
	u8 edid[VGS_EDID_MAX_SIZE];
	bool edid_follow;
	bool edid_hidden;	/* sysfs edid_region 0: no EDID region */
	bool edid_valid;
	bool edid_applied;
	u32 edid_w;
	u32 edid_h;

	/* plane objects */
	struct list_head bufs;
	unsigned int nr_listed;
	u32 next_id;
	u32 last_primary_id;
	u32 last_cursor_id;
	atomic_t live_dmabufs;
	atomic_t live_bufs;

	/* fault injection */
	int q_err;
	u32 q_err_count;
	int g_err;
	u32 g_err_count;
	enum vgs_hostile hostile;
	bool reuse_id;

	/* flip tracking */
	bool flip_pending;
	ktime_t flip_time;

	struct vgs_stats st;
	u32 ring_pos;
	/* CLOCK_MONOTONIC ns at which frame F became visible, at F % LOG */
	struct vgs_frame_time {
		u64 frame;
		u64 ns;
	} frame_log[VGS_FRAME_LOG];
	atomic64_t exports;
	atomic64_t export_errors;
	/* CPU access a gvt profile's dma-buf refused (any context) */
	atomic64_t mmap_refused;
	atomic64_t vmap_refused;
	atomic64_t cpu_access_refused;
	atomic64_t region_mmaps;	/* profile region: display region mmaps */
	atomic64_t ticks_dropped;	/* also written from the hrtimer */
	/* how late the vblank ran (a diagnostic of the VM's timing) */
	atomic64_t timer_late;		/* hrtimer callback > 1 ms late */
	atomic64_t flip_late;		/* flips held to the next vblank */
	atomic64_t flip_late_max_ns;
	u64 tick_due_ns;		/* the last vblank's due time */
	u64 tick_done_ns;		/* the vblank the last tick served */

	/* pattern engine */
	struct hrtimer timer;
	struct work_struct tick_work;
	u64 period_ns;			/* READ_ONCE from the hrtimer */
	bool stopping;
};

static struct vgs_dev *vdev_to_vgs(struct vfio_device *vdev)
{
	return container_of(vdev, struct vgs_dev, vdev);
}

/* ------------------------------------------------------------------ */
/* formats and pixels                                                  */

static const struct vgs_format *vgs_find_format(u32 fourcc)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(vgs_formats); i++)
		if (vgs_formats[i].fourcc == fourcc)
			return &vgs_formats[i];
	return NULL;
}

static const struct vgs_format *vgs_find_format_name(const char *name)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(vgs_formats); i++)
		if (sysfs_streq(name, vgs_formats[i].name))
			return &vgs_formats[i];
	return NULL;
}

/* an 8 bit channel as 10 bits: 0x00 -> 0x000, 0x80 -> 0x202, 0xff -> 0x3ff */
static u32 vgs_10bit(u32 v)
{
	return (v << 2) | (v >> 6);
}

/*
 * @rgb (0xRRGGBB) as a pixel of @fourcc, the value DRM's fourcc definition
 * gives (stored little endian; 3 and 2 byte formats use the low bits).
 * Padding and alpha are all ones.
 */
static u32 vgs_pixel(u32 fourcc, u32 rgb)
{
	u32 r = (rgb >> 16) & 0xff, g = (rgb >> 8) & 0xff, b = rgb & 0xff;

	switch (fourcc) {
	case DRM_FORMAT_XBGR8888:
	case DRM_FORMAT_ABGR8888:
		return 0xff000000 | (b << 16) | (g << 8) | r;
	case DRM_FORMAT_RGBX8888:
	case DRM_FORMAT_RGBA8888:
		return (r << 24) | (g << 16) | (b << 8) | 0xff;
	case DRM_FORMAT_BGRX8888:
	case DRM_FORMAT_BGRA8888:
		return (b << 24) | (g << 16) | (r << 8) | 0xff;
	case DRM_FORMAT_XRGB2101010:
	case DRM_FORMAT_ARGB2101010:
		return (3U << 30) | (vgs_10bit(r) << 20) | (vgs_10bit(g) << 10) |
		       vgs_10bit(b);
	case DRM_FORMAT_XBGR2101010:
		return (3U << 30) | (vgs_10bit(b) << 20) | (vgs_10bit(g) << 10) |
		       vgs_10bit(r);
	case DRM_FORMAT_RGB888:
		return (r << 16) | (g << 8) | b;
	case DRM_FORMAT_BGR888:
		return (b << 16) | (g << 8) | r;
	case DRM_FORMAT_RGB565:
		return ((r >> 3) << 11) | ((g >> 2) << 5) | (b >> 3);
	case DRM_FORMAT_BGR565:
		return ((b >> 3) << 11) | ((g >> 2) << 5) | (r >> 3);
	default:	/* XRGB8888, ARGB8888 */
		return 0xff000000 | rgb;
	}
}

/* 0xRRGGBB as C8: the index of the colour in an RGB332 palette (R3:G3:B2) */
static u8 vgs_c8(u32 rgb)
{
	return (((rgb >> 16) & 0xe0) | (((rgb >> 8) & 0xe0) >> 3) |
		((rgb & 0xc0) >> 6));
}

/*
 * BT.601 limited range from 8 bit R'G'B', in integers (>> is a floor
 * division by 256: the compiler's arithmetic shift):
 *   Y  = ((  66 R + 129 G +  25 B + 128) >> 8) + 16
 *   Cb = (( -38 R -  74 G + 112 B + 128) >> 8) + 128
 *   Cr = (( 112 R -  94 G -  18 B + 128) >> 8) + 128
 */
static void vgs_ycbcr(u32 rgb, u8 *y, u8 *cb, u8 *cr)
{
	int r = (rgb >> 16) & 0xff, g = (rgb >> 8) & 0xff, b = rgb & 0xff;

	*y = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16;
	*cb = ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128;
	*cr = ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128;
}

/*
 * @w pixels of 0xRRGGBB colours as the bytes of a row of @fourcc. Packed
 * YUV: each pair of pixels (x even, x + 1) is Y of each and the Cb, Cr of
 * the even one (co-sited), in DRM's byte order: YUYV Y0 Cb Y1 Cr, UYVY Cb
 * Y0 Cr Y1, YVYU Y0 Cr Y1 Cb, VYUY Cr Y0 Cb Y1 (@w is even).
 */
static void vgs_row_bytes(u32 fourcc, u32 cpp, const u32 *rgb, u32 w, u8 *out)
{
	u8 y0, y1, cb, cr, u;
	u32 x;

	switch (fourcc) {
	case DRM_FORMAT_C8:
		for (x = 0; x < w; x++)
			out[x] = vgs_c8(rgb[x]);
		return;
	case DRM_FORMAT_YUYV:
	case DRM_FORMAT_UYVY:
	case DRM_FORMAT_YVYU:
	case DRM_FORMAT_VYUY:
		for (x = 0; x + 1 < w; x += 2, out += 4) {
			/* the odd pixel's chroma is not kept */
			vgs_ycbcr(rgb[x + 1], &y1, &cb, &cr);
			vgs_ycbcr(rgb[x], &y0, &cb, &cr);
			switch (fourcc) {
			case DRM_FORMAT_YUYV:
				out[0] = y0; out[1] = cb; out[2] = y1; out[3] = cr;
				break;
			case DRM_FORMAT_UYVY:
				out[0] = cb; out[1] = y0; out[2] = cr; out[3] = y1;
				break;
			case DRM_FORMAT_YVYU:
				out[0] = y0; out[1] = cr; out[2] = y1; out[3] = cb;
				break;
			default:	/* VYUY */
				out[0] = cr; out[1] = y0; out[2] = cb; out[3] = y1;
				break;
			}
		}
		return;
	}
	for (x = 0; x < w; x++, out += cpp) {
		u32 px = vgs_pixel(fourcc, rgb[x]);

		for (u = 0; u < cpp; u++)
			out[u] = px >> (8 * u);
	}
}

/*
 * where byte @xb of row @y of a surface lies, from its start, and how many
 * bytes from there on are contiguous in that row (at most @n)
 */
static u32 vgs_tiled_off(const struct vgs_geom *g, u32 xb, u32 y, u32 n,
			 u32 *run)
{
	u32 tw = vgs_tile_w(g->tiling), th = vgs_tile_h(g->tiling);
	u32 tile = (y / th) * (g->stride / tw) + xb / tw;

	switch (g->tiling) {
	case VGS_TILE_X:
		/* rows of 512 bytes inside the tile */
		*run = min(n, 512 - xb % 512);
		return tile * 4096 + (y % 8) * 512 + xb % 512;
	case VGS_TILE_Y:
		/* 8 columns of 16 bytes x 32 rows inside the tile */
		*run = min(n, 16 - xb % 16);
		return tile * 4096 + (xb % 128) / 16 * 512 + (y % 32) * 16 +
		       xb % 16;
	default:
		*run = n;
		return y * g->stride + xb;
	}
}

/* bytes [@xb, @xb + @n) of row @y, from @row (a whole row's bytes) */
static void vgs_put_row(struct vgs_dev *vgs, const struct vgs_geom *g, u32 y,
			const u8 *row, u32 xb, u32 n)
{
	void *base = vgs->vram + g->offset;
	u32 run, off;

	while (n) {
		off = vgs_tiled_off(g, xb, y, n, &run);
		memcpy(base + off, row + xb, run);
		xb += run;
		n -= run;
	}
}

/* rows [@y0, @y1) all of @row (their first @n bytes) */
static void vgs_put_rows(struct vgs_dev *vgs, const struct vgs_geom *g,
			 u32 y0, u32 y1, const u8 *row, u32 n)
{
	u32 y;

	if (g->tiling == VGS_TILE_NONE) {
		for (y = y0; y < y1; y++)
			memcpy(vgs->vram + g->offset + (size_t)y * g->stride,
			       row, n);
		return;
	}
	for (y = y0; y < y1; y++)
		vgs_put_row(vgs, g, y, row, 0, n);
}

/*
 * Test pattern, see docs/vgpusim.md: rows 0-7 carry the frame number
 * (pixels 0-31, MSB first, white = 1) and its complement (pixels 32-63),
 * then eight colour bars, then a 16 pixel strip with a white block that
 * moves 4 pixels per frame. Each of the three kinds of row is made once,
 * in the format's bytes, then copied to its rows (through the tiling).
 * Without @full only the frame number and the strip are drawn.
 */
static void vgs_draw(struct vgs_dev *vgs, const struct vgs_geom *g, u32 frame,
		     bool full)
{
	static const u32 bars[8] = {
		0xffffff, 0xffff00, 0x00ffff, 0x00ff00,
		0xff00ff, 0xff0000, 0x0000ff, 0x000000,
	};
	u32 w = g->width, h = g->height, i, x, bx, rowbytes;
	u32 *rgb;
	u8 *row;

	if (w < VGS_MIN_W || h < VGS_MIN_H ||
	    (u64)g->offset + vgs_surface_size(g->stride, h, g->tiling) >
	    vgs->vram_size)
		return;
	rowbytes = w * g->cpp;
	rgb = kvmalloc_array(w, sizeof(*rgb), GFP_KERNEL);
	row = kvmalloc(rowbytes, GFP_KERNEL);
	if (!rgb || !row) {
		pr_warn_ratelimited("no memory to draw a frame\n");
		goto out;
	}

	/* the band: frame number and complement, then gray */
	for (x = 0; x < w; x++)
		rgb[x] = VGS_GRAY;
	for (i = 0; i < 32; i++) {
		bool bit = frame & BIT(31 - i);

		rgb[i] = bit ? VGS_WHITE : VGS_BLACK;
		rgb[32 + i] = bit ? VGS_BLACK : VGS_WHITE;
	}
	vgs_row_bytes(g->fourcc, g->cpp, rgb, w, row);
	/* the band beyond pixel 63 is gray in every frame */
	vgs_put_rows(vgs, g, 0, VGS_BAND_H, row, full ? rowbytes : 64 * g->cpp);

	if (full) {
		for (i = 0; i < 8; i++)
			for (x = w * i / 8; x < w * (i + 1) / 8; x++)
				rgb[x] = bars[i];
		vgs_row_bytes(g->fourcc, g->cpp, rgb, w, row);
		vgs_put_rows(vgs, g, VGS_BAND_H, h - VGS_STRIP_H, row, rowbytes);
	}

	bx = (u32)(((u64)frame * 4) % (w - VGS_BLOCK_W + 1));
	for (x = 0; x < w; x++)
		rgb[x] = x >= bx && x < bx + VGS_BLOCK_W ? VGS_WHITE : VGS_BLACK;
	vgs_row_bytes(g->fourcc, g->cpp, rgb, w, row);
	vgs_put_rows(vgs, g, h - VGS_STRIP_H, h, row, rowbytes);
out:
	kvfree(row);
	kvfree(rgb);
}

/*
 * The cursor image, @size x @size ARGB8888 (64, 128 or 256): the 64x64
 * image scaled up by k = size / 64, nearest neighbour: pixel (x, y) is the
 * 64x64 image's pixel (x / k, y / k), in which (dx, dy) = (x - 32, y - 32),
 * d2 = dx^2 + dy^2: white ring for 22^2 <= d2 < 26^2, black rim for
 * 26^2 <= d2 < 29^2, red cross where x == 32 or y == 32 inside the ring,
 * transparent (0) elsewhere.
 */
static void vgs_draw_cursor(struct vgs_dev *vgs)
{
	u32 size = vgs->cursor_size, k = size / VGS_CURSOR_W, x, y;
	u32 *p = vgs->vram + vgs->cursor_offset;

	for (y = 0; y < size; y++) {
		for (x = 0; x < size; x++) {
			int cx = x / k, cy = y / k;
			int dx = cx - 32, dy = cy - 32, d2 = dx * dx + dy * dy;
			u32 v = 0;

			if (d2 >= 22 * 22 && d2 < 26 * 26)
				v = 0xffffffff;
			else if (d2 >= 26 * 26 && d2 < 29 * 29)
				v = 0xff000000;
			else if ((cx == 32 || cy == 32) && d2 < 22 * 22)
				v = 0xffff0000;
			p[y * size + x] = v;
		}
	}
}

/* ------------------------------------------------------------------ */
/* modes, flips, state                                                 */

/* the tiling a state's buffers are sized for (alternate: x-tiled's) */
static enum vgs_tiling vgs_layout_of(const struct vgs_state *s)
{
	return s->mod_alternate ? VGS_TILE_X : vgs_tiling_of(s->modifier);
}

/* width * cpp, up to a whole number of tiles across when tiled */
static u32 vgs_auto_stride(const struct vgs_format *f, u32 w,
			   enum vgs_tiling t)
{
	return ALIGN(w * f->cpp, vgs_tile_w(t));
}

static u32 vgs_stride_of(const struct vgs_state *s)
{
	const struct vgs_format *f = vgs_find_format(s->fourcc);

	if (s->stride)
		return s->stride;
	return f ? vgs_auto_stride(f, s->width, vgs_layout_of(s)) : s->width * 4;
}

/*
 * the modifier the primary plane reports: the configured one, or with
 * `modifier alternate` linear for even buffers (fb_offset / buffer size)
 * and x-tiled for odd ones
 */
static u64 vgs_modifier_of(struct vgs_dev *vgs)
{
	if (!vgs->cur.mod_alternate || !vgs->bufsz)
		return vgs->cur.modifier;
	return (vgs->fb_offset / vgs->bufsz) & 1 ? I915_FORMAT_MOD_X_TILED :
						    DRM_FORMAT_MOD_LINEAR;
}

/* a format the device shows under its profile */
static bool vgs_format_ok(struct vgs_dev *vgs, const struct vgs_format *f)
{
	return f && (vgs->profile != VGS_PROFILE_GVT || f->gvt);
}

/*
 * A mode laid out in tiling @t: strides of whole tiles (linear: of whole
 * pixels, of 4 bytes for packed YUV), even widths for packed YUV, and
 * buffers of whole tile rows below the cursor.
 */
static int vgs_check_mode(struct vgs_dev *vgs, u32 w, u32 h, u32 stride,
			  u32 fourcc, enum vgs_tiling t, u32 *bufsz)
{
	const struct vgs_format *f = vgs_find_format(fourcc);
	u32 align;
	u64 sz;

	if (!vgs_format_ok(vgs, f))
		return -EINVAL;
	if (w < VGS_MIN_W || h < VGS_MIN_H || w > max_width || h > max_height)
		return -EINVAL;
	if (f->yuv && w % 2)
		return -EINVAL;
	if (!stride)
		stride = vgs_auto_stride(f, w, t);
	align = t != VGS_TILE_NONE ? vgs_tile_w(t) : f->yuv ? 4 : f->cpp;
	if (stride < w * f->cpp || stride % align)
		return -EINVAL;
	sz = vgs_surface_size(stride, h, t);
	if (sz > vgs->cursor_offset)
		return -ENOSPC;
	if (bufsz)
		*bufsz = sz;
	return 0;
}

static void vgs_geom_at(struct vgs_dev *vgs, u32 offset, struct vgs_geom *g)
{
	const struct vgs_format *f = vgs_find_format(vgs->cur.fourcc);

	g->offset = offset;
	g->width = vgs->cur.width;
	g->height = vgs->cur.height;
	g->stride = vgs_stride_of(&vgs->cur);
	g->cpp = f ? f->cpp : 4;
	g->fourcc = vgs->cur.fourcc;
	/* as vgs_modifier_of() reports it for a buffer at @offset */
	if (vgs->cur.mod_alternate)
		g->tiling = vgs->bufsz && (offset / vgs->bufsz) & 1 ?
			    VGS_TILE_X : VGS_TILE_NONE;
	else
		g->tiling = vgs_tiling_of(vgs->cur.modifier);
}

static void vgs_sync_shadow(struct vgs_dev *vgs)
{
	struct vgs_shadow *s = &vgs->shadow;

	s->enable = vgs->cur.enabled;
	s->width = vgs->cur.width;
	s->height = vgs->cur.height;
	s->stride = vgs->cur.stride;
	s->fourcc = vgs->cur.fourcc;
	s->modifier = vgs->cur.modifier;
	s->fb_offset = vgs->fb_offset;
}

/*
 * v6 signals its eventfd with a value (eventfd_signal(ctx, val) in the
 * kernels of 2019). Since Linux 6.8 eventfd_signal() adds 1 and nothing
 * exported adds more, so the value is added here the way fs/eventfd.c adds
 * its 1: to the context's counter under its wait queue's lock, saturating
 * at ULLONG_MAX, then the readers are woken. vgs_eventfd_view is the head
 * of fs/eventfd.c's struct eventfd_ctx in the rig's kernel (6.12);
 * vgs_eventfd_view_ok() checks it on every arm, and an eventfd that does
 * not match is refused (EOPNOTSUPP) rather than written.
 */
struct vgs_eventfd_view {
	struct kref kref;
	wait_queue_head_t wqh;
	__u64 count;
	unsigned int flags;
};

static bool vgs_eventfd_view_ok(struct eventfd_ctx *ctx)
{
	struct vgs_eventfd_view *v = (struct vgs_eventfd_view *)ctx;
	unsigned long irqf;
	u64 before, after;

	/* one reference is the fd's, one ours; only EFD_* flags */
	if (kref_read(&v->kref) < 2 ||
	    (READ_ONCE(v->flags) & ~(EFD_SEMAPHORE | EFD_CLOEXEC | EFD_NONBLOCK)))
		return false;
	before = READ_ONCE(v->count);
	if (before >= ULLONG_MAX - 1)
		return false;
	eventfd_signal(ctx);	/* the kernel's own +1 ... */
	after = READ_ONCE(v->count);
	if (after != before + 1)
		return false;
	/* ... taken back: the host must not see it */
	spin_lock_irqsave(&v->wqh.lock, irqf);
	if (v->count)
		v->count--;
	spin_unlock_irqrestore(&v->wqh.lock, irqf);
	return true;
}

/* add @val to the counter, as a 2019 eventfd_signal(ctx, val) did */
static void vgs_eventfd_add(struct eventfd_ctx *ctx, u64 val)
{
	struct vgs_eventfd_view *v = (struct vgs_eventfd_view *)ctx;
	unsigned long irqf;

	spin_lock_irqsave(&v->wqh.lock, irqf);
	v->count = val > ULLONG_MAX - v->count ? ULLONG_MAX : v->count + val;
	if (waitqueue_active(&v->wqh))
		wake_up_locked_poll(&v->wqh, EPOLLIN);
	spin_unlock_irqrestore(&v->wqh.lock, irqf);
}

/* signal @val if armed and not masked (any context); true if signalled */
static bool vgs_signal(struct vgs_dev *vgs, u64 val)
{
	unsigned long irqf;
	bool sent = false;

	spin_lock_irqsave(&vgs->trig_lock, irqf);
	if (vgs->display_trigger && !vgs->display_masked) {
		vgs_eventfd_add(vgs->display_trigger, val);
		sent = true;
	}
	spin_unlock_irqrestore(&vgs->trig_lock, irqf);
	return sent;
}

static bool vgs_engine_running(struct vgs_dev *vgs)
{
	return !vgs->stopping && vgs->cur.enabled && !vgs->cur.paused;
}

/*
 * The vblank (lock held): if a plane changed since the last one, one
 * signal of the sum of the changed planes' values, as kvmgt's emulated
 * vblank does. The pattern engine's tick is the vblank while it runs; else
 * vblank_work, at VGS_IDLE_VBLANK_HZ, only while something is pending.
 */
static void vgs_vblank(struct vgs_dev *vgs)
{
	u32 ev = vgs->ev_pending;
	u64 val = 0;

	lockdep_assert_held(&vgs->lock);
	if (!ev)
		return;
	vgs->ev_pending = 0;
	if (ev & VGS_EV_PRIMARY)
		val += VGS_V6_PRI_EVENT_VAL;
	if (ev & VGS_EV_CURSOR)
		val += VGS_V6_CUR_EVENT_VAL;
	if (!vgs->display_trigger)
		return;
	if (!vgs_signal(vgs, val)) {
		vgs->st.display_events_masked++;
		return;
	}
	vgs->st.display_events++;
	if (ev & VGS_EV_PRIMARY)
		vgs->st.display_events_primary++;
	if (ev & VGS_EV_CURSOR)
		vgs->st.display_events_cursor++;
}

/* a plane changed: the host hears of it at the next vblank (lock held) */
static void vgs_display_event(struct vgs_dev *vgs, u32 planes)
{
	lockdep_assert_held(&vgs->lock);
	if (!vgs->display_trigger)
		return;
	vgs->ev_pending |= planes;
	if (!vgs_engine_running(vgs) && !vgs->stopping)
		schedule_delayed_work(&vgs->vblank_work,
				      usecs_to_jiffies(USEC_PER_SEC /
						       VGS_IDLE_VBLANK_HZ));
}

static void vgs_vblank_work(struct work_struct *work)
{
	struct vgs_dev *vgs = container_of(to_delayed_work(work),
					   struct vgs_dev, vblank_work);

	mutex_lock(&vgs->lock);
	vgs_vblank(vgs);
	mutex_unlock(&vgs->lock);
}

/* storm control: one signal of both planes' values per period */
static enum hrtimer_restart vgs_storm_fn(struct hrtimer *t)
{
	struct vgs_dev *vgs = container_of(t, struct vgs_dev, storm_timer);
	u32 hz = READ_ONCE(vgs->storm_hz);
	u64 n;

	if (!hz)
		return HRTIMER_NORESTART;
	/* periods missed (a slow VM) are signalled too, up to 100 at once */
	n = hrtimer_forward_now(t, ns_to_ktime(div_u64(NSEC_PER_SEC, hz)));
	for (n = clamp_t(u64, n, 1, 100); n; n--)
		if (vgs_signal(vgs, VGS_V6_PRI_EVENT_VAL + VGS_V6_CUR_EVENT_VAL))
			atomic64_inc(&vgs->storm_signals);
	return HRTIMER_RESTART;
}

static void vgs_storm_set(struct vgs_dev *vgs, u32 hz)
{
	hrtimer_cancel(&vgs->storm_timer);
	WRITE_ONCE(vgs->storm_hz, hz);
	if (hz)
		hrtimer_start(&vgs->storm_timer,
			      ns_to_ktime(div_u64(NSEC_PER_SEC, hz)),
			      HRTIMER_MODE_REL);
}

static void vgs_note_flip(struct vgs_dev *vgs)
{
	if (vgs->flip_pending)
		vgs->st.flips_missed++;
	vgs->st.flips_made++;
	vgs->flip_pending = true;
	vgs->flip_time = ktime_get();
	vgs_display_event(vgs, VGS_EV_PRIMARY);
}

static void vgs_lat_record(struct vgs_dev *vgs, u64 us)
{
	struct vgs_stats *st = &vgs->st;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(vgs_lat_bounds); i++)
		if (us <= vgs_lat_bounds[i])
			break;
	st->hist[i]++;
	if (!st->lat_count || us < st->lat_min)
		st->lat_min = us;
	if (us > st->lat_max)
		st->lat_max = us;
	st->lat_count++;
	st->lat_sum += us;
	st->ring[vgs->ring_pos % VGS_LAT_RING] = min_t(u64, us, U32_MAX);
	vgs->ring_pos++;
}

static void vgs_recompute_bufs(struct vgs_dev *vgs)
{
	u32 fit = vgs->cursor_offset / vgs->bufsz;

	vgs->nbufs_eff = clamp_t(u32, vgs->cur.nbufs, 1, min_t(u32, fit, VGS_MAX_BUFS));
}

/* make buffer @idx the front buffer, drawing it first if stale */
static void vgs_show_buffer(struct vgs_dev *vgs, u32 idx, bool draw)
{
	struct vgs_geom g;

	vgs->front = idx;
	vgs->fb_offset = idx * vgs->bufsz;
	if (draw && vgs->drawn_gen[idx] != vgs->gen) {
		vgs_geom_at(vgs, vgs->fb_offset, &g);
		vgs_draw(vgs, &g, vgs->frame, true);
		vgs->drawn_gen[idx] = vgs->gen;
	}
	vgs->shadow.fb_offset = vgs->fb_offset;
	if (vgs->cur.enabled)
		vgs_note_flip(vgs);
}

/* live mode (cur) changed; cur must already be valid */
static void vgs_mode_changed(struct vgs_dev *vgs, bool draw)
{
	vgs->bufsz = vgs_surface_size(vgs_stride_of(&vgs->cur), vgs->cur.height,
				      vgs_layout_of(&vgs->cur));
	vgs_recompute_bufs(vgs);
	vgs->gen++;
	vgs_sync_shadow(vgs);
	vgs_show_buffer(vgs, 0, draw);
}

static void vgs_engine_sync(struct vgs_dev *vgs)
{
	bool run = !vgs->stopping && vgs->cur.enabled && !vgs->cur.paused;
	u64 period = div_u64(NSEC_PER_SEC, clamp_t(u32, vgs->cur.flip_hz, 1, VGS_MAX_HZ));

	lockdep_assert_held(&vgs->lock);
	if (run) {
		if (!hrtimer_active(&vgs->timer) || period != vgs->period_ns) {
			WRITE_ONCE(vgs->period_ns, period);
			hrtimer_start(&vgs->timer, ns_to_ktime(period), HRTIMER_MODE_REL);
		}
	} else {
		/* the callback takes no locks, so waiting here is fine */
		hrtimer_cancel(&vgs->timer);
		/* what the engine's vblank would have told: the idle one */
		if (vgs->ev_pending && !vgs->stopping)
			schedule_delayed_work(&vgs->vblank_work,
					      usecs_to_jiffies(USEC_PER_SEC /
							       VGS_IDLE_VBLANK_HZ));
	}
}

static void vgs_cursor_step(struct vgs_dev *vgs)
{
	u32 w = vgs->cur.width, h = vgs->cur.height, a;
	s32 r = min(w, h) / 4, x, y;

	if (vgs->cur.cursor != VGS_CURSOR_AUTO)
		return;
	a = vgs->cursor_angle = (vgs->cursor_angle + 1) % 64;
	x = (s32)(w / 2) + r * vgs_sin64[(a + 16) % 64] / 1024 -
	    (s32)vgs->cursor_size / 2;
	y = (s32)(h / 2) + r * vgs_sin64[a] / 1024 - (s32)vgs->cursor_size / 2;
	vgs->cur.cursor_x = max(x, 0);
	vgs->cur.cursor_y = max(y, 0);
	vgs_display_event(vgs, VGS_EV_CURSOR);
}

/* ------------------------------------------------------------------ */
/* plane objects (dmabuf ids)                                          */

static void vgs_buf_release(struct kref *ref)
{
	struct vgs_buf *b = container_of(ref, struct vgs_buf, ref);

	atomic_dec(&b->vgs->live_bufs);
	kfree(b);
}

static void vgs_buf_put(struct vgs_buf *b)
{
	kref_put(&b->ref, vgs_buf_release);
}

static void vgs_buf_unlist(struct vgs_dev *vgs, struct vgs_buf *b)
{
	list_del(&b->node);
	vgs->nr_listed--;
	vgs_buf_put(b);
}

/* drop the device's references; exported dma-bufs keep theirs */
static void vgs_drop_bufs(struct vgs_dev *vgs)
{
	struct vgs_buf *b, *tmp;

	list_for_each_entry_safe(b, tmp, &vgs->bufs, node)
		vgs_buf_unlist(vgs, b);
	vgs->last_primary_id = 0;
	vgs->last_cursor_id = 0;
}

static struct vgs_buf *vgs_buf_by_id(struct vgs_dev *vgs, u32 id)
{
	struct vgs_buf *b;

	list_for_each_entry(b, &vgs->bufs, node)
		if (b->id == id)
			return b;
	return NULL;
}

static bool vgs_plane_eq(const struct vgs_plane *a, const struct vgs_plane *b)
{
	return a->type == b->type && a->offset == b->offset &&
	       a->npages == b->npages && a->fourcc == b->fourcc &&
	       a->width == b->width && a->height == b->height &&
	       a->stride == b->stride && a->size == b->size &&
	       a->modifier == b->modifier && a->profile == b->profile;
}

static struct vgs_buf *vgs_buf_lookup(struct vgs_dev *vgs,
				      const struct vgs_plane *key)
{
	struct vgs_buf *b, *old;

	list_for_each_entry(b, &vgs->bufs, node) {
		if (vgs_plane_eq(&b->p, key)) {
			list_move_tail(&b->node, &vgs->bufs);
			return b;
		}
	}

	b = kzalloc(sizeof(*b), GFP_KERNEL);
	if (!b)
		return NULL;
	kref_init(&b->ref);
	b->vgs = vgs;
	b->p = *key;
	atomic_inc(&vgs->live_bufs);

	if (key->type == VGS_PLANE_PRIMARY && vgs->reuse_id &&
	    vgs->last_primary_id) {
		/* fault: hand out a known id for a new geometry */
		b->id = vgs->last_primary_id;
		old = vgs_buf_by_id(vgs, b->id);
		if (old)
			vgs_buf_unlist(vgs, old);
		vgs->reuse_id = false;
	} else {
		b->id = vgs->next_id++;
		if (!vgs->next_id)
			vgs->next_id = 1;
		vgs->st.ids_created++;
	}
	list_add_tail(&b->node, &vgs->bufs);
	vgs->nr_listed++;

	/* forget least recently used ids; never the ones just answered */
	while (vgs->nr_listed > VGS_MAX_LISTED) {
		old = list_first_entry(&vgs->bufs, struct vgs_buf, node);
		if (old == b)
			break;
		vgs_buf_unlist(vgs, old);
	}
	return b;
}

/* ------------------------------------------------------------------ */
/* reset                                                               */

static void vgs_reset_locked(struct vgs_dev *vgs)
{
	lockdep_assert_held(&vgs->lock);
	vgs_drop_bufs(vgs);
	vgs->cur = vgs->def;
	vgs->frame = 0;
	vgs->status = 0;
	vgs->cursor_angle = 0;
	vgs_draw_cursor(vgs);
	vgs->st.resets++;
	vgs_mode_changed(vgs, true);
	vgs_engine_sync(vgs);
}

/* ------------------------------------------------------------------ */
/* pattern engine (the built-in guest)                                 */

/* make @target, drawn with @frame, the front buffer now (lock held) */
static void vgs_flip_to(struct vgs_dev *vgs, u32 target, u32 frame)
{
	u32 offset = target * vgs->bufsz;

	vgs->frame = frame;
	vgs->frame_log[frame % VGS_FRAME_LOG] =
		(struct vgs_frame_time){ frame, ktime_get_ns() };
	if (target != vgs->front || offset != vgs->fb_offset) {
		vgs->front = target;
		vgs->fb_offset = offset;
		vgs->shadow.fb_offset = offset;
		vgs_note_flip(vgs);
	}
}

/*
 * One frame of the pattern engine. Running, it behaves as a guest with a
 * display that latches flips at vblank: the tick (the vblank) flips to
 * the frame drawn during the last period, then draws the next one into a
 * back buffer, so each frame stays on screen whole periods however long
 * drawing took. A forced tick (step, paused) and front-buffer rendering
 * draw and show at once, as before.
 */
static void vgs_tick(struct vgs_dev *vgs, bool forced)
{
	struct vgs_geom g;
	u32 frame, target, gen, front;
	bool full, ahead;

	mutex_lock(&vgs->tick_lock);
	mutex_lock(&vgs->lock);
	if (vgs->stopping || !vgs->cur.enabled || (!forced && vgs->cur.paused)) {
		mutex_unlock(&vgs->lock);
		goto out;
	}
	ahead = !forced && !vgs->cur.front_buffer && vgs->nbufs_eff >= 2;
	if (vgs->ready && (!ahead || vgs->ready_gen != vgs->gen ||
			   vgs->ready_front != vgs->front ||
			   vgs->ready_buf >= vgs->nbufs_eff))
		vgs->ready = false; /* the guest or a mode change came between */
	if (ahead) {
		u64 due = READ_ONCE(vgs->tick_due_ns);

		/*
		 * The timer can queue the work again while it runs: a run late
		 * enough to read the next vblank's due time served that one
		 * too, and the run queued for it has nothing to do.
		 */
		if (due == vgs->tick_done_ns) {
			mutex_unlock(&vgs->lock);
			goto out;
		}
		vgs->tick_done_ns = due;
		/* the vblank: the frame drawn during the last period, if any */
		if (vgs->ready) {
			s64 late = ktime_get_ns() - due;

			if (late > atomic64_read(&vgs->flip_late_max_ns))
				atomic64_set(&vgs->flip_late_max_ns, late);
			/*
			 * This tick ran too late to be its vblank (the VM's
			 * scheduler): the frame waits for the next one, once,
			 * rather than show for a part of a period.
			 */
			if (late > (s64)(READ_ONCE(vgs->period_ns) / 4) &&
			    !vgs->ready_deferred) {
				vgs->ready_deferred = true;
				atomic64_inc(&vgs->flip_late);
			} else {
				vgs->ready = false;
				vgs_flip_to(vgs, vgs->ready_buf,
					    vgs->ready_frame);
			}
		}
		vgs_cursor_step(vgs);
		vgs_vblank(vgs);
		if (vgs->ready) {
			/* one frame drawn ahead at most */
			mutex_unlock(&vgs->lock);
			goto out;
		}
	}
	frame = vgs->frame + 1;
	if (vgs->cur.front_buffer || vgs->nbufs_eff < 2)
		target = vgs->front;
	else
		target = (vgs->front + 1) % vgs->nbufs_eff;
	gen = vgs->gen;
	front = vgs->front;
	full = vgs->drawn_gen[target] != gen;
	vgs_geom_at(vgs, target * vgs->bufsz, &g);
	mutex_unlock(&vgs->lock);

	/* draw outside the lock: queries are not held up by drawing */
	vgs_draw(vgs, &g, frame, full);

	mutex_lock(&vgs->lock);
	if (gen == vgs->gen && !vgs->stopping && target < vgs->nbufs_eff) {
		vgs->drawn_gen[target] = gen;
		vgs->st.frames_drawn++;
		if (ahead) {
			/* shown at the next vblank */
			vgs->ready = true;
			vgs->ready_deferred = false;
			vgs->ready_buf = target;
			vgs->ready_frame = frame;
			vgs->ready_gen = gen;
			vgs->ready_front = front;
		} else {
			vgs_flip_to(vgs, target, frame);
			vgs_cursor_step(vgs);
			/* this frame's vblank: one signal for what changed */
			vgs_vblank(vgs);
		}
	}
	mutex_unlock(&vgs->lock);
out:
	mutex_unlock(&vgs->tick_lock);
}

/*
 * The engine's ticks (its vblanks) run on high-priority workers: a display
 * latches a flip at vblank whatever the CPU does. A tick that still runs
 * too late to be its vblank holds its flip to the next one (vgs_tick()).
 */
static struct workqueue_struct *vgs_vblank_wq;

static void vgs_tick_work(struct work_struct *work)
{
	vgs_tick(container_of(work, struct vgs_dev, tick_work), false);
}

static enum hrtimer_restart vgs_timer_fn(struct hrtimer *t)
{
	struct vgs_dev *vgs = container_of(t, struct vgs_dev, timer);
	u64 due = ktime_to_ns(hrtimer_get_expires(t));
	u64 overruns;

	if (ktime_get_ns() > due + NSEC_PER_MSEC)
		atomic64_inc(&vgs->timer_late);
	WRITE_ONCE(vgs->tick_due_ns, due);
	if (!queue_work(vgs_vblank_wq, &vgs->tick_work))
		atomic64_inc(&vgs->ticks_dropped);
	overruns = hrtimer_forward_now(t, ns_to_ktime(READ_ONCE(vgs->period_ns)));
	if (overruns > 1)
		atomic64_add(overruns - 1, &vgs->ticks_dropped);
	return HRTIMER_RESTART;
}

static void vgs_engine_stop(struct vgs_dev *vgs)
{
	mutex_lock(&vgs->lock);
	vgs->stopping = true;
	mutex_unlock(&vgs->lock);
	hrtimer_cancel(&vgs->timer);
	cancel_work_sync(&vgs->tick_work);
	cancel_delayed_work_sync(&vgs->vblank_work);
	vgs_storm_set(vgs, 0);
}

/* ------------------------------------------------------------------ */
/* EDID                                                                */

static bool vgs_edid_parse(const u8 *e, u32 size, u32 *w, u32 *h)
{
	static const u8 hdr[8] = { 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0 };
	u8 sum = 0;
	int i;

	if (size < 128 || memcmp(e, hdr, sizeof(hdr)))
		return false;
	for (i = 0; i < 128; i++)
		sum += e[i];
	if (sum)
		return false;
	/* first detailed timing descriptor = preferred mode */
	if (!e[54] && !e[55])
		return false;
	*w = e[56] | ((e[58] & 0xf0) << 4);
	*h = e[59] | ((e[61] & 0xf0) << 4);
	return *w && *h;
}

static void vgs_set_link(struct vgs_dev *vgs, u32 state)
{
	u32 w, h;

	if (state != VFIO_DEVICE_GFX_LINK_STATE_UP &&
	    state != VFIO_DEVICE_GFX_LINK_STATE_DOWN)
		return;
	if (vgs->edid_regs.link_state == state)
		return;
	vgs->edid_regs.link_state = state;
	if (state == VFIO_DEVICE_GFX_LINK_STATE_DOWN)
		return;

	vgs->edid_valid = vgs_edid_parse(vgs->edid, vgs->edid_regs.edid_size, &w, &h);
	vgs->edid_applied = false;
	if (!vgs->edid_valid)
		return;
	vgs->edid_w = w;
	vgs->edid_h = h;
	if (!vgs->edid_follow ||
	    vgs_check_mode(vgs, w, h, 0, vgs->cur.fourcc,
			   vgs_layout_of(&vgs->cur), NULL))
		return;
	vgs->def.width = vgs->cur.width = w;
	vgs->def.height = vgs->cur.height = h;
	vgs->def.stride = vgs->cur.stride = 0;
	vgs->edid_applied = true;
	vgs_mode_changed(vgs, true);
	vgs_engine_sync(vgs);
}

static bool vgs_link_down(struct vgs_dev *vgs)
{
	return vgs->edid_follow &&
	       vgs->edid_regs.link_state == VFIO_DEVICE_GFX_LINK_STATE_DOWN;
}

/* ------------------------------------------------------------------ */
/* config space, BAR2 registers, EDID region                          */

static void vgs_init_cfg(struct vgs_dev *vgs)
{
	u8 *c = vgs->cfg, *m = vgs->cfg_wmask;

	put_unaligned_le16(VGS_PCI_VENDOR, c + PCI_VENDOR_ID);
	put_unaligned_le16(VGS_PCI_DEVICE, c + PCI_DEVICE_ID);
	c[PCI_REVISION_ID] = VGS_PCI_REVISION;
	put_unaligned_le16(VGS_PCI_CLASS, c + PCI_CLASS_DEVICE);
	c[PCI_HEADER_TYPE] = PCI_HEADER_TYPE_NORMAL;
	put_unaligned_le32(PCI_BASE_ADDRESS_SPACE_MEMORY |
			   PCI_BASE_ADDRESS_MEM_TYPE_32 |
			   PCI_BASE_ADDRESS_MEM_PREFETCH, c + PCI_BASE_ADDRESS_0);
	put_unaligned_le32(PCI_BASE_ADDRESS_SPACE_MEMORY |
			   PCI_BASE_ADDRESS_MEM_TYPE_32, c + PCI_BASE_ADDRESS_2);
	put_unaligned_le16(VGS_PCI_VENDOR, c + PCI_SUBSYSTEM_VENDOR_ID);
	put_unaligned_le16(VGS_PCI_DEVICE, c + PCI_SUBSYSTEM_ID);

	put_unaligned_le16(PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER |
			   PCI_COMMAND_INTX_DISABLE, m + PCI_COMMAND);
	m[PCI_CACHE_LINE_SIZE] = 0xff;
	m[PCI_LATENCY_TIMER] = 0xff;
	/* writable BAR bits double as BAR sizing */
	put_unaligned_le32(lower_32_bits(~(vgs->vram_size - 1) &
					 PCI_BASE_ADDRESS_MEM_MASK),
			   m + PCI_BASE_ADDRESS_0);
	put_unaligned_le32(lower_32_bits(~(VGS_MMIO_SIZE - 1UL) &
					 PCI_BASE_ADDRESS_MEM_MASK),
			   m + PCI_BASE_ADDRESS_2);
	m[PCI_INTERRUPT_LINE] = 0xff;
}

static void vgs_commit(struct vgs_dev *vgs)
{
	struct vgs_shadow *s = &vgs->shadow;
	struct vgs_state *c = &vgs->cur;
	enum vgs_tiling t;
	u32 bufsz, stride;
	bool alt, geom;

	vgs->status = VGS_STATUS_ERROR;
	if (!s->enable) {
		c->enabled = false;
		vgs->status = VGS_STATUS_OK;
		vgs_engine_sync(vgs);
		return;
	}
	/* a guest that programs its own modifier ends `modifier alternate` */
	alt = c->mod_alternate && s->modifier == c->modifier;
	t = alt ? VGS_TILE_X : vgs_tiling_of(s->modifier);
	if (vgs_check_mode(vgs, s->width, s->height, s->stride, s->fourcc, t,
			   &bufsz))
		return;
	stride = s->stride ? s->stride :
		 vgs_auto_stride(vgs_find_format(s->fourcc), s->width, t);
	if (!PAGE_ALIGNED(s->fb_offset) ||
	    (u64)s->fb_offset + vgs_surface_size(stride, s->height, t) >
	    vgs->vram_size)
		return;

	geom = !c->enabled || c->width != s->width || c->height != s->height ||
	       c->stride != s->stride || c->fourcc != s->fourcc ||
	       vgs_layout_of(c) != t;
	c->enabled = true;
	c->width = s->width;
	c->height = s->height;
	c->stride = s->stride;
	c->fourcc = s->fourcc;
	c->mod_alternate = alt;
	c->modifier = s->modifier;
	if (geom) {
		/* vgs_mode_changed() resyncs the shadow: keep the guest's offset */
		u32 fb = s->fb_offset;

		vgs_mode_changed(vgs, false);
		vgs->fb_offset = fb;
		s->fb_offset = fb;
		if (fb % vgs->bufsz == 0 && fb / vgs->bufsz < vgs->nbufs_eff)
			vgs->front = fb / vgs->bufsz;
	} else if (s->fb_offset != vgs->fb_offset) {
		vgs->fb_offset = s->fb_offset;
		if (s->fb_offset % vgs->bufsz == 0 &&
		    s->fb_offset / vgs->bufsz < vgs->nbufs_eff)
			vgs->front = s->fb_offset / vgs->bufsz;
		vgs_note_flip(vgs);
	}
	vgs->status = VGS_STATUS_OK;
	vgs_engine_sync(vgs);
}

static u32 vgs_mmio_read(struct vgs_dev *vgs, u32 reg)
{
	struct vgs_state *c = &vgs->cur;

	switch (reg) {
	case VGS_REG_ID:
		return VGS_ID_VALUE;
	case VGS_REG_VERSION:
		return VGS_VERSION_VALUE;
	case VGS_REG_VRAM_SIZE:
		return vgs->vram_size;
	case VGS_REG_MAX_SIZE:
		return (max_height << 16) | (max_width & 0xffff);
	case VGS_REG_ENABLE:
		return vgs->shadow.enable;
	case VGS_REG_WIDTH:
		return vgs->shadow.width;
	case VGS_REG_HEIGHT:
		return vgs->shadow.height;
	case VGS_REG_STRIDE:
		return vgs->shadow.stride;
	case VGS_REG_FORMAT:
		return vgs->shadow.fourcc;
	case VGS_REG_MOD_LO:
		return lower_32_bits(vgs->shadow.modifier);
	case VGS_REG_MOD_HI:
		return upper_32_bits(vgs->shadow.modifier);
	case VGS_REG_FB_OFFSET:
		return vgs->shadow.fb_offset;
	case VGS_REG_STATUS:
		return vgs->status;
	case VGS_REG_CURSOR_CTRL:
		return (c->cursor != VGS_CURSOR_OFF ? VGS_CURSOR_CTRL_ENABLE : 0) |
		       (c->cursor == VGS_CURSOR_AUTO ? VGS_CURSOR_CTRL_AUTO : 0);
	case VGS_REG_CURSOR_X:
		return c->cursor_x;
	case VGS_REG_CURSOR_Y:
		return c->cursor_y;
	case VGS_REG_CURSOR_HOT_X:
		return c->hot_x;
	case VGS_REG_CURSOR_HOT_Y:
		return c->hot_y;
	case VGS_REG_CURSOR_OFFSET:
		return vgs->cursor_offset;
	case VGS_REG_ENGINE_CTRL:
		return (c->paused ? 0 : VGS_ENGINE_RUN) |
		       (c->front_buffer ? VGS_ENGINE_FRONT : 0);
	case VGS_REG_FLIP_HZ:
		return c->flip_hz;
	case VGS_REG_NBUFS:
		return c->nbufs;
	case VGS_REG_FRAME:
		return vgs->frame;
	case VGS_REG_FRONT:
		return vgs->front;
	case VGS_REG_BUF_SIZE:
		return vgs->bufsz;
	default:
		return 0;
	}
}

static void vgs_set_nbufs(struct vgs_dev *vgs, u32 n)
{
	vgs->cur.nbufs = n;
	vgs_recompute_bufs(vgs);
	if (vgs->front >= vgs->nbufs_eff)
		vgs_show_buffer(vgs, 0, true);
}

static void vgs_mmio_write(struct vgs_dev *vgs, u32 reg, u32 val)
{
	struct vgs_state *c = &vgs->cur;

	switch (reg) {
	case VGS_REG_ENABLE:
		vgs->shadow.enable = val & 1;
		break;
	case VGS_REG_WIDTH:
		vgs->shadow.width = val;
		break;
	case VGS_REG_HEIGHT:
		vgs->shadow.height = val;
		break;
	case VGS_REG_STRIDE:
		vgs->shadow.stride = val;
		break;
	case VGS_REG_FORMAT:
		vgs->shadow.fourcc = val;
		break;
	case VGS_REG_MOD_LO:
		vgs->shadow.modifier = (vgs->shadow.modifier & GENMASK_ULL(63, 32)) | val;
		break;
	case VGS_REG_MOD_HI:
		vgs->shadow.modifier = (vgs->shadow.modifier & GENMASK_ULL(31, 0)) |
				       ((u64)val << 32);
		break;
	case VGS_REG_FB_OFFSET:
		vgs->shadow.fb_offset = val;
		break;
	case VGS_REG_COMMIT:
		if (val & 1)
			vgs_commit(vgs);
		break;
	case VGS_REG_CURSOR_CTRL:
		if (!(val & VGS_CURSOR_CTRL_ENABLE))
			c->cursor = VGS_CURSOR_OFF;
		else if (val & VGS_CURSOR_CTRL_AUTO)
			c->cursor = VGS_CURSOR_AUTO;
		else
			c->cursor = VGS_CURSOR_ON;
		break;
	case VGS_REG_CURSOR_X:
		c->cursor_x = (s32)val;
		break;
	case VGS_REG_CURSOR_Y:
		c->cursor_y = (s32)val;
		break;
	case VGS_REG_CURSOR_HOT_X:
		c->hot_x = val;
		break;
	case VGS_REG_CURSOR_HOT_Y:
		c->hot_y = val;
		break;
	case VGS_REG_ENGINE_CTRL:
		c->paused = !(val & VGS_ENGINE_RUN);
		c->front_buffer = !!(val & VGS_ENGINE_FRONT);
		vgs_engine_sync(vgs);
		break;
	case VGS_REG_FLIP_HZ:
		c->flip_hz = clamp_t(u32, val, 1, VGS_MAX_HZ);
		vgs_engine_sync(vgs);
		break;
	case VGS_REG_NBUFS:
		vgs_set_nbufs(vgs, clamp_t(u32, val, 1, VGS_MAX_BUFS));
		break;
	default:
		break;	/* read-only or unassigned */
	}
}

static u32 vgs_edid_reg_read(struct vgs_dev *vgs, u32 off)
{
	u32 v;

	if (off + 4 > sizeof(vgs->edid_regs))
		return 0;
	memcpy(&v, (u8 *)&vgs->edid_regs + off, 4);
	return v;
}

static void vgs_edid_reg_write(struct vgs_dev *vgs, u32 off, u32 val)
{
	switch (off) {
	case offsetof(struct vfio_region_gfx_edid, edid_size):
		if (val <= VGS_EDID_MAX_SIZE)
			vgs->edid_regs.edid_size = val;
		break;
	case offsetof(struct vfio_region_gfx_edid, link_state):
		vgs_set_link(vgs, val);
		break;
	default:
		break;	/* read-only */
	}
}

/* ------------------------------------------------------------------ */
/* region read/write                                                   */

/*
 * 32 bit register files accessed with 1, 2, 4 or 8 byte naturally aligned
 * accesses; partial writes are merged into the current register value.
 */
static ssize_t vgs_reg_rw(struct vgs_dev *vgs, char __user *ubuf, size_t count,
			  u64 off, bool write, bool edid)
{
	u8 data[8];
	u32 i;

	if ((count != 1 && count != 2 && count != 4 && count != 8) ||
	    off & (count - 1))
		return -EINVAL;
	if (write && copy_from_user(data, ubuf, count))
		return -EFAULT;

	mutex_lock(&vgs->lock);
	for (i = 0; i < count; ) {
		u32 reg = (off + i) & ~3U, shift = (off + i) & 3;
		u32 n = min_t(u32, 4 - shift, count - i);
		u32 v = edid ? vgs_edid_reg_read(vgs, reg) : vgs_mmio_read(vgs, reg);
		u8 bytes[4];

		put_unaligned_le32(v, bytes);
		if (write) {
			memcpy(bytes + shift, data + i, n);
			v = get_unaligned_le32(bytes);
			if (edid)
				vgs_edid_reg_write(vgs, reg, v);
			else
				vgs_mmio_write(vgs, reg, v);
		} else {
			memcpy(data + i, bytes + shift, n);
		}
		i += n;
	}
	mutex_unlock(&vgs->lock);

	if (!write && copy_to_user(ubuf, data, count))
		return -EFAULT;
	return count;
}

static ssize_t vgs_cfg_rw(struct vgs_dev *vgs, char __user *ubuf, size_t count,
			  u64 off, bool write)
{
	u8 data[VGS_CFG_SIZE];
	size_t i;

	if (off >= VGS_CFG_SIZE)
		return -EINVAL;
	count = min_t(size_t, count, VGS_CFG_SIZE - off);
	if (write && copy_from_user(data, ubuf, count))
		return -EFAULT;

	mutex_lock(&vgs->lock);
	for (i = 0; i < count; i++) {
		u32 o = off + i;

		if (write)
			vgs->cfg[o] = (vgs->cfg[o] & ~vgs->cfg_wmask[o]) |
				      (data[i] & vgs->cfg_wmask[o]);
		else
			data[i] = vgs->cfg[o];
	}
	mutex_unlock(&vgs->lock);

	if (!write && copy_to_user(ubuf, data, count))
		return -EFAULT;
	return count;
}

static ssize_t vgs_edid_rw(struct vgs_dev *vgs, char __user *ubuf, size_t count,
			   u64 off, bool write)
{
	u8 *data;
	ssize_t ret = count;

	if (off < sizeof(struct vfio_region_gfx_edid))
		return vgs_reg_rw(vgs, ubuf, count, off, write, true);
	if (off < VGS_EDID_BLOB_OFFSET ||
	    off >= VGS_EDID_BLOB_OFFSET + VGS_EDID_MAX_SIZE)
		return -EINVAL;
	off -= VGS_EDID_BLOB_OFFSET;
	count = min_t(size_t, count, VGS_EDID_MAX_SIZE - off);

	data = kmalloc(count, GFP_KERNEL);
	if (!data)
		return -ENOMEM;
	if (write && copy_from_user(data, ubuf, count)) {
		ret = -EFAULT;
		goto out;
	}
	mutex_lock(&vgs->lock);
	if (write)
		memcpy(vgs->edid + off, data, count);
	else
		memcpy(data, vgs->edid + off, count);
	mutex_unlock(&vgs->lock);
	if (!write && copy_to_user(ubuf, data, count))
		ret = -EFAULT;
	else
		ret = count;
out:
	kfree(data);
	return ret;
}

static ssize_t vgs_vram_rw(struct vgs_dev *vgs, char __user *ubuf, size_t count,
			   u64 off, bool write)
{
	if (off >= vgs->vram_size)
		return -EINVAL;
	count = min_t(u64, count, vgs->vram_size - off);
	/* VRAM is stable for the device lifetime; racing the engine is fine */
	if (write) {
		if (copy_from_user(vgs->vram + off, ubuf, count))
			return -EFAULT;
	} else {
		if (copy_to_user(ubuf, vgs->vram + off, count))
			return -EFAULT;
	}
	return count;
}

static ssize_t vgs_rw(struct vfio_device *vdev, char __user *ubuf,
		      size_t count, loff_t *ppos, bool write)
{
	struct vgs_dev *vgs = vdev_to_vgs(vdev);
	unsigned int index = *ppos >> VGS_OFFSET_SHIFT;
	u64 off = *ppos & VGS_OFFSET_MASK;
	ssize_t ret;

	if (!count)
		return 0;
	switch (index) {
	case VFIO_PCI_CONFIG_REGION_INDEX:
		ret = vgs_cfg_rw(vgs, ubuf, count, off, write);
		break;
	case VFIO_PCI_BAR0_REGION_INDEX:
		ret = vgs_vram_rw(vgs, ubuf, count, off, write);
		break;
	case VFIO_PCI_BAR2_REGION_INDEX:
		if (off >= VGS_MMIO_SIZE || count > VGS_MMIO_SIZE - off)
			return -EINVAL;
		ret = vgs_reg_rw(vgs, ubuf, count, off, write, false);
		break;
	case VGS_EDID_REGION_INDEX:
		if (READ_ONCE(vgs->edid_hidden) || off >= VGS_EDID_REGION_SIZE)
			return -EINVAL;
		ret = vgs_edid_rw(vgs, ubuf, count, off, write);
		break;
	default:
		return -EINVAL;
	}
	if (ret > 0)
		*ppos += ret;
	return ret;
}

static ssize_t vgs_read(struct vfio_device *vdev, char __user *buf,
			size_t count, loff_t *ppos)
{
	return vgs_rw(vdev, buf, count, ppos, false);
}

static ssize_t vgs_write(struct vfio_device *vdev, const char __user *buf,
			 size_t count, loff_t *ppos)
{
	return vgs_rw(vdev, (char __user *)buf, count, ppos, true);
}

/* ------------------------------------------------------------------ */
/* mmap of BAR0 and of exported dma-bufs                               */

static vm_fault_t vgs_vram_fault(struct vm_fault *vmf)
{
	struct vgs_dev *vgs = vmf->vma->vm_private_data;
	unsigned long pgoff = vmf->pgoff & (VGS_OFFSET_MASK >> PAGE_SHIFT);

	if (pgoff >= vgs->npages)
		return VM_FAULT_SIGBUS;
	return vmf_insert_pfn(vmf->vma, vmf->address,
			      page_to_pfn(vgs->pages[pgoff]));
}

static const struct vm_operations_struct vgs_vram_vm_ops = {
	.fault = vgs_vram_fault,
};

/*
 * profile region: display region @k's pages are VRAM buffer k's, found at
 * fault time from the buffer size then (a mapping made for one mode keeps
 * the pages it faulted in; the host maps anew when the plane changes). A
 * page a mode change moved past VRAM wraps into it: stale pixels for a
 * stale mapping, never a SIGBUS in the host for a race it cannot avoid.
 */
static vm_fault_t vgs_display_fault(struct vm_fault *vmf)
{
	struct vgs_dev *vgs = vmf->vma->vm_private_data;
	unsigned int k = (vmf->vma->vm_pgoff >> (VGS_OFFSET_SHIFT - PAGE_SHIFT)) -
			 VGS_DISPLAY_REGION;
	unsigned long pgoff = vmf->pgoff & (VGS_OFFSET_MASK >> PAGE_SHIFT);
	unsigned long page = ((u64)k * READ_ONCE(vgs->bufsz) >> PAGE_SHIFT) +
			     pgoff;

	return vmf_insert_pfn(vmf->vma, vmf->address,
			      page_to_pfn(vgs->pages[page % vgs->npages]));
}

static const struct vm_operations_struct vgs_display_vm_ops = {
	.fault = vgs_display_fault,
};

/* the size of display region @k now; 0 if the region does not exist */
static u64 vgs_display_region_size(struct vgs_dev *vgs, unsigned int k)
{
	u64 bufsz = READ_ONCE(vgs->bufsz);

	if (READ_ONCE(vgs->profile) != VGS_PROFILE_REGION ||
	    k >= VGS_DISPLAY_REGIONS || !bufsz ||
	    (k + 1) * bufsz > vgs->cursor_offset)
		return 0;
	return bufsz;
}

static int vgs_display_mmap(struct vgs_dev *vgs, struct vm_area_struct *vma,
			    unsigned int k, unsigned long pgoff)
{
	u64 pages = vgs_display_region_size(vgs, k) >> PAGE_SHIFT;

	/* a region whose info says it is not mmappable refuses it too */
	if (!pages || READ_ONCE(vgs->hostile) == VGS_HOSTILE_REGION_NOMMAP)
		return -EINVAL;
	if (pgoff >= pages || vma_pages(vma) > pages - pgoff)
		return -EINVAL;
	vm_flags_set(vma, VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP);
	vma->vm_ops = &vgs_display_vm_ops;
	vma->vm_private_data = vgs;
	atomic64_inc(&vgs->region_mmaps);
	return 0;
}

static int vgs_mmap(struct vfio_device *vdev, struct vm_area_struct *vma)
{
	struct vgs_dev *vgs = vdev_to_vgs(vdev);
	unsigned int index = vma->vm_pgoff >> (VGS_OFFSET_SHIFT - PAGE_SHIFT);
	unsigned long pgoff = vma->vm_pgoff & (VGS_OFFSET_MASK >> PAGE_SHIFT);

	if (index >= VGS_DISPLAY_REGION &&
	    index < VGS_DISPLAY_REGION + VGS_DISPLAY_REGIONS) {
		if (!(vma->vm_flags & VM_MAYSHARE))
			return -EINVAL;
		return vgs_display_mmap(vgs, vma, index - VGS_DISPLAY_REGION,
					pgoff);
	}
	if (index != VFIO_PCI_BAR0_REGION_INDEX)
		return -EINVAL;
	if (!(vma->vm_flags & VM_MAYSHARE))
		return -EINVAL;
	if (pgoff >= vgs->npages || vma_pages(vma) > vgs->npages - pgoff)
		return -EINVAL;
	vm_flags_set(vma, VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP);
	vma->vm_ops = &vgs_vram_vm_ops;
	vma->vm_private_data = vgs;
	return 0;
}

static struct page **vgs_buf_pages(struct vgs_buf *b)
{
	return &b->vgs->pages[b->p.offset >> PAGE_SHIFT];
}

static vm_fault_t vgs_dmabuf_fault(struct vm_fault *vmf)
{
	struct vgs_buf *b = vmf->vma->vm_private_data;

	if (vmf->pgoff >= b->p.npages)
		return VM_FAULT_SIGBUS;
	return vmf_insert_pfn(vmf->vma, vmf->address,
			      page_to_pfn(vgs_buf_pages(b)[vmf->pgoff]));
}

static const struct vm_operations_struct vgs_dmabuf_vm_ops = {
	.fault = vgs_dmabuf_fault,
};

/*
 * GVT-g's dma-bufs wrap a GEM proxy object over the guest's pages: no shmem
 * file, so i915's dma-buf mmap fails (-ENODEV), and the proxy refuses to
 * pin and map its pages to kernel space (-ENXIO: vmap, CPU access).
 * Import by a device (attach, map_dma_buf) works.
 */
static bool vgs_dmabuf_proxy(struct dma_buf *db)
{
	struct vgs_buf *b = db->priv;

	return b->p.profile == VGS_PROFILE_GVT;
}

static int vgs_dmabuf_mmap(struct dma_buf *db, struct vm_area_struct *vma)
{
	struct vgs_buf *b = db->priv;

	if (vgs_dmabuf_proxy(db)) {
		atomic64_inc(&b->vgs->mmap_refused);
		return -ENODEV;
	}
	if (!(vma->vm_flags & VM_MAYSHARE))
		return -EINVAL;
	vm_flags_set(vma, VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP);
	vma->vm_ops = &vgs_dmabuf_vm_ops;
	vma->vm_private_data = db->priv;
	return 0;
}

/* ------------------------------------------------------------------ */
/* dma-buf exporter                                                    */

static int vgs_dmabuf_attach(struct dma_buf *db, struct dma_buf_attachment *at)
{
	at->priv = kzalloc(sizeof(struct vgs_attach), GFP_KERNEL);
	return at->priv ? 0 : -ENOMEM;
}

static void vgs_dmabuf_detach(struct dma_buf *db, struct dma_buf_attachment *at)
{
	kfree(at->priv);
	at->priv = NULL;
}

static struct sg_table *vgs_dmabuf_map(struct dma_buf_attachment *at,
				       enum dma_data_direction dir)
{
	struct vgs_buf *b = at->dmabuf->priv;
	struct vgs_attach *va = at->priv;
	struct sg_table *sgt;
	int ret;

	sgt = kzalloc(sizeof(*sgt), GFP_KERNEL);
	if (!sgt)
		return ERR_PTR(-ENOMEM);
	ret = sg_alloc_table_from_pages(sgt, vgs_buf_pages(b), b->p.npages, 0,
					(unsigned long)b->p.npages << PAGE_SHIFT,
					GFP_KERNEL);
	if (ret)
		goto err_free;
	ret = dma_map_sgtable(at->dev, sgt, dir, 0);
	if (ret)
		goto err_table;
	if (va) {
		va->sgt = sgt;
		va->dir = dir;
	}
	return sgt;

err_table:
	sg_free_table(sgt);
err_free:
	kfree(sgt);
	return ERR_PTR(ret);
}

static void vgs_dmabuf_unmap(struct dma_buf_attachment *at,
			     struct sg_table *sgt, enum dma_data_direction dir)
{
	struct vgs_attach *va = at->priv;

	if (va && va->sgt == sgt)
		va->sgt = NULL;
	dma_unmap_sgtable(at->dev, sgt, dir, 0);
	sg_free_table(sgt);
	kfree(sgt);
}

static int vgs_dmabuf_cpu_access(struct dma_buf *db,
				 enum dma_data_direction dir, bool begin)
{
	struct dma_buf_attachment *at;
	int ret;

	ret = dma_resv_lock_interruptible(db->resv, NULL);
	if (ret)
		return ret;
	list_for_each_entry(at, &db->attachments, node) {
		struct vgs_attach *va = at->priv;

		if (!va || !va->sgt)
			continue;
		if (begin)
			dma_sync_sgtable_for_cpu(at->dev, va->sgt, va->dir);
		else
			dma_sync_sgtable_for_device(at->dev, va->sgt, va->dir);
	}
	dma_resv_unlock(db->resv);
	return 0;
}

static int vgs_dmabuf_begin_cpu(struct dma_buf *db, enum dma_data_direction dir)
{
	if (vgs_dmabuf_proxy(db)) {
		atomic64_inc(&((struct vgs_buf *)db->priv)->vgs->cpu_access_refused);
		return -ENXIO;
	}
	return vgs_dmabuf_cpu_access(db, dir, true);
}

static int vgs_dmabuf_end_cpu(struct dma_buf *db, enum dma_data_direction dir)
{
	if (vgs_dmabuf_proxy(db)) {
		atomic64_inc(&((struct vgs_buf *)db->priv)->vgs->cpu_access_refused);
		return -ENXIO;
	}
	return vgs_dmabuf_cpu_access(db, dir, false);
}

static int vgs_dmabuf_vmap(struct dma_buf *db, struct iosys_map *map)
{
	struct vgs_buf *b = db->priv;

	if (vgs_dmabuf_proxy(db)) {
		atomic64_inc(&b->vgs->vmap_refused);
		return -ENXIO;
	}

	/* VRAM is permanently vmapped; the export keeps the device alive */
	iosys_map_set_vaddr(map, b->vgs->vram + b->p.offset);
	return 0;
}

static void vgs_dmabuf_release(struct dma_buf *db)
{
	struct vgs_buf *b = db->priv;
	struct vgs_dev *vgs = b->vgs;

	atomic_dec(&vgs->live_dmabufs);
	vgs_buf_put(b);
	/* may be the last reference: then the device (and VRAM) goes now */
	vfio_put_device(&vgs->vdev);
}

static const struct dma_buf_ops vgs_dmabuf_ops = {
	.attach = vgs_dmabuf_attach,
	.detach = vgs_dmabuf_detach,
	.map_dma_buf = vgs_dmabuf_map,
	.unmap_dma_buf = vgs_dmabuf_unmap,
	.release = vgs_dmabuf_release,
	.begin_cpu_access = vgs_dmabuf_begin_cpu,
	.end_cpu_access = vgs_dmabuf_end_cpu,
	.mmap = vgs_dmabuf_mmap,
	.vmap = vgs_dmabuf_vmap,
};

/* consumes the caller's reference on @b */
static int vgs_export(struct vgs_dev *vgs, struct vgs_buf *b)
{
	DEFINE_DMA_BUF_EXPORT_INFO(exp);
	struct dma_buf *db;
	int fd;

	get_device(&vgs->vdev.device);
	exp.ops = &vgs_dmabuf_ops;
	exp.size = (size_t)b->p.npages << PAGE_SHIFT;
	exp.flags = O_RDWR;
	exp.priv = b;
	db = dma_buf_export(&exp);
	if (IS_ERR(db)) {
		vgs_buf_put(b);
		vfio_put_device(&vgs->vdev);
		atomic64_inc(&vgs->export_errors);
		return PTR_ERR(db);
	}
	atomic_inc(&vgs->live_dmabufs);

	fd = dma_buf_fd(db, O_CLOEXEC);
	if (fd < 0) {
		dma_buf_put(db);	/* release drops our references */
		atomic64_inc(&vgs->export_errors);
		return fd;
	}
	atomic64_inc(&vgs->exports);
	return fd;
}

/* ------------------------------------------------------------------ */
/* ioctls                                                              */

static int vgs_ioctl_get_info(struct vgs_dev *vgs, void __user *arg)
{
	size_t minsz = offsetofend(struct vfio_device_info, num_irqs);
	struct vfio_device_info info;

	if (copy_from_user(&info, arg, minsz))
		return -EFAULT;
	if (info.argsz < minsz)
		return -EINVAL;
	info.flags = VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET;
	info.num_regions = VGS_NUM_REGIONS;
	info.num_irqs = VGS_DISPLAY_IRQ + 1;
	if (READ_ONCE(vgs->profile) == VGS_PROFILE_REGION) {
		/* the display regions; no display event (mdpy has none) */
		info.num_regions = VGS_DISPLAY_REGION + VGS_DISPLAY_REGIONS;
		info.num_irqs = VFIO_PCI_NUM_IRQS;
	}
	return copy_to_user(arg, &info, minsz) ? -EFAULT : 0;
}

/*
 * profile region: a display region as mdpy describes its own: readable,
 * writable, mmappable, no capabilities; the faults region_short (half the
 * plane's bytes) and region_nommap (no MMAP flag) lie about it
 */
static int vgs_display_region_info(struct vgs_dev *vgs, void __user *arg,
				   struct vfio_region_info *info)
{
	size_t minsz = offsetofend(struct vfio_region_info, offset);
	u64 size = vgs_display_region_size(vgs, info->index - VGS_DISPLAY_REGION);

	info->offset = VGS_INDEX_TO_OFFSET(info->index);
	info->cap_offset = 0;
	info->size = size;
	info->flags = size ? VFIO_REGION_INFO_FLAG_READ |
			     VFIO_REGION_INFO_FLAG_WRITE |
			     VFIO_REGION_INFO_FLAG_MMAP : 0;
	switch (READ_ONCE(vgs->hostile)) {
	case VGS_HOSTILE_REGION_SHORT:
		info->size = max_t(u64, PAGE_SIZE, (size / 2) & PAGE_MASK);
		break;
	case VGS_HOSTILE_REGION_NOMMAP:
		info->flags &= ~VFIO_REGION_INFO_FLAG_MMAP;
		break;
	default:
		break;
	}
	return copy_to_user(arg, info, minsz) ? -EFAULT : 0;
}

static int vgs_ioctl_region_info(struct vgs_dev *vgs, void __user *arg)
{
	size_t minsz = offsetofend(struct vfio_region_info, offset);
	struct vfio_region_info_cap_type cap = {
		.header.id = VFIO_REGION_INFO_CAP_TYPE,
		.header.version = 1,
		.type = VFIO_REGION_TYPE_GFX,
		.subtype = VFIO_REGION_SUBTYPE_GFX_EDID,
	};
	struct vfio_region_info info;
	u32 argsz;

	if (copy_from_user(&info, arg, minsz))
		return -EFAULT;
	if (info.argsz < minsz)
		return -EINVAL;
	if (info.index >= VGS_DISPLAY_REGION &&
	    info.index < VGS_DISPLAY_REGION + VGS_DISPLAY_REGIONS &&
	    READ_ONCE(vgs->profile) == VGS_PROFILE_REGION)
		return vgs_display_region_info(vgs, arg, &info);
	if (info.index >= VGS_NUM_REGIONS)
		return -EINVAL;

	argsz = info.argsz;
	info.offset = VGS_INDEX_TO_OFFSET(info.index);
	info.cap_offset = 0;
	info.flags = 0;
	info.size = 0;
	switch (info.index) {
	case VFIO_PCI_BAR0_REGION_INDEX:
		info.size = vgs->vram_size;
		info.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE |
			     VFIO_REGION_INFO_FLAG_MMAP;
		break;
	case VFIO_PCI_BAR2_REGION_INDEX:
		info.size = VGS_MMIO_SIZE;
		info.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
		break;
	case VFIO_PCI_CONFIG_REGION_INDEX:
		info.size = VGS_CFG_SIZE;
		info.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
		break;
	case VGS_EDID_REGION_INDEX:
		if (READ_ONCE(vgs->edid_hidden))
			break;	/* as a device without EDID: size 0, no caps */
		info.size = VGS_EDID_REGION_SIZE;
		info.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE |
			     VFIO_REGION_INFO_FLAG_CAPS;
		/* capability chain: one TYPE cap right after the info */
		info.argsz = sizeof(info) + sizeof(cap);
		if (argsz >= info.argsz) {
			info.cap_offset = sizeof(info);
			if (copy_to_user(arg + sizeof(info), &cap, sizeof(cap)))
				return -EFAULT;
		}
		break;
	default:
		break;	/* unimplemented BARs, ROM, VGA: size 0 */
	}
	return copy_to_user(arg, &info, minsz) ? -EFAULT : 0;
}

/*
 * VFIO_DEVICE_GET_IRQ_INFO, as kvmgt answers it with v6: the display event
 * with its two capabilities right after the 20-byte struct; an argsz too
 * small for them is told the size needed, and then only argsz, flags,
 * index and count are written back (kvmgt copies minsz = 16 bytes).
 */
static int vgs_ioctl_irq_info(struct vgs_dev *vgs, void __user *arg)
{
	size_t minsz = offsetofend(struct vgs_v6_irq_info, count);
	struct vgs_v6_irq_cap_type type = {
		.header.id = VGS_V6_IRQ_INFO_CAP_TYPE,
		.header.version = 1,
		.header.next = VGS_V6_CAP_DISPLAY_OFF,
		.type = VGS_V6_IRQ_TYPE_GFX,
		.subtype = VGS_V6_IRQ_SUBTYPE_GFX_DISPLAY_IRQ,
	};
	struct vgs_v6_irq_cap_display disp = {
		.header.id = VGS_V6_IRQ_INFO_CAP_DISPLAY,
		.header.version = 1,
		.header.next = 0,
		.cur_event_val = VGS_V6_CUR_EVENT_VAL,
		.pri_event_val = VGS_V6_PRI_EVENT_VAL,
	};
	struct vgs_v6_irq_info info = {};

	if (copy_from_user(&info, arg, minsz))
		return -EFAULT;
	if (info.argsz < minsz || info.index > VGS_DISPLAY_IRQ)
		return -EINVAL;
	if (info.index < VGS_DISPLAY_IRQ) {
		info.flags = 0;
		info.count = 0;		/* no PCI interrupts at all */
		return copy_to_user(arg, &info, minsz) ? -EFAULT : 0;
	}
	info.flags = VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE |
		     VGS_V6_IRQ_INFO_FLAG_CAPS;
	info.count = 1;
	if (info.argsz < VGS_V6_IRQ_INFO_SIZE) {
		info.argsz = VGS_V6_IRQ_INFO_SIZE;
		return copy_to_user(arg, &info, minsz) ? -EFAULT : 0;
	}
	info.cap_offset = VGS_V6_CAP_TYPE_OFF;
	/* disp lands at 36: its __u64s are not 8-byte aligned in the buffer */
	if (copy_to_user(arg + VGS_V6_CAP_TYPE_OFF, &type, sizeof(type)) ||
	    copy_to_user(arg + VGS_V6_CAP_DISPLAY_OFF, &disp, sizeof(disp)))
		return -EFAULT;
	return copy_to_user(arg, &info, sizeof(info)) ? -EFAULT : 0;
}

/*
 * VFIO_DEVICE_SET_IRQS on the display event, as kvmgt handles it with v6:
 * ACTION_TRIGGER with DATA_EVENTFD (start 0, count 1) arms the fd and
 * unmasks; fd -1 is refused (EBADF, from eventfd_ctx_fdget()) and the
 * armed eventfd stays; DATA_NONE with count 0 disarms; other TRIGGER data
 * changes nothing. ACTION_MASK / ACTION_UNMASK with DATA_NONE stop and
 * resume the signals.
 */
static int vgs_set_display_irq(struct vgs_dev *vgs, struct vfio_irq_set *hdr,
			       void __user *data)
{
	u32 type = hdr->flags & VFIO_IRQ_SET_DATA_TYPE_MASK;
	u32 action = hdr->flags & VFIO_IRQ_SET_ACTION_TYPE_MASK;
	struct eventfd_ctx *ctx = NULL, *old = NULL;
	unsigned long irqf;
	s32 fd;

	if (hdr->start != 0 || hdr->count > 1 ||
	    (type == VFIO_IRQ_SET_DATA_EVENTFD &&
	     hdr->argsz < sizeof(*hdr) + hdr->count * sizeof(fd)))
		return -EINVAL;
	if (action == VFIO_IRQ_SET_ACTION_MASK ||
	    action == VFIO_IRQ_SET_ACTION_UNMASK) {
		if (type != VFIO_IRQ_SET_DATA_NONE)
			return -EINVAL;
		mutex_lock(&vgs->lock);
		spin_lock_irqsave(&vgs->trig_lock, irqf);
		vgs->display_masked = action == VFIO_IRQ_SET_ACTION_MASK;
		spin_unlock_irqrestore(&vgs->trig_lock, irqf);
		mutex_unlock(&vgs->lock);
		return 0;
	}
	if (action != VFIO_IRQ_SET_ACTION_TRIGGER)
		return -EINVAL;
	if (type == VFIO_IRQ_SET_DATA_EVENTFD) {
		if (hdr->count != 1)
			return -EINVAL;
		if (copy_from_user(&fd, data, sizeof(fd)))
			return -EFAULT;
		ctx = eventfd_ctx_fdget(fd);
		if (IS_ERR(ctx)) {
			mutex_lock(&vgs->lock);
			if (fd < 0)
				vgs->st.display_disarm_refused++;
			mutex_unlock(&vgs->lock);
			return PTR_ERR(ctx);
		}
		if (!vgs_eventfd_view_ok(ctx)) {
			pr_warn_once("this kernel's struct eventfd_ctx is not the one vgpusim adds values to: display event refused\n");
			eventfd_ctx_put(ctx);
			return -EOPNOTSUPP;
		}
	} else if (type != VFIO_IRQ_SET_DATA_NONE || hdr->count != 0) {
		return 0;	/* kvmgt: accepted, nothing happens */
	}
	mutex_lock(&vgs->lock);
	spin_lock_irqsave(&vgs->trig_lock, irqf);
	old = vgs->display_trigger;
	vgs->display_trigger = ctx;
	vgs->display_masked = false;
	spin_unlock_irqrestore(&vgs->trig_lock, irqf);
	vgs->ev_pending = 0;
	if (ctx)
		vgs->st.display_arms++;
	else
		vgs->st.display_disarms++;
	mutex_unlock(&vgs->lock);
	if (old)
		eventfd_ctx_put(old);
	return 0;
}

static int vgs_ioctl_set_irqs(struct vgs_dev *vgs, void __user *arg)
{
	size_t minsz = offsetofend(struct vfio_irq_set, count);
	struct vfio_irq_set hdr;

	if (copy_from_user(&hdr, arg, minsz))
		return -EFAULT;
	if (hdr.argsz < minsz || hdr.index > VGS_DISPLAY_IRQ)
		return -EINVAL;
	if (hdr.index == VGS_DISPLAY_IRQ)
		return vgs_set_display_irq(vgs, &hdr, arg + minsz);
	/* disabling (count 0, no data) is a no-op; nothing can be enabled */
	if (!hdr.count && (hdr.flags & VFIO_IRQ_SET_DATA_TYPE_MASK) ==
	    VFIO_IRQ_SET_DATA_NONE)
		return 0;
	return -EINVAL;
}

/* fill @key/@p for the primary plane; false if the plane is disabled */
static bool vgs_primary_plane(struct vgs_dev *vgs, struct vgs_plane *key,
			      struct vfio_device_gfx_plane_info *p)
{
	const struct vgs_format *f = vgs_find_format(vgs->cur.fourcc);
	u32 cpp = f ? f->cpp : 4;
	u64 size;

	if (!vgs->cur.enabled || vgs_link_down(vgs))
		return false;
	key->type = VGS_PLANE_PRIMARY;
	key->offset = vgs->fb_offset;
	key->fourcc = vgs->cur.fourcc;
	key->modifier = vgs_modifier_of(vgs);
	key->width = vgs->cur.width;
	key->height = vgs->cur.height;
	key->stride = vgs_stride_of(&vgs->cur);
	size = vgs_surface_size(key->stride, key->height,
				vgs_layout_of(&vgs->cur));

	switch (vgs->hostile) {
	case VGS_HOSTILE_STRIDE_SHORT:
		key->stride = (key->width - 1) * cpp;
		size = PAGE_ALIGN((u64)key->stride * key->height);
		break;
	case VGS_HOSTILE_STRIDE_UNALIGNED:
		/* 3, 4 byte formats: not a multiple of cpp (4 bytes: nor of 4) */
		key->stride = key->width * cpp + 2;
		size = min_t(u64, PAGE_ALIGN((u64)key->stride * key->height),
			     vgs->vram_size - key->offset);
		break;
	case VGS_HOSTILE_SIZE_SHORT:
		size = max_t(u64, PAGE_SIZE, (size / 2) & PAGE_MASK);
		break;
	case VGS_HOSTILE_ZERO_WIDTH:
		key->width = 0;
		break;
	case VGS_HOSTILE_ZERO_HEIGHT:
		key->height = 0;
		break;
	case VGS_HOSTILE_HUGE_WIDTH:
		key->width = VGS_HUGE_WIDTH;
		key->stride = VGS_HUGE_WIDTH * cpp;
		size = min_t(u64, PAGE_ALIGN((u64)key->stride * key->height),
			     U32_MAX & PAGE_MASK);
		break;
	case VGS_HOSTILE_BAD_FOURCC:
		key->fourcc = VGS_BAD_FOURCC;
		break;
	case VGS_HOSTILE_OVERFLOW:
		/* stride * height = 2^32 + stride: wraps to a plausible size */
		key->width = 32768;
		key->stride = 32768 * cpp;
		key->height = div_u64(1ULL << 32, key->stride) + 1;
		size = (u32)((u64)key->stride * key->height);
		break;
	default:
		break;
	}
	key->size = size;
	key->npages = min_t(u64, DIV_ROUND_UP_ULL(size, PAGE_SIZE),
			    (vgs->vram_size - key->offset) >> PAGE_SHIFT);

	/* no hotspot information for the primary plane */
	p->x_hot = VGS_NO_HOT;
	p->y_hot = VGS_NO_HOT;
	return true;
}

static bool vgs_cursor_plane(struct vgs_dev *vgs, struct vgs_plane *key,
			     struct vfio_device_gfx_plane_info *p)
{
	if (!vgs->cur.enabled || vgs_link_down(vgs) ||
	    vgs->cur.cursor == VGS_CURSOR_OFF)
		return false;
	key->type = VGS_PLANE_CURSOR;
	key->offset = vgs->cursor_offset;
	key->npages = VGS_CURSOR_AREA(vgs->cursor_size) >> PAGE_SHIFT;
	key->fourcc = DRM_FORMAT_ARGB8888;
	key->modifier = DRM_FORMAT_MOD_LINEAR;
	key->width = vgs->cursor_size;
	key->height = vgs->cursor_size;
	key->stride = vgs->cursor_size * 4;
	key->size = VGS_CURSOR_AREA(vgs->cursor_size);
	p->x_pos = vgs->cur.cursor_x;
	p->y_pos = vgs->cur.cursor_y;
	if (vgs->hostile == VGS_HOSTILE_BAD_HOTSPOT) {
		p->x_hot = vgs->cursor_size;	/* just outside the image */
		p->y_hot = VGS_BAD_HOT_Y;
	} else {
		p->x_hot = vgs->cur.hot_x;
		p->y_hot = vgs->cur.hot_y;
	}
	return true;
}

/*
 * profile region: QUERY_GFX_PLANE as mdpy answers it. The probe succeeds
 * for exactly PROBE | REGION, a query for exactly REGION, anything else
 * (DMABUF) is -EINVAL. Whatever plane type is asked, the answer is the
 * primary plane (mdpy has no cursor and looks only at the flags): its
 * geometry, the faults that bend it, and region_index naming the display
 * region of the front buffer. The uapi has no offset into a region, so a
 * scanout off a buffer boundary (a guest's own FB_OFFSET) cannot be named:
 * it is answered as no plane. A flip names another region: that, or a new
 * geometry, is all a host can see; drawing into the region on screen shows
 * nothing in the answer (the host compares pixels).
 */
static int vgs_query_region_plane(struct vgs_dev *vgs, void __user *arg,
				  struct vfio_device_gfx_plane_info *p)
{
	size_t minsz = offsetofend(struct vfio_device_gfx_plane_info,
				   region_index);
	struct vgs_plane key = {};
	u32 type = p->drm_plane_type;
	u32 slot = 0;
	bool on;
	int ret = 0;

	if (p->flags == (VFIO_GFX_PLANE_TYPE_PROBE | VFIO_GFX_PLANE_TYPE_REGION)) {
		mutex_lock(&vgs->lock);
		vgs->st.probes++;
		mutex_unlock(&vgs->lock);
		return 0;
	}
	if (p->flags != VFIO_GFX_PLANE_TYPE_REGION)
		return -EINVAL;

	memset_after(p, 0, drm_plane_type);
	mutex_lock(&vgs->lock);
	vgs->st.queries++;
	if (type == VGS_PLANE_CURSOR)
		vgs->st.queries_cursor++;
	else
		vgs->st.queries_primary++;
	if (vgs->q_err_count) {
		vgs->q_err_count--;
		vgs->st.query_errors++;
		ret = vgs->q_err;
		goto out_unlock;
	}
	on = vgs_primary_plane(vgs, &key, p);
	if (on) {
		/* only a scanout at a buffer boundary has a region */
		on = vgs->bufsz && vgs->fb_offset % vgs->bufsz == 0;
		slot = on ? vgs->fb_offset / vgs->bufsz : 0;
		on = on && vgs_display_region_size(vgs, slot);
	}
	if (!on) {
		memset_after(p, 0, drm_plane_type);
		vgs->st.queries_disabled++;
		goto out_unlock;
	}
	p->drm_format = key.fourcc;
	p->drm_format_mod = key.modifier;
	p->width = key.width;
	p->height = key.height;
	p->stride = key.stride;
	p->size = key.size;
	p->region_index = VGS_DISPLAY_REGION + slot;
	/* mdpy's unused fields */
	p->x_pos = 0;
	p->y_pos = 0;
	p->x_hot = 0;
	p->y_hot = 0;
	if (vgs->flip_pending) {
		vgs->flip_pending = false;
		vgs->st.flips_seen++;
		vgs_lat_record(vgs, ktime_us_delta(ktime_get(), vgs->flip_time));
	}

out_unlock:
	mutex_unlock(&vgs->lock);
	if (ret)
		return ret;
	return copy_to_user(arg, p, minsz) ? -EFAULT : 0;
}

static int vgs_ioctl_query_plane(struct vgs_dev *vgs, void __user *arg)
{
	size_t minsz = offsetofend(struct vfio_device_gfx_plane_info, dmabuf_id);
	struct vfio_device_gfx_plane_info p;
	struct vgs_plane key = {};
	struct vgs_buf *b;
	bool on = false;
	int ret = 0;

	if (copy_from_user(&p, arg, minsz))
		return -EFAULT;
	if (p.argsz < minsz)
		return -EINVAL;
	if (READ_ONCE(vgs->profile) == VGS_PROFILE_REGION)
		return vgs_query_region_plane(vgs, arg, &p);

	switch (p.flags) {
	case VFIO_GFX_PLANE_TYPE_PROBE | VFIO_GFX_PLANE_TYPE_DMABUF:
		mutex_lock(&vgs->lock);
		vgs->st.probes++;
		mutex_unlock(&vgs->lock);
		return 0;
	case VFIO_GFX_PLANE_TYPE_DMABUF:
		break;
	default:	/* no region support; anything else is invalid */
		return -EINVAL;
	}
	if (p.drm_plane_type > VGS_PLANE_CURSOR)
		return -EINVAL;

	memset_after(&p, 0, drm_plane_type);

	mutex_lock(&vgs->lock);
	vgs->st.queries++;
	if (p.drm_plane_type == VGS_PLANE_PRIMARY)
		vgs->st.queries_primary++;
	else if (p.drm_plane_type == VGS_PLANE_CURSOR)
		vgs->st.queries_cursor++;

	if (vgs->q_err_count) {
		vgs->q_err_count--;
		vgs->st.query_errors++;
		ret = vgs->q_err;
		goto out_unlock;
	}

	if (p.drm_plane_type == VGS_PLANE_PRIMARY)
		on = vgs_primary_plane(vgs, &key, &p);
	else if (p.drm_plane_type == VGS_PLANE_CURSOR)
		on = vgs_cursor_plane(vgs, &key, &p);
	if (!on) {
		/* disabled plane: success, all outputs zero */
		memset_after(&p, 0, drm_plane_type);
		vgs->st.queries_disabled++;
		goto out_unlock;
	}

	key.profile = vgs->profile;
	b = vgs_buf_lookup(vgs, &key);
	if (!b) {
		ret = -ENOMEM;
		goto out_unlock;
	}
	p.drm_format = key.fourcc;
	p.drm_format_mod = key.modifier;
	p.width = key.width;
	p.height = key.height;
	p.stride = key.stride;
	p.size = key.size;
	p.dmabuf_id = b->id;

	if (key.type == VGS_PLANE_PRIMARY) {
		vgs->last_primary_id = b->id;
		if (vgs->flip_pending) {
			vgs->flip_pending = false;
			vgs->st.flips_seen++;
			vgs_lat_record(vgs, ktime_us_delta(ktime_get(), vgs->flip_time));
		}
	} else {
		vgs->last_cursor_id = b->id;
	}

out_unlock:
	mutex_unlock(&vgs->lock);
	if (ret)
		return ret;
	return copy_to_user(arg, &p, minsz) ? -EFAULT : 0;
}

static int vgs_ioctl_get_dmabuf(struct vgs_dev *vgs, void __user *arg)
{
	struct vgs_buf *b = NULL;
	int ret = 0;
	u32 id;

	if (get_user(id, (u32 __user *)arg))
		return -EFAULT;
	if (READ_ONCE(vgs->profile) == VGS_PROFILE_REGION)
		return -ENOTTY;	/* as mdpy: no dma-bufs */

	mutex_lock(&vgs->lock);
	if (vgs->g_err_count) {
		vgs->g_err_count--;
		ret = vgs->g_err;
	} else {
		b = id ? vgs_buf_by_id(vgs, id) : NULL;
		if (!b)
			ret = -ENOENT;
		else if (!b->p.npages)
			ret = -EINVAL;
		else
			kref_get(&b->ref);
	}
	mutex_unlock(&vgs->lock);

	if (ret) {
		atomic64_inc(&vgs->export_errors);
		return ret;
	}
	return vgs_export(vgs, b);
}

static long vgs_ioctl(struct vfio_device *vdev, unsigned int cmd,
		      unsigned long arg)
{
	struct vgs_dev *vgs = vdev_to_vgs(vdev);
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case VFIO_DEVICE_GET_INFO:
		return vgs_ioctl_get_info(vgs, uarg);
	case VFIO_DEVICE_GET_REGION_INFO:
		return vgs_ioctl_region_info(vgs, uarg);
	case VFIO_DEVICE_GET_IRQ_INFO:
		return vgs_ioctl_irq_info(vgs, uarg);
	case VFIO_DEVICE_SET_IRQS:
		return vgs_ioctl_set_irqs(vgs, uarg);
	case VFIO_DEVICE_RESET:
		mutex_lock(&vgs->lock);
		vgs_reset_locked(vgs);
		mutex_unlock(&vgs->lock);
		return 0;
	case VFIO_DEVICE_QUERY_GFX_PLANE:
		return vgs_ioctl_query_plane(vgs, uarg);
	case VFIO_DEVICE_GET_GFX_DMABUF:
		return vgs_ioctl_get_dmabuf(vgs, uarg);
	default:
		return -ENOTTY;
	}
}

static void vgs_close_device(struct vfio_device *vdev)
{
	struct vgs_dev *vgs = vdev_to_vgs(vdev);

	struct eventfd_ctx *trigger;
	unsigned long irqf;

	/* forget ids; dma-bufs still open keep their own references */
	mutex_lock(&vgs->lock);
	vgs_drop_bufs(vgs);
	spin_lock_irqsave(&vgs->trig_lock, irqf);
	trigger = vgs->display_trigger;
	vgs->display_trigger = NULL;
	vgs->display_masked = false;
	spin_unlock_irqrestore(&vgs->trig_lock, irqf);
	vgs->ev_pending = 0;
	mutex_unlock(&vgs->lock);
	if (trigger)
		eventfd_ctx_put(trigger);
}

/* ------------------------------------------------------------------ */
/* device lifetime                                                     */

static void vgs_free_vram(struct vgs_dev *vgs)
{
	unsigned int i;

	if (vgs->vram)
		vunmap(vgs->vram);
	if (vgs->pages) {
		for (i = 0; i < vgs->npages; i++)
			if (vgs->pages[i])
				__free_page(vgs->pages[i]);
		kvfree(vgs->pages);
	}
	vgs->pages = NULL;
	vgs->vram = NULL;
}

static void vgs_init_state(struct vgs_state *s)
{
	memset(s, 0, sizeof(*s));
	s->width = def_width;
	s->height = def_height;
	s->fourcc = DRM_FORMAT_XRGB8888;
	s->modifier = DRM_FORMAT_MOD_LINEAR;
	s->enabled = true;
	s->flip_hz = clamp_t(u32, def_hz, 1, VGS_MAX_HZ);
	s->nbufs = 3;
	s->cursor = VGS_CURSOR_OFF;
	s->hot_x = VGS_CURSOR_W / 2;
	s->hot_y = VGS_CURSOR_H / 2;
}

static int vgs_init_dev(struct vfio_device *vdev)
{
	struct vgs_dev *vgs = vdev_to_vgs(vdev);
	unsigned int i;

	vgs->mdev = to_mdev_device(vdev->dev);
	mutex_init(&vgs->lock);
	mutex_init(&vgs->tick_lock);
	spin_lock_init(&vgs->trig_lock);
	INIT_LIST_HEAD(&vgs->bufs);
	INIT_WORK(&vgs->tick_work, vgs_tick_work);
	INIT_DELAYED_WORK(&vgs->vblank_work, vgs_vblank_work);
	hrtimer_init(&vgs->timer, CLOCK_MONOTONIC, HRTIMER_MODE_REL);
	vgs->timer.function = vgs_timer_fn;
	hrtimer_init(&vgs->storm_timer, CLOCK_MONOTONIC, HRTIMER_MODE_REL);
	vgs->storm_timer.function = vgs_storm_fn;
	atomic64_set(&vgs->storm_signals, 0);
	vgs->stopping = true;	/* engine starts once registered */
	vgs->next_id = 1;
	atomic_set(&vgs->live_dmabufs, 0);
	atomic_set(&vgs->live_bufs, 0);
	atomic64_set(&vgs->exports, 0);
	atomic64_set(&vgs->export_errors, 0);
	atomic64_set(&vgs->ticks_dropped, 0);
	atomic64_set(&vgs->timer_late, 0);
	atomic64_set(&vgs->flip_late, 0);
	atomic64_set(&vgs->flip_late_max_ns, 0);
	atomic64_set(&vgs->mmap_refused, 0);
	atomic64_set(&vgs->vmap_refused, 0);
	atomic64_set(&vgs->cpu_access_refused, 0);

	vgs->vram_size = vgs_vram_mb() << 20;
	vgs->npages = vgs->vram_size >> PAGE_SHIFT;
	vgs->cursor_size = VGS_CURSOR_W;
	vgs->cursor_offset = vgs->vram_size - VGS_CURSOR_AREA(vgs->cursor_size);
	vgs->profile = vgs_def_profile;
	vgs->pages = kvcalloc(vgs->npages, sizeof(*vgs->pages), GFP_KERNEL);
	if (!vgs->pages)
		goto err;
	for (i = 0; i < vgs->npages; i++) {
		vgs->pages[i] = alloc_page(GFP_KERNEL | __GFP_ZERO);
		if (!vgs->pages[i])
			goto err;
	}
	vgs->vram = vmap(vgs->pages, vgs->npages, VM_MAP, PAGE_KERNEL);
	if (!vgs->vram)
		goto err;

	vgs_init_cfg(vgs);
	vgs_init_state(&vgs->def);
	if (vgs_check_mode(vgs, vgs->def.width, vgs->def.height, 0,
			   vgs->def.fourcc, VGS_TILE_NONE, NULL)) {
		vgs->def.width = 640;
		vgs->def.height = 480;
	}

	vgs->edid_regs.edid_offset = VGS_EDID_BLOB_OFFSET;
	vgs->edid_regs.edid_max_size = VGS_EDID_MAX_SIZE;
	vgs->edid_regs.max_xres = max_width;
	vgs->edid_regs.max_yres = max_height;
	vgs->edid_regs.link_state = VFIO_DEVICE_GFX_LINK_STATE_UP;
	vgs->edid_follow = true;

	mutex_lock(&vgs->lock);
	vgs_reset_locked(vgs);
	memset(&vgs->st, 0, sizeof(vgs->st));
	vgs->flip_pending = false;
	mutex_unlock(&vgs->lock);
	return 0;

err:
	vgs_free_vram(vgs);
	mutex_destroy(&vgs->tick_lock);
	mutex_destroy(&vgs->lock);
	return -ENOMEM;
}

/* last reference gone: no user, no exported dma-buf is left */
static void vgs_release_dev(struct vfio_device *vdev)
{
	struct vgs_dev *vgs = vdev_to_vgs(vdev);

	vgs_drop_bufs(vgs);
	vgs_free_vram(vgs);
	mutex_destroy(&vgs->tick_lock);
	mutex_destroy(&vgs->lock);
}

static const struct vfio_device_ops vgs_dev_ops = {
	.name = VGS_NAME,
	.init = vgs_init_dev,
	.release = vgs_release_dev,
	.close_device = vgs_close_device,
	.read = vgs_read,
	.write = vgs_write,
	.mmap = vgs_mmap,
	.ioctl = vgs_ioctl,
	.bind_iommufd = vfio_iommufd_emulated_bind,
	.unbind_iommufd = vfio_iommufd_emulated_unbind,
	.attach_ioas = vfio_iommufd_emulated_attach_ioas,
	.detach_ioas = vfio_iommufd_emulated_detach_ioas,
};

/* ------------------------------------------------------------------ */
/* sysfs controls: /sys/bus/mdev/devices/<uuid>/vgpusim/                */

static struct vgs_dev *dev_to_vgs(struct device *dev)
{
	return dev_get_drvdata(dev);
}

static ssize_t mode_show(struct device *dev, struct device_attribute *attr,
			 char *buf)
{
	struct vgs_dev *vgs = dev_to_vgs(dev);
	ssize_t n;

	mutex_lock(&vgs->lock);
	n = sysfs_emit(buf, "%ux%u\n", vgs->cur.width, vgs->cur.height);
	mutex_unlock(&vgs->lock);
	return n;
}

/* change def and cur geometry together, then show the new mode */
static int vgs_set_geometry(struct vgs_dev *vgs, u32 w, u32 h, u32 stride,
			    u32 fourcc)
{
	int ret = vgs_check_mode(vgs, w, h, stride, fourcc,
				 vgs_layout_of(&vgs->cur), NULL);

	if (ret)
		return ret;
	vgs->def.width = vgs->cur.width = w;
	vgs->def.height = vgs->cur.height = h;
	vgs->def.stride = vgs->cur.stride = stride;
	vgs->def.fourcc = vgs->cur.fourcc = fourcc;
	vgs_mode_changed(vgs, true);
	vgs_engine_sync(vgs);
	return 0;
}

static ssize_t mode_store(struct device *dev, struct device_attribute *attr,
			  const char *buf, size_t count)
{
	struct vgs_dev *vgs = dev_to_vgs(dev);
	u32 w, h;
	int ret;

	if (sscanf(buf, "%ux%u", &w, &h) != 2)
		return -EINVAL;
	mutex_lock(&vgs->lock);
	ret = vgs_set_geometry(vgs, w, h, 0, vgs->cur.fourcc);
	mutex_unlock(&vgs->lock);
	return ret ? ret : count;
}
static DEVICE_ATTR_RW(mode);

static ssize_t format_show(struct device *dev, struct device_attribute *attr,
			   char *buf)
{
	struct vgs_dev *vgs = dev_to_vgs(dev);
	const struct vgs_format *f;
	ssize_t n;

	mutex_lock(&vgs->lock);
	f = vgs_find_format(vgs->cur.fourcc);
	n = sysfs_emit(buf, "%s\n", f ? f->name : "?");
	mutex_unlock(&vgs->lock);
	return n;
}

static ssize_t format_store(struct device *dev, struct device_attribute *attr,
			    const char *buf, size_t count)
{
	struct vgs_dev *vgs = dev_to_vgs(dev);
	const struct vgs_format *f = vgs_find_format_name(buf);
	int ret;

	if (!f)
		return -EINVAL;
	mutex_lock(&vgs->lock);
	ret = vgs_set_geometry(vgs, vgs->cur.width, vgs->cur.height, 0, f->fourcc);
	mutex_unlock(&vgs->lock);
	return ret ? ret : count;
}
static DEVICE_ATTR_RW(format);

static ssize_t stride_show(struct device *dev, struct device_attribute *attr,
			   char *buf)
{
	struct vgs_dev *vgs = dev_to_vgs(dev);
	ssize_t n;

	mutex_lock(&vgs->lock);
	n = sysfs_emit(buf, "%u\n", vgs_stride_of(&vgs->cur));
	mutex_unlock(&vgs->lock);
	return n;
}

static ssize_t stride_store(struct device *dev, struct device_attribute *attr,
			    const char *buf, size_t count)
{
	struct vgs_dev *vgs = dev_to_vgs(dev);
	u32 stride;
	int ret;

	ret = kstrtou32(buf, 0, &stride);
	if (ret)
		return ret;
	mutex_lock(&vgs->lock);
	ret = vgs_set_geometry(vgs, vgs->cur.width, vgs->cur.height, stride,
			       vgs->cur.fourcc);
	mutex_unlock(&vgs->lock);
	return ret ? ret : count;
}
static DEVICE_ATTR_RW(stride);

static ssize_t modifier_show(struct device *dev, struct device_attribute *attr,
			     char *buf)
{
	struct vgs_dev *vgs = dev_to_vgs(dev);
	ssize_t n;

	mutex_lock(&vgs->lock);
	if (vgs->cur.mod_alternate)
		n = sysfs_emit(buf, "alternate\n");
	else
		n = sysfs_emit(buf, "0x%016llx\n", vgs->cur.modifier);
	mutex_unlock(&vgs->lock);
	return n;
}

/*
 * A new modifier (live and power-on). The pixels follow it: when the
 * tiling changes, the buffers are laid out anew; if the stride or buffer
 * size changes with it, as a mode change (buffer 0, redrawn, a flip), else
 * the front buffer is redrawn in place (a primary update at the next
 * vblank) and the others at their next use.
 */
static int vgs_set_modifier(struct vgs_dev *vgs, u64 mod, bool alternate)
{
	struct vgs_state n = vgs->cur;
	u32 stride = vgs_stride_of(&vgs->cur);
	bool relayout = vgs->cur.mod_alternate != alternate ||
			vgs_tiling_of(vgs->cur.modifier) != vgs_tiling_of(mod);
	struct vgs_geom g;
	u32 bufsz;
	int ret;

	n.modifier = mod;
	n.mod_alternate = alternate;
	ret = vgs_check_mode(vgs, n.width, n.height, n.stride, n.fourcc,
			     vgs_layout_of(&n), &bufsz);
	if (ret)
		return ret;
	vgs->def.modifier = vgs->cur.modifier = mod;
	vgs->def.mod_alternate = vgs->cur.mod_alternate = alternate;
	vgs->shadow.modifier = mod;
	if (!relayout)
		return 0;
	if (bufsz != vgs->bufsz || stride != vgs_stride_of(&n)) {
		vgs_mode_changed(vgs, true);
		vgs_engine_sync(vgs);
		return 0;
	}
	vgs->gen++;
	if (vgs->fb_offset == vgs->front * vgs->bufsz) {
		vgs_geom_at(vgs, vgs->fb_offset, &g);
		vgs_draw(vgs, &g, vgs->frame, true);
		vgs->drawn_gen[vgs->front] = vgs->gen;
	}
	vgs_display_event(vgs, VGS_EV_PRIMARY);
	return 0;
}

static ssize_t modifier_store(struct device *dev, struct device_attribute *attr,
			      const char *buf, size_t count)
{
	struct vgs_dev *vgs = dev_to_vgs(dev);
	bool alternate = false;
	u64 mod;
	int ret;

	if (sysfs_streq(buf, "alternate")) {
		/* even buffers linear, odd ones x-tiled (vgs_modifier_of) */
		alternate = true;
		mod = DRM_FORMAT_MOD_LINEAR;
	} else if (sysfs_streq(buf, "linear")) {
		mod = DRM_FORMAT_MOD_LINEAR;
	} else if (sysfs_streq(buf, "x-tiled")) {
		mod = I915_FORMAT_MOD_X_TILED;
	} else if (sysfs_streq(buf, "y-tiled")) {
		mod = I915_FORMAT_MOD_Y_TILED;
	} else if (sysfs_streq(buf, "invalid")) {
		mod = DRM_FORMAT_MOD_INVALID;
	} else {
		ret = kstrtou64(buf, 0, &mod);
		if (ret)
			return ret;
	}
	mutex_lock(&vgs->lock);
	ret = vgs_set_modifier(vgs, mod, alternate);
	mutex_unlock(&vgs->lock);
	return ret ? ret : count;
}
static DEVICE_ATTR_RW(modifier);

/* simple numeric/boolean controls of def+cur */
enum vgs_knob {
	VGS_KNOB_FLIP_HZ,
	VGS_KNOB_NBUFS,
	VGS_KNOB_FRONT_BUFFER,
	VGS_KNOB_PAUSE,
	VGS_KNOB_ENABLE,
};

static ssize_t vgs_knob_show(struct device *dev, char *buf, enum vgs_knob k)
{
	struct vgs_dev *vgs = dev_to_vgs(dev);
	u32 v = 0;

	mutex_lock(&vgs->lock);
	switch (k) {
	case VGS_KNOB_FLIP_HZ:
		v = vgs->cur.flip_hz;
		break;
	case VGS_KNOB_NBUFS:
		v = vgs->cur.nbufs;
		break;
	case VGS_KNOB_FRONT_BUFFER:
		v = vgs->cur.front_buffer;
		break;
	case VGS_KNOB_PAUSE:
		v = vgs->cur.paused;
		break;
	case VGS_KNOB_ENABLE:
		v = vgs->cur.enabled;
		break;
	}
	mutex_unlock(&vgs->lock);
	return sysfs_emit(buf, "%u\n", v);
}

static ssize_t vgs_knob_store(struct device *dev, const char *buf,
			      size_t count, enum vgs_knob k)
{
	struct vgs_dev *vgs = dev_to_vgs(dev);
	bool b = false;
	u32 v = 0;
	int ret;

	if (k == VGS_KNOB_FLIP_HZ || k == VGS_KNOB_NBUFS)
		ret = kstrtou32(buf, 0, &v);
	else
		ret = kstrtobool(buf, &b);
	if (ret)
		return ret;
	if (k == VGS_KNOB_FLIP_HZ && (v < 1 || v > VGS_MAX_HZ))
		return -ERANGE;
	if (k == VGS_KNOB_NBUFS && (v < 1 || v > VGS_MAX_BUFS))
		return -ERANGE;

	mutex_lock(&vgs->lock);
	switch (k) {
	case VGS_KNOB_FLIP_HZ:
		vgs->def.flip_hz = vgs->cur.flip_hz = v;
		break;
	case VGS_KNOB_NBUFS:
		vgs->def.nbufs = v;
		vgs_set_nbufs(vgs, v);
		break;
	case VGS_KNOB_FRONT_BUFFER:
		vgs->def.front_buffer = vgs->cur.front_buffer = b;
		break;
	case VGS_KNOB_PAUSE:
		vgs->def.paused = vgs->cur.paused = b;
		break;
	case VGS_KNOB_ENABLE:
		vgs->def.enabled = b;
		if (b && !vgs->cur.enabled) {
			vgs->cur.enabled = true;
			vgs_mode_changed(vgs, true);
		} else {
			vgs->cur.enabled = b;
			vgs->shadow.enable = b;
		}
		break;
	}
	vgs_engine_sync(vgs);
	mutex_unlock(&vgs->lock);
	return count;
}

#define VGS_KNOB_ATTR(_name, _knob)					\
static ssize_t _name##_show(struct device *dev,				\
			    struct device_attribute *attr, char *buf)	\
{									\
	return vgs_knob_show(dev, buf, _knob);				\
}									\
static ssize_t _name##_store(struct device *dev,			\
			     struct device_attribute *attr,		\
			     const char *buf, size_t count)		\
{									\
	return vgs_knob_store(dev, buf, count, _knob);			\
}									\
static DEVICE_ATTR_RW(_name)

VGS_KNOB_ATTR(flip_hz, VGS_KNOB_FLIP_HZ);
VGS_KNOB_ATTR(nbufs, VGS_KNOB_NBUFS);
VGS_KNOB_ATTR(front_buffer, VGS_KNOB_FRONT_BUFFER);
VGS_KNOB_ATTR(pause, VGS_KNOB_PAUSE);
VGS_KNOB_ATTR(enable, VGS_KNOB_ENABLE);

static ssize_t cursor_show(struct device *dev, struct device_attribute *attr,
			   char *buf)
{
	struct vgs_dev *vgs = dev_to_vgs(dev);
	enum vgs_cursor_mode m;

	mutex_lock(&vgs->lock);
	m = vgs->cur.cursor;
	mutex_unlock(&vgs->lock);
	return sysfs_emit(buf, "%s\n", vgs_cursor_names[m]);
}

static ssize_t cursor_store(struct device *dev, struct device_attribute *attr,
			    const char *buf, size_t count)
{
	struct vgs_dev *vgs = dev_to_vgs(dev);
	int m = sysfs_match_string(vgs_cursor_names, buf);

	if (m < 0)
		return m;
	mutex_lock(&vgs->lock);
	vgs->def.cursor = vgs->cur.cursor = m;
	vgs_display_event(vgs, VGS_EV_CURSOR);
	mutex_unlock(&vgs->lock);
	return count;
}
static DEVICE_ATTR_RW(cursor);

static ssize_t cursor_pos_show(struct device *dev, struct device_attribute *attr,
			       char *buf)
{
	struct vgs_dev *vgs = dev_to_vgs(dev);
	s32 x, y;

	mutex_lock(&vgs->lock);
	x = vgs->cur.cursor_x;
	y = vgs->cur.cursor_y;
	mutex_unlock(&vgs->lock);
	return sysfs_emit(buf, "%d %d\n", x, y);
}

static ssize_t cursor_pos_store(struct device *dev, struct device_attribute *attr,
				const char *buf, size_t count)
{
	struct vgs_dev *vgs = dev_to_vgs(dev);
	s32 x, y;

	if (sscanf(buf, "%d %d", &x, &y) != 2)
		return -EINVAL;
	mutex_lock(&vgs->lock);
	vgs->def.cursor_x = vgs->cur.cursor_x = x;
	vgs->def.cursor_y = vgs->cur.cursor_y = y;
	if (vgs->cur.cursor == VGS_CURSOR_AUTO)
		vgs->def.cursor = vgs->cur.cursor = VGS_CURSOR_ON;
	vgs_display_event(vgs, VGS_EV_CURSOR);
	mutex_unlock(&vgs->lock);
	return count;
}
static DEVICE_ATTR_RW(cursor_pos);

static ssize_t cursor_hot_show(struct device *dev, struct device_attribute *attr,
			       char *buf)
{
	struct vgs_dev *vgs = dev_to_vgs(dev);
	u32 x, y;

	mutex_lock(&vgs->lock);
	x = vgs->cur.hot_x;
	y = vgs->cur.hot_y;
	mutex_unlock(&vgs->lock);
	if (x == VGS_NO_HOT && y == VGS_NO_HOT)
		return sysfs_emit(buf, "none\n");
	return sysfs_emit(buf, "%u %u\n", x, y);
}

static ssize_t cursor_hot_store(struct device *dev, struct device_attribute *attr,
				const char *buf, size_t count)
{
	struct vgs_dev *vgs = dev_to_vgs(dev);
	u32 x, y;

	if (sysfs_streq(buf, "none"))
		x = y = VGS_NO_HOT;
	else if (sscanf(buf, "%u %u", &x, &y) != 2)
		return -EINVAL;
	mutex_lock(&vgs->lock);
	vgs->def.hot_x = vgs->cur.hot_x = x;
	vgs->def.hot_y = vgs->cur.hot_y = y;
	vgs_display_event(vgs, VGS_EV_CURSOR);
	mutex_unlock(&vgs->lock);
	return count;
}
static DEVICE_ATTR_RW(cursor_hot);

static const char *vgs_errname(int err)
{
	switch (err) {
	case -EAGAIN:
		return "eagain";
	case -ENOMEM:
		return "enomem";
	case -EINVAL:
		return "einval";
	default:
		return "none";
	}
}

static ssize_t fault_show(struct device *dev, struct device_attribute *attr,
			  char *buf)
{
	struct vgs_dev *vgs = dev_to_vgs(dev);
	ssize_t n;

	mutex_lock(&vgs->lock);
	n = sysfs_emit(buf,
		       "query_error=%s\nquery_error_count=%u\n"
		       "get_error=%s\nget_error_count=%u\n"
		       "plane=%s\nreuse_id=%d\n",
		       vgs->q_err_count ? vgs_errname(vgs->q_err) : "none",
		       vgs->q_err_count,
		       vgs->g_err_count ? vgs_errname(vgs->g_err) : "none",
		       vgs->g_err_count, vgs_hostile_names[vgs->hostile],
		       vgs->reuse_id);
	mutex_unlock(&vgs->lock);
	return n;
}

static ssize_t fault_store(struct device *dev, struct device_attribute *attr,
			   const char *buf, size_t count)
{
	struct vgs_dev *vgs = dev_to_vgs(dev);
	char cmd[24], arg[24] = "";
	int nargs, err = 0, ret = 0;
	bool get = false;
	u32 n = 1;

	nargs = sscanf(buf, "%23s %23s", cmd, arg);
	if (nargs < 1)
		return -EINVAL;

	if (!strcmp(cmd, "eagain") || !strcmp(cmd, "get_eagain"))
		err = -EAGAIN;
	else if (!strcmp(cmd, "enomem") || !strcmp(cmd, "get_enomem"))
		err = -ENOMEM;
	else if (!strcmp(cmd, "einval") || !strcmp(cmd, "get_einval"))
		err = -EINVAL;
	if (err) {
		get = !strncmp(cmd, "get_", 4);
		if (nargs == 2 && kstrtou32(arg, 0, &n))
			return -EINVAL;
	}

	mutex_lock(&vgs->lock);
	if (err && get) {
		vgs->g_err = err;
		vgs->g_err_count = n;
	} else if (err) {
		vgs->q_err = err;
		vgs->q_err_count = n;
	} else if (!strcmp(cmd, "plane") && nargs == 2) {
		ret = match_string(vgs_hostile_names, VGS_HOSTILE_NR, arg);
		if (ret >= 0) {
			vgs->hostile = ret;
			ret = 0;
		}
	} else if (!strcmp(cmd, "reuse_id")) {
		vgs->reuse_id = true;
	} else if (!strcmp(cmd, "reset")) {
		vgs_reset_locked(vgs);
	} else if (!strcmp(cmd, "none") || !strcmp(cmd, "clear")) {
		vgs->q_err_count = 0;
		vgs->g_err_count = 0;
		vgs->hostile = VGS_HOSTILE_NONE;
		vgs->reuse_id = false;
	} else {
		ret = -EINVAL;
	}
	mutex_unlock(&vgs->lock);
	return ret ? ret : count;
}
static DEVICE_ATTR_RW(fault);

static int vgs_cmp_u32(const void *a, const void *b)
{
	u32 x = *(const u32 *)a, y = *(const u32 *)b;

	return x < y ? -1 : x > y;
}

static ssize_t stats_show(struct device *dev, struct device_attribute *attr,
			  char *buf)
{
	struct vgs_dev *vgs = dev_to_vgs(dev);
	struct vgs_stats *st;
	u32 n, p50 = 0, p99 = 0, frame;
	bool pending, armed;
	ssize_t len = 0;
	unsigned int i;

	st = kmalloc(sizeof(*st), GFP_KERNEL);
	if (!st)
		return -ENOMEM;
	mutex_lock(&vgs->lock);
	*st = vgs->st;
	frame = vgs->frame;
	pending = vgs->flip_pending;
	armed = vgs->display_trigger != NULL;
	mutex_unlock(&vgs->lock);

	n = min_t(u64, st->lat_count, VGS_LAT_RING);
	if (n) {
		sort(st->ring, n, sizeof(u32), vgs_cmp_u32, NULL);
		p50 = st->ring[DIV_ROUND_UP(n * 50, 100) - 1];
		p99 = st->ring[DIV_ROUND_UP(n * 99, 100) - 1];
	}

	len += sysfs_emit_at(buf, len, "queries=%llu\n", st->queries);
	len += sysfs_emit_at(buf, len, "queries_primary=%llu\n", st->queries_primary);
	len += sysfs_emit_at(buf, len, "queries_cursor=%llu\n", st->queries_cursor);
	len += sysfs_emit_at(buf, len, "queries_disabled=%llu\n", st->queries_disabled);
	len += sysfs_emit_at(buf, len, "query_errors=%llu\n", st->query_errors);
	len += sysfs_emit_at(buf, len, "probes=%llu\n", st->probes);
	len += sysfs_emit_at(buf, len, "exports=%lld\n",
			     (s64)atomic64_read(&vgs->exports));
	len += sysfs_emit_at(buf, len, "export_errors=%lld\n",
			     (s64)atomic64_read(&vgs->export_errors));
	len += sysfs_emit_at(buf, len, "mmap_refused=%lld\n",
			     (s64)atomic64_read(&vgs->mmap_refused));
	len += sysfs_emit_at(buf, len, "vmap_refused=%lld\n",
			     (s64)atomic64_read(&vgs->vmap_refused));
	len += sysfs_emit_at(buf, len, "cpu_access_refused=%lld\n",
			     (s64)atomic64_read(&vgs->cpu_access_refused));
	len += sysfs_emit_at(buf, len, "region_mmaps=%lld\n",
			     (s64)atomic64_read(&vgs->region_mmaps));
	len += sysfs_emit_at(buf, len, "live_dmabufs=%d\n",
			     atomic_read(&vgs->live_dmabufs));
	len += sysfs_emit_at(buf, len, "live_buffers=%d\n",
			     atomic_read(&vgs->live_bufs));
	len += sysfs_emit_at(buf, len, "ids_created=%llu\n", st->ids_created);
	len += sysfs_emit_at(buf, len, "flips_made=%llu\n", st->flips_made);
	len += sysfs_emit_at(buf, len, "flips_seen=%llu\n", st->flips_seen);
	len += sysfs_emit_at(buf, len, "flips_missed=%llu\n", st->flips_missed);
	len += sysfs_emit_at(buf, len, "flip_pending=%d\n", pending);
	len += sysfs_emit_at(buf, len, "frames_drawn=%llu\n", st->frames_drawn);
	len += sysfs_emit_at(buf, len, "frame=%u\n", frame);
	len += sysfs_emit_at(buf, len, "ticks_dropped=%lld\n",
			     (s64)atomic64_read(&vgs->ticks_dropped));
	len += sysfs_emit_at(buf, len, "vblank_timer_late=%lld\n",
			     (s64)atomic64_read(&vgs->timer_late));
	len += sysfs_emit_at(buf, len, "flips_deferred=%lld\n",
			     (s64)atomic64_read(&vgs->flip_late));
	len += sysfs_emit_at(buf, len, "flip_late_max_us=%lld\n",
			     (s64)atomic64_read(&vgs->flip_late_max_ns) /
			     NSEC_PER_USEC);
	len += sysfs_emit_at(buf, len, "resets=%llu\n", st->resets);
	len += sysfs_emit_at(buf, len, "display_events=%llu\n",
			     st->display_events);
	len += sysfs_emit_at(buf, len, "display_events_primary=%llu\n",
			     st->display_events_primary);
	len += sysfs_emit_at(buf, len, "display_events_cursor=%llu\n",
			     st->display_events_cursor);
	len += sysfs_emit_at(buf, len, "display_events_masked=%llu\n",
			     st->display_events_masked);
	len += sysfs_emit_at(buf, len, "display_arms=%llu\n", st->display_arms);
	len += sysfs_emit_at(buf, len, "display_disarms=%llu\n",
			     st->display_disarms);
	len += sysfs_emit_at(buf, len, "display_disarm_refused=%llu\n",
			     st->display_disarm_refused);
	len += sysfs_emit_at(buf, len, "display_armed=%d\n", armed);
	len += sysfs_emit_at(buf, len, "storm_signals=%lld\n",
			     (s64)atomic64_read(&vgs->storm_signals));
	len += sysfs_emit_at(buf, len, "latency_samples=%llu\n", st->lat_count);
	len += sysfs_emit_at(buf, len, "latency_min_us=%llu\n", st->lat_min);
	len += sysfs_emit_at(buf, len, "latency_avg_us=%llu\n",
			     st->lat_count ? div64_u64(st->lat_sum, st->lat_count) : 0);
	len += sysfs_emit_at(buf, len, "latency_max_us=%llu\n", st->lat_max);
	len += sysfs_emit_at(buf, len, "latency_p50_us=%u\n", p50);
	len += sysfs_emit_at(buf, len, "latency_p99_us=%u\n", p99);
	for (i = 0; i < ARRAY_SIZE(vgs_lat_bounds); i++)
		len += sysfs_emit_at(buf, len, "latency_le_%uus=%llu\n",
				     vgs_lat_bounds[i], st->hist[i]);
	len += sysfs_emit_at(buf, len, "latency_gt_%uus=%llu\n",
			     vgs_lat_bounds[ARRAY_SIZE(vgs_lat_bounds) - 1],
			     st->hist[ARRAY_SIZE(vgs_lat_bounds)]);
	kfree(st);
	return len;
}
static DEVICE_ATTR_RO(stats);

static ssize_t reset_stats_store(struct device *dev, struct device_attribute *attr,
				 const char *buf, size_t count)
{
	struct vgs_dev *vgs = dev_to_vgs(dev);

	mutex_lock(&vgs->lock);
	memset(&vgs->st, 0, sizeof(vgs->st));
	vgs->ring_pos = 0;
	atomic64_set(&vgs->exports, 0);
	atomic64_set(&vgs->export_errors, 0);
	atomic64_set(&vgs->ticks_dropped, 0);
	atomic64_set(&vgs->timer_late, 0);
	atomic64_set(&vgs->flip_late, 0);
	atomic64_set(&vgs->flip_late_max_ns, 0);
	atomic64_set(&vgs->storm_signals, 0);
	atomic64_set(&vgs->mmap_refused, 0);
	atomic64_set(&vgs->vmap_refused, 0);
	atomic64_set(&vgs->cpu_access_refused, 0);
	mutex_unlock(&vgs->lock);
	return count;
}
static DEVICE_ATTR_WO(reset_stats);

/* storm: signal the display event N times a second, whatever happens */
static ssize_t storm_show(struct device *dev, struct device_attribute *attr,
			  char *buf)
{
	return sysfs_emit(buf, "%u\n", READ_ONCE(dev_to_vgs(dev)->storm_hz));
}

static ssize_t storm_store(struct device *dev, struct device_attribute *attr,
			   const char *buf, size_t count)
{
	struct vgs_dev *vgs = dev_to_vgs(dev);
	u32 hz;
	int ret;

	ret = kstrtou32(buf, 0, &hz);
	if (ret)
		return ret;
	if (hz > VGS_MAX_STORM_HZ)
		return -ERANGE;
	mutex_lock(&vgs->lock);
	if (vgs->stopping) {
		mutex_unlock(&vgs->lock);
		return -ENODEV;
	}
	mutex_unlock(&vgs->lock);
	vgs_storm_set(vgs, hz);
	return count;
}
static DEVICE_ATTR_RW(storm);

static ssize_t step_store(struct device *dev, struct device_attribute *attr,
			  const char *buf, size_t count)
{
	struct vgs_dev *vgs = dev_to_vgs(dev);
	bool paused;
	u32 n, i;
	int ret;

	ret = kstrtou32(buf, 0, &n);
	if (ret)
		return ret;
	if (n > VGS_MAX_STEP)
		return -ERANGE;
	mutex_lock(&vgs->lock);
	paused = vgs->cur.paused;
	mutex_unlock(&vgs->lock);
	if (!paused)
		return -EBUSY;
	for (i = 0; i < n; i++)
		vgs_tick(vgs, true);
	return count;
}
static DEVICE_ATTR_WO(step);

static ssize_t state_show(struct device *dev, struct device_attribute *attr,
			  char *buf)
{
	struct vgs_dev *vgs = dev_to_vgs(dev);
	const struct vgs_format *f;
	ssize_t len = 0;

	mutex_lock(&vgs->lock);
	f = vgs_find_format(vgs->cur.fourcc);
	len += sysfs_emit_at(buf, len, "enabled=%d\n", vgs->cur.enabled);
	len += sysfs_emit_at(buf, len, "mode=%ux%u\n", vgs->cur.width, vgs->cur.height);
	len += sysfs_emit_at(buf, len, "format=%s\n", f ? f->name : "?");
	len += sysfs_emit_at(buf, len, "fourcc=0x%08x\n", vgs->cur.fourcc);
	len += sysfs_emit_at(buf, len, "modifier=0x%016llx\n", vgs_modifier_of(vgs));
	len += sysfs_emit_at(buf, len, "modifier_alternate=%d\n",
			     vgs->cur.mod_alternate);
	len += sysfs_emit_at(buf, len, "stride=%u\n", vgs_stride_of(&vgs->cur));
	len += sysfs_emit_at(buf, len, "buffer_size=%u\n", vgs->bufsz);
	len += sysfs_emit_at(buf, len, "nbufs=%u\n", vgs->nbufs_eff);
	len += sysfs_emit_at(buf, len, "front=%u\n", vgs->front);
	len += sysfs_emit_at(buf, len, "fb_offset=0x%x\n", vgs->fb_offset);
	len += sysfs_emit_at(buf, len, "frame=%u\n", vgs->frame);
	len += sysfs_emit_at(buf, len, "paused=%d\n", vgs->cur.paused);
	len += sysfs_emit_at(buf, len, "front_buffer=%d\n", vgs->cur.front_buffer);
	len += sysfs_emit_at(buf, len, "flip_hz=%u\n", vgs->cur.flip_hz);
	len += sysfs_emit_at(buf, len, "cursor=%s\n", vgs_cursor_names[vgs->cur.cursor]);
	len += sysfs_emit_at(buf, len, "cursor_pos=%d %d\n",
			     vgs->cur.cursor_x, vgs->cur.cursor_y);
	len += sysfs_emit_at(buf, len, "cursor_offset=0x%x\n", vgs->cursor_offset);
	len += sysfs_emit_at(buf, len, "cursor_size=%u\n", vgs->cursor_size);
	len += sysfs_emit_at(buf, len, "vram_size=%u\n", vgs->vram_size);
	len += sysfs_emit_at(buf, len, "primary_id=%u\n", vgs->last_primary_id);
	len += sysfs_emit_at(buf, len, "cursor_id=%u\n", vgs->last_cursor_id);
	len += sysfs_emit_at(buf, len, "listed_ids=%u\n", vgs->nr_listed);
	len += sysfs_emit_at(buf, len, "next_id=%u\n", vgs->next_id);
	len += sysfs_emit_at(buf, len, "link=%s\n", vgs_link_down(vgs) ? "down" : "up");
	len += sysfs_emit_at(buf, len, "profile=%s\n",
			     vgs_profile_names[vgs->profile]);
	mutex_unlock(&vgs->lock);
	return len;
}
static DEVICE_ATTR_RO(state);

static ssize_t edid_link_show(struct device *dev, struct device_attribute *attr,
			      char *buf)
{
	struct vgs_dev *vgs = dev_to_vgs(dev);
	u32 s;

	mutex_lock(&vgs->lock);
	s = vgs->edid_regs.link_state;
	mutex_unlock(&vgs->lock);
	return sysfs_emit(buf, "%s\n",
			  s == VFIO_DEVICE_GFX_LINK_STATE_DOWN ? "down" : "up");
}

static ssize_t edid_link_store(struct device *dev, struct device_attribute *attr,
			       const char *buf, size_t count)
{
	struct vgs_dev *vgs = dev_to_vgs(dev);
	u32 s;

	if (sysfs_streq(buf, "up"))
		s = VFIO_DEVICE_GFX_LINK_STATE_UP;
	else if (sysfs_streq(buf, "down"))
		s = VFIO_DEVICE_GFX_LINK_STATE_DOWN;
	else
		return -EINVAL;
	mutex_lock(&vgs->lock);
	vgs_set_link(vgs, s);
	mutex_unlock(&vgs->lock);
	return count;
}
static DEVICE_ATTR_RW(edid_link);

static ssize_t edid_follow_show(struct device *dev, struct device_attribute *attr,
				char *buf)
{
	struct vgs_dev *vgs = dev_to_vgs(dev);

	return sysfs_emit(buf, "%d\n", READ_ONCE(vgs->edid_follow));
}

static ssize_t edid_follow_store(struct device *dev, struct device_attribute *attr,
				 const char *buf, size_t count)
{
	struct vgs_dev *vgs = dev_to_vgs(dev);
	bool b;
	int ret;

	ret = kstrtobool(buf, &b);
	if (ret)
		return ret;
	mutex_lock(&vgs->lock);
	vgs->edid_follow = b;
	mutex_unlock(&vgs->lock);
	return count;
}
static DEVICE_ATTR_RW(edid_follow);

/* edid_region 0: the EDID region is absent (size 0, no capability) */
static ssize_t edid_region_show(struct device *dev,
				struct device_attribute *attr, char *buf)
{
	struct vgs_dev *vgs = dev_to_vgs(dev);

	return sysfs_emit(buf, "%d\n", !READ_ONCE(vgs->edid_hidden));
}

static ssize_t edid_region_store(struct device *dev,
				 struct device_attribute *attr,
				 const char *buf, size_t count)
{
	struct vgs_dev *vgs = dev_to_vgs(dev);
	bool b;
	int ret;

	ret = kstrtobool(buf, &b);
	if (ret)
		return ret;
	WRITE_ONCE(vgs->edid_hidden, !b);
	return count;
}
static DEVICE_ATTR_RW(edid_region);

static ssize_t edid_show(struct device *dev, struct device_attribute *attr,
			 char *buf)
{
	struct vgs_dev *vgs = dev_to_vgs(dev);
	ssize_t len = 0;

	mutex_lock(&vgs->lock);
	len += sysfs_emit_at(buf, len, "link=%s\n",
			     vgs->edid_regs.link_state == VFIO_DEVICE_GFX_LINK_STATE_DOWN ?
			     "down" : "up");
	len += sysfs_emit_at(buf, len, "size=%u\n", vgs->edid_regs.edid_size);
	len += sysfs_emit_at(buf, len, "valid=%d\n", vgs->edid_valid);
	len += sysfs_emit_at(buf, len, "preferred=%ux%u\n",
			     vgs->edid_valid ? vgs->edid_w : 0,
			     vgs->edid_valid ? vgs->edid_h : 0);
	len += sysfs_emit_at(buf, len, "applied=%d\n", vgs->edid_applied);
	len += sysfs_emit_at(buf, len, "max=%ux%u\n", vgs->edid_regs.max_xres,
			     vgs->edid_regs.max_yres);
	mutex_unlock(&vgs->lock);
	return len;
}
static DEVICE_ATTR_RO(edid);

/* profile: default | gvt (docs/vgpusim.md, "Profiles") */
static ssize_t profile_show(struct device *dev, struct device_attribute *attr,
			    char *buf)
{
	return sysfs_emit(buf, "%s\n",
			  vgs_profile_names[READ_ONCE(dev_to_vgs(dev)->profile)]);
}

static ssize_t profile_store(struct device *dev, struct device_attribute *attr,
			     const char *buf, size_t count)
{
	struct vgs_dev *vgs = dev_to_vgs(dev);
	int p = sysfs_match_string(vgs_profile_names, buf);

	const struct vgs_format *f;
	enum vgs_profile was;
	int ret = 0;

	if (p < 0)
		return -EINVAL;
	mutex_lock(&vgs->lock);
	was = vgs->profile;
	if (was == p)
		goto out;
	WRITE_ONCE(vgs->profile, p);
	/* a format the new profile does not show: XRGB8888, stride auto */
	f = vgs_find_format(vgs->cur.fourcc);
	if (!vgs_format_ok(vgs, f) ||
	    !vgs_format_ok(vgs, vgs_find_format(vgs->def.fourcc))) {
		ret = vgs_set_geometry(vgs, vgs->cur.width, vgs->cur.height, 0,
				       DRM_FORMAT_XRGB8888);
		if (ret)
			WRITE_ONCE(vgs->profile, was);
		goto out;
	}
	/* new ids (the profile is part of them), redrawn: as a mode change */
	vgs_mode_changed(vgs, true);
	vgs_engine_sync(vgs);
out:
	mutex_unlock(&vgs->lock);
	return ret ? ret : count;
}
static DEVICE_ATTR_RW(profile);

/* cursor_size: 64, 128 or 256; the image's pixels, see vgs_draw_cursor() */
static ssize_t cursor_size_show(struct device *dev,
				struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", READ_ONCE(dev_to_vgs(dev)->cursor_size));
}

static ssize_t cursor_size_store(struct device *dev,
				 struct device_attribute *attr,
				 const char *buf, size_t count)
{
	struct vgs_dev *vgs = dev_to_vgs(dev);
	u32 size, off;
	int ret;

	ret = kstrtou32(buf, 0, &size);
	if (ret)
		return ret;
	if (size != 64 && size != 128 && size != 256)
		return -EINVAL;
	off = vgs->vram_size - VGS_CURSOR_AREA(size);
	mutex_lock(&vgs->lock);
	/* the mode's buffers stay below the cursor image */
	if (vgs->bufsz > off) {
		mutex_unlock(&vgs->lock);
		return -ENOSPC;
	}
	WRITE_ONCE(vgs->cursor_size, size);
	vgs->cursor_offset = off;
	vgs_recompute_bufs(vgs);
	if (vgs->front >= vgs->nbufs_eff)
		vgs_show_buffer(vgs, 0, true);
	vgs_draw_cursor(vgs);
	vgs->def.hot_x = vgs->cur.hot_x = size / 2;
	vgs->def.hot_y = vgs->cur.hot_y = size / 2;
	vgs_display_event(vgs, VGS_EV_CURSOR);
	mutex_unlock(&vgs->lock);
	return count;
}
static DEVICE_ATTR_RW(cursor_size);

/*
 * importer_vmap (write-only): the fd of a vgpusim dma-buf in the writing
 * process; the device vmaps it as a kernel importer's dma_buf_vmap() would
 * (the exporter's vmap op, under the reservation lock), checks the mapping
 * shows the buffer's first bytes. The write fails with vmap's error (gvt:
 * ENXIO); EBADF for no dma-buf, EINVAL for another exporter's. The op is
 * called directly: dma_buf_vmap() meets an exporter's failure with a
 * WARN_ON_ONCE (as it would for i915's proxy), which the rig counts as a
 * failure; what the importer gets back is the same error.
 */
static ssize_t importer_vmap_store(struct device *dev,
				   struct device_attribute *attr,
				   const char *buf, size_t count)
{
	struct iosys_map map;
	struct dma_buf *db;
	struct vgs_buf *b;
	int fd, ret;

	ret = kstrtoint(buf, 0, &fd);
	if (ret)
		return ret;
	db = dma_buf_get(fd);
	if (IS_ERR(db))
		return PTR_ERR(db);
	if (db->ops != &vgs_dmabuf_ops) {
		ret = -EINVAL;
		goto out;
	}
	b = db->priv;
	iosys_map_clear(&map);
	dma_resv_lock(db->resv, NULL);
	ret = db->ops->vmap(db, &map);
	dma_resv_unlock(db->resv);
	/* nothing to unmap: VRAM stays vmapped (no vunmap op) */
	if (!ret && (map.is_iomem || !map.vaddr ||
		     memcmp(map.vaddr, b->vgs->vram + b->p.offset, 64)))
		ret = -EIO;
out:
	dma_buf_put(db);
	return ret ? ret : count;
}
static DEVICE_ATTR_WO(importer_vmap);

static struct attribute *vgs_attrs[] = {
	&dev_attr_profile.attr,
	&dev_attr_cursor_size.attr,
	&dev_attr_importer_vmap.attr,
	&dev_attr_mode.attr,
	&dev_attr_format.attr,
	&dev_attr_stride.attr,
	&dev_attr_modifier.attr,
	&dev_attr_flip_hz.attr,
	&dev_attr_nbufs.attr,
	&dev_attr_front_buffer.attr,
	&dev_attr_pause.attr,
	&dev_attr_enable.attr,
	&dev_attr_step.attr,
	&dev_attr_storm.attr,
	&dev_attr_cursor.attr,
	&dev_attr_cursor_pos.attr,
	&dev_attr_cursor_hot.attr,
	&dev_attr_fault.attr,
	&dev_attr_stats.attr,
	&dev_attr_reset_stats.attr,
	&dev_attr_state.attr,
	&dev_attr_edid_link.attr,
	&dev_attr_edid_follow.attr,
	&dev_attr_edid_region.attr,
	&dev_attr_edid.attr,
	NULL,
};

/*
 * frame_times: binary, VGS_FRAME_LOG records of two little-endian u64,
 * { frame, CLOCK_MONOTONIC ns when it became visible (after drawing, at
 * the flip) }, at index frame % VGS_FRAME_LOG; never-drawn slots are 0.
 * A viewer in the same VM joins the frame numbers it decodes with these
 * to measure flip-to-viewer latency.
 */
static ssize_t frame_times_read(struct file *file, struct kobject *kobj,
				struct bin_attribute *attr, char *buf,
				loff_t off, size_t count)
{
	struct vgs_dev *vgs = dev_to_vgs(kobj_to_dev(kobj));
	size_t size = sizeof(vgs->frame_log);

	if (off >= size)
		return 0;
	count = min_t(size_t, count, size - off);
	mutex_lock(&vgs->lock);
	memcpy(buf, (char *)vgs->frame_log + off, count);
	mutex_unlock(&vgs->lock);
	return count;
}
static BIN_ATTR_RO(frame_times, VGS_FRAME_LOG * sizeof(struct vgs_frame_time));

static struct bin_attribute *vgs_bin_attrs[] = {
	&bin_attr_frame_times,
	NULL,
};

static const struct attribute_group vgs_attr_group = {
	.name = VGS_NAME,
	.attrs = vgs_attrs,
	.bin_attrs = vgs_bin_attrs,
};

static const struct attribute_group *vgs_attr_groups[] = {
	&vgs_attr_group,
	NULL,
};

/* ------------------------------------------------------------------ */
/* mdev driver, parent, module                                         */

static int vgs_probe(struct mdev_device *mdev)
{
	struct vgs_dev *vgs;
	int ret;

	vgs = vfio_alloc_device(vgs_dev, vdev, &mdev->dev, &vgs_dev_ops);
	if (IS_ERR(vgs))
		return PTR_ERR(vgs);
	dev_set_drvdata(&mdev->dev, vgs);

	ret = vfio_register_emulated_iommu_dev(&vgs->vdev);
	if (ret) {
		dev_set_drvdata(&mdev->dev, NULL);
		vfio_put_device(&vgs->vdev);
		return ret;
	}

	mutex_lock(&vgs->lock);
	vgs->stopping = false;
	vgs_engine_sync(vgs);
	mutex_unlock(&vgs->lock);
	vgs_storm_set(vgs, min_t(u32, storm_hz, VGS_MAX_STORM_HZ));
	dev_info(&mdev->dev, "%u MiB VRAM, mode %ux%u\n", vgs->vram_size >> 20,
		 vgs->cur.width, vgs->cur.height);
	return 0;
}

static void vgs_remove(struct mdev_device *mdev)
{
	struct vgs_dev *vgs = dev_get_drvdata(&mdev->dev);

	vfio_unregister_group_dev(&vgs->vdev);
	vgs_engine_stop(vgs);
	dev_set_drvdata(&mdev->dev, NULL);
	/* exported dma-bufs may keep the device (and VRAM) a while longer */
	vfio_put_device(&vgs->vdev);
}

static ssize_t vgs_show_description(struct mdev_type *mtype, char *buf)
{
	return sysfs_emit(buf, "simulated display vGPU, %u MiB VRAM, max %ux%u\n",
			  vgs_vram_mb(), max_width, max_height);
}

static struct mdev_type vgs_type = {
	.sysfs_name = "1",		/* directory name: vgpusim-1 */
	.pretty_name = "vgpusim simulated display vGPU",
};

static struct mdev_type *vgs_types[] = {
	&vgs_type,
};

static struct mdev_driver vgs_driver = {
	.device_api = VFIO_DEVICE_API_PCI_STRING,
	.driver = {
		.name = VGS_NAME,
		.owner = THIS_MODULE,
		.mod_name = KBUILD_MODNAME,
		.dev_groups = vgs_attr_groups,
	},
	.probe = vgs_probe,
	.remove = vgs_remove,
	.show_description = vgs_show_description,
};

static const struct class vgs_class = {
	.name = VGS_NAME,
};

static void vgs_parent_release(struct device *dev)
{
}

static struct device vgs_parent_dev = {
	.init_name = VGS_NAME,
	.class = &vgs_class,
	.release = vgs_parent_release,
};

static struct mdev_parent vgs_parent;

static int __init vgs_module_init(void)
{
	int ret;

	if (max_width < VGS_MIN_W || max_height < VGS_MIN_H ||
	    max_width > 16384 || max_height > 16384) {
		pr_err("max_width/max_height out of range\n");
		return -EINVAL;
	}
	ret = match_string(vgs_profile_names, VGS_PROFILE_NR, profile);
	if (ret < 0) {
		pr_err("profile=%s: not one of default, gvt, region\n", profile);
		return -EINVAL;
	}
	vgs_def_profile = ret;
	vgs_driver.max_instances = max_instances;

	vgs_vblank_wq = alloc_workqueue("vgpusim_vblank",
					WQ_HIGHPRI | WQ_UNBOUND, 0);
	if (!vgs_vblank_wq)
		return -ENOMEM;
	ret = mdev_register_driver(&vgs_driver);
	if (ret)
		goto err_wq;
	ret = class_register(&vgs_class);
	if (ret)
		goto err_driver;
	ret = device_register(&vgs_parent_dev);
	if (ret)
		goto err_put;
	ret = mdev_register_parent(&vgs_parent, &vgs_parent_dev, &vgs_driver,
				   vgs_types, ARRAY_SIZE(vgs_types));
	if (ret)
		goto err_device;
	return 0;

err_device:
	device_del(&vgs_parent_dev);
err_put:
	put_device(&vgs_parent_dev);
	class_unregister(&vgs_class);
err_driver:
	mdev_unregister_driver(&vgs_driver);
err_wq:
	destroy_workqueue(vgs_vblank_wq);
	return ret;
}

static void __exit vgs_module_exit(void)
{
	mdev_unregister_parent(&vgs_parent);
	device_unregister(&vgs_parent_dev);
	class_unregister(&vgs_class);
	mdev_unregister_driver(&vgs_driver);
	destroy_workqueue(vgs_vblank_wq);
}

module_init(vgs_module_init);
module_exit(vgs_module_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Simulated vGPU mediated device with dma-buf display planes");
MODULE_IMPORT_NS(DMA_BUF);
