#!/usr/bin/python3
"""Golden losses and gradients of small pipetrain models, from PyTorch.

This is a second, independent implementation of the model pipetrain builds
from a ModelSpec, written from the documented semantics (proto/model_spec.proto,
docs/normalization.md, core/data/batch.h, core/ops/*.h), not from the C++
code. tests/model_golden_test.cc builds the same models with pipetrain in f64
and compares the loss sums and every parameter's gradient with this file.

Regenerate (from the repository root; Debian's python3-torch, CPU only):

    /usr/bin/python3 tests/golden/make_model_golden.py

which rewrites tests/golden/model_golden.txt. The output is a pure function
of this script: no parameter or batch comes from a random number generator.

Parameters. Both sides register the parameters in pipetrain's order (the
ParameterStore names below) and fill element j (row-major) of parameter
number k with

    0.3·sin(0.37·j + 1.3·k)        (+ 1 for LN gains "*.gamma" and "*.head_scale")

so every LN gain and head scale differs from 1 and every bias from 0, and no
value depends on either framework's initialisation. (Init rules, e.g.
DeepNorm's β gains, are therefore not covered here; norm_constants_test is.)

Record format (plain text, one "case" ... "end" block per model):

    case NAME
    <spec field> VALUE              one line per ModelSpec field that is set
    norm_override STACK FIRST LAST NORM
    step N                          StepContext.step (BranchNorm's schedule)
    pair SRC... | TGT...            the sentence pairs, in order
    src_ids ROWS COLS V...          the collated batch (absent tensors omitted)
    loss_sum X / nll_sum X / tokens N
    param NAME SHAPE SUM SUMSQ      sum and sum of squares of d(loss_sum)/d(param)
    end

Float spec fields are float32 in the proto, so this script rounds them to
float32 before use, exactly as pipetrain sees them.
"""

import math
import os

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)

PAD, BOS, EOS = 0, 1, 2
PRE_NORM = ("PRE_LN", "NORMFORMER", "SUBLN")


def f32(x):
    """The double value of a float32 spec field written as `x`."""
    return float(np.float32(x))


# ---------------------------------------------------------------------------
# Specs


def base_spec(kind, norm, enc, dec):
    return {
        "kind": kind,
        "vocab_size": 13,
        "d_model": 8,
        "ffn_dim": 12,
        "heads": 2,
        "encoder_layers": enc,
        "decoder_layers": dec,
        "activation": "GELU",
        "norm": norm,
        "tied_embeddings": "true",
        "label_smoothing": "0.1",
        "layer_norm_eps": "1e-05",
        "max_positions": 64,
    }


def enc_dec(norm, **extra):
    s = base_spec("ENCODER_DECODER", norm, 2, 3)
    s.update(extra)
    return s


def dec_only(norm, **extra):
    s = base_spec("DECODER_ONLY", norm, 0, 3)
    s.update(extra)
    return s


def enc_only(norm, **extra):
    s = base_spec("ENCODER_ONLY", norm, 3, 0)
    s.update(extra)
    return s


# Sentence pairs of content ids (>= 4), of different lengths so every batch
# has padding. Encoder-only models label each source position, so their
# targets have the source's length.
SEQ2SEQ_PAIRS = [
    ([5, 9, 4, 7], [8, 6, 11]),
    ([10, 4], [5, 12, 7, 9, 6]),
    ([6, 7, 8], [4]),
]
TAGGING_PAIRS = [
    ([5, 9, 4, 7], [6, 10, 5, 8]),
    ([10, 4], [7, 7]),
    ([6, 7, 8], [12, 4, 9]),
]

BRANCH_LINEAR = {"branch_shape": "LINEAR_SCALE", "branch_max_norm_step": 10,
                 "branch_start_scale": "0.25"}
BRANCH_POWER = {"branch_shape": "NORMALIZED_POWER", "branch_max_norm_step": 10}

