package metaworld

import "math"

// Vec3 is a point or direction in the world frame, metres.
type Vec3 [3]float64

func v3(s []float64) Vec3 { return Vec3{s[0], s[1], s[2]} }

// Add returns a+b.
func (a Vec3) Add(b Vec3) Vec3 { return Vec3{a[0] + b[0], a[1] + b[1], a[2] + b[2]} }

// Sub returns a-b.
func (a Vec3) Sub(b Vec3) Vec3 { return Vec3{a[0] - b[0], a[1] - b[1], a[2] - b[2]} }

// Scale returns a*k.
func (a Vec3) Scale(k float64) Vec3 { return Vec3{a[0] * k, a[1] * k, a[2] * k} }

// Mul returns the elementwise product.
func (a Vec3) Mul(b Vec3) Vec3 { return Vec3{a[0] * b[0], a[1] * b[1], a[2] * b[2]} }

// Dot is the inner product.
func (a Vec3) Dot(b Vec3) float64 { return a[0]*b[0] + a[1]*b[1] + a[2]*b[2] }

// Norm is the Euclidean length.
func (a Vec3) Norm() float64 { return math.Sqrt(a[0]*a[0] + a[1]*a[1] + a[2]*a[2]) }

// Dist is |a-b|.
func (a Vec3) Dist(b Vec3) float64 { return a.Sub(b).Norm() }

// NormXY is the length of the x-y part.
func (a Vec3) NormXY() float64 { return math.Hypot(a[0], a[1]) }

// Clip clamps each coordinate into [lo, hi].
func (a Vec3) Clip(lo, hi Vec3) Vec3 {
	for i := range a {
		a[i] = math.Min(math.Max(a[i], lo[i]), hi[i])
	}
	return a
}

// quatFromMat converts a row-major rotation matrix to a unit quaternion in scipy's
// (x, y, z, w) order, choosing the sign the way scipy's Rotation.from_matrix does (the
// component picked by the largest of the trace and the diagonal is positive), because
// MetaWorld builds some observations with scipy.
func quatFromMat(m []float64) [4]float64 {
	at := func(r, c int) float64 { return m[3*r+c] }
	tr := m[0] + m[4] + m[8]
	choice, best := 3, tr
	for i := 0; i < 3; i++ {
		if at(i, i) > best {
			choice, best = i, at(i, i)
		}
	}
	var q [4]float64
	if choice == 3 {
		q = [4]float64{at(2, 1) - at(1, 2), at(0, 2) - at(2, 0), at(1, 0) - at(0, 1), 1 + tr}
	} else {
		i := choice
		j := (i + 1) % 3
		k := (j + 1) % 3
		q[i] = 1 - tr + 2*at(i, i)
		q[j] = at(j, i) + at(i, j)
		q[k] = at(k, i) + at(i, k)
		q[3] = at(k, j) - at(j, k)
	}
	n := math.Sqrt(q[0]*q[0] + q[1]*q[1] + q[2]*q[2] + q[3]*q[3])
	for i := range q {
		q[i] /= n
	}
	return q
}
