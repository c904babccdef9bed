"""Train NIN28 variants on Fashion-MNIST on a small CPU, resumably, then evaluate and export.

    /usr/bin/python3 python/train.py nin28-root-8 nin28 --epochs 4           # fresh
    /usr/bin/python3 python/train.py nin28-root-8 nin28 --epochs 4 --resume  # continue / skip done
    /usr/bin/python3 python/train.py nin28 nin28-root-8 --bench 50           # time steps only

Models are trained one after the other. Each writes python/checkpoints/<name>.pt after every
epoch and every --ckpt-minutes inside one; at the end python/runs/<name>.json and (unless
--no-export) models/<name>.safetensors via export.py.
"""
import argparse
import gzip
import json
import math
import os
import sys
import time
import zlib

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nin28  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = "/usr/share/datasets/fashion-mnist"
MEAN, STD = 0.2860, 0.3530  # Fashion-MNIST training-set pixel mean / std on a 0..1 scale


def load_idx(kind):
    """(images uint8 [N,1,28,28], labels int64 [N]) from the IDX files; kind = 'train'|'t10k'."""
    with gzip.open(f"{DATA}/{kind}-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(f"{DATA}/{kind}-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    return torch.from_numpy(x.copy()), torch.from_numpy(y.astype(np.int64))


def normalise(x_u8):
    # channels_last (NHWC) makes oneDNN's convs ~10-20% faster here than NCHW; values are unchanged.
    return ((x_u8.float() / 255.0 - MEAN) / STD).contiguous(memory_format=torch.channels_last)


def augment(x_u8, gen):
    """Random 28x28 crop of the image zero-padded by 2 (0 = the black background) and a random
    horizontal flip (clothes are left-right symmetric), per image, as one gather."""
    b = x_u8.shape[0]
    padded = F.pad(x_u8, (2, 2, 2, 2))
    oy = torch.randint(0, 5, (b, 1), generator=gen)
    ox = torch.randint(0, 5, (b, 1), generator=gen)
    flip = torch.rand(b, 1, generator=gen) < 0.5
    r = torch.arange(28)
    rows = oy + r
    cols = torch.where(flip, ox + 27 - r, ox + r)
    return padded[torch.arange(b)[:, None, None], 0, rows[:, :, None], cols[:, None, :]][:, None]


def seed_of(name):
    """A fixed seed per variant, so every model's run is reproducible on its own."""
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


def batches(n, bs, seed, epoch):
    """The epoch's batches of indices. The order is a pure function of (seed, epoch), so a resumed
    run only needs the step number to continue the same sequence."""
    g = torch.Generator().manual_seed(seed * 1000 + epoch)
    perm = torch.randperm(n, generator=g)
    return [perm[i:i + bs] for i in range(0, n, bs)]


@torch.no_grad()
def evaluate(model, x_u8, y, bs=500):
    model.eval()
    correct = 0
    for i in range(0, len(y), bs):
        correct += (model(normalise(x_u8[i:i + bs])).argmax(1) == y[i:i + bs]).sum().item()
    return correct / len(y)


def make(name, args, steps_per_epoch, epochs):
    model = nin28.build(name, args.dropout).to(memory_format=torch.channels_last)
    # Nesterov SGD with weight decay on everything (BN included): the usual NIN/ResNet recipe.
    opt = torch.optim.SGD(model.parameters(), lr=args.lr / 25, momentum=0.9, nesterov=True,
                          weight_decay=5e-4)
    # One-cycle: warm up to lr then anneal to ~0 within the few epochs a CPU can afford.
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, epochs=epochs,
                                                steps_per_epoch=steps_per_epoch, pct_start=0.2)
    return model, opt, sched


def save(path, state):
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)  # atomic: a kill during the save never leaves a broken checkpoint


