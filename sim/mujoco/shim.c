#include "shim.h"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

#include <EGL/egl.h>
#include <EGL/eglext.h>

static __thread jmp_buf* rd_jmp = NULL;
static __thread char rd_err[1024];

static void rd_error_handler(const char* msg) {
  snprintf(rd_err, sizeof rd_err, "%s", msg);
  if (rd_jmp) {
    longjmp(*rd_jmp, 1);
  }
  // An error outside a guarded call: MuJoCo's state may be inconsistent, but exiting the
  // process (MuJoCo's default) would lose the caller's data. Abort loudly instead.
  fprintf(stderr, "mujoco: unguarded error: %s\n", msg);
  abort();
}

// Warnings are counted in mjData.warning; the handler only keeps MuJoCo from printing.
static void rd_warning_handler(const char* msg) { (void)msg; }

void rd_install_handlers(void) {
  mju_user_error = rd_error_handler;
  mju_user_warning = rd_warning_handler;
}

const char* rd_last_error(void) { return rd_err; }


#define GUARD(...)             \
  do {                         \
    jmp_buf jb;                \
    jmp_buf* prev = rd_jmp;    \
    rd_err[0] = 0;             \
    if (setjmp(jb) != 0) {     \
      rd_jmp = prev;           \
      return -1;               \
    }                          \
    rd_jmp = &jb;              \
    __VA_ARGS__;               \
    rd_jmp = prev;             \
  } while (0)

mjModel* rd_load_xml(const char* path, char* err, int errsz) {
  jmp_buf jb;
  jmp_buf* prev = rd_jmp;
  rd_err[0] = 0;
  if (setjmp(jb) != 0) {
    rd_jmp = prev;
    snprintf(err, errsz, "%s", rd_err);
    return NULL;
  }
  rd_jmp = &jb;
  mjModel* m = mj_loadXML(path, NULL, err, errsz);
  rd_jmp = prev;
  return m;
}

mjData* rd_make_data(const mjModel* m) {
  jmp_buf jb;
  jmp_buf* prev = rd_jmp;
  rd_err[0] = 0;
  if (setjmp(jb) != 0) {
    rd_jmp = prev;
    return NULL;
  }
  rd_jmp = &jb;
  mjData* d = mj_makeData(m);
  rd_jmp = prev;
  return d;
}

int rd_step(const mjModel* m, mjData* d, int nstep) {
  GUARD(for (int i = 0; i < nstep; i++) mj_step(m, d));
  return 0;
}

int rd_forward(const mjModel* m, mjData* d) {
  GUARD(mj_forward(m, d));
  return 0;
}

int rd_kinematics(const mjModel* m, mjData* d) {
  GUARD(mj_kinematics(m, d); mj_comPos(m, d); mj_camlight(m, d));
  return 0;
}

int rd_reset(const mjModel* m, mjData* d) {
  GUARD(mj_resetData(m, d));
  return 0;
}

// ---- rendering ------------------------------------------------------------------------

struct rd_renderer {
  EGLDisplay dpy;
  EGLContext ctx;
  mjvScene scn;
  mjrContext con;
  mjvOption opt;
  mjvCamera cam;
  int maxw, maxh;
  unsigned char* tmp;
};

static const char* egl_err_name(EGLint e) {
  switch (e) {
    case EGL_SUCCESS: return "EGL_SUCCESS";
    case EGL_NOT_INITIALIZED: return "EGL_NOT_INITIALIZED";
    case EGL_BAD_ACCESS: return "EGL_BAD_ACCESS";
    case EGL_BAD_ALLOC: return "EGL_BAD_ALLOC";
    case EGL_BAD_ATTRIBUTE: return "EGL_BAD_ATTRIBUTE";
    case EGL_BAD_CONFIG: return "EGL_BAD_CONFIG";
    case EGL_BAD_CONTEXT: return "EGL_BAD_CONTEXT";
    case EGL_BAD_DISPLAY: return "EGL_BAD_DISPLAY";
    case EGL_BAD_MATCH: return "EGL_BAD_MATCH";
    case EGL_BAD_PARAMETER: return "EGL_BAD_PARAMETER";
    default: return "EGL error";
  }
}

