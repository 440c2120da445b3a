#!/usr/bin/env python3
"""moe bench next to llama.cpp's llama-bench on the same files, threads and test sizes.

Runs both engines per model, interleaved (moe, llama, moe, llama ... when --rounds > 1) so that
load from elsewhere on the machine hits both alike, and prints one markdown table with the
ratio moe / llama.cpp per test. llama-bench is not part of this repository: point LLAMA_BENCH
(or --llama-bench) at a build of it made outside the tree (see docs/BENCHMARKS.md).

    python3 bench/compare_llama_bench.py --moe build/release/src/cli/moe \
        --llama-bench /path/to/llama-bench -p 64,512 -n 32 -t 2 -r 3 m1.gguf m2.gguf
"""
import argparse
import json
import os
import statistics
import subprocess
import sys


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def key_of(record):
    return (record["n_prompt"], record["n_gen"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moe", default="build/release/src/cli/moe")
    ap.add_argument("--llama-bench", default=os.environ.get("LLAMA_BENCH", "llama-bench"))
    ap.add_argument("--llama-args", default="", help="extra llama-bench arguments, space separated")
    ap.add_argument("--moe-args", default="", help="extra moe bench arguments, space separated (e.g. --amx)")
    ap.add_argument("-p", default="64,512")
    ap.add_argument("-n", default="32")
    ap.add_argument("-t", default="2")
    ap.add_argument("-r", default="3")
    ap.add_argument("--rounds", type=int, default=1, help="alternations of the two engines per model")
    ap.add_argument("--warm-runs", type=int, default=1,
                    help="untimed runs of both engines per model first (page cache, and this VM's proactive "
                         "reclaim evicts pages idle for a while: a cold first run reads weights from disk)")
    ap.add_argument("models", nargs="+")
    a = ap.parse_args()

    common = ["-p", a.p, "-n", a.n, "-t", a.t, "-r", a.r, "-o", "json"]
    print("| model | test | moe.cpp t/s | llama.cpp t/s | ratio | moe decode GB/s (% of read bw) |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for model in a.models:
        samples = {"moe": {}, "llama": {}}
        extra = {}
        warm = ["-p", a.p.split(",")[0], "-n", "0" if a.p.split(",")[0] != "0" else "1", "-t", a.t, "-r", "1",
                "-o", "json"]
        for _ in range(a.warm_runs):
            run_json([a.moe, "bench", "-m", model] + warm + a.moe_args.split())
            run_json([a.llama_bench, "-m", model] + warm + a.llama_args.split())
        for _ in range(a.rounds):
            for rec in run_json([a.moe, "bench", "-m", model] + common + a.moe_args.split()):
                samples["moe"].setdefault(key_of(rec), []).extend(rec.get("samples_ts", [rec["avg_ts"]]))
                if rec["n_gen"] > 0:
                    extra[key_of(rec)] = (rec.get("decode_gbps", 0.0), rec.get("roofline_pct", 0.0))
            llama_cmd = [a.llama_bench, "-m", model] + common + a.llama_args.split()
            for rec in run_json(llama_cmd):
                samples["llama"].setdefault(key_of(rec), []).extend(rec.get("samples_ts", [rec["avg_ts"]]))
        for key in sorted(samples["moe"], key=lambda k: (k[1], k[0])):
            moe_ts = statistics.mean(samples["moe"][key])
            llama = samples["llama"].get(key)
            llama_ts = statistics.mean(llama) if llama else float("nan")
            test = f"pp{key[0]}" if key[1] == 0 else f"tg{key[1]}"
            gb = extra.get(key)
            gb_text = f"{gb[0]:.1f} ({gb[1]:.0f}%)" if gb else ""
            print(f"| {os.path.basename(model)} | {test} | {moe_ts:.2f} | {llama_ts:.2f} | "
                  f"{moe_ts / llama_ts:.2f}x | {gb_text} |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
