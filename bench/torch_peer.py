#!/usr/bin/python3
"""PyTorch peer of bench/cpu_train_bench: the same model, shapes and optimizer, in fp32 on the CPU.

The model is pipetrain's DeepNorm encoder-decoder, written the way a PyTorch user
would write it (nn.Linear, nn.LayerNorm, F.cross_entropy, torch.optim.AdamW):

  * one embedding matrix shared by source, target and output projection,
    initialised N(0, 1/d), looked up and scaled by sqrt(d);
  * sinusoidal positions pe[t, 2i] = sin(t / 10000^(2i/d)), pe[t, 2i+1] = cos(...);
  * every sub-layer joined as LN(alpha * x + F(x)) (Post-LN layout, no final LN);
    encoder alpha = 0.81 (N^4 M)^(1/16), beta = 0.87 (N^4 M)^(-1/16),
    decoder alpha = (3M)^(1/4), beta = (12M)^(-1/4);
  * q/k/v/o projections with biases, xavier-normal init with gain 1 for q and k
    and beta for v and o; FFN fc1 -> exact (erf) GELU -> fc2 with biases, both
    xavier-normal with gain beta; all biases zero, LN gain 1 and bias 0;
  * label-smoothed cross-entropy, q = (1 - eps) onehot + eps / V, averaged over
    target tokens; AdamW with pipetrain's learning-rate schedule; optional
    global-norm clipping; no dropout.

Batches have the layout of core/data/collate.cc with fixed lengths: source =
`seq` random content ids, target = the source reversed, decoder input =
<s> + target, labels = target + </s>.

It prints one JSON line with the keys of cpu_train_bench (tgt_tokens_per_s,
tokens_per_s, step_ms, peak_rss_gib, ...). Runs on Debian's PyTorch 1.13 with
/usr/bin/python3 and on newer releases.
"""
import argparse
import ctypes
import json
import math
import os
import resource
import sys
import time


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    a = p.add_argument
    a("--enc", type=int, default=6, help="encoder layers")
    a("--dec", type=int, default=6, help="decoder layers")
    a("--d", type=int, default=512, help="model width")
    a("--ffn", type=int, default=2048, help="FFN hidden width")
    a("--heads", type=int, default=8)
    a("--vocab", type=int, default=8000, help="vocabulary size, specials (ids 0..3) included")
    a("--seq", type=int, default=32, help="source and target tokens of every sentence")
    a("--batch", type=int, default=16, help="sentences per step")
    a("--warmup", type=int, default=2, help="untimed steps")
    a("--steps", type=int, default=5, help="timed steps")
    a("--threads", type=int, default=2, help="intra-op threads (OpenMP and BLAS)")
    a("--label_smoothing", type=float, default=0.1)
    a("--lr", type=float, default=5e-4, help="peak learning rate")
    a("--lr_schedule", default="INVERSE_SQRT",
      choices=["INVERSE_SQRT", "COSINE", "CONSTANT", "LR_SCHEDULE_UNSPECIFIED"],
      help="as in train_config.proto; unspecified means INVERSE_SQRT")
    a("--warmup_steps", type=int, default=4000, help="learning-rate warm-up updates")
    a("--min_lr", type=float, default=0.0, help="floor of COSINE")
    a("--beta1", type=float, default=0.9)
    a("--beta2", type=float, default=0.98)
    a("--adam_eps", type=float, default=1e-8)
    a("--weight_decay", type=float, default=0.0)
    a("--clip_norm", type=float, default=0.0, help="global gradient-norm clip; 0 disables")
    a("--layer_norm_eps", type=float, default=1e-5)
    a("--seed", type=int, default=1)
    a("--attention", default="auto", choices=["auto", "manual", "sdpa"],
      help="sdpa: F.scaled_dot_product_attention (PyTorch >= 2.0); auto picks it when present")
    a("--phases", action="store_true", help="also report mean ms per phase of the step")
    args = p.parse_args(argv)
    if args.enc < 1 or args.dec < 1:
        p.error("the peer is an encoder-decoder: --enc and --dec must be >= 1")
    if args.d % args.heads:
        p.error(f"--d={args.d} is not divisible by --heads={args.heads}")
    if args.vocab <= 4:
        p.error("--vocab must leave content ids after the 4 specials")
    if min(args.seq, args.batch, args.steps, args.threads) < 1 or args.warmup < 0:
        p.error("--seq, --batch, --steps, --threads must be >= 1 and --warmup >= 0")
    return args