# (name, spec, step, norm overrides)
CASES = [
    ("ed_post_ln", enc_dec("POST_LN"), 0, []),
    ("ed_pre_ln", enc_dec("PRE_LN"), 0, []),
    ("ed_deepnorm", enc_dec("DEEPNORM"), 0, []),
    ("ed_deepnorm_set_alpha",
     enc_dec("DEEPNORM", encoder_alpha="1.5", decoder_alpha="2.25"), 0, []),
    ("ed_normformer", enc_dec("NORMFORMER"), 0, []),
    ("ed_subln", enc_dec("SUBLN"), 0, []),
    ("ed_branchnorm_linear_mid", enc_dec("BRANCHNORM", **BRANCH_LINEAR), 4, []),
    ("ed_branchnorm_power_mid", enc_dec("BRANCHNORM", **BRANCH_POWER), 4, []),
    ("ed_foundation_ln", enc_dec("FOUNDATION_LN"), 0, []),
    ("ed_upscale_ln", enc_dec("UPSCALE_LN"), 0, []),
    ("ed_post_ln_untied_relu",
     enc_dec("POST_LN", tied_embeddings="false", activation="RELU"), 0, []),
    # Mixed stacks: the encoder ends pre-norm (final LN), the decoder ends
    # with a DeepNorm layer (no final LN).
    ("ed_mixed_overrides", enc_dec("PRE_LN"), 0,
     [("ENCODER", 0, 0, "NORMFORMER"), ("DECODER", 1, 2, "DEEPNORM"),
      ("DECODER", 1, 1, "POST_LN")]),
    ("dec_pre_ln", dec_only("PRE_LN"), 0, []),
    ("dec_deepnorm", dec_only("DEEPNORM"), 0, []),
    ("dec_foundation_ln", dec_only("FOUNDATION_LN"), 0, []),
    ("dec_normformer", dec_only("NORMFORMER"), 0, []),
    ("dec_branchnorm_power_mid", dec_only("BRANCHNORM", **BRANCH_POWER), 7, []),
    ("enc_post_ln", enc_only("POST_LN"), 0, []),
    ("enc_upscale_ln", enc_only("UPSCALE_LN"), 0, []),
    ("enc_subln", enc_only("SUBLN"), 0, []),
    ("enc_deepnorm", enc_only("DEEPNORM"), 0, []),
]


def norm_of(spec, overrides, stack, i):
    norm = spec["norm"]
    for o_stack, first, last, o_norm in overrides:  # later overrides win
        if o_stack in (stack, "BOTH") and first <= i <= last:
            norm = o_norm
    return norm


def alpha_of(spec, stack, norm):
    """Residual scale α of a layer (docs/normalization.md)."""
    n_enc, n_dec = spec["encoder_layers"], spec["decoder_layers"]
    if norm == "DEEPNORM":
        if n_enc > 0 and n_dec > 0:
            a = (0.81 * (n_enc ** 4 * n_dec) ** (1 / 16) if stack == "ENCODER"
                 else (3 * n_dec) ** 0.25)
        else:
            a = (2 * (n_enc + n_dec)) ** 0.25
    elif norm == "UPSCALE_LN":
        a = (2 * (n_enc if stack == "ENCODER" else n_dec)) ** 0.25
    elif norm == "FOUNDATION_LN":
        a = 0.974
    else:
        return 1.0  # kinds without α ignore the spec fields
    field = "encoder_alpha" if stack == "ENCODER" else "decoder_alpha"
    return f32(spec[field]) if field in spec else a


# ---------------------------------------------------------------------------
# Parameter names and shapes, in pipetrain's registration order.


def layer_params(prefix, norm, d, ffn, heads, cross):
    out = []

    def ln(name, width):
        out.append((f"{name}.gamma", [width]))
        out.append((f"{name}.beta", [width]))

    def attention(p):
        ln(p + (".pre_ln" if norm in PRE_NORM else ".post_ln"), d)
        for w in ("q", "k", "v"):
            out.append((f"{p}.{w}.weight", [d, d]))
            out.append((f"{p}.{w}.bias", [d]))
        if norm == "NORMFORMER":
            out.append((f"{p}.head_scale", [heads]))
        if norm == "SUBLN":
            ln(p + ".sub_ln", d)
        out.append((f"{p}.o.weight", [d, d]))
        out.append((f"{p}.o.bias", [d]))
        if norm == "NORMFORMER":
            ln(p + ".post_attn_ln", d)

    attention(prefix + ".self_attn")
    if cross:
        attention(prefix + ".cross_attn")
    p = prefix + ".ffn"
    ln(p + (".pre_ln" if norm in PRE_NORM else ".post_ln"), d)
    out.append((f"{p}.fc1.weight", [ffn, d]))
    out.append((f"{p}.fc1.bias", [ffn]))
    if norm in ("NORMFORMER", "SUBLN"):
        ln(p + ".inner_ln", ffn)
    out.append((f"{p}.fc2.weight", [d, ffn]))
    out.append((f"{p}.fc2.bias", [d]))
    return out


