package metaworld

import "math"

// Density selects the variant of MetaWorld's gripper caging reward.
type Density int

// Densities.
const (
	DensityNone Density = iota
	DensityMedium
	DensityHigh
)

// CagingParams are the arguments of MetaWorld's _gripper_caging_reward.
type CagingParams struct {
	ObjRadius         float64 // radius of the object's bounding sphere
	PadSuccessThresh  float64 // pad-to-object distance that counts as caged
	ObjectReachRadius float64 // TCP-to-object distance that counts as reached
	XZThresh          float64 // TCP-to-object distance in x-z that counts as aligned
	DesiredGripEffort float64 // default 1
	Density           Density
}

// GripperCagingReward is MetaWorld's reward for caging and grasping the object at obj
// (SawyerXYZEnv._gripper_caging_reward), in [0, 1].
func (e *Env) GripperCagingReward(a Action, obj Vec3, p CagingParams) float64 {
	if p.DesiredGripEffort == 0 {
		p.DesiredGripEffort = 1
	}
	left, right := e.LeftPad(), e.RightPad()
	padY := [2]float64{left[1], right[1]}
	var cagingLR [2]float64
	for i, y := range padY {
		toObj := math.Abs(y - obj[1])
		toObjInit := math.Abs(y - e.ObjInit[1])
		margin := math.Abs(toObjInit - p.PadSuccessThresh)
		cagingLR[i] = Tolerance(toObj, p.ObjRadius, p.PadSuccessThresh, margin, LongTail)
	}
	cagingY := HamacherProduct(cagingLR[0], cagingLR[1])

	tcp := e.TCP()
	xz := func(v Vec3) Vec3 { return Vec3{v[0], 0, v[2]} }
	xzMargin := xz(e.ObjInit).Dist(xz(e.InitTCP)) - p.XZThresh
	cagingXZ := Tolerance(xz(tcp).Dist(xz(obj)), 0, p.XZThresh, xzMargin, LongTail)

	closed := math.Min(math.Max(0, a[3]), p.DesiredGripEffort) / p.DesiredGripEffort

	caging := HamacherProduct(cagingY, cagingXZ)
	gripping := 0.0
	if caging > 0.97 {
		gripping = closed
	}
	cg := HamacherProduct(caging, gripping)
	switch p.Density {
	case DensityHigh:
		cg = (cg + caging) / 2
	case DensityMedium:
		tcpToObj := obj.Dist(tcp)
		tcpToObjInit := e.ObjInit.Dist(e.InitTCP)
		reachMargin := math.Abs(tcpToObjInit - p.ObjectReachRadius)
		reach := Tolerance(tcpToObj, 0, p.ObjectReachRadius, reachMargin, LongTail)
		cg = (cg + reach) / 2
	}
	return cg
}