ARGS = parse_args(sys.argv[1:])
# Thread pools are sized when the libraries load, so this goes before the import.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

PAD, BOS, EOS, FIRST_CONTENT = 0, 1, 2, 4


def current_rss_gib():
    with open("/proc/self/statm") as f:
        resident_pages = int(f.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**30


def peak_rss_gib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def blas_description():
    """The OpenBLAS build torch's BLAS calls go to (Debian links libblas.so.3)."""
    try:
        lib = ctypes.CDLL("libblas.so.3")  # the copy torch already loaded
        lib.openblas_get_corename.restype = ctypes.c_char_p
        kind = {0: "serial", 1: "pthreads", 2: "openmp"}.get(lib.openblas_get_parallel(), "?")
        return f"OpenBLAS {kind} {lib.openblas_get_corename().decode()}"
    except (OSError, AttributeError):
        return "unknown (not OpenBLAS)"


def deepnorm_constants(n_enc, n_dec):
    """(encoder alpha, encoder beta, decoder alpha, decoder beta) of DeepNet."""
    depth = n_enc**4 * n_dec
    return (0.81 * depth ** (1 / 16), 0.87 * depth ** (-1 / 16),
            (3 * n_dec) ** 0.25, (12 * n_dec) ** -0.25)


def sinusoidal_table(length, d):
    t = torch.arange(length, dtype=torch.float64)[:, None]
    pair = torch.arange(d, dtype=torch.float64) // 2  # i of columns 2i and 2i + 1
    angle = t * torch.pow(10000.0, -2.0 * pair / d)[None, :]
    table = torch.where(torch.arange(d) % 2 == 0, torch.sin(angle), torch.cos(angle))
    return table.to(torch.float32)


def xavier_linear(d_in, d_out, gain):
    layer = nn.Linear(d_in, d_out)
    nn.init.xavier_normal_(layer.weight, gain=gain)
    nn.init.zeros_(layer.bias)
    return layer


class Attention(nn.Module):
    def __init__(self, d, heads, beta, use_sdpa):
        super().__init__()
        self.heads = heads
        self.use_sdpa = use_sdpa
        self.q = xavier_linear(d, d, 1.0)
        self.k = xavier_linear(d, d, 1.0)
        self.v = xavier_linear(d, d, beta)
        self.o = xavier_linear(d, d, beta)
        self.masks = {}

    def causal_mask(self, t, device):
        if t not in self.masks:
            self.masks[t] = torch.ones(t, t, dtype=torch.bool, device=device).triu(1)
        return self.masks[t]

    def forward(self, x, kv, causal):
        b, tq, d = x.shape
        tk = kv.shape[1]
        h, dh = self.heads, d // self.heads
        # Heads are contiguous dh-wide slices of the features, as in pipetrain.
        q = self.q(x).view(b, tq, h, dh).transpose(1, 2)
        k = self.k(kv).view(b, tk, h, dh).transpose(1, 2)
        v = self.v(kv).view(b, tk, h, dh).transpose(1, 2)
        if self.use_sdpa:
            ctx = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        else:
            scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(dh))
            if causal:
                scores = scores.masked_fill(self.causal_mask(tq, x.device), float("-inf"))
            ctx = torch.matmul(torch.softmax(scores, dim=-1), v)
        return self.o(ctx.transpose(1, 2).reshape(b, tq, d))


class FeedForward(nn.Module):
    def __init__(self, d, ffn, beta):
        super().__init__()
        self.fc1 = xavier_linear(d, ffn, beta)
        self.fc2 = xavier_linear(ffn, d, beta)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))  # exact erf GELU


