#!/usr/bin/python3
"""pyloop: robodistilld's control cycle written in Python, for daemon/bench.

A rospy node on the daemon's topics that runs, at a fixed rate on absolute deadlines,
what robodistilld runs each cycle:

  latest camera frame -> vision/'s preprocessing (crop, resize with INTER_AREA, flip,
  channels, normalisation, CHW float32) -> the reward ensemble (only for a frame not seen
  before) -> the 39-D MetaWorld observation from the state topics -> the policy ->
  action clipped to [-1, 1] (zero velocity while the camera or state is stale or the
  action is not finite) -> gripper/command, arm/cmd_vel, reward.

The models are the daemon's ONNX files, checked against their sidecars' sha256, read with
Debian's python3-onnx (numpy_helper) into torch modules, and run with torch's inference
mode. Each model's manifest golden check (the lattice-v1 input) must pass, so the weights
are the same as the daemon's.

It measures, like the daemon's metrics: wake lateness (wake - deadline), cycle compute
(wake -> command sent), camera-to-command latency (once per camera frame: the first
command sent after the frame was used, minus the frame's receive time), overruns (cycles that finished after the next deadline; missed
deadlines are skipped, not caught up), RSS (VmRSS) at the start and end of the window,
and prints one JSON line on stdout. Progress and problems go to stderr.

Not replicated from the daemon: the transition log, the full safety filter (workspace
bounds, per-cycle rate limit, stop latching, estop), diagnostics and metrics serving.

  /usr/bin/python3 pyloop.py --reward reward.onnx --policy policy.onnx --rate 50 --duration 60
  /usr/bin/python3 pyloop.py --check      # imports and versions only

Two modes let daemon/bench's tests compare this file's pieces with the Go ones:
  --preprocess REQUEST.json   the frame in request["data_file"] (raw bytes, with
                              encoding/width/height/step) through request["vision"],
                              float32 CHW written to request["out_file"]
  --forward MODEL IN.f32 OUT.f32   the model on raw little-endian float32 samples
"""

import argparse
import hashlib
import json
import math
import os
import sys
import threading
import time


def log(msg):
    print("pyloop: " + msg, file=sys.stderr, flush=True)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--check", action="store_true", help="import everything, print versions, exit")
    p.add_argument("--preprocess", metavar="REQUEST", help="test mode: preprocess one frame (see the module doc)")
    p.add_argument("--forward", nargs=3, metavar=("MODEL", "IN", "OUT"), help="test mode: run a model on raw float32 samples")
    p.add_argument("--reward", help="reward model (member 0 of the ensemble)")
    p.add_argument("--policy", help="policy model")
    p.add_argument("--rate", type=int, default=50, help="loop rate in Hz")
    p.add_argument("--duration", type=float, default=60, help="measurement window in seconds")
    p.add_argument("--warmup", type=float, default=5, help="seconds of cycles before the window")
    p.add_argument("--start-timeout", type=float, default=120, help="seconds to wait for the first inputs")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--realtime-priority", type=int, default=0,
                   help="SCHED_FIFO priority of the loop's thread, as robodistilld's loop.realtime_priority (0: none)")
    p.add_argument("--objects", default="object", help="comma-separated object names (objects/NAME/pose)")
    p.add_argument("--camera-max-age", type=float, default=0.2, help="seconds; an older frame holds the arm")
    p.add_argument("--state-max-age", type=float, default=0.1, help="seconds; older state holds the arm")
    p.add_argument("--node", default="pyloop", help="ROS node name")
    a = p.parse_args(argv)
    if not (a.check or a.preprocess or a.forward):
        if not a.reward or not a.policy:
            p.error("--reward and --policy are required")
        if not 1 <= a.rate <= 1000:
            p.error("--rate: %d Hz outside 1..1000" % a.rate)
        if a.duration <= 0 or a.warmup < 0:
            p.error("--duration must be positive and --warmup not negative")
        if a.threads < 1:
            p.error("--threads must be at least 1")
    return a


def imports():
    global np, torch, onnx, numpy_helper, cv2, rospy, Image, PoseStamped, TwistStamped, JointState, Float32, Float64
    import numpy as np
    import torch
    import onnx
    from onnx import numpy_helper
    import cv2
    import rospy
    from sensor_msgs.msg import Image, JointState
    from geometry_msgs.msg import PoseStamped, TwistStamped
    from std_msgs.msg import Float32, Float64


def runtime_versions():
    return "python %s, torch %s, onnx %s, numpy %s, cv2 %s" % (
        sys.version.split()[0], torch.__version__, onnx.__version__, np.__version__, cv2.__version__)


