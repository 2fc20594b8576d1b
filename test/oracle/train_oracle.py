"""PyTorch oracle for the train-step compiler: loss and gradients at the initial weights, then
`steps` AdamW updates (clip_grad_norm_, LambdaLR warmup + cosine/linear), for two tiny models:
  mlp:       y = W2·gelu_tanh(W1·x + b1) + b2, mean squared error
  attention: token embedding → RMSNorm/LayerNorm → causal multi-head self-attention → output
             projection + residual → vocabulary head → cross-entropy (labels −100 ignored)
Everything is written out with plain torch ops, independently of the TypeScript engine.
"""
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch_util import read_input, write_output  # noqa: E402


def mlp_loss(p, batch, cfg):
    h = F.gelu(batch["x"] @ p["w1"].T + p["b1"], approximate="tanh")
    y = h @ p["w2"].T + p["b2"]
    return ((y - batch["y"]) ** 2).mean()


def attention_logits(p, tokens, cfg):
    B, T = tokens.shape
    D, H = cfg["d"], cfg["heads"]
    hd = D // H
    x = p["emb"][tokens]
    eps = cfg["eps"]
    if cfg["norm"] == "rms":
        h = x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * p["norm_w"]
    else:
        h = F.layer_norm(x, (D,), p["norm_w"], p["norm_b"], eps)
    q = (h @ p["wq"].T).view(B, T, H, hd).transpose(1, 2)
    k = (h @ p["wk"].T).view(B, T, H, hd).transpose(1, 2)
    v = (h @ p["wv"].T).view(B, T, H, hd).transpose(1, 2)
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    scores = scores.masked_fill(~causal, float("-inf"))
    ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, T, D)
    y = x + ctx @ p["wo"].T
    return y @ p["head"].T


def attention_loss(p, batch, cfg):
    logits = attention_logits(p, batch["tokens"], cfg)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["labels"].reshape(-1), ignore_index=-100)


LOSSES = {"mlp": mlp_loss, "attention": attention_loss}


def lr_factor(opt):
    warm, total, decay = opt["warmup"], opt["total"], opt["decay"]
    peak, floor = opt["lr"], opt.get("min_lr", 0.0)

    def f(s):  # s = number of updates already done (LambdaLR's epoch)
        if s < warm:
            return (s + 1) / warm
        if decay == "constant":
            return 1.0
        prog = min(1.0, max(0.0, (s - warm) / max(1, total - warm)))
        shape = 1 - prog if decay == "linear" else 0.5 * (1 + math.cos(math.pi * prog))
        return (floor + (peak - floor) * shape) / peak

    return f


def main():
    inp = read_input()
    torch.set_num_threads(int(inp.get("threads", 1)))
    loss_fn = LOSSES[inp["model"]]
    cfg = inp.get("config", {})
    params = {k: v.clone().requires_grad_(True) for k, v in inp["params"].items()}
    batches = inp["batches"]

    loss = loss_fn(params, batches[0], cfg)
    loss.backward()
    grads = {k: v.grad.clone() for k, v in params.items()}
    for v in params.values():
        v.grad = None

    o = inp["optimizer"]
    names = list(params.keys())
    opt = torch.optim.AdamW([params[n] for n in names], lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"], weight_decay=o["weight_decay"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor(o))
    losses = []
    for i in range(inp["steps"]):
        opt.zero_grad(set_to_none=True)
        l = loss_fn(params, batches[i % len(batches)], cfg)
        l.backward()
        if inp["clip"] > 0:
            torch.nn.utils.clip_grad_norm_([params[n] for n in names], inp["clip"])
        opt.step()
        sched.step()
        losses.append(l.item())
    write_output({"loss": loss.item(), "grads": grads, "losses": losses, "params": {k: v.detach() for k, v in params.items()}})


if __name__ == "__main__":
    main()
