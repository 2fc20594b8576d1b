"""PyTorch eager peer for the LoRA train-step bench (test/bench/lora-train-step.ts).

A LLaMA-style model written for speed in float32 (the oracle's reference.py is float64 and written
for faithfulness): RMSNorm, rotary embeddings (HF rotate_half), causal attention, SwiGLU, untied LM
head, frozen weights with requires_grad=False, LoRA (PEFT order B(A(x)) * alpha/r) on the named
targets, mean token cross-entropy, AdamW with global-norm clipping at 1.0: the same train step the
engine compiles.

Protocol (one JSON object per line): the first line on stdin is the setup (model_dir, threads,
rank, alpha, targets, lora A init, batch ids/targets, optimizer); the peer answers
{"ready": ..., "blas": ..., "threads": ...}. Then commands: {"cmd": "step", "n": k} → {"times_ms",
"values": losses}; {"cmd": "matmul", "n": k, "size": s} → {"times_ms"}; {"cmd": "quit"}.
forward_peer.py reuses the model for the no-gradient evaluation bench. A long-lived peer lets the caller alternate our step and its step
one by one, so both see the same load on a shared machine.
"""
import base64
import json
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "oracle"))
sys.path.insert(0, os.path.join(HERE, "..", "oracle", "models"))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from reference import read_safetensors  # noqa: E402
from torch_util import blas_info  # noqa: E402

DT = torch.float32


def decode(obj):
    import numpy as np

    dt = {"float32": np.float32, "int64": np.int64}[obj["dtype"]]
    arr = np.frombuffer(base64.b64decode(obj["b64"]), dtype=np.dtype(dt).newbyteorder("<")).astype(dt)
    return torch.from_numpy(arr.reshape(obj["shape"]).copy())