class DeepNormJoin(nn.Module):
    """LN(alpha * x + F(x))."""

    def __init__(self, d, alpha, eps):
        super().__init__()
        self.alpha = alpha
        self.norm = nn.LayerNorm(d, eps=eps)

    def forward(self, x, f):
        return self.norm(self.alpha * x + f)


class EncoderLayer(nn.Module):
    def __init__(self, a, alpha, beta, use_sdpa):
        super().__init__()
        self.attn = Attention(a.d, a.heads, beta, use_sdpa)
        self.attn_join = DeepNormJoin(a.d, alpha, a.layer_norm_eps)
        self.ffn = FeedForward(a.d, a.ffn, beta)
        self.ffn_join = DeepNormJoin(a.d, alpha, a.layer_norm_eps)

    def forward(self, x):
        x = self.attn_join(x, self.attn(x, x, causal=False))
        return self.ffn_join(x, self.ffn(x))


class DecoderLayer(nn.Module):
    def __init__(self, a, alpha, beta, use_sdpa):
        super().__init__()
        self.self_attn = Attention(a.d, a.heads, beta, use_sdpa)
        self.self_join = DeepNormJoin(a.d, alpha, a.layer_norm_eps)
        self.cross_attn = Attention(a.d, a.heads, beta, use_sdpa)
        self.cross_join = DeepNormJoin(a.d, alpha, a.layer_norm_eps)
        self.ffn = FeedForward(a.d, a.ffn, beta)
        self.ffn_join = DeepNormJoin(a.d, alpha, a.layer_norm_eps)

    def forward(self, y, memory):
        y = self.self_join(y, self.self_attn(y, y, causal=True))
        y = self.cross_join(y, self.cross_attn(y, memory, causal=False))
        return self.ffn_join(y, self.ffn(y))


class DeepNormTransformer(nn.Module):
    def __init__(self, a, use_sdpa):
        super().__init__()
        enc_alpha, enc_beta, dec_alpha, dec_beta = deepnorm_constants(a.enc, a.dec)
        self.scale = math.sqrt(a.d)
        self.label_smoothing = a.label_smoothing
        self.embed = nn.Parameter(torch.randn(a.vocab, a.d) / self.scale)
        self.register_buffer("positions", sinusoidal_table(a.seq + 1, a.d), persistent=False)
        self.encoder = nn.ModuleList(
            EncoderLayer(a, enc_alpha, enc_beta, use_sdpa) for _ in range(a.enc))
        self.decoder = nn.ModuleList(
            DecoderLayer(a, dec_alpha, dec_beta, use_sdpa) for _ in range(a.dec))

    def embed_tokens(self, ids):
        return F.embedding(ids, self.embed) * self.scale + self.positions[: ids.shape[1]]

    def forward(self, src, dec_in, labels):
        x = self.embed_tokens(src)
        for layer in self.encoder:
            x = layer(x)
        y = self.embed_tokens(dec_in)
        for layer in self.decoder:
            y = layer(y, x)
        logits = F.linear(y, self.embed)  # tied output projection, no bias
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                               ignore_index=PAD, label_smoothing=self.label_smoothing)