# --- models ---------------------------------------------------------------------------

def member_path(path, m):
    if m == 0:
        return path
    base, ext = os.path.splitext(path)
    return "%s.%d%s" % (base, m, ext)


def lattice(n):
    i = np.arange(n, dtype=np.int64)
    return (((97 * i + 13) % 256) / 128.0 - 1).astype(np.float32)


def attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def to_torch(path, model):
    """The exporter's graphs (control/onnxio: Conv, MatMul + Add, Relu, Tanh, Flatten in a
    chain) as a torch.nn.Sequential with the same weights."""
    g = model.graph
    inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    nodes = list(g.node)
    layers = []
    value = g.input[0].name
    i = 0
    while i < len(nodes):
        n = nodes[i]
        if n.input[0] != value:
            raise ValueError("%s: node %s does not continue the chain (input %s, expected %s)" % (path, n.name, n.input[0], value))
        op = n.op_type
        if op == "Conv":
            a = attrs(n)
            w = inits[n.input[1]]
            b = inits[n.input[2]] if len(n.input) > 2 and n.input[2] else None
            k = list(a.get("kernel_shape", w.shape[2:]))
            s = list(a.get("strides", [1, 1]))
            pads = list(a.get("pads", [0, 0, 0, 0]))
            if a.get("group", 1) != 1 or list(a.get("dilations", [1, 1])) != [1, 1] or len(set(pads)) != 1 or k[0] != k[1] or s[0] != s[1]:
                raise ValueError("%s: Conv %s has attributes this loop does not convert: %s" % (path, n.name, a))
            conv = torch.nn.Conv2d(w.shape[1], w.shape[0], k[0], stride=s[0], padding=pads[0], bias=b is not None)
            conv.weight.data = torch.from_numpy(w.copy())
            if b is not None:
                conv.bias.data = torch.from_numpy(b.copy())
            layers.append(conv)
        elif op == "MatMul":
            w = inits[n.input[1]]  # [in, out], the Linear's weight transposed
            nxt = nodes[i + 1] if i + 1 < len(nodes) else None
            if nxt is None or nxt.op_type != "Add" or nxt.input[0] != n.output[0] or nxt.input[1] not in inits:
                raise ValueError("%s: MatMul %s is not followed by its bias Add" % (path, n.name))
            lin = torch.nn.Linear(w.shape[0], w.shape[1])
            lin.weight.data = torch.from_numpy(w.T.copy())
            lin.bias.data = torch.from_numpy(inits[nxt.input[1]].copy())
            layers.append(lin)
            n = nxt
            i += 1
        elif op == "Relu":
            layers.append(torch.nn.ReLU())
        elif op == "Tanh":
            layers.append(torch.nn.Tanh())
        elif op == "Flatten":
            if attrs(n).get("axis", 1) != 1:
                raise ValueError("%s: Flatten %s with axis != 1" % (path, n.name))
            layers.append(torch.nn.Flatten())
        else:
            raise ValueError("%s: op %s (node %s) is not one this loop converts (Conv, MatMul+Add, Relu, Tanh, Flatten)" % (path, op, n.name))
        value = n.output[0]
        i += 1
    if value != g.output[0].name:
        raise ValueError("%s: the chain ends at %s, not at the graph output %s" % (path, value, g.output[0].name))
    return torch.nn.Sequential(*layers).eval()


def load_model(path):
    """Returns (module, manifest) after the sha256 and golden checks."""
    with open(path, "rb") as f:
        data = f.read()
    with open(path + ".json") as f:
        side = json.load(f)
    got = hashlib.sha256(data).hexdigest()
    if got != side.get("sha256"):
        raise ValueError("%s: sha256 %s, sidecar says %s" % (path, got, side.get("sha256")))
    net = to_torch(path, onnx.load_from_string(data))
    shape = side["input"]["shape"]
    gold = side["golden"]
    x = torch.from_numpy(lattice(int(np.prod(shape))).reshape([1] + shape))
    with torch.inference_mode():
        y = net(x).numpy().reshape(-1)
    want = np.asarray(gold["output"], dtype=np.float64)
    diff = float(np.max(np.abs(y.astype(np.float64) - want)))
    if not diff <= gold["tolerance"]:
        raise ValueError("%s: golden check failed: max difference %g > tolerance %g" % (path, diff, gold["tolerance"]))
    return net, side


def published(norm, raw):
    z = (float(raw) - norm["mean"]) / norm["std"]
    for t in norm.get("thresholds") or []:
        if t["name"] == "floor" and z < t["value"]:
            return 0.0
    return z


# --- preprocessing (vision/vision.go) -------------------------------------------------