class Llama:
    def __init__(self, model_dir, rank=None, alpha=None, targets=(), lora_init=None):
        with open(os.path.join(model_dir, "config.json")) as f:
            cfg = json.load(f)
        self.cfg = cfg
        self.W = {k: v.to(DT).contiguous() for k, v in read_safetensors(os.path.join(model_dir, "model.safetensors")).items()}
        self.d = cfg["hidden_size"]
        self.H = cfg["num_attention_heads"]
        self.Hkv = cfg.get("num_key_value_heads", self.H)
        self.hd = self.d // self.H
        self.eps = cfg.get("rms_norm_eps", 1e-6)
        self.theta = cfg.get("rope_theta", 10000.0)
        self.L = cfg["num_hidden_layers"]
        self.lora = {}
        self.scaling = (alpha / rank) if rank else 0.0
        for i in range(self.L):
            for t in targets:
                mod = f"model.layers.{i}.{'self_attn' if t.endswith(('q_proj', 'k_proj', 'v_proj', 'o_proj')) else 'mlp'}.{t}"
                w = self.W[mod + ".weight"]
                key = f"base_model.model.{mod}.lora_A.weight"
                A = (lora_init[key].to(DT) if lora_init and key in lora_init else torch.zeros(rank, w.shape[1], dtype=DT)).clone().requires_grad_(True)
                B = torch.zeros(w.shape[0], rank, dtype=DT, requires_grad=True)
                self.lora[mod] = (A, B)
        self.params = [p for ab in self.lora.values() for p in ab]
        self._rope = {}
        self._mask = {}

    def rope(self, T):
        if T not in self._rope:
            inv = 1.0 / (self.theta ** (torch.arange(0, self.hd, 2, dtype=torch.float64) / self.hd))
            f = torch.outer(torch.arange(T, dtype=torch.float64), inv)
            emb = torch.cat((f, f), dim=-1)
            self._rope[T] = (emb.cos().to(DT), emb.sin().to(DT))
        return self._rope[T]

    def causal(self, T):
        if T not in self._mask:
            self._mask[T] = torch.full((T, T), float("-inf"), dtype=DT).triu(1)
        return self._mask[T]

    def lin(self, name, h):
        y = F.linear(h, self.W[name + ".weight"])
        ab = self.lora.get(name)
        if ab is not None:
            y = y + F.linear(F.linear(h, ab[0]), ab[1]) * self.scaling
        return y

    @staticmethod
    def rot(x, cos, sin):
        half = x.shape[-1] // 2
        return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin

    def rms(self, x, w):
        return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))

    def logits(self, ids):
        B, T = ids.shape
        W = self.W
        x = W["model.embed_tokens.weight"][ids]
        cos, sin = self.rope(T)
        mask = self.causal(T)
        rep = self.H // self.Hkv
        for i in range(self.L):
            p = f"model.layers.{i}."
            h = self.rms(x, W[p + "input_layernorm.weight"])
            q = self.lin(p + "self_attn.q_proj", h).view(B, T, self.H, self.hd).transpose(1, 2)
            k = self.lin(p + "self_attn.k_proj", h).view(B, T, self.Hkv, self.hd).transpose(1, 2)
            v = self.lin(p + "self_attn.v_proj", h).view(B, T, self.Hkv, self.hd).transpose(1, 2)
            q = self.rot(q, cos, sin)
            k = self.rot(k, cos, sin)
            if rep > 1:
                k = k.repeat_interleave(rep, dim=1)
                v = v.repeat_interleave(rep, dim=1)
            s = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(self.hd)) + mask
            a = torch.matmul(torch.softmax(s, dim=-1), v).transpose(1, 2).reshape(B, T, self.d)
            x = x + self.lin(p + "self_attn.o_proj", a)
            h = self.rms(x, W[p + "post_attention_layernorm.weight"])
            x = x + self.lin(p + "mlp.down_proj", F.silu(self.lin(p + "mlp.gate_proj", h)) * self.lin(p + "mlp.up_proj", h))
        x = self.rms(x, W["model.norm.weight"])
        return F.linear(x, W["lm_head.weight"])


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    setup = json.loads(sys.stdin.readline())
    torch.set_num_threads(int(setup["threads"]))
    lora_init = {k: decode(v) for k, v in setup.get("lora_init", {}).items()}
    m = Llama(setup["model_dir"], setup.get("rank"), setup.get("alpha"), setup.get("lora_targets", []), lora_init)
    ids = decode(setup["input_ids"])
    tgt = decode(setup["targets"])
    o = setup.get("optimizer", {})
    opt = torch.optim.AdamW(m.params, lr=o.get("lr", 1e-4), betas=(o.get("beta1", 0.9), o.get("beta2", 0.999)), eps=o.get("eps", 1e-8), weight_decay=o.get("weight_decay", 0.0)) if m.params else None
    clip = setup.get("clip", 1.0)
    V = m.cfg["vocab_size"]

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(m.logits(ids).view(-1, V), tgt.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.params, clip)
        opt.step()
        return loss.item()

    serve(m, {"step": step})


def serve(m, commands):
    """Answers the setup line, then runs timed commands until "quit" (see the module doc)."""
    reply({"ready": True, "blas": blas_info(), "threads": torch.get_num_threads(), "lora_params": sum(p.numel() for p in m.params)})
    for line in sys.stdin:
        c = json.loads(line)
        if c["cmd"] == "quit":
            break
        times, values = [], []
        if c["cmd"] == "matmul":
            n = int(c["size"])
            a = torch.randn(n, n, dtype=DT)
            b = torch.randn(n, n, dtype=DT)
            out = torch.empty(n, n, dtype=DT)
            for _ in range(int(c["n"])):
                t0 = time.perf_counter()
                torch.mm(a, b, out=out)
                times.append((time.perf_counter() - t0) * 1000.0)
            reply({"times_ms": times})
            continue
        fn = commands[c["cmd"]]
        for _ in range(int(c["n"])):
            t0 = time.perf_counter()
            values.append(fn())
            times.append((time.perf_counter() - t0) * 1000.0)
        reply({"times_ms": times, "values": values})


if __name__ == "__main__":
    main()