def train_one(name, args, data):
    (xtr, ytr), (xte, yte) = data
    ckpt = os.path.join(args.dir, "checkpoints", f"{name}.pt")
    n = len(ytr)
    spe = math.ceil(n / args.batch)
    if os.path.exists(ckpt) and not args.resume:
        sys.exit(f"{ckpt} exists: pass --resume to continue it, or delete it to start over")
    if os.path.exists(ckpt):
        st = torch.load(ckpt)
        epochs, seed = st["epochs"], st["seed"]
        if epochs != args.epochs:
            print(f"{name}: checkpoint was made for {epochs} epochs; keeping {epochs}", flush=True)
        model, opt, sched = make(name, argparse.Namespace(**st["args"]), spe, epochs)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        sched.load_state_dict(st["scheduler"])
        torch.set_rng_state(st["torch_rng"])  # only dropout draws from the global RNG
        epoch, step, elapsed, cpu = st["epoch"], st["step"], st["elapsed"], st.get("cpu", 0.0)
        run_args = st["args"]
        print(f"{name}: resumed at epoch {epoch} step {step} ({elapsed:.0f}s trained)", flush=True)
    else:
        epochs, seed = args.epochs, seed_of(name)
        torch.manual_seed(seed)  # initial weights
        run_args = {"lr": args.lr, "batch": args.batch, "dropout": args.dropout}
        model, opt, sched = make(name, args, spe, epochs)
        epoch, step, elapsed, cpu, st = 0, 0, 0.0, 0.0, {}

    def sched_state():
        # torch 1.13's OneCycleLR puts a bound method (anneal_func) in its state_dict, which would
        # pickle the whole scheduler; the fresh scheduler built on resume already has it.
        return {k: v for k, v in sched.state_dict().items() if k != "anneal_func"}

    def state(done=False, top1=None):
        return {"name": name, "epochs": epochs, "seed": seed, "args": run_args,
                "model": model.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched_state(), "torch_rng": torch.get_rng_state(),
                "epoch": epoch, "step": step, "elapsed": elapsed, "cpu": cpu,
                "done": done, "top1": top1}

    bs = run_args["batch"]
    todo = args.stop_after or -1
    while epoch < epochs:
        model.train()
        order = batches(n, bs, seed, epoch)
        t0, last_save, seen, loss_sum, corr = time.time(), time.time(), 0, 0.0, 0
        # Wall time includes contention and pauses (SIGSTOP); CPU time (all threads) does not.
        base, cpu_base, c0 = elapsed, cpu, time.process_time()
        while step < len(order):
            idx = order[step]
            # Augmentation RNG keyed by (seed, epoch, step): reproducible across resumes.
            g = torch.Generator().manual_seed((seed * 1000 + epoch) * 10000 + step)
            x, y = normalise(augment(xtr[idx], g)), ytr[idx]
            out = model(x)
            loss = F.cross_entropy(out, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            seen += len(y)
            loss_sum += loss.item() * len(y)
            corr += (out.argmax(1) == y).sum().item()
            elapsed, cpu = base + time.time() - t0, cpu_base + time.process_time() - c0
            if step % args.log_every == 0 or step == len(order):
                ips = seen / (time.time() - t0)
                left = ((epochs - epoch) * n - step * bs) / ips
                print(f"{name} ep {epoch + 1}/{epochs} step {step}/{len(order)} "
                      f"loss {loss_sum / seen:.4f} acc {corr / seen:.4f} "
                      f"lr {sched.get_last_lr()[0]:.4f} {ips:.0f} img/s "
                      f"trained {elapsed / 60:.1f}m eta {left / 60:.1f}m", flush=True)
            if time.time() - last_save > args.ckpt_minutes * 60 and step < len(order):
                save(ckpt, state())
                last_save = time.time()
            todo -= 1
            if todo == 0:  # --stop-after (testing resume): as if killed right after a save
                save(ckpt, state())
                return print(f"{name}: stopped after {args.stop_after} steps", flush=True)
        epoch, step = epoch + 1, 0
        save(ckpt, state())
        print(f"{name}: epoch {epoch} done, checkpoint {ckpt}", flush=True)

    top1 = st.get("top1") if st.get("done") else None
    if top1 is None:
        top1 = evaluate(model, xte, yte)
        save(ckpt, state(done=True, top1=top1))
    macs, params = nin28.cost(name)
    run = {"name": name, "epochs": epochs, "seed": seed, "train_seconds": round(elapsed, 1),
           "cpu_seconds": round(cpu, 1),
           "top1": top1, "multiply_adds": macs, "params": params, **run_args}
    with open(os.path.join(args.dir, "runs", f"{name}.json"), "w") as f:
        json.dump(run, f, indent=2)
    print(f"{name}: test top-1 {top1:.4f} after {epochs} epochs, {elapsed / 60:.1f} min",
          flush=True)
    if not args.no_export:
        import export
        export.export(ckpt, f16=False)


def bench(names, args, xtr, ytr):
    """Times args.bench training steps per model (after 3 warm-up steps); writes nothing."""
    for name in names:
        torch.manual_seed(0)
        model, opt, _ = make(name, args, 469, 1)
        model.train()
        times = []
        for s in range(args.bench + 3):
            idx = torch.randint(0, len(ytr), (args.batch,))
            x, y = normalise(augment(xtr[idx], torch.Generator().manual_seed(s))), ytr[idx]
            t = time.time()
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            times.append(time.time() - t)
        per = sum(times[3:]) / args.bench
        spe = math.ceil(len(ytr) / args.batch)
        print(f"{name}: {per * 1000:.0f} ms/step (batch {args.batch}), "
              f"{args.batch / per:.0f} img/s, epoch ~{per * spe / 60:.1f} min", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("names", nargs="+",
                   help="variants, trained in this order: " + ", ".join(nin28.VARIANTS))
    # 4 epochs: measured ~29 min per epoch for all 5 models on 2 idle cores (~2 h in all)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1, help="peak one-cycle learning rate")
    p.add_argument("--dropout", type=float, default=0.0,
                   help="after pool1/pool2; off by default: BN regularises enough for a few epochs")
    p.add_argument("--resume", action="store_true",
                   help="continue checkpoints (or start fresh), skip finished models")
    p.add_argument("--ckpt-minutes", type=float, default=10)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-export", action="store_true")
    p.add_argument("--bench", type=int, default=0, help="only time this many steps per model")
    p.add_argument("--dir", default=HERE, help="where checkpoints/ and runs/ go (default python/)")
    p.add_argument("--limit", type=int, default=0, help="train on the first N images (smoke tests)")
    p.add_argument("--stop-after", type=int, default=0, help="save and stop after N steps (tests)")
    args = p.parse_args()
    for nm in args.names:
        nin28.groups_of(nm)  # fail on a bad name before hours of training
    torch.set_num_threads(args.threads)  # the machine has 2 cores
    os.makedirs(os.path.join(args.dir, "checkpoints"), exist_ok=True)
    os.makedirs(os.path.join(args.dir, "runs"), exist_ok=True)
    train, test = load_idx("train"), load_idx("t10k")
    if args.limit:
        train = (train[0][:args.limit], train[1][:args.limit])
    if args.bench:
        return bench(args.names, args, *train)
    for nm in args.names:
        train_one(nm, args, (train, test))


if __name__ == "__main__":
    main()