def learning_rate(a, total_steps, update):
    """core/optim/lr_schedule.cc; `update` counts from 1."""
    u = max(update, 1)
    if a.warmup_steps > 0 and update <= a.warmup_steps:
        return a.lr * u / a.warmup_steps
    if a.lr_schedule == "COSINE":
        span = max(total_steps - a.warmup_steps, 1)
        progress = min((u - a.warmup_steps) / span, 1.0)
        return a.min_lr + (a.lr - a.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
    if a.lr_schedule == "CONSTANT":
        return a.lr
    return a.lr * math.sqrt(max(a.warmup_steps, 1) / u)


def make_batch(a, generator):
    src = torch.randint(FIRST_CONTENT, a.vocab, (a.batch, a.seq), generator=generator)
    tgt = src.flip(1)  # the synthetic REVERSE task
    dec_in = torch.cat([torch.full((a.batch, 1), BOS, dtype=src.dtype), tgt], dim=1)
    labels = torch.cat([tgt, torch.full((a.batch, 1), EOS, dtype=src.dtype)], dim=1)
    return src, dec_in, labels


def main(a):
    torch.set_num_threads(a.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already fixed by earlier parallel work; only the intra-op pool matters here
    torch.manual_seed(a.seed)
    have_sdpa = hasattr(F, "scaled_dot_product_attention")
    if a.attention == "sdpa" and not have_sdpa:
        sys.exit(f"torch_peer: --attention=sdpa needs PyTorch >= 2.0, this is {torch.__version__}")
    use_sdpa = a.attention == "sdpa" or (a.attention == "auto" and have_sdpa)

    base_rss = current_rss_gib()
    model = DeepNormTransformer(a, use_sdpa)
    params = list(model.parameters())
    optimizer = torch.optim.AdamW(params, lr=a.lr, betas=(a.beta1, a.beta2), eps=a.adam_eps,
                                  weight_decay=a.weight_decay)
    generator = torch.Generator().manual_seed(a.seed)
    total = a.warmup + a.steps
    phase_names = ("data", "zero_grads", "forward", "backward", "clip", "adamw")
    phase_sum = dict.fromkeys(phase_names, 0.0)
    timed, best = 0.0, float("inf")
    loss_first = loss_last = None
    for step in range(total):
        marks = [time.perf_counter()]
        src, dec_in, labels = make_batch(a, generator)
        marks.append(time.perf_counter())
        optimizer.zero_grad(set_to_none=True)
        marks.append(time.perf_counter())
        loss = model(src, dec_in, labels)
        marks.append(time.perf_counter())
        loss.backward()
        marks.append(time.perf_counter())
        if a.clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(params, a.clip_norm)
        marks.append(time.perf_counter())
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(a, total, step + 1)
        optimizer.step()
        loss_last = loss.item()
        marks.append(time.perf_counter())
        if loss_first is None:
            loss_first = loss_last
        if not math.isfinite(loss_last):
            sys.exit(f"torch_peer: loss {loss_last} at step {step + 1}")
        if step >= a.warmup:
            seconds = marks[-1] - marks[0]
            timed += seconds
            best = min(best, seconds)
            for name, t0, t1 in zip(phase_names, marks, marks[1:]):
                phase_sum[name] += t1 - t0
    peak = peak_rss_gib()

    tgt_tokens = a.batch * (a.seq + 1)  # labels: target + </s>
    src_tokens = a.batch * a.seq
    result = {
        "bench": "cpu_train", "impl": "torch", "torch": torch.__version__,
        "attention": "sdpa" if use_sdpa else "manual",
        "kind": "ENCODER_DECODER", "norm": "DEEPNORM",
        "params": sum(p.numel() for p in params),
        "enc": a.enc, "dec": a.dec, "d": a.d, "ffn": a.ffn, "heads": a.heads, "vocab": a.vocab,
        "seq": a.seq, "batch": a.batch, "threads": a.threads, "warmup": a.warmup,
        "steps": a.steps,
        "tgt_tokens_per_s": round(tgt_tokens * a.steps / timed, 1),
        "tokens_per_s": round((tgt_tokens + src_tokens) * a.steps / timed, 1),
        "step_ms": round(1000 * timed / a.steps, 2),
        "step_ms_min": round(1000 * best, 2),
        "peak_rss_gib": round(peak, 4), "base_rss_gib": round(base_rss, 4),
        "loss_first": round(loss_first, 6), "loss": round(loss_last, 6),
        "blas": blas_description(), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
    }
    if a.phases:
        result["phase_ms"] = {k: round(1000 * v / a.steps, 3) for k, v in phase_sum.items()}
    print(json.dumps(result, separators=(",", ":")), flush=True)


if __name__ == "__main__":
    main(ARGS)