def model_params(spec, overrides):
    d, v = spec["d_model"], spec["vocab_size"]
    n_enc, n_dec = spec["encoder_layers"], spec["decoder_layers"]
    out = [("embed.weight", [v, d])]
    for stack, n, name in (("ENCODER", n_enc, "encoder"), ("DECODER", n_dec, "decoder")):
        for i in range(n):
            out += layer_params(f"{name}.{i}", norm_of(spec, overrides, stack, i), d,
                                spec["ffn_dim"], spec["heads"],
                                cross=stack == "DECODER" and n_enc > 0)
        if n > 0 and norm_of(spec, overrides, stack, n - 1) in PRE_NORM:
            out.append((f"{name}.final_ln.gamma", [d]))
            out.append((f"{name}.final_ln.beta", [d]))
    if spec["tied_embeddings"] == "false":
        out.append(("output.weight", [v, d]))
    return out


def fill(names_shapes):
    params = {}
    for k, (name, shape) in enumerate(names_shapes):
        n = math.prod(shape)
        # math.sin: the same libm as the C++ side's std::sin.
        values = [0.3 * math.sin(0.37 * j + 1.3 * k) for j in range(n)]
        if name.endswith(".gamma") or name.endswith("head_scale"):
            values = [1.0 + x for x in values]
        params[name] = torch.tensor(values).reshape(shape).requires_grad_(True)
    return params


# ---------------------------------------------------------------------------
# Batch layout (core/data/batch.h)


def collate(kind, pairs):
    b = len(pairs)
    max_src = max(len(s) for s, _ in pairs)
    max_tgt = max(len(t) for _, t in pairs)
    out = {}
    if kind == "ENCODER_ONLY":
        src = torch.zeros(b, max_src, dtype=torch.long)
        labels = torch.zeros(b, max_src, dtype=torch.long)
        for i, (s, t) in enumerate(pairs):
            assert len(s) == len(t)
            src[i, :len(s)] = torch.tensor(s)
            labels[i, :len(t)] = torch.tensor(t)
        out["src_ids"], out["labels"] = src, labels
        out["src_lengths"] = torch.tensor([len(s) for s, _ in pairs])
    elif kind == "DECODER_ONLY":
        # source <s> target, predicting the target and </s> only; padded to the
        # longest whole sequence, as pipetrain's collate does.
        width = max(len(s) + len(t) + 1 for s, t in pairs)
        tgt_in = torch.zeros(b, width, dtype=torch.long)
        labels = torch.zeros(b, width, dtype=torch.long)
        for i, (s, t) in enumerate(pairs):
            seq = s + [BOS] + t
            tgt_in[i, :len(seq)] = torch.tensor(seq)
            labels[i, len(s):len(s) + len(t) + 1] = torch.tensor(t + [EOS])
        out["tgt_in"], out["labels"] = tgt_in, labels
        out["tgt_lengths"] = torch.tensor([len(s) + len(t) + 1 for s, t in pairs])
    else:
        src = torch.zeros(b, max_src, dtype=torch.long)
        tgt_in = torch.zeros(b, max_tgt + 1, dtype=torch.long)
        labels = torch.zeros(b, max_tgt + 1, dtype=torch.long)
        for i, (s, t) in enumerate(pairs):
            src[i, :len(s)] = torch.tensor(s)
            tgt_in[i, :len(t) + 1] = torch.tensor([BOS] + t)
            labels[i, :len(t) + 1] = torch.tensor(t + [EOS])
        out["src_ids"], out["tgt_in"], out["labels"] = src, tgt_in, labels
        out["src_lengths"] = torch.tensor([len(s) for s, _ in pairs])
        out["tgt_lengths"] = torch.tensor([len(t) + 1 for _, t in pairs])
    return out


# ---------------------------------------------------------------------------
# The model