class Preprocessor:
    def __init__(self, vc):
        self.w, self.h = vc["width"], vc["height"]
        self.crop = vc.get("crop")
        self.flip = vc.get("flip", "none")
        self.channels = vc.get("channels", "rgb")
        self.scale = vc["scale"]
        self.mean, self.std = vc["mean"], vc["std"]
        nc = 1 if self.channels == "gray" else 3
        v = np.arange(256, dtype=np.float64)
        self.lut = [((v * self.scale - self.mean[c]) / self.std[c]).astype(np.float32) for c in range(nc)]
        self.nc = nc

    def __call__(self, msg):
        ch = {"rgb8": 3, "bgr8": 3, "mono8": 1}.get(msg.encoding)
        if ch is None:
            raise ValueError("unknown encoding %r" % msg.encoding)
        raw = np.frombuffer(msg.data, dtype=np.uint8)[: msg.step * msg.height].reshape(msg.height, msg.step)
        img = raw[:, : msg.width * ch].reshape(msg.height, msg.width, ch)
        if self.crop:
            c = self.crop
            if c["x"] + c["width"] > msg.width or c["y"] + c["height"] > msg.height:
                raise ValueError("crop outside the %dx%d image" % (msg.width, msg.height))
            img = img[c["y"]:c["y"] + c["height"], c["x"]:c["x"] + c["width"]]
        if not img.flags["C_CONTIGUOUS"]:
            img = np.ascontiguousarray(img)
        out = cv2.resize(img, (self.w, self.h), interpolation=cv2.INTER_AREA).reshape(self.h, self.w, ch)
        if self.flip in ("horizontal", "both"):
            out = out[:, ::-1]
        if self.flip in ("vertical", "both"):
            out = out[::-1]
        r, b = (2, 0) if msg.encoding == "bgr8" else (0, 2)
        t = np.empty((self.nc, self.h, self.w), dtype=np.float32)
        if self.channels == "gray" and ch == 3:
            luma = 0.299 * out[:, :, r].astype(np.float64) + 0.587 * out[:, :, 1] + 0.114 * out[:, :, b]
            t[0] = ((luma * self.scale - self.mean[0]) / self.std[0]).astype(np.float32)
        elif ch == 1:
            for c in range(self.nc):
                t[c] = self.lut[c][out[:, :, 0]]
        else:
            src = (r, 1, b) if self.channels == "rgb" else (b, 1, r)
            for c in range(3):
                t[c] = self.lut[c][out[:, :, src[c]]]
        return t


# --- observation (daemon/rosio.Builder) -----------------------------------------------

HAND_LOW = (-0.525, 0.348, -0.0525)
HAND_HIGH = (0.525, 1.025, 0.7)
QUAT_LAYOUT = {"reach": "xyzw", "push": "xyzw", "sweep-into": "xyzw", "soccer": "xyzw", "door-open": "xyzw",
               "drawer-open": "wxyz", "button-press-topdown": "wxyz", "window-open": "none"}


def task_layout(task):
    t = task or ""
    base, _, ver = t.rpartition("-v")
    if base and ver.isdigit():
        t = base
    return QUAT_LAYOUT.get(t, "xyzw")


class Slot:
    """Latest value with its receive time (time.monotonic)."""
    __slots__ = ("msg", "at", "n")

    def __init__(self):
        self.msg, self.at, self.n = None, 0.0, 0


class Frame:
    """A sensor_msgs/Image's fields, for the test modes."""

    def __init__(self, encoding, width, height, step, data):
        self.encoding, self.width, self.height, self.step, self.data = encoding, width, height, step, data


def preprocess_file(path):
    with open(path) as f:
        req = json.load(f)
    with open(req["data_file"], "rb") as f:
        data = f.read()
    t = Preprocessor(req["vision"])(Frame(req["encoding"], req["width"], req["height"], req["step"], data))
    t.astype("<f4").tofile(req["out_file"])
    return 0


def forward_file(model, inp, out):
    torch.set_grad_enabled(False)
    net, man = load_model(model)
    shape = man["input"]["shape"]
    x = np.fromfile(inp, dtype="<f4").reshape([-1] + shape)
    net(torch.from_numpy(x)).numpy().astype("<f4").tofile(out)
    return 0


# --- the loop ---------------------------------------------------------------------------

