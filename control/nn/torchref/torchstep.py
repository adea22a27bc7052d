# torchstep.py: PyTorch's side of robodistill's control/nn/torchref (written there by Go and
# run with Debian's /usr/bin/python3 and python3-torch, one thread).
#
#   torchstep.py DIR   reads DIR/spec.json and DIR/in.bin, writes DIR/out.json and DIR/out.bin
#
# mode "step":  one Bradley-Terry training step (forward, loss, backward, Adam) of the
#               network the spec describes, on the given parameters and batch; writes the
#               rewards, the loss, the gradients and the updated parameters.
# mode "bench": times that step on torch's own random parameters and batch.
# mode "infer": times one cycle of inference (every network of "nets" once, batch 1, no
#               gradients) on the given parameters; writes the cycle times.
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)
torch.manual_seed(0)


def build(layers):
    mods = []
    for l in layers:
        t = l["type"]
        if t == "conv2d":
            mods.append(nn.Conv2d(l["in"], l["out"], l["k"], stride=l["stride"], padding=l["pad"]))
        elif t == "linear":
            mods.append(nn.Linear(l["in"], l["out"]))
        elif t == "relu":
            mods.append(nn.ReLU())
        elif t == "tanh":
            mods.append(nn.Tanh())
        elif t == "flatten":
            mods.append(nn.Flatten())
        elif t == "layernorm":
            mods.append(nn.LayerNorm(l["f"], eps=l["eps"]))
        else:
            raise SystemExit("torchstep.py: unknown layer type %r" % t)
    return nn.Sequential(*mods)


def optimizer(params, a):
    cls = torch.optim.AdamW if a["decoupled"] else torch.optim.Adam
    return cls(params, lr=a["lr"], betas=(a["beta1"], a["beta2"]), eps=a["eps"],
               weight_decay=a["weight_decay"], foreach=False)


def bt_loss(r, target, pairs, smoothing):
    d = r[:pairs, 0] - r[pairs:, 0]
    y = target * (1 - smoothing) + smoothing / 2
    return F.binary_cross_entropy_with_logits(d, y)


def step(net, opt, x, target, pairs, smoothing):
    opt.zero_grad(set_to_none=False)
    r = net(x)
    loss = bt_loss(r, target, pairs, smoothing)
    loss.backward()
    opt.step()
    return r, loss


def main():
    d = sys.argv[1]
    with open(os.path.join(d, "spec.json")) as f:
        spec = json.load(f)
    net = build(spec["layers"] or [])
    pairs, smoothing = spec["pairs"], spec["smoothing"]
    out = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    if spec["mode"] == "bench":
        x = torch.rand(spec["input"])
        target = (torch.arange(pairs) % 3).float() / 2
        opt = optimizer(net.parameters(), spec["adam"])
        times = []
        for i in range(spec["warmup"] + spec["steps"]):
            t0 = time.perf_counter()
            step(net, opt, x, target, pairs, smoothing)
            t1 = time.perf_counter()
            if i >= spec["warmup"]:
                times.append((t1 - t0) * 1e3)
        out["times_ms"] = times
        with open(os.path.join(d, "out.json"), "w") as f:
            json.dump(out, f)
        return

    raw = np.fromfile(os.path.join(d, "in.bin"), dtype="<f4")
    if spec["mode"] == "infer":
        nets, xs, off = [], [], 0
        for k, n in enumerate(spec["nets"]):
            m = build(n["layers"])
            state = {}
            for t in spec["tensors"]:
                if t["name"].startswith("n%d." % k):
                    size = int(np.prod(t["shape"]))
                    state[t["name"][len("n%d." % k):]] = torch.from_numpy(raw[off:off + size].reshape(t["shape"]).copy())
                    off += size
            m.load_state_dict(state, strict=True)
            m.eval()
            nets.append(m)
            xs.append(torch.rand([1] + n["input"]))
        times = []
        with torch.no_grad():
            for i in range(spec["warmup"] + spec["steps"]):
                t0 = time.perf_counter()
                for m, x in zip(nets, xs):
                    m(x)
                t1 = time.perf_counter()
                if i >= spec["warmup"]:
                    times.append((t1 - t0) * 1e3)
        out["times_ms"] = times
        with open(os.path.join(d, "out.json"), "w") as f:
            json.dump(out, f)
        return
    tensors, off = {}, 0
    for t in spec["tensors"]:
        n = int(np.prod(t["shape"])) if t["shape"] else 1
        tensors[t["name"]] = torch.from_numpy(raw[off:off + n].reshape(t["shape"]).copy())
        off += n
    if off != raw.size:
        raise SystemExit("torchstep.py: in.bin has %d values, spec.json describes %d" % (raw.size, off))
    state = {k[len("param."):]: v for k, v in tensors.items() if k.startswith("param.")}
    net.load_state_dict(state, strict=True)
    opt = optimizer(net.parameters(), spec["adam"])
    r, loss = step(net, opt, tensors["x"], tensors["target"], pairs, smoothing)

    names, blobs = [], []
    def put(name, t):
        a = t.detach().numpy().astype("<f4").ravel()
        names.append({"name": name, "shape": list(t.shape)})
        blobs.append(a)
    put("rewards", r)
    for name, p in net.named_parameters():
        put("grad." + name, p.grad)
    for name, p in net.named_parameters():
        put("param." + name, p)
    np.concatenate(blobs).tofile(os.path.join(d, "out.bin"))
    out["loss"] = loss.item()
    out["tensors"] = names
    with open(os.path.join(d, "out.json"), "w") as f:
        json.dump(out, f)


main()