def sinusoid(length, d):
    """Vaswani et al.: PE[t, 2i] = sin(t / 10000^(2i/d)), PE[t, 2i+1] = cos(same)."""
    pe = torch.zeros(length, d)
    pos = torch.arange(length, dtype=torch.float64).unsqueeze(1)
    freq = 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq[: d // 2])
    return pe


class Model:
    def __init__(self, spec, overrides, step, params):
        self.spec, self.overrides, self.step, self.P = spec, overrides, step, params
        self.eps = f32(spec["layer_norm_eps"])
        self.heads = spec["heads"]
        self.act = F.relu if spec["activation"] == "RELU" else F.gelu  # exact erf GELU

    def ln(self, x, name):
        return F.layer_norm(x, (x.shape[-1],), self.P[name + ".gamma"], self.P[name + ".beta"],
                            self.eps)

    def linear(self, x, name, bias=True):
        return F.linear(x, self.P[name + ".weight"], self.P[name + ".bias"] if bias else None)

    def attention(self, p, norm, h, kv, mask):
        """mask: bool, broadcastable to [B, H, Tq, Tk], True where a key is visible."""
        b, tq, d = h.shape
        tk, heads = kv.shape[1], self.heads
        dh = d // heads

        def split(t, n):  # [B, n, d] -> [B, H, n, Dh]
            return t.view(b, n, heads, dh).transpose(1, 2)

        q = split(self.linear(h, p + ".q"), tq)
        k = split(self.linear(kv, p + ".k"), tk)
        v = split(self.linear(kv, p + ".v"), tk)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(dh)
        probs = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
        ctx = probs @ v  # [B, H, Tq, Dh]
        if norm == "NORMFORMER":  # HeadScale: one learned scale per head
            ctx = ctx * self.P[p + ".head_scale"].view(1, heads, 1, 1)
        ctx = ctx.transpose(1, 2).reshape(b, tq, d)
        if norm == "SUBLN":  # Magneto: LN before the output projection
            ctx = self.ln(ctx, p + ".sub_ln")
        out = self.linear(ctx, p + ".o")
        if norm == "NORMFORMER":  # NormFormer's post-attention LN
            out = self.ln(out, p + ".post_attn_ln")
        return out

    def ffn(self, p, norm, h):
        a = self.act(self.linear(h, p + ".fc1"))
        if norm in ("NORMFORMER", "SUBLN"):
            a = self.ln(a, p + ".inner_ln")
        return self.linear(a, p + ".fc2")

    def branch(self, f):
        """BranchNorm's rescaling of the block output at this step."""
        bn = self.spec
        progress = min(self.step / max(bn["branch_max_norm_step"], 1), 1.0)
        if bn.get("branch_shape") == "NORMALIZED_POWER":
            if progress >= 1.0:
                return f
            centred = f - f.mean(dim=-1, keepdim=True)
            sigma = torch.sqrt(f.var(dim=-1, unbiased=False, keepdim=True) + self.eps)
            return centred / sigma ** (1.0 - progress)
        a0 = f32(bn.get("branch_start_scale", "0.1"))
        return (a0 + (1.0 - a0) * progress) * f

    def sublayer(self, p, norm, alpha, x, block):
        if norm in PRE_NORM:
            return x + block(self.ln(x, p + ".pre_ln"))
        f = block(x)
        if norm == "BRANCHNORM":
            f = self.branch(f)
        return self.ln(alpha * x + f, p + ".post_ln")

    def layer(self, prefix, stack, i, x, self_mask, memory, cross_mask):
        norm = norm_of(self.spec, self.overrides, stack, i)
        alpha = alpha_of(self.spec, stack, norm)
        x = self.sublayer(prefix + ".self_attn", norm, alpha, x,
                          lambda h: self.attention(prefix + ".self_attn", norm, h, h, self_mask))
        if memory is not None:
            x = self.sublayer(prefix + ".cross_attn", norm, alpha, x,
                              lambda h: self.attention(prefix + ".cross_attn", norm, h, memory,
                                                       cross_mask))
        return self.sublayer(prefix + ".ffn", norm, alpha, x,
                             lambda h: self.ffn(prefix + ".ffn", norm, h))

    def embed(self, ids):
        d = self.spec["d_model"]
        x = F.embedding(ids, self.P["embed.weight"]) * math.sqrt(d)
        return x + sinusoid(ids.shape[1], d).unsqueeze(0)

    def stack(self, name, stack, n, x, self_mask, memory=None, cross_mask=None):
        for i in range(n):
            x = self.layer(f"{name}.{i}", stack, i, x, self_mask, memory, cross_mask)
        if norm_of(self.spec, self.overrides, stack, n - 1) in PRE_NORM:
            x = self.ln(x, name + ".final_ln")
        return x

    def logits(self, batch):
        n_enc, n_dec = self.spec["encoder_layers"], self.spec["decoder_layers"]
        memory = src_mask = None
        if n_enc > 0:
            ts = batch["src_ids"].shape[1]
            # Padding keys are invisible to every query.
            src_mask = (torch.arange(ts).view(1, ts) <
                        batch["src_lengths"].view(-1, 1)).view(-1, 1, 1, ts)
            memory = self.stack("encoder", "ENCODER", n_enc, self.embed(batch["src_ids"]),
                                src_mask)
            top = memory
        if n_dec > 0:
            tt = batch["tgt_in"].shape[1]
            causal = torch.ones(tt, tt, dtype=torch.bool).tril().view(1, 1, tt, tt)
            top = self.stack("decoder", "DECODER", n_dec, self.embed(batch["tgt_in"]), causal,
                             memory, src_mask)
        out = self.P["output.weight" if "output.weight" in self.P else "embed.weight"]
        return top @ out.t()


def smoothed_loss(logits, labels, eps):
    """Sums over non-pad rows of −Σ_v q_v log p_v, q = (1 − ε)·onehot + ε/V, and the NLL."""
    logits = logits.reshape(-1, logits.shape[-1])
    labels = labels.reshape(-1)
    keep = labels != PAD
    logp = torch.log_softmax(logits[keep], dim=-1)
    nll = -logp.gather(1, labels[keep].unsqueeze(1)).squeeze(1)
    smooth = -logp.mean(dim=-1)
    loss = ((1.0 - eps) * nll + eps * smooth).sum()
    # Cross-check against PyTorch's own label-smoothed cross-entropy.
    ref = F.cross_entropy(logits, labels, ignore_index=PAD, label_smoothing=eps, reduction="sum")
    assert abs(ref.item() - loss.item()) <= 1e-12 * abs(loss.item()), (ref, loss)
    return loss, nll.sum(), int(keep.sum())


# ---------------------------------------------------------------------------
# Output


def fmt(x):
    return repr(float(x))


def tensor_line(name, t):
    rows, cols = (t.shape[0], t.shape[1]) if t.dim() == 2 else (t.shape[0], 1)
    values = " ".join(str(int(v)) for v in t.reshape(-1).tolist())
    return f"{name} {rows} {cols} {values}"


def run_case(name, spec, step, overrides):
    names_shapes = model_params(spec, overrides)
    params = fill(names_shapes)
    pairs = TAGGING_PAIRS if spec["kind"] == "ENCODER_ONLY" else SEQ2SEQ_PAIRS
    batch = collate(spec["kind"], pairs)
    model = Model(spec, overrides, step, params)
    loss, nll, tokens = smoothed_loss(model.logits(batch), batch["labels"],
                                      f32(spec["label_smoothing"]))
    loss.backward()

    lines = [f"case {name}"]
    lines += [f"{k} {v}" for k, v in spec.items()]
    lines += [f"norm_override {s} {a} {b} {n}" for s, a, b, n in overrides]
    lines.append(f"step {step}")
    lines += [f"pair {' '.join(map(str, s))} | {' '.join(map(str, t))}" for s, t in pairs]
    for key in ("src_ids", "src_lengths", "tgt_in", "tgt_lengths", "labels"):
        if key in batch:
            lines.append(tensor_line(key, batch[key]))
    lines.append(f"loss_sum {fmt(loss.item())}")
    lines.append(f"nll_sum {fmt(nll.item())}")
    lines.append(f"tokens {tokens}")
    for pname, shape in names_shapes:
        g = params[pname].grad
        if g is None:
            g = torch.zeros(shape)
        shape_text = "x".join(map(str, shape))
        lines.append(f"param {pname} {shape_text} {fmt(g.sum().item())} "
                     f"{fmt((g * g).sum().item())}")
    lines.append("end")
    return lines


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = [
        "# Generated by tests/golden/make_model_golden.py (PyTorch "
        f"{torch.__version__}, float64); do not edit.",
        "# Regenerate: /usr/bin/python3 tests/golden/make_model_golden.py",
    ]
    for case in CASES:
        out += run_case(*case)
    path = os.path.join(here, "model_golden.txt")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    print(f"wrote {len(CASES)} cases to {path}")


if __name__ == "__main__":
    main()