def percentiles(xs):
    if not xs:
        return {"p50": None, "p99": None, "max": None, "exact": True}
    s = sorted(xs)
    n = len(s)

    def q(p):
        return s[max(1, math.ceil(p * n)) - 1]
    return {"p50": q(0.5), "p99": q(0.99), "max": s[-1], "exact": True}


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def main(argv):
    a = parse_args(argv)
    imports()
    if a.check:
        print(runtime_versions())
        return 0
    if a.preprocess:
        return preprocess_file(a.preprocess)
    if a.forward:
        return forward_file(*a.forward)
    torch.set_num_threads(a.threads)
    torch.set_grad_enabled(False)

    policy, pman = load_model(a.policy)
    ctl = pman.get("control") or {}
    if not ctl:
        raise ValueError("%s: no control section" % a.policy)
    speed = ctl["action_scale_m"] * ctl["rate_hz"]  # m/s of an action of 1
    r0, rman = load_model(a.reward)
    ens = rman.get("ensemble") or {"size": 1}
    rewards = [(r0, rman["reward"])]
    for m in range(1, ens["size"]):
        net, man = load_model(member_path(a.reward, m))
        rewards.append((net, man["reward"]))
    pre = Preprocessor(rman["input"]["vision"])
    layout = task_layout(pman.get("task"))
    objects = [o for o in a.objects.split(",") if o]
    log("models loaded: %d reward members, policy at %d Hz (%.3f m/s per unit action); %s" % (len(rewards), ctl["rate_hz"], speed, runtime_versions()))

    rospy.init_node(a.node, anonymous=False, disable_signals=True)
    lock = threading.Lock()
    slots = {k: Slot() for k in ["image", "ee", "joints", "goal"] + ["obj:" + o for o in objects]}

    def keep(key):
        def cb(msg):
            now = time.monotonic()
            with lock:
                s = slots[key]
                s.msg, s.at, s.n = msg, now, s.n + 1
        return cb

    subs = [
        rospy.Subscriber("camera/image_raw", Image, keep("image"), queue_size=1, buff_size=1 << 24, tcp_nodelay=True),
        rospy.Subscriber("arm/ee_pose", PoseStamped, keep("ee"), queue_size=1, tcp_nodelay=True),
        rospy.Subscriber("arm/joint_states", JointState, keep("joints"), queue_size=1, tcp_nodelay=True),
        rospy.Subscriber("task/goal", PoseStamped, keep("goal"), queue_size=1, tcp_nodelay=True),
    ] + [rospy.Subscriber("objects/%s/pose" % o, PoseStamped, keep("obj:" + o), queue_size=1, tcp_nodelay=True) for o in objects]
    pub_vel = rospy.Publisher("arm/cmd_vel", TwistStamped, queue_size=1)
    pub_grip = rospy.Publisher("gripper/command", Float64, queue_size=1)
    pub_rew = rospy.Publisher("reward", Float32, queue_size=1)

    deadline = time.monotonic() + a.start_timeout
    while True:
        with lock:
            missing = [k for k, s in slots.items() if s.msg is None]
        if not missing:
            break
        if time.monotonic() > deadline:
            log("no message on %s within %.0f s" % (", ".join(missing), a.start_timeout))
            return 2
        time.sleep(0.05)
    log("inputs received; running at %d Hz" % a.rate)
    rt = 0
    if a.realtime_priority > 0:
        try:  # pid 0: this thread only, as the daemon does for its control thread
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(a.realtime_priority))
            rt = a.realtime_priority
        except OSError as e:
            log("realtime priority %d refused, ordinary scheduling: %s" % (a.realtime_priority, e))

    period = 1.0 / a.rate
    prev = None
    last_goal = None
    last_frame = None  # the Image message whose reward we have
    reward = float("nan")
    cam_at = 0.0
    fresh = False  # the frame at cam_at has not been in a sent command yet
    grip = 0.0
    lat, comp, c2c = [], [], []
    overruns = cycles = reward_runs = 0
    frames0 = 0
    rss0 = rss_mid = None
    start = time.monotonic()
    w0, w1 = start + a.warmup, start + a.warmup + a.duration
    k = 0
    while True:
        dl = start + k * period
        left = dl - time.monotonic()
        if left > 0:
            time.sleep(left)
        woke = time.monotonic()
        if woke >= w1:
            break
        measuring = woke >= w0
        if measuring and rss0 is None:
            rss0 = rss_mb()
            with lock:
                frames0 = slots["image"].n
        if rss_mid is None and woke >= w0 + a.duration / 2:
            rss_mid = rss_mb()

        with lock:
            img, img_at = slots["image"].msg, slots["image"].at
            ee, ee_at = slots["ee"].msg, slots["ee"].at
            js, js_at = slots["joints"].msg, slots["joints"].at
            goal = slots["goal"].msg
            objs = [(slots["obj:" + o].msg, slots["obj:" + o].at) for o in objects]
        # Reward: only for a frame not seen before.
        if img is not last_frame:
            x = torch.from_numpy(pre(img)).unsqueeze(0)
            vals = [published(norm, net(x).item()) for net, norm in rewards]
            reward = sum(vals) / len(vals)
            last_frame, cam_at, fresh = img, img_at, True
            reward_runs += measuring
        # Observation.
        cur = [0.0] * 18
        p = ee.pose.position
        cur[0:3] = [p.x, p.y, p.z]
        names = {n: i for i, n in enumerate(js.name)}
        right, left_ = js.position[names["r_close"]], js.position[names["l_close"]]
        cur[3] = max(0.0, min(1.0, abs(0.1 + left_ - right) / 0.1))
        for i, (om, _) in enumerate(objs[:2]):
            base = 4 + 7 * i
            op, oq = om.pose.position, om.pose.orientation
            cur[base:base + 3] = [op.x, op.y, op.z]
            if layout == "xyzw":
                cur[base + 3:base + 7] = [oq.x, oq.y, oq.z, oq.w]
            elif layout == "wxyz":
                cur[base + 3:base + 7] = [oq.w, oq.x, oq.y, oq.z]
        g = goal.pose.position
        gp = (g.x, g.y, g.z)
        if last_goal is None or max(abs(u - v) for u, v in zip(gp, last_goal)) > 1e-3:
            prev, last_goal = list(cur), gp  # a new goal is a new episode
        obs = cur + prev + list(gp)
        for base in (0, 18):
            for i in range(3):
                obs[base + i] = max(HAND_LOW[i], min(HAND_HIGH[i], obs[base + i]))
            obs[base + 3] = max(-1.0, min(1.0, obs[base + 3]))
        prev = cur
        act = policy(torch.tensor(obs, dtype=torch.float32).unsqueeze(0))[0].tolist()
        # Hold (zero velocity, gripper unchanged) on stale inputs or a non-finite action.
        state_at = min([ee_at, js_at] + [t for _, t in objs])
        hold = (woke - cam_at > a.camera_max_age or woke - state_at > a.state_max_age
                or not all(math.isfinite(v) for v in act))
        if hold:
            vel = (0.0, 0.0, 0.0)
        else:
            vel = tuple(max(-1.0, min(1.0, v)) * speed for v in act[:3])
            grip = max(-1.0, min(1.0, act[3]))
        pub_grip.publish(Float64(grip))
        tw = TwistStamped()
        tw.header.stamp = rospy.Time.from_sec(time.time())
        tw.header.frame_id = "world"
        tw.twist.linear.x, tw.twist.linear.y, tw.twist.linear.z = vel
        pub_vel.publish(tw)
        sent = time.monotonic()
        if woke - cam_at <= a.camera_max_age:
            pub_rew.publish(Float32(reward))
        end = time.monotonic()

        nxt = k + 1
        over = end - (start + nxt * period)
        if over > 0:
            nxt += int(over / period) + 1
        if measuring:
            cycles += 1
            lat.append((woke - dl) * 1000)
            comp.append((end - woke) * 1000)
            if fresh:
                c2c.append((sent - cam_at) * 1000)
            if end > dl + period:
                overruns += 1
        fresh = False
        k = nxt

    rss1 = rss_mb()
    with lock:
        frames = slots["image"].n - frames0
    rep = {
        "impl": "python", "rate_hz": a.rate, "realtime_priority": rt, "seconds": a.duration, "cycles": cycles,
        "achieved_hz": cycles / a.duration, "overruns": overruns,
        "overrun_pct": 100.0 * overruns / cycles if cycles else 0.0,
        "lateness_ms": percentiles(lat), "compute_ms": percentiles(comp), "camera_to_command_ms": percentiles(c2c),
        "rss_start_mb": rss0 if rss0 is not None else rss1, "rss_mid_mb": rss_mid if rss_mid is not None else rss1, "rss_end_mb": rss1,
        "rss_growth_mb": rss1 - (rss0 if rss0 is not None else rss1),
        "camera_hz": frames / a.duration, "frames": frames, "reward_runs": reward_runs,
        "runtime": runtime_versions() + ", torch threads %d" % a.threads,
    }
    for s in subs:
        s.unregister()
    print(json.dumps(rep), flush=True)
    rospy.signal_shutdown("done")
    return 0


if __name__ == "__main__":
    try:
        code = main(sys.argv[1:])
    except Exception as e:  # one line naming what failed, not a traceback
        log("error: %s: %s" % (type(e).__name__, e))
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    # rospy's threads can keep the interpreter alive; the report is out.
    os._exit(code)
