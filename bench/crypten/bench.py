"""CrypTen itself on the same workloads as `privml mpc bench model|relu`, for side-by-side runs.

Two parties (one process and one PyTorch thread each) on loopback via CrypTen's own launcher
scheme (torch.distributed, gloo), model weights shared by party 1 (CrypTen runs only encrypted
models on encrypted inputs), the input secret-shared by party 0 and the output revealed to it; the timed
span is share -> run -> reveal, after one untimed warm-up. Triples: CrypTen's default provider
(TFP) or a separate TTP process (--provider TTP, like privml's dealer).

Needs CrypTen and its dependencies (torch, omegaconf, onnx) importable. Prints JSON:
  python3 bench/crypten/bench.py model models/fmnist-cnn.onnx --batch 64 --reps 3
  python3 bench/crypten/bench.py relu --n 262144 --reps 5
"""
import argparse
import io
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import uuid


def explicit_gemm(path):
    """The model with every Gemm's default attributes written out (CrypTen's importer needs them)."""
    import onnx
    from onnx import helper
    m = onnx.load(path)
    for node in m.graph.node:
        if node.op_type != "Gemm":
            continue
        have = {a.name for a in node.attribute}
        for name, v in (("alpha", 1.0), ("beta", 1.0), ("transA", 0), ("transB", 0)):
            if name not in have:
                node.attribute.append(helper.make_attribute(name, v))
    return m.SerializeToString()


def party(rank, world, env, args, out):
    os.environ.update(env)
    os.environ["RANK"] = str(rank)
    import torch
    torch.set_num_threads(1)
    import crypten
    import crypten.communicator as comm
    crypten.cfg.mpc.provider = args.provider
    crypten.init()
    if rank == world:  # the TTP
        crypten.mpc.provider.TTPServer()
        return
    torch.manual_seed(1)
    if args.job == "model":
        model = crypten.nn.from_onnx(io.BytesIO(explicit_gemm(args.model)))
        model.eval()
        # CrypTen refuses CrypTensor inputs to an unencrypted model: the weights are shared by
        # party 1 (the model owner), i.e. privml's --weights secret, not public
        model.encrypt(src=1)
        shape = [args.batch, 1, 28, 28]
        run = lambda x: model(x)
    else:
        shape = [args.n]
        run = lambda x: x.relu()
    times = []
    for r in range(args.reps + 1):
        comm.get().barrier()
        t0 = time.perf_counter()
        x = crypten.cryptensor(torch.rand(shape) if rank == 0 else torch.empty(shape), src=0)
        y = run(x)
        y.get_plain_text(dst=0)
        ms = (time.perf_counter() - t0) * 1000
        if r > 0:
            times.append(ms)
    if rank == 0:
        out.put(times)
    comm.get().barrier()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("job", choices=["model", "relu"])
    ap.add_argument("model", nargs="?")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--n", type=int, default=262144)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--provider", choices=["TFP", "TTP"], default="TFP")
    args = ap.parse_args()
    if args.job == "model" and not args.model:
        sys.exit("bench.py: model job needs an .onnx path")
    world = 2
    env = {"WORLD_SIZE": str(world), "RENDEZVOUS": "file://" + os.path.join(tempfile.gettempdir(), "crypten-rdv-" + uuid.uuid1().hex)}
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    ranks = list(range(world)) + ([world] if args.provider == "TTP" else [])
    procs = [ctx.Process(target=party, args=(r, world, env, args, out)) for r in ranks]
    for p in procs:
        p.start()
    times = None
    while times is None:
        try:
            times = out.get(timeout=1)
        except Exception:
            if any(p.exitcode not in (None, 0) for p in procs):
                for p in procs:
                    p.terminate()
                sys.exit("bench.py: a CrypTen process failed")
    for p in procs:
        p.join(timeout=60)
        if p.is_alive():
            p.terminate()
    print(json.dumps({"system": "crypten", "job": args.job, "batch": args.batch, "n": args.n, "provider": args.provider, "ms": statistics.median(times), "all": times}))


if __name__ == "__main__":
    main()
