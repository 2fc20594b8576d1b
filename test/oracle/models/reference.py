"""Reference implementations in plain PyTorch of the architectures the engine builds.

They follow Hugging Face transformers' modeling code (LlamaForCausalLM, Qwen2ForCausalLM,
GPT2LMHeadModel) line by line in semantics, without depending on the transformers package, and
llama2.c's run.c for the llama2.c checkpoint format (adjacent-pair rotary embeddings applied to the
ORIGINAL weights, so the reference is independent of the importer's wq/wk permutation).
Everything runs in float64 unless asked otherwise, so the oracle's own rounding is negligible.
"""
import json
import math
import struct

import torch

# ── safetensors, written and read by hand (8-byte LE header length + JSON header + raw bytes) ──

_ST_DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.int64: "I64"}
_ST_TORCH = {v: k for k, v in _ST_DTYPES.items()}


def write_safetensors(path, tensors, metadata=None):
    header = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        raw = t.numpy().tobytes()
        header[name] = {"dtype": _ST_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata is not None:
        header["__metadata__"] = metadata
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((8 - len(hjson) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    out = {}
    base = 8 + n
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        dtype = _ST_TORCH[info["dtype"]]
        t = torch.frombuffer(bytearray(data[base + a : base + b]), dtype=dtype).reshape(info["shape"])
        out[name] = t
    return out


# ── LLaMA / Mistral / Qwen2 (HF semantics) ──


def rms_norm(x, w, eps):
    var = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def hf_rope(head_dim, theta, positions, dtype):
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).to(torch.float64) / head_dim))
    freqs = torch.outer(positions.to(torch.float64), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def causal_attention(q, k, v, attn_mask=None):
    """q [B,H,T,D], k/v [B,Hkv,S,D] (S ≥ T, the last T keys align with the queries)."""
    n_rep = q.shape[1] // k.shape[1]
    k = k.repeat_interleave(n_rep, dim=1)
    v = v.repeat_interleave(n_rep, dim=1)
    T, S = q.shape[2], k.shape[2]
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    qpos = torch.arange(S - T, S).unsqueeze(1)
    kpos = torch.arange(S).unsqueeze(0)
    allowed = kpos <= qpos
    if attn_mask is not None:  # [B, S] 1 = real token
        allowed = allowed.unsqueeze(0) & attn_mask.bool().unsqueeze(1)
        allowed = allowed.unsqueeze(1)
    scores = scores.masked_fill(~allowed, float("-inf"))
    p = torch.softmax(scores, dim=-1)
    return p @ v


def llama_forward(cfg, w, ids, attn_mask=None, dtype=torch.float64):
    """Logits [B,T,V] of a LlamaForCausalLM / MistralForCausalLM / Qwen2ForCausalLM."""
    W = {k: v.to(dtype) for k, v in w.items()}
    d = cfg["hidden_size"]
    H = cfg["num_attention_heads"]
    Hkv = cfg.get("num_key_value_heads", H)
    hd = cfg.get("head_dim", d // H)
    eps = cfg.get("rms_norm_eps", 1e-6)
    theta = cfg.get("rope_theta", 10000.0)
    B, T = ids.shape
    x = W["model.embed_tokens.weight"][ids]
    cos, sin = hf_rope(hd, theta, torch.arange(T), dtype)

    def lin(name, h):
        y = h @ W[name + ".weight"].T
        if name + ".bias" in W:
            y = y + W[name + ".bias"]
        return y

    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms_norm(x, W[p + "input_layernorm.weight"], eps)
        q = lin(p + "self_attn.q_proj", h).view(B, T, H, hd).transpose(1, 2)
        k = lin(p + "self_attn.k_proj", h).view(B, T, Hkv, hd).transpose(1, 2)
        v = lin(p + "self_attn.v_proj", h).view(B, T, Hkv, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        a = causal_attention(q, k, v, attn_mask).transpose(1, 2).reshape(B, T, H * hd)
        x = x + lin(p + "self_attn.o_proj", a)
        h = rms_norm(x, W[p + "post_attention_layernorm.weight"], eps)
        gate = lin(p + "mlp.gate_proj", h)
        up = lin(p + "mlp.up_proj", h)
        x = x + lin(p + "mlp.down_proj", torch.nn.functional.silu(gate) * up)
    x = rms_norm(x, W["model.norm.weight"], eps)
    head = W["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings", False) else W["lm_head.weight"]
    return x @ head.T


# ── GPT-2 (HF semantics: Conv1D weights [in, out], gelu_new, learned positions, tied head) ──


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = (x - mu).pow(2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def gpt2_forward(cfg, w, ids, attn_mask=None, dtype=torch.float64):
    W = {k: v.to(dtype) for k, v in w.items()}
    d = cfg["n_embd"]
    H = cfg["n_head"]
    hd = d // H
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    B, T = ids.shape
    x = W["transformer.wte.weight"][ids] + W["transformer.wpe.weight"][torch.arange(T)]

    def conv1d(name, h):
        return h @ W[name + ".weight"] + W[name + ".bias"]

    for i in range(cfg["n_layer"]):
        p = f"transformer.h.{i}."
        h = layer_norm(x, W[p + "ln_1.weight"], W[p + "ln_1.bias"], eps)
        qkv = conv1d(p + "attn.c_attn", h)
        q, k, v = qkv.split(d, dim=2)
        q = q.view(B, T, H, hd).transpose(1, 2)
        k = k.view(B, T, H, hd).transpose(1, 2)
        v = v.view(B, T, H, hd).transpose(1, 2)
        a = causal_attention(q, k, v, attn_mask).transpose(1, 2).reshape(B, T, d)
        x = x + conv1d(p + "attn.c_proj", a)
        h = layer_norm(x, W[p + "ln_2.weight"], W[p + "ln_2.bias"], eps)
        x = x + conv1d(p + "mlp.c_proj", gelu_new(conv1d(p + "mlp.c_fc", h)))
    x = layer_norm(x, W["transformer.ln_f.weight"], W["transformer.ln_f.bias"], eps)
    return x @ W["transformer.wte.weight"].T


# ── llama2.c (run.c semantics, adjacent-pair RoPE on the original weights) ──


def read_llama2c(path):
    with open(path, "rb") as f:
        data = f.read()
    dim, hidden, n_layers, n_heads, n_kv, vocab, max_seq = struct.unpack("<7i", data[:28])
    shared = vocab > 0
    vocab = abs(vocab)
    floats = torch.frombuffer(bytearray(data[28:]), dtype=torch.float32)
    kv_dim = dim * n_kv // n_heads
    hs = dim // n_heads
    off = 0

    def take(*shape):
        nonlocal off
        n = 1
        for s in shape:
            n *= s
        t = floats[off : off + n].reshape(shape).clone()
        off += n
        return t

    w = {}
    w["tok"] = take(vocab, dim)
    w["rms_att"] = take(n_layers, dim)
    w["wq"] = take(n_layers, dim, dim)
    w["wk"] = take(n_layers, kv_dim, dim)
    w["wv"] = take(n_layers, kv_dim, dim)
    w["wo"] = take(n_layers, dim, dim)
    w["rms_ffn"] = take(n_layers, dim)
    w["w1"] = take(n_layers, hidden, dim)
    w["w2"] = take(n_layers, dim, hidden)
    w["w3"] = take(n_layers, hidden, dim)
    w["rms_final"] = take(dim)
    take(max_seq, hs // 2)
    take(max_seq, hs // 2)
    w["wcls"] = w["tok"] if shared else take(vocab, dim)
    cfg = dict(dim=dim, hidden=hidden, n_layers=n_layers, n_heads=n_heads, n_kv=n_kv, vocab=vocab, max_seq=max_seq)
    return cfg, w


def llama2c_forward(cfg, w, ids, dtype=torch.float64):
    """Full-sequence forward of run.c's transformer; rotation of ADJACENT pairs (2i, 2i+1)."""
    W = {k: v.to(dtype) for k, v in w.items()}
    dim, H, Hkv = cfg["dim"], cfg["n_heads"], cfg["n_kv"]
    hs = dim // H
    T = ids.shape[0]
    x = W["tok"][ids]
    pos = torch.arange(T, dtype=torch.float64).unsqueeze(1)
    i = torch.arange(0, hs, 2, dtype=torch.float64)
    freq = 1.0 / (10000.0 ** (i / hs))
    ang = pos * freq  # [T, hs/2]
    fcr, fci = ang.cos().to(dtype), ang.sin().to(dtype)

    def rot(t):  # t [T, heads, hs]
        t0, t1 = t[..., 0::2], t[..., 1::2]
        out = torch.empty_like(t)
        out[..., 0::2] = t0 * fcr.unsqueeze(1) - t1 * fci.unsqueeze(1)
        out[..., 1::2] = t0 * fci.unsqueeze(1) + t1 * fcr.unsqueeze(1)
        return out

    def rms(h, g):
        return g * (h / torch.sqrt((h * h).mean(-1, keepdim=True) + 1e-5))

    for l in range(cfg["n_layers"]):
        h = rms(x, W["rms_att"][l])
        q = rot((h @ W["wq"][l].T).view(T, H, hs))
        k = rot((h @ W["wk"][l].T).view(T, Hkv, hs))
        v = (h @ W["wv"][l].T).view(T, Hkv, hs)
        a = causal_attention(q.transpose(0, 1).unsqueeze(0), k.transpose(0, 1).unsqueeze(0), v.transpose(0, 1).unsqueeze(0))
        a = a.squeeze(0).transpose(0, 1).reshape(T, dim)
        x = x + a @ W["wo"][l].T
        h = rms(x, W["rms_ffn"][l])
        x = x + (torch.nn.functional.silu(h @ W["w1"][l].T) * (h @ W["w3"][l].T)) @ W["w2"][l].T
    x = rms(x, W["rms_final"])
    return x @ W["wcls"].T
