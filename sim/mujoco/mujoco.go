// Package mujoco binds the parts of MuJoCo 2.2.2 (Debian's libmujoco-dev) that robodistill
// needs: loading MJCF scenes, stepping, name lookups, state access and headless rendering.
//
// MuJoCo reports fatal errors through mju_error, which by default prints, waits for Enter
// and exits the process after writing MUJOCO_LOG.TXT. This package installs its own
// handlers so that every such error becomes a Go error instead.
//
// A Model is immutable after loading apart from the fields MetaWorld edits at reset (body
// and site positions, equality data); a Data belongs to one goroutine at a time.
package mujoco

/*
#cgo LDFLAGS: -lmujoco -lEGL
#cgo CFLAGS: -O2 -std=gnu11
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
	"unsafe"
)

var installOnce sync.Once

func install() { installOnce.Do(func() { C.rd_install_handlers() }) }

// Version is MuJoCo's version string, for example "2.2.2".
func Version() string {
	install()
	return C.GoString(C.mj_versionString())
}

// ObjType names MuJoCo object kinds for name lookups.
type ObjType int

// Object types (mjtObj).
const (
	ObjBody     ObjType = C.mjOBJ_BODY
	ObjJoint    ObjType = C.mjOBJ_JOINT
	ObjGeom     ObjType = C.mjOBJ_GEOM
	ObjSite     ObjType = C.mjOBJ_SITE
	ObjCamera   ObjType = C.mjOBJ_CAMERA
	ObjActuator ObjType = C.mjOBJ_ACTUATOR
	ObjEquality ObjType = C.mjOBJ_EQUALITY
)

func (t ObjType) String() string {
	switch t {
	case ObjBody:
		return "body"
	case ObjJoint:
		return "joint"
	case ObjGeom:
		return "geom"
	case ObjSite:
		return "site"
	case ObjCamera:
		return "camera"
	case ObjActuator:
		return "actuator"
	case ObjEquality:
		return "equality"
	}
	return fmt.Sprintf("objtype(%d)", int(t))
}

// NotFoundError reports a name that the model does not have.
type NotFoundError struct {
	Type ObjType
	Name string
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("mujoco: no %s named %q in the model", e.Type, e.Name)
}

// EqWeld is mjEQ_WELD.
const EqWeld = C.mjEQ_WELD

// Model is a compiled MuJoCo model (mjModel).
type Model struct {
	m    *C.mjModel
	path string
}

// Load compiles the MJCF file at path. Errors name the file and carry MuJoCo's message.
func Load(path string) (*Model, error) {
	install()
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("mujoco.Load %s: %w", path, err)
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("mujoco.Load %s: %w", path, err)
	}
	cpath := C.CString(abs)
	defer C.free(unsafe.Pointer(cpath))
	var errbuf [1024]C.char
	m := C.rd_load_xml(cpath, &errbuf[0], C.int(len(errbuf)))
	if m == nil {
		msg := C.GoString(&errbuf[0])
		if msg == "" {
			msg = "unknown error"
		}
		return nil, fmt.Errorf("mujoco.Load %s: %s", path, msg)
	}
	return &Model{m: m, path: abs}, nil
}

// Close frees the model. Data made from it must be closed first.
func (m *Model) Close() {
	if m.m != nil {
		C.mj_deleteModel(m.m)
		m.m = nil
	}
}

// Path is the file the model was loaded from.
func (m *Model) Path() string { return m.path }

// ID returns the id of the named object, or a *NotFoundError.
func (m *Model) ID(t ObjType, name string) (int, error) {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	id := int(C.mj_name2id(m.m, C.int(t), cname))
	if id < 0 {
		return -1, &NotFoundError{Type: t, Name: name}
	}
	return id, nil
}

// MustID is ID for names that the scene is known to have; it panics otherwise.
func (m *Model) MustID(t ObjType, name string) int {
	id, err := m.ID(t, name)
	if err != nil {
		panic(err)
	}
	return id
}

// Name returns the name of object id of kind t ("" when unnamed).
func (m *Model) Name(t ObjType, id int) string {
	s := C.mj_id2name(m.m, C.int(t), C.int(id))
	if s == nil {
		return ""
	}
	return C.GoString(s)
}

// Names lists every named object of kind t.
func (m *Model) Names(t ObjType) []string {
	var n int
	switch t {
	case ObjBody:
		n = int(m.m.nbody)
	case ObjJoint:
		n = int(m.m.njnt)
	case ObjGeom:
		n = int(m.m.ngeom)
	case ObjSite:
		n = int(m.m.nsite)
	case ObjCamera:
		n = int(m.m.ncam)
	case ObjActuator:
		n = int(m.m.nu)
	case ObjEquality:
		n = int(m.m.neq)
	}
	var out []string
	for i := 0; i < n; i++ {
		if s := m.Name(t, i); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Sizes.
func (m *Model) NQ() int     { return int(m.m.nq) }
func (m *Model) NV() int     { return int(m.m.nv) }
func (m *Model) NU() int     { return int(m.m.nu) }
func (m *Model) NMocap() int { return int(m.m.nmocap) }
func (m *Model) NBody() int  { return int(m.m.nbody) }
func (m *Model) NEq() int    { return int(m.m.neq) }

// Timestep is opt.timestep in seconds.
func (m *Model) Timestep() float64 { return float64(m.m.opt.timestep) }

// BodyMocapID maps a body to its mocap index (-1 when the body is not a mocap body).
func (m *Model) BodyMocapID(body int) int {
	return int(unsafe.Slice(m.m.body_mocapid, m.m.nbody)[body])
}

// JointQposAdr is the joint's first index into qpos.
func (m *Model) JointQposAdr(joint int) int {
	return int(unsafe.Slice(m.m.jnt_qposadr, m.m.njnt)[joint])
}

// JointDofAdr is the joint's first index into qvel.
func (m *Model) JointDofAdr(joint int) int {
	return int(unsafe.Slice(m.m.jnt_dofadr, m.m.njnt)[joint])
}

// JointRange is the joint's [lo, hi] limit.
func (m *Model) JointRange(joint int) [2]float64 {
	r := unsafe.Slice(m.m.jnt_range, 2*m.m.njnt)
	return [2]float64{float64(r[2*joint]), float64(r[2*joint+1])}
}

// BodyPos is the body's position relative to its parent (model field, writable).
func (m *Model) BodyPos(body int) []float64 { return vec3(m.m.body_pos, int(m.m.nbody), body) }

// BodyQuat is the body's orientation relative to its parent (writable).
func (m *Model) BodyQuat(body int) []float64 {
	return unsafe.Slice((*float64)(unsafe.Pointer(m.m.body_quat)), 4*int(m.m.nbody))[4*body : 4*body+4]
}

// SitePos is the site's position relative to its body (writable).
func (m *Model) SitePos(site int) []float64 { return vec3(m.m.site_pos, int(m.m.nsite), site) }

// GeomRGBA is the geom's colour (writable).
func (m *Model) GeomRGBA(geom int) []float32 {
	return unsafe.Slice((*float32)(unsafe.Pointer(m.m.geom_rgba)), 4*int(m.m.ngeom))[4*geom : 4*geom+4]
}

// EqType is the type of equality constraint i.
func (m *Model) EqType(i int) int { return int(unsafe.Slice(m.m.eq_type, m.m.neq)[i]) }

// EqData is the data vector of equality constraint i (mjNEQDATA values, writable).
func (m *Model) EqData(i int) []float64 {
	n := int(C.mjNEQDATA)
	return unsafe.Slice((*float64)(unsafe.Pointer(m.m.eq_data)), n*int(m.m.neq))[n*i : n*i+n]
}

func vec3(p *C.mjtNum, n, i int) []float64 {
	return unsafe.Slice((*float64)(unsafe.Pointer(p)), 3*n)[3*i : 3*i+3]
}

// Data is the simulation state (mjData) of one Model.
type Data struct {
	m *Model
	d *C.mjData
}

// NewData allocates a state for m.
func NewData(m *Model) (*Data, error) {
	install()
	d := C.rd_make_data(m.m)
	if d == nil {
		return nil, fmt.Errorf("mujoco.NewData %s: %s", m.path, C.GoString(C.rd_last_error()))
	}
	return &Data{m: m, d: d}, nil
}

// Close frees the state.
func (d *Data) Close() {
	if d.d != nil {
		C.mj_deleteData(d.d)
		d.d = nil
	}
}

// Model is the model this state belongs to.
func (d *Data) Model() *Model { return d.m }

// ErrSimulation wraps errors MuJoCo raised during a step or forward pass.
var ErrSimulation = errors.New("mujoco: simulation error")

// Step advances n physics steps (mj_step).
func (d *Data) Step(n int) error {
	if C.rd_step(d.m.m, d.d, C.int(n)) != 0 {
		return fmt.Errorf("%w: mj_step: %s", ErrSimulation, C.GoString(C.rd_last_error()))
	}
	return nil
}

// Forward recomputes derived quantities (mj_forward).
func (d *Data) Forward() error {
	if C.rd_forward(d.m.m, d.d) != 0 {
		return fmt.Errorf("%w: mj_forward: %s", ErrSimulation, C.GoString(C.rd_last_error()))
	}
	return nil
}

// Kinematics recomputes only the position-dependent quantities (body, geom, site and
// camera poses: mj_kinematics, mj_comPos, mj_camlight) from qpos and the mocap poses. After
// mj_step this gives exactly the poses mj_forward would, at a fraction of its cost; contacts
// and constraint forces are left as the last step computed them.
func (d *Data) Kinematics() error {
	if C.rd_kinematics(d.m.m, d.d) != 0 {
		return fmt.Errorf("%w: mj_kinematics: %s", ErrSimulation, C.GoString(C.rd_last_error()))
	}
	return nil
}

// Reset restores the model's default state (mj_resetData).
func (d *Data) Reset() error {
	if C.rd_reset(d.m.m, d.d) != 0 {
		return fmt.Errorf("%w: mj_resetData: %s", ErrSimulation, C.GoString(C.rd_last_error()))
	}
	return nil
}

// Warnings returns and clears MuJoCo's warning counters (mjWARN_*), summed.
func (d *Data) Warnings() int {
	n := 0
	for i := 0; i < int(C.mjNWARNING); i++ {
		n += int(d.d.warning[i].number)
		d.d.warning[i].number = 0
	}
	return n
}

// Time is the simulated time in seconds.
func (d *Data) Time() float64 { return float64(d.d.time) }

func f64(p *C.mjtNum, n int) []float64 {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*float64)(unsafe.Pointer(p)), n)
}

// Live views into the state; valid until Close.
func (d *Data) Qpos() []float64 { return f64(d.d.qpos, int(d.m.m.nq)) }
func (d *Data) Qvel() []float64 { return f64(d.d.qvel, int(d.m.m.nv)) }
func (d *Data) Ctrl() []float64 { return f64(d.d.ctrl, int(d.m.m.nu)) }
func (d *Data) MocapPos(i int) []float64 {
	return f64(d.d.mocap_pos, 3*int(d.m.m.nmocap))[3*i : 3*i+3]
}
func (d *Data) MocapQuat(i int) []float64 {
	return f64(d.d.mocap_quat, 4*int(d.m.m.nmocap))[4*i : 4*i+4]
}

// XPos is body i's world position (MetaWorld's get_body_com).
func (d *Data) XPos(body int) []float64 { return f64(d.d.xpos, 3*int(d.m.m.nbody))[3*body : 3*body+3] }

// XQuat is body i's world orientation (w, x, y, z).
func (d *Data) XQuat(body int) []float64 {
	return f64(d.d.xquat, 4*int(d.m.m.nbody))[4*body : 4*body+4]
}

// XMat is body i's world rotation matrix, row-major.
func (d *Data) XMat(body int) []float64 {
	return f64(d.d.xmat, 9*int(d.m.m.nbody))[9*body : 9*body+9]
}

// SiteXPos is site i's world position (writable: MetaWorld moves goal markers this way).
func (d *Data) SiteXPos(site int) []float64 {
	return f64(d.d.site_xpos, 3*int(d.m.m.nsite))[3*site : 3*site+3]
}

// CamXPos is camera cam's world position (after a forward pass).
func (d *Data) CamXPos(cam int) []float64 {
	return f64(d.d.cam_xpos, 3*int(d.m.m.ncam))[3*cam : 3*cam+3]
}

// GeomXPos is geom i's world position.
func (d *Data) GeomXPos(geom int) []float64 {
	return f64(d.d.geom_xpos, 3*int(d.m.m.ngeom))[3*geom : 3*geom+3]
}

// GeomXMat is geom i's world rotation matrix.
func (d *Data) GeomXMat(geom int) []float64 {
	return f64(d.d.geom_xmat, 9*int(d.m.m.ngeom))[9*geom : 9*geom+9]
}

// Contact is one detected contact.
type Contact struct {
	Geom1, Geom2 int
	EfcAddress   int
	Dist         float64
}

// NCon is the number of contacts detected by the last forward pass.
func (d *Data) NCon() int { return int(d.d.ncon) }

// Contact returns contact i.
func (d *Data) Contact(i int) Contact {
	c := unsafe.Slice(d.d.contact, d.d.ncon)[i]
	return Contact{Geom1: int(c.geom1), Geom2: int(c.geom2), EfcAddress: int(c.efc_address), Dist: float64(c.dist)}
}

// EfcForce is the constraint force of row i.
func (d *Data) EfcForce(i int) float64 {
	return float64(unsafe.Slice(d.d.efc_force, d.d.nefc)[i])
}

// CopyFrom copies src (of the same model) into d.
func (d *Data) CopyFrom(src *Data) {
	C.mj_copyData(d.d, d.m.m, src.d)
}

// CStepLoop runs the plain-C reference loop used by benchmarks on d: len(mocap)/3 control
// steps, each setting mocap body 0 to the next 3 values of mocap and the controls to the
// next NU values of ctrl, then substeps mj_step calls (and mj_forward when forward is set).
// The loop is timed in C.
func (d *Data) CStepLoop(mocap, ctrl []float64, substeps int, forward bool) (time.Duration, error) {
	n := len(mocap) / 3
	nu := int(d.m.m.nu)
	if n == 0 || len(mocap) != 3*n || len(ctrl) != nu*n {
		return 0, fmt.Errorf("mujoco.CStepLoop: %d mocap and %d ctrl values do not make whole steps", len(mocap), len(ctrl))
	}
	var cp *C.double
	if nu > 0 {
		cp = (*C.double)(unsafe.Pointer(&ctrl[0]))
	}
	f := 0
	if forward {
		f = 1
	}
	s := float64(C.rd_c_step_loop(d.m.m, d.d, C.int(n), C.int(substeps), C.int(f),
		(*C.double)(unsafe.Pointer(&mocap[0])), cp))
	return time.Duration(s * float64(time.Second)), nil
}

// CameraFovy is camera cam's vertical field of view in degrees.
func (m *Model) CameraFovy(cam int) float64 {
	return float64(unsafe.Slice(m.m.cam_fovy, m.m.ncam)[cam])
}
