# sac_update.py: times one SAC update in PyTorch (Debian's python3-torch, one thread) at
# the shapes of robodistill's distill/policy: actor obs→H→H→2A (tanh-squashed Gaussian,
# smooth log-std clamp), twin critics (obs+A)→H→H→1 with Polyak targets, learnt log α;
# critics, then actor, then α, as SB3 orders them.
#
#   sac_update.py OBS ACT HIDDEN BATCH STEPS WARMUP   prints {"torch", "times_ms"} as JSON
import json
import sys
import time

import torch
import torch.nn as nn

torch.set_num_threads(1)
torch.manual_seed(0)
O, A, H, B, STEPS, WARM = map(int, sys.argv[1:7])
LO, HI, GAMMA, TAU = -5.0, 2.0, 0.99, 0.005


def mlp(i, o):
    return nn.Sequential(nn.Linear(i, H), nn.ReLU(), nn.Linear(H, H), nn.ReLU(), nn.Linear(H, o))


actor, q1, q2 = mlp(O, 2 * A), mlp(O + A, 1), mlp(O + A, 1)
t1, t2 = mlp(O + A, 1), mlp(O + A, 1)
t1.load_state_dict(q1.state_dict())
t2.load_state_dict(q2.state_dict())
log_alpha = torch.zeros(1, requires_grad=True)
opt_a = torch.optim.Adam(actor.parameters(), lr=3e-4)
opt_q = torch.optim.Adam(list(q1.parameters()) + list(q2.parameters()), lr=3e-4)
opt_al = torch.optim.Adam([log_alpha], lr=3e-4)
target_entropy = -float(A)


def sample(obs):
    out = actor(obs)
    mu, raw = out[:, :A], out[:, A:]
    log_std = LO + (HI - LO) * (torch.tanh(raw) + 1) / 2
    std = log_std.exp()
    u = mu + std * torch.randn_like(mu)
    a = torch.tanh(u)
    logp = (-0.5 * ((u - mu) / std) ** 2 - log_std - 0.5 * torch.log(torch.tensor(2 * torch.pi))).sum(1)
    logp = logp - (2 * (torch.log(torch.tensor(2.0)) - u - nn.functional.softplus(-2 * u))).sum(1)
    return a, logp


obs, act, nxt = torch.randn(B, O), torch.rand(B, A) * 2 - 1, torch.randn(B, O)
rew, done = torch.rand(B), torch.zeros(B)
times = []
for i in range(WARM + STEPS):
    t0 = time.perf_counter()
    alpha = log_alpha.exp().detach()
    with torch.no_grad():
        a2, lp2 = sample(nxt)
        qt = torch.min(t1(torch.cat([nxt, a2], 1)), t2(torch.cat([nxt, a2], 1))).squeeze(1)
        y = rew + GAMMA * (1 - done) * (qt - alpha * lp2)
    sa = torch.cat([obs, act], 1)
    lq = ((q1(sa).squeeze(1) - y) ** 2).mean() + ((q2(sa).squeeze(1) - y) ** 2).mean()
    opt_q.zero_grad()
    lq.backward()
    opt_q.step()
    a, lp = sample(obs)
    sa = torch.cat([obs, a], 1)
    la = (alpha * lp - torch.min(q1(sa), q2(sa)).squeeze(1)).mean()
    opt_a.zero_grad()
    la.backward()
    opt_a.step()
    lal = -(log_alpha * (lp.detach() + target_entropy)).mean()
    opt_al.zero_grad()
    lal.backward()
    opt_al.step()
    with torch.no_grad():
        for t, q in ((t1, q1), (t2, q2)):
            for pt, p in zip(t.parameters(), q.parameters()):
                pt.mul_(1 - TAU).add_(p, alpha=TAU)
    if i >= WARM:
        times.append((time.perf_counter() - t0) * 1e3)
print(json.dumps({"torch": torch.__version__, "times_ms": times}))