rd_renderer* rd_renderer_new(const mjModel* mc, int maxw, int maxh, int samples, char* err, int errsz) {
  PFNEGLGETPLATFORMDISPLAYEXTPROC getdpy =
      (PFNEGLGETPLATFORMDISPLAYEXTPROC)eglGetProcAddress("eglGetPlatformDisplayEXT");
  EGLDisplay dpy = EGL_NO_DISPLAY;
  if (getdpy) {
    dpy = getdpy(EGL_PLATFORM_SURFACELESS_MESA, EGL_DEFAULT_DISPLAY, NULL);
  }
  if (dpy == EGL_NO_DISPLAY) {
    dpy = eglGetDisplay(EGL_DEFAULT_DISPLAY);
  }
  if (dpy == EGL_NO_DISPLAY) {
    snprintf(err, errsz, "egl: no display (is Mesa's EGL, libegl-mesa0, installed?)");
    return NULL;
  }
  EGLint major, minor;
  if (!eglInitialize(dpy, &major, &minor)) {
    snprintf(err, errsz, "eglInitialize: %s", egl_err_name(eglGetError()));
    return NULL;
  }
  const EGLint cfgattr[] = {EGL_RED_SIZE, 8, EGL_GREEN_SIZE, 8, EGL_BLUE_SIZE, 8,
                            EGL_ALPHA_SIZE, 8, EGL_DEPTH_SIZE, 24, EGL_STENCIL_SIZE, 8, EGL_SURFACE_TYPE, EGL_PBUFFER_BIT,
                            EGL_RENDERABLE_TYPE, EGL_OPENGL_BIT, EGL_NONE};
  EGLConfig cfg;
  EGLint ncfg = 0;
  if (!eglChooseConfig(dpy, cfgattr, &cfg, 1, &ncfg) || ncfg < 1) {
    // Surfaceless displays may expose configs without a depth size preference.
    const EGLint cfgattr2[] = {EGL_SURFACE_TYPE, EGL_PBUFFER_BIT, EGL_RENDERABLE_TYPE, EGL_OPENGL_BIT, EGL_NONE};
    if (!eglChooseConfig(dpy, cfgattr2, &cfg, 1, &ncfg) || ncfg < 1) {
      snprintf(err, errsz, "eglChooseConfig: no OpenGL config: %s", egl_err_name(eglGetError()));
      eglTerminate(dpy);
      return NULL;
    }
  }
  if (!eglBindAPI(EGL_OPENGL_API)) {
    snprintf(err, errsz, "eglBindAPI(OpenGL): %s", egl_err_name(eglGetError()));
    return NULL;
  }
  EGLContext ctx = eglCreateContext(dpy, cfg, EGL_NO_CONTEXT, NULL);
  if (ctx == EGL_NO_CONTEXT) {
    snprintf(err, errsz, "eglCreateContext: %s", egl_err_name(eglGetError()));
    return NULL;
  }
  if (!eglMakeCurrent(dpy, EGL_NO_SURFACE, EGL_NO_SURFACE, ctx)) {
    snprintf(err, errsz, "eglMakeCurrent (surfaceless): %s", egl_err_name(eglGetError()));
    eglDestroyContext(dpy, ctx);
    return NULL;
  }

  rd_renderer* r = calloc(1, sizeof *r);
  r->dpy = dpy;
  r->ctx = ctx;
  r->maxw = maxw;
  r->maxh = maxh;
  r->tmp = malloc((size_t)maxw * maxh * 3);

  // The offscreen buffer size and multisampling come from the model; set them on a copy
  // so the caller's model is untouched.
  mjModel* m = mj_copyModel(NULL, mc);
  m->vis.global.offwidth = maxw;
  m->vis.global.offheight = maxh;
  m->vis.quality.offsamples = samples;

  jmp_buf jb;
  jmp_buf* prev = rd_jmp;
  rd_err[0] = 0;
  if (setjmp(jb) != 0) {
    rd_jmp = prev;
    snprintf(err, errsz, "mjr_makeContext: %s", rd_err);
    mj_deleteModel(m);
    eglMakeCurrent(dpy, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT);
    eglDestroyContext(dpy, ctx);
    free(r->tmp);
    free(r);
    return NULL;
  }
  rd_jmp = &jb;
  mjv_defaultScene(&r->scn);
  mjv_makeScene(m, &r->scn, 2000);
  mjv_defaultOption(&r->opt);
  mjv_defaultCamera(&r->cam);
  mjr_defaultContext(&r->con);
  mjr_makeContext(m, &r->con, mjFONTSCALE_100);
  mjr_setBuffer(mjFB_OFFSCREEN, &r->con);
  rd_jmp = prev;
  mj_deleteModel(m);
  if (r->con.currentBuffer != mjFB_OFFSCREEN) {
    snprintf(err, errsz, "mujoco: offscreen framebuffer not available");
    rd_renderer_free(r);
    return NULL;
  }
  return r;
}

int rd_render(rd_renderer* r, const mjModel* m, mjData* d, int camid, int w, int h,
              int shadows, int reflections, unsigned char* out) {
  if (w > r->maxw || h > r->maxh) {
    snprintf(rd_err, sizeof rd_err, "render size %dx%d exceeds buffer %dx%d", w, h, r->maxw, r->maxh);
    return -1;
  }
  GUARD({
    if (camid >= 0) {
      r->cam.type = mjCAMERA_FIXED;
      r->cam.fixedcamid = camid;
    } else {
      r->cam.type = mjCAMERA_FREE;
    }
    mjv_updateScene(m, d, &r->opt, NULL, &r->cam, mjCAT_ALL, &r->scn);
    r->scn.flags[mjRND_SHADOW] = shadows ? 1 : 0;
    r->scn.flags[mjRND_REFLECTION] = reflections ? 1 : 0;
    mjrRect vp = {0, 0, w, h};
    mjr_render(vp, &r->scn, &r->con);
    mjr_readPixels(r->tmp, NULL, vp, &r->con);
  });
  // OpenGL rows are bottom-up; flip so the first row is the top of the image.
  size_t row = (size_t)w * 3;
  for (int y = 0; y < h; y++) {
    memcpy(out + (size_t)y * row, r->tmp + (size_t)(h - 1 - y) * row, row);
  }
  return 0;
}

void rd_renderer_free(rd_renderer* r) {
  if (!r) return;
  mjr_freeContext(&r->con);
  mjv_freeScene(&r->scn);
  eglMakeCurrent(r->dpy, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT);
  eglDestroyContext(r->dpy, r->ctx);
  free(r->tmp);
  free(r);
}

#include <time.h>

double rd_c_step_loop(const mjModel* m, mjData* d, int nsteps, int substeps, int forward,
                      const double* mocap, const double* ctrl) {
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int i = 0; i < nsteps; i++) {
    if (m->nmocap > 0) {
      d->mocap_pos[0] = mocap[3 * i];
      d->mocap_pos[1] = mocap[3 * i + 1];
      d->mocap_pos[2] = mocap[3 * i + 2];
    }
    for (int u = 0; u < m->nu; u++) d->ctrl[u] = ctrl[m->nu * i + u];
    for (int s = 0; s < substeps; s++) mj_step(m, d);
    if (forward) mj_forward(m, d);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  return (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
}
