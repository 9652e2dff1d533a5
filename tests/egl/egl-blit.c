/*
 * The EGL tests' blitter; see egl-blit.h. It reaches the EGL layer only
 * through its public API (include/ui/dmabuf-egl.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"

#include "qapi/error.h"
#include "standard-headers/drm/drm_fourcc.h"
#include "egl-blit.h"

/* Bound on glGetError() calls when GL recorded several errors. */
#define GL_ERRORS_MAX           16

typedef struct BlitProgram {
    GLuint prog;                /* 0 until a draw needs this sampler type */
    GLint u_dst;
    GLint u_tex;
    GLint u_opaque;
} BlitProgram;

struct EglBlit {
    DmabufEglContext *ctx;      /* borrowed */
    BlitProgram prog_2d;
    BlitProgram prog_external;
    GLuint vbo;                 /* the unit square; 0 until the first draw */
    unsigned int n_targets;     /* live targets, for free() */
};

struct EglBlitTarget {
    EglBlit *blit;              /* borrowed */
    GLuint tex;
    GLuint fbo;
    uint32_t width;
    uint32_t height;
    uint8_t *readback;          /* width * height RGBA, allocated lazily */
};

/*
 * The first GL error recorded since the last call, or GL_NO_ERROR; the
 * others (GL keeps one per kind) are dropped.
 */
static GLenum gl_take_error(void)
{
    GLenum first = glGetError();
    unsigned int n = 0;

    while (first != GL_NO_ERROR && n++ < GL_ERRORS_MAX &&
           glGetError() != GL_NO_ERROR) {
        continue;
    }
    return first;
}

