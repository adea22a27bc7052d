// shim.h: C helpers around MuJoCo 2.2.2 that turn mju_error (which would print, wait for
// Enter and exit the process) into an error string returned to Go.
#ifndef ROBODISTILL_MUJOCO_SHIM_H
#define ROBODISTILL_MUJOCO_SHIM_H

#include <mujoco/mujoco.h>

// rd_install_handlers installs process-wide error and warning handlers. Idempotent.
void rd_install_handlers(void);

// Each rd_* call returns 0 on success or -1 when MuJoCo raised an error; the message is
// then in rd_last_error() (thread-local).
const char* rd_last_error(void);

mjModel* rd_load_xml(const char* path, char* err, int errsz);
mjData* rd_make_data(const mjModel* m);
int rd_step(const mjModel* m, mjData* d, int nstep);
int rd_forward(const mjModel* m, mjData* d);
// rd_kinematics recomputes positions only: mj_kinematics, mj_comPos and mj_camlight.
int rd_kinematics(const mjModel* m, mjData* d);
int rd_reset(const mjModel* m, mjData* d);

// Renderer: one EGL context (surfaceless Mesa) plus a MuJoCo scene and render context.
typedef struct rd_renderer rd_renderer;
rd_renderer* rd_renderer_new(const mjModel* m, int maxw, int maxh, int samples, char* err, int errsz);
int rd_render(rd_renderer* r, const mjModel* m, mjData* d, int camid, int w, int h,
              int shadows, int reflections, unsigned char* out);
void rd_renderer_free(rd_renderer* r);



// rd_c_step_loop is the plain-C reference for benchmarks: nsteps control steps, each
// setting mocap body 0's position and the controls from the given arrays (3 and nu values
// per step) and running `substeps` mj_step calls (plus mj_forward when forward is
// non-zero). Returns the elapsed wall time in seconds.
double rd_c_step_loop(const mjModel* m, mjData* d, int nsteps, int substeps, int forward,
                      const double* mocap, const double* ctrl);
#endif