/* Returns: true, or false with @errp set if GL recorded an error. */
static bool gl_ok(Error **errp, const char *what)
{
    GLenum err = gl_take_error();

    if (err != GL_NO_ERROR) {
        error_setg(errp, "%s failed: GL error 0x%04x", what, err);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* programs */

/* Compiles @head followed by @body. Returns: the shader, or 0. */
static GLuint compile_shader(GLenum type, const char *head, const char *body,
                             Error **errp)
{
    const char *src[] = { head, body };
    GLuint sh = glCreateShader(type);
    GLint ok = GL_FALSE;

    glShaderSource(sh, G_N_ELEMENTS(src), src, NULL);
    glCompileShader(sh);
    glGetShaderiv(sh, GL_COMPILE_STATUS, &ok);
    if (!ok) {
        char log[512] = "";

        glGetShaderInfoLog(sh, sizeof(log), NULL, log);
        error_setg(errp, "GL shader does not compile: %s", log);
        glDeleteShader(sh);
        return 0;
    }
    return sh;
}

static const char vertex_src[] =
    "#version 100\n"
    "attribute vec2 a_pos;\n"       /* unit square, (0,0) = image top left */
    "uniform vec4 u_dst;\n"         /* left, top, right, bottom in NDC */
    "varying vec2 v_tex;\n"
    "void main()\n"
    "{\n"
    "    v_tex = a_pos;\n"
    "    gl_Position = vec4(mix(u_dst.xy, u_dst.zw, a_pos), 0.0, 1.0);\n"
    "}\n";

/* The fragment shader after a head that defines SAMPLER. */
static const char fragment_src[] =
    "#ifdef GL_FRAGMENT_PRECISION_HIGH\n"
    "precision highp float;\n"
    "#else\n"
    "precision mediump float;\n"
    "#endif\n"
    "uniform SAMPLER u_tex;\n"
    "uniform float u_opaque;\n"
    "varying vec2 v_tex;\n"
    "void main()\n"
    "{\n"
    "    vec4 c = texture2D(u_tex, v_tex);\n"
    "    gl_FragColor = vec4(c.rgb, max(c.a, u_opaque));\n"
    "}\n";

static const char fragment_2d_head[] =
    "#version 100\n"
    "#define SAMPLER sampler2D\n";

static const char fragment_external_head[] =
    "#version 100\n"
    "#extension GL_OES_EGL_image_external : require\n"
    "#define SAMPLER samplerExternalOES\n";

static bool build_program(BlitProgram *p, const char *fragment_head,
                          Error **errp)
{
    GLuint vs, fs;
    GLint ok = GL_FALSE;

    vs = compile_shader(GL_VERTEX_SHADER, vertex_src, "", errp);
    if (!vs) {
        return false;
    }
    fs = compile_shader(GL_FRAGMENT_SHADER, fragment_head, fragment_src,
                        errp);
    if (!fs) {
        glDeleteShader(vs);
        return false;
    }
    p->prog = glCreateProgram();
    glAttachShader(p->prog, vs);
    glAttachShader(p->prog, fs);
    glBindAttribLocation(p->prog, 0, "a_pos");
    glLinkProgram(p->prog);
    glDeleteShader(vs); /* the program keeps them until it goes */
    glDeleteShader(fs);
    glGetProgramiv(p->prog, GL_LINK_STATUS, &ok);
    if (!ok) {
        char log[512] = "";

        glGetProgramInfoLog(p->prog, sizeof(log), NULL, log);
        error_setg(errp, "GL program does not link: %s", log);
        glDeleteProgram(p->prog);
        p->prog = 0;
        return false;
    }
    p->u_dst = glGetUniformLocation(p->prog, "u_dst");
    p->u_tex = glGetUniformLocation(p->prog, "u_tex");
    p->u_opaque = glGetUniformLocation(p->prog, "u_opaque");
    return true;
}

static BlitProgram *program_of(EglBlit *b, const DmabufEglImage *img)
{
    return dmabuf_egl_image_gl_target(img) == GL_TEXTURE_EXTERNAL_OES
           ? &b->prog_external : &b->prog_2d;
}

/*
 * The quad and the program that draws @img (may be NULL), each built once,
 * at the first draw that needs it. Called with the context current.
 */
static bool setup_draw(EglBlit *b, const DmabufEglImage *img, Error **errp)
{
    static const GLfloat square[] = { 0, 0, 1, 0, 0, 1, 1, 1 };
    BlitProgram *p = img ? program_of(b, img) : NULL;

    if (p && !p->prog &&
        !build_program(p, p == &b->prog_external ? fragment_external_head
                                                 : fragment_2d_head, errp)) {
        return false;
    }
    if (b->vbo) {
        return true;
    }
    glGenBuffers(1, &b->vbo);
    glBindBuffer(GL_ARRAY_BUFFER, b->vbo);
    glBufferData(GL_ARRAY_BUFFER, sizeof(square), square, GL_STATIC_DRAW);
    glBindBuffer(GL_ARRAY_BUFFER, 0);
    return gl_ok(errp, "blit set-up");
}

EglBlit *egl_blit_new(DmabufEglContext *ctx)
{
    EglBlit *b = g_new0(EglBlit, 1);

    b->ctx = ctx;
    return b;
}

void egl_blit_free(EglBlit *b)
{
    DmabufEglSavedCurrent saved;

    if (!b) {
        return;
    }
    assert(b->n_targets == 0); /* targets borrow the blitter */
    if ((b->prog_2d.prog || b->prog_external.prog || b->vbo) &&
        dmabuf_egl_context_make_current(b->ctx, &saved, NULL)) {
        if (b->prog_2d.prog) {
            glDeleteProgram(b->prog_2d.prog);
        }
        if (b->prog_external.prog) {
            glDeleteProgram(b->prog_external.prog);
        }
        if (b->vbo) {
            glDeleteBuffers(1, &b->vbo);
        }
        dmabuf_egl_context_restore(b->ctx, &saved);
    }
    g_free(b);
}

/* ------------------------------------------------------------------ */
/* targets */

EglBlitTarget *egl_blit_target_new(EglBlit *b, uint32_t width,
                                   uint32_t height, Error **errp)
{
    EglBlitTarget *t;
    DmabufEglSavedCurrent saved;
    GLenum status;
    GLuint tex = 0, fbo = 0;
    GLint max = 0;

    if (!dmabuf_egl_context_make_current(b->ctx, &saved, errp)) {
        return NULL;
    }
    glGetIntegerv(GL_MAX_TEXTURE_SIZE, &max);
    if (width == 0 || height == 0 || width > (uint32_t)max ||
        height > (uint32_t)max) {
        error_setg(errp, "target size %ux%u is outside 1..%d", width, height,
                   max);
        goto restore;
    }
    gl_take_error();
    glGenTextures(1, &tex);
    glBindTexture(GL_TEXTURE_2D, tex);
    /* only drawn into and read back, never sampled: no sampler state */
    glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA, width, height, 0, GL_RGBA,
                 GL_UNSIGNED_BYTE, NULL);
    glBindTexture(GL_TEXTURE_2D, 0);
    if (!gl_ok(errp, "glTexImage2D(target)")) {
        goto delete_texture;
    }
    glGenFramebuffers(1, &fbo);
    glBindFramebuffer(GL_FRAMEBUFFER, fbo);
    glFramebufferTexture2D(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0,
                           GL_TEXTURE_2D, tex, 0);
    status = glCheckFramebufferStatus(GL_FRAMEBUFFER);
    glBindFramebuffer(GL_FRAMEBUFFER, 0);
    if (status != GL_FRAMEBUFFER_COMPLETE) {
        error_setg(errp, "target framebuffer %ux%u incomplete: 0x%x", width,
                   height, status);
        goto delete_fbo;
    }

    t = g_new0(EglBlitTarget, 1);
    t->blit = b;
    t->tex = tex;
    t->fbo = fbo;
    t->width = width;
    t->height = height;
    b->n_targets++;
    dmabuf_egl_context_restore(b->ctx, &saved);
    return t;

delete_fbo:
    glDeleteFramebuffers(1, &fbo);
delete_texture:
    glDeleteTextures(1, &tex);
restore:
    dmabuf_egl_context_restore(b->ctx, &saved);
    return NULL;
}

void egl_blit_target_free(EglBlitTarget *t)
{
    DmabufEglSavedCurrent saved;

    if (!t) {
        return;
    }
    if (dmabuf_egl_context_make_current(t->blit->ctx, &saved, NULL)) {
        glDeleteFramebuffers(1, &t->fbo);
        glDeleteTextures(1, &t->tex);
        dmabuf_egl_context_restore(t->blit->ctx, &saved);
    }
    t->blit->n_targets--;
    g_free(t->readback);
    g_free(t);
}

uint32_t egl_blit_target_width(const EglBlitTarget *t)
{
    return t->width;
}

uint32_t egl_blit_target_height(const EglBlitTarget *t)
{
    return t->height;
}

/* ------------------------------------------------------------------ */
/* draw, read back */

/*
 * Draws @img into the rectangle @left..@right, @top..@bottom (NDC; top
 * is the image's first row). @scaled picks linear filtering.
 */
static void draw_image(EglBlit *b, const DmabufEglImage *img,
                       float left, float top, float right, float bottom,
                       bool opaque, bool scaled)
{
    const BlitProgram *p = program_of(b, img);
    GLenum target = dmabuf_egl_image_gl_target(img);
    GLint filter = scaled ? GL_LINEAR : GL_NEAREST;

    glUseProgram(p->prog);
    glActiveTexture(GL_TEXTURE0);
    glBindTexture(target, dmabuf_egl_image_texture(img));
    glTexParameteri(target, GL_TEXTURE_MIN_FILTER, filter);
    glTexParameteri(target, GL_TEXTURE_MAG_FILTER, filter);
    glUniform1i(p->u_tex, 0);
    glUniform4f(p->u_dst, left, top, right, bottom);
    glUniform1f(p->u_opaque, opaque ? 1.0f : 0.0f);
    glBindBuffer(GL_ARRAY_BUFFER, b->vbo);
    glEnableVertexAttribArray(0);
    glVertexAttribPointer(0, 2, GL_FLOAT, GL_FALSE, 0, NULL);
    glDrawArrays(GL_TRIANGLE_STRIP, 0, 4);
    glDisableVertexAttribArray(0);
    glBindBuffer(GL_ARRAY_BUFFER, 0);
    glBindTexture(target, 0);
}

bool egl_blit_draw(EglBlitTarget *dst, const DmabufEglImage *primary,
                   const DmabufEglImage *cursor, int32_t cursor_x,
                   int32_t cursor_y, Error **errp)
{
    EglBlit *b = dst->blit;
    uint32_t src_w = primary ? dmabuf_egl_image_width(primary) : dst->width;
    uint32_t src_h = primary ? dmabuf_egl_image_height(primary)
                             : dst->height;
    bool scaled = src_w != dst->width || src_h != dst->height;
    DmabufEglSavedCurrent saved;
    bool ok;

    if (!dmabuf_egl_context_make_current(b->ctx, &saved, errp)) {
        return false;
    }
    if (!setup_draw(b, primary, errp) || !setup_draw(b, cursor, errp)) {
        dmabuf_egl_context_restore(b->ctx, &saved);
        return false;
    }
    gl_take_error();
    glBindFramebuffer(GL_FRAMEBUFFER, dst->fbo);
    glViewport(0, 0, dst->width, dst->height);
    glDisable(GL_BLEND);
    glDisable(GL_SCISSOR_TEST);
    glDisable(GL_DEPTH_TEST);
    if (primary) {
        draw_image(b, primary, -1.0f, 1.0f, 1.0f, -1.0f, true, scaled);
    } else {
        glClearColor(0.0f, 0.0f, 0.0f, 1.0f);
        glClear(GL_COLOR_BUFFER_BIT);
    }
    if (cursor) {
        /* in @primary's pixels, then NDC; the same scale as the frame */
        float cw = dmabuf_egl_image_width(cursor);
        float ch = dmabuf_egl_image_height(cursor);
        float left = 2.0f * cursor_x / src_w - 1.0f;
        float top = 1.0f - 2.0f * cursor_y / src_h;
        float right = 2.0f * ((float)cursor_x + cw) / src_w - 1.0f;
        float bottom = 1.0f - 2.0f * ((float)cursor_y + ch) / src_h;

        glEnable(GL_BLEND);
        /* straight alpha over the frame; the frame's alpha stays 1 */
        glBlendFuncSeparate(GL_SRC_ALPHA, GL_ONE_MINUS_SRC_ALPHA, GL_ZERO,
                            GL_ONE);
        draw_image(b, cursor, left, top, right, bottom, false, scaled);
        glDisable(GL_BLEND);
    }
    glBindFramebuffer(GL_FRAMEBUFFER, 0);
    glUseProgram(0);
    glFlush();
    ok = gl_ok(errp, "blit");
    dmabuf_egl_context_restore(b->ctx, &saved);
    return ok;
}

bool egl_blit_read_pixels(EglBlitTarget *src, uint32_t fourcc, uint8_t *dst,
                          size_t stride, Error **errp)
{
    DmabufEglContext *c = src->blit->ctx;
    size_t row = (size_t)src->width * 4;
    DmabufEglSavedCurrent saved;
    bool swap_rb, opaque;
    uint32_t x, y;
    char name[5];

    switch (fourcc) {
    case DRM_FORMAT_ABGR8888: /* bytes R, G, B, A: what GL_RGBA reads */
    case DRM_FORMAT_XBGR8888:
        swap_rb = false;
        break;
    case DRM_FORMAT_ARGB8888: /* bytes B, G, R, A */
    case DRM_FORMAT_XRGB8888:
        swap_rb = true;
        break;
    default:
        error_setg(errp, "cannot read pixels as %s",
                   dmabuf_format_name(fourcc, name));
        return false;
    }
    opaque = fourcc == DRM_FORMAT_XBGR8888 || fourcc == DRM_FORMAT_XRGB8888;
    if (stride < row) {
        error_setg(errp, "stride %zu is below %zu bytes per row", stride,
                   row);
        return false;
    }
    if (!src->readback) {
        src->readback = g_malloc(row * src->height);
    }
    if (!dmabuf_egl_context_make_current(c, &saved, errp)) {
        return false;
    }
    gl_take_error();
    glBindFramebuffer(GL_FRAMEBUFFER, src->fbo);
    glPixelStorei(GL_PACK_ALIGNMENT, 4);
    glReadPixels(0, 0, src->width, src->height, GL_RGBA, GL_UNSIGNED_BYTE,
                 src->readback);
    glBindFramebuffer(GL_FRAMEBUFFER, 0);
    if (!gl_ok(errp, "glReadPixels")) {
        dmabuf_egl_context_restore(c, &saved);
        return false;
    }
    dmabuf_egl_context_restore(c, &saved);

    /* GL's first row is the bottom one */
    for (y = 0; y < src->height; y++) {
        const uint8_t *s = src->readback + (src->height - 1 - y) * row;
        uint8_t *d = dst + y * stride;

        if (!swap_rb && !opaque) {
            memcpy(d, s, row);
            continue;
        }
        for (x = 0; x < src->width; x++, s += 4, d += 4) {
            d[0] = swap_rb ? s[2] : s[0];
            d[1] = s[1];
            d[2] = swap_rb ? s[0] : s[2];
            d[3] = opaque ? 0xff : s[3];
        }
    }
    return true;
}
